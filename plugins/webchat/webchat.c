/*
 * webchat.c - the "webchat" platform plugin: frontdesk's built-in demo.
 *
 * It serves one page (embedded in the .so, see assets.c) with a public
 * board and a private chat pane per visitor, and speaks JSON over the
 * websocket the page opens at the same path:
 *
 *   browser → daemon  {"type":"hello","visitor":ID,"name":NAME}
 *                     {"type":"post","text":T}       public question
 *                     {"type":"private","text":T}    private pane
 *                     {"type":"name","name":NAME}    rename
 *                     {"type":"read"}                private pane seen
 *   daemon → browser  {"type":"board","posts":[...]}  after hello
 *                     {"type":"dms","messages":[...],"unread":N,"case":C}
 *                     {"type":"post","post":{...}}
 *                     {"type":"answer","post":ID,"text":T,"case":C}
 *                     {"type":"hidden","post":ID,"note":T}
 *                     {"type":"dm","from":"bot"|"you","text":T,"case":C}
 *                     {"type":"error","text":T}
 *
 * Public posts go to host->deliver as public messages in chat "board",
 * private pane messages as private ones in chat "dm:<visitor>".  A new post
 * reaches its author at once and the other boards WC_HOLD_MS later, so that
 * a script's hide of posted bank data usually wins the race.  The core's
 * actions come back through send(): REPLY → an answer under the post on
 * every board (or into the private pane when the message was private),
 * HIDE → the post's text dropped and a note shown instead, DM → the
 * visitor's private pane on all their tabs, kept for the next hello when
 * none is open.
 *
 * The visitor id is a random bearer secret made by the browser; it is never
 * sent to anyone else (other boards only see the display name), so nobody
 * can read another visitor's private pane.  Input from browsers is never
 * trusted: size-capped, UTF-8 checked, every JSON field type-checked,
 * rate-limited per visitor.
 *
 * Threading: loop thread only; nothing blocks.
 */
#include "webchat.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct fd_host *wc_host;

#define LOG(ch, lvl, ...) wc_host->log((ch), (lvl), __VA_ARGS__)

static const struct fd_key keys[] = {
    {"title", FD_KEY_STRING, 0, "frontdesk demo", NULL,
     "heading of the demo page"},
    {"history", FD_KEY_INT, 0, "100", NULL,
     "board posts kept in memory (1-1000)"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static int init(const struct fd_host *host)
{
    wc_host = host;
    return FD_OK;
}

/* Parses a decimal integer in [lo, hi]; false on anything else. */
static bool parse_int(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int check(struct fd_channel *ch, char *err, size_t errlen)
{
    long v;
    const char *h = wc_host->conf(ch, "history");
    /* Not a number at all is the host's FD_KEY_INT error; only the range
     * is ours to report. */
    if (h && parse_int(h, LONG_MIN, LONG_MAX, &v) &&
        !parse_int(h, 1, WC_MAX_HISTORY, &v)) {
        snprintf(err, errlen, "history: want a number from 1 to %d, got '%s'",
                 WC_MAX_HISTORY, h);
        return FD_EINVAL;
    }
    const char *t = wc_host->conf(ch, "title");
    if (t && (strlen(t) > 200 || !wc_utf8_valid(t, strlen(t)))) {
        snprintf(err, errlen, "title: want at most 200 bytes of UTF-8");
        return FD_EINVAL;
    }
    return FD_OK;
}

static void webchat_free(struct webchat *wc)
{
    if (!wc)
        return;
    wc_board_free(wc);
    wc_visitors_free(wc);
    free(wc->page);
    free(wc);
}

static int start(struct fd_channel *ch)
{
    struct webchat *wc = calloc(1, sizeof *wc);
    if (!wc)
        return FD_ENOMEM;
    wc->ch = ch;
    long history = WC_DEFAULT_HISTORY;
    const char *h = wc_host->conf(ch, "history");
    if (h && !parse_int(h, 1, WC_MAX_HISTORY, &history)) {
        LOG(ch, FD_LOG_ERROR, "history: want a number from 1 to %d",
            WC_MAX_HISTORY);
        webchat_free(wc);
        return FD_EINVAL;
    }
    wc->history = (int)history;
    wc->posts = calloc((size_t)wc->history, sizeof *wc->posts);
    const char *title = wc_host->conf(ch, "title");
    if (!title || !*title)
        title = "frontdesk demo";
    if (!wc->posts || wc_page_build(title, &wc->page, &wc->page_len) < 0) {
        webchat_free(wc);
        return FD_ENOMEM;
    }
    /* Event ids must stay unique across restarts (the core dedupes on
     * them): a random prefix per start, then a counter. */
    if (wc_host->random_hex(wc->boot, 8) < 0)
        snprintf(wc->boot, sizeof wc->boot, "%08lx%08lx",
                 (unsigned long)wc_now_ms() & 0xffffffffUL,
                 (unsigned long)getpid() & 0xffffffffUL);
    wc_host->set_data(ch, wc);
    LOG(ch, FD_LOG_INFO, "serving the demo page (history %d)", wc->history);
    return FD_OK;
}

static void stop(struct fd_channel *ch)
{
    struct webchat *wc = wc_host->get_data(ch);
    if (!wc)
        return;
    /* Detach first: ws_close may report FD_WS_CLOSED right away, and that
     * must find no state of ours to touch. */
    wc_host->set_data(ch, NULL);
    struct wc_conn *k = wc->conns;
    while (k) {
        struct wc_conn *next = k->next;
        wc_host->conn_set_data(k->c, NULL);
        wc_host->ws_close(k->c);
        free(k);
        k = next;
    }
    wc->conns = NULL;
    webchat_free(wc);
}

/* ---- HTTP --------------------------------------------------------------- */

static void webhook(struct fd_channel *ch, const struct fd_http_in *req,
                    struct fd_http_reply *reply)
{
    struct webchat *wc = wc_host->get_data(ch);
    const char *path = req->path ? req->path : "";
    bool is_page = strcmp(path, "") == 0 || strcmp(path, "/") == 0 ||
                   strcmp(path, "/index.html") == 0;
    if (!wc) {
        wc_host->reply_status(reply, 503);
        return;
    }
    if (!is_page) {
        wc_host->reply_status(reply, 404);
        wc_host->reply_type(reply, "text/plain; charset=utf-8");
        wc_host->reply_body(reply, "not found\n", 10);
        return;
    }
    if (!req->method ||
        (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)) {
        wc_host->reply_status(reply, 405);
        wc_host->reply_type(reply, "text/plain; charset=utf-8");
        wc_host->reply_body(reply, "method not allowed\n", 19);
        return;
    }
    wc_host->reply_status(reply, 200);
    wc_host->reply_type(reply, "text/html; charset=utf-8");
    if (wc_host->reply_body(reply, wc->page, wc->page_len) < 0)
        wc_host->reply_status(reply, 500);
}

/* ---- sending to browsers ---------------------------------------------- */

/* Sends and frees `msg` (may be NULL after ENOMEM: then nothing is sent). */
static void send_one(struct wc_conn *k, char *msg)
{
    if (!msg)
        return;
    if (wc_host->ws_send(k->c, msg, strlen(msg)) < 0)
        LOG(k->wc->ch, FD_LOG_DEBUG, "could not queue a message to a browser");
    free(msg);
}

static void send_visitor(struct wc_visitor *v, const char *msg)
{
    if (!msg)
        return;
    for (struct wc_conn *k = v->conns; k; k = k->vnext)
        if (wc_host->ws_send(k->c, msg, strlen(msg)) < 0)
            LOG(k->wc->ch, FD_LOG_DEBUG, "could not queue a message");
}

/* Sends `msg` about post `p` to every connection that said hello, or
 * only to the author's while the post is held. */
static void broadcast(struct webchat *wc, const struct wc_post *p,
                      const char *msg)
{
    if (!msg)
        return;
    for (struct wc_conn *k = wc->conns; k; k = k->next) {
        if (!k->v || (p->held && strcmp(k->v->id, p->visitor) != 0))
            continue;
        if (wc_host->ws_send(k->c, msg, strlen(msg)) < 0)
            LOG(wc->ch, FD_LOG_DEBUG, "could not queue a message");
    }
}

/* A post to its author's tabs (mine = true) or to everyone else's. */
static void send_post(struct webchat *wc, const struct wc_post *p,
                      bool author)
{
    char *msg = wc_msg_post(p, author ? p->visitor : NULL);
    if (!msg)
        return;
    for (struct wc_conn *k = wc->conns; k; k = k->next) {
        if (!k->v || (strcmp(k->v->id, p->visitor) == 0) != author)
            continue;
        if (wc_host->ws_send(k->c, msg, strlen(msg)) < 0)
            LOG(wc->ch, FD_LOG_DEBUG, "could not queue a message");
    }
    free(msg);
}

static void schedule_release(struct webchat *wc, int64_t now);

/* Timer: shows the held posts whose time came to everyone else. */
static void release_posts(void *ud)
{
    struct webchat *wc = ud;
    wc->release = NULL;
    int64_t now = wc_mono_ms();
    for (int i = 0; i < wc->nposts; i++) {
        struct wc_post *p = wc->posts[i];
        if (p->held && p->held_until <= now) {
            p->held = false;
            send_post(wc, p, false);
        }
    }
    schedule_release(wc, now);
}

static void schedule_release(struct webchat *wc, int64_t now)
{
    if (wc->release)
        return;
    int64_t next = -1;
    for (int i = 0; i < wc->nposts; i++)
        if (wc->posts[i]->held &&
            (next < 0 || wc->posts[i]->held_until < next))
            next = wc->posts[i]->held_until;
    if (next < 0)
        return;
    int ms = next > now ? (int)(next - now) : 0;
    wc->release = wc_host->timer_add(wc->ch, ms, release_posts, wc);
    if (!wc->release) /* cannot wait: show them now rather than never */
        for (int i = 0; i < wc->nposts; i++)
            if (wc->posts[i]->held) {
                wc->posts[i]->held = false;
                send_post(wc, wc->posts[i], false);
            }
}

static void send_error(struct wc_conn *k, const char *text)
{
    send_one(k, wc_msg_simple("error", "text", text));
}

/* A bot or visitor message into the private pane of `v`, on all its tabs. */
static int visitor_dm(struct wc_visitor *v, const char *text, bool from_bot,
                      int64_t case_id)
{
    int rc = wc_visitor_dm(v, text, from_bot, case_id);
    if (rc < 0)
        return rc;
    if (from_bot && !v->conns)
        v->unread++;
    char *msg = wc_msg_dm(&v->dms[v->ndms - 1]);
    send_visitor(v, msg);
    free(msg);
    return FD_OK;
}

/* ---- messages from browsers -------------------------------------------- */

static const char *str_field(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(j) && j->valuestring ? j->valuestring : NULL;
}

static void attach(struct wc_conn *k, struct wc_visitor *v)
{
    k->v = v;
    k->vnext = v->conns;
    v->conns = k;
}

static void detach(struct wc_conn *k)
{
    if (!k->v)
        return;
    for (struct wc_conn **pp = &k->v->conns; *pp; pp = &(*pp)->vnext) {
        if (*pp == k) {
            *pp = k->vnext;
            break;
        }
    }
    k->v = NULL;
    k->vnext = NULL;
}

static void on_hello(struct wc_conn *k, const cJSON *j)
{
    struct webchat *wc = k->wc;
    const char *id = str_field(j, "visitor");
    if (!id || !wc_visitor_id_ok(id)) {
        send_error(k, "bad visitor id");
        LOG(wc->ch, FD_LOG_DEBUG, "hello without a usable visitor id");
        return;
    }
    if (k->v && strcmp(k->v->id, id) != 0)
        detach(k);
    struct wc_visitor *v = wc_visitor_get(wc, id);
    if (!v) {
        send_error(k, "the demo is full, try again later");
        LOG(wc->ch, FD_LOG_WARN, "no room for another visitor");
        return;
    }
    char *name = wc_clean_text(str_field(j, "name"), WC_MAX_NAME, true);
    if (name) {
        snprintf(v->name, sizeof v->name, "%s", name);
        free(name);
    }
    if (!k->v)
        attach(k, v);
    send_one(k, wc_msg_board(wc, v->id));
    send_one(k, wc_msg_dms(v));
}

static void on_name(struct wc_conn *k, const cJSON *j)
{
    char *name = wc_clean_text(str_field(j, "name"), WC_MAX_NAME, true);
    if (name && k->v)
        snprintf(k->v->name, sizeof k->v->name, "%s", name);
    free(name);
}

/* Cleans the "text" field, replying with an error when it is unusable.
 * Returns a malloc'd text or NULL. */
static char *take_text(struct wc_conn *k, const cJSON *j)
{
    const char *raw = str_field(j, "text");
    if (!raw)
        return NULL;
    if (strlen(raw) > WC_MAX_TEXT) {
        send_error(k, "message too long (at most 4096 bytes)");
        return NULL;
    }
    if (!k->v) {
        send_error(k, "say hello first");
        return NULL;
    }
    if (!wc_visitor_rate_ok(k->v)) {
        send_error(k, "slow down a little, please");
        return NULL;
    }
    if (!wc_utf8_valid(raw, strlen(raw))) {
        send_error(k, "message is not valid UTF-8");
        return NULL;
    }
    return wc_clean_text(raw, WC_MAX_TEXT, false); /* NULL: only spaces */
}

static void next_id(struct webchat *wc, char *out, size_t size)
{
    snprintf(out, size, "%s-%" PRIu64, wc->boot, ++wc->seq);
}

static void on_post(struct wc_conn *k, const cJSON *j)
{
    struct webchat *wc = k->wc;
    char *text = take_text(k, j);
    if (!text)
        return;
    struct wc_visitor *v = k->v;
    char id[48];
    next_id(wc, id, sizeof id);
    /* The message handed to the core gets its own copy: the board's copy
     * may be wiped by a HIDE that the core carries out inside deliver(). */
    char *copy = strdup(text);
    if (!copy || !wc_post_add(wc, id, v, text)) {
        free(copy);
        send_error(k, "out of memory");
        return;
    }
    struct fd_msg m = {
        .event_id = id,
        .message_id = id,
        .text = copy,
        .is_private = false,
        .user_id = v->id,
        .user_name = v->name,
        .chat_id = "board",
    };
    int rc = wc_host->deliver(wc->ch, &m);
    explicit_bzero(copy, strlen(copy));
    free(copy);
    if (rc < 0) {
        wc_post_remove(wc, id);
        send_error(k, "your post could not be recorded, please try again");
        LOG(wc->ch, FD_LOG_WARN, "deliver failed (%d); post dropped", rc);
        return;
    }
    /* Shown after deliver, so whatever the script's actions already did
     * inside it is part of the post: to the author at once, to everyone
     * else after WC_HOLD_MS (see webchat.h). */
    struct wc_post *p = wc_post_find(wc, id);
    if (p) {
        send_post(wc, p, true);
        p->held = true;
        p->held_until = wc_mono_ms() + WC_HOLD_MS;
        schedule_release(wc, wc_mono_ms());
    }
}

static void on_private(struct wc_conn *k, const cJSON *j)
{
    struct webchat *wc = k->wc;
    char *text = take_text(k, j);
    if (!text)
        return;
    struct wc_visitor *v = k->v;
    char id[48], chat[8 + WC_MAX_VISITOR_ID];
    next_id(wc, id, sizeof id);
    snprintf(chat, sizeof chat, "dm:%s", v->id);
    struct fd_msg m = {
        .event_id = id,
        .message_id = id,
        .text = text,
        .is_private = true,
        .user_id = v->id,
        .user_name = v->name,
        .chat_id = chat,
    };
    /* Echo first so the visitor's own line precedes the bot's answer. */
    if (visitor_dm(v, text, false, v->last_case) < 0) {
        free(text);
        send_error(k, "out of memory");
        return;
    }
    int rc = wc_host->deliver(wc->ch, &m);
    free(text);
    if (rc < 0) {
        send_error(k, "your message could not be recorded, please try again");
        LOG(wc->ch, FD_LOG_WARN, "deliver failed (%d)", rc);
    }
}

static void on_message(struct wc_conn *k, const char *data, size_t len)
{
    struct webchat *wc = k->wc;
    if (len > WC_MAX_FRAME) {
        LOG(wc->ch, FD_LOG_DEBUG, "ignored a %zu-byte message (limit %d)", len,
            WC_MAX_FRAME);
        send_error(k, "message too long");
        return;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    const char *type = j && cJSON_IsObject(j) ? str_field(j, "type") : NULL;
    if (!type) {
        LOG(wc->ch, FD_LOG_DEBUG, "ignored a malformed message (%zu bytes)",
            len);
        cJSON_Delete(j);
        return;
    }
    if (strcmp(type, "hello") == 0)
        on_hello(k, j);
    else if (strcmp(type, "post") == 0)
        on_post(k, j);
    else if (strcmp(type, "private") == 0)
        on_private(k, j);
    else if (strcmp(type, "name") == 0)
        on_name(k, j);
    else if (strcmp(type, "read") == 0) {
        if (k->v)
            k->v->unread = 0;
    } else if (strcmp(type, "ping") == 0)
        send_one(k, wc_msg_simple("pong", NULL, NULL));
    else
        LOG(wc->ch, FD_LOG_DEBUG, "ignored a message of unknown type");
    cJSON_Delete(j);
}

static void ws_event(struct fd_channel *ch, struct fd_conn *c,
                     enum fd_ws_event ev, const char *data, size_t len)
{
    struct webchat *wc = wc_host->get_data(ch);
    struct wc_conn *k = wc_host->conn_get_data(c);
    switch (ev) {
    case FD_WS_OPEN:
        if (!wc)
            return;
        k = calloc(1, sizeof *k);
        if (!k) {
            wc_host->ws_close(c);
            return;
        }
        k->c = c;
        k->wc = wc;
        k->next = wc->conns;
        if (wc->conns)
            wc->conns->prev = k;
        wc->conns = k;
        wc_host->conn_set_data(c, k);
        LOG(ch, FD_LOG_DEBUG, "browser connected");
        break;
    case FD_WS_MESSAGE:
        if (wc && k && data)
            on_message(k, data, len);
        break;
    case FD_WS_CLOSED:
        if (!wc || !k)
            return;
        detach(k);
        if (k->prev)
            k->prev->next = k->next;
        else
            wc->conns = k->next;
        if (k->next)
            k->next->prev = k->prev;
        wc_host->conn_set_data(c, NULL);
        free(k);
        LOG(ch, FD_LOG_DEBUG, "browser disconnected");
        break;
    }
}

/* ---- actions from the core -------------------------------------------- */

/* The visitor an action is for: its user_id, or the id in "dm:<id>". */
static const char *action_visitor(const struct fd_action *a)
{
    if (a->user_id && *a->user_id)
        return a->user_id;
    if (a->chat_id && strncmp(a->chat_id, "dm:", 3) == 0)
        return a->chat_id + 3;
    return NULL;
}

static void done(struct fd_send *token, enum fd_send_status st,
                 const char *error)
{
    struct fd_send_result r = {.status = st, .error = error};
    wc_host->send_done(token, &r);
}

static int send_dm(struct webchat *wc, const struct fd_action *a,
                   struct fd_send *token)
{
    const char *vid = action_visitor(a);
    if (!vid || !wc_visitor_id_ok(vid) || !a->text) {
        done(token, FD_SEND_FAILED, "no visitor or text");
        return FD_OK;
    }
    /* A visitor forgotten (restart, eviction) is created again so the
     * message waits for their next visit. */
    struct wc_visitor *v = wc_visitor_get(wc, vid);
    if (!v) {
        done(token, FD_SEND_RETRY, "no room for the visitor");
        return FD_OK;
    }
    int rc = visitor_dm(v, a->text, true, a->case_id);
    if (rc == FD_EINVAL)
        done(token, FD_SEND_FAILED, "empty or invalid text");
    else if (rc < 0)
        done(token, FD_SEND_RETRY, "out of memory");
    else
        done(token, FD_SEND_OK, NULL);
    return FD_OK;
}

static int send_action(struct fd_channel *ch, const struct fd_action *a,
                       struct fd_send *token)
{
    struct webchat *wc = wc_host->get_data(ch);
    if (!wc) {
        done(token, FD_SEND_RETRY, "channel not running");
        return FD_OK;
    }
    struct wc_post *p;
    switch (a->kind) {
    case FD_ACTION_DM:
        return send_dm(wc, a, token);
    case FD_ACTION_REPLY:
        if (a->is_private || (a->chat_id && strncmp(a->chat_id, "dm:", 3) == 0))
            return send_dm(wc, a, token);
        p = wc_post_find(wc, a->message_id);
        if (!p) {
            /* Gone from the board (history, restart): nothing to show it
             * under; retrying would not bring the post back. */
            LOG(ch, FD_LOG_INFO, "answer to post %s no longer on the board",
                a->message_id ? a->message_id : "?");
            done(token, FD_SEND_OK, NULL);
            return FD_OK;
        }
        if (!a->text || wc_post_answer(p, a->text, a->case_id) < 0) {
            done(token, FD_SEND_FAILED, "empty or invalid text");
            return FD_OK;
        }
        {
            char *msg = wc_msg_answer(p, &p->answers[p->nanswers - 1]);
            broadcast(wc, p, msg);
            free(msg);
        }
        done(token, FD_SEND_OK, NULL);
        return FD_OK;
    case FD_ACTION_HIDE:
        p = wc_post_find(wc, a->message_id);
        if (p && !p->hidden) {
            wc_post_hide(p);
            char *msg = wc_msg_hidden(p);
            broadcast(wc, p, msg);
            free(msg);
            LOG(ch, FD_LOG_INFO, "hid post %s", p->id);
        }
        done(token, FD_SEND_OK, NULL);
        return FD_OK;
    }
    done(token, FD_SEND_FAILED, "unknown action");
    return FD_OK;
}

FD_EXPORT const struct fd_plugin frontdesk_plugin = {
    FD_PLUGIN_INIT,
    .name = "webchat",
    .version = "1.0",
    .caps = FD_CAP_DM | FD_CAP_HIDE | FD_CAP_WEBPAGE,
    .keys = keys,
    .init = init,
    .check = check,
    .start = start,
    .stop = stop,
    .webhook = webhook,
    .send = send_action,
    .ws_event = ws_event,
};
