/*
 * whatsapp.c - the WhatsApp Cloud API plugin (one business phone number
 * per channel).  Every WhatsApp chat is one to one, so every message is
 * private; there is nothing public to answer or hide.
 *
 * Inbound: Meta's webhooks for the app's `whatsapp_business_account`
 * object arrive at /hooks/<channel>: the GET verification handshake, then
 * POSTs signed with X-Hub-Signature-256 (meta_common.h).  `changes` of
 * field `messages` carry either `messages` (to the script; the message id
 * "wamid.…" is the event id the core dedupes on) or `statuses` (sent,
 * delivered, read, failed: counted and logged, a failure with its error).
 * Entries are routed by metadata.phone_number_id, so numbers of one app
 * may share one callback URL.  Text, button and list answers and media
 * captions reach the script; other types are logged only.
 *
 * Outbound: POST /<phone_number_id>/messages.  Free text is allowed only
 * within 24 hours of the user's last message; the plugin keeps that time
 * per user (key/value "in.<wa_id>").  Outside the window it sends the
 * configured `template` instead, once, and the action waits
 * (FD_SEND_NO_DM) until the user answers: their next message names the
 * case (fd_msg.link_case, from "wait.<wa_id>"), which wakes the waiting
 * text inside the new window.  Should WhatsApp itself say the window is
 * closed (131047) the plugin notes it and retries, which sends the
 * template.  Rate limits (130429 throughput, 131056 pair rate, 4/80007)
 * are retried with backoff.  Texts are cut at 4096 characters.
 */
#include "meta_common.h"

#define WA_MAX_LEN 4096 /* text.body, characters */

enum { ST_SENT = 0, ST_DELIVERED, ST_READ, ST_FAILED, ST_OTHER };

/* One outbox action: its text in parts, or the template. */
struct wsend {
    struct fd_send *token;
    int64_t action_id, case_id;
    bool tpl; /* this request is the template */
    char *to; /* the user's wa_id */
    char *text;
    size_t start[META_MAX_PARTS], end[META_MAX_PARTS];
    size_t nparts, part;
};

/* ---- inbound ------------------------------------------------------------- */

/* The text a script can answer: a text body, a button or list answer, a
 * media caption; NULL for anything else (stickers, locations, reactions). */
static const char *wa_text(const cJSON *msg, const char *type)
{
    if (!type)
        return NULL;
    if (!strcmp(type, "text"))
        return mj_str(mj_obj(msg, "text"), "body");
    if (!strcmp(type, "button"))
        return mj_str(mj_obj(msg, "button"), "text");
    if (!strcmp(type, "interactive")) {
        const cJSON *in = mj_obj(msg, "interactive");
        const char *t = mj_str(mj_obj(in, "button_reply"), "title");
        return t ? t : mj_str(mj_obj(in, "list_reply"), "title");
    }
    if (!strcmp(type, "image") || !strcmp(type, "video") ||
        !strcmp(type, "document"))
        return mj_str(mj_obj(msg, type), "caption");
    return NULL;
}

/* The profile name WhatsApp sends along for this sender, or NULL. */
static const char *wa_name(const cJSON *contacts, const char *from)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, contacts)
    {
        const char *id = mj_str(c, "wa_id");
        if (id && !strcmp(id, from))
            return mj_str(mj_obj(c, "profile"), "name");
    }
    return NULL;
}

static void wa_message(struct meta *m, const cJSON *msg, const cJSON *contacts)
{
    const char *from = mj_str(msg, "from");
    const char *id = mj_str(msg, "id");
    const char *type = mj_str(msg, "type");
    const char *ts = mj_str(msg, "timestamp");
    if (!meta_id_ok(from) || !meta_token_ok(id, 256)) {
        H->log(m->ch, FD_LOG_WARN,
               "message without a usable from or id: "
               "ignored");
        return;
    }
    char *end = NULL;
    long long t = ts ? strtoll(ts, &end, 10) : 0;
    /* Every message opens the window, also one the script gets nothing
     * from. */
    meta_note_inbound(m, from, end && *end == '\0' ? t : 0);
    const char *text = wa_text(msg, type);
    if (!text || !*text) {
        char *ct = meta_clean_dup(type ? type : "?", 32);
        H->log(m->ch, FD_LOG_INFO,
               "message %s from %s is of type %s: not "
               "for the script",
               id, from, ct ? ct : "?");
        free(ct);
        return;
    }
    char *name = meta_clean_dup(wa_name(contacts, from), META_MAX_NAME);
    char *link = meta_kv_get(m, "wait.%s", from);
    struct fd_msg fm = {
        .event_id = id,
        .message_id = id,
        .text = text,
        .is_private = true,
        .user_id = from,
        .user_name = name,
        .chat_id = from,
        .link_case = link,
    };
    int rc = H->deliver(m->ch, &fm);
    if (rc >= 0 && link) {
        /* The window is open again: waiting texts go out now. */
        meta_kv_set(m, NULL, NULL, "wait.%s", from);
        meta_kv_set(m, NULL, NULL, "tpl.%s", from);
    }
    H->log(m->ch, rc < 0 ? FD_LOG_WARN : FD_LOG_DEBUG, "message %s from %s%s",
           id, from,
           rc == FD_DUPLICATE ? ": duplicate"
           : rc < 0           ? ": not recorded"
           : link             ? ": wakes the waiting messages of its case"
                              : "");
    free(name);
    free(link);
}

/* A delivery receipt: counted, logged; a failure also says why, and a
 * failure for the closed window makes the next send use the template. */
static void wa_status(struct meta *m, const cJSON *st)
{
    static const char *const names[] = {"sent", "delivered", "read", "failed"};
    const char *status = mj_str(st, "status");
    const char *id = mj_str(st, "id");
    const char *rid = mj_str(st, "recipient_id");
    int k = ST_OTHER;
    for (int i = 0; status && i < 4; i++)
        if (!strcmp(status, names[i]))
            k = i;
    m->statuses[k]++;
    char *cid = meta_clean_dup(id ? id : "?", 128);
    char *crid = meta_clean_dup(rid ? rid : "?", META_MAX_ID);
    if (k != ST_FAILED) {
        H->log(m->ch, FD_LOG_DEBUG, "message %s to %s: %s", cid ? cid : "?",
               crid ? crid : "?", k == ST_OTHER ? "other status" : names[k]);
    } else {
        const cJSON *e = cJSON_GetArrayItem(mj_arr(st, "errors"), 0);
        int64_t code = 0;
        mj_int(e, "code", &code);
        const char *title = mj_str(e, "title");
        if (!title)
            title = mj_str(e, "message");
        char *ct = meta_clean_dup(title ? title : "", 150);
        H->log(m->ch, FD_LOG_WARN,
               "message %s to %s failed: error %" PRId64
               " %s (%lu failed so far)",
               cid ? cid : "?", crid ? crid : "?", code, ct ? ct : "",
               m->statuses[ST_FAILED]);
        free(ct);
        if (code == 131047 && meta_id_ok(rid))
            meta_kv_set(m, "1", NULL, "in.%s", rid); /* window closed */
    }
    free(cid);
    free(crid);
}

static void wa_change(struct meta *m, const cJSON *c)
{
    const char *field = mj_str(c, "field");
    const cJSON *v = mj_obj(c, "value");
    if (!field || strcmp(field, "messages") || !v)
        return; /* templates, account updates, ... */
    const char *pnid = mj_str(mj_obj(v, "metadata"), "phone_number_id");
    struct meta *t = meta_route(m, pnid, "phone number");
    if (!t)
        return;
    const cJSON *it, *contacts = mj_arr(v, "contacts");
    cJSON_ArrayForEach(it, mj_arr(v, "messages")) wa_message(t, it, contacts);
    cJSON_ArrayForEach(it, mj_arr(v, "statuses")) wa_status(t, it);
    cJSON_ArrayForEach(it, mj_arr(v, "errors"))
    {
        int64_t code = 0;
        mj_int(it, "code", &code);
        char *ct = meta_clean_dup(mj_str(it, "title"), 150);
        H->log(t->ch, FD_LOG_WARN, "WhatsApp reports error %" PRId64 " %s",
               code, ct ? ct : "");
        free(ct);
    }
}

static void wa_webhook(struct fd_channel *ch, const struct fd_http_in *req,
                       struct fd_http_reply *reply)
{
    struct meta *m;
    cJSON *doc = meta_delivery(ch, req, reply, "whatsapp_business_account", &m);
    if (!doc)
        return;
    const cJSON *entry, *c;
    cJSON_ArrayForEach(entry, mj_arr(doc, "entry"))
    {
        cJSON_ArrayForEach(c, mj_arr(entry, "changes")) wa_change(m, c);
    }
    cJSON_Delete(doc);
    /* A delivery the core could not record becomes 503 in the host. */
    meta_answer(reply, 200, "application/json", "{\"ok\":true}");
}

/* ---- outbound ------------------------------------------------------------ */

static void wsend_free(void *p)
{
    struct wsend *s = p;
    if (!s)
        return;
    free(s->to);
    free(s->text);
    free(s);
}

static void wa_finish(struct meta *m, struct wsend *s, enum fd_send_status st,
                      int retry_ms, const char *error)
{
    struct fd_send_result res = {
        .status = st,
        .retry_after_ms = retry_ms,
        .error = error,
    };
    if (st == FD_SEND_RETRY || st == FD_SEND_NO_DM) {
        if (s->part > 0)
            progress_note(&m->prog, s->action_id, s->part);
    } else {
        progress_drop(&m->prog, s->action_id);
    }
    H->send_done(s->token, &res);
    wsend_free(s);
}

/* Parks the action until the user writes again (their message names the
 * case, which wakes it). */
static void wa_park(struct meta *m, struct wsend *s, const char *why)
{
    int age;
    if (meta_window_open(m, s->to, &age)) {
        /* The user wrote while the template was on its way: no message
         * would wake this one, and the window is open anyway. */
        wa_finish(m, s, FD_SEND_RETRY, 1, "the user wrote meanwhile");
        return;
    }
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, s->case_id);
    meta_kv_set(m, v, "the case waiting for a user's answer", "wait.%s", s->to);
    H->log(m->ch, FD_LOG_INFO,
           "case %" PRId64 ": text to %s waits for the "
           "user's answer (%s)",
           s->case_id, s->to, why);
    wa_finish(m, s, FD_SEND_NO_DM, 0, why);
}

static char *wa_body(struct meta *m, const struct wsend *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *x = NULL;
    bool ok = o &&
              cJSON_AddStringToObject(o, "messaging_product", "whatsapp") &&
              cJSON_AddStringToObject(o, "recipient_type", "individual") &&
              cJSON_AddStringToObject(o, "to", s->to);
    if (ok && s->tpl) {
        cJSON *lang = NULL;
        ok = cJSON_AddStringToObject(o, "type", "template") &&
             (x = cJSON_AddObjectToObject(o, "template")) &&
             cJSON_AddStringToObject(x, "name", m->tpl) &&
             (lang = cJSON_AddObjectToObject(x, "language")) &&
             cJSON_AddStringToObject(lang, "code", m->tpl_lang);
    } else if (ok) {
        char *part = strndup(s->text + s->start[s->part],
                             s->end[s->part] - s->start[s->part]);
        ok = part && cJSON_AddStringToObject(o, "type", "text") &&
             (x = cJSON_AddObjectToObject(o, "text")) &&
             cJSON_AddFalseToObject(x, "preview_url") &&
             cJSON_AddStringToObject(x, "body", part);
        free(part);
    }
    char *body = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return body;
}

static void wa_sent(struct meta *m, void *ctx, const struct fd_http_response *r,
                    const cJSON *doc);

static void wa_step(struct meta *m, struct wsend *s)
{
    char path[META_MAX_ID + 16];
    snprintf(path, sizeof path, "/%s/messages", m->self_id);
    char *body = wa_body(m, s);
    if (!body || meta_call(m, "POST", path, body, wa_sent, wsend_free, s) < 0) {
        free(body);
        wa_finish(m, s, FD_SEND_RETRY, 0, "request could not start");
        return;
    }
    free(body);
}

static void wa_sent(struct meta *m, void *ctx, const struct fd_http_response *r,
                    const cJSON *doc)
{
    struct wsend *s = ctx;
    struct meta_err e;
    meta_classify(r, doc, &e);
    if (e.verdict == META_OK) {
        const cJSON *first = cJSON_GetArrayItem(mj_arr(doc, "messages"), 0);
        char *wamid = meta_clean_dup(mj_str(first, "id"), 128);
        if (s->tpl) {
            char v[24];
            snprintf(v, sizeof v, "%" PRId64, meta_now_s());
            meta_kv_set(m, v, "the time a template went out", "tpl.%s", s->to);
            H->log(m->ch, FD_LOG_INFO,
                   "outside the 24-hour window: template "
                   "%s sent to %s (%s)",
                   m->tpl, s->to, wamid ? wamid : "?");
            free(wamid);
            wa_park(m, s, "template sent");
            return;
        }
        H->log(m->ch, FD_LOG_DEBUG,
               "text to %s sent: %s (action %" PRId64 ", part %zu/%zu)", s->to,
               wamid ? wamid : "?", s->action_id, s->part + 1, s->nparts);
        free(wamid);
        if (s->part + 1 < s->nparts) {
            s->part++;
            progress_note(&m->prog, s->action_id, s->part);
            wa_step(m, s);
            return;
        }
        wa_finish(m, s, FD_SEND_OK, 0, NULL);
        return;
    }
    if (e.verdict == META_RETRY) {
        wa_finish(m, s, FD_SEND_RETRY, e.retry_ms, e.text);
        return;
    }
    if (e.verdict == META_WINDOW && !s->tpl) {
        /* Our note of the user's last message was wrong or missing: mark
         * the window closed; the retry sends the template. */
        meta_kv_set(m, "1", NULL, "in.%s", s->to);
        H->log(m->ch, FD_LOG_INFO,
               "text to %s: WhatsApp says the window is "
               "closed (%s); the template goes next",
               s->to, e.text);
        wa_finish(m, s, FD_SEND_RETRY, 1, e.text);
        return;
    }
    char why[400];
    snprintf(why, sizeof why, "%s%s%s", s->tpl ? "template " : "",
             s->tpl ? m->tpl : "", s->tpl ? ": " : "");
    snprintf(why + strlen(why), sizeof why - strlen(why), "%s", e.text);
    H->log(m->ch, FD_LOG_WARN, "message to %s failed: %s (action %" PRId64 ")",
           s->to, why, s->action_id);
    wa_finish(m, s, FD_SEND_FAILED, 0, why);
}

/* Whether a template to this user is on its way (a second action of the
 * case must not send another one meanwhile). */
static bool wa_tpl_in_flight(struct meta *m, const char *to)
{
    for (struct meta_call *c = m->calls; c; c = c->next) {
        const struct wsend *o = c->done == wa_sent ? c->ctx : NULL;
        if (o && o->tpl && !strcmp(o->to, to))
            return true;
    }
    return false;
}

static int wa_send(struct fd_channel *ch, const struct fd_action *a,
                   struct fd_send *token)
{
    struct meta *m = H->get_data(ch);
    struct fd_send_result res = {.status = FD_SEND_FAILED};
    if (!m) {
        res.status = FD_SEND_RETRY;
        res.error = "channel not started";
        H->send_done(token, &res);
        return FD_OK;
    }
    const char *to = meta_id_ok(a->chat_id) ? a->chat_id : a->user_id;
    if (a->kind == FD_ACTION_HIDE)
        res.error = "WhatsApp chats are private: nothing to hide";
    else if (!a->text || !*a->text)
        res.error = "empty text";
    else if (!meta_id_ok(to))
        res.error = "no recipient";
    struct wsend *s = res.error ? NULL : calloc(1, sizeof *s);
    if (s) {
        s->token = token;
        s->action_id = a->id;
        s->case_id = a->case_id;
        s->to = strdup(to);
        s->text = strdup(a->text);
        if (!s->to || !s->text) {
            wsend_free(s);
            s = NULL;
        }
    }
    if (!s) {
        if (!res.error) {
            res.status = FD_SEND_RETRY;
            res.error = "out of memory";
        }
        H->log(ch, FD_LOG_WARN, "action %" PRId64 ": %s", a->id, res.error);
        H->send_done(token, &res);
        return FD_OK;
    }
    bool rest = false;
    s->nparts = meta_split(s->text, WA_MAX_LEN, FD_TEXT_CHARS, s->start, s->end,
                           META_MAX_PARTS, &rest);
    if (rest)
        H->log(ch, FD_LOG_WARN,
               "action %" PRId64 ": text cut after %d "
               "messages of %d characters",
               a->id, META_MAX_PARTS, WA_MAX_LEN);
    struct progress *p = progress_find(&m->prog, a->id);
    if (p && p->done < s->nparts)
        s->part = p->done; /* resume after what already went out */

    int age;
    if (!meta_window_open(m, s->to, &age) && age >= 0) {
        /* Outside the window: one template per silence, then wait. */
        int64_t sent = meta_kv_time(m, "tpl", s->to);
        if ((sent && meta_now_s() - sent < META_WINDOW_S) ||
            wa_tpl_in_flight(m, s->to)) {
            wa_park(m, s, "template sent before");
            return FD_OK;
        }
        s->tpl = true;
    }
    wa_step(m, s);
    return FD_OK;
}

/* ---- configuration, start, stop ------------------------------------------ */

static bool charset_ok(const char *s, const char *set, size_t min, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    return n >= min && n <= max && strspn(s, set) == n;
}

static int wa_check(struct fd_channel *ch, char *err, size_t len)
{
    if (meta_validate(ch, "phone_number_id", err, len, true) < 0)
        return FD_EINVAL;
    const char *tpl = H->conf(ch, "template");
    const char *lang = H->conf(ch, "template_language");
    if (tpl &&
        !charset_ok(tpl, "abcdefghijklmnopqrstuvwxyz0123456789_", 1, 512)) {
        snprintf(err, len,
                 "template: expected an approved template's name "
                 "(lower-case letters, digits, _)");
        return FD_EINVAL;
    }
    if (lang && !charset_ok(lang,
                            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO"
                            "PQRSTUVWXYZ_",
                            2, 15)) {
        snprintf(err, len,
                 "template_language: expected a language code like "
                 "en or en_US");
        return FD_EINVAL;
    }
    return FD_OK;
}

static int wa_start(struct fd_channel *ch)
{
    struct meta *m = meta_new(ch, "phone_number_id");
    if (!m)
        return FD_EINVAL;
    const char *tpl = H->conf(ch, "template");
    const char *lang = H->conf(ch, "template_language");
    m->tpl = strdup(tpl ? tpl : "");
    m->tpl_lang = strdup(lang ? lang : "en");
    if (!m->tpl || !m->tpl_lang) {
        meta_free(m);
        return FD_ENOMEM;
    }
    meta_begin(m, "display_phone_number,verified_name");
    return FD_OK;
}

static void wa_stop(struct fd_channel *ch)
{
    struct meta *m = H->get_data(ch);
    if (m)
        H->log(ch, FD_LOG_INFO,
               "delivery receipts: %lu sent, %lu delivered, "
               "%lu read, %lu failed, %lu other",
               m->statuses[ST_SENT], m->statuses[ST_DELIVERED],
               m->statuses[ST_READ], m->statuses[ST_FAILED],
               m->statuses[ST_OTHER]);
    meta_end(ch);
}

static int wa_init(const struct fd_host *host)
{
    return meta_init(host);
}

static const struct fd_key wa_keys[] = {
    META_KEY_TOKEN("system user access token (whatsapp_business_messaging)"),
    {.name = "phone_number_id",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_REQUIRED,
     .help = "the business number's Phone number ID (not the number)"},
    META_KEY_SECRETS,
    {.name = "template",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_REQUIRED,
     .help = "approved message template (no parameters) sent when the "
             "user's last message is older than 24 hours"},
    {.name = "template_language",
     .type = FD_KEY_STRING,
     .def = "en",
     .help = "the template's language code, e.g. en or de"},
    META_KEY_API,
    {.name = NULL},
};

FD_EXPORT const struct fd_plugin frontdesk_plugin = {
    FD_PLUGIN_INIT,
    .name = "whatsapp",
    .version = "1.0",
    /* Every chat is private: the bot writes to the user (DM); there are no
     * threads, public posts or private replies. */
    .caps = FD_CAP_DM,
    .keys = wa_keys,
    .init = wa_init,
    .check = wa_check,
    .start = wa_start,
    .stop = wa_stop,
    .webhook = wa_webhook,
    .send = wa_send,
    /* Cloud API throughput: 80 messages/s per number by default.  The pair
     * rate (about one message per 6 s to one user, with bursts) is left
     * to WhatsApp: 131056 is retried after 6 s. */
    .rate_per_s = 80,
};
