/*
 * send.c - carrying out the outbox's actions on Discourse.
 *
 * REPLY: POST /posts.json {topic_id, raw, reply_to_post_number} into the
 * topic of the message answered (msg.thread is that post's number).
 * DM: the private message of the case.  The first DM of a case opens it:
 * POST /posts.json {title, raw, archetype: "private_message",
 * target_recipients: <author's username>}; the new topic is remembered for
 * the case (later DMs are posts in it) and as one of the bot's PM topics (the
 * author's answers there reach the script and, being the same user, join
 * the case).  A DM answering a private message goes into that PM.  When
 * the remembered PM is gone (404), the next attempt opens a new one.
 * HIDE: hide = flag raises a staff flag with take_action (Discourse hides the
 * post at once), hide = delete deletes it; both need a moderator or admin
 * bot user.  hide = off reports the action failed, with the reason, so the
 * outbox lists the post as still public.
 *
 * Texts longer than max_length characters (Discourse counts code points) go
 * out as several posts, cut at a line break or space where possible and
 * never inside a UTF-8 sequence.  Parts already posted are remembered per
 * action, so a retry after a failed later part does not repeat them.
 * 429 (extras.wait_seconds, else Retry-After), 5xx and network errors are
 * retried; other refusals fail with Discourse's first error message.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discourse.h"

void dc_dsend_free(struct dsend *s)
{
    if (!s)
        return;
    free(s->recipient);
    free(s->text);
    free(s);
}

/* Records the parts out and the PM topic part 0 opened (0: none). */
static void progress_note_topic(struct dc *d, int64_t action_id, size_t done,
                                int64_t topic)
{
    progress_note(&d->prog, action_id, done)->aux = topic;
}

static const char *kind_name(enum fd_action_kind k)
{
    return k == FD_ACTION_REPLY ? "reply" : k == FD_ACTION_DM ? "dm" : "hide";
}

/* Reports the outcome and forgets the action's progress. */
static void send_finish(struct dc *d, struct dsend *s, enum fd_send_status st,
                        int retry_ms, const char *error)
{
    struct fd_send_result res = {
        .status = st,
        .retry_after_ms = retry_ms,
        .error = error,
    };
    if (st != FD_SEND_RETRY)
        progress_drop(&d->prog, s->action_id);
    H->send_done(s->token, &res);
    s->token = NULL;
}

/* An id kept in the key/value store, or 0. */
static int64_t kv_id(struct dc *d, const char *fmt, int64_t n)
{
    char key[48];
    snprintf(key, sizeof key, fmt, n);
    char *v = H->kv_get(d->ch, key);
    int64_t id = 0;
    if (v && !dc_parse_id(v, &id))
        id = 0;
    free(v);
    return id;
}

/* The request body of the current step, or NULL (out of memory). */
static char *body_of(struct dc *d, const struct dsend *s)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    if (ok && s->kind == FD_ACTION_HIDE) {
        ok = cJSON_AddNumberToObject(o, "id", (double)s->post_id) &&
             cJSON_AddNumberToObject(o, "post_action_type_id",
                                     FLAG_INAPPROPRIATE) &&
             /* Rails compares this parameter with the string "true". */
             cJSON_AddStringToObject(o, "take_action", "true");
    } else if (ok) {
        size_t a = s->start[s->part], b = s->end[s->part];
        char *part = strndup(s->text + a, b - a);
        ok = part && cJSON_AddStringToObject(o, "raw", part);
        free(part);
        if (ok && s->topic_id == 0) {
            char title[256];
            snprintf(title, sizeof title, "%s #%" PRId64, d->pm_title,
                     s->case_id);
            ok = cJSON_AddStringToObject(o, "title", title) &&
                 cJSON_AddStringToObject(o, "archetype", "private_message") &&
                 cJSON_AddStringToObject(o, "target_recipients", s->recipient);
        } else if (ok) {
            ok = cJSON_AddNumberToObject(o, "topic_id", (double)s->topic_id);
            if (ok && s->reply_to && s->part == 0)
                ok = cJSON_AddNumberToObject(o, "reply_to_post_number",
                                             (double)s->reply_to);
        }
    }
    char *body = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return body;
}

/* Issues the request of the current step; takes ownership of s.  Reports
 * RETRY itself when the request cannot start. */
static void send_step(struct dc *d, struct dsend *s)
{
    const char *method = "POST";
    char path[64];
    char *body = NULL;
    if (s->kind == FD_ACTION_HIDE && d->hide == HIDE_DELETE) {
        method = "DELETE";
        snprintf(path, sizeof path, "/posts/%" PRId64 ".json", s->post_id);
    } else {
        snprintf(path, sizeof path, "%s",
                 s->kind == FD_ACTION_HIDE ? "/post_actions.json"
                                           : "/posts.json");
        body = body_of(d, s);
    }
    struct call *c = calloc(1, sizeof *c);
    if (c) {
        c->kind = CALL_SEND;
        c->ctx = s;
    }
    if (!c || (strcmp(method, "DELETE") && !body) ||
        dc_api_call(d, c, method, path, body) < 0) {
        free(c);
        free(body);
        send_finish(d, s, FD_SEND_RETRY, 0, "request could not start");
        dc_dsend_free(s);
        return;
    }
    free(body);
}

/* The PM topic a successful "open a PM" answer names; remembered for the
 * case and as one of the bot's PM topics. */
static int64_t note_new_pm(struct dc *d, struct dsend *s, const cJSON *doc)
{
    int64_t topic;
    if (!dc_json_int64(doc, "topic_id", &topic) || topic <= 0)
        return 0;
    char key[48], val[24];
    snprintf(val, sizeof val, "%" PRId64, topic);
    snprintf(key, sizeof key, "_dc.pm.%" PRId64, s->case_id);
    int rc = H->kv_set(d->ch, key, val);
    snprintf(key, sizeof key, "_dc.pmt.%" PRId64, topic);
    if (H->kv_set(d->ch, key, "1") < 0 || rc < 0)
        H->log(d->ch, FD_LOG_WARN,
               "cannot store private topic %" PRId64 " of case %" PRId64
               ": the author's answers there may be checked again",
               topic, s->case_id);
    return topic;
}

void dc_send_done(struct dc *d, struct call *c,
                  const struct fd_http_response *r)
{
    struct dsend *s = c->ctx;
    cJSON *doc = r->body && r->body_len
                     ? cJSON_ParseWithLength(r->body, r->body_len)
                     : NULL;
    char why[320];
    dc_describe(why, sizeof why, r, doc);
    bool accepted = r->status >= 200 && r->status < 300;

    if (s->kind == FD_ACTION_HIDE) {
        if (accepted || r->status == 404 || r->status == 410) {
            H->log(d->ch, FD_LOG_INFO,
                   "post %" PRId64 " %s (action %" PRId64 ")%s", s->post_id,
                   d->hide == HIDE_DELETE ? "deleted" : "hidden by a flag",
                   s->action_id, accepted ? "" : ": was already gone");
            send_finish(d, s, FD_SEND_OK, 0, NULL);
        } else if (r->status == 429 || r->status == 0 || r->status >= 500) {
            send_finish(d, s, FD_SEND_RETRY, dc_wait_ms(r, doc), why);
        } else {
            char e[400];
            snprintf(e, sizeof e, "%s%s", why,
                     r->status == 403 ? " (the bot user must be a moderator)"
                                      : "");
            send_finish(d, s, FD_SEND_FAILED, 0, e);
        }
        cJSON_Delete(doc);
        return;
    }

    if (accepted) {
        int64_t post_id = 0;
        dc_json_int64(doc, "id", &post_id);
        if (s->topic_id == 0) {
            s->topic_id = note_new_pm(d, s, doc);
            if (!s->topic_id) {
                /* E.g. {"action": "enqueued"}: waiting for approval. */
                H->log(d->ch, FD_LOG_WARN,
                       "private message to @%s accepted without a topic "
                       "(queued for approval?); %zu later part(s) dropped",
                       s->recipient, s->nparts - s->part - 1);
                send_finish(d, s, FD_SEND_OK, 0, NULL);
                cJSON_Delete(doc);
                return;
            }
            H->log(d->ch, FD_LOG_INFO,
                   "private message to @%s opened: topic %" PRId64
                   " (case %" PRId64 ")",
                   s->recipient, s->topic_id, s->case_id);
        }
        if (s->part + 1 < s->nparts) {
            s->part++;
            progress_note_topic(d, s->action_id, s->part, s->topic_id);
            c->ctx = NULL; /* s moves to the next call */
            send_step(d, s);
        } else {
            H->log(d->ch, FD_LOG_INFO,
                   "%s in topic %" PRId64 " sent (post %" PRId64
                   ", action %" PRId64 "%s)",
                   kind_name(s->kind), s->topic_id, post_id, s->action_id,
                   s->nparts > 1 ? ", in several posts" : "");
            send_finish(d, s, FD_SEND_OK, 0, NULL);
        }
    } else if (r->status == 429 || r->status == 0 || r->status >= 500) {
        if (s->part > 0 || s->topic_id)
            progress_note_topic(d, s->action_id, s->part, s->topic_id);
        send_finish(d, s, FD_SEND_RETRY, dc_wait_ms(r, doc), why);
    } else if (s->case_pm && s->part == 0 &&
               (r->status == 404 || r->status == 410)) {
        /* The case's PM was deleted: forget it, the retry opens a new one. */
        char key[48];
        snprintf(key, sizeof key, "_dc.pm.%" PRId64, s->case_id);
        H->kv_set(d->ch, key, NULL);
        progress_drop(&d->prog, s->action_id);
        H->log(d->ch, FD_LOG_INFO,
               "private topic %" PRId64 " of case %" PRId64 " is gone; a new "
               "private message follows",
               s->topic_id, s->case_id);
        send_finish(d, s, FD_SEND_RETRY, 1, why);
    } else {
        send_finish(d, s, FD_SEND_FAILED, 0, why);
    }
    cJSON_Delete(doc);
}

/* Cuts s->text into posts of at most max_len characters. */
static void split(struct dc *d, struct dsend *s)
{
    size_t len = strlen(s->text), at = 0;
    while (at < len && s->nparts < MAX_PARTS) {
        size_t n =
            H->text_cut(s->text + at, len - at, d->max_len, FD_TEXT_CHARS);
        if (n == 0 || n > len - at) /* a host bug: never loop forever */
            n = len - at;
        s->start[s->nparts] = at;
        s->end[s->nparts++] = at + n;
        at += n;
    }
    if (at < len)
        H->log(d->ch, FD_LOG_WARN,
               "action %" PRId64 ": text cut after %d posts of %zu characters",
               s->action_id, MAX_PARTS, d->max_len);
}

/* Validates an action and works out where it goes.  Returns the new
 * dsend, or NULL with *err set. */
static struct dsend *dsend_new(struct dc *d, const struct fd_action *a,
                               struct fd_send *token, const char **err,
                               char *ebuf, size_t elen)
{
    struct dsend *s = calloc(1, sizeof *s);
    if (!s) {
        *err = "out of memory";
        return NULL;
    }
    s->token = token;
    s->kind = a->kind;
    s->action_id = a->id;
    s->case_id = a->case_id;
    *err = NULL;
    struct progress *p = progress_find(&d->prog, a->id);
    if (a->kind == FD_ACTION_HIDE) {
        if (d->hide == HIDE_OFF) {
            snprintf(ebuf, elen,
                     "hide = off: post %.24s stays visible (set hide = flag "
                     "or delete, with a moderator bot user)",
                     a->message_id ? a->message_id : "?");
            *err = ebuf;
        } else if (!dc_parse_id(a->message_id, &s->post_id)) {
            *err = "no post id";
        }
    } else if (!a->text || !*a->text) {
        *err = "empty text";
    } else if (a->kind == FD_ACTION_REPLY ||
               (a->kind == FD_ACTION_DM && a->is_private)) {
        /* A reply, or a DM answering a private message: into its topic. */
        if (!dc_parse_id(a->chat_id, &s->topic_id))
            *err = "no topic id";
        else if (!dc_parse_id(a->thread, &s->reply_to))
            s->reply_to = 0;
    } else {
        int64_t uid = 0;
        s->topic_id = p && p->aux
                          ? p->aux
                          : kv_id(d, "_dc.pm.%" PRId64, a->case_id);
        s->case_pm = s->topic_id != 0;
        if (!s->topic_id) {
            char key[48];
            if (!dc_parse_id(a->user_id, &uid)) {
                *err = "no user id";
            } else {
                snprintf(key, sizeof key, "_dc.user.%" PRId64, uid);
                s->recipient = H->kv_get(d->ch, key);
                if (!s->recipient || !dc_username_ok(s->recipient)) {
                    snprintf(ebuf, elen,
                             "the username of user %" PRId64 " is not known",
                             uid);
                    *err = ebuf;
                }
            }
        }
    }
    if (!*err && a->kind != FD_ACTION_HIDE && !(s->text = strdup(a->text)))
        *err = "out of memory";
    if (*err) {
        dc_dsend_free(s);
        return NULL;
    }
    if (s->text) {
        split(d, s);
        if (p && p->done < s->nparts) {
            s->part = p->done; /* resume after what already went out */
            if (p->aux)
                s->topic_id = p->aux;
        }
    }
    return s;
}

int dc_send(struct fd_channel *ch, const struct fd_action *a,
            struct fd_send *token)
{
    struct dc *d = H->get_data(ch);
    if (!d) {
        struct fd_send_result res = {.status = FD_SEND_RETRY,
                                     .error = "channel not started"};
        H->send_done(token, &res);
        return FD_OK;
    }
    const char *err = NULL;
    char ebuf[200];
    struct dsend *s = dsend_new(d, a, token, &err, ebuf, sizeof ebuf);
    if (!s) {
        bool oom = strcmp(err, "out of memory") == 0;
        struct fd_send_result res = {
            .status = oom ? FD_SEND_RETRY : FD_SEND_FAILED, .error = err};
        H->send_done(token, &res);
        return FD_OK;
    }
    send_step(d, s);
    return FD_OK;
}
