/*
 * gateway.c - the Discord Gateway v10 connection of one channel.
 *
 * The life of a session:
 *   GET /gateway/bot (the URL, and the Identify budget) -> connect
 *   -> Hello (heartbeat_interval) -> Identify (op 2) -> READY (session_id,
 *   resume_gateway_url, our own user id) -> dispatches, each with a
 *   sequence number `s`.
 * A lost connection is resumed: connect to resume_gateway_url, Resume
 * (op 6) with the session id and the last `s` handled; Discord replays what
 * was missed, then RESUMED.  The same on op 7 (Reconnect), on op 9 with
 * d=true, and on a zombie connection (a heartbeat not ACKed before the next
 * one is due).  op 9 with d=false, or close codes 4007/4009, start a new
 * session (after 1-5 s, as Discord asks).  Close codes 4004 and 4010-4014
 * stop the channel's gateway with one clear log line.
 *
 * Only one connection is current (d->conn); events of any other (one we
 * gave up on, or a browser that upgraded at /hooks/<channel>) are ignored.
 * When we close a connection, the next one starts on its CLOSED event, or
 * after CLOSE_GUARD_MS when none comes.
 *
 * Heartbeats: the first after interval * random(0..1), then every
 * interval, carrying the last `s`.  The sequence only moves past an event
 * the core recorded and committed (host->commit); one it could not record
 * closes the connection and resumes from before it, so Discord sends it
 * again.
 *
 * The session (id, resume URL, last `s`) is kept in the channel's key/value
 * store on READY and with each heartbeat, so a restart within a few minutes
 * resumes and what was said meanwhile is replayed, not lost.
 *
 * The host's FD_WS_CLOSED event carries a reason text, not the close code.
 * A code found in that text is used; otherwise a connection closed after
 * Identify/Resume and before READY is treated as a refusal: the token is
 * checked over REST (401 = 4004, stop), and after EARLY_CLOSES such
 * refusals in a row the gateway waits SUSPECT_WAIT_MS between tries (the
 * likely cause, disallowed intents, is logged), so a refused bot never
 * loops through Discord's 1000 Identify calls a day.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "discord.h"

#define SESSION_KEY "_discord.gateway"

static void gw_begin(struct dsc *d);
static void gw_connect(struct dsc *d);

/* ---- timers -------------------------------------------------------------- */

static void gw_timer_cancel(struct dsc *d)
{
    if (d->gw_timer) {
        H->timer_cancel(d->gw_timer);
        d->gw_timer = NULL;
    }
}

static void hb_cancel(struct dsc *d)
{
    if (d->hb_timer) {
        H->timer_cancel(d->hb_timer);
        d->hb_timer = NULL;
    }
    d->hb_awaiting_ack = false;
}

static void gw_later(struct dsc *d, int ms, fd_timer_fn fn)
{
    gw_timer_cancel(d);
    d->gw_timer = H->timer_add(d->ch, ms, fn, d);
    if (!d->gw_timer)
        H->log(d->ch, FD_LOG_ERROR,
               "cannot schedule a timer: the gateway connection stalls");
}

static void on_nothing(void *ud)
{
    (void)ud;
}

/* Whether the channel is being stopped: the host refuses new timers then.
 * (It also closes our websocket after freeing our timers, see gw_closed.) */
static bool channel_stopping(struct dsc *d)
{
    struct fd_timer *t = H->timer_add(d->ch, 3600000, on_nothing, NULL);
    if (!t)
        return true;
    H->timer_cancel(t);
    return false;
}

static void on_begin(void *ud)
{
    struct dsc *d = ud;
    d->gw_timer = NULL;
    gw_begin(d);
}

static int reconnect_delay(struct dsc *d)
{
    return H->backoff_ms(d->failures > 0 ? d->failures : 1, RECONNECT_MIN_MS,
                         RECONNECT_MAX_MS);
}

/* ---- the saved session --------------------------------------------------- */

static void session_clear(struct dsc *d)
{
    bool had = d->session_id != NULL;
    free(d->session_id);
    free(d->resume_url);
    d->session_id = d->resume_url = NULL;
    d->seq = 0;
    if (had || d->saved_seq >= 0)
        H->kv_set(d->ch, SESSION_KEY, NULL);
    d->saved_seq = -1;
}

/* Writes the session to the key/value store when `s` moved (or always). */
static void session_save(struct dsc *d, bool always)
{
    if (!d->session_id || !d->resume_url || (!always && d->seq == d->saved_seq))
        return;
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "session_id", d->session_id) &&
        cJSON_AddStringToObject(o, "resume_url", d->resume_url) &&
        cJSON_AddNumberToObject(o, "seq", (double)d->seq) &&
        cJSON_AddNumberToObject(o, "at", (double)time(NULL)))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s && H->kv_set(d->ch, SESSION_KEY, s) == FD_OK)
        d->saved_seq = d->seq;
    free(s);
}

/* A session id as Discord hands it out: printable, no quotes, bounded. */
static bool is_session_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

/* ws:// or wss:// + host[:port][/path], no query: with "?v=10&encoding=json"
 * appended, as a new string; NULL when the URL is not acceptable. */
static char *gateway_url(const char *url)
{
    if (!url || (strncmp(url, "wss://", 6) && strncmp(url, "ws://", 5)))
        return NULL;
    size_t n = strlen(url);
    if (n > 400 || strpbrk(url, "?# \t\r\n\"\\"))
        return NULL;
    while (n > 0 && url[n - 1] == '/')
        n--;
    const char *host = url + (url[2] == 's' ? 6 : 5);
    if ((size_t)(host - url) >= n)
        return NULL;
    size_t m = n + sizeof "/?v=10&encoding=json";
    char *s = malloc(m);
    if (s)
        snprintf(s, m, "%.*s/?v=10&encoding=json", (int)n, url);
    return s;
}

void dsc_gw_load(struct dsc *d)
{
    d->saved_seq = -1;
    char *v = H->kv_get(d->ch, SESSION_KEY);
    cJSON *o = v ? cJSON_Parse(v) : NULL;
    free(v);
    const char *sid = dsc_json_str(o, "session_id");
    const char *url = dsc_json_str(o, "resume_url");
    int64_t seq = 0, at = 0;
    bool fresh = dsc_json_int64(o, "at", &at) &&
                 (int64_t)time(NULL) - at <= SESSION_KEEP_S;
    /* The stored URL already carries the query: check its base. */
    const char *q = url ? strstr(url, "/?v=10&encoding=json") : NULL;
    char *base = q ? strndup(url, (size_t)(q - url)) : NULL;
    char *ok_url = base ? gateway_url(base) : NULL;
    free(base);
    if (o && fresh && is_session_id(sid) && ok_url &&
        dsc_json_int64(o, "seq", &seq) && seq >= 0) {
        d->session_id = strdup(sid);
        d->resume_url = ok_url;
        ok_url = NULL;
        d->seq = d->saved_seq = seq;
        if (!d->session_id) {
            free(d->resume_url);
            d->resume_url = NULL;
        }
    }
    free(ok_url);
    cJSON_Delete(o);
}

/* ---- sending ------------------------------------------------------------- */

static void gw_reconnect(struct dsc *d, enum gw_next next, int delay_ms,
                         bool failed);

/* Sends one gateway payload (takes ownership of json); on failure the
 * connection is replaced. */
static void gw_send(struct dsc *d, char *json)
{
    int rc = json && d->conn ? H->ws_send(d->conn, json, strlen(json)) : FD_ERR;
    free(json);
    if (rc != FD_OK) {
        H->log(d->ch, FD_LOG_WARN, "cannot send on the gateway: reconnecting");
        gw_reconnect(d, NEXT_RESUME, 0, true);
    }
}

static void send_heartbeat(struct dsc *d)
{
    char buf[48];
    if (d->seq > 0)
        snprintf(buf, sizeof buf, "{\"op\":1,\"d\":%" PRId64 "}", d->seq);
    else
        snprintf(buf, sizeof buf, "{\"op\":1,\"d\":null}");
    d->hb_awaiting_ack = true;
    gw_send(d, strdup(buf));
}

static void send_identify(struct dsc *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *dd = cJSON_AddObjectToObject(o, "d");
    cJSON *p = cJSON_AddObjectToObject(dd, "properties");
    char *s = NULL;
    if (cJSON_AddNumberToObject(o, "op", 2) &&
        cJSON_AddStringToObject(dd, "token", d->token) &&
        cJSON_AddNumberToObject(dd, "intents", INTENTS) &&
        cJSON_AddStringToObject(p, "os", "linux") &&
        cJSON_AddStringToObject(p, "browser", "frontdesk") &&
        cJSON_AddStringToObject(p, "device", "frontdesk"))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    d->last_identify = dsc_now_ms();
    d->phase = GW_IDENTIFYING;
    H->log(d->ch, FD_LOG_INFO, "identifying (new session)");
    gw_send(d, s);
}

static void send_resume(struct dsc *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *dd = cJSON_AddObjectToObject(o, "d");
    char *s = NULL;
    if (cJSON_AddNumberToObject(o, "op", 6) &&
        cJSON_AddStringToObject(dd, "token", d->token) &&
        cJSON_AddStringToObject(dd, "session_id", d->session_id) &&
        cJSON_AddNumberToObject(dd, "seq", (double)d->seq))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    d->phase = GW_RESUMING;
    d->replayed = 0;
    H->log(d->ch, FD_LOG_INFO, "resuming the session after event %" PRId64,
           d->seq);
    gw_send(d, s);
}

/* ---- closing and reconnecting -------------------------------------------- */

static void after_close(struct dsc *d)
{
    d->phase = GW_IDLE;
    gw_later(d, d->next_delay_ms, on_begin);
}

static void on_close_guard(void *ud)
{
    struct dsc *d = ud;
    d->gw_timer = NULL;
    if (d->phase != GW_CLOSING)
        return;
    /* No CLOSED: a dead TCP connection can take minutes to be noticed.
     * Forget it (its late events are ignored) and go on. */
    H->log(d->ch, FD_LOG_WARN,
           "the old gateway connection did not close within %d s: "
           "left behind",
           CLOSE_GUARD_MS / 1000);
    d->conn = NULL;
    after_close(d);
}

/* Closes the current connection (if any) and starts the next after
 * delay_ms: a Resume, or a new session.  `failed`: count it for backoff. */
static void gw_reconnect(struct dsc *d, enum gw_next next, int delay_ms,
                         bool failed)
{
    if (d->phase == GW_DEAD || d->phase == GW_CLOSING)
        return;
    hb_cancel(d);
    if (failed)
        d->failures++;
    if (next == NEXT_IDENTIFY)
        session_clear(d);
    d->next_delay_ms = delay_ms;
    if (!d->conn) {
        after_close(d);
        return;
    }
    d->phase = GW_CLOSING;
    H->ws_close(d->conn);
    gw_later(d, CLOSE_GUARD_MS, on_close_guard);
}

static void on_handshake_timeout(void *ud)
{
    struct dsc *d = ud;
    d->gw_timer = NULL;
    const char *what = d->phase == GW_CONNECTING    ? "Hello"
                       : d->phase == GW_RESUMING    ? "RESUMED"
                       : d->phase == GW_IDENTIFYING ? "READY"
                                                    : NULL;
    if (!what)
        return;
    H->log(d->ch, FD_LOG_WARN, "no %s from the gateway in time: reconnecting",
           what);
    gw_reconnect(d, NEXT_RESUME, reconnect_delay(d), true);
}

/* ---- start, connect ------------------------------------------------------ */

static void gw_fetch(struct dsc *d)
{
    struct call *c = calloc(1, sizeof *c);
    if (c)
        c->kind = CALL_GATEWAY_BOT;
    d->phase = GW_FETCH;
    if (!c || dsc_rest(d, c, "GET", "/gateway/bot", NULL) < 0) {
        free(c);
        d->failures++;
        d->phase = GW_IDLE;
        H->log(d->ch, FD_LOG_WARN, "GET /gateway/bot could not start");
        gw_later(d, reconnect_delay(d), on_begin);
    }
}

/* The next step: Resume when there is a session, else a new one (through
 * /gateway/bot, which also tells how many Identify calls are left). */
static void gw_begin(struct dsc *d)
{
    if (d->phase == GW_DEAD)
        return;
    if (d->session_id && d->resume_url) {
        gw_connect(d);
        return;
    }
    int64_t gap = d->last_identify + IDENTIFY_GAP_MS - dsc_now_ms();
    if (d->last_identify && gap > 0) {
        d->phase = GW_IDLE;
        gw_later(d, (int)gap, on_begin);
        return;
    }
    gw_fetch(d);
}

void dsc_gw_start(struct dsc *d)
{
    gw_begin(d);
}

static void gw_connect(struct dsc *d)
{
    bool resume = d->session_id && d->resume_url;
    const char *url = resume ? d->resume_url : d->gateway_url;
    if (!url) {
        gw_fetch(d);
        return;
    }
    const char *headers[] = {USER_AGENT, NULL};
    d->hb_interval = 0;
    hb_cancel(d);
    d->conn_open = false;
    d->conn = H->ws_connect(d->ch, url, headers, NULL);
    if (!d->conn) {
        d->failures++;
        d->phase = GW_IDLE;
        int ms = reconnect_delay(d);
        H->log(d->ch, FD_LOG_WARN,
               "cannot open the gateway connection; retry in %.1f s",
               ms / 1000.0);
        gw_later(d, ms, on_begin);
        return;
    }
    H->conn_set_data(d->conn, d);
    d->phase = GW_CONNECTING;
    H->log(d->ch, FD_LOG_DEBUG, "connecting to the gateway%s",
           resume ? " (resume)" : "");
    gw_later(d, HELLO_TIMEOUT_MS, on_handshake_timeout);
}

/* GET /gateway/bot answered (or the token check, below). */
static void on_gateway_bot(struct dsc *d, const struct fd_http_response *r)
{
    struct answer a;
    dsc_answer_parse(r, &a);
    char why[256];
    dsc_describe(why, sizeof why, r, &a);
    const cJSON *o = cJSON_IsObject(a.doc) ? a.doc : NULL;
    char *url = r->status == 200 ? gateway_url(dsc_json_str(o, "url")) : NULL;
    if (r->status == 401) {
        d->phase = GW_DEAD;
        H->log(d->ch, FD_LOG_ERROR,
               "GET /gateway/bot: %s: the token is refused (check token); "
               "not connecting",
               why);
    } else if (!url) {
        d->failures++;
        int ms = r->status == 429 ? a.wait_ms : reconnect_delay(d);
        H->log(d->ch, FD_LOG_WARN, "GET /gateway/bot: %s%s; retry in %.1f s",
               why, r->status == 200 ? " (no usable url)" : "", ms / 1000.0);
        d->phase = GW_IDLE;
        gw_later(d, ms, on_begin);
    } else {
        free(d->gateway_url);
        d->gateway_url = url;
        url = NULL;
        const cJSON *lim = dsc_json_obj(o, "session_start_limit");
        int64_t left = 1, reset = 0;
        if (lim && dsc_json_int64(lim, "remaining", &left) && left <= 0) {
            dsc_json_int64(lim, "reset_after", &reset);
            if (reset < 1000)
                reset = 1000;
            if (reset > 24 * 3600 * 1000)
                reset = 24 * 3600 * 1000;
            H->log(d->ch, FD_LOG_ERROR,
                   "no Identify calls left today (session_start_limit); "
                   "next try in %" PRId64 " min",
                   reset / 60000);
            d->phase = GW_IDLE;
            gw_later(d, (int)reset, on_begin);
        } else {
            gw_connect(d);
        }
    }
    free(url);
    cJSON_Delete(a.doc);
}

/* Retries after a refusal the token check did not explain. */
static void after_refusal(struct dsc *d)
{
    d->phase = GW_IDLE;
    if (d->early_closes >= EARLY_CLOSES) {
        H->log(d->ch, FD_LOG_ERROR,
               "the gateway closed the connection right after "
               "Identify/Resume %d times in a row although the token works: "
               "most likely close code 4014/4013 (intents not allowed: turn "
               "on MESSAGE CONTENT INTENT under Bot -> Privileged Gateway "
               "Intents in the Developer Portal) or 4010-4012; trying again "
               "only every %d min",
               d->early_closes, SUSPECT_WAIT_MS / 60000);
        gw_later(d, SUSPECT_WAIT_MS, on_begin);
        return;
    }
    gw_later(d,
             H->backoff_ms(d->early_closes, RECONNECT_MIN_MS, RECONNECT_MAX_MS),
             on_begin);
}

static void on_token_check(struct dsc *d, const struct fd_http_response *r)
{
    if (r->status == 401) {
        d->phase = GW_DEAD;
        session_clear(d);
        H->log(d->ch, FD_LOG_ERROR,
               "gateway authentication failed (4004: the gateway refuses the "
               "session and REST answers 401): the token is wrong or was "
               "reset; fix token and restart. Not reconnecting");
        return;
    }
    after_refusal(d);
}

void dsc_gw_http_done(struct dsc *d, enum call_kind kind,
                      const struct fd_http_response *r)
{
    if (kind == CALL_GATEWAY_BOT && d->phase == GW_FETCH)
        on_gateway_bot(d, r);
    else if (kind == CALL_TOKEN_CHECK && d->phase == GW_CHECKING)
        on_token_check(d, r);
}

/* ---- close codes --------------------------------------------------------- */

/* A close code named in the host's reason text ("... 4004 ..."), or -1. */
static int close_code(const char *why)
{
    for (const char *p = why; *p; p++) {
        if (*p < '0' || *p > '9' || (p > why && p[-1] >= '0' && p[-1] <= '9'))
            continue;
        size_t n = strspn(p, "0123456789");
        if (n == 4) {
            int v = (p[0] - '0') * 1000 + (p[1] - '0') * 100 +
                    (p[2] - '0') * 10 + (p[3] - '0');
            if (v >= 1000 && v <= 4999)
                return v;
        }
        p += n - 1;
    }
    return -1;
}

static const char *fatal_reason(int code)
{
    switch (code) {
    case 4004:
        return "authentication failed: the token is wrong or was reset; fix "
               "token and restart";
    case 4010:
        return "invalid shard";
    case 4011:
        return "sharding required: the bot is in too many guilds for one "
               "connection";
    case 4012:
        return "invalid API version";
    case 4013:
        return "invalid intents";
    case 4014:
        return "disallowed intents: turn on MESSAGE CONTENT INTENT under Bot "
               "-> Privileged Gateway Intents in the Developer Portal";
    default:
        return NULL;
    }
}

static void gw_closed(struct dsc *d, const char *data, size_t len)
{
    char why[200];
    snprintf(why, sizeof why, "%.*s", (int)(len < 199 ? len : 199),
             data ? data : "");
    enum gw_phase was = d->phase;
    d->conn = NULL;
    if (!strcmp(why, "channel stopped") || channel_stopping(d)) {
        /* The host closes websockets after it has already freed the
         * channel's timers: our handles dangle, so forget, not cancel. */
        d->hb_timer = d->gw_timer = d->defer_timer = NULL;
        d->phase = GW_IDLE;
        return;
    }
    hb_cancel(d);
    gw_timer_cancel(d);
    if (was == GW_CLOSING) {
        after_close(d);
        return;
    }
    /* Only a connection that was open can carry a close code (a connect
     * error's text may hold a port number). */
    int code = d->conn_open ? close_code(why) : -1;
    d->conn_open = false;
    const char *fatal = fatal_reason(code);
    if (fatal) {
        d->phase = GW_DEAD;
        if (code == 4004)
            session_clear(d);
        H->log(d->ch, FD_LOG_ERROR,
               "gateway closed with %d (%s). Not reconnecting", code, fatal);
        return;
    }
    if (code == 4007 || code == 4009) /* invalid seq, session timed out */
        session_clear(d);
    bool early = was == GW_IDENTIFYING || was == GW_RESUMING;
    if (early && code < 0) {
        /* Refused right after Identify/Resume, and we cannot see why: a
         * Resume starts over with a new session; then ask REST whether the
         * token still works. */
        if (was == GW_RESUMING)
            session_clear(d);
        d->early_closes++;
        H->log(d->ch, FD_LOG_WARN,
               "gateway closed the connection after %s (%s); checking the "
               "token",
               was == GW_RESUMING ? "Resume" : "Identify", why);
        struct call *c = calloc(1, sizeof *c);
        if (c)
            c->kind = CALL_TOKEN_CHECK;
        d->phase = GW_CHECKING;
        if (!c || dsc_rest(d, c, "GET", "/users/@me", NULL) < 0) {
            free(c);
            after_refusal(d);
        }
        return;
    }
    /* A drop: resume quickly the first time, then back off. */
    int ms = was == GW_READY && d->failures == 0 ? dsc_random(500)
                                                 : reconnect_delay(d);
    if (was != GW_READY)
        d->failures++;
    if (d->failures >= RESUME_TRIES && d->session_id) {
        /* The resume URL keeps failing: the session is likely gone too. */
        H->log(d->ch, FD_LOG_WARN,
               "resuming failed %d times: starting a new session", d->failures);
        session_clear(d);
    }
    d->phase = GW_IDLE;
    H->log(d->ch, FD_LOG_WARN, "gateway connection lost (%s); %s in %.1f s",
           why, d->session_id ? "resuming" : "reconnecting", ms / 1000.0);
    gw_later(d, ms, on_begin);
}

/* ---- heartbeats ---------------------------------------------------------- */

static void on_heartbeat(void *ud)
{
    struct dsc *d = ud;
    d->hb_timer = NULL;
    if (!d->conn || (d->phase != GW_IDENTIFYING && d->phase != GW_RESUMING &&
                     d->phase != GW_READY))
        return;
    if (d->hb_awaiting_ack) {
        H->log(d->ch, FD_LOG_WARN,
               "no heartbeat ACK within %d ms: zombie connection, "
               "reconnecting to resume",
               d->hb_interval);
        gw_reconnect(d, NEXT_RESUME, 0, false);
        return;
    }
    send_heartbeat(d);
    if (d->conn && d->phase != GW_CLOSING)
        d->hb_timer = H->timer_add(d->ch, d->hb_interval, on_heartbeat, d);
    session_save(d, false);
}

static void on_hello(struct dsc *d, const cJSON *dd)
{
    int64_t iv = 0;
    if (d->phase != GW_CONNECTING)
        return; /* a second Hello changes nothing */
    if (!dsc_json_int64(dd, "heartbeat_interval", &iv) || iv < 100 ||
        iv > 600000) {
        H->log(d->ch, FD_LOG_WARN, "Hello without a usable heartbeat_interval");
        gw_reconnect(d, NEXT_RESUME, reconnect_delay(d), true);
        return;
    }
    d->hb_interval = (int)iv;
    d->hb_awaiting_ack = false;
    /* Jitter: a fleet of clients reconnecting together does not beat in
     * step. */
    d->hb_timer =
        H->timer_add(d->ch, dsc_random(d->hb_interval), on_heartbeat, d);
    if (d->session_id && d->resume_url)
        send_resume(d);
    else
        send_identify(d);
    if (d->phase == GW_IDENTIFYING || d->phase == GW_RESUMING)
        gw_later(d, READY_TIMEOUT_MS, on_handshake_timeout);
}

/* ---- dispatches ---------------------------------------------------------- */

static void on_ready(struct dsc *d, const cJSON *dd)
{
    const char *sid = dsc_json_str(dd, "session_id");
    char *url = gateway_url(dsc_json_str(dd, "resume_gateway_url"));
    const cJSON *user = dsc_json_obj(dd, "user");
    const char *uid = dsc_json_str(user, "id");
    const char *name = dsc_json_str(user, "username");
    free(d->session_id);
    free(d->resume_url);
    d->session_id = is_session_id(sid) && url ? strdup(sid) : NULL;
    d->resume_url = d->session_id ? url : NULL;
    if (!d->session_id)
        free(url);
    if (dsc_is_snowflake(uid))
        snprintf(d->self_id, sizeof d->self_id, "%s", uid);
    d->phase = GW_READY;
    d->failures = 0;
    d->early_closes = 0;
    gw_timer_cancel(d);
    H->log(d->ch, d->session_id && d->self_id[0] ? FD_LOG_INFO : FD_LOG_WARN,
           "ready as %.64s (id %s)%s", name ? name : "?",
           d->self_id[0] ? d->self_id : "unknown",
           d->session_id ? ""
                         : "; READY lacks session_id or "
                           "resume_gateway_url: drops start over");
}

static void on_dispatch(struct dsc *d, const cJSON *o)
{
    const char *t = dsc_json_str(o, "t");
    const cJSON *dd = cJSON_GetObjectItemCaseSensitive(o, "d");
    int64_t s = 0;
    bool has_s = dsc_json_int64(o, "s", &s) && s > 0;
    if (!t)
        return;
    if (!strcmp(t, "READY")) {
        if (has_s && !d->frozen)
            d->seq = s;
        on_ready(d, dd);
        session_save(d, true);
        return;
    }
    if (d->phase == GW_RESUMING) {
        d->replayed++;
        gw_later(d, READY_TIMEOUT_MS, on_handshake_timeout);
    }
    if (!strcmp(t, "RESUMED")) {
        d->phase = GW_READY;
        d->failures = 0;
        d->early_closes = 0;
        gw_timer_cancel(d);
        H->log(d->ch, FD_LOG_INFO,
               "session resumed (%" PRId64 " missed event(s) replayed)",
               d->replayed > 0 ? d->replayed - 1 : 0);
    } else if (!strcmp(t, "MESSAGE_CREATE") && cJSON_IsObject(dd)) {
        int rc = dsc_message_create(d, dd);
        if (rc == FD_ESTOPPED && !d->frozen) {
            /* Draining for a stop: keep the sequence here, so the next
             * start resumes before this event and it is answered then. */
            d->frozen = true;
            H->log(d->ch, FD_LOG_INFO,
                   "stopping: events from %" PRId64 " on are left for the "
                   "next start",
                   has_s ? s : d->seq + 1);
        } else if (rc < 0 && rc != FD_ESTOPPED) {
            /* Not recorded: resume from before it, so it comes again. */
            gw_reconnect(d, NEXT_RESUME, reconnect_delay(d), true);
            return;
        }
    }
    if (has_s && !d->frozen)
        d->seq = s;
}

static void gw_message(struct dsc *d, const char *data, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(data, len);
    int64_t op = -1;
    if (!cJSON_IsObject(o) || !dsc_json_int64(o, "op", &op)) {
        H->log(d->ch, FD_LOG_WARN,
               "gateway sent something that is not a payload (%zu bytes), "
               "ignored",
               len);
        cJSON_Delete(o);
        return;
    }
    const cJSON *dd = cJSON_GetObjectItemCaseSensitive(o, "d");
    switch (op) {
    case 0:
        on_dispatch(d, o);
        break;
    case 1: /* the gateway asks for a heartbeat now */
        send_heartbeat(d);
        break;
    case 7:
        H->log(d->ch, FD_LOG_INFO,
               "gateway asks to reconnect (op 7): resuming");
        gw_reconnect(d, NEXT_RESUME, 0, false);
        break;
    case 9:
        if (cJSON_IsTrue(dd) && d->session_id) {
            H->log(d->ch, FD_LOG_INFO,
                   "invalid session (op 9, resumable): resuming");
            gw_reconnect(d, NEXT_RESUME, dsc_random(1000), false);
        } else {
            /* Discord asks for 1-5 s before the next Identify. */
            int ms = 1000 + dsc_random(4000);
            H->log(d->ch, FD_LOG_INFO,
                   "invalid session (op 9, not resumable): new session in "
                   "%.1f s",
                   ms / 1000.0);
            gw_reconnect(d, NEXT_IDENTIFY, ms, false);
        }
        break;
    case 10:
        on_hello(d, dd);
        break;
    case 11:
        d->hb_awaiting_ack = false;
        break;
    default:
        H->log(d->ch, FD_LOG_DEBUG, "gateway op %" PRId64 " ignored", op);
        break;
    }
    cJSON_Delete(o);
}

void dsc_ws_event(struct fd_channel *ch, struct fd_conn *c, enum fd_ws_event ev,
                  const char *data, size_t len)
{
    struct dsc *d = H->get_data(ch);
    if (!d || c != d->conn) {
        /* Not our gateway connection: one we left behind, or somebody
         * upgrading at /hooks/<channel>, which serves nothing. */
        if (ev == FD_WS_OPEN && (!d || H->conn_get_data(c) != d)) {
            if (d)
                H->log(d->ch, FD_LOG_WARN,
                       "websocket at /hooks/%s refused: nothing served there",
                       H->channel_name(ch));
            H->ws_close(c);
        }
        return;
    }
    switch (ev) {
    case FD_WS_OPEN:
        d->conn_open = true;
        H->log(d->ch, FD_LOG_DEBUG, "gateway connected; waiting for Hello");
        break;
    case FD_WS_MESSAGE:
        if (d->phase != GW_CLOSING && d->phase != GW_DEAD)
            gw_message(d, data, len);
        break;
    case FD_WS_CLOSED:
        gw_closed(d, data, len);
        break;
    }
}
