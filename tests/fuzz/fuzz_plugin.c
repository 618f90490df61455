/*
 * fuzz_plugin.c - libFuzzer target for a platform plugin's inbound parsing,
 * linked with one plugin's sources (make fuzz builds one binary per plugin).
 *
 * A fake host answers every service without network: signatures and secrets
 * always verify (so fuzzed bodies reach the parsers), HTTP calls and timers
 * are refused (plugins must cope), deliver() reads every field it is given.
 * The first input byte picks the path: a webhook POST, a webhook GET with the
 * input as query, a websocket message on the plugin's connection, or the
 * answer (status from the second byte, the rest as body) to every HTTP call
 * the plugin has made so far, after which its due timers fire (or, for a
 * first byte of 4 mod 5, do not).
 *
 * Gateway plugins (Discord, Mattermost, Slack in Socket Mode) parse events
 * only once connected and identified.  For them the build names a prelude
 * folder
 * (tests/fuzz/prelude/<target>/): every input then runs on a freshly started
 * plugin that first replays those inputs in name order (the start-up
 * answers and the handshake), and is stopped afterwards the way the host
 * stops a channel.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef FUZZ_PRELUDE
#include <dirent.h>
#endif

#include "plugin_api.h"

extern const struct fd_plugin frontdesk_plugin;
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fd_channel {
    void *data;
};
struct fd_http_reply {
    int status;
};
struct fd_conn {
    void *data;
    bool opened;
};

static struct fd_channel chan;
static struct fd_conn conn;
static char now_s[32];
static volatile size_t sink;

static void h_log(struct fd_channel *ch, enum fd_log_level l, const char *fmt, ...)
{
    (void)ch, (void)l;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    sink += strlen(line);
    if (getenv("FUZZ_LOG")) /* for checking what a target reaches */
        fprintf(stderr, "plugin: %s\n", line);
}

static const char *h_conf(struct fd_channel *ch, const char *key)
{
    (void)ch;
#ifdef FUZZ_MODE /* a second target of one plugin: Slack's Socket Mode */
    if (!strcmp(key, "mode"))
        return FUZZ_MODE;
    if (!strcmp(key, "app_token"))
        return "xapp-1-A0FUZZ-1-fuzz";
#endif
    for (const struct fd_key *k = frontdesk_plugin.keys; k && k->name; k++) {
        if (strcmp(k->name, key))
            continue;
        if (!strcmp(key, "mode") && k->choices) /* the webhook-style mode */
            return strstr(k->choices, "webhook") ? "webhook"
                   : strstr(k->choices, "events") ? "events" : k->def;
        if (k->def)
            return k->def;
        if (k->type == FD_KEY_URL)
            return "http://127.0.0.1:9";
        if (k->type == FD_KEY_INT)
            return "1";
        return "fuzz";
    }
    return NULL;
}

static const char *h_core_conf(const char *key)
{
    return !strcmp(key, "public_url") ? "http://127.0.0.1:8080" : NULL;
}

static const char *h_name(struct fd_channel *ch) { (void)ch; return "fuzz"; }
static void h_set_data(struct fd_channel *ch, void *d) { ch->data = d; }
static void *h_get_data(struct fd_channel *ch) { return ch->data; }

static size_t len0(const char *s) { return s ? strlen(s) : 0; }

static int h_deliver(struct fd_channel *ch, const struct fd_msg *m)
{
    (void)ch;
    if (!m || !m->event_id)
        abort(); /* the contract: event_id is required */
    sink += len0(m->event_id) + len0(m->message_id) + len0(m->text) +
            len0(m->user_id) + len0(m->user_name) + len0(m->user_handle) +
            len0(m->chat_id) + len0(m->thread) + len0(m->link_case);
    return FD_OK;
}

static void h_send_done(struct fd_send *t, const struct fd_send_result *r)
{
    (void)t;
    sink += len0(r->error) + len0(r->fallback);
}

/* Calls and timers wait here until an input answers or fires them. */
#define PENDING 64
struct fd_http_call {
    fd_http_done_fn done;
    void *ud;
    bool used;
};
struct fd_timer {
    fd_timer_fn fn;
    void *ud;
    bool used;
};
static struct fd_http_call calls[PENDING];
static struct fd_timer timers[PENDING];
static bool connected, stopping; /* the plugin's connection; a stop under way */

static struct fd_http_call *h_http(struct fd_channel *ch,
                                   const struct fd_http_request *req,
                                   fd_http_done_fn done, void *ud)
{
    (void)ch;
    sink += len0(req->url) + req->body_len;
    for (int i = 0; i < PENDING; i++)
        if (!calls[i].used) {
            calls[i] = (struct fd_http_call){done, ud, true};
            return &calls[i];
        }
    return NULL;
}

static void h_http_cancel(struct fd_http_call *c)
{
    if (!c || !c->used)
        return;
    c->used = false;
    struct fd_http_response r = {.error = "cancelled", .cancelled = true,
                                 .retry_after_s = -1, .body = ""};
    c->done(c->ud, &r);
}

static struct fd_timer *h_timer_add(struct fd_channel *ch, int ms, fd_timer_fn fn, void *ud)
{
    (void)ch, (void)ms;
    if (stopping)
        return NULL;
    for (int i = 0; i < PENDING; i++)
        if (!timers[i].used) {
            timers[i] = (struct fd_timer){fn, ud, true};
            return &timers[i];
        }
    return NULL;
}

static void h_timer_cancel(struct fd_timer *t)
{
    if (t)
        t->used = false;
}

/* Answers every pending call with status/body, then (with fire) fires the
 * timers that were due (one round: what they schedule waits for the next
 * input). */
static void answer_all(int status, const char *body, size_t len, bool fire)
{
    struct fd_http_call now[PENDING];
    memcpy(now, calls, sizeof now);
    for (int i = 0; i < PENDING; i++)
        calls[i].used = false;
    for (int i = 0; i < PENDING; i++) {
        if (!now[i].used)
            continue;
        struct fd_http_response r = {.status = status, .body = body,
                                     .body_len = len, .retry_after_s = -1};
        now[i].done(now[i].ud, &r);
    }
    if (!fire)
        return;
    struct fd_timer due[PENDING];
    memcpy(due, timers, sizeof due);
    for (int i = 0; i < PENDING; i++)
        timers[i].used = false;
    for (int i = 0; i < PENDING; i++)
        if (due[i].used)
            due[i].fn(due[i].ud);
}
/* Every connect gets the one fake connection the fuzzed messages arrive
 * on, so client plugins see them on a connection of their own. */
static struct fd_conn *h_ws_connect(struct fd_channel *ch, const char *url,
                                    const char *const *h, const char *p)
{
    (void)ch, (void)url, (void)h, (void)p;
    if (stopping)
        return NULL;
    connected = true;
    return &conn;
}
static int h_ws_send(struct fd_conn *c, const char *d, size_t n)
{
    (void)c, (void)d;
    sink += n;
    return FD_OK;
}
static void h_ws_close(struct fd_conn *c) { (void)c; }
static void h_conn_set(struct fd_conn *c, void *d) { c->data = d; }
static void *h_conn_get(struct fd_conn *c) { return c->data; }
static void h_status(struct fd_http_reply *r, int s) { r->status = s; }
static void h_type(struct fd_http_reply *r, const char *t) { (void)r, (void)t; }
static int h_body(struct fd_http_reply *r, const char *d, size_t n)
{
    (void)r, (void)d;
    sink += n;
    return FD_OK;
}

/* Plausible headers so fuzzed bodies get past the routing checks: the
 * signature verifies anyway (h_hmac), timestamps are current (Slack's
 * window), event-type headers name the message events. */
static const char *h_header(const struct fd_http_in *req, const char *name)
{
    (void)req;
    if (strcasestr(name, "timestamp"))
        return now_s;
    if (strcasestr(name, "slack-signature"))
        return "v0=0000000000000000000000000000000000000000000000000000000000000000";
    if (strcasestr(name, "signature"))
        return "sha256=0000000000000000000000000000000000000000000000000000000000000000";
    if (strcasestr(name, "event-id") || strcasestr(name, "retry"))
        return "1";
    if (strcasestr(name, "event"))
        return "post_created";
    if (strcasestr(name, "content-type"))
        return "application/json";
    return "fuzz";
}

static char *h_kv_get(struct fd_channel *ch, const char *k) { (void)ch, (void)k; return NULL; }
static int h_kv_set(struct fd_channel *ch, const char *k, const char *v)
{
    (void)ch, (void)k, (void)v;
    return FD_OK;
}
static bool h_ct_equal(const char *a, const char *b) { (void)a, (void)b; return true; }
static bool h_hmac(const char *k, const void *d, size_t n, const char *hex)
{
    (void)k, (void)d, (void)n, (void)hex;
    return true;
}
static int h_random_hex(char *out, size_t n)
{
    memset(out, 'a', 2 * n);
    out[2 * n] = '\0';
    return FD_OK;
}
static size_t h_text_cut(const char *s, size_t len, size_t max, int unit)
{
    (void)s, (void)unit;
    return len < max ? len : max;
}
static int h_backoff(int a, int b, int m) { (void)a, (void)m; return b; }
static void h_set_caps(struct fd_channel *ch, unsigned caps) { (void)ch, (void)caps; }
static const char *h_resp_header(const struct fd_http_response *r, const char *n)
{
    (void)r, (void)n;
    return NULL;
}

static int h_commit(struct fd_channel *ch) { (void)ch; return FD_OK; }

static const struct fd_host host = {
    .abi = FD_PLUGIN_ABI, .size = sizeof(struct fd_host), .log = h_log,
    .conf = h_conf, .core_conf = h_core_conf, .channel_name = h_name,
    .set_data = h_set_data, .get_data = h_get_data, .deliver = h_deliver,
    .send_done = h_send_done, .http = h_http, .http_cancel = h_http_cancel,
    .timer_add = h_timer_add, .timer_cancel = h_timer_cancel,
    .ws_connect = h_ws_connect, .ws_send = h_ws_send, .ws_close = h_ws_close,
    .conn_set_data = h_conn_set, .conn_get_data = h_conn_get,
    .reply_status = h_status, .reply_type = h_type, .reply_body = h_body,
    .header = h_header, .kv_get = h_kv_get, .kv_set = h_kv_set,
    .ct_equal = h_ct_equal, .hmac_sha256_hex_ok = h_hmac,
    .random_hex = h_random_hex, .text_cut = h_text_cut, .backoff_ms = h_backoff,
    .set_caps = h_set_caps, .response_header = h_resp_header,
    .commit = h_commit,
};

static bool started, running;

/* One input on the running plugin. */
static void feed(const uint8_t *data, size_t size)
{
    if (!running || size < 1)
        return;
    char *buf = malloc(size);
    if (!buf)
        return;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    struct fd_http_reply reply = {200};
    switch (data[0] % 5) {
    case 3: /* an answer to every pending call, then the due timers */
    case 4: /* the same without timers (a start-up step, a deadline kept) */ {
        static const int statuses[] = {200, 200, 200, 400, 401, 403, 404, 429, 500, 0};
        int st = statuses[(size > 1 ? (unsigned char)data[1] : 0) % 10];
        answer_all(st, size > 1 ? buf + 1 : buf, size > 1 ? size - 2 : 0,
                   data[0] % 5 == 3);
        break;
    }
    case 0:
    case 1: {
        struct fd_http_in req = {
            .method = data[0] % 5 ? "GET" : "POST", .path = "",
            .query = data[0] % 5 ? buf : "", .body = buf,
            .body_len = size - 1, .remote = "127.0.0.1",
        };
        if (frontdesk_plugin.webhook)
            frontdesk_plugin.webhook(&chan, &req, &reply);
        break;
    }
    case 2:
        if (frontdesk_plugin.ws_event) {
            if (!conn.opened) {
                conn.opened = true;
                frontdesk_plugin.ws_event(&chan, &conn, FD_WS_OPEN, "", 0);
            }
            frontdesk_plugin.ws_event(&chan, &conn, FD_WS_MESSAGE, buf, size - 1);
        }
        break;
    }
    free(buf);
}

#ifdef FUZZ_PRELUDE
struct prelude_input {
    uint8_t *data;
    size_t len;
};
static struct prelude_input prelude[16];
static int nprelude;

static int is_input(const struct dirent *e) { return e->d_name[0] != '.'; }

static void prelude_load(void)
{
    struct dirent **names;
    int n = scandir(FUZZ_PRELUDE, &names, is_input, alphasort);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", FUZZ_PRELUDE, names[i]->d_name);
        FILE *f = fopen(path, "rb");
        if (f && nprelude < 16) {
            uint8_t *d = malloc(65536);
            size_t len = d ? fread(d, 1, 65536, f) : 0;
            if (d && len)
                prelude[nprelude++] = (struct prelude_input){d, len};
            else
                free(d);
        }
        if (f)
            fclose(f);
        free(names[i]);
    }
    free(names);
    if (nprelude == 0) {
        fprintf(stderr, "fuzz: no prelude inputs in %s\n", FUZZ_PRELUDE);
        abort();
    }
}

/* As the host stops a channel: calls cancelled, sockets closed, timers
 * dropped, then the plugin's stop. */
static void stop_plugin(void)
{
    stopping = true;
    for (int i = 0; i < PENDING; i++)
        h_http_cancel(&calls[i]);
    if (connected && frontdesk_plugin.ws_event)
        frontdesk_plugin.ws_event(&chan, &conn, FD_WS_CLOSED, "stopped", 7);
    memset(timers, 0, sizeof timers);
    if (running)
        frontdesk_plugin.stop(&chan);
    running = connected = stopping = false;
    conn = (struct fd_conn){0};
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!started) {
        snprintf(now_s, sizeof now_s, "%ld", (long)time(NULL));
        if (frontdesk_plugin.init && frontdesk_plugin.init(&host) < 0)
            abort();
        if (frontdesk_plugin.check) {
            char err[256];
            frontdesk_plugin.check(&chan, err, sizeof err);
        }
        started = true;
#ifdef FUZZ_PRELUDE
        prelude_load();
#else
        /* Like the host, never route to a channel whose start failed. */
        running = frontdesk_plugin.start(&chan) >= 0;
#endif
    }
#ifdef FUZZ_PRELUDE
    running = frontdesk_plugin.start(&chan) >= 0;
    for (int i = 0; i < nprelude; i++)
        feed(prelude[i].data, prelude[i].len);
    feed(data, size);
    stop_plugin();
#else
    feed(data, size);
#endif
    return 0;
}
