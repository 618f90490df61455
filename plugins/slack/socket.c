/*
 * socket.c - Slack Socket Mode (mode = socket).
 *
 * A connection starts with apps.connections.open (app-level token), whose
 * answer carries a single-use wss:// URL (it holds a ticket: never
 * logged).  Slack's first frame is {"type":"hello"}; then envelopes
 * {"envelope_id","type","payload",...}.  Every envelope is acked with
 * {"envelope_id":"..."} on the connection it came on, right after the core
 * recorded and committed its message (host->commit), so an acked event is
 * never lost; one the store could not take is left unacked and Slack sends
 * it again.  Slack also re-sends envelopes that were not acked when a
 * connection drops; the core's dedupe drops the ones already handled.
 *
 * Connections have three slots:
 *   next  being set up (after start, a drop, or a disconnect request);
 *         it becomes `cur` on its hello
 *   cur   the connection that said hello last
 *   old   the previous `cur` after a switch: still read (and acked) for
 *         OLD_GRACE_MS, then closed
 * {"type":"disconnect"} ("warning", "refresh_requested", ...) opens a new
 * connection with a fresh URL while the current one keeps serving; the
 * switch happens on the new hello.  "link_disabled" (Socket Mode turned
 * off) asks again after a minute; "too_many_websockets" opens nothing new.
 * A dropped connection is replaced at once when it had been up for a while
 * (HEALTHY_MS), else after jittered backoff (1 s doubling to 30 s), or the
 * platform's Retry-After when apps.connections.open says 429.  A new
 * connection that says no hello within HELLO_MS is given up.  Liveness
 * (pings, a dead peer) is the core's websocket client's job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slack.h"

#define OLD_GRACE_MS 2000

static void open_now(struct sk *sk);

/* ---- timers -------------------------------------------------------------- */

static void on_sock_timer(void *ud)
{
    struct sk *sk = ud;
    sk->sock_timer = NULL; /* the host freed it */
    open_now(sk);
}

/* Schedules the next apps.connections.open, unless one is under way. */
static void open_later(struct sk *sk, int ms)
{
    if (sk->sock_timer || sk->opening || sk->next)
        return;
    if (ms <= 0) {
        open_now(sk);
        return;
    }
    sk->sock_timer = H->timer_add(sk->ch, ms, on_sock_timer, sk);
    if (!sk->sock_timer)
        H->log(sk->ch, FD_LOG_ERROR,
               "cannot schedule a reconnect; Socket Mode stalled");
}

static int backoff(struct sk *sk)
{
    return H->backoff_ms(sk->sock_failures > 0 ? sk->sock_failures : 1,
                         BACKOFF_MIN_MS, BACKOFF_MAX_MS);
}

static void cancel_timer(struct fd_timer **t)
{
    if (*t) {
        H->timer_cancel(*t);
        *t = NULL;
    }
}

/* Lets go of a connection: its later events are not ours any more. */
static void drop(struct fd_conn *c)
{
    if (c) {
        H->conn_set_data(c, NULL);
        H->ws_close(c);
    }
}

/* ---- apps.connections.open ---------------------------------------------- */

static void open_now(struct sk *sk)
{
    if (sk->opening || sk->next || sk->phase != PH_READY)
        return;
    cancel_timer(&sk->sock_timer);
    struct call *c = calloc(1, sizeof *c);
    if (c)
        c->kind = CALL_OPEN;
    if (!c || sk_api_call(sk, c, "apps.connections.open", NULL, true) < 0) {
        free(c);
        sk->sock_failures++;
        int ms = backoff(sk);
        H->log(sk->ch, FD_LOG_WARN,
               "apps.connections.open could not start; retry in %.1f s",
               ms / 1000.0);
        open_later(sk, ms);
        return;
    }
    sk->opening = true;
}

void sk_sock_begin(struct sk *sk)
{
    open_now(sk);
}

void sk_sock_open_done(struct sk *sk, const struct fd_http_response *r)
{
    struct answer a;
    char why[200];
    sk_answer_parse(r, &a);
    const char *url = a.ok ? sk_str(a.doc, "url") : NULL;
    bool good = url && (strncmp(url, "wss://", 6) == 0 ||
                        strncmp(url, "ws://", 5) == 0);
    struct fd_conn *c = good ? H->ws_connect(sk->ch, url, NULL, NULL) : NULL;
    if (c) {
        H->conn_set_data(c, sk);
        sk->next = c;
        H->log(sk->ch, FD_LOG_DEBUG, "Socket Mode: connecting");
        cJSON_Delete(a.doc);
        return;
    }
    sk->sock_failures++;
    int ms;
    if (!a.ok) {
        sk_describe(why, sizeof why, r, &a);
        bool refused = !a.transient;
        ms = a.wait_ms ? a.wait_ms
                       : H->backoff_ms(sk->sock_failures, BACKOFF_MIN_MS,
                                       refused ? AUTH_BACKOFF_MAX_MS
                                               : BACKOFF_MAX_MS);
        H->log(sk->ch, refused ? FD_LOG_ERROR : FD_LOG_WARN,
               "apps.connections.open failed: %s%s; retry in %.1f s", why,
               refused ? " (check `app_token`: xapp- with connections:write, "
                         "and that Socket Mode is on)"
                       : "",
               ms / 1000.0);
    } else {
        ms = backoff(sk);
        H->log(sk->ch, FD_LOG_WARN,
               "apps.connections.open gave %s; retry in %.1f s",
               good ? "a URL the websocket client refused" : "no ws(s):// URL",
               ms / 1000.0);
    }
    cJSON_Delete(a.doc);
    open_later(sk, ms);
}

/* ---- frames ----------------------------------------------------------------
 */

static void ack(struct sk *sk, struct fd_conn *c, const char *envelope_id)
{
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "envelope_id", envelope_id))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s || H->ws_send(c, s, strlen(s)) != FD_OK)
        H->log(sk->ch, FD_LOG_WARN,
               "could not ack envelope %.64s; Slack will send it again",
               envelope_id);
    free(s);
}

static void on_old_timer(void *ud)
{
    struct sk *sk = ud;
    sk->old_timer = NULL;
    drop(sk->old);
    sk->old = NULL;
}

static void on_hello_timer(void *ud)
{
    struct sk *sk = ud;
    sk->hello_timer = NULL;
    struct fd_conn *c = sk->next;
    if (!c)
        return;
    sk->next = NULL;
    drop(c);
    sk->sock_failures++;
    int ms = backoff(sk);
    H->log(sk->ch, FD_LOG_WARN,
           "no hello from Slack within %d s; reconnecting in %.1f s",
           HELLO_MS / 1000, ms / 1000.0);
    open_later(sk, ms);
}

static void on_hello(struct sk *sk, struct fd_conn *c, const cJSON *o)
{
    if (c != sk->next)
        return; /* a second hello on a live connection: nothing new */
    cancel_timer(&sk->hello_timer);
    struct fd_conn *prev = sk->cur;
    sk->cur = c;
    sk->next = NULL;
    sk->cur_hello_ms = sk_now_ms();
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "num_connections");
    int num = cJSON_IsNumber(n) && n->valuedouble >= 0 && n->valuedouble < 1000
                  ? (int)n->valuedouble
                  : -1;
    if (prev) {
        /* Slack may still send on the old one for a moment: it is read
         * (and acked) a little longer, then closed. */
        cancel_timer(&sk->old_timer);
        drop(sk->old);
        sk->old = prev;
        sk->old_timer = H->timer_add(sk->ch, OLD_GRACE_MS, on_old_timer, sk);
        H->log(sk->ch, FD_LOG_INFO,
               "Socket Mode: switched to a new connection (%d open)", num);
    } else {
        H->log(sk->ch, FD_LOG_INFO, "Socket Mode connected (%d open)", num);
    }
}

static void on_disconnect(struct sk *sk, struct fd_conn *c, const char *reason)
{
    char r[48];
    snprintf(r, sizeof r, "%s", reason && sk_is_id(reason, 40) ? reason : "?");
    if (strcmp(r, "link_disabled") == 0) {
        H->log(sk->ch, FD_LOG_ERROR,
               "Slack disconnected: Socket Mode is turned off for this app "
               "(link_disabled); asking again in %d s",
               LINK_DISABLED_MS / 1000);
        /* Every connection of the app is dead now. */
        drop(sk->cur);
        drop(sk->next);
        drop(sk->old);
        sk->cur = sk->next = sk->old = NULL;
        cancel_timer(&sk->hello_timer);
        cancel_timer(&sk->old_timer);
        cancel_timer(&sk->sock_timer);
        (void)c;
        if (!sk->opening && !sk->next)
            sk->sock_timer =
                H->timer_add(sk->ch, LINK_DISABLED_MS, on_sock_timer, sk);
        return;
    }
    if (strcmp(r, "too_many_websockets") == 0) {
        H->log(sk->ch, FD_LOG_WARN,
               "Slack disconnected: too many websockets for this app; "
               "keeping the connections we have");
        if (c == sk->next) {
            sk->next = NULL;
            cancel_timer(&sk->hello_timer);
            drop(c);
            if (!sk->cur) {
                sk->sock_failures++;
                open_later(sk, backoff(sk));
            }
        }
        return;
    }
    /* "warning", "refresh_requested" and anything new: a fresh URL now,
     * and the switch when its connection says hello. */
    if (c == sk->cur) {
        if (sk->next || sk->opening) {
            H->log(sk->ch, FD_LOG_DEBUG,
                   "Slack asks to reconnect (%s): already under way", r);
            return;
        }
        H->log(sk->ch, FD_LOG_INFO,
               "Slack asks to reconnect (%s): opening a new connection", r);
        cancel_timer(&sk->sock_timer);
        open_now(sk);
    } else if (c == sk->next) {
        H->log(sk->ch, FD_LOG_WARN,
               "Slack disconnected a connection before its hello (%s)", r);
        sk->next = NULL;
        cancel_timer(&sk->hello_timer);
        drop(c);
        sk->sock_failures++;
        open_later(sk, backoff(sk));
    }
}

static void on_frame(struct sk *sk, struct fd_conn *c, const char *data,
                     size_t len)
{
    cJSON *o = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(o)) {
        H->log(sk->ch, FD_LOG_WARN,
               "Socket Mode: a frame that is not a JSON object (%zu bytes), "
               "ignored",
               len);
        cJSON_Delete(o);
        return;
    }
    const char *type = sk_str(o, "type");
    const char *eid = sk_str(o, "envelope_id");
    if (type && strcmp(type, "hello") == 0) {
        on_hello(sk, c, o);
    } else if (type && strcmp(type, "disconnect") == 0) {
        on_disconnect(sk, c, sk_str(o, "reason"));
    } else if (eid) {
        if (strlen(eid) > 200 || strpbrk(eid, "\"\\")) {
            H->log(sk->ch, FD_LOG_WARN,
                   "Socket Mode: envelope with an unusable envelope_id, "
                   "ignored");
            cJSON_Delete(o);
            return;
        }
        const cJSON *payload = sk_obj(o, "payload");
        int rc = FD_OK;
        if (type && strcmp(type, "events_api") == 0 && payload) {
            rc = sk_handle_payload(sk, payload, "socket");
        } else {
            H->log(sk->ch, FD_LOG_DEBUG,
                   "Socket Mode: %.40s envelope not handled (acked)",
                   type ? type : "untyped");
        }
        /* An ack is a promise to Slack: only for what is committed.  This
         * commits per envelope; Socket Mode traffic is small. */
        if (rc >= 0 && H->commit(sk->ch) != FD_OK)
            rc = FD_ESTORE;
        if (rc >= 0)
            ack(sk, c, eid);
        else
            H->log(sk->ch, FD_LOG_WARN,
                   "envelope %.64s not recorded (store): not acked, Slack "
                   "will send it again",
                   eid);
    } else {
        H->log(sk->ch, FD_LOG_DEBUG, "Socket Mode: frame of type %.40s ignored",
               type ? type : "(none)");
    }
    cJSON_Delete(o);
}

/* ---- connection events ----------------------------------------------------
 */

static void on_closed(struct sk *sk, struct fd_conn *c, const char *data,
                      size_t len)
{
    char why[160];
    snprintf(why, sizeof why, "%.*s", (int)(len < 150 ? len : 150),
             data ? data : "");
    if (strcmp(why, "channel stopped") == 0) {
        /* The channel is stopping: reconnect nothing; the host drops the
         * channel's timers itself. */
        sk_sock_stop(sk);
        return;
    }
    if (c == sk->next) {
        sk->next = NULL;
        cancel_timer(&sk->hello_timer);
        sk->sock_failures++;
        int ms = backoff(sk);
        H->log(sk->ch, FD_LOG_WARN,
               "Socket Mode connection failed (%s); retry in %.1f s", why,
               ms / 1000.0);
        open_later(sk, ms);
        return;
    }
    if (c == sk->old) {
        sk->old = NULL;
        cancel_timer(&sk->old_timer);
        H->log(sk->ch, FD_LOG_DEBUG, "Socket Mode: previous connection closed");
        return;
    }
    if (c != sk->cur)
        return;
    sk->cur = NULL;
    bool healthy = sk_now_ms() - sk->cur_hello_ms >= HEALTHY_MS;
    if (healthy)
        sk->sock_failures = 0;
    else
        sk->sock_failures++;
    if (sk->next || sk->opening) {
        H->log(sk->ch, FD_LOG_INFO,
               "Socket Mode connection closed (%s); a new one is under way",
               why);
        return;
    }
    int ms = healthy ? 0 : backoff(sk);
    H->log(sk->ch, FD_LOG_WARN,
           "Socket Mode connection lost (%s); reconnecting%s", why,
           ms ? "" : " now");
    if (ms)
        H->log(sk->ch, FD_LOG_DEBUG, "reconnect in %.1f s", ms / 1000.0);
    open_later(sk, ms);
}

void sk_ws_event(struct fd_channel *ch, struct fd_conn *c, enum fd_ws_event ev,
                 const char *data, size_t len)
{
    struct sk *sk = H->get_data(ch);
    bool ours = sk && c && H->conn_get_data(c) == sk &&
                (c == sk->cur || c == sk->next || c == sk->old);
    if (!ours) {
        /* Somebody upgrading at /hooks/<channel> (nothing is served
         * there), or a connection we already let go of. */
        if (ev == FD_WS_OPEN && c && !H->conn_get_data(c)) {
            if (sk && !sk->warned_foreign)
                H->log(ch, FD_LOG_WARN,
                       "refusing a websocket opened at /hooks/%s: nothing is "
                       "served there",
                       H->channel_name(ch));
            if (sk)
                sk->warned_foreign = true;
            H->ws_close(c);
        }
        return;
    }
    switch (ev) {
    case FD_WS_OPEN:
        if (c == sk->next) {
            cancel_timer(&sk->hello_timer);
            sk->hello_timer = H->timer_add(ch, HELLO_MS, on_hello_timer, sk);
        }
        break;
    case FD_WS_MESSAGE:
        on_frame(sk, c, data, len);
        break;
    case FD_WS_CLOSED:
        on_closed(sk, c, data, len);
        break;
    }
}

void sk_sock_stop(struct sk *sk)
{
    /* Timers and connections are the host's when a channel stops (it
     * closes and drops them): forget them all, cancel none. */
    sk->cur = sk->next = sk->old = NULL;
    sk->hello_timer = sk->sock_timer = sk->old_timer = NULL;
    sk->opening = false;
}
