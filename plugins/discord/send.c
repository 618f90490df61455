/*
 * send.c - carrying out the outbox's actions on Discord.
 *
 * REPLY: POST /channels/{chat}/messages with message_reference to the
 * message answered (fail_if_not_exists false: a post we hid first is gone,
 * and the answer must still go out).  DM: POST /users/@me/channels
 * {recipient_id} gives the DM channel (cached per user), then the same
 * create-message call there.  HIDE: DELETE /channels/{chat}/messages/{id},
 * which needs Manage Messages; a refusal is logged and given up.
 *
 * Texts over 2000 units go out as several messages (at most MAX_PARTS);
 * parts already sent are remembered per action, and each part carries a
 * nonce with enforce_nonce, so Discord itself drops a part that is sent
 * again after a lost answer.  Mentions in our texts never ping anybody but
 * the author answered (allowed_mentions).
 *
 * 429: the hold (this route, or all routes when `global`) is recorded, and
 * the action waits in the plugin until it passes, like every other send on
 * that route, so a 429 storm does not use up the outbox's attempts.  Only
 * long waits (or many 429s for one action) go back to the outbox.  An
 * answer that says its route's bucket is empty (X-RateLimit-Remaining: 0)
 * holds the route until X-RateLimit-Reset-After has passed, so the next
 * send waits instead of running into a 429: Discord bans the IP of a bot
 * that collects too many of them.
 *
 * Error 50007 on a DM (the user accepts no DMs from server members) is
 * FD_SEND_NO_DM with a public text asking the user to write to the bot;
 * the case stays open and the user's next DM continues it (gateway.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discord.h"

#define MAX_RATE_HITS 8       /* 429s one action waits out in the plugin */
#define MAX_INLINE_WAIT 60000 /* longer 429 waits go back to the outbox */

enum step { STEP_OPEN_DM = 0, STEP_POST, STEP_DELETE };

struct dsend {
    struct dsend *next; /* on d->deferred */
    struct fd_send *token;
    enum fd_action_kind kind;
    enum step step;
    int64_t action_id, case_id;
    int64_t not_before;
    char *chat_id;    /* where to post or delete; DM: the DM channel */
    char *user_id;    /* DM */
    char *reply_to;   /* REPLY: the message answered */
    char *message_id; /* HIDE */
    char *text;
    size_t start[MAX_PARTS], end[MAX_PARTS], nparts, part;
    int rate_hits;
    bool dm_cached, dm_reopened;
};

void dsend_free(struct dsend *s)
{
    if (!s)
        return;
    free(s->chat_id);
    free(s->user_id);
    free(s->reply_to);
    free(s->message_id);
    free(s->text);
    free(s);
}

void dsc_deferred_free(struct dsc *d)
{
    while (d->deferred) {
        struct dsend *s = d->deferred;
        d->deferred = s->next;
        dsend_free(s);
    }
}

/* ---- DM channel cache ----------------------------------------------------- */

static const char *dm_lookup(struct dsc *d, const char *user)
{
    for (size_t i = 0; i < DM_CACHE; i++)
        if (!strcmp(d->dms[i].user, user))
            return d->dms[i].chan;
    return NULL;
}

static void dm_forget(struct dsc *d, const char *user)
{
    for (size_t i = 0; i < DM_CACHE; i++)
        if (!strcmp(d->dms[i].user, user))
            d->dms[i].user[0] = d->dms[i].chan[0] = '\0';
}

static void dm_remember(struct dsc *d, const char *user, const char *chan)
{
    dm_forget(d, user);
    struct dm_entry *e = &d->dms[d->dm_next++ % DM_CACHE];
    snprintf(e->user, sizeof e->user, "%s", user);
    snprintf(e->chan, sizeof e->chan, "%s", chan);
}

/* ---- reporting ----------------------------------------------------------- */

static const char *kind_name(enum fd_action_kind k)
{
    return k == FD_ACTION_REPLY ? "reply in channel"
           : k == FD_ACTION_DM  ? "dm to user"
                                : "hide in channel";
}

static const char *target(const struct dsend *s)
{
    return s->kind == FD_ACTION_DM ? s->user_id : s->chat_id;
}

/* Reports the outcome and frees s. */
static void finish(struct dsc *d, struct dsend *s, enum fd_send_status st,
                   int retry_ms, const char *error, const char *fallback)
{
    struct fd_send_result res = {
        .status = st,
        .retry_after_ms = retry_ms,
        .error = error,
        .fallback = fallback,
    };
    if (st != FD_SEND_RETRY)
        progress_drop(&d->prog, s->action_id);
    H->send_done(s->token, &res);
    dsend_free(s);
}

/* ---- issuing ------------------------------------------------------------- */

static void step_issue(struct dsc *d, struct dsend *s);

static void on_defer_timer(void *ud)
{
    struct dsc *d = ud;
    d->defer_timer = NULL;
    d->defer_at = 0;
    struct dsend *list = d->deferred;
    d->deferred = NULL;
    /* In arrival order, so one conversation's parts keep their order. */
    struct dsend *rev = NULL;
    while (list) {
        struct dsend *s = list;
        list = s->next;
        s->next = rev;
        rev = s;
    }
    while (rev) {
        struct dsend *s = rev;
        rev = s->next;
        s->next = NULL;
        step_issue(d, s);
    }
}

/* Parks s until `until` (monotonic ms). */
static void defer(struct dsc *d, struct dsend *s, int64_t until)
{
    s->not_before = until;
    s->next = d->deferred;
    d->deferred = s;
    if (d->defer_timer && d->defer_at <= until)
        return;
    if (d->defer_timer)
        H->timer_cancel(d->defer_timer);
    int64_t ms = until - dsc_now_ms();
    d->defer_timer =
        H->timer_add(d->ch, ms > 0 ? (int)ms : 0, on_defer_timer, d);
    d->defer_at = until;
    if (!d->defer_timer) { /* cannot wait here: the outbox waits instead */
        d->deferred = s->next;
        finish(d, s, FD_SEND_RETRY, ms > 0 ? (int)ms : 1000,
               "rate limited (no timer)", NULL);
    }
}

static char *message_body(const struct dsend *s)
{
    size_t a = s->start[s->part], b = s->end[s->part];
    char *part = strndup(s->text + a, b - a);
    char nonce[32];
    snprintf(nonce, sizeof nonce, "fd%" PRId64 ".%zu", s->action_id, s->part);
    cJSON *o = cJSON_CreateObject();
    cJSON *am = cJSON_AddObjectToObject(o, "allowed_mentions");
    bool ok =
        part && cJSON_AddStringToObject(o, "content", part) &&
        cJSON_AddStringToObject(o, "nonce", nonce) &&
        cJSON_AddTrueToObject(o, "enforce_nonce") &&
        cJSON_AddArrayToObject(am, "parse") &&
        cJSON_AddBoolToObject(am, "replied_user", s->kind == FD_ACTION_REPLY);
    if (ok && s->kind == FD_ACTION_REPLY && s->reply_to && s->part == 0) {
        cJSON *ref = cJSON_AddObjectToObject(o, "message_reference");
        ok = cJSON_AddStringToObject(ref, "message_id", s->reply_to) &&
             cJSON_AddFalseToObject(ref, "fail_if_not_exists");
    }
    char *body = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    free(part);
    return body;
}

/* The hold key of s's current step: Discord's buckets follow the channel
 * (the route's major parameter). */
static void route_of(const struct dsend *s, char *route, size_t cap)
{
    if (s->step == STEP_OPEN_DM)
        snprintf(route, cap, "dm-open");
    else
        snprintf(route, cap, "ch:%s", s->chat_id);
}

/* Issues the current step of s, or parks it while its route is held.
 * Takes ownership of s. */
static void step_issue(struct dsc *d, struct dsend *s)
{
    char route[48], path[128];
    route_of(s, route, sizeof route);
    int64_t until = dsc_hold_until(d, route);
    if (until > dsc_now_ms()) {
        defer(d, s, until);
        return;
    }
    const char *method = "POST";
    char *body = NULL;
    switch (s->step) {
    case STEP_OPEN_DM: {
        snprintf(path, sizeof path, "/users/@me/channels");
        cJSON *o = cJSON_CreateObject();
        if (cJSON_AddStringToObject(o, "recipient_id", s->user_id))
            body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        break;
    }
    case STEP_POST:
        snprintf(path, sizeof path, "/channels/%s/messages", s->chat_id);
        body = message_body(s);
        break;
    case STEP_DELETE:
        method = "DELETE";
        snprintf(path, sizeof path, "/channels/%s/messages/%s", s->chat_id,
                 s->message_id);
        break;
    }
    struct call *c = calloc(1, sizeof *c);
    if (c) {
        c->kind = CALL_SEND;
        c->s = s;
    }
    if (!c || (s->step != STEP_DELETE && !body) ||
        dsc_rest(d, c, method, path, body) < 0) {
        if (c)
            c->s = NULL;
        free(c);
        free(body);
        finish(d, s, FD_SEND_RETRY, 0, "request could not start", NULL);
        return;
    }
    free(body);
}

/* ---- answers ------------------------------------------------------------- */

/* The public text posted instead of a DM the user's settings refuse. */
static void nodm_fallback(char *out, size_t len, const struct dsend *s)
{
    snprintf(out, len,
             "Ich kann dir keine Direktnachricht schicken: deine "
             "Privatsphäre-Einstellungen erlauben keine DMs von "
             "Servermitgliedern. Bitte schreib mir direkt eine Nachricht "
             "(Klick auf meinen Namen → Nachricht), dann geht es dort mit "
             "Fall %" PRId64 " weiter.\n"
             "I can't send you a direct message: your privacy settings "
             "block DMs from server members. Please send me a direct "
             "message (click my name → Message) and we'll continue case "
             "%" PRId64 " there.",
             s->case_id, s->case_id);
}

/* X-RateLimit-Remaining: 0 with X-RateLimit-Reset-After (seconds, with
 * a fraction): the route is held until the bucket refills. */
static void note_bucket(struct dsc *d, const struct dsend *s,
                        const struct fd_http_response *r)
{
    const char *left = H->response_header(r, "X-RateLimit-Remaining");
    const char *after = H->response_header(r, "X-RateLimit-Reset-After");
    if (!left || !after || strcmp(left, "0") != 0)
        return;
    char *end;
    double secs = strtod(after, &end);
    if (end == after || !(secs > 0) || secs > 3600)
        return;
    char route[48];
    route_of(s, route, sizeof route);
    dsc_hold_set(d, route, false, (int)(secs * 1000 + 0.999));
}

void dsc_send_done(struct dsc *d, struct call *c,
                   const struct fd_http_response *r)
{
    struct dsend *s = c->s;
    c->s = NULL; /* s is ours now */
    struct answer a;
    char why[256], fallback[700];
    dsc_answer_parse(r, &a);
    dsc_describe(why, sizeof why, r, &a);
    const char *what = kind_name(s->kind);
    bool ok = r->status >= 200 && r->status < 300;
    if (ok)
        note_bucket(d, s, r); /* before the next part is issued */

    if (ok && s->step == STEP_OPEN_DM) {
        const char *id = dsc_json_str(a.doc, "id");
        if (!dsc_is_snowflake(id)) {
            H->log(d->ch, FD_LOG_WARN,
                   "%s %s: DM channel answer without an id; will retry", what,
                   s->user_id);
            finish(d, s, FD_SEND_RETRY, 0, "DM channel without id", NULL);
        } else {
            dm_remember(d, s->user_id, id);
            char *cid = strdup(id);
            if (!cid) {
                finish(d, s, FD_SEND_RETRY, 0, "out of memory", NULL);
            } else {
                free(s->chat_id);
                s->chat_id = cid;
                s->step = STEP_POST;
                step_issue(d, s);
            }
        }
    } else if (ok || (s->step == STEP_DELETE && r->status == 404 &&
                      a.code == 10008)) {
        if (s->step == STEP_POST && s->part + 1 < s->nparts) {
            s->part++;
            progress_note(&d->prog, s->action_id, s->part);
            step_issue(d, s);
        } else {
            H->log(d->ch, FD_LOG_INFO, "%s %s sent (action %" PRId64 "%s)",
                   what, target(s), s->action_id,
                   ok ? "" : ", was already gone");
            finish(d, s, FD_SEND_OK, 0, NULL, NULL);
        }
    } else if (r->status == 429) {
        char route[48];
        route_of(s, route, sizeof route);
        dsc_hold_set(d, route, a.global, a.wait_ms);
        s->rate_hits++;
        H->log(d->ch, FD_LOG_WARN, "%s %s: rate limited (%s), waiting %d ms",
               what, target(s), a.global ? "global" : "this channel",
               a.wait_ms);
        if (s->rate_hits <= MAX_RATE_HITS && a.wait_ms <= MAX_INLINE_WAIT)
            defer(d, s, dsc_hold_until(d, route));
        else
            finish(d, s, FD_SEND_RETRY, a.wait_ms, why, NULL);
    } else if (r->status == 0 || r->status >= 500) {
        int wait = r->retry_after_s > 0 && r->retry_after_s < 3600
                       ? r->retry_after_s * 1000
                       : 0;
        H->log(d->ch, FD_LOG_WARN, "%s %s: %s; will retry", what, target(s),
               why);
        finish(d, s, FD_SEND_RETRY, wait, why, NULL);
    } else if (s->kind == FD_ACTION_DM && a.code == 50007) {
        /* The user accepts no DMs from server members (or blocked us). */
        char key[64], cid[24];
        snprintf(key, sizeof key, NODM_PREFIX "%s", s->user_id);
        snprintf(cid, sizeof cid, "%" PRId64, s->case_id);
        H->kv_set(d->ch, key, cid);
        nodm_fallback(fallback, sizeof fallback, s);
        H->log(d->ch, FD_LOG_INFO,
               "dm to user %s refused (%s); public note for case %" PRId64
               " instead",
               s->user_id, why, s->case_id);
        finish(d, s, FD_SEND_NO_DM, 0, why, fallback);
    } else if (s->kind == FD_ACTION_DM && s->step == STEP_POST &&
               s->dm_cached && !s->dm_reopened && r->status == 404) {
        /* The cached DM channel is gone: open it again. */
        dm_forget(d, s->user_id);
        s->dm_reopened = true;
        s->step = STEP_OPEN_DM;
        step_issue(d, s);
    } else {
        const char *hint =
            a.code == 50013 && s->kind == FD_ACTION_HIDE
                ? " - the bot needs Manage Messages in this channel"
            : a.code == 50013 || a.code == 50001
                ? " - the bot needs View Channel, Send Messages and Read "
                  "Message History here"
            : r->status == 401 ? " - the token is refused"
                               : "";
        H->log(d->ch, r->status == 401 ? FD_LOG_ERROR : FD_LOG_WARN,
               "%s %s failed: %s%s (action %" PRId64 ")", what, target(s), why,
               hint, s->action_id);
        finish(d, s, FD_SEND_FAILED, 0, why, NULL);
    }
    cJSON_Delete(a.doc);
}

/* ---- the outbox's entry point -------------------------------------------- */

/* Validates an action and copies what the calls need; NULL with *err. */
static struct dsend *dsend_new(struct dsc *d, const struct fd_action *a,
                               struct fd_send *token, const char **err)
{
    *err = NULL;
    if (a->kind == FD_ACTION_DM ? !dsc_is_snowflake(a->user_id)
                                : !dsc_is_snowflake(a->chat_id))
        *err = a->kind == FD_ACTION_DM ? "no user id" : "no channel id";
    else if (a->kind == FD_ACTION_HIDE && !dsc_is_snowflake(a->message_id))
        *err = "no message id";
    else if (a->kind != FD_ACTION_HIDE &&
             (!a->text || !a->text[strspn(a->text, " \t\r\n")]))
        *err = "empty text";
    if (*err)
        return NULL;
    struct dsend *s = calloc(1, sizeof *s);
    if (!s) {
        *err = "out of memory";
        return NULL;
    }
    s->token = token;
    s->kind = a->kind;
    s->action_id = a->id;
    s->case_id = a->case_id;
    bool ok = true;
    switch (a->kind) {
    case FD_ACTION_HIDE:
        s->step = STEP_DELETE;
        ok = (s->chat_id = strdup(a->chat_id)) &&
             (s->message_id = strdup(a->message_id));
        break;
    case FD_ACTION_REPLY:
        s->step = STEP_POST;
        ok = (s->chat_id = strdup(a->chat_id)) != NULL;
        if (ok && dsc_is_snowflake(a->message_id))
            ok = (s->reply_to = strdup(a->message_id)) != NULL;
        break;
    case FD_ACTION_DM: {
        ok = (s->user_id = strdup(a->user_id)) != NULL;
        /* Answering a DM: its channel is the DM channel already. */
        const char *known = a->is_private && dsc_is_snowflake(a->chat_id)
                                ? a->chat_id
                            : ok ? dm_lookup(d, a->user_id)
                                 : NULL;
        if (ok && known) {
            s->step = STEP_POST;
            s->dm_cached = true;
            ok = (s->chat_id = strdup(known)) != NULL;
        } else {
            s->step = STEP_OPEN_DM;
        }
        break;
    }
    }
    if (ok && a->kind != FD_ACTION_HIDE)
        ok = (s->text = strdup(a->text)) != NULL;
    if (!ok) {
        dsend_free(s);
        *err = "out of memory";
        return NULL;
    }
    if (s->text) {
        size_t len = strlen(s->text), at = 0;
        while (at < len && s->nparts < MAX_PARTS) {
            if (s->nparts > 0) /* no part starts with the break's blank */
                at += strspn(s->text + at, " \t\r\n");
            if (at >= len)
                break;
            size_t cut = H->text_cut(s->text + at, len - at, MAX_TEXT_UNITS,
                                     FD_TEXT_UTF16);
            s->start[s->nparts] = at;
            s->end[s->nparts++] = at + cut;
            at += cut;
        }
        if (at < len && s->text[at + strspn(s->text + at, " \t\r\n")])
            H->log(d->ch, FD_LOG_WARN,
                   "action %" PRId64 ": text cut after %d messages", a->id,
                   MAX_PARTS);
        struct progress *p = progress_find(&d->prog, a->id);
        if (p && p->done < s->nparts)
            s->part = p->done; /* resume after what already went out */
    }
    return s;
}

int dsc_send(struct fd_channel *ch, const struct fd_action *a,
             struct fd_send *token)
{
    struct dsc *d = H->get_data(ch);
    if (!d) {
        struct fd_send_result res = {.status = FD_SEND_RETRY,
                                     .error = "channel not started"};
        H->send_done(token, &res);
        return FD_OK;
    }
    const char *err = NULL;
    struct dsend *s = dsend_new(d, a, token, &err);
    if (!s) {
        bool oom = strcmp(err, "out of memory") == 0;
        H->log(d->ch, FD_LOG_WARN, "action %" PRId64 " (%s): %s", a->id,
               kind_name(a->kind), err);
        struct fd_send_result res = {
            .status = oom ? FD_SEND_RETRY : FD_SEND_FAILED, .error = err};
        H->send_done(token, &res);
        return FD_OK;
    }
    step_issue(d, s);
    return FD_OK;
}
