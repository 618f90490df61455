/*
 * telegram.c - the Telegram Bot API plugin (one bot per channel): the plugin
 * table, configuration, start/stop, and the plumbing every call shares.
 *
 * Inbound (inbound.c): `getUpdates` long polling (mode = poll) or webhook
 * POSTs at /hooks/<channel> checked against `X-Telegram-Bot-Api-Secret-Token`
 * (mode = webhook).  Each update becomes one fd_msg; its update_id is the
 * event id the core dedupes on.  Outbound (send.c): sendMessage for replies
 * and DMs (split at 4096 UTF-16 units), deleteMessage to hide.
 *
 * Lifetimes: every HTTP call carries a `struct call` listed in its channel.
 * A done callback that finds its channel gone (cancelled, or detached by
 * stop()) only frees its context and reports nothing.  Timers are dropped
 * by the host when the channel stops, so their callbacks may use the
 * channel state freely.
 *
 * The token is part of every request URL (/bot<token>/<method>): URLs are
 * never logged.  Threading: the loop thread only, like every plugin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telegram.h"

const struct fd_host *tg_host;

/* ---- JSON helpers ------------------------------------------------------- */

/* An integer Telegram sends as a JSON number.  Ids have at most 52
 * significant bits, so a double holds them exactly; anything that is not an
 * integer within 2^53 is refused rather than rounded. */
bool tg_json_int64(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0))
        return false;
    if (d != (double)(int64_t)d)
        return false;
    *out = (int64_t)d;
    return true;
}

const char *tg_json_str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

const cJSON *tg_json_obj(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsObject(v) ? v : NULL;
}

/* A decimal integer as JSON allows it: -?(0|[1-9][0-9]*), at most 19
 * digits, so it can go into a body verbatim without passing through a
 * double. */
bool tg_is_json_int(const char *s)
{
    if (!s)
        return false;
    if (*s == '-')
        s++;
    size_t n = strspn(s, "0123456789");
    return n >= 1 && n <= 19 && s[n] == '\0' && (s[0] != '0' || n == 1);
}

bool tg_in_set(const char *s, const char *set, size_t min, size_t max)
{
    size_t n = strlen(s);
    return n >= min && n <= max && strspn(s, set) == n;
}

/* ---- calls --------------------------------------------------------------- */

static void call_free(struct call *c)
{
    if (c) {
        tg_tsend_free(c->s);
        free(c);
    }
}

static void on_http_done(void *ud, const struct fd_http_response *r);

int tg_api_call(struct tg *t, struct call *c, const char *method, char *body,
                int timeout_ms)
{
    size_t n = strlen(t->base) + strlen(method) + 2;
    char *url = malloc(n);
    if (!url || !body) {
        free(url);
        free(body);
        return -1;
    }
    snprintf(url, n, "%s/%s", t->base, method);
    struct fd_http_request req = {
        .method = "POST",
        .url = url,
        .body = body,
        .body_len = strlen(body),
        .timeout_ms = timeout_ms,
    };
    c->tg = t;
    struct fd_http_call *http = H->http(t->ch, &req, on_http_done, c);
    free(url);
    free(body);
    return http ? 0 : -1;
}

void tg_answer_parse(const struct fd_http_response *r, struct answer *a)
{
    memset(a, 0, sizeof *a);
    a->retry_after_s = -1;
    if (r->body && r->body_len)
        a->doc = cJSON_ParseWithLength(r->body, r->body_len);
    if (!cJSON_IsObject(a->doc))
        return;
    a->ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a->doc, "ok"));
    a->result = cJSON_GetObjectItemCaseSensitive(a->doc, "result");
    a->description = tg_json_str(a->doc, "description");
    const cJSON *p = tg_json_obj(a->doc, "parameters");
    int64_t v;
    if (p && tg_json_int64(p, "retry_after", &v) && v >= 0)
        a->retry_after_s = v > 3600 ? 3600 : v;
    if (p && tg_json_int64(p, "migrate_to_chat_id", &v))
        a->migrate_to = v;
}

int tg_answer_wait_ms(const struct answer *a, const struct fd_http_response *r)
{
    if (a->retry_after_s >= 0)
        return (int)a->retry_after_s * 1000;
    if (r->retry_after_s >= 0)
        return (r->retry_after_s > 3600 ? 3600 : r->retry_after_s) * 1000;
    return 0;
}

void tg_describe(char *out, size_t len, const struct fd_http_response *r,
                 const struct answer *a)
{
    if (r->status == 0)
        snprintf(out, len, "no answer (%.100s)", r->error ? r->error : "?");
    else if (a->description)
        snprintf(out, len, "HTTP %d: %.200s", r->status, a->description);
    else
        snprintf(out, len, "HTTP %d%s", r->status,
                 cJSON_IsObject(a->doc) ? "" : " (not a Bot API answer)");
}

/* ---- every call's completion ------------------------------------------- */

static void on_http_done(void *ud, const struct fd_http_response *r)
{
    struct call *c = ud;
    struct tg *t = c->tg;
    if (r->cancelled) {
        call_free(c); /* the channel stops: nothing to report */
        return;
    }
    if (c->kind == CALL_SEND)
        tg_send_done(t, c, r);
    else
        tg_ctl_done(t, r);
    call_free(c);
}

/* ---- configuration, start, stop -------------------------------------- */

/* Checks values the key table cannot express.  0, or -1 with err set. */
static int validate(struct fd_channel *ch, char *err, size_t len)
{
    const char *token = H->conf(ch, "token");
    const char *mode = H->conf(ch, "mode");
    const char *secret = H->conf(ch, "webhook_secret");
    /* The token goes into the URL path: no character may change the URL. */
    if (!token || !tg_in_set(token, SECRET_CHARS ":", 1, 200)) {
        snprintf(err, len,
                 "token: expected a bot token like 123456:ABC-def "
                 "(letters, digits, ':', '_', '-')");
        return -1;
    }
    if (secret && !tg_in_set(secret, SECRET_CHARS, 1, 256)) {
        snprintf(err, len,
                 "webhook_secret: must be 1-256 characters of "
                 "A-Z a-z 0-9 _ -");
        return -1;
    }
    if (mode && strcmp(mode, "webhook") == 0) {
        const char *pub = H->core_conf("public_url");
        if (!pub ||
            (strncmp(pub, "https://", 8) && strncmp(pub, "http://", 7))) {
            snprintf(err, len,
                     "mode: webhook needs [core] public_url "
                     "(the https:// address Telegram calls)");
            return -1;
        }
    }
    return 0;
}

static int tg_check(struct fd_channel *ch, char *err, size_t len)
{
    return validate(ch, err, len) < 0 ? FD_EINVAL : FD_OK;
}

/* public_url + "/hooks/" + the channel name, percent-encoded. */
static char *make_hook_url(const char *pub, const char *name)
{
    size_t pl = strlen(pub);
    while (pl > 0 && pub[pl - 1] == '/')
        pl--;
    size_t n = pl + strlen("/hooks/") + 3 * strlen(name) + 1;
    char *s = malloc(n);
    if (!s)
        return NULL;
    int w = snprintf(s, n, "%.*s/hooks/", (int)pl, pub);
    size_t at = (size_t)w;
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (strchr(SECRET_CHARS ".~", *p) && *p) {
            s[at++] = (char)*p;
        } else {
            s[at++] = '%';
            s[at++] = hex[*p >> 4];
            s[at++] = hex[*p & 15];
        }
    }
    s[at] = '\0';
    return s;
}

static void tg_free(struct tg *t)
{
    if (!t)
        return;
    free(t->base);
    free(t->secret);
    free(t->hook_url);
    free(t->username);
    free(t);
}

static int tg_start(struct fd_channel *ch)
{
    char err[256];
    if (validate(ch, err, sizeof err) < 0) {
        H->log(ch, FD_LOG_ERROR, "%s", err);
        return FD_EINVAL;
    }
    struct tg *t = calloc(1, sizeof *t);
    if (!t)
        return FD_ENOMEM;
    t->ch = ch;
    const char *mode = H->conf(ch, "mode");
    t->webhook = mode && strcmp(mode, "webhook") == 0;
    const char *api = H->conf(ch, "api_url");
    if (!api)
        api = "https://api.telegram.org";
    size_t al = strlen(api);
    while (al > 0 && api[al - 1] == '/')
        al--;
    const char *token = H->conf(ch, "token");
    size_t n = al + strlen("/bot") + strlen(token) + 1;
    t->base = malloc(n);
    if (t->base)
        snprintf(t->base, n, "%.*s/bot%s", (int)al, api, token);
    const char *secret = H->conf(ch, "webhook_secret");
    if (secret) {
        t->secret = strdup(secret);
    } else if ((t->secret = malloc(49))) {
        /* 24 random bytes, hex: inside Telegram's alphabet and length. */
        if (H->random_hex(t->secret, 24) < 0) {
            H->log(ch, FD_LOG_ERROR, "no randomness for webhook_secret");
            tg_free(t);
            return FD_ERR;
        }
    }
    if (t->webhook)
        t->hook_url =
            make_hook_url(H->core_conf("public_url"), H->channel_name(ch));
    if (!t->base || !t->secret || (t->webhook && !t->hook_url)) {
        tg_free(t);
        return FD_ENOMEM;
    }
    H->set_data(ch, t);
    H->log(ch, FD_LOG_INFO, "starting in %s mode",
           t->webhook ? "webhook" : "poll");
    t->phase = PH_ME;
    tg_ctl_step(t);
    return FD_OK;
}

static void tg_stop(struct fd_channel *ch)
{
    struct tg *t = H->get_data(ch);
    if (!t)
        return;
    /* The host cancelled this channel's calls before (their callbacks
     * freed their contexts) and drops its timers after. */
    H->set_data(ch, NULL);
    tg_free(t);
}

static int tg_init(const struct fd_host *host)
{
    if (!host || host->abi != FD_PLUGIN_ABI ||
        host->size < sizeof(struct fd_host))
        return FD_ERR;
    H = host;
    return FD_OK;
}

static const struct fd_key tg_keys[] = {
    {.name = "token",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_REQUIRED | FD_KEY_SECRET,
     .help = "bot token from @BotFather"},
    {.name = "mode",
     .type = FD_KEY_ENUM,
     .def = "poll",
     .choices = "poll|webhook",
     .help = "poll: getUpdates long polling; webhook: Telegram POSTs to "
             "<public_url>/hooks/<channel>"},
    {.name = "webhook_secret",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_SECRET,
     .help = "secret_token Telegram sends with each webhook (1-256 of "
             "A-Z a-z 0-9 _ -); random on every start when absent"},
    {.name = "api_url",
     .type = FD_KEY_URL,
     .def = "https://api.telegram.org",
     .help = "Bot API base URL"},
    {.name = NULL},
};

FD_EXPORT const struct fd_plugin frontdesk_plugin = {
    FD_PLUGIN_INIT,
    .name = "telegram",
    .version = "1.0",
    .caps = FD_CAP_THREADS | FD_CAP_DM | FD_CAP_HIDE,
    .keys = tg_keys,
    .init = tg_init,
    .check = tg_check,
    .start = tg_start,
    .stop = tg_stop,
    .webhook = tg_webhook,
    .send = tg_send,
    /* Telegram's bot FAQ: about 30 messages/s overall, 20/min into one
     * group, about one per second into one private chat. */
    .rate_per_s = 30,
    .chat_per_min = 20,
    .dm_per_min = 60,
};
