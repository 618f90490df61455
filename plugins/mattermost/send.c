/*
 * send.c - carrying out the outbox's actions on Mattermost.
 *
 * REPLY: POST /posts into the channel, in the thread of the message
 * (root_id: its thread's root, or the message itself) - except in direct
 * channels, where a plain post reads naturally.  DM: POST /channels/direct
 * [bot, user] (cached per user, also learnt from the user's own DMs), then
 * POST /posts there.  HIDE: DELETE /posts/{id}.
 *
 * Texts longer than the server's MaxPostSize (counted in code points, as
 * Mattermost does) go out as several posts; which parts already went out is
 * remembered per action, so a retry resumes after them, and each part
 * carries a pending_post_id the server uses to drop a repeated create.
 *
 * Outcomes: 429 is RETRY after Retry-After, or the limiter's
 * X-Ratelimit-Reset without it, or 1 s without both (the limiter counts
 * per second); no answer, 408 and 5xx are RETRY with the
 * outbox's backoff; a DM the server refuses (403 on channels/direct, or
 * on the first post into it) is NO_DM with a public text asking the user
 * to write "case N" to the bot;
 * a reply under a post we deleted goes out without the thread; anything
 * else is FAILED.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mattermost.h"

void mm_msend_free(struct msend *s)
{
    if (!s)
        return;
    free(s->text);
    free(s);
}

static const char *kind_name(enum fd_action_kind k)
{
    return k == FD_ACTION_REPLY ? "reply in channel"
           : k == FD_ACTION_DM  ? "dm to user"
                                : "hide post";
}

static const char *target(const struct msend *s)
{
    return s->kind == FD_ACTION_DM     ? s->user
           : s->kind == FD_ACTION_HIDE ? s->post
                                       : s->chat;
}

/* Reports the outcome and forgets the action's progress. */
static void finish(struct mm *t, struct msend *s, enum fd_send_status st,
                   int retry_ms, const char *error, const char *fallback)
{
    struct fd_send_result res = {
        .status = st,
        .retry_after_ms = retry_ms,
        .error = error,
        .fallback = fallback,
    };
    if (st != FD_SEND_RETRY)
        progress_drop(&t->prog, s->action_id);
    H->send_done(s->token, &res);
    s->token = NULL;
}

/* ---- requests ---------------------------------------------------------- */

/* Issues a request with s as its context (taking it); reports RETRY
 * itself when the request cannot start. */
static void issue(struct mm *t, struct msend *s, const char *method,
                  const char *path, char *body)
{
    struct call *c = mm_call_new(CALL_SEND);
    if (c)
        c->s = s;
    if (!c || mm_api_call(t, c, method, path, body) < 0) {
        if (c)
            c->s = NULL;
        free(c);
        free(body);
        finish(t, s, FD_SEND_RETRY, 0, "request could not start", NULL);
        mm_msend_free(s);
        return;
    }
    free(body);
}

static void post_part(struct mm *t, struct msend *s)
{
    cJSON *o = cJSON_CreateObject();
    size_t a = s->start[s->part], b = s->end[s->part];
    char *part = strndup(s->text + a, b - a);
    bool built = o && part &&
                 cJSON_AddStringToObject(o, "channel_id", s->chat) &&
                 cJSON_AddStringToObject(o, "message", part);
    if (built && s->root[0])
        built = cJSON_AddStringToObject(o, "root_id", s->root) != NULL;
    if (built && t->bot_id[0]) {
        /* The server drops a create it saw with this id in the last 30 s
         * and answers with the first post: a timed-out request we repeat
         * does not post twice.  Its cache is global, so the id carries this
         * run's nonce: another daemon with the same bot never collides. */
        char pending[96];
        snprintf(pending, sizeof pending, "%s:%s-%" PRId64 "-%zu", t->bot_id,
                 t->nonce, s->action_id, s->part);
        built = cJSON_AddStringToObject(o, "pending_post_id", pending) != NULL;
    }
    char *body = built ? cJSON_PrintUnformatted(o) : NULL;
    free(part);
    cJSON_Delete(o);
    if (!body) {
        finish(t, s, FD_SEND_RETRY, 0, "out of memory", NULL);
        mm_msend_free(s);
        return;
    }
    s->opening_dm = false;
    issue(t, s, "POST", "/posts", body);
}

static void open_dm(struct mm *t, struct msend *s)
{
    char body[2 * ID_BUF + 16];
    snprintf(body, sizeof body, "[\"%s\",\"%s\"]", t->bot_id, s->user);
    char *b = strdup(body);
    if (!b) {
        finish(t, s, FD_SEND_RETRY, 0, "out of memory", NULL);
        mm_msend_free(s);
        return;
    }
    s->opening_dm = true;
    issue(t, s, "POST", "/channels/direct", b);
}

static void start(struct mm *t, struct msend *s)
{
    if (s->kind == FD_ACTION_HIDE) {
        char path[64];
        snprintf(path, sizeof path, "/posts/%s", s->post);
        issue(t, s, "DELETE", path, NULL);
        return;
    }
    if (s->kind == FD_ACTION_DM) {
        const char *chan = mm_dm_get(t, s->user);
        if (!chan) {
            open_dm(t, s);
            return;
        }
        memcpy(s->chat, chan, ID_BUF);
        s->dm_cached = true;
    }
    post_part(t, s);
}

/* ---- answers ------------------------------------------------------------ */

static bool error_id_has(const struct fd_http_response *r, const char *needle)
{
    cJSON *doc =
        r->body_len ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
    const char *id = mm_json_str(doc, "id");
    const char *msg = mm_json_str(doc, "message");
    bool has = (id && strstr(id, needle)) || (msg && strcasestr(msg, needle));
    cJSON_Delete(doc);
    return has;
}

static void no_dm(struct mm *t, struct msend *s, const char *why)
{
    char fallback[700];
    snprintf(fallback, sizeof fallback,
             "Ich kann dir leider keine Direktnachricht schicken. Bitte "
             "schreib mir (@%s) eine Direktnachricht mit \"case %" PRId64
             "\", dann geht es dort weiter.\n"
             "I can't send you a direct message. Please send me (@%s) a "
             "direct message saying \"case %" PRId64
             "\" and we'll continue there.",
             t->bot_name, s->case_id, t->bot_name, s->case_id);
    H->log(t->ch, FD_LOG_INFO,
           "dm to user %s refused (%s); public note for case %" PRId64
           " instead",
           s->user, why, s->case_id);
    finish(t, s, FD_SEND_NO_DM, 0, why, fallback);
}

void mm_send_done(struct mm *t, struct call *c,
                  const struct fd_http_response *r)
{
    struct msend *s = c->s;
    char why[320];
    mm_describe(why, sizeof why, r);
    const char *what = kind_name(s->kind);
    bool ok = r->status >= 200 && r->status < 300;

    if (ok && s->opening_dm) {
        cJSON *doc =
            r->body_len ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
        const char *id = mm_json_str(doc, "id");
        if (mm_is_id(id)) {
            memcpy(s->chat, id, ID_BUF);
            mm_dm_put(t, s->user, id);
            mm_known_note(t, id, 'D');
            cJSON_Delete(doc);
            c->s = NULL; /* moves on to the post */
            post_part(t, s);
            return;
        }
        cJSON_Delete(doc);
        H->log(t->ch, FD_LOG_WARN,
               "dm to user %s: channels/direct answered "
               "without a channel id",
               s->user);
        finish(t, s, FD_SEND_RETRY, 0, "no channel id from channels/direct",
               NULL);
        return;
    }
    if (ok || (s->kind == FD_ACTION_HIDE && r->status == 404)) {
        if (s->kind != FD_ACTION_HIDE && s->part + 1 < s->nparts) {
            s->part++;
            progress_note(&t->prog, s->action_id, s->part);
            c->s = NULL;
            post_part(t, s);
            return;
        }
        if (s->kind == FD_ACTION_HIDE)
            mm_hidden_note(t, s->post);
        H->log(t->ch, FD_LOG_DEBUG, "%s %s done (action %" PRId64 "%s%s)", what,
               target(s), s->action_id, s->nparts > 1 ? ", in parts" : "",
               ok ? "" : ", was already gone");
        finish(t, s, FD_SEND_OK, 0, NULL, NULL);
        return;
    }
    if (r->status == 429) {
        int wait = mm_limit_wait_ms(r);
        H->log(t->ch, FD_LOG_WARN, "%s %s: rate limited; retry in %.1f s", what,
               target(s), wait / 1000.0);
        finish(t, s, FD_SEND_RETRY, wait, why, NULL);
        return;
    }
    if (r->status == 0 || r->status == 408 || r->status >= 500) {
        H->log(t->ch, FD_LOG_WARN, "%s %s: %s; will retry", what, target(s),
               why);
        finish(t, s, FD_SEND_RETRY, 0, why, NULL);
        return;
    }
    if (s->kind == FD_ACTION_DM && r->status == 403) {
        if (s->opening_dm || !s->dm_cached) {
            no_dm(t, s, why);
            return;
        }
        /* The cached channel no longer takes our posts (archived, user
         * gone): ask the server again on the next attempt. */
        mm_dm_forget(t, s->user);
        finish(t, s, FD_SEND_RETRY, 0, why, NULL);
        return;
    }
    if (s->kind == FD_ACTION_DM && r->status == 404 && s->dm_cached) {
        mm_dm_forget(t, s->user);
        finish(t, s, FD_SEND_RETRY, 0, why, NULL);
        return;
    }
    if (s->kind == FD_ACTION_REPLY && r->status == 400 && s->root[0] &&
        !s->dropped_root && error_id_has(r, "root_id")) {
        /* The thread's root is gone (deleted): answer in the channel. */
        H->log(t->ch, FD_LOG_INFO,
               "reply in channel %s: thread %s is gone; posting without it",
               s->chat, s->root);
        s->root[0] = '\0';
        s->dropped_root = true;
        c->s = NULL;
        post_part(t, s);
        return;
    }
    if (s->kind == FD_ACTION_HIDE && r->status == 403) {
        H->log(t->ch, FD_LOG_WARN,
               "hide post %s: not allowed (%s); the bot account needs the "
               "delete_others_posts permission",
               s->post, why);
        finish(t, s, FD_SEND_FAILED, 0, why, NULL);
        return;
    }
    H->log(t->ch, r->status == 401 ? FD_LOG_ERROR : FD_LOG_WARN,
           "%s %s failed: %s%s (action %" PRId64 ")", what, target(s), why,
           r->status == 401 ? " (check the token)" : "", s->action_id);
    finish(t, s, FD_SEND_FAILED, 0, why, NULL);
}

/* ---- the outbox's entry point ------------------------------------------- */

/* Validates an action and copies what the calls need.  Returns the new
 * msend, or NULL with *err set. */
static struct msend *msend_new(struct mm *t, const struct fd_action *a,
                               struct fd_send *token, const char **err)
{
    *err = NULL;
    if (a->kind == FD_ACTION_HIDE && !mm_is_id(a->message_id))
        *err = "no valid post id";
    else if (a->kind == FD_ACTION_DM && !mm_is_id(a->user_id))
        *err = "no valid user id";
    else if (a->kind == FD_ACTION_REPLY && !mm_is_id(a->chat_id))
        *err = "no valid channel id";
    else if (a->kind != FD_ACTION_HIDE && (!a->text || !*a->text))
        *err = "empty text";
    if (*err)
        return NULL;
    struct msend *s = calloc(1, sizeof *s);
    if (!s) {
        *err = "out of memory";
        return NULL;
    }
    s->token = token;
    s->kind = a->kind;
    s->action_id = a->id;
    s->case_id = a->case_id;
    if (a->kind == FD_ACTION_HIDE) {
        memcpy(s->post, a->message_id, ID_BUF);
        return s;
    }
    if (a->kind == FD_ACTION_DM) {
        memcpy(s->user, a->user_id, ID_BUF);
    } else {
        memcpy(s->chat, a->chat_id, ID_BUF);
        /* In the message's thread, never under a post we deleted. */
        const char *root = mm_is_id(a->thread)       ? a->thread
                           : mm_is_id(a->message_id) ? a->message_id
                                                     : NULL;
        if (!a->is_private && root && !mm_hidden_has(t, root))
            memcpy(s->root, root, ID_BUF);
    }
    if (!(s->text = strdup(a->text))) {
        free(s);
        *err = "out of memory";
        return NULL;
    }
    size_t len = strlen(s->text), at = 0;
    while (at < len && s->nparts < MAX_PARTS) {
        size_t cut = H->text_cut(s->text + at, len - at, (size_t)t->max_runes,
                                 FD_TEXT_CHARS);
        if (cut == 0 || cut > len - at)
            cut = len - at; /* defensive: always advance */
        s->start[s->nparts] = at;
        s->end[s->nparts++] = at + cut;
        at += cut;
    }
    if (at < len)
        H->log(t->ch, FD_LOG_WARN,
               "action %" PRId64 ": text cut after %d posts", a->id, MAX_PARTS);
    struct progress *p = progress_find(&t->prog, a->id);
    if (p && p->done < s->nparts)
        s->part = p->done; /* resume after what already went out */
    return s;
}

int mm_send(struct fd_channel *ch, const struct fd_action *a,
            struct fd_send *token)
{
    struct mm *t = H->get_data(ch);
    if (!t || (a->kind == FD_ACTION_DM && !t->bot_id[0])) {
        /* Actions left from the last run may come before users/me. */
        struct fd_send_result res = {.status = FD_SEND_RETRY,
                                     .retry_after_ms = 2000,
                                     .error = t ? "bot identity not known yet"
                                                : "channel not started"};
        H->send_done(token, &res);
        return FD_OK;
    }
    const char *err;
    struct msend *s = msend_new(t, a, token, &err);
    if (!s) {
        bool oom = strcmp(err, "out of memory") == 0;
        H->log(t->ch, FD_LOG_WARN, "action %" PRId64 " (%s): %s", a->id,
               kind_name(a->kind), err);
        struct fd_send_result res = {
            .status = oom ? FD_SEND_RETRY : FD_SEND_FAILED, .error = err};
        H->send_done(token, &res);
        return FD_OK;
    }
    start(t, s);
    return FD_OK;
}
