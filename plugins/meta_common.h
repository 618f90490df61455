/*
 * meta_common.h - what the three Meta plugins (facebook, instagram,
 * whatsapp) share: the webhook gate (GET hub.challenge handshake and the
 * X-Hub-Signature-256 check over the raw body), Graph API error
 * classification, the HTTP call plumbing, long texts cut into parts, the
 * start-up token check, and the routing of entries between channels that
 * share one Meta app.
 *
 * Header-only on purpose: the Makefile builds every folder under plugins/
 * into one .so (a folder of shared .c files would become a plugin of its
 * own), and each Meta plugin is a single translation unit that includes
 * this file once.  Functions are static and marked unused so a plugin that
 * needs only some of them still builds with -Werror.
 *
 * Threading: everything runs on the daemon's loop thread.  Lifetimes: every
 * HTTP call carries a `struct meta_call` listed in its channel; stop()
 * detaches and cancels them, so a done callback that finds its channel gone
 * only frees its context.
 */
#ifndef FRONTDESK_META_COMMON_H
#define FRONTDESK_META_COMMON_H

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "plugin_api.h"
#include "progress.h"

#define META_FN static __attribute__((unused))

#define META_HTTP_MS 20000        /* every Graph call */
#define META_MAX_PARTS 10         /* a longer text is cut after this many */
#define META_MAX_ID 96            /* Graph ids, PSIDs, phone numbers */
#define META_MAX_EVENT 320        /* event ids handed to the core */
#define META_MAX_NAME 200         /* display names, in bytes */
#define META_MAX_CHALLENGE 512    /* hub.challenge echoed back */
#define META_WINDOW_S (24 * 3600) /* the customer-service window */
#define META_MAX_WAIT_MS (3600 * 1000) /* longest platform wait honoured */
#define META_ME_MAX_MS 300000          /* start-up check backoff cap */

/* The host's service table, set once by the plugin's init. */
static const struct fd_host *H;

struct meta;
typedef void (*meta_done_fn)(struct meta *m, void *ctx,
                             const struct fd_http_response *r,
                             const cJSON *doc);
typedef void (*meta_free_fn)(void *ctx);

/* One Graph call in flight; freed after its done callback. */
struct meta_call {
    struct meta *m; /* NULL once the channel stopped */
    struct meta_call *prev, *next;
    struct fd_http_call *http;
    meta_done_fn done; /* owns ctx from then on */
    meta_free_fn free; /* frees ctx when done never runs */
    void *ctx;
};

/* Per-channel state of every Meta plugin (fields a plugin does not use
 * stay NULL / 0). */
struct meta {
    struct fd_channel *ch;
    struct meta *next; /* started channels of this plugin */
    char *api;         /* api_url without a trailing slash */
    char *auth;        /* "Authorization: Bearer ..." (never logged) */
    const char *headers[3];
    char *app_secret;   /* never logged */
    char *verify_token; /* never logged */
    char *self_id;      /* page_id, account_id or phone_number_id */
    char *fallback;     /* facebook/instagram: public text when no DM */
    char *tpl;          /* whatsapp: template outside the window */
    char *tpl_lang;
    unsigned long statuses[5]; /* whatsapp: sent delivered read failed other */
    const char *me_fields;     /* GET /<self_id>?fields= at start */
    int me_failures;
    struct meta_call *calls;
    struct progress_table prog; /* split sends, across retries */
};

/* Channels of this plugin that are started: one Meta app has one callback
 * URL per product, so the events of every Page (or number) of the app
 * arrive at one channel's /hooks/<name>; entries are routed by their id. */
static struct meta *meta_started;

/* ---- small helpers ------------------------------------------------------ */

META_FN const char *mj_str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

META_FN const cJSON *mj_obj(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsObject(v) ? v : NULL;
}

META_FN const cJSON *mj_arr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsArray(v) ? v : NULL;
}

/* A JSON number that is a whole value, into *out. */
META_FN bool mj_int(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return false;
    double x = v->valuedouble;
    if (!(x >= -9007199254740992.0 && x <= 9007199254740992.0) ||
        x != (double)(int64_t)x)
        return false;
    *out = (int64_t)x;
    return true;
}

/* An id we may put into a URL path or a key: 1..META_MAX_ID characters of
 * letters, digits and '_' (Graph ids are digits, comment ids
 * "<post>_<comment>", WhatsApp numbers digits). */
META_FN bool meta_id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > META_MAX_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || c == '_'))
            return false;
    }
    return true;
}

/* An opaque id used only as a dedupe key (WhatsApp "wamid.…" is base64):
 * printable ASCII without spaces, bounded. */
META_FN bool meta_token_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* Byte length of s cut to at most max bytes on a UTF-8 boundary (log
 * excerpts). */
META_FN int meta_prefix(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

/* A copy of at most max bytes of s, on a UTF-8 boundary, with control
 * characters blanked (names and server texts go into one log line). */
META_FN char *meta_clean_dup(const char *s, size_t max)
{
    if (!s)
        return NULL;
    char *d = strndup(s, (size_t)meta_prefix(s, max));
    for (char *p = d; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return d;
}

META_FN int64_t meta_now_s(void)
{
    /* Not time(): it may run on a coarse clock a tick behind. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

META_FN int64_t meta_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 64-bit FNV-1a, for event ids of edits (same comment, new text). */
META_FN uint64_t meta_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* ---- the key/value store (plugin namespace, persistent) ----------------- */

/* The value of a key built from fmt, or NULL; the caller frees it. */
META_FN __attribute__((format(printf, 2, 3))) char *
meta_kv_get(struct meta *m, const char *fmt, ...)
{
    char key[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof key)
        return NULL;
    return H->kv_get(m->ch, key);
}

/* Sets (value non-NULL) or deletes a key built from fmt; logs a failure
 * (what the lost value means is said by the caller's `why`). */
META_FN __attribute__((format(printf, 4, 5))) int
meta_kv_set(struct meta *m, const char *value, const char *why, const char *fmt,
            ...)
{
    char key[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    int rc = n < 0 || (size_t)n >= sizeof key ? FD_EINVAL
                                              : H->kv_set(m->ch, key, value);
    if (rc < 0 && why)
        H->log(m->ch, FD_LOG_WARN, "cannot store %s", why);
    return rc;
}

/* A unix time kept as decimal text, or 0. */
META_FN int64_t meta_kv_time(struct meta *m, const char *kind, const char *id)
{
    char *v = meta_kv_get(m, "%s.%s", kind, id);
    int64_t t = 0;
    if (v) {
        char *end;
        long long x = strtoll(v, &end, 10);
        if (*end == '\0' && end != v && x > 0)
            t = x;
        free(v);
    }
    return t;
}

/* Records the time of a user's message when it is newer than the one
 * kept (webhooks come out of order and are retried late). */
META_FN void meta_note_inbound(struct meta *m, const char *id, int64_t t)
{
    int64_t now = meta_now_s();
    /* A timestamp from the future or older than a week is not trusted:
     * the arrival time is the better guess then. */
    if (t <= 0 || t > now + 300 || t < now - 7 * 24 * 3600)
        t = now;
    if (meta_kv_time(m, "in", id) >= t)
        return;
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, t);
    meta_kv_set(m, v, "the time of a user's message (messaging window)",
                "in.%s", id);
}

/* Whether the user's last message is younger than 24 hours; *age_h gets
 * its age in hours (-1: no message known). */
META_FN bool meta_window_open(struct meta *m, const char *id, int *age_h)
{
    int64_t t = meta_kv_time(m, "in", id);
    if (!t) {
        *age_h = -1;
        return false;
    }
    int64_t age = meta_now_s() - t;
    *age_h = (int)(age / 3600);
    return age < META_WINDOW_S - 60; /* a minute's margin for the send */
}

/* ---- webhook gate ------------------------------------------------------- */

META_FN void meta_answer(struct fd_http_reply *reply, int status,
                         const char *type, const char *body)
{
    H->reply_status(reply, status);
    H->reply_type(reply, type);
    H->reply_body(reply, body, strlen(body));
}

/* The value of query parameter `name` into out; false when absent or too
 * long.  The host hands the query already percent-decoded (libwebsockets
 * decodes %XX and '+'), so it is not decoded again: a verify token with a
 * '%' in it would not survive a second round. */
META_FN bool meta_query(const char *query, const char *name, char *out,
                        size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = query ? query : "";
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && !strncmp(p, name, nl) && p[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl + 1 > outlen)
                return false;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return true;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return false;
}

/* The subscription handshake: Meta GETs ?hub.mode=subscribe&
 * hub.verify_token=<ours>&hub.challenge=<n> and wants the challenge back
 * as the body; anything else is 403. */
META_FN void meta_handshake(struct meta *m, const struct fd_http_in *req,
                            struct fd_http_reply *reply)
{
    char mode[32], token[512], challenge[META_MAX_CHALLENGE + 1];
    const char *remote = req->remote ? req->remote : "?";
    bool ok =
        meta_query(req->query, "hub.mode", mode, sizeof mode) &&
        !strcmp(mode, "subscribe") &&
        meta_query(req->query, "hub.verify_token", token, sizeof token) &&
        H->ct_equal(token, m->verify_token) &&
        meta_query(req->query, "hub.challenge", challenge, sizeof challenge) &&
        meta_token_ok(challenge, META_MAX_CHALLENGE);
    if (!ok) {
        H->log(m->ch, FD_LOG_WARN,
               "webhook verification from %s refused (wrong hub.mode, "
               "verify_token or challenge)",
               remote);
        meta_answer(reply, 403, "application/json",
                    "{\"error\":\"verification failed\"}");
        return;
    }
    H->log(m->ch, FD_LOG_INFO, "webhook verified by %s (hub.challenge)",
           remote);
    meta_answer(reply, 200, "text/plain", challenge);
}

/* Answers the GET handshake, refuses other methods and POSTs without a
 * valid X-Hub-Signature-256 (HMAC-SHA256 of the raw body keyed with the
 * app secret; Meta signs the bytes it sends, \u-escapes included, so the
 * body is never re-serialised).  Returns true when the caller should parse
 * req->body and set the answer. */
META_FN bool meta_gate(struct meta *m, const struct fd_http_in *req,
                       struct fd_http_reply *reply)
{
    const char *remote = req->remote ? req->remote : "?";
    if (!strcmp(req->method, "GET")) {
        meta_handshake(m, req, reply);
        return false;
    }
    if (strcmp(req->method, "POST")) {
        meta_answer(reply, 405, "application/json",
                    "{\"error\":\"POST or GET only\"}");
        return false;
    }
    const char *sig = H->header(req, "x-hub-signature-256");
    if (!sig || !*sig) {
        H->log(m->ch, FD_LOG_WARN,
               "delivery from %s without X-Hub-Signature-256: missing "
               "signature, refused",
               remote);
        meta_answer(reply, 401, "application/json",
                    "{\"error\":\"signature required\"}");
        return false;
    }
    if (strncasecmp(sig, "sha256=", 7) ||
        !H->hmac_sha256_hex_ok(m->app_secret, req->body, req->body_len,
                               sig + 7)) {
        H->log(m->ch, FD_LOG_WARN,
               "delivery from %s (%zu bytes): wrong signature, refused "
               "(check app_secret)",
               remote, req->body_len);
        meta_answer(reply, 401, "application/json",
                    "{\"error\":\"bad signature\"}");
        return false;
    }
    return true;
}

/* The body as a JSON object of the expected `object` kind, or NULL after
 * answering 400 (not JSON) or 200 (another product's object: Meta would
 * retry a refusal for days, and there is nothing for us in it). */
META_FN cJSON *meta_parse(struct meta *m, const struct fd_http_in *req,
                          struct fd_http_reply *reply, const char *object)
{
    cJSON *doc =
        req->body_len ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        H->log(m->ch, FD_LOG_WARN, "delivery of %zu bytes is not JSON: 400",
               req->body_len);
        meta_answer(reply, 400, "application/json",
                    "{\"error\":\"malformed JSON\"}");
        return NULL;
    }
    const char *obj = mj_str(doc, "object");
    if (!obj || strcmp(obj, object)) {
        char *o = meta_clean_dup(obj ? obj : "(none)", 40);
        H->log(m->ch, FD_LOG_INFO,
               "delivery for object \"%s\", not \"%s\": ignored (check the "
               "app's webhook subscriptions)",
               o ? o : "?", object);
        free(o);
        cJSON_Delete(doc);
        meta_answer(reply, 200, "application/json", "{\"ok\":true}");
        return NULL;
    }
    return doc;
}

/* A webhook delivery, gated (verification GET, signature) and parsed: the
 * document, with the channel's state in *out, or NULL after answering
 * (503 while the channel is not started yet). */
META_FN cJSON *meta_delivery(struct fd_channel *ch, const struct fd_http_in *req,
                             struct fd_http_reply *reply, const char *object,
                             struct meta **out)
{
    struct meta *m = H->get_data(ch);
    if (!m) {
        meta_answer(reply, 503, "application/json", "{\"error\":\"starting\"}");
        return NULL;
    }
    if (!meta_gate(m, req, reply))
        return NULL;
    cJSON *doc = meta_parse(m, req, reply, object);
    *out = m;
    return doc;
}

/* The channel an entry is for: this one, or another started channel of
 * the plugin with that id and the same app (same secret, which signed the
 * delivery).  NULL (logged) when none is. */
META_FN struct meta *meta_route(struct meta *m, const char *id,
                                const char *what)
{
    if (id && !strcmp(id, m->self_id))
        return m;
    for (struct meta *o = meta_started; o && id; o = o->next)
        if (o != m && !strcmp(o->self_id, id) &&
            H->ct_equal(o->app_secret, m->app_secret))
            return o;
    char *c = meta_clean_dup(id ? id : "(none)", META_MAX_ID);
    H->log(m->ch, FD_LOG_WARN,
           "event for %s %s, which is not this channel's (%s) nor another "
           "channel's of this app: ignored",
           what, c ? c : "?", m->self_id);
    free(c);
    return NULL;
}

/* ---- Graph errors ------------------------------------------------------- */

enum meta_verdict {
    META_OK = 0,
    META_RETRY,    /* throttled, 5xx, transient, network */
    META_FAILED,   /* permanent */
    META_WINDOW,   /* outside the messaging window */
    META_NO_REPLY, /* private reply refused: already sent, too old, ... */
    META_GONE,     /* the object no longer exists */
};

struct meta_err {
    enum meta_verdict verdict;
    int64_t code, subcode;
    int retry_ms;
    char text[240]; /* for the log: never a URL or token */
};

/* Reads Graph's {"error":{"message","type","code","error_subcode",
 * "is_transient",...}} and decides what the outbox does.  Meta throttles
 * with error codes, usually on HTTP 400/403 rather than 429. */
META_FN void meta_classify(const struct fd_http_response *r, const cJSON *doc,
                           struct meta_err *e)
{
    memset(e, 0, sizeof *e);
    const cJSON *err = mj_obj(doc, "error");
    if (r->status >= 200 && r->status < 300 && !err) {
        e->verdict = META_OK;
        return;
    }
    if (r->status == 0) {
        e->verdict = META_RETRY;
        snprintf(e->text, sizeof e->text, "no answer (%.100s)",
                 r->error ? r->error : "?");
        return;
    }
    mj_int(err, "code", &e->code);
    mj_int(err, "error_subcode", &e->subcode);
    const char *msg = mj_str(err, "message");
    const cJSON *data = mj_obj(err, "error_data");
    const char *details = mj_str(data, "details");
    char *clean = meta_clean_dup(msg ? msg : details ? details : "", 150);
    char sub[32] = "";
    if (e->subcode)
        snprintf(sub, sizeof sub, "/%" PRId64, e->subcode);
    if (e->code)
        snprintf(e->text, sizeof e->text,
                 "HTTP %d, Graph error %" PRId64 "%s: %s", r->status, e->code,
                 sub, clean ? clean : "");
    else
        snprintf(e->text, sizeof e->text, "HTTP %d", r->status);
    free(clean);

    switch (e->code) {
    case 1:      /* unknown error: Meta says retry */
    case 2:      /* service temporarily unavailable */
    case 4:      /* application request limit */
    case 17:     /* user request limit */
    case 32:     /* page request limit */
    case 341:    /* application limit reached */
    case 613:    /* calls exceeded the rate limit */
    case 80001:  /* Page business use case rate limit */
    case 80002:  /* Instagram */
    case 80006:  /* Messenger */
    case 80007:  /* WhatsApp Business Account */
    case 130429: /* WhatsApp throughput */
    case 131000: /* WhatsApp: something went wrong */
    case 131016: /* WhatsApp: service unavailable */
        e->verdict = META_RETRY;
        break;
    case 131056: /* WhatsApp pair rate: 1 message / 6 s to one user */
        e->verdict = META_RETRY;
        e->retry_ms = 6000;
        break;
    case 131047: /* WhatsApp: more than 24 h since the user wrote */
        e->verdict = META_WINDOW;
        break;
    case 10900: /* activity already replied to */
    case 10903: /* this user can't reply to this activity */
    case 551:   /* this person isn't available right now */
        e->verdict = META_NO_REPLY;
        break;
    case 10:
        /* 2018278: outside the allowed window; 2018065/2018108: the
         * window or the person's messaging settings forbid it. */
        e->verdict = e->subcode == 2018278 || e->subcode == 2018065 ||
                             e->subcode == 2018108
                         ? META_WINDOW
                         : META_NO_REPLY;
        break;
    case 100:
        e->verdict = e->subcode == 33 ? META_GONE : META_FAILED;
        break;
    default:
        e->verdict = META_FAILED;
    }
    if (e->verdict == META_FAILED &&
        (r->status == 429 || r->status >= 500 ||
         cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(err, "is_transient"))))
        e->verdict = META_RETRY;
    if (e->verdict == META_RETRY && r->retry_after_s > 0)
        e->retry_ms = r->retry_after_s > META_MAX_WAIT_MS / 1000
                          ? META_MAX_WAIT_MS
                          : r->retry_after_s * 1000;
    if (e->code == 190)
        snprintf(e->text + strlen(e->text), sizeof e->text - strlen(e->text),
                 " (the access token is invalid or expired)");
}

/* ---- HTTP calls --------------------------------------------------------- */

static void meta_unlink(struct meta *m, struct meta_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (m->calls == c)
        m->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void meta_http_done(void *ud, const struct fd_http_response *r)
{
    struct meta_call *c = ud;
    struct meta *m = c->m;
    if (m)
        meta_unlink(m, c);
    if (!m || r->cancelled) {
        if (c->free)
            c->free(c->ctx); /* the channel stopped: nothing to report */
        free(c);
        return;
    }
    cJSON *doc = r->body && r->body_len
                     ? cJSON_ParseWithLength(r->body, r->body_len)
                     : NULL;
    meta_done_fn done = c->done;
    void *ctx = c->ctx;
    free(c);
    done(m, ctx, r, doc);
    cJSON_Delete(doc);
}

/* Issues method api+path with a JSON body (or none).  0 when in flight
 * (done runs later, exactly once, and owns ctx from then on); -1 when it
 * could not start (the caller still owns ctx). */
META_FN int meta_call(struct meta *m, const char *method, const char *path,
                      const char *body, meta_done_fn done, meta_free_fn fr,
                      void *ctx)
{
    size_t n = strlen(m->api) + strlen(path) + 1;
    char *url = malloc(n);
    struct meta_call *c = calloc(1, sizeof *c);
    if (!url || !c) {
        free(url);
        free(c);
        return -1;
    }
    snprintf(url, n, "%s%s", m->api, path);
    struct fd_http_request req = {
        .method = method,
        .url = url,
        .headers = m->headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = META_HTTP_MS,
    };
    c->m = m;
    c->done = done;
    c->free = fr;
    c->ctx = ctx;
    c->http = H->http(m->ch, &req, meta_http_done, c);
    free(url);
    if (!c->http) {
        free(c);
        return -1;
    }
    c->next = m->calls;
    if (c->next)
        c->next->prev = c;
    m->calls = c;
    return 0;
}

/* ---- long texts --------------------------------------------------------- */

/* Cuts text into at most META_MAX_PARTS parts of `max` units each (never
 * inside a UTF-8 sequence, at a line break or space where the host finds
 * one).  Returns the number of parts; *rest says whether text was left
 * over. */
META_FN size_t meta_split(const char *text, size_t max, int unit, size_t *start,
                          size_t *end, size_t maxparts, bool *rest)
{
    size_t len = strlen(text), at = 0, n = 0;
    while (at < len && n < maxparts) {
        size_t c = H->text_cut(text + at, len - at, max, unit);
        if (c == 0 || c > len - at) /* a host bug: never loop forever */
            c = len - at;
        start[n] = at;
        end[n++] = at + c;
        at += c;
    }
    *rest = at < len;
    return n;
}

/* ---- start-up token check ----------------------------------------------- */

static void meta_me_step(struct meta *m);

static void meta_me_timer(void *ud)
{
    meta_me_step(ud);
}

static void meta_me_later(struct meta *m, int wait_ms, const char *why)
{
    int ms = wait_ms > 0
                 ? wait_ms
                 : H->backoff_ms(++m->me_failures, 2000, META_ME_MAX_MS);
    H->log(m->ch, FD_LOG_WARN, "token check: %s; again in %d s", why,
           ms / 1000);
    H->timer_add(m->ch, ms, meta_me_timer, m);
}

static void meta_me_done(struct meta *m, void *ctx,
                         const struct fd_http_response *r, const cJSON *doc)
{
    (void)ctx;
    struct meta_err e;
    meta_classify(r, doc, &e);
    if (e.verdict == META_OK) {
        /* Page: name; Instagram: username; WhatsApp: verified_name and
         * display_phone_number. */
        const char *name = mj_str(doc, "name");
        if (!name)
            name = mj_str(doc, "username");
        if (!name)
            name = mj_str(doc, "verified_name");
        char *c = meta_clean_dup(name ? name : "?", 80);
        const char *num = mj_str(doc, "display_phone_number");
        char *cn = meta_clean_dup(num ? num : "", 40);
        H->log(m->ch, FD_LOG_INFO, "token works for %s \"%s\"%s%s", m->self_id,
               c ? c : "?", cn && *cn ? " " : "", cn ? cn : "");
        free(c);
        free(cn);
        m->me_failures = 0;
        return;
    }
    if (e.verdict == META_RETRY) {
        meta_me_later(m, e.retry_ms, e.text);
        return;
    }
    /* A configuration problem: retrying will not fix it.  Webhooks still
     * arrive (they are signed with the app secret, not the token). */
    H->log(m->ch, FD_LOG_ERROR,
           "token check for %s: %s; sends will fail until the token is "
           "fixed",
           m->self_id, e.text);
}

/* GET /<self_id>?fields=...: proves the token and the id at start, so a
 * wrong setting shows in the log before the first customer writes.
 * Nothing waits for it. */
static void meta_me_step(struct meta *m)
{
    char path[META_MAX_ID + 96];
    snprintf(path, sizeof path, "/%s?fields=%s", m->self_id,
             m->me_fields ? m->me_fields : "id");
    if (meta_call(m, "GET", path, NULL, meta_me_done, NULL, NULL) < 0)
        meta_me_later(m, 0, "request could not start");
}

/* ---- configuration, start, stop ------------------------------------------ */

/* A value for a header or URL: printable ASCII without spaces, bounded. */
META_FN bool meta_secret_ok(const char *s, size_t max)
{
    return meta_token_ok(s, max);
}

META_FN void meta_free(struct meta *m)
{
    if (!m)
        return;
    free(m->api);
    free(m->auth);
    free(m->app_secret);
    free(m->verify_token);
    free(m->self_id);
    free(m->fallback);
    free(m->tpl);
    free(m->tpl_lang);
    free(m);
}

/* Checks the keys every Meta plugin has.  `strict` (check()) also checks
 * the id's form; start() needs only what keeps headers and URLs intact. */
META_FN int meta_validate(struct fd_channel *ch, const char *id_key, char *err,
                          size_t len, bool strict)
{
    const char *token = H->conf(ch, "token");
    const char *secret = H->conf(ch, "app_secret");
    const char *verify = H->conf(ch, "verify_token");
    const char *id = H->conf(ch, id_key);
    /* A missing required key is reported by the host already. */
    if (strict && (!token || !secret || !verify || !id))
        return 0;
    if (!meta_secret_ok(token, 4096)) {
        snprintf(err, len,
                 "token: expected an access token (printable, no spaces)");
        return -1;
    }
    if (!meta_secret_ok(secret, 256)) {
        snprintf(err, len,
                 "app_secret: expected the app's secret (App settings > "
                 "Basic), printable, no spaces");
        return -1;
    }
    if (!verify || !*verify || strlen(verify) > 256) {
        snprintf(err, len, "verify_token: want 1-256 characters");
        return -1;
    }
    if (!meta_id_ok(id) || (strict && strspn(id, "0123456789") != strlen(id))) {
        snprintf(err, len, "%s: expected a numeric Graph id", id_key);
        return -1;
    }
    return 0;
}

/* The common part of start(): a new state with api, auth headers, secrets
 * and the channel's own id, or NULL (logged). */
META_FN struct meta *meta_new(struct fd_channel *ch, const char *id_key)
{
    char err[200];
    if (meta_validate(ch, id_key, err, sizeof err, false) < 0) {
        H->log(ch, FD_LOG_ERROR, "%s", err);
        return NULL;
    }
    struct meta *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->ch = ch;
    const char *api = H->conf(ch, "api_url");
    size_t al = api ? strlen(api) : 0;
    while (al > 0 && api[al - 1] == '/')
        al--;
    m->api = al ? strndup(api, al) : NULL;
    const char *token = H->conf(ch, "token");
    size_t n = strlen(token) + 32;
    m->auth = malloc(n);
    if (m->auth)
        snprintf(m->auth, n, "Authorization: Bearer %s", token);
    m->app_secret = strdup(H->conf(ch, "app_secret"));
    m->verify_token = strdup(H->conf(ch, "verify_token"));
    m->self_id = strdup(H->conf(ch, id_key));
    if (!m->api || !m->auth || !m->app_secret || !m->verify_token ||
        !m->self_id) {
        H->log(ch, FD_LOG_ERROR, "%s", m->api ? "out of memory" : "api_url");
        meta_free(m);
        return NULL;
    }
    m->headers[0] = m->auth;
    m->headers[1] = "Content-Type: application/json";
    m->headers[2] = NULL;
    return m;
}

/* Registers a started channel and starts its token check. */
META_FN void meta_begin(struct meta *m, const char *fields)
{
    m->me_fields = fields;
    m->next = meta_started;
    meta_started = m;
    H->set_data(m->ch, m);
    /* Log the API host, never a path that could carry a secret. */
    const char *host = strstr(m->api, "://");
    host = host ? host + 3 : m->api;
    H->log(m->ch, FD_LOG_INFO,
           "id %s, Graph API at %.*s, webhooks at "
           "/hooks/%s",
           m->self_id, (int)strcspn(host, "/"), host, H->channel_name(m->ch));
    meta_me_step(m);
}

/* The common part of stop(): unregisters, detaches and cancels calls (their
 * done callbacks then only free their contexts), frees the state. */
META_FN void meta_end(struct fd_channel *ch)
{
    struct meta *m = H->get_data(ch);
    if (!m)
        return;
    for (struct meta **pp = &meta_started; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    while (m->calls) {
        struct meta_call *c = m->calls;
        meta_unlink(m, c);
        c->m = NULL;
        H->http_cancel(c->http);
    }
    H->set_data(ch, NULL);
    meta_free(m);
}

META_FN int meta_init(const struct fd_host *host)
{
    if (!host || host->abi != FD_PLUGIN_ABI ||
        host->size < sizeof(struct fd_host))
        return FD_ERR;
    H = host;
    return FD_OK;
}

/* The key table entries every Meta plugin has (api_url last). */
#define META_KEY_TOKEN(text)                                                   \
    {                                                                          \
        .name = "token", .type = FD_KEY_STRING,                                \
        .flags = FD_KEY_REQUIRED | FD_KEY_SECRET, .help = text                 \
    }
#define META_KEY_SECRETS                                                       \
    {.name = "app_secret",                                                     \
     .type = FD_KEY_STRING,                                                    \
     .flags = FD_KEY_REQUIRED | FD_KEY_SECRET,                                 \
     .help = "the app's secret (App settings > Basic): every delivery is "     \
             "signed with it (X-Hub-Signature-256)"},                          \
    {                                                                          \
        .name = "verify_token", .type = FD_KEY_STRING,                         \
        .flags = FD_KEY_REQUIRED | FD_KEY_SECRET,                              \
        .help = "any string; the same one goes into the app's webhook "        \
                "settings (hub.verify_token of the handshake)"                 \
    }
#define META_KEY_API                                                           \
    {                                                                          \
        .name = "api_url", .type = FD_KEY_URL,                                 \
        .def = "https://graph.facebook.com/v21.0",                             \
        .help = "Graph API base URL with version"                              \
    }

#endif
