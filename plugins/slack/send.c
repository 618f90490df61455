/*
 * send.c - carrying out the outbox's actions on Slack.
 *
 * REPLY: chat.postMessage into the conversation of the message answered;
 * in public, in the message's thread (thread_ts = its thread, else its own
 * ts, which starts a thread under the question); in a DM, in line unless
 * the question was in a thread.
 * DM: to the DM channel when the message answered was private; else
 * conversations.open {users} gives the DM channel (remembered per user),
 * then chat.postMessage.
 * HIDE: never called (no FD_CAP_HIDE: a bot cannot delete a user's post);
 * refused as a permanent failure should it come.
 *
 * Texts over MAX_TEXT_CHARS characters go out as several messages, cut at
 * a line break or space where possible; the parts already sent are
 * remembered per action, so a retry resumes after them.
 *
 * Outcomes: HTTP 2xx with "ok": true is success.  429 (Retry-After
 * honoured), 5xx, network errors and Slack's transient errors
 * (internal_error, fatal_error, service_unavailable, request_timeout,
 * ratelimited) are retried.  What Slack never takes from a bot
 * (cannot_dm_bot, user_disabled, user_not_found, restricted_action, ...)
 * hands the case to humans (FD_SEND_HANDOFF).  Every other "ok": false is
 * permanent (channel_not_found, not_in_channel, is_archived, msg_too_long,
 * invalid_auth, missing_scope, ...), except that a remembered DM channel
 * Slack no longer knows is forgotten and the action retried.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slack.h"

void sk_ssend_free(struct ssend *s)
{
    if (!s)
        return;
    free(s->text);
    free(s);
}

/* ---- DM channel cache ------------------------------------------------------
 */

static struct dm_entry *dm_find(struct sk *sk, const char *user)
{
    for (size_t i = 0; i < sk->ndms; i++)
        if (strcmp(sk->dms[i].user, user) == 0)
            return &sk->dms[i];
    return NULL;
}

static void dm_remember(struct sk *sk, const char *user, const char *channel)
{
    struct dm_entry *e = dm_find(sk, user);
    if (!e) {
        if (sk->ndms < DM_CACHE) {
            e = &sk->dms[sk->ndms++];
        } else { /* replace round-robin: cheap, and a miss costs one call */
            e = &sk->dms[sk->dm_next];
            sk->dm_next = (sk->dm_next + 1) % DM_CACHE;
        }
    }
    snprintf(e->user, sizeof e->user, "%s", user);
    snprintf(e->channel, sizeof e->channel, "%s", channel);
}

static void dm_forget(struct sk *sk, const char *user)
{
    struct dm_entry *e = dm_find(sk, user);
    if (e)
        *e = sk->dms[--sk->ndms];
}

/* ---- the calls
 * ----------------------------------------------------------------- */

static const char *kind_name(enum fd_action_kind k)
{
    return k == FD_ACTION_REPLY ? "reply" : k == FD_ACTION_DM ? "dm" : "hide";
}

static void finish(struct sk *sk, struct ssend *s, enum fd_send_status st,
                   int retry_ms, const char *error)
{
    struct fd_send_result res = {
        .status = st,
        .retry_after_ms = retry_ms,
        .error = error,
    };
    if (st != FD_SEND_RETRY)
        progress_drop(&sk->prog, s->action_id);
    H->send_done(s->token, &res);
    s->token = NULL;
}

/* Issues the next call of s (conversations.open, or the current part);
 * takes ownership of s and reports RETRY itself when it cannot start. */
static void step(struct sk *sk, struct ssend *s)
{
    cJSON *o = cJSON_CreateObject();
    const char *method;
    bool built = o != NULL;
    enum sk_call_kind kind;
    if (s->need_open) {
        method = "conversations.open";
        kind = CALL_DMOPEN;
        built = built && cJSON_AddStringToObject(o, "users", s->user);
    } else {
        method = "chat.postMessage";
        kind = CALL_SEND;
        size_t a = s->start[s->part], b = s->end[s->part];
        char *part = strndup(s->text + a, b - a);
        built = built && part &&
                cJSON_AddStringToObject(o, "channel", s->channel) &&
                cJSON_AddStringToObject(o, "text", part);
        free(part);
        if (built && s->thread_ts[0])
            built =
                cJSON_AddStringToObject(o, "thread_ts", s->thread_ts) != NULL;
    }
    char *body = built ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    struct call *c = body ? calloc(1, sizeof *c) : NULL;
    if (c) {
        c->kind = kind;
        c->s = s;
    } else {
        free(body);
        body = NULL;
    }
    if (!c || sk_api_call(sk, c, method, body, false) < 0) {
        if (c)
            c->s = NULL;
        free(c);
        finish(sk, s, FD_SEND_RETRY, 0, "request could not start");
        sk_ssend_free(s);
    }
}

/* Errors that mean "no bot may do this here", whatever we retry: the DM's
 * user cannot be written to (deactivated, a bot, hidden from us), or the
 * workspace forbids the bot to post. */
static bool bot_may_not(const char *e)
{
    static const char *const list[] = {
        "cannot_dm_bot",
        "user_disabled",
        "user_not_found",
        "user_not_visible",
        "restricted_action",
        "ekm_access_denied",
        NULL,
    };
    for (const char *const *p = list; *p; p++)
        if (strcmp(e, *p) == 0)
            return true;
    return false;
}

void sk_send_done(struct sk *sk, struct call *c,
                  const struct fd_http_response *r)
{
    struct ssend *s = c->s;
    struct answer a;
    char why[200];
    sk_answer_parse(r, &a);
    sk_describe(why, sizeof why, r, &a);
    const char *what = kind_name(s->kind);
    const char *where = s->need_open ? s->user : s->channel;
    if (a.ok && c->kind == CALL_DMOPEN) {
        const char *id = sk_str(sk_obj(a.doc, "channel"), "id");
        if (!sk_is_id(id, ID_MAX)) {
            H->log(sk->ch, FD_LOG_WARN,
                   "conversations.open for %s: no channel id in the answer",
                   s->user);
            finish(sk, s, FD_SEND_RETRY, 0, "conversations.open: no channel");
        } else {
            snprintf(s->channel, sizeof s->channel, "%s", id);
            dm_remember(sk, s->user, id);
            s->need_open = false;
            c->s = NULL; /* moves on to chat.postMessage */
            step(sk, s);
        }
    } else if (a.ok) {
        if (s->part + 1 < s->nparts) {
            s->part++;
            progress_note(&sk->prog, s->action_id, s->part);
            c->s = NULL;
            step(sk, s);
        } else {
            H->log(sk->ch, FD_LOG_DEBUG, "%s to %s sent (action %" PRId64 ")",
                   what, s->channel, s->action_id);
            finish(sk, s, FD_SEND_OK, 0, NULL);
        }
    } else if (a.transient) {
        if (a.wait_ms)
            H->log(sk->ch, FD_LOG_WARN, "%s to %s: %s; retry in %.1f s", what,
                   where, why, a.wait_ms / 1000.0);
        else
            H->log(sk->ch, FD_LOG_WARN, "%s to %s: %s; will retry", what, where,
                   why);
        finish(sk, s, FD_SEND_RETRY, a.wait_ms, why);
    } else if (s->from_cache && c->kind == CALL_SEND && a.error &&
               (strcmp(a.error, "channel_not_found") == 0 ||
                strcmp(a.error, "is_archived") == 0)) {
        /* The remembered DM channel is gone: open it afresh next time. */
        dm_forget(sk, s->user);
        H->log(sk->ch, FD_LOG_INFO,
               "dm to %s: remembered DM channel %s is gone (%s); reopening",
               s->user, s->channel, a.error);
        finish(sk, s, FD_SEND_RETRY, 0, why);
    } else if (a.error && bot_may_not(a.error)) {
        /* Slack will not take this from a bot at all: a human has to. */
        H->log(sk->ch, FD_LOG_WARN,
               "%s to %s refused: %s; the case goes to humans (action %" PRId64
               ")",
               what, where, why, s->action_id);
        finish(sk, s, FD_SEND_HANDOFF, 0, why);
    } else {
        const char *hint =
            !a.error                                 ? ""
            : strcmp(a.error, "not_in_channel") == 0 ? " (invite the bot)"
            : strcmp(a.error, "missing_scope") == 0  ? " (scopes: see docs)"
            : strcmp(a.error, "invalid_auth") == 0 ||
                    strcmp(a.error, "token_revoked") == 0
                ? " (check `token`)"
                : "";
        H->log(sk->ch, FD_LOG_WARN,
               "%s to %s failed: %s%s (action %" PRId64 ")", what, where, why,
               hint, s->action_id);
        finish(sk, s, FD_SEND_FAILED, 0, why);
    }
    cJSON_Delete(a.doc);
}

/* Validates an action and copies what the calls need.  Returns the new
 * ssend, or NULL with *err set. */
static struct ssend *ssend_new(struct sk *sk, const struct fd_action *a,
                               struct fd_send *token, const char **err)
{
    *err = NULL;
    if (a->kind == FD_ACTION_HIDE) {
        *err = "slack bots cannot delete other users' messages";
        return NULL;
    }
    if (!a->text || !*a->text) {
        *err = "empty text";
        return NULL;
    }
    bool dm = a->kind == FD_ACTION_DM;
    if (!sk_is_id(a->chat_id, ID_MAX) && !(dm && !a->is_private)) {
        *err = "no usable channel id";
        return NULL;
    }
    if (dm && !a->is_private && !sk_is_id(a->user_id, ID_MAX)) {
        *err = "no usable user id";
        return NULL;
    }
    struct ssend *s = calloc(1, sizeof *s);
    if (!s || !(s->text = strdup(a->text))) {
        free(s);
        *err = "out of memory";
        return NULL;
    }
    s->token = token;
    s->kind = a->kind;
    s->action_id = a->id;
    if (dm && !a->is_private) {
        snprintf(s->user, sizeof s->user, "%s", a->user_id);
        const struct dm_entry *e = dm_find(sk, a->user_id);
        if (e) {
            snprintf(s->channel, sizeof s->channel, "%s", e->channel);
            s->from_cache = true;
        } else {
            s->need_open = true;
        }
    } else {
        /* A reply, or a DM answering a DM: the same conversation. */
        snprintf(s->channel, sizeof s->channel, "%s", a->chat_id);
        if (sk_is_id(a->user_id, ID_MAX))
            snprintf(s->user, sizeof s->user, "%s", a->user_id);
        const char *ts =
            sk_is_id(a->thread, TS_MAX) ? a->thread
            : !a->is_private && !dm && sk_is_id(a->message_id, TS_MAX)
                ? a->message_id
                : NULL;
        if (ts)
            snprintf(s->thread_ts, sizeof s->thread_ts, "%s", ts);
    }
    size_t len = strlen(s->text), at = 0;
    while (at < len && s->nparts < MAX_PARTS) {
        size_t cut =
            H->text_cut(s->text + at, len - at, MAX_TEXT_CHARS, FD_TEXT_CHARS);
        s->start[s->nparts] = at;
        s->end[s->nparts++] = at + cut;
        at += cut;
    }
    if (at < len)
        H->log(sk->ch, FD_LOG_WARN,
               "action %" PRId64 ": text cut after %d messages", a->id,
               MAX_PARTS);
    struct progress *p = progress_find(&sk->prog, a->id);
    if (p && p->done < s->nparts)
        s->part = p->done; /* resume after what already went out */
    return s;
}

int sk_send(struct fd_channel *ch, const struct fd_action *a,
            struct fd_send *token)
{
    struct sk *sk = H->get_data(ch);
    const char *err = NULL;
    if (!sk) {
        struct fd_send_result res = {.status = FD_SEND_RETRY,
                                     .error = "channel not started"};
        H->send_done(token, &res);
        return FD_OK;
    }
    struct ssend *s = ssend_new(sk, a, token, &err);
    if (!s) {
        bool oom = strcmp(err, "out of memory") == 0;
        H->log(sk->ch, FD_LOG_WARN, "action %" PRId64 " (%s): %s", a->id,
               kind_name(a->kind), err);
        struct fd_send_result res = {
            .status = oom ? FD_SEND_RETRY : FD_SEND_FAILED, .error = err};
        H->send_done(token, &res);
        return FD_OK;
    }
    step(sk, s);
    return FD_OK;
}
