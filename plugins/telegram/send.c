/*
 * send.c - carrying out the outbox's actions on Telegram.
 *
 * REPLY and DM are sendMessage (a DM goes to the user's id, which is their
 * private chat), HIDE is deleteMessage.  Text over 4096 UTF-16 units goes
 * out as several messages, cut at a line break or space where possible;
 * which parts already went out is remembered per action, so a retry after a
 * failed second part does not repeat the first.  A DM Telegram refuses
 * (the user never pressed Start) becomes FD_SEND_NO_DM with a public text
 * carrying the t.me deep link that opens the private chat with the case.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telegram.h"

void tg_tsend_free(struct tsend *s)
{
    if (!s)
        return;
    free(s->chat_id);
    free(s->reply_to);
    free(s->message_id);
    free(s->thread);
    free(s->text);
    free(s);
}

/* Chat and message ids go out as numbers when they look like numbers (exact
 * for any int64) and as strings otherwise (Telegram takes "@channel"). */
static bool add_id(cJSON *o, const char *key, const char *id)
{
    if (tg_is_json_int(id))
        return cJSON_AddRawToObject(o, key, id) != NULL;
    return cJSON_AddStringToObject(o, key, id) != NULL;
}

/* Byte length of the next part of s: at most MAX_TEXT_UNITS UTF-16 code
 * units, never inside a UTF-8 sequence, before the last line break (else
 * space) in the second half when there is one.  *skip is how many bytes of
 * white space after the part the next one leaves out (Telegram trims them
 * anyway).  Not the host's text_cut: that counts code points, and Telegram
 * counts an emoji outside the BMP twice, so its parts could be too long. */
static size_t next_cut(const char *s, size_t len, size_t *skip)
{
    size_t i = 0, units = 0, nl = 0, sp = 0;
    *skip = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (n > len - i)
            n = len - i;
        size_t u = n == 4 ? 2 : 1; /* astral: a surrogate pair */
        if (units + u > MAX_TEXT_UNITS)
            break;
        if (c == '\n')
            nl = i;
        else if (c == ' ')
            sp = i;
        units += u;
        i += n;
    }
    if (i >= len)
        return len;
    size_t at = nl > i / 2 ? nl : sp > i / 2 ? sp : i;
    if (at < i)
        *skip = strspn(s + at, " \n");
    return at;
}

/* "reply to chat" etc.: the start of a log line about an action. */
static const char *kind_name(enum fd_action_kind k)
{
    return k == FD_ACTION_REPLY ? "reply to chat"
           : k == FD_ACTION_DM  ? "dm to user"
                                : "hide in chat";
}

/* Reports the outcome and forgets the action's progress. */
static void send_finish(struct tg *t, struct tsend *s, enum fd_send_status st,
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

/* Builds and issues the request for the current part; takes ownership of s.
 * Reports RETRY itself when the request cannot start. */
static void send_part(struct tg *t, struct tsend *s)
{
    cJSON *o = cJSON_CreateObject();
    const char *method =
        s->kind == FD_ACTION_HIDE ? "deleteMessage" : "sendMessage";
    bool built = o && add_id(o, "chat_id", s->chat_id);
    if (built && s->kind == FD_ACTION_HIDE) {
        built = add_id(o, "message_id", s->message_id);
    } else if (built) {
        size_t a = s->start[s->part], b = s->end[s->part];
        char *part = strndup(s->text + a, b - a);
        built = part && cJSON_AddStringToObject(o, "text", part);
        free(part);
        if (built && s->reply_to && s->part == 0)
            built = add_id(o, "reply_to_message_id", s->reply_to) &&
                    cJSON_AddTrueToObject(o, "allow_sending_without_reply");
        if (built && s->thread)
            built = add_id(o, "message_thread_id", s->thread);
    }
    char *body = built ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    struct call *c = calloc(1, sizeof *c);
    if (c) {
        c->kind = CALL_SEND;
        c->s = s;
    }
    if (!c || tg_api_call(t, c, method, body, API_HTTP_MS) < 0) {
        if (c)
            c->s = NULL;
        else
            free(body);
        free(c);
        send_finish(t, s, FD_SEND_RETRY, 0, "request could not start", NULL);
        tg_tsend_free(s);
    }
}

static bool desc_has(const struct answer *a, const char *needle)
{
    return a->description && strcasestr(a->description, needle);
}

/* One sendMessage/deleteMessage answer: next part, or the outcome. */
void tg_send_done(struct tg *t, struct call *c,
                  const struct fd_http_response *r)
{
    struct tsend *s = c->s;
    struct answer a;
    char why[320], fallback[600];
    tg_answer_parse(r, &a);
    tg_describe(why, sizeof why, r, &a);
    const char *what = kind_name(s->kind);
    bool accepted =
        r->status >= 200 && r->status < 300 &&
        !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(a.doc, "ok"));

    if (accepted || (s->kind == FD_ACTION_HIDE && r->status == 400 &&
                     desc_has(&a, "message to delete not found"))) {
        if (s->kind != FD_ACTION_HIDE && s->part + 1 < s->nparts) {
            s->part++;
            progress_note(&t->prog, s->action_id, s->part);
            c->s = NULL; /* moves to the next call */
            send_part(t, s);
        } else {
            H->log(t->ch, FD_LOG_DEBUG, "%s %s sent (action %" PRId64 "%s)",
                   what, s->chat_id, s->action_id,
                   accepted ? "" : ", was already gone");
            send_finish(t, s, FD_SEND_OK, 0, NULL, NULL);
        }
    } else if (r->status == 429 || r->status == 0 || r->status >= 500) {
        int wait = tg_answer_wait_ms(&a, r);
        if (wait)
            H->log(t->ch, FD_LOG_WARN, "%s %s: %s; retry in %d s", what,
                   s->chat_id, why, wait / 1000);
        else
            H->log(t->ch, FD_LOG_WARN, "%s %s: %s; will retry", what,
                   s->chat_id, why);
        send_finish(t, s, FD_SEND_RETRY, wait, why, NULL);
    } else if (a.migrate_to && !s->migrated) {
        /* The group became a supergroup: same conversation, new id. */
        char id[24];
        snprintf(id, sizeof id, "%" PRId64, a.migrate_to);
        H->log(t->ch, FD_LOG_INFO, "chat %s moved to %s; sending there",
               s->chat_id, id);
        char *nid = strdup(id);
        if (nid) {
            free(s->chat_id);
            s->chat_id = nid;
            s->migrated = true;
            c->s = NULL;
            send_part(t, s);
        } else {
            send_finish(t, s, FD_SEND_RETRY, 0, "out of memory", NULL);
        }
    } else if (s->kind == FD_ACTION_DM &&
               (r->status == 403 ||
                (r->status == 400 && desc_has(&a, "chat not found")))) {
        /* The user never pressed Start (or blocked the bot): hand the core
         * a public text with the deep link that opens the private chat. */
        if (!t->username) {
            send_finish(t, s, FD_SEND_RETRY, 2000, "bot name not known yet",
                        NULL);
        } else {
            snprintf(fallback, sizeof fallback,
                     "Ich kann dir noch nicht privat schreiben. Bitte öffne "
                     "https://t.me/%s?start=c%" PRId64 " und tippe auf "
                     "Start, dann geht es dort weiter.\n"
                     "I can't write to you privately yet. Please open "
                     "https://t.me/%s?start=c%" PRId64 " and press Start, "
                     "we'll continue there.",
                     t->username, s->case_id, t->username, s->case_id);
            H->log(t->ch, FD_LOG_INFO,
                   "dm to user %s refused (%s); public link to case %" PRId64
                   " instead",
                   s->chat_id, why, s->case_id);
            send_finish(t, s, FD_SEND_NO_DM, 0, why, fallback);
        }
    } else {
        H->log(t->ch, FD_LOG_WARN, "%s %s failed: %s (action %" PRId64 ")",
               what, s->chat_id, why, s->action_id);
        send_finish(t, s, FD_SEND_FAILED, 0, why, NULL);
    }
    cJSON_Delete(a.doc);
}

/* Validates an action and copies what the calls need.  Returns the new
 * tsend, or NULL with *err set. */
static struct tsend *tsend_new(struct tg *t, const struct fd_action *a,
                               struct fd_send *token, const char **err)
{
    struct tsend *s = calloc(1, sizeof *s);
    if (!s) {
        *err = "out of memory";
        return NULL;
    }
    s->token = token;
    s->kind = a->kind;
    s->action_id = a->id;
    s->case_id = a->case_id;
    const char *target = a->kind == FD_ACTION_DM ? a->user_id : a->chat_id;
    *err = NULL;
    if (!target || !*target)
        *err = a->kind == FD_ACTION_DM ? "no user id" : "no chat id";
    else if (a->kind == FD_ACTION_HIDE && !tg_is_json_int(a->message_id))
        *err = "no message id";
    else if (a->kind != FD_ACTION_HIDE && (!a->text || !*a->text))
        *err = "empty text";
    if (*err) {
        free(s);
        return NULL;
    }
    s->chat_id = strdup(target);
    bool ok = s->chat_id != NULL;
    if (a->kind == FD_ACTION_HIDE) {
        ok = ok && (s->message_id = strdup(a->message_id));
    } else {
        s->text = strdup(a->text);
        ok = ok && s->text;
        if (a->kind == FD_ACTION_REPLY && tg_is_json_int(a->message_id))
            ok = ok && (s->reply_to = strdup(a->message_id));
        if (a->kind == FD_ACTION_REPLY && tg_is_json_int(a->thread))
            ok = ok && (s->thread = strdup(a->thread));
    }
    if (!ok) {
        tg_tsend_free(s);
        *err = "out of memory";
        return NULL;
    }
    if (s->text) {
        size_t len = strlen(s->text), at = 0, skip;
        while (at < len && s->nparts < MAX_PARTS) {
            s->start[s->nparts] = at;
            at += next_cut(s->text + at, len - at, &skip);
            s->end[s->nparts++] = at;
            at += skip;
        }
        if (at < len)
            H->log(t->ch, FD_LOG_WARN,
                   "action %" PRId64 ": text cut after %d messages", a->id,
                   MAX_PARTS);
        struct progress *p = progress_find(&t->prog, a->id);
        if (p && p->done < s->nparts)
            s->part = p->done; /* resume after what already went out */
    }
    return s;
}

int tg_send(struct fd_channel *ch, const struct fd_action *a,
            struct fd_send *token)
{
    struct tg *t = H->get_data(ch);
    const char *err = NULL;
    if (!t) {
        struct fd_send_result res = {.status = FD_SEND_RETRY,
                                     .error = "channel not started"};
        H->send_done(token, &res);
        return FD_OK;
    }
    struct tsend *s = tsend_new(t, a, token, &err);
    if (!s) {
        bool oom = strcmp(err, "out of memory") == 0;
        H->log(t->ch, FD_LOG_WARN, "action %" PRId64 " (%s): %s", a->id,
               kind_name(a->kind), err);
        struct fd_send_result res = {
            .status = oom ? FD_SEND_RETRY : FD_SEND_FAILED, .error = err};
        H->send_done(token, &res);
        return FD_OK;
    }
    send_part(t, s);
    return FD_OK;
}
