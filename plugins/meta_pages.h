/*
 * meta_pages.h - what the facebook and instagram plugins share beyond
 * meta_common.h: public comments and private messaging on one Page or
 * Instagram account.  Each plugin parses its own comment events (Page
 * `feed`, Instagram `comments`) and sets a `struct pages_flavor`; the rest
 * is here: Messenger-style `messaging` events, public answers under a
 * comment, hiding, Private Replies and messages to a PSID/IGSID.
 *
 * Who is who.  A commenter's id on the feed and their id in private
 * messaging (PSID on Facebook, IGSID on Instagram) differ, while the core
 * finds a case by channel + user id.  The plugin therefore keeps one
 * canonical user id per person, the commenter's id, and hands the core
 * that id for their private messages too.  The link is learnt from the
 * Private Reply itself: its answer names the recipient's messaging id
 * (`recipient_id`).  Kept in the plugin's key/value store:
 *
 *   u.<psid>       the canonical user (commenter id) of a messaging id
 *   psid.<user>    the messaging id of a canonical user
 *   pr.<comment>   a Private Reply went to this comment (Meta allows one)
 *   in.<psid>      unix time of the user's last private message (the
 *                  24-hour window)
 *   link.<psid>    a case whose private message waits for the user's
 *                  answer (handed to the core as fd_msg.link_case, which
 *                  wakes the waiting message)
 *   name.<user>    the commenter's display name (messaging events carry
 *                  none)
 *
 * A DM answering a public comment goes out as that comment's Private Reply;
 * a second DM for the same comment goes to the known messaging id once the
 * user has answered (inside the window), else it waits (FD_SEND_NO_DM)
 * until the user's first private message wakes it.  When Meta refuses the
 * Private Reply (already sent, too old, the user cannot be reached) the
 * core posts `dm_fallback` under the comment instead.  A private message
 * outside the 24-hour window hands the case to humans (FD_SEND_HANDOFF; the
 * action stays a dead letter with a clear reason): only
 * a human may answer then (HUMAN_AGENT tag, Page Inbox).
 */
#ifndef FRONTDESK_META_PAGES_H
#define FRONTDESK_META_PAGES_H

#include "meta_common.h"

struct pages_flavor {
    const char *reply_edge; /* comment answers: "comments" | "replies" */
    const char *hide_field; /* "is_hidden" | "hide" */
    size_t comment_max;     /* per comment, in comment_unit */
    int comment_unit;
    size_t dm_max; /* per private message, in dm_unit */
    int dm_unit;
    bool messages_by_self; /* POST /<self_id>/messages, else /me/messages */
    const char *dm_name;   /* "Messenger" | "Instagram Direct" */
    const char *object;    /* the webhook's "object": "page" | "instagram" */
    const char *owner;     /* who an entry belongs to, for log lines */
    void (*change)(struct meta *m, const cJSON *c); /* one entry change */
};

/* Set by the plugin before anything runs. */
static const struct pages_flavor *PF;

/* ---- inbound ------------------------------------------------------------- */

/* One comment, read by the plugin from its platform's event. */
struct pages_comment {
    const char *event_id;
    const char *id; /* the comment: answered, hidden, private reply */
    const char *text;
    const char *from_id; /* NULL: Meta withheld the author */
    const char *from_name;
    const char *handle;
    const char *chat;   /* the post or media commented on */
    const char *thread; /* the parent comment of a reply, or NULL */
};

/* Remembers a commenter's display name for their private messages; writes
 * only when it changed. */
META_FN void pages_remember_name(struct meta *m, const char *user,
                                 const char *name)
{
    if (!name || !*name || !meta_id_ok(user))
        return;
    char *clean = meta_clean_dup(name, META_MAX_NAME);
    char *old = meta_kv_get(m, "name.%s", user);
    if (clean && (!old || strcmp(old, clean)))
        meta_kv_set(m, clean, NULL, "name.%s", user);
    free(old);
    free(clean);
}

/* Hands one public comment to the core; returns deliver's code. */
META_FN int pages_deliver_comment(struct meta *m, const struct pages_comment *c)
{
    char anon[META_MAX_ID + 8];
    const char *user = c->from_id;
    if (!meta_id_ok(user)) {
        /* Meta leaves `from` out when the app may not see the author:
         * such a comment is its own conversation. */
        snprintf(anon, sizeof anon, "anon_%s", c->id);
        user = anon;
    } else {
        pages_remember_name(m, user, c->from_name);
    }
    char *name = meta_clean_dup(c->from_name, META_MAX_NAME);
    struct fd_msg msg = {
        .event_id = c->event_id,
        .message_id = c->id,
        .text = c->text,
        .is_private = false,
        .user_id = user,
        .user_name = name,
        .user_handle = c->handle,
        .chat_id = c->chat,
        .thread = c->thread,
    };
    int rc = H->deliver(m->ch, &msg);
    H->log(m->ch, rc < 0 ? FD_LOG_WARN : FD_LOG_DEBUG,
           "comment %s on %s by %s%s", c->id, c->chat, user,
           rc == FD_DUPLICATE ? ": duplicate"
           : rc < 0           ? ": not recorded"
                              : "");
    free(name);
    return rc;
}

/* One entry of `messaging` (a private message, a postback, or something we
 * do not answer: echoes, reads, deliveries, reactions).  Returns deliver's
 * code, or FD_OK when there was nothing to deliver. */
META_FN int pages_messaging(struct meta *m, const cJSON *ev)
{
    const char *psid = mj_str(mj_obj(ev, "sender"), "id");
    const cJSON *msg = mj_obj(ev, "message");
    const cJSON *pb = mj_obj(ev, "postback");
    if (!meta_id_ok(psid) || (!msg && !pb))
        return FD_OK; /* read/delivery receipts, reactions, referrals */
    /* Our own messages come back as echoes (is_echo; on Instagram in the
     * same subscription): never answer them. */
    if (!strcmp(psid, m->self_id) ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "is_echo")))
        return FD_OK;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "is_deleted")))
        return FD_OK; /* Instagram: the user unsent a message */
    int64_t ts = 0;
    mj_int(ev, "timestamp", &ts);
    /* Any message from the user opens the 24-hour window, even one the
     * script gets nothing from (a photo). */
    meta_note_inbound(m, psid, ts / 1000);

    const char *mid = msg ? mj_str(msg, "mid") : mj_str(pb, "mid");
    const char *text = msg ? mj_str(msg, "text") : mj_str(pb, "title");
    if (!msg && (!text || !*text))
        text = mj_str(pb, "payload");
    char ev_id[META_MAX_EVENT];
    if (meta_token_ok(mid, 256))
        snprintf(ev_id, sizeof ev_id, "m:%s", mid);
    else if (pb && ts > 0) /* older postbacks carry no mid */
        snprintf(ev_id, sizeof ev_id, "pb:%s:%" PRId64, psid, ts);
    else {
        H->log(m->ch, FD_LOG_WARN,
               "private message from %s without a "
               "usable mid: ignored",
               psid);
        return FD_OK;
    }
    if (!text || !*text) {
        H->log(m->ch, FD_LOG_INFO,
               "private message %s from %s has no text "
               "(attachment): not for the script",
               ev_id, psid);
        return FD_OK;
    }
    char *user = meta_kv_get(m, "u.%s", psid);
    if (user && !meta_id_ok(user) && strncmp(user, "anon_", 5)) {
        free(user);
        user = NULL;
    }
    char *link = meta_kv_get(m, "link.%s", psid);
    char *name = meta_kv_get(m, "name.%s", user ? user : psid);
    struct fd_msg fm = {
        .event_id = ev_id,
        .message_id = mid,
        .text = text,
        .is_private = true,
        .user_id = user ? user : psid,
        .user_name = name,
        .chat_id = psid,
        .link_case = link,
    };
    int rc = H->deliver(m->ch, &fm);
    if (rc >= 0 && link)
        meta_kv_set(m, NULL, NULL, "link.%s", psid);
    H->log(m->ch, rc < 0 ? FD_LOG_WARN : FD_LOG_DEBUG,
           "private message %s from %s%s%s%s%s", ev_id, psid,
           user ? " (commenter " : "", user ? user : "", user ? ")" : "",
           rc == FD_DUPLICATE ? ": duplicate"
           : rc < 0           ? ": not recorded"
           : link             ? ": wakes the waiting message of its case"
                              : "");
    free(user);
    free(link);
    free(name);
    return rc;
}

/* ---- outbound ------------------------------------------------------------ */

enum pages_step {
    PS_COMMENT = 0,   /* POST /<comment>/<reply_edge> {message} */
    PS_HIDE,          /* POST /<comment> {<hide_field>: true} */
    PS_PRIVATE_REPLY, /* POST /<self|me>/messages {recipient:{comment_id}} */
    PS_MESSAGE,       /* POST /<self|me>/messages {recipient:{id}} */
};

struct psend {
    struct fd_send *token;
    int64_t action_id, case_id;
    enum pages_step step;
    char *target; /* the comment (COMMENT, HIDE, PRIVATE_REPLY) or PSID */
    char *user;   /* the case's user (canonical id) */
    char *text;
    size_t start[META_MAX_PARTS], end[META_MAX_PARTS];
    size_t nparts, part;
};

META_FN void psend_free(void *p)
{
    struct psend *s = p;
    if (!s)
        return;
    free(s->target);
    free(s->user);
    free(s->text);
    free(s);
}

META_FN const char *pages_step_name(enum pages_step st)
{
    return st == PS_COMMENT         ? "comment reply"
           : st == PS_HIDE          ? "hide"
           : st == PS_PRIVATE_REPLY ? "private reply"
                                    : "private message";
}

/* Reports the outcome, forgets the action's progress unless it is
 * retried, frees s. */
META_FN void pages_finish(struct meta *m, struct psend *s,
                          enum fd_send_status st, int retry_ms,
                          const char *error, const char *fallback)
{
    struct fd_send_result res = {
        .status = st,
        .retry_after_ms = retry_ms,
        .error = error,
        .fallback = fallback,
    };
    if (st == FD_SEND_RETRY && s->part > 0)
        progress_note(&m->prog, s->action_id, s->part);
    else if (st != FD_SEND_RETRY)
        progress_drop(&m->prog, s->action_id);
    H->send_done(s->token, &res);
    psend_free(s);
}

META_FN char *pages_body(struct meta *m, const struct psend *s)
{
    (void)m;
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    char *part = NULL;
    if (ok && s->step != PS_HIDE) {
        part = strndup(s->text + s->start[s->part],
                       s->end[s->part] - s->start[s->part]);
        ok = part != NULL;
    }
    if (ok && s->step == PS_HIDE) {
        ok = cJSON_AddTrueToObject(o, PF->hide_field) != NULL;
    } else if (ok && s->step == PS_COMMENT) {
        ok = cJSON_AddStringToObject(o, "message", part) != NULL;
    } else if (ok) {
        cJSON *rcp = cJSON_AddObjectToObject(o, "recipient");
        cJSON *msg = NULL;
        ok = rcp &&
             cJSON_AddStringToObject(
                 rcp, s->step == PS_PRIVATE_REPLY ? "comment_id" : "id",
                 s->target) &&
             (msg = cJSON_AddObjectToObject(o, "message")) &&
             cJSON_AddStringToObject(msg, "text", part);
        /* A standard message inside the window answers the user. */
        if (ok && s->step == PS_MESSAGE)
            ok = cJSON_AddStringToObject(o, "messaging_type", "RESPONSE");
    }
    free(part);
    char *body = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return body;
}

META_FN void pages_sent(struct meta *m, void *ctx,
                        const struct fd_http_response *r, const cJSON *doc);

/* Issues the request of the current step; takes s.  Reports RETRY itself
 * when the request cannot start. */
META_FN void pages_step(struct meta *m, struct psend *s)
{
    char path[META_MAX_ID + 32];
    if (s->step == PS_COMMENT)
        snprintf(path, sizeof path, "/%s/%s", s->target, PF->reply_edge);
    else if (s->step == PS_HIDE)
        snprintf(path, sizeof path, "/%s", s->target);
    else if (PF->messages_by_self)
        snprintf(path, sizeof path, "/%s/messages", m->self_id);
    else
        snprintf(path, sizeof path, "/me/messages");
    char *body = pages_body(m, s);
    if (!body ||
        meta_call(m, "POST", path, body, pages_sent, psend_free, s) < 0) {
        free(body);
        pages_finish(m, s, FD_SEND_RETRY, 0, "request could not start", NULL);
        return;
    }
    free(body);
}

/* A Private Reply went out: remember it (one per comment) and who the
 * messaging id belongs to, so the user's answers join the case. */
META_FN void pages_note_private_reply(struct meta *m, struct psend *s,
                                      const cJSON *doc)
{
    const char *psid = mj_str(doc, "recipient_id");
    bool known = meta_id_ok(psid);
    meta_kv_set(m, known ? psid : "?",
                "a sent private reply (a second one would be refused)", "pr.%s",
                s->target);
    if (!known) {
        H->log(m->ch, FD_LOG_WARN,
               "private reply to comment %s (case %" PRId64 ") sent, but "
               "the answer names no recipient_id: the user's %s answers "
               "start a case of their own",
               s->target, s->case_id, PF->dm_name);
        return;
    }
    /* The same id on both sides needs no translation, but a second DM
     * of the case still has to know where to go. */
    if (strcmp(psid, s->user))
        meta_kv_set(m, s->user,
                    "the link of a messaging id to its "
                    "commenter",
                    "u.%s", psid);
    meta_kv_set(m, psid, "the messaging id of a commenter", "psid.%s", s->user);
    H->log(m->ch, FD_LOG_INFO,
           "private reply to comment %s sent (case %" PRId64 "); %s id %s "
           "is commenter %s",
           s->target, s->case_id, PF->dm_name, psid, s->user);
}

META_FN void pages_sent(struct meta *m, void *ctx,
                        const struct fd_http_response *r, const cJSON *doc)
{
    struct psend *s = ctx;
    struct meta_err e;
    meta_classify(r, doc, &e);
    const char *what = pages_step_name(s->step);
    switch (e.verdict) {
    case META_OK:
        if (s->step == PS_PRIVATE_REPLY)
            pages_note_private_reply(m, s, doc);
        if (s->part + 1 < s->nparts) {
            s->part++;
            progress_note(&m->prog, s->action_id, s->part);
            pages_step(m, s);
            return;
        }
        H->log(m->ch, FD_LOG_DEBUG, "%s to %s sent (action %" PRId64 "%s)",
               what, s->target, s->action_id,
               s->nparts > 1 ? ", in several parts" : "");
        pages_finish(m, s, FD_SEND_OK, 0, NULL, NULL);
        return;
    case META_RETRY:
        pages_finish(m, s, FD_SEND_RETRY, e.retry_ms, e.text, NULL);
        return;
    case META_GONE:
        if (s->step == PS_HIDE) {
            H->log(m->ch, FD_LOG_INFO,
                   "comment %s is gone already: nothing "
                   "to hide",
                   s->target);
            pages_finish(m, s, FD_SEND_OK, 0, NULL, NULL);
            return;
        }
        break;
    case META_NO_REPLY:
    case META_WINDOW:
        if (s->step == PS_PRIVATE_REPLY) {
            /* Meta will never take this private reply: say so publicly
             * (the core posts the fallback under the comment) and keep the
             * message waiting for the user. */
            meta_kv_set(m, "refused", NULL, "pr.%s", s->target);
            H->log(m->ch, FD_LOG_WARN,
                   "private reply to comment %s refused (%s): case %" PRId64
                   " answers publicly with dm_fallback",
                   s->target, e.text, s->case_id);
            pages_finish(m, s, FD_SEND_NO_DM, 0, e.text,
                         m->fallback && *m->fallback ? m->fallback : NULL);
            return;
        }
        if (s->step == PS_MESSAGE && e.verdict == META_WINDOW) {
            char why[400];
            snprintf(why, sizeof why,
                     "outside the 24-hour messaging window (%s): case %" PRId64
                     " needs a human (HUMAN_AGENT tag / Page Inbox)",
                     e.text, s->case_id);
            H->log(m->ch, FD_LOG_WARN, "private message to %s: %s", s->target,
                   why);
            pages_finish(m, s, FD_SEND_HANDOFF, 0, why, NULL);
            return;
        }
        break;
    case META_FAILED:
        break;
    }
    H->log(m->ch, FD_LOG_WARN, "%s to %s failed: %s (action %" PRId64 ")", what,
           s->target, e.text, s->action_id);
    pages_finish(m, s, FD_SEND_FAILED, 0, e.text, NULL);
}

/* Fills the parts of s->text; a private reply is one message only, so it
 * is trimmed to the limit instead of split. */
META_FN void pages_split(struct meta *m, struct psend *s)
{
    bool single = s->step == PS_PRIVATE_REPLY;
    size_t max = s->step == PS_COMMENT ? PF->comment_max : PF->dm_max;
    int unit = s->step == PS_COMMENT ? PF->comment_unit : PF->dm_unit;
    bool rest = false;
    s->nparts = meta_split(s->text, max, unit, s->start, s->end,
                           single ? 1 : META_MAX_PARTS, &rest);
    if (rest)
        H->log(m->ch, FD_LOG_WARN,
               "action %" PRId64 ": %s text cut after %zu part(s) of %zu %s",
               s->action_id, pages_step_name(s->step), s->nparts, max,
               unit == FD_TEXT_BYTES ? "bytes" : "characters");
}

/* A DM answering a public comment: its Private Reply, or a message to the
 * user's known messaging id, or it waits for the user.  Returns the send
 * to carry out, or NULL after reporting. */
META_FN struct psend *pages_dm_from_comment(struct meta *m, struct psend *s)
{
    char *pr = meta_kv_get(m, "pr.%s", s->target);
    if (!pr) {
        s->step = PS_PRIVATE_REPLY;
        return s;
    }
    free(pr);
    char *psid = meta_kv_get(m, "psid.%s", s->user);
    if (!psid || !meta_id_ok(psid)) {
        char why[300];
        snprintf(why, sizeof why,
                 "comment %s had its one private reply and the user's %s "
                 "id is unknown: case %" PRId64 " needs a human",
                 s->target, PF->dm_name, s->case_id);
        free(psid);
        pages_finish(m, s, FD_SEND_HANDOFF, 0, why, NULL);
        return NULL;
    }
    int age;
    if (meta_window_open(m, psid, &age)) {
        free(s->target);
        s->target = psid;
        s->step = PS_MESSAGE;
        return s;
    }
    /* The user has not answered yet (or not for a day): the message waits
     * for their next private message, which names the case. */
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, s->case_id);
    meta_kv_set(m, v, "a waiting private message's case", "link.%s", psid);
    H->log(m->ch, FD_LOG_INFO,
           "private message of case %" PRId64 " waits until %s %s writes "
           "(comment %s had its private reply)",
           s->case_id, PF->dm_name, psid, s->target);
    free(psid);
    pages_finish(m, s, FD_SEND_NO_DM, 0, "waiting for the user's answer", NULL);
    return NULL;
}

META_FN int pages_send(struct fd_channel *ch, const struct fd_action *a,
                       struct fd_send *token)
{
    struct meta *m = H->get_data(ch);
    if (!m) {
        struct fd_send_result res = {.status = FD_SEND_RETRY,
                                     .error = "channel not started"};
        H->send_done(token, &res);
        return FD_OK;
    }
    const char *err = NULL;
    struct psend *s = calloc(1, sizeof *s);
    if (!s) {
        struct fd_send_result res = {.status = FD_SEND_RETRY,
                                     .error = "out of memory"};
        H->send_done(token, &res);
        return FD_OK;
    }
    s->token = token;
    s->action_id = a->id;
    s->case_id = a->case_id;
    s->user = strdup(a->user_id ? a->user_id : "");
    const char *target = NULL;
    if (a->kind == FD_ACTION_HIDE) {
        s->step = PS_HIDE;
        target = a->message_id;
        if (a->is_private)
            err = "a private message cannot be hidden";
    } else if (!a->text || !*a->text) {
        err = "empty text";
    } else if (a->is_private) {
        /* An answer to a private message: to the sender's messaging id. */
        s->step = PS_MESSAGE;
        target = a->chat_id;
    } else if (a->kind == FD_ACTION_REPLY) {
        /* Under the comment; a reply to a reply goes under its parent
         * (Instagram threads one level only, Facebook shows it there). */
        s->step = PS_COMMENT;
        target = meta_id_ok(a->thread) ? a->thread : a->message_id;
    } else {
        s->step = PS_PRIVATE_REPLY; /* decided below */
        target = a->message_id;
    }
    if (!err && !meta_id_ok(target))
        err = s->step == PS_MESSAGE ? "no messaging id" : "no comment id";
    if (!err && !(s->target = strdup(target)))
        err = "out of memory";
    if (!err && !s->user)
        err = "out of memory";
    if (!err && s->step != PS_HIDE && !(s->text = strdup(a->text)))
        err = "out of memory";
    if (err) {
        H->log(ch, FD_LOG_WARN, "action %" PRId64 ": %s", a->id, err);
        pages_finish(
            m, s, strcmp(err, "out of memory") ? FD_SEND_FAILED : FD_SEND_RETRY,
            0, err, NULL);
        return FD_OK;
    }
    if (s->step == PS_PRIVATE_REPLY && !(s = pages_dm_from_comment(m, s)))
        return FD_OK;
    if (s->step == PS_MESSAGE) {
        int age;
        if (!meta_window_open(m, s->target, &age) && age >= 0) {
            char why[300];
            snprintf(why, sizeof why,
                     "outside the 24-hour messaging window (the user wrote "
                     "%d h ago): case %" PRId64 " needs a human (HUMAN_AGENT "
                     "tag / Page Inbox)",
                     age, s->case_id);
            H->log(ch, FD_LOG_WARN, "private message to %s: %s", s->target,
                   why);
            pages_finish(m, s, FD_SEND_HANDOFF, 0, why, NULL);
            return FD_OK;
        }
    }
    if (s->step != PS_HIDE) {
        pages_split(m, s);
        struct progress *p = progress_find(&m->prog, a->id);
        if (p && p->done < s->nparts)
            s->part = p->done; /* resume after what already went out */
    }
    pages_step(m, s);
    return FD_OK;
}

/* The optional key every pages plugin has. */
#define PAGES_KEY_FALLBACK(def_text)                                           \
    {                                                                          \
        .name = "dm_fallback", .type = FD_KEY_STRING, .def = def_text,         \
        .help = "public answer under a comment when Meta refuses its private " \
                "reply (already sent, older than 7 days, user unreachable); "  \
                "empty: none"                                                  \
    }

/* Reads dm_fallback into m (start()). */
META_FN bool pages_conf(struct meta *m)
{
    const char *fb = H->conf(m->ch, "dm_fallback");
    m->fallback = strdup(fb ? fb : "");
    return m->fallback != NULL;
}


/* The check() and start() both page plugins share: the account-id key
 * differs (page_id, account_id), and so do the identity fields asked for. */
static int pages_check(struct fd_channel *ch, const char *id_key, char *err,
                       size_t len)
{
    if (meta_validate(ch, id_key, err, len, true) < 0)
        return FD_EINVAL;
    const char *fb = H->conf(ch, "dm_fallback");
    if (fb && strlen(fb) > 2000) {
        snprintf(err, len, "dm_fallback: want at most 2000 characters");
        return FD_EINVAL;
    }
    return FD_OK;
}

static int pages_start(struct fd_channel *ch, const char *id_key,
                       const char *fields)
{
    struct meta *m = meta_new(ch, id_key);
    if (!m)
        return FD_EINVAL;
    if (!pages_conf(m)) {
        meta_free(m);
        return FD_ENOMEM;
    }
    meta_begin(m, fields);
    return FD_OK;
}

/* A webhook delivery: each entry goes to the channel of its Page or
 * account; its messaging events and its changes are handed on (`standby`
 * entries, threads another app owns, are left alone). */
static void pages_webhook(struct fd_channel *ch, const struct fd_http_in *req,
                          struct fd_http_reply *reply)
{
    struct meta *m;
    cJSON *doc = meta_delivery(ch, req, reply, PF->object, &m);
    if (!doc)
        return;
    const cJSON *entry, *ev;
    cJSON_ArrayForEach(entry, mj_arr(doc, "entry"))
    {
        struct meta *t = meta_route(m, mj_str(entry, "id"), PF->owner);
        if (!t)
            continue;
        cJSON_ArrayForEach(ev, mj_arr(entry, "messaging"))
            pages_messaging(t, ev);
        cJSON_ArrayForEach(ev, mj_arr(entry, "changes")) PF->change(t, ev);
    }
    cJSON_Delete(doc);
    /* A delivery the core could not record becomes 503 in the host. */
    meta_answer(reply, 200, "application/json", "{\"ok\":true}");
}

#endif
