/*
 * slack.c - the Slack plugin (one Slack app in one workspace per channel):
 * the plugin table, configuration, start/stop, the Web API plumbing every
 * call shares, and the start-up chain.
 *
 * Inbound, two modes:
 *   mode = socket (default)  Socket Mode: apps.connections.open with the
 *                            app-level token hands out a single-use wss://
 *                            URL; Slack sends hello, then envelopes, each
 *                            acked with its envelope_id (socket.c).
 *   mode = events            the Events API: Slack POSTs to
 *                            /hooks/<channel>, signed with the signing
 *                            secret (v0, 5-minute window) (inbound.c).
 * Both hand the same payload to inbound.c, which turns message events into
 * fd_msg.  Outbound (send.c): chat.postMessage (in thread for public
 * answers), conversations.open for DMs.
 *
 * Start-up: auth.test tells the bot's own user id and bot id (so the bot
 * never answers itself), then Socket Mode connects.  Each step is retried
 * with jittered backoff, or after the platform's Retry-After.
 *
 * Lifetimes: every HTTP call carries a `struct call` listed in its channel;
 * a done callback that finds its channel gone (cancelled) only frees its
 * context.  Timers and websocket connections are dropped by the host when
 * the channel stops, before stop() runs.
 *
 * Tokens go into Authorization headers only and are never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slack.h"

const struct fd_host *sk_host;

/* ---- helpers --------------------------------------------------------------
 */

const char *sk_str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

const cJSON *sk_obj(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsObject(v) ? v : NULL;
}

bool sk_is_id(const char *s, size_t max)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    return n >= 1 && n < max &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789._-") == n;
}

int64_t sk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- calls ------------------------------------------------------------------
 */

static void call_free(struct call *c)
{
    if (c) {
        sk_ssend_free(c->s);
        free(c);
    }
}

static void on_http_done(void *ud, const struct fd_http_response *r);

int sk_api_call(struct sk *sk, struct call *c, const char *method, char *body,
                bool app)
{
    size_t n = strlen(sk->api) + strlen(method) + 2;
    char *url = malloc(n);
    if (!url) {
        free(body);
        return -1;
    }
    snprintf(url, n, "%s/%s", sk->api, method);
    /* Methods without arguments go as an empty form POST, like the SDKs
     * send them; the rest as JSON. */
    const char *headers[] = {
        app ? sk->auth_app : sk->auth_bot,
        body ? "Content-Type: application/json; charset=utf-8"
             : "Content-Type: application/x-www-form-urlencoded",
        NULL,
    };
    struct fd_http_request req = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body ? body : "",
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = API_HTTP_MS,
    };
    c->sk = sk;
    struct fd_http_call *http = H->http(sk->ch, &req, on_http_done, c);
    free(url);
    free(body);
    return http ? 0 : -1;
}

/* Errors Slack answers with HTTP 200 that say "try again later". */
static bool transient_error(const char *e)
{
    static const char *const list[] = {
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
        NULL,
    };
    for (const char *const *p = list; e && *p; p++)
        if (strcmp(e, *p) == 0)
            return true;
    return false;
}

void sk_answer_parse(const struct fd_http_response *r, struct answer *a)
{
    memset(a, 0, sizeof *a);
    if (r->status > 0 && r->body && r->body_len)
        a->doc = cJSON_ParseWithLength(r->body, r->body_len);
    bool body_ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a->doc, "ok"));
    a->error = sk_str(a->doc, "error");
    a->ok = r->status >= 200 && r->status < 300 && body_ok;
    if (r->retry_after_s >= 0)
        a->wait_ms = (r->retry_after_s > 3600 ? 3600 : r->retry_after_s) * 1000;
    if (!a->ok)
        a->transient =
            r->status == 0 || r->status == 429 || r->status == 408 ||
            r->status >= 500 || transient_error(a->error) ||
            /* a 2xx that is not a Web API answer: a proxy */
            (r->status >= 200 && r->status < 300 && !cJSON_IsObject(a->doc));
    if (r->status == 429 && !a->wait_ms)
        a->wait_ms = 1000; /* 429 without Retry-After: at least a second */
}

void sk_describe(char *out, size_t len, const struct fd_http_response *r,
                 const struct answer *a)
{
    if (r->status == 0)
        snprintf(out, len, "no answer (%.100s)", r->error ? r->error : "?");
    else if (a->error)
        snprintf(out, len, "HTTP %d: %.100s", r->status, a->error);
    else
        snprintf(out, len, "HTTP %d%s", r->status,
                 cJSON_IsObject(a->doc) ? "" : " (not a Web API answer)");
}

/* ---- the start-up chain: auth.test --------------------------------------- */

static void on_ctl_timer(void *ud)
{
    struct sk *sk = ud;
    sk->ctl_timer = NULL; /* the host freed it */
    sk_ctl_step(sk);
}

void sk_ctl_step(struct sk *sk)
{
    if (sk->phase != PH_AUTH)
        return;
    struct call *c = calloc(1, sizeof *c);
    if (c)
        c->kind = CALL_AUTH;
    if (!c || sk_api_call(sk, c, "auth.test", NULL, false) < 0) {
        free(c);
        sk->failures++;
        int ms = H->backoff_ms(sk->failures, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
        H->log(sk->ch, FD_LOG_WARN, "auth.test could not start; retry in %d ms",
               ms);
        sk->ctl_timer = H->timer_add(sk->ch, ms, on_ctl_timer, sk);
    }
}

/* Errors of a token Slack refused: fixing them takes a human. */
static bool auth_error(const char *e)
{
    static const char *const list[] = {
        "invalid_auth",      "not_authed",
        "account_inactive",  "token_revoked",
        "token_expired",     "not_allowed_token_type",
        "missing_scope",     "no_permission",
        "ekm_access_denied", NULL,
    };
    for (const char *const *p = list; e && *p; p++)
        if (strcmp(e, *p) == 0)
            return true;
    return false;
}

static void copy_id(char *dst, const char *src)
{
    if (sk_is_id(src, ID_MAX))
        snprintf(dst, ID_MAX, "%s", src);
    else
        dst[0] = '\0';
}

static void auth_done(struct sk *sk, const struct fd_http_response *r)
{
    struct answer a;
    char why[200];
    sk_answer_parse(r, &a);
    if (a.ok) {
        copy_id(sk->bot_user, sk_str(a.doc, "user_id"));
        copy_id(sk->bot_id, sk_str(a.doc, "bot_id"));
        copy_id(sk->team_id, sk_str(a.doc, "team_id"));
        sk->failures = 0;
        sk->phase = PH_READY;
        H->log(sk->ch, FD_LOG_INFO,
               "signed in as bot user %s (bot %s) in team %s",
               sk->bot_user[0] ? sk->bot_user : "?",
               sk->bot_id[0] ? sk->bot_id : "?",
               sk->team_id[0] ? sk->team_id : "?");
        cJSON_Delete(a.doc);
        if (sk->socket_mode)
            sk_sock_begin(sk);
        return;
    }
    sk_describe(why, sizeof why, r, &a);
    sk->failures++;
    bool refused = !a.transient && auth_error(a.error);
    int ms = a.wait_ms ? a.wait_ms
                       : H->backoff_ms(sk->failures, BACKOFF_MIN_MS,
                                       refused ? AUTH_BACKOFF_MAX_MS
                                               : BACKOFF_MAX_MS);
    H->log(sk->ch, refused ? FD_LOG_ERROR : FD_LOG_WARN,
           "auth.test failed: %s%s; retry in %.1f s", why,
           refused ? " (check `token`: the bot token, xoxb-)" : "",
           ms / 1000.0);
    cJSON_Delete(a.doc);
    sk->ctl_timer = H->timer_add(sk->ch, ms, on_ctl_timer, sk);
}

/* ---- every call's completion ------------------------------------------------
 */

static void on_http_done(void *ud, const struct fd_http_response *r)
{
    struct call *c = ud;
    struct sk *sk = c->sk;
    if (r->cancelled) {
        call_free(c); /* the channel stops: nothing to report */
        return;
    }
    switch (c->kind) {
    case CALL_AUTH:
        auth_done(sk, r);
        break;
    case CALL_OPEN:
        sk->opening = false;
        sk_sock_open_done(sk, r);
        break;
    case CALL_SEND:
    case CALL_DMOPEN:
        sk_send_done(sk, c, r);
        break;
    }
    call_free(c);
}

/* ---- configuration, start, stop ------------------------------------------ */

/* A token as Slack issues them: letters, digits, '-', '.', '_' (rotating
 * tokens look like "xoxe.xoxb-1-..."), nothing that could break a header. */
static bool token_chars_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    return n >= 1 && n < 512 &&
           strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789-._") == n;
}

/* Checks values the key table cannot express.  0, or -1 with err set.
 * The usual mix-ups (a user or app token as `token`, a bot token as
 * `app_token`) are errors; other prefixes only get a warning at start. */
static int validate(struct fd_channel *ch, char *err, size_t len)
{
    const char *mode = H->conf(ch, "mode");
    bool events = mode && strcmp(mode, "events") == 0;
    const char *token = H->conf(ch, "token");
    const char *app = H->conf(ch, "app_token");
    const char *secret = H->conf(ch, "signing_secret");
    if (!token_chars_ok(token) || strncmp(token, "xoxp-", 5) == 0 ||
        strncmp(token, "xapp-", 5) == 0) {
        snprintf(err, len,
                 "token: expected the app's bot token (xoxb-..., OAuth & "
                 "Permissions), not a user or app-level token");
        return -1;
    }
    if (!events && !app) {
        snprintf(err, len,
                 "app_token: required with mode = socket (an app-level token "
                 "xapp-... with connections:write)");
        return -1;
    }
    if (app && (!token_chars_ok(app) || strncmp(app, "xox", 3) == 0)) {
        snprintf(err, len,
                 "app_token: expected an app-level token (xapp-..., Basic "
                 "Information > App-Level Tokens), not a bot or user token");
        return -1;
    }
    if (events && (!secret || !*secret)) {
        snprintf(err, len,
                 "signing_secret: required with mode = events (Basic "
                 "Information > Signing Secret)");
        return -1;
    }
    if (secret && (strlen(secret) > 256 || strpbrk(secret, " \t\r\n"))) {
        snprintf(err, len, "signing_secret: not a signing secret");
        return -1;
    }
    return 0;
}

static int sk_check(struct fd_channel *ch, char *err, size_t len)
{
    return validate(ch, err, len) < 0 ? FD_EINVAL : FD_OK;
}

static char *bearer(const char *token)
{
    size_t n = strlen("Authorization: Bearer ") + strlen(token) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "Authorization: Bearer %s", token);
    return s;
}

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

static void sk_free(struct sk *sk)
{
    if (!sk)
        return;
    free(sk->api);
    wipe_free(sk->auth_bot);
    wipe_free(sk->auth_app);
    wipe_free(sk->signing_secret);
    free(sk);
}

static int sk_start(struct fd_channel *ch)
{
    char err[256];
    if (validate(ch, err, sizeof err) < 0) {
        H->log(ch, FD_LOG_ERROR, "%s", err);
        return FD_EINVAL;
    }
    struct sk *sk = calloc(1, sizeof *sk);
    if (!sk)
        return FD_ENOMEM;
    sk->ch = ch;
    const char *mode = H->conf(ch, "mode");
    sk->socket_mode = !(mode && strcmp(mode, "events") == 0);
    const char *api = H->conf(ch, "api_url");
    if (!api)
        api = "https://slack.com/api";
    size_t al = strlen(api);
    while (al > 0 && api[al - 1] == '/')
        al--;
    sk->api = strndup(api, al);
    sk->auth_bot = bearer(H->conf(ch, "token"));
    bool ok = sk->api && sk->auth_bot;
    if (sk->socket_mode)
        ok = ok && (sk->auth_app = bearer(H->conf(ch, "app_token")));
    const char *secret = H->conf(ch, "signing_secret");
    if (secret)
        ok = ok && (sk->signing_secret = strdup(secret));
    if (!ok) {
        sk_free(sk);
        return FD_ENOMEM;
    }
    H->set_data(ch, sk);
    if (!strstr(H->conf(ch, "token"), "xoxb-"))
        H->log(ch, FD_LOG_WARN,
               "token does not look like a bot token "
               "(xoxb-...); trying it anyway");
    if (sk->socket_mode && !strstr(H->conf(ch, "app_token"), "xapp-"))
        H->log(ch, FD_LOG_WARN,
               "app_token does not look like an app-level "
               "token (xapp-...); trying it anyway");
    H->log(ch, FD_LOG_INFO, "starting in %s mode",
           sk->socket_mode ? "Socket Mode" : "Events API (webhook)");
    sk->phase = PH_AUTH;
    sk_ctl_step(sk);
    return FD_OK;
}

static void sk_stop(struct fd_channel *ch)
{
    struct sk *sk = H->get_data(ch);
    if (!sk)
        return;
    /* The host cancelled our calls (their callbacks freed their contexts)
     * and dropped our timers and websockets before calling stop. */
    sk_sock_stop(sk);
    H->set_data(ch, NULL);
    sk_free(sk);
}

static int sk_init(const struct fd_host *host)
{
    if (!host || host->abi != FD_PLUGIN_ABI ||
        host->size < sizeof(struct fd_host))
        return FD_ERR;
    H = host;
    return FD_OK;
}

static const struct fd_key sk_keys[] = {
    {.name = "token",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_REQUIRED | FD_KEY_SECRET,
     .help = "bot token (xoxb-...) for the Web API"},
    {.name = "app_token",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_SECRET,
     .help = "app-level token (xapp-..., scope connections:write); "
             "required with mode = socket"},
    {.name = "signing_secret",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_SECRET,
     .help = "signing secret that verifies Events API requests; required "
             "with mode = events"},
    {.name = "mode",
     .type = FD_KEY_ENUM,
     .def = "socket",
     .choices = "socket|events",
     .help = "socket: Socket Mode websocket; events: Slack POSTs to "
             "<public_url>/hooks/<channel>"},
    {.name = "api_url",
     .type = FD_KEY_URL,
     .def = "https://slack.com/api",
     .help = "Web API base URL (the Socket Mode URL comes from "
             "apps.connections.open there)"},
    {.name = NULL},
};

FD_EXPORT const struct fd_plugin frontdesk_plugin = {
    FD_PLUGIN_INIT,
    .name = "slack",
    .version = "1.0",
    /* No FD_CAP_HIDE: a bot token can delete only the bot's own messages
     * (chat.delete), never a user's post. */
    .caps = FD_CAP_THREADS | FD_CAP_DM,
    .keys = sk_keys,
    .init = sk_init,
    .check = sk_check,
    .start = sk_start,
    .stop = sk_stop,
    .webhook = sk_webhook,
    .send = sk_send,
    .ws_event = sk_ws_event,
    /* chat.postMessage: about one message per second per conversation,
     * short bursts allowed; the workspace-wide limit has no published
     * figure (429 + Retry-After enforces it). */
    .rate_per_s = 0,
    .chat_per_min = 60,
    .dm_per_min = 60,
};
