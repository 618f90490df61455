/*
 * inbound.c - how updates reach the Telegram plugin.
 *
 * Start-up is a chain of calls, one at a time, each retried with backoff
 * (1 s doubling to 30 s with jitter, or the platform's retry_after) and
 * never blocking:
 * getMe (the bot's id and username), then deleteWebhook and the getUpdates
 * loop (mode = poll), or setWebhook (mode = webhook).
 *
 * Polling: an offset only moves past an update once the core has recorded
 * it (FD_OK or FD_DUPLICATE), so one the store could not take is fetched
 * again; and a poll only goes out (confirming the offset) after
 * host->commit() says the batch holding them was committed, else the
 * offset goes back and they are fetched again.  A poll that comes back at
 * once with nothing waits 1 s before the next, so a server that does not
 * hold polls is not hammered.
 *
 * Webhook: the secret token is compared in constant time; a mismatch is
 * 401, malformed JSON 400, anything but POST 405.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telegram.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Byte length of s cut to at most max bytes without splitting a UTF-8
 * sequence (for log excerpts). */
static int utf8_prefix(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

/* ---- the control chain: getMe, (set|delete)Webhook, getUpdates --------- */

static void on_ctl_timer(void *ud) { tg_ctl_step(ud); }

static void ctl_later(struct tg *t, int ms)
{
    if (!H->timer_add(t->ch, ms, on_ctl_timer, t))
        H->log(t->ch, FD_LOG_ERROR, "cannot schedule a timer; %s stalled",
               t->phase == PH_POLL ? "polling" : "start-up");
}

/* The delay before retrying the current step after a failure: the
 * platform's wait when it named one, else the host's jittered backoff
 * (1 s doubling to 30 s). */
static int ctl_retry_ms(struct tg *t, int wait_ms)
{
    t->failures++;
    return wait_ms > 0
               ? wait_ms
               : H->backoff_ms(t->failures, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
}

static char *body_getupdates(struct tg *t)
{
    char buf[160];
    if (t->offset)
        snprintf(buf, sizeof buf,
                 "{\"offset\":%" PRId64 ",\"timeout\":%d,"
                 "\"allowed_updates\":" ALLOWED_UPDATES "}",
                 t->offset, POLL_TIMEOUT_S);
    else
        snprintf(buf, sizeof buf,
                 "{\"timeout\":%d,\"allowed_updates\":" ALLOWED_UPDATES "}",
                 POLL_TIMEOUT_S);
    return strdup(buf);
}

static char *body_setwebhook(struct tg *t)
{
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "url", t->hook_url) &&
        cJSON_AddStringToObject(o, "secret_token", t->secret) &&
        cJSON_AddRawToObject(o, "allowed_updates", ALLOWED_UPDATES))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Issues the call of the current phase; on failure retries later. */
void tg_ctl_step(struct tg *t)
{
    const char *method;
    char *body;
    int timeout = API_HTTP_MS;
    switch (t->phase) {
    case PH_ME:
        method = "getMe";
        body = strdup("{}");
        break;
    case PH_HOOK:
        if (t->webhook) {
            method = "setWebhook";
            body = body_setwebhook(t);
        } else {
            method = "deleteWebhook";
            body = strdup("{}");
        }
        break;
    case PH_POLL:
        /* The offset confirms updates to Telegram: only once committed. */
        if (H->commit(t->ch) != FD_OK) {
            int ms = ctl_retry_ms(t, 0);
            H->log(t->ch, FD_LOG_ERROR,
                   "updates not recorded (the store's commit failed); "
                   "fetching them again in %.1f s",
                   ms / 1000.0);
            t->offset = t->recorded;
            ctl_later(t, ms);
            return;
        }
        t->recorded = t->offset;
        method = "getUpdates";
        body = body_getupdates(t);
        timeout = POLL_HTTP_MS;
        t->poll_started_ms = now_ms();
        break;
    default:
        return;
    }
    struct call *c = calloc(1, sizeof *c);
    if (c)
        c->kind = CALL_CTL;
    else
        free(body);
    if (!c || tg_api_call(t, c, method, body, timeout) < 0) {
        free(c);
        H->log(t->ch, FD_LOG_WARN, "%s: could not start the request", method);
        ctl_later(t, ctl_retry_ms(t, 0));
    }
}

/* ---- inbound updates ---------------------------------------------------- */

/* "/start c<digits>" (or "/start@bot c<digits>") in a private chat: the
 * deep link our NO_DM fallback hands out.  Writes the digits into out. */
static bool parse_start_link(const char *text, char *out, size_t len)
{
    if (strncmp(text, "/start", 6) != 0)
        return false;
    const char *p = text + 6;
    if (*p == '@')
        p += strcspn(p, " \t\n");
    size_t sp = strspn(p, " \t\n");
    if (sp == 0)
        return false;
    p += sp;
    if (*p != 'c')
        return false;
    p++;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 18 || n >= len || p[n + strspn(p + n, " \t\n")] != '\0')
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Turns one Update into a delivery.  Returns 0 when the update is done with
 * (delivered, duplicate or ignored) and <0 when the core could not record it,
 * so the caller must not confirm it. */
static int handle_update(struct tg *t, const cJSON *u, int64_t uid)
{
    const cJSON *m = tg_json_obj(u, "message");
    bool edited = false;
    if (!m) {
        m = tg_json_obj(u, "edited_message");
        edited = m != NULL;
    }
    if (!m) {
        H->log(t->ch, FD_LOG_DEBUG,
               "update %" PRId64 ": not a message, ignored", uid);
        return 0;
    }
    const cJSON *chat = tg_json_obj(m, "chat");
    const cJSON *from = tg_json_obj(m, "from");
    const char *type = tg_json_str(chat, "type");
    int64_t chat_id, msg_id, user_id, thread = 0;
    const char *why = NULL;
    if (!chat || !type || !tg_json_int64(chat, "id", &chat_id) ||
        !tg_json_int64(m, "message_id", &msg_id))
        why = "no chat or message id";
    else if (strcmp(type, "private") && strcmp(type, "group") &&
             strcmp(type, "supergroup"))
        why = "not a private chat or group";
    else if (!from || !tg_json_int64(from, "id", &user_id))
        why = "no sender";
    else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(from, "is_bot")) ||
             (t->bot_id && user_id == t->bot_id))
        why = "from a bot";
    else if (tg_json_obj(m, "sender_chat"))
        why = "sent on behalf of a chat";
    if (why) {
        H->log(t->ch, FD_LOG_DEBUG, "update %" PRId64 ": %s, ignored", uid,
               why);
        return 0;
    }
    const char *text = tg_json_str(m, "text");
    if (!text)
        text = tg_json_str(m, "caption");
    if (!text || !*text) {
        H->log(t->ch, FD_LOG_DEBUG, "update %" PRId64 ": no text, ignored",
               uid);
        return 0;
    }
    bool is_private = strcmp(type, "private") == 0;
    /* Only forum topics take message_thread_id on send; in a plain
     * supergroup the field names a reply chain and sending it fails. */
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "is_topic_message")))
        tg_json_int64(m, "message_thread_id", &thread);

    char ev[24], mid[24], cid[24], uidbuf[24], th[24], link[24];
    snprintf(ev, sizeof ev, "%" PRId64, uid);
    snprintf(mid, sizeof mid, "%" PRId64, msg_id);
    snprintf(cid, sizeof cid, "%" PRId64, chat_id);
    snprintf(uidbuf, sizeof uidbuf, "%" PRId64, user_id);
    snprintf(th, sizeof th, "%" PRId64, thread);

    /* Display name: first_name [last_name], as Telegram shows it. */
    char name[256];
    const char *first = tg_json_str(from, "first_name");
    const char *last = tg_json_str(from, "last_name");
    snprintf(name, sizeof name, "%.120s%s%.120s", first ? first : "",
             first && last ? " " : "", last ? last : "");

    struct fd_msg msg = {
        .event_id = ev,
        .message_id = mid,
        .text = text,
        .is_private = is_private,
        .user_id = uidbuf,
        .user_name = name[0] ? name : NULL,
        .user_handle = tg_json_str(from, "username"),
        .chat_id = cid,
        .thread = thread ? th : NULL,
        .link_case = is_private && parse_start_link(text, link, sizeof link)
                         ? link
                         : NULL,
    };
    int rc = H->deliver(t->ch, &msg);
    /* Per message: debug (a busy bot would log thousands of lines a
     * second); failures stay visible. */
    H->log(t->ch, rc < 0 ? FD_LOG_WARN : FD_LOG_DEBUG,
           "update %" PRId64 ": %s%s message %s in %s chat %s from user %s%s%s",
           uid, edited ? "edited " : "", is_private ? "private" : "group", mid,
           type, cid, uidbuf, msg.link_case ? " (start link)" : "",
           rc == FD_DUPLICATE ? ", duplicate"
           : rc < 0           ? ", not recorded, will retry"
                              : "");
    H->log(t->ch, FD_LOG_DEBUG, "update %" PRId64 " text: %.*s", uid,
           utf8_prefix(text, 80), text);
    return rc < 0 ? -1 : 0;
}

/* A getUpdates answer: deliver in order, confirm (advance the offset) only
 * what the core took, then schedule the next poll. */
static void on_poll_done(struct tg *t, const struct fd_http_response *r,
                         const struct answer *a)
{
    if (r->status != 200 || !a->ok || !cJSON_IsArray(a->result)) {
        char why[320];
        int ms = ctl_retry_ms(t, tg_answer_wait_ms(a, r));
        tg_describe(why, sizeof why, r, a);
        H->log(t->ch, FD_LOG_WARN, "getUpdates: %s; retry in %.1f s", why,
               ms / 1000.0);
        ctl_later(t, ms);
        return;
    }
    int n = 0;
    bool stalled = false;
    const cJSON *u;
    cJSON_ArrayForEach(u, a->result)
    {
        int64_t uid;
        if (!cJSON_IsObject(u) || !tg_json_int64(u, "update_id", &uid)) {
            H->log(t->ch, FD_LOG_WARN,
                   "getUpdates: an update without update_id, skipped");
            continue;
        }
        if (handle_update(t, u, uid) < 0) {
            stalled = true;
            break;
        }
        t->offset = uid + 1;
        n++;
    }
    if (stalled) {
        ctl_later(t, ctl_retry_ms(t, 0));
        return;
    }
    t->failures = 0;
    int64_t took = now_ms() - t->poll_started_ms;
    if (n == 0 && took < MIN_POLL_GAP_MS)
        ctl_later(t, MIN_POLL_GAP_MS); /* a server that does not hold polls */
    else
        tg_ctl_step(t);
}

void tg_ctl_done(struct tg *t, const struct fd_http_response *r)
{
    struct answer a;
    tg_answer_parse(r, &a);
    if (t->phase == PH_POLL) {
        on_poll_done(t, r, &a);
        cJSON_Delete(a.doc);
        return;
    }
    const char *method = t->phase == PH_ME ? "getMe"
                         : t->webhook      ? "setWebhook"
                                           : "deleteWebhook";
    int64_t id = 0;
    const char *user = NULL;
    bool good = r->status == 200 && a.ok;
    if (good && t->phase == PH_ME) {
        user = tg_json_str(a.result, "username");
        good = cJSON_IsObject(a.result) && tg_json_int64(a.result, "id", &id) &&
               user && tg_in_set(user, SECRET_CHARS, 1, 64);
    }
    if (!good) {
        char why[320];
        int ms = ctl_retry_ms(t, tg_answer_wait_ms(&a, r));
        tg_describe(why, sizeof why, r, &a);
        H->log(t->ch, r->status == 401 ? FD_LOG_ERROR : FD_LOG_WARN,
               "%s: %s%s; retry in %.1f s", method, why,
               r->status == 401 || r->status == 404 ? " (check the token)" : "",
               ms / 1000.0);
        cJSON_Delete(a.doc);
        ctl_later(t, ms);
        return;
    }
    t->failures = 0;
    if (t->phase == PH_ME) {
        char *u = strdup(user);
        if (u) {
            free(t->username);
            t->username = u;
            t->bot_id = id;
        }
        H->log(t->ch, FD_LOG_INFO, "bot @%s (id %" PRId64 ")", user, id);
        t->phase = PH_HOOK;
        cJSON_Delete(a.doc);
        tg_ctl_step(t);
        return;
    }
    cJSON_Delete(a.doc);
    if (t->webhook) {
        H->log(t->ch, FD_LOG_INFO, "webhook registered at %s", t->hook_url);
        t->phase = PH_IDLE;
    } else {
        H->log(t->ch, FD_LOG_INFO, "webhook removed; long polling");
        t->phase = PH_POLL;
        tg_ctl_step(t);
    }
}

/* ---- webhook ------------------------------------------------------------ */

static void hook_answer(struct fd_http_reply *reply, int status,
                        const char *text)
{
    H->reply_status(reply, status);
    H->reply_type(reply, "text/plain; charset=utf-8");
    H->reply_body(reply, text, strlen(text));
}

void tg_webhook(struct fd_channel *ch, const struct fd_http_in *req,
                struct fd_http_reply *reply)
{
    struct tg *t = H->get_data(ch);
    if (!t || !t->webhook) {
        /* Telegram retries on non-2xx: 503 keeps the update for later. */
        hook_answer(reply, t ? 404 : 503,
                    t ? "not in webhook mode\n" : "not started\n");
        return;
    }
    if (!req->method || strcmp(req->method, "POST") != 0) {
        hook_answer(reply, 405, "POST only\n");
        return;
    }
    if (req->path && *req->path && strcmp(req->path, "/") != 0) {
        hook_answer(reply, 404, "not found\n");
        return;
    }
    const char *got = H->header(req, "X-Telegram-Bot-Api-Secret-Token");
    if (!got || !H->ct_equal(got, t->secret)) {
        H->log(t->ch, FD_LOG_WARN, "webhook from %s: %s secret token, refused",
               req->remote ? req->remote : "?", got ? "wrong" : "missing");
        hook_answer(reply, 401, "unauthorized\n");
        return;
    }
    cJSON *u = req->body && req->body_len
                   ? cJSON_ParseWithLength(req->body, req->body_len)
                   : NULL;
    int64_t uid;
    if (!cJSON_IsObject(u) || !tg_json_int64(u, "update_id", &uid)) {
        H->log(t->ch, FD_LOG_WARN, "webhook from %s: %s (%zu bytes), refused",
               req->remote ? req->remote : "?",
               !u                   ? "malformed JSON"
               : !cJSON_IsObject(u) ? "not a JSON object"
                                    : "no update_id",
               req->body_len);
        cJSON_Delete(u);
        hook_answer(reply, 400, "bad update\n");
        return;
    }
    /* A delivery the core could not record becomes 503 in the host, and
     * Telegram sends it again. */
    handle_update(t, u, uid);
    cJSON_Delete(u);
    H->reply_status(reply, 200);
}
