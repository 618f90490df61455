/*
 * ws.c - websocket connections for plugins, server side (browsers upgraded
 * on the listener, see webhook.c) and client side (connections the daemon
 * opens with ws_connect).
 *
 * Every connection keeps a bounded queue of outgoing messages, written one
 * per writeable callback, and reassembles fragmented incoming messages up
 * to MAX_MESSAGE.  The plugin sees FD_WS_OPEN, FD_WS_MESSAGE and exactly
 * one FD_WS_CLOSED, after which the connection is freed.
 *
 * Invariants that keep plugins safe:
 *   - no host call (ws_connect, ws_send, ws_close) ever runs a plugin
 *     callback or frees a connection before it returns: CLOSED is always
 *     reported later, from the loop;
 *   - after ws_close the plugin gets no OPEN and no MESSAGE, only CLOSED,
 *     and that within CLOSE_MS at the latest (queued messages are written
 *     first, then a close frame);
 *   - when a channel stops, its connections are reported CLOSED with the
 *     reason "channel stopped" and detached from their lws wsi before they
 *     are freed, so a late lws callback finds nothing (no use after free).
 *
 * Client side: the host name is resolved off the loop (lookup.c), then lws
 * connects to the numeric address with the name as Host, Origin and TLS
 * name (SNI and certificate check against the system's CAs).  Redirects
 * are refused (lws would resolve their target synchronously).  When a name
 * has several addresses, a failed connect tries the next one.  lws gives
 * each stage (TCP, TLS, the upgrade's answer) its context timeout, 5 s; the
 * whole connect, name resolution included, is bounded by CONNECT_MS.
 *
 * Keepalive: client connections use an lws retry/idle policy: after PING_S
 * seconds without a proof of life lws sends a websocket ping, and without
 * a pong by HANGUP_S it drops the connection, so a dead peer (a silent NAT
 * drop, a frozen server) is noticed.  Pings from the peer are answered by
 * lws.
 *
 * Client connections live on a vhost of their own (no listener): its first
 * protocol is this file's, so lws's final WSI_DESTROY notification reaches
 * us too, and its TLS client context trusts exactly the system CA bundle.
 *
 * Threading: the loop thread only.
 */
#include "ws.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <libwebsockets.h>

#include "buf.h"
#include "channel.h"
#include "log.h"
#include "lookup.h"
#include "loop.h"
#include "webhook.h"

#define MAX_MESSAGE (1u << 20) /* one incoming message, reassembled */
#define MAX_QUEUED (8u << 20)  /* bytes waiting to go out, per connection */
#define MAX_QUEUED_MSGS 20000  /* messages waiting, per connection */
#define MAX_URL 4096
#define MAX_HEADERS 32
#define MAX_ADDRS 8      /* addresses of one name tried in turn */
#define CONNECT_MS 30000 /* resolve + TCP + TLS + upgrade */
#define CLOSE_MS 10000   /* from ws_close to CLOSED at the latest */
#define PING_S 20        /* quiet this long: lws sends a ping */
#define HANGUP_S 30      /* no pong by then: the connection is dropped */
/* Close code of a client's ws_close: 4000 (private use) rather than 1000,
 * because a plugin closes to reconnect, and some servers end the session
 * on 1000/1001 (Discord then refuses a Resume). */
#define CLIENT_CLOSE_CODE 4000
#define CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

struct wsmsg {
    struct wsmsg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE + len */
};

struct fd_conn {
    lws_sorted_usec_list_t sul;  /* connect / close deadline, deferred close */
    struct lws *wsi;             /* NULL when no wsi belongs to us */
    struct fd_channel *ch;       /* NULL once detached (channel stopped) */
    struct fd_conn *prev, *next; /* the channel's list */
    void *data;
    struct wsmsg *head, *tail;
    size_t queued, nqueued; /* bytes, messages */
    struct buf rx;
    bool client, open, closing, reported;
    /* client side */
    struct lookup *lookup; /* while the name is resolved */
    char *host;    /* for getaddrinfo: no brackets, no port */
    char *hosthdr; /* Host and Origin: [v6]:port, port only if not default */
    char *path, *subprotocol;
    char **headers;
    int port;
    bool tls;
    char addrs[MAX_ADDRS][INET6_ADDRSTRLEN];
    int naddrs, addr_at;
    bool peer_closed;
    int peer_code; /* from the peer's close frame, or 0 */
    char peer_reason[64];
    int64_t last_alive_ms; /* open, or the last pong / message */
    int64_t attempt_ms;    /* when the current address was tried */
};

static struct {
    struct lws_vhost *vh;
} R;

static const lws_retry_bo_t keepalive = {
    .secs_since_valid_ping = PING_S,
    .secs_since_valid_hangup = HANGUP_S,
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *cname(const struct fd_conn *c)
{
    return c->ch ? c->ch->name : NULL;
}

static const char *cplat(const struct fd_conn *c)
{
    return c->ch ? c->ch->platform : "ws";
}

static void link_conn(struct fd_conn *c)
{
    c->prev = NULL;
    c->next = c->ch->conns;
    if (c->next)
        c->next->prev = c;
    c->ch->conns = c;
}

static void unlink_conn(struct fd_conn *c)
{
    if (!c->ch)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else if (c->ch->conns == c)
        c->ch->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void conn_free(struct fd_conn *c)
{
    loop_sul_cancel(&c->sul);
    while (c->head) {
        struct wsmsg *m = c->head;
        c->head = m->next;
        free(m);
    }
    buf_cleanup(&c->rx);
    free(c->host);
    free(c->hosthdr);
    free(c->path);
    free(c->subprotocol);
    for (char **h = c->headers; h && *h; h++)
        free(*h);
    free(c->headers);
    free(c);
}

/* Lets go of the lws side: the wsi (if any) is closed later without a
 * word to us; a lookup still running finishes unseen. */
static void conn_release(struct fd_conn *c)
{
    loop_sul_cancel(&c->sul);
    lookup_cancel(c->lookup);
    c->lookup = NULL;
    if (c->wsi) {
        lws_set_opaque_user_data(c->wsi, NULL);
        if (!c->client) /* webhook.c's session data points at c too */
            webhook_conn_detach(c->wsi);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        c->wsi = NULL;
    }
    unlink_conn(c);
    c->ch = NULL;
    conn_free(c);
}

/* Tells the plugin once (FD_WS_CLOSED), then lets go of c.  Never called
 * from inside a host call a plugin made. */
static void conn_gone(struct fd_conn *c, const char *why)
{
    struct fd_channel *ch = c->ch;
    if (ch && !c->reported && ch->def && ch->def->ws_event) {
        c->reported = true;
        log_msg(LOG_DEBUG, ch->platform, ch->name, "websocket closed: %s", why);
        ch->def->ws_event(ch, c, FD_WS_CLOSED, why, strlen(why));
    }
    c->reported = true;
    conn_release(c);
}

static void on_message(struct fd_conn *c, const void *in, size_t len,
                       bool final)
{
    if (c->closing || c->reported)
        return; /* after ws_close the plugin hears nothing but CLOSED */
    if (buf_add(&c->rx, in, len) < 0) {
        log_msg(LOG_WARN, cplat(c), cname(c),
                "websocket message over %u KiB: closing the connection",
                MAX_MESSAGE >> 10);
        buf_reset(&c->rx);
        ws_close(c);
        return;
    }
    if (!final)
        return;
    c->last_alive_ms = now_ms();
    if (c->ch && c->ch->def && c->ch->def->ws_event)
        c->ch->def->ws_event(c->ch, c, FD_WS_MESSAGE,
                             c->rx.data ? c->rx.data : "", c->rx.len);
    buf_reset(&c->rx);
}

/* Writes one queued message; 0 to keep the connection, -1 to close it
 * (after asking lws for a close frame). */
static int write_one(struct fd_conn *c)
{
    struct wsmsg *m = c->head;
    if (!m) {
        if (!c->closing)
            return 0;
        lws_close_reason(c->wsi,
                         c->client ? (enum lws_close_status)CLIENT_CLOSE_CODE
                                   : LWS_CLOSE_STATUS_NORMAL,
                         NULL, 0);
        return -1;
    }
    if (lws_write(c->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT) <
        (int)m->len)
        return -1;
    c->head = m->next;
    if (!c->head)
        c->tail = NULL;
    c->queued -= m->len;
    c->nqueued--;
    free(m);
    if (c->head || c->closing)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* ---- deadlines ----------------------------------------------------------- */

static void on_deadline(lws_sorted_usec_list_t *sul)
{
    struct fd_conn *c = lws_container_of(sul, struct fd_conn, sul);
    if (c->closing)
        conn_gone(c, "closed");
    else if (c->lookup)
        conn_gone(c, "connect timed out (resolving the host name)");
    else
        conn_gone(c, "connect timed out");
}

static void deadline(struct fd_conn *c, int ms)
{
    struct lws_context *ctx = loop_context();
    if (ctx)
        loop_sul_schedule(&c->sul, on_deadline,
                         (lws_usec_t)ms * LWS_US_PER_MS);
}

/* ---- server side ------------------------------------------------------ */

struct fd_conn *ws_server_open(struct lws *wsi, struct fd_channel *ch)
{
    struct fd_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->wsi = wsi;
    c->ch = ch;
    c->open = true;
    c->last_alive_ms = now_ms();
    buf_init(&c->rx, MAX_MESSAGE);
    link_conn(c);
    if (ch->def && ch->def->ws_event)
        ch->def->ws_event(ch, c, FD_WS_OPEN, "", 0);
    return c;
}

void ws_server_receive(struct fd_conn *c, const void *in, size_t len)
{
    on_message(c, in, len, lws_is_final_fragment(c->wsi));
}

int ws_server_writeable(struct fd_conn *c)
{
    return write_one(c);
}

void ws_server_closed(struct fd_conn *c)
{
    c->wsi = NULL; /* lws is closing it; webhook.c forgets c after this */
    conn_gone(c, c->closing ? "closed" : "closed by peer");
}

/* ---- both sides ------------------------------------------------------- */

int ws_send(struct fd_conn *c, const char *data, size_t len)
{
    if (!c || (!data && len) || c->closing || c->reported)
        return FD_EINVAL;
    if (len > MAX_MESSAGE || c->queued + len > MAX_QUEUED ||
        c->nqueued >= MAX_QUEUED_MSGS) {
        log_msg(LOG_WARN, cplat(c), cname(c),
                "websocket send queue full (%zu bytes waiting): closing the "
                "slow connection",
                c->queued);
        ws_close(c);
        return FD_ENOMEM;
    }
    struct wsmsg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return FD_ENOMEM;
    m->next = NULL;
    m->len = len;
    if (len)
        memcpy(m->data + LWS_PRE, data, len);
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->queued += len;
    c->nqueued++;
    if (c->open && c->wsi)
        lws_callback_on_writable(c->wsi);
    return FD_OK;
}

void ws_close(struct fd_conn *c)
{
    if (!c || c->closing || c->reported)
        return;
    c->closing = true;
    if (c->open && c->wsi) {
        /* Flush the queue, then a close frame; CLOSED comes when lws has
         * closed, or at the deadline if the peer stalls. */
        lws_callback_on_writable(c->wsi);
        deadline(c, CLOSE_MS);
    } else {
        /* Resolving or connecting: nothing to say to the peer.  Report
         * from the loop, never from inside this call. */
        deadline(c, 0);
    }
}

void ws_conn_set_data(struct fd_conn *c, void *data)
{
    if (c)
        c->data = data;
}

void *ws_conn_get_data(struct fd_conn *c)
{
    return c ? c->data : NULL;
}

void ws_close_channel(struct fd_channel *ch)
{
    /* conn_gone unlinks each connection; a plugin's CLOSED handler cannot
     * add any (ws_connect refuses a stopping channel). */
    while (ch->conns)
        conn_gone(ch->conns, "channel stopped");
}

/* ---- client side: resolving ---------------------------------------------- */

static void client_connect(struct fd_conn *c);

static void on_resolved(void *ud, int err, struct addrinfo *res)
{
    struct fd_conn *c = ud;
    c->lookup = NULL;
    c->naddrs = 0;
    for (struct addrinfo *ai = res; ai && c->naddrs < MAX_ADDRS;
         ai = ai->ai_next) {
        const void *a = NULL;
        if (ai->ai_family == AF_INET)
            a = &((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        else if (ai->ai_family == AF_INET6)
            a = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (a && inet_ntop(ai->ai_family, a, c->addrs[c->naddrs],
                           sizeof c->addrs[0]))
            c->naddrs++;
    }
    if (res)
        freeaddrinfo(res);
    if (c->closing) {
        conn_gone(c, "closed");
    } else if (err != 0 || c->naddrs == 0) {
        char why[160];
        snprintf(why, sizeof why, "cannot resolve the host name: %s",
                 err ? gai_strerror(err) : "no address");
        conn_gone(c, why);
    } else {
        c->addr_at = 0;
        client_connect(c);
    }
}

/* The client vhost: no listener, our protocol first, system CAs. */
static struct lws_protocols client_protocols[] = {
    {"fd-wsclient", ws_client_callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

static int client_setup(void)
{
    if (!R.vh) {
        struct lws_context_creation_info info;
        memset(&info, 0, sizeof info);
        info.vhost_name = "fd-wsclient";
        info.port = CONTEXT_PORT_NO_LISTEN;
        info.protocols = client_protocols;
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        /* lws also loads OpenSSL's default paths (SSL_CERT_FILE and
         * SSL_CERT_DIR apply); naming the bundle keeps lws from adding
         * its compiled-in relative CA directory. */
        if (access(CA_BUNDLE, R_OK) == 0)
            info.client_ssl_ca_filepath = CA_BUNDLE;
        R.vh = lws_create_vhost(loop_context(), &info);
        if (!R.vh) {
            log_msg(LOG_ERROR, "core", NULL,
                    "cannot create the websocket client vhost");
            return -1;
        }
    }
    return 0;
}

/* Starts the connection to addrs[addr_at]; on failure moves on to the next
 * address, or reports CLOSED. */
static void client_connect(struct fd_conn *c)
{
    while (c->addr_at < c->naddrs) {
        struct lws_client_connect_info i;
        memset(&i, 0, sizeof i);
        i.context = loop_context();
        i.vhost = R.vh;
        i.address = c->addrs[c->addr_at];
        i.port = c->port;
        i.path = c->path;
        i.host = c->hosthdr;
        i.origin = c->hosthdr;
        i.ssl_connection =
            LCCSCF_HTTP_NO_FOLLOW_REDIRECT | (c->tls ? LCCSCF_USE_SSL : 0);
        i.protocol = c->subprotocol;
        i.local_protocol_name = "fd-wsclient";
        i.opaque_user_data = c;
        i.retry_and_idle_policy = &keepalive;
        log_msg(LOG_DEBUG, cplat(c), cname(c),
                "websocket connecting to %s port %d%s", i.address, c->port,
                c->tls ? " (TLS)" : "");
        /* lws reports no CONNECTION_ERROR from inside this call; a NULL
         * return is the whole news. */
        c->attempt_ms = now_ms();
        c->wsi = lws_client_connect_via_info(&i);
        if (c->wsi)
            return;
        c->addr_at++;
    }
    conn_gone(c, "connect error: cannot start the connection");
}

/* ---- client side: ws_connect ------------------------------------------- */

static bool is_host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
}

/* Splits a ws:// or wss:// URL into host, port, path (with query).  Only
 * what a request line and a Host header can carry safely is accepted. */
static int parse_url(struct fd_conn *c, const char *url)
{
    const char *p;
    if (strlen(url) > MAX_URL)
        return -1;
    if (strncasecmp(url, "ws://", 5) == 0) {
        p = url + 5;
        c->port = 80;
    } else if (strncasecmp(url, "wss://", 6) == 0) {
        p = url + 6;
        c->port = 443;
        c->tls = true;
    } else {
        return -1;
    }
    size_t hl = strcspn(p, "/?#");
    const char *rest = p + hl;
    const char *colon;
    if (p[0] == '[') { /* [v6]:port */
        const char *rb = memchr(p, ']', hl);
        if (!rb || rb == p + 1)
            return -1;
        for (const char *q = p + 1; q < rb; q++)
            if (!strchr("0123456789abcdefABCDEF:.", *q))
                return -1;
        c->host = strndup(p + 1, (size_t)(rb - p - 1));
        colon = rb + 1 < rest && rb[1] == ':' ? rb + 1 : NULL;
        if (!colon && rb + 1 != rest)
            return -1;
    } else {
        colon = memchr(p, ':', hl);
        size_t n = colon ? (size_t)(colon - p) : hl;
        for (size_t k = 0; k < n; k++)
            if (!is_host_char(p[k]))
                return -1; /* also refuses user@host */
        c->host = strndup(p, n);
    }
    if (!c->host || !*c->host)
        return -1;
    if (colon) {
        size_t digits = (size_t)(rest - colon - 1);
        if (digits < 1 || digits > 5 ||
            strspn(colon + 1, "0123456789") != digits)
            return -1;
        long port = strtol(colon + 1, NULL, 10);
        if (port <= 0 || port > 65535)
            return -1;
        c->port = (int)port;
    }
    /* Path and query as they are, up to a fragment; a bare "?q" gets its
     * "/".  No spaces or control characters: they would end up raw in
     * the request line. */
    size_t pl = strcspn(rest, "#");
    for (size_t k = 0; k < pl; k++)
        if ((unsigned char)rest[k] <= ' ' || rest[k] == 0x7f)
            return -1;
    size_t n = pl + 2;
    c->path = malloc(n);
    if (!c->path)
        return -1;
    snprintf(c->path, n, "%s%.*s", rest[0] == '/' ? "" : "/", (int)pl, rest);
    /* Host header (and Origin): the port only when it is not the
     * scheme's; brackets around an IPv6 literal. */
    bool v6 = strchr(c->host, ':') != NULL;
    bool dflt = c->port == (c->tls ? 443 : 80);
    size_t hn = strlen(c->host) + 10;
    c->hosthdr = malloc(hn);
    if (!c->hosthdr)
        return -1;
    if (dflt)
        snprintf(c->hosthdr, hn, v6 ? "[%s]" : "%s", c->host);
    else
        snprintf(c->hosthdr, hn, v6 ? "[%s]:%d" : "%s:%d", c->host, c->port);
    return 0;
}

/* "Name: value" with a token name and no line breaks anywhere. */
static bool header_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h || colon - h > 100 || strlen(h) > 8000)
        return false;
    for (const char *q = h; q < colon; q++)
        if (!is_host_char(*q) || *q == '.')
            return false;
    return strpbrk(h, "\r\n") == NULL;
}

struct fd_conn *ws_connect(struct fd_channel *ch, const char *url,
                           const char *const *headers, const char *subprotocol)
{
    if (!ch || !url || ch->stopping || !loop_context())
        return NULL;
    if (client_setup() < 0)
        return NULL;
    struct fd_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ch = ch;
    c->client = true;
    buf_init(&c->rx, MAX_MESSAGE);
    if (parse_url(c, url) < 0) {
        /* Never the URL itself: it may carry a ticket or a token. */
        log_msg(LOG_ERROR, ch->platform, ch->name,
                "websocket: not a usable ws:// or wss:// URL");
        c->ch = NULL;
        conn_free(c);
        return NULL;
    }
    size_t nh = 0;
    while (headers && headers[nh])
        nh++;
    bool ok = nh <= MAX_HEADERS;
    for (size_t k = 0; ok && k < nh; k++)
        ok = header_ok(headers[k]);
    if (ok && subprotocol)
        ok = *subprotocol && strlen(subprotocol) < 256 &&
             !strpbrk(subprotocol, "\r\n");
    if (!ok) {
        log_msg(LOG_ERROR, ch->platform, ch->name,
                "websocket: malformed extra header or subprotocol");
        c->ch = NULL;
        conn_free(c);
        return NULL;
    }
    c->subprotocol = subprotocol ? strdup(subprotocol) : NULL;
    c->headers = calloc(nh + 1, sizeof *c->headers);
    ok = c->headers && (!subprotocol || c->subprotocol);
    for (size_t k = 0; ok && k < nh; k++)
        ok = (c->headers[k] = strdup(headers[k])) != NULL;
    if (!ok) {
        c->ch = NULL;
        conn_free(c);
        return NULL;
    }
    c->lookup = lookup_start(c->host, on_resolved, c);
    if (!c->lookup) {
        log_msg(LOG_WARN, ch->platform, ch->name,
                "websocket: cannot start resolving the host name");
        c->ch = NULL;
        conn_free(c);
        return NULL;
    }
    link_conn(c);
    deadline(c, CONNECT_MS);
    return c;
}

/* ---- client side: lws callbacks ------------------------------------------ */

static int add_headers(struct fd_conn *c, void *in, size_t len)
{
    unsigned char **p = (unsigned char **)in, *end = (*p) + len;
    for (char **h = c->headers; h && *h; h++) {
        const char *colon = strchr(*h, ':');
        char name[128];
        size_t nl = (size_t)(colon - *h) + 1; /* with the ':' lws wants */
        if (nl >= sizeof name)
            continue;
        memcpy(name, *h, nl);
        name[nl] = '\0';
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (lws_add_http_header_by_name(c->wsi, (const unsigned char *)name,
                                        (const unsigned char *)v,
                                        (int)strlen(v), p, end))
            return -1;
    }
    return 0;
}

/* Why a TLS connection failed, when OpenSSL's certificate check says so:
 * lws's own text ("connect SSL err 1: error:00000001...") tells nothing. */
static const char *tls_verify_error(struct lws *wsi)
{
#if defined(LWS_WITH_TLS) && !defined(LWS_WITH_MBEDTLS)
    SSL *ssl = lws_get_ssl(wsi);
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK)
        return X509_verify_cert_error_string(v);
#else
    (void)wsi;
#endif
    return NULL;
}

/* After a failed connect: the next address, or CLOSED with the reason.
 * Handshake answers ("HS: ...") came from the right server: no retry. */
static void connect_failed(struct fd_conn *c, struct lws *wsi, const char *in,
                           size_t len)
{
    char cce[120], why[200];
    const char *tls = c->tls ? tls_verify_error(wsi) : NULL;
    int64_t took = now_ms() - c->attempt_ms;
    if (tls)
        snprintf(cce, sizeof cce, "TLS certificate not accepted: %s", tls);
    else if (in && len)
        snprintf(cce, sizeof cce, "%.*s",
                 (int)(len < sizeof cce ? len : sizeof cce - 1), in);
    else if (took >= 4000) /* lws's per-stage timeout is 5 s */
        snprintf(cce, sizeof cce, "no answer within %d s",
                 (int)((took + 500) / 1000));
    else
        snprintf(cce, sizeof cce, "connection closed before the upgrade");
    cce[strcspn(cce, "\r\n")] = '\0';
    int status = lws_http_client_http_response(wsi);
    lws_set_opaque_user_data(wsi, NULL);
    c->wsi = NULL;
    if (c->closing || c->reported) {
        conn_gone(c, "closed");
        return;
    }
    if (strncmp(cce, "HS:", 3) != 0 && !tls && c->addr_at + 1 < c->naddrs) {
        log_msg(LOG_DEBUG, cplat(c), cname(c),
                "websocket connect to %s failed (%s): trying the next "
                "address",
                c->addrs[c->addr_at], cce);
        c->addr_at++;
        client_connect(c);
        return;
    }
    if (status > 0 && status != 101)
        snprintf(why, sizeof why, "connect error: %s (HTTP %d)", cce, status);
    else
        snprintf(why, sizeof why, "connect error: %s", cce);
    conn_gone(c, why);
}

/* CLOSED's reason for a connection lws closed after it was open. */
static void closed_reason(const struct fd_conn *c, char *why, size_t n)
{
    if (c->closing)
        snprintf(why, n, "closed");
    else if (c->peer_closed && c->peer_code && c->peer_reason[0])
        snprintf(why, n, "closed by peer: %d %s", c->peer_code, c->peer_reason);
    else if (c->peer_closed && c->peer_code)
        snprintf(why, n, "closed by peer: %d", c->peer_code);
    else if (c->peer_closed)
        snprintf(why, n, "closed by peer");
    else if (now_ms() - c->last_alive_ms >= (HANGUP_S - 1) * 1000)
        snprintf(why, n, "connection lost (no answer to pings for %d s)",
                 HANGUP_S);
    else
        snprintf(why, n, "connection lost");
}

/* The peer's close frame: a 2-byte code and a reason, kept printable. */
static void note_peer_close(struct fd_conn *c, const unsigned char *in,
                            size_t len)
{
    c->peer_closed = true;
    if (!in || len < 2)
        return;
    c->peer_code = (in[0] << 8) | in[1];
    size_t k = 0;
    for (size_t i = 2; i < len && k + 1 < sizeof c->peer_reason; i++)
        c->peer_reason[k++] = in[i] >= ' ' && in[i] < 0x7f ? (char)in[i] : '?';
    c->peer_reason[k] = '\0';
}

int ws_client_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len)
{
    (void)user;
    struct fd_conn *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    if (c && c->wsi && c->wsi != wsi) {
        /* A wsi we already left (an earlier address): not ours now. */
        lws_set_opaque_user_data(wsi, NULL);
        c = NULL;
    }
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (c && add_headers(c, in, len) < 0)
            return -1;
        break;
    case LWS_CALLBACK_CLIENT_HTTP_REDIRECT:
        return 1; /* following it would resolve on the loop */
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!c)
            return -1;
        c->wsi = wsi;
        c->open = true;
        c->last_alive_ms = now_ms();
        if (c->closing) {
            lws_callback_on_writable(wsi); /* straight to the close frame */
            break;
        }
        loop_sul_cancel(&c->sul); /* the connect deadline */
        log_msg(LOG_DEBUG, cplat(c), cname(c), "websocket open (%s)",
                c->addrs[c->addr_at]);
        if (c->ch && c->ch->def && c->ch->def->ws_event)
            c->ch->def->ws_event(c->ch, c, FD_WS_OPEN, "", 0);
        if (c->head || c->closing)
            lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (c)
            on_message(c, in, len, lws_is_final_fragment(wsi));
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        if (c)
            c->last_alive_ms = now_ms();
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c)
            note_peer_close(c, in, len);
        break; /* 0: lws answers with a close frame */
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return c ? write_one(c) : -1;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP: /* a close before the upgrade */
        if (c)
            connect_failed(c, wsi, in, in ? strnlen(in, len ? len : 200) : 0);
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) {
            char why[160];
            lws_set_opaque_user_data(wsi, NULL);
            c->wsi = NULL;
            closed_reason(c, why, sizeof why);
            conn_gone(c, why);
        }
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        /* The last word on a wsi (our vhost's first protocol gets it):
         * one that ended without a CLOSED or an error still gets its
         * CLOSED. */
        if (c) {
            lws_set_opaque_user_data(wsi, NULL);
            c->wsi = NULL;
            conn_gone(c, c->closing ? "closed" : "connection lost");
        }
        break;
    default:
        break;
    }
    return 0;
}
