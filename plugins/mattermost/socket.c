/*
 * socket.c - the Mattermost websocket (/api/v4/websocket).
 *
 * Authentication: the upgrade carries "Authorization: Bearer <token>", and
 * the first frame is an authentication_challenge with the token, for
 * proxies that drop the header (a server that already authenticated the
 * upgrade ignores it).  A fresh connection starts with a `hello` event
 * whose data.connection_id names the server's queue of events for us.
 *
 * Sequence numbers: every server event carries `seq`, counting from the
 * hello's.  A gap closes the connection; reconnecting with
 * ?connection_id=<id>&sequence_number=<next seq> makes the server replay
 * what we missed from its dead queue (no new hello), or, when it no longer
 * can (restart, long outage, queue overrun), send a hello with a new
 * connection_id - then the posts of the gap are fetched over REST
 * (inbound.c, mm_catchup_request).
 *
 * Liveness: an application `ping` right after connecting (its answer also
 * carries the server's clock) and every 30 s; a ping still unanswered at
 * the next one means a dead connection, closed and reconnected.
 * Reconnects back off from 1 s to 60 s with jitter while connections fail
 * before becoming useful.
 *
 * Only the connection this file opened is listened to: anything else that
 * reaches ws_event (someone upgrading at /hooks/<channel>) is closed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mattermost.h"

static void ping_tick(void *ud);

static void on_ws_timer(void *ud)
{
    struct mm *t = ud;
    t->ws_timer = NULL; /* the host freed it */
    mm_ws_connect(t);
}

static void reconnect_later(struct mm *t, const char *why)
{
    if (t->ws_timer)
        return;
    t->ws_failures++;
    int ms =
        H->backoff_ms(t->ws_failures, WS_BACKOFF_MIN_MS, WS_BACKOFF_MAX_MS);
    t->ws_timer = H->timer_add(t->ch, ms, on_ws_timer, t);
    if (t->ws_timer)
        H->log(t->ch, FD_LOG_WARN, "websocket %s; reconnecting in %.1f s", why,
               ms / 1000.0);
    else
        H->log(t->ch, FD_LOG_ERROR,
               "websocket %s; cannot schedule a reconnect (stopping?)", why);
}

static void ping_cancel(struct mm *t)
{
    if (t->ping_timer) {
        H->timer_cancel(t->ping_timer);
        t->ping_timer = NULL;
    }
    t->ping_seq = 0;
}

/* Drops the current connection (closing it) and schedules the next. */
static void drop_conn(struct mm *t, const char *why)
{
    struct fd_conn *c = t->conn;
    if (!c)
        return;
    t->conn = NULL;
    t->conn_open = false;
    t->ws_epoch++;
    ping_cancel(t);
    H->conn_set_data(c, NULL);
    H->ws_close(c); /* its CLOSED event finds it detached */
    if (t->conn_up)
        t->ws_failures = 0; /* it worked: reconnect at once-ish */
    t->conn_up = false;
    reconnect_later(t, why);
}

void mm_ws_connect(struct mm *t)
{
    if (t->conn || t->phase != PH_LIVE)
        return;
    char url[1024];
    const char *u = t->ws_url;
    /* Resume where we were when the server still has our queue. */
    if (t->conn_id[0] && t->next_seq >= 0) {
        int n = snprintf(url, sizeof url,
                         "%s?connection_id=%s&sequence_number=%" PRId64,
                         t->ws_url, t->conn_id, t->next_seq);
        if (n > 0 && (size_t)n < sizeof url)
            u = url;
    }
    const char *headers[] = {t->auth, NULL};
    t->req_seq = 0;
    t->conn_open = t->conn_up = false;
    t->conn = H->ws_connect(t->ch, u, headers, NULL);
    if (!t->conn) {
        reconnect_later(t, "could not start connecting");
        return;
    }
    H->conn_set_data(t->conn, t);
    H->log(t->ch, FD_LOG_INFO, "websocket connecting%s",
           u == url ? " (resuming the previous session)" : "");
}

void mm_ws_stop(struct mm *t)
{
    /* Timers and connections are the host's by now (it frees them when a
     * channel stops): forget them all, cancel none. */
    t->ws_timer = t->ping_timer = t->cu_timer = t->save_timer = NULL;
    t->conn = NULL;
}

/* Sends {"action":..., "seq":n, "data":...}; returns the seq or 0. */
static int64_t send_action(struct mm *t, const char *action, cJSON *data)
{
    cJSON *o = cJSON_CreateObject();
    int64_t seq = ++t->req_seq;
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "action", action) &&
        cJSON_AddNumberToObject(o, "seq", (double)seq) &&
        (!data || cJSON_AddItemToObject(o, "data", data))) {
        data = NULL; /* o owns it now */
        s = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(data);
    cJSON_Delete(o);
    int rc = s && t->conn ? H->ws_send(t->conn, s, strlen(s)) : FD_ERR;
    if (s)
        memset(s, 0, strlen(s)); /* may hold the token */
    free(s);
    return rc == FD_OK ? seq : 0;
}

static void ping_send(struct mm *t)
{
    t->ping_seq = send_action(t, "ping", NULL);
    t->ping_timer = H->timer_add(t->ch, PING_INTERVAL_MS, ping_tick, t);
}

static void ping_tick(void *ud)
{
    struct mm *t = ud;
    t->ping_timer = NULL;
    if (!t->conn)
        return;
    if (t->ping_seq) {
        drop_conn(t, "did not answer a ping within 30 s");
        return;
    }
    ping_send(t);
}

void mm_ws_nudge(struct mm *t)
{
    if (t->conn && t->conn_open && !t->ping_seq)
        t->ping_seq = send_action(t, "ping", NULL);
}

static void on_open(struct mm *t)
{
    t->conn_open = true;
    cJSON *data = cJSON_CreateObject();
    if (data && cJSON_AddStringToObject(data, "token", t->token))
        send_action(t, "authentication_challenge", data);
    else
        cJSON_Delete(data);
    ping_cancel(t);
    ping_send(t);
}

/* The connection proved useful: the backoff starts over. */
static void mark_up(struct mm *t)
{
    if (!t->conn_up) {
        t->conn_up = true;
        t->ws_failures = 0;
    }
}

static void on_hello(struct mm *t, const cJSON *data, int64_t seq)
{
    const char *id = mm_json_str(data, "connection_id");
    const char *version = mm_json_str(data, "server_version");
    bool had = t->conn_id[0] != '\0';
    bool same = had && id && strcmp(id, t->conn_id) == 0;
    if (mm_is_id(id))
        memcpy(t->conn_id, id, ID_BUF);
    else
        t->conn_id[0] = '\0'; /* an old server: no resuming */
    t->next_seq = seq + 1;
    mark_up(t);
    H->log(t->ch, FD_LOG_INFO, "websocket ready (server %.40s%s)",
           version ? version : "?",
           had && !same ? "; events of the gap were lost, catching up" : "");
    /* A new session after an old one: whatever was posted in between only
     * the REST API still knows.  The first hello after a start catches up
     * from the persisted cursor (posts made while we were stopped). */
    if (had && !same)
        mm_catchup_request(t, "new websocket session");
    else if (!had && t->frozen)
        mm_catchup_request(t, "start");
}

static void on_reply(struct mm *t, const cJSON *m, int64_t seq_reply)
{
    const char *status = mm_json_str(m, "status");
    if (seq_reply == t->ping_seq && t->ping_seq &&
        (!status || strcmp(status, "OK") != 0)) {
        /* "not authenticated": the token did not take on this socket. */
        const char *eid =
            mm_json_str(cJSON_GetObjectItemCaseSensitive(m, "error"), "id");
        char why[160];
        snprintf(why, sizeof why, "refused our ping (%.100s)",
                 eid      ? eid
                 : status ? status
                          : "no status");
        drop_conn(t, why);
        return;
    }
    if (seq_reply == t->ping_seq && t->ping_seq) {
        t->ping_seq = 0;
        mark_up(t);
        int64_t server_ms;
        if (mm_json_int64(cJSON_GetObjectItemCaseSensitive(m, "data"),
                          "server_time", &server_ms) &&
            server_ms > 0)
            mm_cursor_advance(t, server_ms, true);
        return;
    }
    if (status && strcmp(status, "OK") != 0) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(m, "error");
        const char *eid = mm_json_str(e, "id");
        H->log(t->ch, FD_LOG_WARN,
               "websocket request %" PRId64 " failed: %.120s", seq_reply,
               eid ? eid : status);
    }
}

static void on_event(struct mm *t, const char *ev, const cJSON *m)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(m, "data");
    int64_t seq;
    bool has_seq = mm_json_int64(m, "seq", &seq);
    if (strcmp(ev, "hello") == 0) {
        on_hello(t, data, has_seq ? seq : 0);
        return;
    }
    if (has_seq) {
        if (t->next_seq >= 0 && seq != t->next_seq) {
            char why[96];
            snprintf(why, sizeof why,
                     "skipped events (seq %" PRId64 ", expected %" PRId64 ")",
                     seq, t->next_seq);
            /* Reconnecting from the expected seq lets the server replay. */
            drop_conn(t, why);
            return;
        }
        t->next_seq = seq + 1;
    }
    mark_up(t);
    if (strcmp(ev, "posted") != 0)
        return; /* typing, status_change, reactions...: not for us */
    const char *raw = mm_json_str(data, "post");
    cJSON *post = raw ? cJSON_Parse(raw) : NULL; /* a JSON string in JSON */
    if (!cJSON_IsObject(post)) {
        H->log(t->ch, FD_LOG_WARN,
               "posted event seq %" PRId64
               ": data.post is not a JSON object, ignored",
               has_seq ? seq : -1);
        cJSON_Delete(post);
        return;
    }
    const char *ctype = mm_json_str(data, "channel_type");
    char type =
        ctype && strlen(ctype) == 1 && strchr("OPDG", ctype[0]) ? ctype[0] : 0;
    mm_handle_post(t, post, type, mm_json_str(data, "sender_name"));
    cJSON_Delete(post);
}

static void on_message(struct mm *t, const char *data, size_t len)
{
    cJSON *m = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(m)) {
        H->log(t->ch, FD_LOG_WARN,
               "websocket: a frame that is not a JSON object (%zu bytes), "
               "ignored",
               len);
        cJSON_Delete(m);
        return;
    }
    int64_t seq_reply;
    const char *ev = mm_json_str(m, "event");
    if (ev)
        on_event(t, ev, m);
    else if (mm_json_int64(m, "seq_reply", &seq_reply))
        on_reply(t, m, seq_reply);
    cJSON_Delete(m);
}

void mm_ws_event(struct fd_channel *ch, struct fd_conn *c, enum fd_ws_event ev,
                 const char *data, size_t len)
{
    struct mm *t = H->get_data(ch);
    bool ours = t && c && c == t->conn && H->conn_get_data(c) == t;
    if (!ours) {
        /* A browser upgrading at /hooks/<channel>, or a connection we
         * already gave up on: never a source of events. */
        if (ev == FD_WS_OPEN && t && !H->conn_get_data(c)) {
            if (!t->warned_foreign)
                H->log(ch, FD_LOG_WARN,
                       "refusing a websocket opened at /hooks/%s: this "
                       "channel only listens to its Mattermost server",
                       H->channel_name(ch));
            t->warned_foreign = true;
            H->ws_close(c);
        }
        return;
    }
    switch (ev) {
    case FD_WS_OPEN:
        on_open(t);
        break;
    case FD_WS_MESSAGE:
        on_message(t, data, len);
        break;
    case FD_WS_CLOSED: {
        t->conn = NULL;
        t->conn_open = false;
        t->ws_epoch++;
        /* The host closes our connections while stopping the channel,
         * after it freed the channel's timers: touch none, reconnect
         * nothing.  The reason text is the only sign of it. */
        if (data && len == strlen("channel stopped") &&
            memcmp(data, "channel stopped", len) == 0) {
            mm_ws_stop(t);
            return;
        }
        ping_cancel(t);
        if (t->conn_up)
            t->ws_failures = 0;
        t->conn_up = false;
        char why[160];
        snprintf(why, sizeof why, "closed (%.*s)", (int)(len > 120 ? 120 : len),
                 data ? data : "");
        reconnect_later(t, why);
        break;
    }
    }
}
