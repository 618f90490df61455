/*
 * ws.c - websocket connections for plugins, server side (browsers upgraded
 * on the listener) and client side (connections the daemon opens).
 *
 * Each connection keeps a bounded queue of outgoing text messages written
 * one per writeable callback, and reassembles fragmented incoming messages
 * up to MAX_MESSAGE.  Client connects resolve the host name with
 * getaddrinfo_a (off the loop: its notifier only wakes an eventfd the loop
 * watches), then connect to the numeric address with the name as Host/SNI,
 * and never follow redirects (lws would resolve synchronously).
 */
#include "ws.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <libwebsockets.h>

#include "buf.h"
#include "channel.h"
#include "log.h"
#include "loop.h"
#include "webhook.h"

#define MAX_MESSAGE (1u << 20)
#define MAX_QUEUED (8u << 20)

struct wsmsg {
    struct wsmsg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE + len */
};

struct fd_conn {
    struct lws *wsi;
    struct fd_channel *ch;
    struct fd_conn *prev, *next; /* the channel's list */
    void *data;
    struct wsmsg *head, *tail;
    size_t queued;
    struct buf rx;
    bool client, open, closing, closed_reported;
    /* client side */
    struct gaicb gai;
    struct addrinfo hints;
    struct sigevent sev;
    char *host, *path, *subprotocol, *url;
    char **headers;
    int port;
    bool tls, resolving;
    struct fd_conn *next_resolving;
};

static struct {
    int efd;
    struct loop_watch *watch;
    struct fd_conn *resolving;
} R = {.efd = -1};

static void link_conn(struct fd_conn *c)
{
    c->next = c->ch->conns;
    if (c->next)
        c->next->prev = c;
    c->ch->conns = c;
}

static void unlink_conn(struct fd_conn *c)
{
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
    while (c->head) {
        struct wsmsg *m = c->head;
        c->head = m->next;
        free(m);
    }
    buf_cleanup(&c->rx);
    free(c->host);
    free(c->path);
    free(c->subprotocol);
    free(c->url);
    for (char **h = c->headers; h && *h; h++)
        free(*h);
    free(c->headers);
    free(c);
}

/* Tells the plugin once, unlinks and frees. */
static void conn_gone(struct fd_conn *c, const char *why)
{
    unlink_conn(c);
    if (!c->closed_reported && c->ch->def && c->ch->def->ws_event) {
        c->closed_reported = true;
        c->ch->def->ws_event(c->ch, c, FD_WS_CLOSED, why, strlen(why));
    }
    conn_free(c);
}

static void on_message(struct fd_conn *c, const void *in, size_t len,
                       bool final)
{
    if (buf_add(&c->rx, in, len) < 0) {
        log_msg(LOG_WARN, c->ch->platform, c->ch->name,
                "websocket message over %u bytes: closing", MAX_MESSAGE);
        buf_reset(&c->rx);
        ws_close(c);
        return;
    }
    if (!final)
        return;
    if (c->ch->def && c->ch->def->ws_event && !c->closing)
        c->ch->def->ws_event(c->ch, c, FD_WS_MESSAGE,
                             c->rx.data ? c->rx.data : "", c->rx.len);
    buf_reset(&c->rx);
}

/* Writes one queued message; 0 to keep the connection, -1 to close it. */
static int write_one(struct fd_conn *c)
{
    if (c->closing && !c->head)
        return -1;
    struct wsmsg *m = c->head;
    if (!m)
        return 0;
    if (lws_write(c->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT) <
        (int)m->len)
        return -1;
    c->head = m->next;
    if (!c->head)
        c->tail = NULL;
    c->queued -= m->len;
    free(m);
    if (c->head || c->closing)
        lws_callback_on_writable(c->wsi);
    return 0;
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

int ws_server_writeable(struct fd_conn *c) { return write_one(c); }

void ws_server_closed(struct fd_conn *c) { conn_gone(c, "closed"); }

/* ---- both sides ------------------------------------------------------- */

int ws_send(struct fd_conn *c, const char *data, size_t len)
{
    if (!c || !data || c->closing)
        return FD_EINVAL;
    if (len > MAX_MESSAGE || c->queued + len > MAX_QUEUED) {
        log_msg(LOG_WARN, c->ch->platform, c->ch->name,
                "websocket send queue full: closing the slow connection");
        ws_close(c);
        return FD_ENOMEM;
    }
    struct wsmsg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return FD_ENOMEM;
    m->next = NULL;
    m->len = len;
    memcpy(m->data + LWS_PRE, data, len);
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->queued += len;
    if (c->open)
        lws_callback_on_writable(c->wsi);
    return FD_OK;
}

void ws_close(struct fd_conn *c)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    if (c->resolving)
        return; /* dropped when the resolution completes */
    if (c->wsi)
        lws_callback_on_writable(c->wsi);
}

void ws_conn_set_data(struct fd_conn *c, void *data)
{
    if (c)
        c->data = data;
}

void *ws_conn_get_data(struct fd_conn *c) { return c ? c->data : NULL; }

void ws_close_channel(struct fd_channel *ch)
{
    while (ch->conns) {
        struct fd_conn *c = ch->conns;
        if (c->wsi) {
            lws_set_opaque_user_data(c->wsi, NULL);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND,
                            LWS_TO_KILL_ASYNC);
            if (!c->client) /* its pss still points at c */
                webhook_conn_detach(c->wsi);
        }
        if (c->resolving) {
            c->closing = true;
            unlink_conn(c);
            c->ch = NULL;
            continue; /* freed when getaddrinfo_a finishes */
        }
        conn_gone(c, "channel stopped");
    }
}

/* ---- client side ------------------------------------------------------ */

static void gai_notify(union sigval v)
{
    (void)v;
    uint64_t one = 1;
    ssize_t w = write(R.efd, &one, sizeof one);
    (void)w;
}

static void client_connect(struct fd_conn *c, const struct addrinfo *ai)
{
    char addr[INET6_ADDRSTRLEN] = "";
    if (ai->ai_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr,
                  addr, sizeof addr);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
                  addr, sizeof addr);
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = loop_context();
    i.vhost = loop_vhost();
    i.address = addr;
    i.port = c->port;
    i.path = c->path;
    i.host = c->host;
    i.origin = c->host;
    i.ssl_connection = c->tls ? LCCSCF_USE_SSL : 0;
    i.protocol = c->subprotocol;
    i.local_protocol_name = "fd-wsclient";
    i.opaque_user_data = c;
    i.pwsi = &c->wsi;
    if (!lws_client_connect_via_info(&i)) {
        c->wsi = NULL;
        conn_gone(c, "connect failed");
    }
}

static void on_resolved(int fd, void *ud)
{
    (void)ud;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
    struct fd_conn **pp = &R.resolving;
    while (*pp) {
        struct fd_conn *c = *pp;
        int e = gai_error(&c->gai);
        if (e == EAI_INPROGRESS) {
            pp = &c->next_resolving;
            continue;
        }
        *pp = c->next_resolving;
        c->resolving = false;
        struct addrinfo *res = c->gai.ar_result;
        if (!c->ch) { /* its channel stopped meanwhile */
            if (res)
                freeaddrinfo(res);
            conn_free(c);
            continue;
        }
        if (e != 0 || !res) {
            log_msg(LOG_WARN, c->ch->platform, c->ch->name,
                    "cannot resolve %s: %s", c->host, gai_strerror(e));
            if (res)
                freeaddrinfo(res);
            conn_gone(c, "cannot resolve host");
            continue;
        }
        if (c->closing)
            conn_gone(c, "closed");
        else
            client_connect(c, res);
        freeaddrinfo(res);
    }
}

static int parse_url(struct fd_conn *c, const char *url)
{
    const char *p;
    if (strncmp(url, "ws://", 5) == 0) {
        p = url + 5;
        c->port = 80;
    } else if (strncmp(url, "wss://", 6) == 0) {
        p = url + 6;
        c->port = 443;
        c->tls = true;
    } else {
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    c->path = strdup(slash ? slash : "/");
    const char *colon = memchr(p, ':', hl);
    if (p[0] == '[') { /* [v6]:port */
        const char *rb = memchr(p, ']', hl);
        if (!rb)
            return -1;
        c->host = strndup(p + 1, (size_t)(rb - p - 1));
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        c->host = strndup(p, colon ? (size_t)(colon - p) : hl);
    }
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (port <= 0 || port > 65535)
            return -1;
        c->port = (int)port;
    }
    return c->host && c->path && *c->host ? 0 : -1;
}

struct fd_conn *ws_connect(struct fd_channel *ch, const char *url,
                           const char *const *headers, const char *subprotocol)
{
    if (!ch || !url || ch->stopping || !loop_context())
        return NULL;
    if (R.efd < 0) {
        R.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (R.efd < 0 || !(R.watch = loop_watch_fd(R.efd, on_resolved, NULL)))
            return NULL;
    }
    struct fd_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ch = ch;
    c->client = true;
    buf_init(&c->rx, MAX_MESSAGE);
    if (parse_url(c, url) < 0) {
        log_msg(LOG_ERROR, ch->platform, ch->name,
                "not a ws:// or wss:// URL: %s", url);
        conn_free(c);
        return NULL;
    }
    c->url = strdup(url);
    c->subprotocol = subprotocol ? strdup(subprotocol) : NULL;
    size_t nh = 0;
    while (headers && headers[nh])
        nh++;
    c->headers = calloc(nh + 1, sizeof *c->headers);
    for (size_t i = 0; c->headers && i < nh; i++)
        c->headers[i] = strdup(headers[i]);
    c->hints.ai_socktype = SOCK_STREAM;
    c->hints.ai_family = AF_UNSPEC;
    c->gai.ar_name = c->host;
    c->gai.ar_request = &c->hints;
    c->sev.sigev_notify = SIGEV_THREAD;
    c->sev.sigev_notify_function = gai_notify;
    struct gaicb *list[1] = {&c->gai};
    if (getaddrinfo_a(GAI_NOWAIT, list, 1, &c->sev) != 0) {
        conn_free(c);
        return NULL;
    }
    c->resolving = true;
    c->next_resolving = R.resolving;
    R.resolving = c;
    link_conn(c);
    return c;
}

static int add_headers(struct fd_conn *c, void *in, size_t len)
{
    unsigned char **p = (unsigned char **)in, *end = (*p) + len;
    for (char **h = c->headers; h && *h; h++) {
        const char *colon = strchr(*h, ':');
        if (!colon)
            continue;
        char name[128];
        size_t nl = (size_t)(colon - *h) + 1;
        if (nl >= sizeof name)
            continue;
        memcpy(name, *h, nl);
        name[nl] = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        if (lws_add_http_header_by_name(c->wsi, (const unsigned char *)name,
                                        (const unsigned char *)v,
                                        (int)strlen(v), p, end))
            return -1;
    }
    return 0;
}

int ws_client_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len)
{
    (void)user;
    struct fd_conn *c = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (c && add_headers(c, in, len) < 0)
            return -1;
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!c)
            return -1;
        c->wsi = wsi;
        c->open = true;
        if (c->ch->def && c->ch->def->ws_event)
            c->ch->def->ws_event(c->ch, c, FD_WS_OPEN, "", 0);
        if (c->head)
            lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (c)
            on_message(c, in, len, lws_is_final_fragment(wsi));
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return c ? write_one(c) : -1;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            char why[200];
            snprintf(why, sizeof why, "connect error: %s",
                     in ? (const char *)in : "unknown");
            lws_set_opaque_user_data(wsi, NULL);
            c->wsi = NULL;
            conn_gone(c, why);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) {
            lws_set_opaque_user_data(wsi, NULL);
            c->wsi = NULL;
            conn_gone(c, "closed by peer");
        }
        break;
    default:
        break;
    }
    return 0;
}
