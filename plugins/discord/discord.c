/*
 * discord.c - the Discord plugin (one bot per channel): the plugin table,
 * configuration, start/stop, and the REST plumbing every call shares.
 *
 * Inbound (gateway.c): the Gateway v10 websocket, JSON encoding, no
 * compression.  Each MESSAGE_CREATE from a person becomes one fd_msg; the
 * message's snowflake is the event id the core dedupes on, so a Resume
 * that replays events never answers twice.  Outbound (send.c): create
 * message (with message_reference for replies), DMs through
 * POST /users/@me/channels, delete for hide.
 *
 * Rate limits: Discord's per-route buckets are announced in X-RateLimit-*
 * response headers, which the host does not hand to plugins; so holds are
 * learnt from 429 answers (body `retry_after`, `global`) and every send on
 * a held route (or any route, for a global hold) waits in the plugin until
 * the hold passes instead of provoking another 429.
 *
 * Lifetimes: every HTTP call carries a `struct call` listed in its channel.
 * A done callback that finds its channel gone (cancelled, or detached by
 * stop()) only frees its context and reports nothing.  The host drops the
 * channel's timers and closes its websockets before stop() runs, so stop()
 * never touches them.
 *
 * The token is sent only in the Authorization header and in Identify/Resume;
 * neither is ever logged.  Threading: the loop thread only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "discord.h"

const struct fd_host *dsc_host;

/* ---- helpers ------------------------------------------------------------- */

int64_t dsc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *dsc_json_str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

const cJSON *dsc_json_obj(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsObject(v) ? v : NULL;
}

/* An integer sent as a JSON number, refused (not rounded) when it is not
 * one a double holds exactly. */
bool dsc_json_int64(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return false;
    double x = v->valuedouble;
    if (!(x >= -9007199254740992.0 && x <= 9007199254740992.0))
        return false;
    if (x != (double)(int64_t)x)
        return false;
    *out = (int64_t)x;
    return true;
}

/* Discord ids are 64-bit snowflakes sent as decimal strings.  Checking the
 * form keeps anything else out of URL paths and JSON we build. */
bool dsc_is_snowflake(const char *s)
{
    if (!s)
        return false;
    size_t n = strspn(s, "0123456789");
    return n >= 1 && n <= SNOWFLAKE_MAX && s[n] == '\0';
}

int dsc_random(int n)
{
    char hex[9];
    if (n <= 1 || H->random_hex(hex, 4) < 0)
        return 0;
    unsigned long v = strtoul(hex, NULL, 16);
    return (int)(v % (unsigned long)n);
}

int dsc_utf8_prefix(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

/* ---- rate-limit holds ---------------------------------------------------- */

int64_t dsc_hold_until(struct dsc *d, const char *route)
{
    int64_t until = d->global_until;
    for (size_t i = 0; i < MAX_HOLDS; i++)
        if (d->holds[i].until > until && !strcmp(d->holds[i].route, route))
            until = d->holds[i].until;
    return until;
}

void dsc_hold_set(struct dsc *d, const char *route, bool global, int ms)
{
    /* +1: the clock reads whole milliseconds; never release a hold early. */
    int64_t until = dsc_now_ms() + ms + 1;
    if (global) {
        if (until > d->global_until)
            d->global_until = until;
        return;
    }
    struct hold *slot = NULL;
    for (size_t i = 0; i < MAX_HOLDS && !slot; i++)
        if (!strcmp(d->holds[i].route, route))
            slot = &d->holds[i];
    if (!slot) { /* else the slot whose hold ends first (or never held) */
        slot = &d->holds[0];
        for (size_t i = 1; i < MAX_HOLDS; i++)
            if (d->holds[i].until < slot->until)
                slot = &d->holds[i];
        slot->until = 0;
        snprintf(slot->route, sizeof slot->route, "%s", route);
    }
    if (until > slot->until)
        slot->until = until;
}

/* ---- REST calls ---------------------------------------------------------- */

static void call_free(struct call *c)
{
    if (c) {
        dsend_free(c->s);
        free(c);
    }
}

static void on_http_done(void *ud, const struct fd_http_response *r)
{
    struct call *c = ud;
    struct dsc *d = c->d;
    if (r->cancelled) {
        call_free(c); /* the channel stops: nothing to report */
        return;
    }
    if (c->kind == CALL_SEND)
        dsc_send_done(d, c, r);
    else
        dsc_gw_http_done(d, c->kind, r);
    call_free(c);
}

int dsc_rest(struct dsc *d, struct call *c, const char *method,
             const char *path, const char *body)
{
    size_t n = strlen(d->api) + strlen(path) + 1;
    char *url = malloc(n);
    if (!url)
        return -1;
    snprintf(url, n, "%s%s", d->api, path);
    const char *headers[] = {d->auth, USER_AGENT, NULL};
    struct fd_http_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = API_HTTP_MS,
    };
    c->d = d;
    struct fd_http_call *http = H->http(d->ch, &req, on_http_done, c);
    free(url);
    return http ? 0 : -1;
}

void dsc_answer_parse(const struct fd_http_response *r, struct answer *a)
{
    memset(a, 0, sizeof *a);
    if (r->body && r->body_len)
        a->doc = cJSON_ParseWithLength(r->body, r->body_len);
    if (cJSON_IsObject(a->doc)) {
        int64_t code;
        if (dsc_json_int64(a->doc, "code", &code) && code > 0 &&
            code < 10000000)
            a->code = (int)code;
        a->message = dsc_json_str(a->doc, "message");
        a->global =
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a->doc, "global"));
    }
    if (r->status != 429)
        return;
    /* retry_after is in seconds with decimals; round up, so we never come
     * back a moment too early and earn another 429. */
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(a->doc, "retry_after");
    double s = -1;
    if (cJSON_IsNumber(ra) && ra->valuedouble >= 0)
        s = ra->valuedouble;
    else if (r->retry_after_s >= 0)
        s = r->retry_after_s;
    if (s < 0)
        s = 1; /* a 429 without a wait: a second, not a hammering */
    double ms = ceil(s * 1000.0);
    a->wait_ms = ms > MAX_WAIT_MS ? MAX_WAIT_MS : ms < 1 ? 1 : (int)ms;
}

void dsc_describe(char *out, size_t len, const struct fd_http_response *r,
                  const struct answer *a)
{
    if (r->status == 0)
        snprintf(out, len, "no answer (%.100s)", r->error ? r->error : "?");
    else if (a->code || a->message)
        snprintf(out, len, "HTTP %d (%d: %.160s)", r->status, a->code,
                 a->message ? a->message : "?");
    else
        snprintf(out, len, "HTTP %d", r->status);
}

/* ---- configuration, start, stop ------------------------------------------ */

/* Checks what the key table cannot express.  0, or -1 with err set. */
static int validate(struct fd_channel *ch, char *err, size_t len)
{
    const char *token = H->conf(ch, "token");
    const char *api = H->conf(ch, "api_url");
    size_t tl = token ? strlen(token) : 0;
    /* The token goes into a header line and a JSON string. */
    if (tl == 0 || tl > 200 ||
        strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789._-") != tl) {
        snprintf(err, len,
                 "token: expected the bot token from the Developer Portal "
                 "(letters, digits, '.', '_', '-'; without \"Bot \")");
        return -1;
    }
    if (api && (strlen(api) > 400 || strpbrk(api, "?# \t\r\n"))) {
        snprintf(
            err, len,
            "api_url: a base URL without query or fragment, like " API_DEFAULT);
        return -1;
    }
    if (api && strncmp(api, "https://", 8) && strncmp(api, "http://", 7)) {
        snprintf(err, len, "api_url: must start with https:// or http://");
        return -1;
    }
    return 0;
}

static int dsc_check(struct fd_channel *ch, char *err, size_t len)
{
    return validate(ch, err, len) < 0 ? FD_EINVAL : FD_OK;
}

static void dsc_free(struct dsc *d)
{
    if (!d)
        return;
    free(d->api);
    free(d->token);
    free(d->auth);
    free(d->gateway_url);
    free(d->resume_url);
    free(d->session_id);
    free(d);
}

static int dsc_start(struct fd_channel *ch)
{
    char err[256];
    if (validate(ch, err, sizeof err) < 0) {
        H->log(ch, FD_LOG_ERROR, "%s", err);
        return FD_EINVAL;
    }
    struct dsc *d = calloc(1, sizeof *d);
    if (!d)
        return FD_ENOMEM;
    d->ch = ch;
    const char *api = H->conf(ch, "api_url");
    if (!api)
        api = API_DEFAULT;
    size_t al = strlen(api);
    while (al > 0 && api[al - 1] == '/')
        al--;
    d->api = strndup(api, al);
    const char *token = H->conf(ch, "token");
    d->token = strdup(token);
    size_t n = strlen("Authorization: Bot ") + strlen(token) + 1;
    d->auth = malloc(n);
    if (d->auth)
        snprintf(d->auth, n, "Authorization: Bot %s", token);
    if (!d->api || !d->token || !d->auth) {
        dsc_free(d);
        return FD_ENOMEM;
    }
    H->set_data(ch, d);
    dsc_gw_load(d);
    H->log(ch, FD_LOG_INFO, "starting (gateway v10, intents %d%s)", INTENTS,
           d->session_id ? ", resuming the last session" : "");
    dsc_gw_start(d);
    return FD_OK;
}

static void dsc_stop(struct fd_channel *ch)
{
    struct dsc *d = H->get_data(ch);
    if (!d)
        return;
    /* The host cancelled this channel's calls already (their callbacks
     * freed their contexts). */
    dsc_deferred_free(d); /* their outbox entries stay pending */
    H->set_data(ch, NULL);
    dsc_free(d);
}

static int dsc_init(const struct fd_host *host)
{
    if (!host || host->abi != FD_PLUGIN_ABI ||
        host->size < sizeof(struct fd_host))
        return FD_ERR;
    H = host;
    return FD_OK;
}

static const struct fd_key dsc_keys[] = {
    {.name = "token",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_REQUIRED | FD_KEY_SECRET,
     .help = "bot token (Developer Portal -> your app -> Bot), without "
             "\"Bot \""},
    {.name = "api_url",
     .type = FD_KEY_URL,
     .def = API_DEFAULT,
     .help = "REST API base; the gateway URL comes from GET /gateway/bot "
             "there"},
    {.name = NULL},
};

FD_EXPORT const struct fd_plugin frontdesk_plugin = {
    FD_PLUGIN_INIT,
    .name = "discord",
    .version = "1.0",
    /* Threads are channels on Discord: a question in a thread is answered
     * in it.  DMs through POST /users/@me/channels.  Hide deletes, which
     * works where the bot has Manage Messages (a refusal is logged). */
    .caps = FD_CAP_THREADS | FD_CAP_DM | FD_CAP_HIDE,
    .keys = dsc_keys,
    .init = dsc_init,
    .check = dsc_check,
    .start = dsc_start,
    .stop = dsc_stop,
    .send = dsc_send,
    .ws_event = dsc_ws_event,
    /* The published global limit is 50 requests/s per bot; per-channel
     * buckets are dynamic (headers and 429s), handled in the plugin. */
    .rate_per_s = 40,
    .chat_per_min = 0,
    .dm_per_min = 0,
};
