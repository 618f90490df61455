/*
 * webhook.c - the HTTP listener's protocol callback (one flat switch).
 *
 * Routes:
 *   GET  /healthz                 200 while serving, 503 while draining
 *   GET  /metrics                 Prometheus text
 *   ANY  /hooks/<channel>[/...]   the channel's plugin->webhook
 *   GET  /                        the first web-page channel
 *   websocket upgrades at /hooks/<channel> and / go to plugin->ws_event.
 *
 * Bodies are collected up to max_body (else 413, connection closed).  The
 * answer is written only after the plugin returned, and every delivery it
 * made was recorded in the store (deliver is synchronous), so a 200 means
 * "durably accepted"; a delivery that could not be recorded turns it into
 * 503 so the platform retries.
 */
#include "webhook.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "channel.h"
#include "host.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "ws.h"

#define MAX_PATH 1024
#define MAX_QUERY 4096
#define MAX_REPLY (8u << 20)
#define MAX_HEADER_CACHE 4096
/* A request body must arrive whole within this many seconds: a client that
 * trickles bytes (slowloris) loses its connection instead of holding it. */
#define BODY_SECONDS 20

struct fd_http_reply {
    int status;
    char type[96];
    struct buf body;
};

struct pss {
    struct fd_channel *ch;
    struct fd_conn *conn;     /* websocket connections */
    char method[8];
    char path[MAX_PATH];      /* after /hooks/<channel> */
    char *query;              /* NULL: none */
    struct buf body;
    /* Values handed out by webhook_header, MAX_HEADER_CACHE bytes taken on
     * first use: lws allocates and zeroes the session data per request, so
     * it stays small. */
    char *hdrs;
    size_t hdrs_len;
    struct fd_http_reply reply;
    bool reply_ready, close_after, waiting;
    struct pss *wprev, *wnext; /* answers waiting for the batch's commit */
    struct timespec started;
    struct lws *wsi;
};

static long max_body = 1 << 20;
static bool draining;
static struct pss *waiting;
static bool (*batch_open)(void);

void webhook_set_batch_probe(bool (*open)(void)) { batch_open = open; }

static void wait_unlink(struct pss *p)
{
    if (!p->waiting)
        return;
    if (p->wprev)
        p->wprev->wnext = p->wnext;
    else
        waiting = p->wnext;
    if (p->wnext)
        p->wnext->wprev = p->wprev;
    p->wprev = p->wnext = NULL;
    p->waiting = false;
}

void webhook_set_limits(long mb) { max_body = mb; }
void webhook_set_draining(bool d) { draining = d; }
size_t webhook_pss_size(void) { return sizeof(struct pss); }

void webhook_conn_detach(struct lws *wsi)
{
    struct pss *p = lws_wsi_user(wsi);
    if (p)
        p->conn = NULL;
}

void webhook_reply_status(struct fd_http_reply *r, int status)
{
    if (r && status >= 100 && status <= 599)
        r->status = status;
}

void webhook_reply_type(struct fd_http_reply *r, const char *type)
{
    if (r && type)
        snprintf(r->type, sizeof r->type, "%s", type);
}

int webhook_reply_body(struct fd_http_reply *r, const char *data, size_t len)
{
    if (!r || (!data && len))
        return FD_EINVAL;
    return buf_add(&r->body, data, len) < 0 ? FD_ENOMEM : FD_OK;
}

static const struct {
    const char *name;
    enum lws_token_indexes tok;
} known[] = {
    {"content-type", WSI_TOKEN_HTTP_CONTENT_TYPE},
    {"content-length", WSI_TOKEN_HTTP_CONTENT_LENGTH},
    {"authorization", WSI_TOKEN_HTTP_AUTHORIZATION},
    {"user-agent", WSI_TOKEN_HTTP_USER_AGENT},
    {"host", WSI_TOKEN_HOST},
    {"origin", WSI_TOKEN_ORIGIN},
    {"cookie", WSI_TOKEN_HTTP_COOKIE},
    {"x-forwarded-for", WSI_TOKEN_X_FORWARDED_FOR},
    {"accept", WSI_TOKEN_HTTP_ACCEPT},
};

const char *webhook_header(const struct fd_http_in *req, const char *name)
{
    if (!req || !req->priv || !name)
        return NULL;
    struct pss *p = req->priv;
    struct lws *wsi = p->wsi;
    char val[4096];
    int n = -1;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcasecmp(name, known[i].name) == 0) {
            if (lws_hdr_total_length(wsi, known[i].tok) <= 0)
                return NULL;
            n = lws_hdr_copy(wsi, val, sizeof val, known[i].tok);
            goto found;
        }
    }
    /* lws keeps unknown headers by name with the colon, lower-cased. */
    char key[128];
    size_t kl = strlen(name);
    if (kl + 2 > sizeof key)
        return NULL;
    for (size_t i = 0; i < kl; i++)
        key[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    key[kl] = ':';
    key[kl + 1] = '\0';
    if (lws_hdr_custom_length(wsi, key, (int)kl + 1) < 0)
        return NULL;
    n = lws_hdr_custom_copy(wsi, val, sizeof val, key, (int)kl + 1);
found:
    if (n < 0)
        return NULL;
    /* Values live in the request's own cache until it is answered. */
    if (!p->hdrs && !(p->hdrs = malloc(MAX_HEADER_CACHE)))
        return NULL;
    if ((size_t)n + 1 > MAX_HEADER_CACHE - p->hdrs_len)
        return NULL;
    char *at = p->hdrs + p->hdrs_len;
    memcpy(at, val, (size_t)n + 1);
    p->hdrs_len += (size_t)n + 1;
    return at;
}

static void method_of(struct lws *wsi, char *out, size_t n)
{
    static const struct {
        enum lws_token_indexes tok;
        const char *name;
    } m[] = {
        {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
        {WSI_TOKEN_PUT_URI, "PUT"},       {WSI_TOKEN_DELETE_URI, "DELETE"},
        {WSI_TOKEN_PATCH_URI, "PATCH"},   {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
        {WSI_TOKEN_HEAD_URI, "HEAD"},
    };
    snprintf(out, n, "?");
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (lws_hdr_total_length(wsi, m[i].tok) > 0) {
            snprintf(out, n, "%s", m[i].name);
            return;
        }
}

/* The query string, or NULL when there is none. */
static char *read_query(struct lws *wsi)
{
    char out[MAX_QUERY];
    size_t len = 0, n = sizeof out;
    out[0] = '\0';
    for (int i = 0;; i++) {
        char frag[1024];
        int fl = lws_hdr_copy_fragment(wsi, frag, sizeof frag,
                                       WSI_TOKEN_HTTP_URI_ARGS, i);
        if (fl < 0)
            break;
        if (len + (size_t)fl + 2 > n)
            break;
        if (len)
            out[len++] = '&';
        memcpy(out + len, frag, (size_t)fl);
        len += (size_t)fl;
        out[len] = '\0';
    }
    return len ? strdup(out) : NULL;
}

/* What a request holds on the heap; the session data may be reused. */
static void request_free(struct pss *p)
{
    buf_cleanup(&p->body);
    buf_cleanup(&p->reply.body);
    free(p->query);
    p->query = NULL;
    free(p->hdrs);
    p->hdrs = NULL;
    p->hdrs_len = 0;
}

/* Resolves a request path to its channel and the rest of the path. */
static struct fd_channel *route(const char *uri, char *rest, size_t n)
{
    if (strncmp(uri, "/hooks/", 7) == 0) {
        const char *name = uri + 7;
        const char *slash = strchr(name, '/');
        size_t nl = slash ? (size_t)(slash - name) : strlen(name);
        char cname[80];
        if (nl == 0 || nl >= sizeof cname)
            return NULL;
        memcpy(cname, name, nl);
        cname[nl] = '\0';
        snprintf(rest, n, "%s", slash ? slash : "");
        struct fd_channel *ch = host_channel(cname);
        return ch && ch->started ? ch : NULL; /* a failed start serves nothing */
    }
    if (strcmp(uri, "/") == 0) {
        snprintf(rest, n, "%s", "");
        struct fd_channel *ch = host_web_channel();
        return ch && ch->started ? ch : NULL;
    }
    return NULL;
}

static void reply_set(struct pss *p, int status, const char *type,
                      const char *body)
{
    p->reply.status = status;
    snprintf(p->reply.type, sizeof p->reply.type, "%s", type);
    buf_reset(&p->reply.body);
    buf_addstr(&p->reply.body, body);
}

static void respond(struct pss *p)
{
    p->reply_ready = true;
    lws_callback_on_writable(p->wsi);
}

/* The answer goes out once this turn's batch is committed: a 200 means the
 * platform's event is in the store. */
static void respond_after_commit(struct pss *p)
{
    if (!batch_open || !batch_open()) {
        respond(p);
        return;
    }
    p->waiting = true;
    p->wprev = NULL;
    p->wnext = waiting;
    if (waiting)
        waiting->wprev = p;
    waiting = p;
}

void webhook_committed(bool ok)
{
    while (waiting) {
        struct pss *p = waiting;
        wait_unlink(p);
        if (!ok)
            reply_set(p, 503, "application/json", "{\"error\":\"retry later\"}");
        respond(p);
    }
}

/* Peer addresses by socket, looked up once per connection rather than per
 * request (lws hands each request fresh session data).  An entry is
 * cleared when lws accepts a new connection on that descriptor. */
static struct {
    char (*v)[64];
    size_t n;
} peers;

void webhook_cleanup(void)
{
    free(peers.v);
    peers.v = NULL;
    peers.n = 0;
}

static void peer_forget(int fd)
{
    if (fd >= 0 && (size_t)fd < peers.n)
        peers.v[fd][0] = '\0';
}

static const char *peer_of(struct lws *wsi)
{
    static char scratch[64];
    int fd = (int)lws_get_socket_fd(wsi);
    if (fd >= 0 && (size_t)fd >= peers.n) {
        size_t n = peers.n ? peers.n : 256;
        while (n <= (size_t)fd)
            n *= 2;
        char(*v)[64] = realloc(peers.v, n * sizeof *v);
        if (v) {
            memset(v + peers.n, 0, (n - peers.n) * sizeof *v);
            peers.v = v;
            peers.n = n;
        }
    }
    char *slot = fd >= 0 && (size_t)fd < peers.n ? peers.v[fd] : scratch;
    if (!slot[0] || slot == scratch)
        lws_get_peer_simple(wsi, slot, sizeof peers.v[0]);
    return slot;
}

static void dispatch(struct pss *p)
{
    struct fd_channel *ch = p->ch;
    if (!ch || !ch->def || !ch->def->webhook) {
        reply_set(p, 404, "application/json", "{\"error\":\"not found\"}");
        respond(p);
        return;
    }
    struct fd_http_in in = {
        .method = p->method,
        .path = p->path,
        .query = p->query ? p->query : "",
        .body = p->body.data ? p->body.data : "",
        .body_len = p->body.len,
        .remote = peer_of(p->wsi),
        .priv = p,
    };
    p->reply.status = 200;
    snprintf(p->reply.type, sizeof p->reply.type, "application/json");
    uint64_t failed = router_failures();
    ch->def->webhook(ch, &in, &p->reply);
    if (router_failures() != failed) {
        log_msg(LOG_WARN, ch->platform, ch->name,
                "a delivery could not be recorded: answering 503 so the "
                "platform retries");
        reply_set(p, 503, "application/json", "{\"error\":\"retry later\"}");
    }
    if (p->reply.status == 401 || p->reply.status == 400 ||
        p->reply.status == 403)
        ch->counters[CNT_REFUSED]++;
    respond_after_commit(p);
}

static int write_reply(struct lws *wsi, struct pss *p)
{
    size_t blen = p->reply.body.len;
    size_t hroom = LWS_PRE + 512;
    unsigned char *out = malloc(hroom + blen + 1);
    if (!out)
        return -1;
    unsigned char *start = out + LWS_PRE, *ptr = start, *end = out + hroom - 1;
    if (lws_add_http_common_headers(wsi, (unsigned int)p->reply.status,
                                    p->reply.type, (lws_filepos_t)blen, &ptr,
                                    end) ||
        lws_finalize_http_header(wsi, &ptr, end)) {
        free(out);
        return -1;
    }
    size_t hlen = (size_t)(ptr - start);
    if (blen)
        memcpy(ptr, p->reply.body.data, blen);
    int n = lws_write(wsi, start, hlen + blen, LWS_WRITE_HTTP_FINAL);
    free(out);
    if (n < 0)
        return -1;
    buf_cleanup(&p->body);
    buf_cleanup(&p->reply.body);
    p->hdrs_len = 0;
    p->reply_ready = false;
    if (p->close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static void begin_request(struct lws *wsi, struct pss *p)
{
    request_free(p);
    memset(p, 0, sizeof *p);
    p->wsi = wsi;
    buf_init(&p->body, (size_t)max_body);
    buf_init(&p->reply.body, MAX_REPLY);
    method_of(wsi, p->method, sizeof p->method);
    p->query = read_query(wsi);
}

static void metrics(struct pss *p)
{
    reply_set(p, 200, "text/plain; version=0.0.4", "");
    metrics_render(&p->reply.body);
}

static int on_http(struct lws *wsi, struct pss *p, const char *uri)
{
    begin_request(wsi, p);
    if (strcmp(uri, "/healthz") == 0) {
        if (draining)
            reply_set(p, 503, "application/json", "{\"status\":\"draining\"}");
        else
            reply_set(p, 200, "application/json", "{\"status\":\"ok\"}");
        respond(p);
        return 0;
    }
    if (strcmp(uri, "/metrics") == 0) {
        metrics(p);
        respond(p);
        return 0;
    }
    p->ch = route(uri, p->path, sizeof p->path);
    if (!p->ch) {
        reply_set(p, 404, "application/json", "{\"error\":\"not found\"}");
        respond(p);
        return 0;
    }
    if (draining) {
        reply_set(p, 503, "application/json", "{\"error\":\"shutting down\"}");
        respond(p);
        return 0;
    }
    char cl[32];
    long clen = 0;
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
        clen = strtol(cl, NULL, 10);
    if (clen > max_body) {
        log_msg(LOG_WARN, p->ch->platform, p->ch->name,
                "refused a %ld-byte body (max_body %ld): 413", clen, max_body);
        p->ch->counters[CNT_REFUSED]++;
        /* Answer now and close: waiting for a body we refuse would let the
         * client hold the connection. */
        reply_set(p, 413, "application/json", "{\"error\":\"body too large\"}");
        p->close_after = true;
        return write_reply(wsi, p);
    }
    bool has_body = strcmp(p->method, "POST") == 0 ||
                    strcmp(p->method, "PUT") == 0 ||
                    strcmp(p->method, "PATCH") == 0;
    /* lws reports the end of a declared body (even an empty one) with
     * BODY_COMPLETION; a POST with neither length nor chunking has none. */
    bool declared = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    if (has_body && (declared || lws_hdr_total_length(
                                     wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)) {
        /* dispatched at BODY_COMPLETION */
        clock_gettime(CLOCK_MONOTONIC, &p->started);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_REASON_BASE, BODY_SECONDS);
        return 0;
    }
    dispatch(p);
    return 0;
}

int webhook_callback(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len)
{
    struct pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        peer_forget((int)(intptr_t)in);
        return 0;
    case LWS_CALLBACK_HTTP:
        return on_http(wsi, p, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY: {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = BODY_SECONDS - (long)(now.tv_sec - p->started.tv_sec);
        if (left <= 0)
            return -1; /* too slow: drop the connection */
        /* lws re-arms its own timeout per chunk; ours bounds the total. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_REASON_BASE, (int)left);
        if (buf_add(&p->body, in, len) < 0) {
            if (p->ch) {
                log_msg(LOG_WARN, p->ch->platform, p->ch->name,
                        "body over max_body %ld bytes: 413", max_body);
                p->ch->counters[CNT_REFUSED]++;
            }
            reply_set(p, 413, "application/json", "{\"error\":\"body too large\"}");
            p->close_after = true;
            return write_reply(wsi, p);
        }
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
        dispatch(p);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!p || !p->reply_ready)
            return 0;
        return write_reply(wsi, p);
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (p) {
            wait_unlink(p);
            request_free(p);
        }
        return 0;

    /* websocket upgrades onto a channel */
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[MAX_PATH], rest[MAX_PATH];
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0)
            return 1;
        struct fd_channel *ch = route(uri, rest, sizeof rest);
        if (!ch || !ch->def || !ch->def->ws_event ||
            !(ch->caps & FD_CAP_WEBPAGE) || draining)
            return 1; /* refuse: only web-page plugins take browsers */
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        char uri[MAX_PATH], rest[MAX_PATH];
        request_free(p);
        memset(p, 0, sizeof *p);
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0)
            return -1;
        struct fd_channel *ch = route(uri, rest, sizeof rest);
        if (!ch)
            return -1;
        p->conn = ws_server_open(wsi, ch);
        return p->conn ? 0 : -1;
    }
    case LWS_CALLBACK_RECEIVE:
        if (p->conn)
            ws_server_receive(p->conn, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return p->conn ? ws_server_writeable(p->conn) : 0;
    case LWS_CALLBACK_CLOSED:
        if (p->conn)
            ws_server_closed(p->conn);
        p->conn = NULL;
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
