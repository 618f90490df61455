/*
 * inbound.c - Discourse webhooks into the core.
 *
 * Every delivery must carry X-Discourse-Event-Signature: "sha256=" + hex of
 * HMAC-SHA256(webhook_secret, raw body), checked in constant time over the
 * bytes as received (401 otherwise).  Events other than post_created (and
 * pings) are acknowledged and ignored; a post_created body that is not JSON
 * or has no usable post is 400.
 *
 * Which posts reach the script: regular posts (post_type 1) by real users,
 * never the bot's own (by username, case-insensitive, or by id once known)
 * nor the system users (negative ids), nor staff unless answer_staff.  Public
 * topics always; private messages only in topics the bot takes part in: those
 * it opened itself (remembered in the key/value store), or, for a PM someone
 * else started, after GET /t/<id>.json shows the bot among its users.  Until
 * then the posts wait in memory (a bounded number; 503 beyond that) and the
 * webhook is answered 202: Discourse does not wait 20 s for us.
 *
 * Dedupe: the event id handed to the core is the post id.  Discourse's own
 * retries create a new X-Discourse-Event-Id each time, so that header is
 * only logged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discourse.h"

static void answer(struct fd_http_reply *reply, int status, const char *json)
{
    H->reply_status(reply, status);
    H->reply_type(reply, "application/json");
    H->reply_body(reply, json, strlen(json));
}

void dc_post_free(struct post *p)
{
    if (!p)
        return;
    free(p->username);
    free(p->name);
    free(p->text);
    free(p->event_id);
    free(p);
}

/* Plain text from `cooked` HTML, for a delivery without `raw` (a webhook
 * serializer change, or a plugin that filters it): tags dropped, block ends
 * as line breaks, the common entities decoded.  Never longer than html. */
static char *strip_html(const char *html)
{
    size_t n = strlen(html);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'},  {"&lt;", '<'},   {"&gt;", '>'},
                {"&quot;", '"'}, {"&#39;", '\''}, {"&nbsp;", ' '}};
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (html[i] == '<') {
            const char *end = memchr(html + i, '>', n - i);
            if (!end)
                break;
            size_t tl = (size_t)(end - (html + i)) + 1;
            if ((!strncmp(html + i, "</p", 3) || !strncmp(html + i, "<br", 3) ||
                 !strncmp(html + i, "</li", 4)) &&
                o > 0 && out[o - 1] != '\n')
                out[o++] = '\n';
            i += tl;
            continue;
        }
        if (html[i] == '&') {
            size_t k;
            for (k = 0; k < sizeof ents / sizeof ents[0]; k++) {
                size_t el = strlen(ents[k].ent);
                if (!strncmp(html + i, ents[k].ent, el)) {
                    out[o++] = ents[k].c;
                    i += el;
                    break;
                }
            }
            if (k < sizeof ents / sizeof ents[0])
                continue;
        }
        out[o++] = html[i++];
    }
    while (o > 0 && (out[o - 1] == '\n' || out[o - 1] == ' '))
        o--;
    out[o] = '\0';
    return out;
}

static char *dup_prefix(const char *s, size_t max)
{
    return strndup(s, (size_t)dc_utf8_prefix(s, max));
}

/* Reads the webhook's `post` object.  Returns 0 with *out filled (owned by
 * the caller), 1 when the post is to be ignored, -1 when it is malformed;
 * *why says which. */
static int post_parse(struct dc *d, const cJSON *po, struct post **out,
                      const char **why)
{
    int64_t id, topic, number, uid, type = 1;
    const char *user = dc_json_str(po, "username");
    *out = NULL;
    if (!dc_json_int64(po, "id", &id) || id <= 0 ||
        !dc_json_int64(po, "topic_id", &topic) || topic <= 0 ||
        !dc_json_int64(po, "post_number", &number) || number <= 0) {
        *why = "no post id, topic_id or post_number";
        return -1;
    }
    if (!dc_json_int64(po, "user_id", &uid) || !dc_username_ok(user)) {
        *why = "no user_id or username";
        return -1;
    }
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(po, "post_type");
    if (pt && !dc_json_int64(po, "post_type", &type)) {
        *why = "post_type is not a number";
        return -1;
    }
    /* 2 moderator action, 3 small action (e.g. "closed"), 4 whisper: not
     * a customer speaking. */
    if (type != 1) {
        *why = "not a regular post";
        return 1;
    }
    if (dc_same_user(user, d->username) || (d->bot_id && uid == d->bot_id)) {
        *why = "the bot's own post";
        return 1;
    }
    if (uid <= 0) {
        *why = "by a system user";
        return 1;
    }
    /* Moderators and admins are the support team (a human who took over a
     * case writes in its PM): the bot does not answer them. */
    if (!d->answer_staff &&
        (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(po, "staff")) ||
         cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(po, "moderator")) ||
         cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(po, "admin")))) {
        *why = "by staff (answer_staff = no)";
        return 1;
    }
    const char *raw = dc_json_str(po, "raw");
    const char *cooked = dc_json_str(po, "cooked");
    const char *arch = dc_json_str(po, "topic_archetype");
    struct post *p = calloc(1, sizeof *p);
    if (!p) {
        *why = "out of memory";
        return -1;
    }
    p->id = id;
    p->topic_id = topic;
    p->post_number = number;
    p->user_id = uid;
    p->is_private = arch && !strcmp(arch, "private_message");
    p->username = strdup(user);
    const char *name = dc_json_str(po, "name");
    if (name && *name)
        p->name = dup_prefix(name, MAX_NAME);
    p->text = raw ? strdup(raw) : cooked ? strip_html(cooked) : strdup("");
    if (!p->username || !p->text || (name && *name && !p->name)) {
        dc_post_free(p);
        *why = "out of memory";
        return -1;
    }
    if (!*p->text) {
        dc_post_free(p);
        *why = "no text";
        return 1;
    }
    *out = p;
    return 0;
}

/* A PM is addressed by username; remember the author's (written only when
 * it changed, so the store is not touched on every post). */
static void remember_user(struct dc *d, const struct post *p)
{
    char key[48];
    snprintf(key, sizeof key, "_dc.user.%" PRId64, p->user_id);
    char *old = H->kv_get(d->ch, key);
    if (!old || strcmp(old, p->username))
        if (H->kv_set(d->ch, key, p->username) < 0)
            H->log(d->ch, FD_LOG_WARN,
                   "cannot store the username of user %" PRId64
                   ": a private message to them will fail",
                   p->user_id);
    free(old);
}

/* Hands one post to the core; returns deliver's code. */
static int deliver_post(struct dc *d, const struct post *p)
{
    char ev[24], topic[24], number[24], uid[24];
    snprintf(ev, sizeof ev, "%" PRId64, p->id);
    snprintf(topic, sizeof topic, "%" PRId64, p->topic_id);
    snprintf(number, sizeof number, "%" PRId64, p->post_number);
    snprintf(uid, sizeof uid, "%" PRId64, p->user_id);
    remember_user(d, p);
    struct fd_msg msg = {
        .event_id = ev,
        .message_id = ev,
        .text = p->text,
        .is_private = p->is_private,
        .user_id = uid,
        .user_name = p->name,
        .user_handle = p->username,
        .chat_id = topic,
        .thread = number, /* the post a reply answers (reply_to_post_number) */
    };
    int rc = H->deliver(d->ch, &msg);
    H->log(d->ch, rc < 0 ? FD_LOG_WARN : FD_LOG_INFO,
           "post %" PRId64 " (%s topic %" PRId64 " #%" PRId64
           ") by @%s (user %" PRId64 ", event %s)%s",
           p->id, p->is_private ? "private" : "public", p->topic_id,
           p->post_number, p->username, p->user_id,
           p->event_id ? p->event_id : "-",
           rc == FD_DUPLICATE ? ": duplicate"
           : rc < 0           ? ": not recorded"
                              : "");
    H->log(d->ch, FD_LOG_DEBUG, "post %" PRId64 " text: %.*s", p->id,
           dc_utf8_prefix(p->text, 80), p->text);
    return rc;
}

/* ---- private messages the bot did not open ---------------------------- */

static bool pm_topic_known(struct dc *d, int64_t topic)
{
    char key[48];
    snprintf(key, sizeof key, "_dc.pmt.%" PRId64, topic);
    char *v = H->kv_get(d->ch, key);
    free(v);
    return v != NULL;
}

static bool neg_has(struct dc *d, int64_t topic)
{
    int64_t now = dc_now_ms();
    for (size_t i = 0; i < NEG_CACHE; i++)
        if (d->neg[i].topic_id == topic && d->neg[i].until_ms > now)
            return true;
    return false;
}

static void neg_add(struct dc *d, int64_t topic)
{
    d->neg[d->neg_next].topic_id = topic;
    d->neg[d->neg_next].until_ms = dc_now_ms() + NEG_TTL_MS;
    d->neg_next = (d->neg_next + 1) % NEG_CACHE;
}

static void lookup_free(struct lookup *l)
{
    for (size_t i = 0; i < l->nposts; i++)
        dc_post_free(l->posts[i]);
    free(l);
}

static void lookup_remove(struct dc *d, struct lookup *l)
{
    for (struct lookup **pp = &d->lookups; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            d->nlookups--;
            break;
        }
    lookup_free(l);
}

void dc_lookups_free(struct dc *d)
{
    while (d->lookups) {
        struct lookup *l = d->lookups;
        d->lookups = l->next;
        lookup_free(l);
    }
    d->nlookups = 0;
}

static void lookup_step(struct lookup *l);

static void on_lookup_timer(void *ud) { lookup_step(ud); }

/* Tries again later (the platform's wait, else backoff), or gives up. */
static void lookup_later(struct dc *d, struct lookup *l, int wait_ms,
                         const char *why)
{
    if (++l->attempts >= LOOKUP_ATTEMPTS) {
        H->log(d->ch, FD_LOG_WARN,
               "private topic %" PRId64 ": %s; %zu post(s) dropped after %d "
               "attempts",
               l->topic_id, why, l->nposts, l->attempts);
        lookup_remove(d, l);
        return;
    }
    int ms = wait_ms > 0 ? wait_ms : H->backoff_ms(l->attempts, 1000, 60000);
    if (!H->timer_add(d->ch, ms, on_lookup_timer, l)) {
        H->log(d->ch, FD_LOG_WARN,
               "private topic %" PRId64 ": %s, no timer; %zu post(s) dropped",
               l->topic_id, why, l->nposts);
        lookup_remove(d, l);
        return;
    }
    H->log(d->ch, FD_LOG_DEBUG, "private topic %" PRId64 ": %s; again in %d ms",
           l->topic_id, why, ms);
}

/* Delivers the waiting posts once the topic is known to be ours, else asks
 * Discourse who takes part in it. */
static void lookup_step(struct lookup *l)
{
    struct dc *d = l->dc;
    if (pm_topic_known(d, l->topic_id)) {
        size_t kept = 0;
        for (size_t i = 0; i < l->nposts; i++) {
            if (deliver_post(d, l->posts[i]) < 0)
                l->posts[kept++] = l->posts[i]; /* the store refused it */
            else
                dc_post_free(l->posts[i]);
        }
        l->nposts = kept;
        if (kept)
            lookup_later(d, l, 0, "delivery not recorded");
        else
            lookup_remove(d, l);
        return;
    }
    char path[48];
    snprintf(path, sizeof path, "/t/%" PRId64 ".json", l->topic_id);
    struct call *c = calloc(1, sizeof *c);
    if (c) {
        c->kind = CALL_LOOKUP;
        c->ctx = l;
    }
    if (!c || dc_api_call(d, c, "GET", path, NULL) < 0) {
        free(c);
        lookup_later(d, l, 0, "request could not start");
    }
}

/* Whether the topic's users include the bot.  Group inboxes are not
 * followed: a PM to a group counts only if the bot was added by name. */
static bool bot_takes_part(struct dc *d, const cJSON *doc)
{
    const cJSON *details = dc_json_obj(doc, "details");
    const cJSON *users =
        cJSON_GetObjectItemCaseSensitive(details, "allowed_users");
    const cJSON *u;
    int64_t id;
    if (!cJSON_IsArray(users))
        return false;
    cJSON_ArrayForEach(u, users)
    {
        if (dc_same_user(dc_json_str(u, "username"), d->username) ||
            (d->bot_id && dc_json_int64(u, "id", &id) && id == d->bot_id))
            return true;
    }
    return false;
}

void dc_lookup_done(struct dc *d, struct lookup *l,
                    const struct fd_http_response *r)
{
    cJSON *doc = r->body && r->body_len
                     ? cJSON_ParseWithLength(r->body, r->body_len)
                     : NULL;
    char why[300];
    dc_describe(why, sizeof why, r, doc);
    if (r->status == 200 && cJSON_IsObject(doc)) {
        char key[48];
        snprintf(key, sizeof key, "_dc.pmt.%" PRId64, l->topic_id);
        if (bot_takes_part(d, doc) && H->kv_set(d->ch, key, "1") == FD_OK) {
            cJSON_Delete(doc);
            H->log(d->ch, FD_LOG_INFO,
                   "private topic %" PRId64 " includes the bot: %zu post(s) "
                   "go to the script",
                   l->topic_id, l->nposts);
            lookup_step(l);
            return;
        }
        if (bot_takes_part(d, doc)) {
            cJSON_Delete(doc);
            lookup_later(d, l, 0, "cannot store the topic");
            return;
        }
    }
    if ((r->status == 200 && cJSON_IsObject(doc)) || r->status == 403 ||
        r->status == 404 || r->status == 410) {
        /* Someone else's conversation (or gone): not for the bot. */
        H->log(d->ch, FD_LOG_INFO,
               "private topic %" PRId64 " does not include the bot: %zu "
               "post(s) ignored",
               l->topic_id, l->nposts);
        neg_add(d, l->topic_id);
        cJSON_Delete(doc);
        lookup_remove(d, l);
        return;
    }
    int wait = dc_wait_ms(r, doc);
    cJSON_Delete(doc);
    lookup_later(d, l, wait, why);
}

/* Queues a post of an unknown PM topic.  Returns 0, or -1 when the bounds
 * are reached (answer 503: Discourse may retry). */
static int lookup_add(struct dc *d, struct post *p)
{
    struct lookup *l = d->lookups;
    while (l && l->topic_id != p->topic_id)
        l = l->next;
    if (l) {
        for (size_t i = 0; i < l->nposts; i++)
            if (l->posts[i]->id == p->id) { /* a retry of a waiting post */
                dc_post_free(p);
                return 0;
            }
        if (l->nposts == MAX_LOOKUP_POSTS)
            return -1;
        l->posts[l->nposts++] = p;
        return 0;
    }
    if (d->nlookups >= MAX_LOOKUPS || !(l = calloc(1, sizeof *l)))
        return -1;
    l->dc = d;
    l->topic_id = p->topic_id;
    l->posts[l->nposts++] = p;
    l->next = d->lookups;
    d->lookups = l;
    d->nlookups++;
    lookup_step(l);
    return 0;
}

/* ---- the webhook ------------------------------------------------------ */

void dc_webhook(struct fd_channel *ch, const struct fd_http_in *req,
                struct fd_http_reply *reply)
{
    struct dc *d = H->get_data(ch);
    const char *remote = req->remote ? req->remote : "?";
    if (!d) {
        answer(reply, 503, "{\"error\":\"not started\"}");
        return;
    }
    if (!req->method || strcmp(req->method, "POST") != 0) {
        answer(reply, 405, "{\"error\":\"POST only\"}");
        return;
    }
    if (req->path && *req->path && strcmp(req->path, "/") != 0) {
        answer(reply, 404, "{\"error\":\"not found\"}");
        return;
    }
    const char *sig = H->header(req, "X-Discourse-Event-Signature");
    if (!sig || strncmp(sig, "sha256=", 7) != 0 ||
        !H->hmac_sha256_hex_ok(d->secret, req->body, req->body_len, sig + 7)) {
        H->log(ch, FD_LOG_WARN, "webhook from %s: %s signature, refused",
               remote, sig ? "wrong" : "missing");
        answer(reply, 401, "{\"error\":\"bad signature\"}");
        return;
    }
    const char *event = H->header(req, "X-Discourse-Event");
    const char *type = H->header(req, "X-Discourse-Event-Type");
    const char *evid = H->header(req, "X-Discourse-Event-Id");
    /* Only what looks like Discourse's own values goes into the log. */
    int64_t evn;
    if (evid && !dc_parse_id(evid, &evn))
        evid = NULL;
    if ((type && !strcmp(type, "ping")) || (event && !strcmp(event, "ping"))) {
        H->log(ch, FD_LOG_INFO, "webhook ping from %s: signature good", remote);
        answer(reply, 200, "{\"ok\":true}");
        return;
    }
    if (!event || strcmp(event, "post_created") != 0) {
        bool plain =
            event && *event && strlen(event) <= 60 &&
            strspn(event, "abcdefghijklmnopqrstuvwxyz_") == strlen(event);
        H->log(ch, FD_LOG_DEBUG, "event %s (id %s): ignored",
               plain   ? event
               : event ? "(unusual name)"
                       : "(none)",
               evid ? evid : "-");
        answer(reply, 200, "{\"ok\":true,\"ignored\":true}");
        return;
    }
    cJSON *doc = req->body && req->body_len
                     ? cJSON_ParseWithLength(req->body, req->body_len)
                     : NULL;
    const cJSON *po = dc_json_obj(doc, "post");
    if (!po) {
        H->log(ch, FD_LOG_WARN, "webhook from %s: %s (%zu bytes), refused",
               remote,
               !doc                   ? "malformed JSON"
               : !cJSON_IsObject(doc) ? "not a JSON object"
                                      : "no post object",
               req->body_len);
        cJSON_Delete(doc);
        answer(reply, 400, "{\"error\":\"bad payload\"}");
        return;
    }
    struct post *p = NULL;
    const char *why = NULL;
    int64_t pid = 0;
    dc_json_int64(po, "id", &pid);
    int rc = post_parse(d, po, &p, &why);
    cJSON_Delete(doc);
    if (rc < 0) {
        H->log(ch, FD_LOG_WARN,
               "webhook from %s: post %" PRId64 ": %s, "
               "refused",
               remote, pid, why);
        answer(reply, 400, "{\"error\":\"bad post\"}");
        return;
    }
    if (rc > 0) {
        H->log(ch, FD_LOG_DEBUG, "post %" PRId64 ": %s, ignored", pid, why);
        answer(reply, 200, "{\"ok\":true,\"ignored\":true}");
        return;
    }
    if (evid)
        p->event_id = strdup(evid); /* NULL on failure: logged as "-" */
    if (p->is_private && !pm_topic_known(d, p->topic_id)) {
        if (neg_has(d, p->topic_id)) {
            H->log(ch, FD_LOG_DEBUG,
                   "post %" PRId64 ": private topic %" PRId64
                   " without the bot, ignored",
                   p->id, p->topic_id);
            dc_post_free(p);
            answer(reply, 200, "{\"ok\":true,\"ignored\":true}");
            return;
        }
        int64_t topic = p->topic_id, id = p->id;
        if (lookup_add(d, p) < 0) {
            H->log(ch, FD_LOG_WARN,
                   "post %" PRId64 ": too many private topics being checked; "
                   "503 so Discourse may retry",
                   id);
            dc_post_free(p);
            answer(reply, 503, "{\"error\":\"busy\"}");
            return;
        }
        H->log(ch, FD_LOG_DEBUG,
               "post %" PRId64
               ": waits for the users of private topic %" PRId64,
               id, topic);
        answer(reply, 202, "{\"ok\":true,\"pending\":true}");
        return;
    }
    /* A delivery the core could not record becomes 503 in the host. */
    deliver_post(d, p);
    dc_post_free(p);
    answer(reply, 200, "{\"ok\":true}");
}
