/*
 * inbound.c - how posts reach the Mattermost plugin.
 *
 * Start-up is a chain of calls, one at a time, each retried with backoff
 * (1 s doubling to 60 s with jitter) and never blocking: GET /users/me (the
 * bot's id, so it never answers itself), GET /config/client (MaxPostSize;
 * optional), then the websocket (socket.c).
 *
 * A post becomes an fd_msg whose event id is the post id, so a post seen
 * twice (an event and a catch-up, a replay) is answered once.  Skipped:
 * the bot's own posts, other bots' (props.from_bot), integrations'
 * (props.from_webhook), system messages (a type other than "" or "me"),
 * deleted and empty posts.
 *
 * Catch-up: `cursor` is a server time such that every post created before
 * it (less a 10 s slack for posts broadcast late) was handed to the core.
 * It follows the newest post or pong seen, and is held ("frozen") from the
 * moment something may have been missed - a new websocket session after an
 * old one, a post the store could not record, a start with a persisted
 * cursor - until a catch-up covered the gap: GET /users/me/channels (the
 * channels with posts since; the channels seen before on servers older
 * than 6.1), then for each GET /channels/{id}/posts?since=<cursor - slack>,
 * oldest first, the authors' names from POST /users/ids.  Catch-ups run one
 * at a time; a failed one is retried with backoff.  The cursor is kept in
 * the channel's key/value store, so a restart catches up too (at most the
 * last 24 hours).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mattermost.h"

/* ---- the start-up chain ------------------------------------------------- */

static void on_ctl_timer(void *ud)
{
    mm_ctl_step(ud);
}

static void ctl_later(struct mm *t, int ms)
{
    if (!H->timer_add(t->ch, ms, on_ctl_timer, t))
        H->log(t->ch, FD_LOG_ERROR,
               "cannot schedule a timer; start-up stalled");
}

static int ctl_retry_ms(struct mm *t, int wait_ms)
{
    t->ctl_failures++;
    return wait_ms > 0 ? wait_ms
                       : H->backoff_ms(t->ctl_failures, CTL_BACKOFF_MIN_MS,
                                       CTL_BACKOFF_MAX_MS);
}

void mm_ctl_step(struct mm *t)
{
    const char *path;
    enum call_kind kind;
    switch (t->phase) {
    case PH_ME:
        path = "/users/me";
        kind = CALL_ME;
        break;
    case PH_CONFIG:
        path = "/config/client?format=old";
        kind = CALL_CONFIG;
        break;
    default:
        mm_ws_connect(t);
        return;
    }
    struct call *c = mm_call_new(kind);
    if (!c || mm_api_call(t, c, "GET", path, NULL) < 0) {
        free(c);
        H->log(t->ch, FD_LOG_WARN, "%s: could not start the request", path);
        ctl_later(t, ctl_retry_ms(t, 0));
    }
}

/* A username as Mattermost allows it: [a-z0-9.-_], at most 64. */
static bool is_username(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= HANDLE_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-_") == n;
}

void mm_ctl_done(struct mm *t, struct call *c, const struct fd_http_response *r)
{
    char why[320];
    if (c->kind == CALL_CONFIG) {
        /* Optional: without it texts are cut at the old 4000-rune limit. */
        cJSON *doc = r->status == 200 && r->body_len
                         ? cJSON_ParseWithLength(r->body, r->body_len)
                         : NULL;
        const char *s = mm_json_str(doc, "MaxPostSize");
        long v = 0;
        if (s) {
            char *end;
            v = strtol(s, &end, 10);
            if (end == s || *end)
                v = 0;
        }
        if (v >= 100 && v <= 1000000) {
            t->max_runes = (int)v;
        } else {
            mm_describe(why, sizeof why, r);
            H->log(t->ch, FD_LOG_INFO,
                   "client config: %s; posts are cut at %d characters",
                   r->status == 200 ? "no MaxPostSize" : why, t->max_runes);
        }
        cJSON_Delete(doc);
        t->phase = PH_LIVE;
        t->ctl_failures = 0;
        mm_ctl_step(t);
        return;
    }
    /* users/me */
    cJSON *doc = r->status == 200 && r->body_len
                     ? cJSON_ParseWithLength(r->body, r->body_len)
                     : NULL;
    const char *id = mm_json_str(doc, "id");
    const char *name = mm_json_str(doc, "username");
    if (!mm_is_id(id) || !is_username(name)) {
        int ms = ctl_retry_ms(t, r->status == 429 ? mm_limit_wait_ms(r) : 0);
        if (r->status == 200)
            snprintf(why, sizeof why, "not a user object");
        else
            mm_describe(why, sizeof why, r);
        H->log(t->ch, r->status == 401 ? FD_LOG_ERROR : FD_LOG_WARN,
               "users/me: %s%s; retry in %.1f s", why,
               r->status == 401 ? " (check the token)" : "", ms / 1000.0);
        cJSON_Delete(doc);
        ctl_later(t, ms);
        return;
    }
    memcpy(t->bot_id, id, ID_BUF);
    snprintf(t->bot_name, sizeof t->bot_name, "%s", name);
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "is_bot")))
        H->log(t->ch, FD_LOG_WARN,
               "@%s is a user account, not a bot account: it works, but "
               "answers come from that person",
               name);
    H->log(t->ch, FD_LOG_INFO, "bot @%s (id %s)", name, id);
    cJSON_Delete(doc);
    t->ctl_failures = 0;
    t->phase = PH_CONFIG;
    mm_ctl_step(t);
}

/* ---- the cursor ---------------------------------------------------------- */

/* The cursor goes to the key/value store at most every CURSOR_SAVE_MS: at
 * once from the event that moved it when that much time passed, else from
 * a timer.  The host commits store writes at the end of a loop turn, and a
 * turn that only ran timers ends with the next network event, so the timer
 * also pings the server: its answer ends the turn.  A saved cursor older
 * than the real one only means a longer catch-up after a restart. */
static void save_now(struct mm *t)
{
    if (t->cursor == t->saved_cursor)
        return;
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, t->cursor);
    if (H->kv_set(t->ch, "cursor", v) == FD_OK) {
        t->saved_cursor = t->cursor;
        t->saved_at = mm_mono_ms();
    }
}

static void on_save_timer(void *ud)
{
    struct mm *t = ud;
    t->save_timer = NULL;
    save_now(t);
    mm_ws_nudge(t);
}

static void save_later(struct mm *t)
{
    if (t->cursor == t->saved_cursor)
        return;
    if (mm_mono_ms() - t->saved_at >= CURSOR_SAVE_MS) {
        save_now(t);
        return;
    }
    if (!t->save_timer)
        t->save_timer = H->timer_add(t->ch, CURSOR_SAVE_MS, on_save_timer, t);
}

void mm_cursor_load(struct mm *t)
{
    char *v = H->kv_get(t->ch, "cursor");
    if (!v)
        return;
    char *end;
    long long ms = strtoll(v, &end, 10);
    if (end != v && !*end && ms > 0) {
        t->cursor = t->seen_max = t->saved_cursor = ms;
        t->frozen = true; /* catch up once the websocket is there */
        t->gap_gen++;
    }
    free(v);
}

void mm_cursor_advance(struct mm *t, int64_t ms, bool from_pong)
{
    if (ms > t->seen_max)
        t->seen_max = ms;
    if (!t->frozen && t->seen_max > t->cursor) {
        t->cursor = t->seen_max;
        /* A pong's time is saved only when a save is due anyway: a timer
         * for it would ping, and the pong would move the cursor again. */
        if (!from_pong)
            save_later(t);
        else if (mm_mono_ms() - t->saved_at >= CURSOR_SAVE_MS)
            save_now(t);
    }
}

static void cu_start(struct mm *t, const char *why);
static void cu_retry_later(struct mm *t, int wait_ms);

/* A post the core could not record: hold the cursor before it, and fetch
 * it again later (the store is failing now). */
static void note_failure(struct mm *t, int64_t create_at)
{
    int64_t at = create_at > 0 ? create_at - 1 : t->cursor;
    if (at > 0 && (t->cursor == 0 || at < t->cursor))
        t->cursor = at;
    if (t->cursor < t->saved_cursor)
        save_now(t); /* a restart must fetch it too */
    t->frozen = true;
    t->gap_gen++;
    if (t->cu_running)
        t->cu_failed = true;
    else
        cu_retry_later(t, 0);
}

/* ---- one post ------------------------------------------------------------ */

static const char *type_name(char type)
{
    switch (type) {
    case 'O':
        return "open";
    case 'P':
        return "private";
    case 'D':
        return "direct";
    case 'G':
        return "group";
    default:
        return "?";
    }
}

/* A string prop that is "true" (or a JSON true: older integrations). */
static bool prop_true(const cJSON *props, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(props, key);
    return cJSON_IsTrue(v) ||
           (cJSON_IsString(v) && strcmp(v->valuestring, "true") == 0);
}

/* "case 42" (or "case #42", any case, alone in the message): the answer
 * our NO_DM fallback asks for.  Writes the digits into out. */
static bool parse_case_link(const char *text, char *out, size_t len)
{
    const char *p = text + strspn(text, " \t\r\n");
    if (strncasecmp(p, "case", 4) != 0)
        return false;
    p += 4;
    p += strspn(p, " \t");
    if (*p == '#')
        p++;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 18 || n >= len || p[n + strspn(p + n, " \t\r\n")] != '\0')
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Names for a post's author: the cache (filled by users/ids lookups and
 * earlier events), else the event's sender_name, which is "@username" or a
 * display name depending on the server's TeammateNameDisplay. */
static void author_names(struct mm *t, const char *user, const char *sender,
                         const char **name, const char **handle)
{
    struct user_entry *u = mm_user_put(t, user);
    if (u && sender && *sender) {
        if (sender[0] == '@' && is_username(sender + 1) && !u->handle[0])
            snprintf(u->handle, sizeof u->handle, "%s", sender + 1);
        else if (sender[0] != '@' && !u->name[0])
            snprintf(u->name, sizeof u->name, "%.*s",
                     mm_utf8_prefix(sender, USER_NAME_BYTES), sender);
    }
    *name = u && u->name[0] ? u->name : NULL;
    *handle = u && u->handle[0] ? u->handle : NULL;
}

int mm_handle_post(struct mm *t, const cJSON *post, char type,
                   const char *sender)
{
    const char *id = mm_json_str(post, "id");
    const char *user = mm_json_str(post, "user_id");
    const char *chan = mm_json_str(post, "channel_id");
    const char *root = mm_json_str(post, "root_id");
    const char *text = mm_json_str(post, "message");
    const char *ptype = mm_json_str(post, "type");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(post, "props");
    int64_t create_at = 0, delete_at = 0;
    mm_json_int64(post, "create_at", &create_at);
    mm_json_int64(post, "delete_at", &delete_at);
    if (!mm_is_id(id) || !mm_is_id(user) || !mm_is_id(chan)) {
        H->log(t->ch, FD_LOG_WARN, "a post without valid ids, ignored");
        return POST_IGNORED;
    }
    if (type)
        mm_known_note(t, chan, type);
    else
        type = mm_known_type(t, chan);
    if (!type)
        type = 'O'; /* unknown: never treat it as private */
    const char *why = NULL;
    if (t->bot_id[0] && strcmp(user, t->bot_id) == 0)
        why = "our own post";
    else if (prop_true(props, "from_bot"))
        why = "from a bot";
    else if (prop_true(props, "from_webhook"))
        why = "from an integration";
    else if (ptype && *ptype && strcmp(ptype, "me") != 0)
        why = "a system message";
    else if (delete_at > 0)
        why = "deleted";
    else if (!text || !*text)
        why = "no text";
    if (why) {
        H->log(t->ch, FD_LOG_DEBUG, "post %s in %s channel %s: %s, ignored", id,
               type_name(type), chan, why);
        mm_cursor_advance(t, create_at, false);
        return POST_IGNORED;
    }
    bool is_private = type == 'D';
    if (is_private)
        mm_dm_put(t, user, chan); /* where a DM to this user goes */
    const char *name, *handle;
    author_names(t, user, sender, &name, &handle);
    char link[24];
    struct fd_msg m = {
        .event_id = id,
        .message_id = id,
        .text = text,
        .is_private = is_private,
        .user_id = user,
        .user_name = name,
        .user_handle = handle,
        .chat_id = chan,
        .thread = mm_is_id(root) ? root : NULL,
        .link_case = is_private && parse_case_link(text, link, sizeof link)
                         ? link
                         : NULL,
    };
    int rc = H->deliver(t->ch, &m);
    /* The cursor moves past this post next: only once it is committed. */
    if (rc >= 0 && H->commit(t->ch) != FD_OK)
        rc = FD_ESTORE;
    /* Per post: debug (a busy bot would log thousands of lines a second);
     * failures stay visible. */
    H->log(t->ch, rc < 0 ? FD_LOG_WARN : FD_LOG_DEBUG,
           "post %s in %s channel %s from user %s%s%s%s", id, type_name(type),
           chan, user, m.thread ? " (in a thread)" : "",
           m.link_case ? " (case link)" : "",
           rc == FD_DUPLICATE ? ", duplicate"
           : rc < 0           ? ", not recorded, will fetch it again"
                              : "");
    H->log(t->ch, FD_LOG_DEBUG, "post %s text: %.*s", id,
           mm_utf8_prefix(text, 80), text);
    if (rc < 0) {
        note_failure(t, create_at);
        return POST_FAILED;
    }
    mm_cursor_advance(t, create_at, false);
    return rc == FD_DUPLICATE ? POST_DUPLICATE : POST_DELIVERED;
}

/* ---- catch-up ---------------------------------------------------------- */

static void on_cu_timer(void *ud)
{
    struct mm *t = ud;
    t->cu_timer = NULL;
    if (!t->cu_running)
        cu_start(t, "retry");
}

/* The next try after `wait_ms` (the server's Retry-After), or backoff. */
static void cu_retry_later(struct mm *t, int wait_ms)
{
    if (t->cu_timer)
        return;
    t->cu_failures++;
    int ms = wait_ms > 0 ? wait_ms
                         : H->backoff_ms(t->cu_failures, CTL_BACKOFF_MIN_MS,
                                         CTL_BACKOFF_MAX_MS);
    t->cu_timer = H->timer_add(t->ch, ms, on_cu_timer, t);
    if (!t->cu_timer)
        H->log(t->ch, FD_LOG_ERROR, "cannot schedule the catch-up");
}

void mm_catchup_request(struct mm *t, const char *why)
{
    t->frozen = true;
    t->gap_gen++;
    if (t->cursor <= 0) {
        /* Nothing seen yet, not even a pong: there is no "since". */
        H->log(t->ch, FD_LOG_INFO,
               "catch-up (%s): no earlier time known, nothing to fetch", why);
        t->frozen = false;
        return;
    }
    if (t->cu_running || t->cu_timer)
        return; /* the running one starts over when done (gap_gen moved) */
    cu_start(t, why);
}

static void cu_batch_drop(struct mm *t)
{
    cJSON_Delete(t->cu_batch);
    t->cu_batch = NULL;
}

static void cu_finish(struct mm *t)
{
    cu_batch_drop(t);
    free(t->cu_list);
    t->cu_list = NULL;
    size_t nchan = t->cu_n;
    t->cu_n = t->cu_i = 0;
    t->cu_running = false;
    if (t->cu_failed) {
        H->log(t->ch, FD_LOG_WARN,
               "catch-up incomplete (%zu post(s) delivered); retrying later",
               t->cu_delivered);
        cu_retry_later(t, t->cu_wait_ms);
        return;
    }
    t->cu_failures = 0;
    H->log(t->ch, FD_LOG_INFO,
           "catch-up done: %zu post(s) delivered, %zu already seen, "
           "%zu channel(s) looked at",
           t->cu_delivered, t->cu_dups, nchan);
    if (t->gap_gen != t->cu_gen) {
        cu_start(t, "more missed meanwhile");
        return;
    }
    /* Everything up to the run's start is in.  Posts after it came live,
     * unless the socket dropped meanwhile: then only as far as the start. */
    t->frozen = false;
    if (t->ws_epoch == t->cu_epoch) {
        mm_cursor_advance(t, 0, false);
    } else if (t->cu_anchor > t->cursor) {
        t->cursor = t->cu_anchor;
        save_later(t);
    }
}

static void cu_fail(struct mm *t, const char *what,
                    const struct fd_http_response *r)
{
    char why[320];
    mm_describe(why, sizeof why, r);
    H->log(t->ch, FD_LOG_WARN, "catch-up: %s: %s", what, why);
    t->cu_failed = true;
    if (r->status == 429)
        t->cu_wait_ms = mm_limit_wait_ms(r);
    cu_finish(t);
}

static bool cu_issue(struct mm *t, enum call_kind kind, const char *method,
                     const char *path, const char *body)
{
    struct call *c = mm_call_new(kind);
    if (c)
        c->gen = t->cu_run;
    if (!c || mm_api_call(t, c, method, path, body) < 0) {
        free(c);
        H->log(t->ch, FD_LOG_WARN, "catch-up: could not start a request");
        t->cu_failed = true;
        cu_finish(t);
        return false;
    }
    return true;
}

/* Asks for the next page of the current channel, or finishes. */
static void cu_next(struct mm *t)
{
    if (t->cu_i >= t->cu_n) {
        cu_finish(t);
        return;
    }
    char path[128];
    snprintf(path, sizeof path, "/channels/%s/posts?since=%" PRId64,
             t->cu_list[t->cu_i].id, t->cu_page_since);
    cu_issue(t, CALL_POSTS, "GET", path, NULL);
}

static void cu_channel_done(struct mm *t)
{
    t->cu_i++;
    t->cu_round = 0;
    t->cu_page_since = t->cu_since;
    cu_next(t);
}

static void cu_start(struct mm *t, const char *why)
{
    t->cu_running = true;
    t->cu_failed = false;
    t->cu_wait_ms = 0;
    t->cu_gen = t->gap_gen;
    t->cu_run++;
    t->cu_epoch = t->ws_epoch;
    t->cu_anchor = t->seen_max;
    t->cu_delivered = t->cu_dups = 0;
    int64_t since = t->cursor - CATCHUP_SLACK_MS;
    int64_t floor = mm_now_ms() - CATCHUP_MAX_AGE_MS;
    if (since < floor) {
        H->log(t->ch, FD_LOG_WARN,
               "catch-up: the gap is older than 24 h; fetching the last 24 h "
               "only");
        since = floor;
    }
    t->cu_since = t->cu_page_since = since;
    t->cu_round = 0;
    H->log(t->ch, FD_LOG_INFO, "catch-up (%s): posts since %" PRId64, why,
           since);
    cu_issue(t, CALL_CHANNELS, "GET", "/users/me/channels", NULL);
}

static bool cu_list_add(struct mm *t, size_t *cap, const char *id, char type)
{
    if (t->cu_n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        struct cu_chan *v = realloc(t->cu_list, nc * sizeof *v);
        if (!v)
            return false;
        t->cu_list = v;
        *cap = nc;
    }
    memcpy(t->cu_list[t->cu_n].id, id, ID_BUF);
    t->cu_list[t->cu_n++].type = type;
    return true;
}

static void on_channels(struct mm *t, const struct fd_http_response *r)
{
    size_t cap = 0;
    if (r->status == 404 || r->status == 405 || r->status == 501) {
        /* A server before 6.1: the channels we have seen posts in. */
        H->log(t->ch, FD_LOG_INFO,
               "catch-up: no users/me/channels on this server; looking at "
               "the %zu channel(s) seen before",
               t->nknown);
        for (size_t i = 0; i < t->nknown; i++)
            if (!cu_list_add(t, &cap, t->known[i].id, t->known[i].type)) {
                t->cu_failed = true;
                cu_finish(t);
                return;
            }
        cu_next(t);
        return;
    }
    cJSON *doc = r->status == 200 && r->body_len
                     ? cJSON_ParseWithLength(r->body, r->body_len)
                     : NULL;
    if (!cJSON_IsArray(doc)) {
        cJSON_Delete(doc);
        cu_fail(t, "users/me/channels", r);
        return;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, doc)
    {
        const char *id = mm_json_str(c, "id");
        const char *type = mm_json_str(c, "type");
        int64_t last = 0, deleted = 0;
        if (!mm_is_id(id) || !type || strlen(type) != 1 ||
            !strchr("OPDG", type[0]))
            continue;
        mm_known_note(t, id, type[0]);
        mm_json_int64(c, "delete_at", &deleted);
        if (deleted > 0)
            continue; /* archived: nobody posts there */
        /* A channel whose last post is older than the gap has nothing. */
        if (mm_json_int64(c, "last_post_at", &last) && last > 0 &&
            last < t->cu_since)
            continue;
        if (!cu_list_add(t, &cap, id, type[0])) {
            cJSON_Delete(doc);
            t->cu_failed = true;
            cu_finish(t);
            return;
        }
    }
    cJSON_Delete(doc);
    cu_next(t);
}

static int64_t post_time(const cJSON *p, const char *key)
{
    int64_t v = 0;
    mm_json_int64(p, key, &v);
    return v;
}

static int by_create_at(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    int64_t tx = post_time(x, "create_at"), ty = post_time(y, "create_at");
    if (tx != ty)
        return tx < ty ? -1 : 1;
    const char *ix = mm_json_str(x, "id"), *iy = mm_json_str(y, "id");
    return strcmp(ix ? ix : "", iy ? iy : "");
}

/* Delivers the page in t->cu_batch (sorted already), then moves on. */
static void cu_deliver_batch(struct mm *t)
{
    const struct cu_chan *cc = &t->cu_list[t->cu_i];
    const cJSON *posts = t->cu_batch;
    int n = cJSON_GetArraySize(posts);
    int64_t newest = t->cu_page_since;
    for (int i = 0; i < n; i++) {
        const cJSON *p = cJSON_GetArrayItem(posts, i);
        const char *chan = mm_json_str(p, "channel_id");
        int64_t u = post_time(p, "update_at"), c = post_time(p, "create_at");
        if (u > newest)
            newest = u;
        if (c > newest)
            newest = c;
        if (!chan || strcmp(chan, cc->id) != 0)
            continue; /* not this channel's: not ours to trust */
        /* `since` also returns older posts changed in the gap (edited,
         * deleted): they are not what was missed. */
        if (c < t->cu_since)
            continue;
        switch (mm_handle_post(t, p, cc->type, NULL)) {
        case POST_DELIVERED:
            t->cu_delivered++;
            break;
        case POST_DUPLICATE:
            t->cu_dups++;
            break;
        case POST_FAILED:
            t->cu_failed = true;
            break;
        default:
            break;
        }
    }
    cu_batch_drop(t);
    /* `since` answers at most 1000 posts: a full page asks again from the
     * newest time in it. */
    if (n >= CATCHUP_PAGE_FULL && newest > t->cu_page_since &&
        t->cu_round + 1 < CATCHUP_MAX_ROUNDS) {
        t->cu_round++;
        t->cu_page_since = newest;
        cu_next(t);
        return;
    }
    cu_channel_done(t);
}

static void on_posts(struct mm *t, const struct fd_http_response *r)
{
    if (r->status == 403 || r->status == 404) {
        /* Left or deleted meanwhile: nothing to answer there. */
        H->log(t->ch, FD_LOG_INFO, "catch-up: channel %s: HTTP %d, skipped",
               t->cu_list[t->cu_i].id, r->status);
        cu_channel_done(t);
        return;
    }
    cJSON *doc = r->status == 200 && r->body_len
                     ? cJSON_ParseWithLength(r->body, r->body_len)
                     : NULL;
    const cJSON *posts = cJSON_GetObjectItemCaseSensitive(doc, "posts");
    if (!cJSON_IsObject(doc) || (posts && !cJSON_IsObject(posts))) {
        cJSON_Delete(doc);
        cu_fail(t, "channel posts", r);
        return;
    }
    /* Move the posts into an array of their own, oldest first. */
    int n = cJSON_GetArraySize(posts);
    const cJSON **v = n > 0 ? malloc((size_t)n * sizeof *v) : NULL;
    cJSON *batch = cJSON_CreateArray();
    if ((n > 0 && !v) || !batch) {
        free(v);
        cJSON_Delete(batch);
        cJSON_Delete(doc);
        t->cu_failed = true;
        cu_finish(t);
        return;
    }
    int k = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, posts)
    {
        if (cJSON_IsObject(p) && k < n)
            v[k++] = p;
    }
    qsort(v, (size_t)k, sizeof *v, by_create_at);
    for (int i = 0; i < k; i++)
        cJSON_AddItemToArray(batch, cJSON_Duplicate(v[i], true));
    free(v);
    cJSON_Delete(doc);
    cu_batch_drop(t);
    t->cu_batch = batch;

    /* Names of authors we know nothing about, in one lookup. */
    cJSON *ids = cJSON_CreateArray();
    int nids = 0;
    cJSON_ArrayForEach(p, batch)
    {
        const char *u = mm_json_str(p, "user_id");
        if (!mm_is_id(u) || strcmp(u, t->bot_id) == 0 || nids >= 200)
            continue;
        struct user_entry *e = mm_user_get(t, u);
        if (e && (e->name[0] || e->handle[0]))
            continue;
        bool dup = false;
        const cJSON *x;
        cJSON_ArrayForEach(x, ids)
        {
            if (strcmp(x->valuestring, u) == 0)
                dup = true;
        }
        if (!dup && ids && cJSON_AddItemToArray(ids, cJSON_CreateString(u)))
            nids++;
    }
    char *body = nids ? cJSON_PrintUnformatted(ids) : NULL;
    cJSON_Delete(ids);
    if (body) {
        bool ok = cu_issue(t, CALL_USERS, "POST", "/users/ids", body);
        free(body);
        (void)ok; /* on failure cu_issue finished the run */
        return;
    }
    cu_deliver_batch(t);
}

static void on_users(struct mm *t, const struct fd_http_response *r)
{
    cJSON *doc = r->status == 200 && r->body_len
                     ? cJSON_ParseWithLength(r->body, r->body_len)
                     : NULL;
    if (!cJSON_IsArray(doc)) {
        char why[320];
        mm_describe(why, sizeof why, r);
        H->log(t->ch, FD_LOG_INFO, "catch-up: users/ids: %s; ids for names",
               why);
    }
    const cJSON *u, *list = cJSON_IsArray(doc) ? doc : NULL;
    cJSON_ArrayForEach(u, list)
    {
        const char *id = mm_json_str(u, "id");
        const char *username = mm_json_str(u, "username");
        const char *first = mm_json_str(u, "first_name");
        const char *last = mm_json_str(u, "last_name");
        const char *nick = mm_json_str(u, "nickname");
        struct user_entry *e = mm_is_id(id) ? mm_user_put(t, id) : NULL;
        if (!e)
            continue;
        if (is_username(username))
            snprintf(e->handle, sizeof e->handle, "%s", username);
        char name[2 * USER_NAME_BYTES + 2];
        snprintf(name, sizeof name, "%.*s%s%.*s",
                 first ? mm_utf8_prefix(first, 60) : 0, first ? first : "",
                 first && *first && last && *last ? " " : "",
                 last ? mm_utf8_prefix(last, 60) : 0, last ? last : "");
        if (!name[0] && nick)
            snprintf(name, sizeof name, "%.*s", mm_utf8_prefix(nick, 120),
                     nick);
        if (name[0])
            snprintf(e->name, sizeof e->name, "%.*s",
                     mm_utf8_prefix(name, USER_NAME_BYTES), name);
    }
    cJSON_Delete(doc);
    cu_deliver_batch(t);
}

void mm_catchup_done(struct mm *t, struct call *c,
                     const struct fd_http_response *r)
{
    if (!t->cu_running || c->gen != t->cu_run)
        return; /* a stale answer */
    switch (c->kind) {
    case CALL_CHANNELS:
        on_channels(t, r);
        break;
    case CALL_POSTS:
        on_posts(t, r);
        break;
    case CALL_USERS:
        on_users(t, r);
        break;
    default:
        break;
    }
}

void mm_inbound_free(struct mm *t)
{
    cu_batch_drop(t);
    free(t->cu_list);
    t->cu_list = NULL;
}
