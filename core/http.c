/*
 * http.c - outbound HTTP: libcurl's multi socket interface on the
 * libwebsockets loop ("way A" of DESIGN.md, the fastest on one thread).
 *
 * curl tells us which sockets it wants watched (CURLMOPT_SOCKETFUNCTION) and
 * when to call it back (CURLMOPT_TIMERFUNCTION).  Each socket is adopted into
 * lws as a raw file descriptor, so poll() for everything happens in
 * lws_service().  The pitfalls, each handled below:
 *  - lws closes an adopted fd when its wsi closes (and on POLLHUP by itself),
 *    so lws gets a dup() and curl keeps owning the original;
 *  - curl sends REMOVE/ADD around every keep-alive transfer: our own sockets
 *    (opened through CURLOPT_OPENSOCKETFUNCTION) keep their wsi with POLLIN
 *    off until curl really closes them (CURLOPT_CLOSESOCKETFUNCTION); the
 *    resolver's socketpair never reaches that callback, so it is dropped on
 *    REMOVE;
 *  - a POLLOUT request made inside the writeable callback is dropped by lws,
 *    so it is re-armed from a zero-delay timer;
 *  - curl may remove a socket from inside curl_multi_socket_action while we
 *    are in that socket's callback: records are looked up again after every
 *    call and wsis are only ever killed asynchronously;
 *  - when lws drops a socket curl still wants, curl hears CURL_CSELECT_ERR.
 * DNS stays off the loop: Debian's libcurl resolves in a thread.
 */
#include "http.h"

#include <curl/curl.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <fcntl.h>

#include "buf.h"
#include "channel.h"
#include "log.h"
#include "loop.h"
#include "version.h"

#define MAX_RESPONSE (16u << 20)

struct fd_http_call {
    CURL *easy;
    struct fd_channel *ch;
    struct fd_http_call *prev, *next; /* the channel's list */
    fd_http_done_fn done;
    void *ud;
    struct curl_slist *headers;
    char *body;
    struct buf resp;
    char errbuf[CURL_ERROR_SIZE];
};

struct csock {
    curl_socket_t fd;
    struct lws *wsi; /* lws's dup of fd, or NULL */
    int what;        /* CURL_POLL_* curl wants now */
    bool ours;       /* opened by us: kept until curl closes it */
};

static struct {
    CURLM *multi;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    lws_sorted_usec_list_t timer; /* curl's own timeout */
    lws_sorted_usec_list_t rearm; /* re-requests POLLOUT */
    struct csock **socks;         /* indexed by fd */
    size_t nsocks;
    int in_flight;
    void (*before)(void);
    CURL *pool[64]; /* reset easy handles: curl_easy_init costs allocations */
    int npool;
} H;

void http_set_before_request(void (*fn)(void)) { H.before = fn; }

static void check_done(void);

static struct csock *sock_find(curl_socket_t fd)
{
    return fd >= 0 && (size_t)fd < H.nsocks ? H.socks[fd] : NULL;
}

static struct csock *sock_new(curl_socket_t fd, bool ours)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= H.nsocks) {
        size_t n = H.nsocks ? H.nsocks : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct csock **v = realloc(H.socks, n * sizeof *v);
        if (!v)
            return NULL;
        memset(v + H.nsocks, 0, (n - H.nsocks) * sizeof *v);
        H.socks = v;
        H.nsocks = n;
    }
    struct csock *cs = calloc(1, sizeof *cs);
    if (!cs)
        return NULL;
    cs->fd = fd;
    cs->ours = ours;
    H.socks[fd] = cs;
    return cs;
}

/* Forget a socket: its wsi (if any) dies on lws's next turn, never inside a
 * callback that may be its own. */
static void sock_drop(struct csock *cs)
{
    if (cs->wsi) {
        lws_set_opaque_user_data(cs->wsi, NULL);
        lws_set_timeout(cs->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    }
    H.socks[cs->fd] = NULL;
    free(cs);
}

static void sock_unwatch(struct csock *cs)
{
    if (!cs->wsi)
        return;
    lws_set_opaque_user_data(cs->wsi, NULL);
    lws_set_timeout(cs->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    cs->wsi = NULL;
}

static int sock_adopt(struct csock *cs)
{
    int d = fcntl(cs->fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0)
        return -1;
    lws_sock_file_fd_type u;
    u.filefd = d;
    cs->wsi = lws_adopt_descriptor_vhost(H.vh, LWS_ADOPT_RAW_FILE_DESC, u,
                                         "fd-curl", NULL);
    if (!cs->wsi) {
        log_error("http", "cannot watch a curl socket");
        return -1;
    }
    lws_set_opaque_user_data(cs->wsi, cs);
    return 0;
}

static void apply_events(struct csock *cs)
{
    if (!cs->wsi && cs->what && sock_adopt(cs) < 0)
        return;
    if (!cs->wsi)
        return;
    lws_rx_flow_control(cs->wsi, (cs->what & CURL_POLL_IN) ? 1 : 0);
    if (cs->what & CURL_POLL_OUT)
        lws_callback_on_writable(cs->wsi);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp,
                     void *socketp)
{
    (void)e, (void)userp, (void)socketp;
    struct csock *cs = sock_find(fd);
    if (what == CURL_POLL_REMOVE) {
        if (!cs)
            return 0;
        cs->what = 0;
        if (!cs->ours)
            sock_drop(cs);
        else if (cs->wsi)
            lws_rx_flow_control(cs->wsi, 0);
        return 0;
    }
    if (!cs && !(cs = sock_new(fd, false)))
        return -1;
    cs->what = what;
    apply_events(cs);
    return 0;
}

static curl_socket_t on_open(void *clientp, curlsocktype purpose,
                             struct curl_sockaddr *a)
{
    (void)clientp, (void)purpose;
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    struct csock *stale = sock_find(fd);
    if (stale) /* a resolver socket curl closed without a REMOVE */
        sock_drop(stale);
    if (!sock_new(fd, true)) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    return fd;
}

static int on_close(void *clientp, curl_socket_t fd)
{
    (void)clientp;
    struct csock *cs = sock_find(fd);
    if (cs)
        sock_drop(cs);
    return close(fd);
}

static void action(curl_socket_t fd, int ev)
{
    int running;
    curl_multi_socket_action(H.multi, fd, ev, &running);
    check_done();
}

static void on_timer(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    action(CURL_SOCKET_TIMEOUT, 0);
    loop_turn_end();
}

/* curl asks for "now" after every new request: do it at the end of this
 * loop turn rather than through an lws timer, which may fire late. */
static bool timeout_now;

bool http_turn(void)
{
    if (!timeout_now)
        return false;
    timeout_now = false;
    action(CURL_SOCKET_TIMEOUT, 0);
    return true;
}

static int on_curl_timer(CURLM *m, long ms, void *userp)
{
    (void)m, (void)userp;
    if (ms < 0) {
        loop_sul_cancel(&H.timer);
        timeout_now = false;
    } else if (ms == 0) {
        loop_sul_cancel(&H.timer);
        timeout_now = true;
    } else {
        timeout_now = false;
        loop_sul_schedule(&H.timer, on_timer,
                         (lws_usec_t)ms * LWS_US_PER_MS);
    }
    return 0;
}

static void on_rearm(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    for (size_t i = 0; i < H.nsocks; i++)
        if (H.socks[i] && H.socks[i]->wsi && (H.socks[i]->what & CURL_POLL_OUT))
            lws_callback_on_writable(H.socks[i]->wsi);
}

int http_raw_callback(struct lws *wsi, int reason, void *user, void *in,
                      size_t len)
{
    (void)user, (void)in, (void)len;
    struct csock *cs = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!cs)
            break;
        if (!(cs->what & CURL_POLL_IN)) {
            /* Readable while curl does not listen (a keep-alive peer hung
             * up): stop watching rather than spin; a later ADD adopts it
             * again. */
            sock_unwatch(cs);
            break;
        }
        action(cs->fd, CURL_CSELECT_IN);
        break;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (!cs)
            break;
        if (cs->what & CURL_POLL_OUT) {
            action(cs->fd, CURL_CSELECT_OUT);
            loop_sul_schedule(&H.rearm, on_rearm, 0);
        }
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (!cs)
            break;
        cs->wsi = NULL;
        if (cs->what) /* lws gave up on a socket curl still wants */
            action(cs->fd, CURL_CSELECT_ERR);
        break;
    default:
        break;
    }
    return 0;
}

int http_init(struct lws_context *ctx, struct lws_vhost *vh)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    H.ctx = ctx;
    H.vh = vh;
    H.multi = curl_multi_init();
    if (!H.multi)
        return -1;
    curl_multi_setopt(H.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(H.multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    /* Keep platform connections alive between messages. */
    curl_multi_setopt(H.multi, CURLMOPT_MAXCONNECTS, 256L);
    curl_multi_setopt(H.multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    return 0;
}

static void call_free(struct fd_http_call *c)
{
    curl_slist_free_all(c->headers);
    free(c->body);
    buf_cleanup(&c->resp);
    if (c->easy && H.npool < (int)(sizeof H.pool / sizeof H.pool[0])) {
        curl_easy_reset(c->easy);
        H.pool[H.npool++] = c->easy;
    } else if (c->easy) {
        curl_easy_cleanup(c->easy);
    }
    free(c);
}

static void unlink_call(struct fd_http_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (c->ch)
        c->ch->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

void http_cleanup(void)
{
    if (!H.multi)
        return;
    loop_sul_cancel(&H.timer);
    loop_sul_cancel(&H.rearm);
    while (H.npool)
        curl_easy_cleanup(H.pool[--H.npool]);
    curl_multi_cleanup(H.multi);
    H.multi = NULL;
    for (size_t i = 0; i < H.nsocks; i++)
        free(H.socks[i]);
    free(H.socks);
    H.socks = NULL;
    H.nsocks = 0;
    curl_global_cleanup();
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct fd_http_call *c = ud;
    if (buf_add(&c->resp, p, size * n) < 0)
        return 0; /* too large: curl fails the transfer */
    return size * n;
}

static int retry_after(CURL *e)
{
    struct curl_header *h;
    if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) !=
        CURLHE_OK)
        return -1;
    char *end;
    long v = strtol(h->value, &end, 10);
    if (end == h->value || v < 0)
        return -1; /* an HTTP date: rare on APIs, treated as absent */
    return v > 86400 ? 86400 : (int)v;
}

static void finish(struct fd_http_call *c, CURLcode res, bool cancelled)
{
    struct fd_http_response r = {.retry_after_s = -1, .cancelled = cancelled};
    long status = 0;
    if (!cancelled && res == CURLE_OK) {
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        r.retry_after_s = retry_after(c->easy);
    } else if (!cancelled) {
        r.error = c->errbuf[0] ? c->errbuf : curl_easy_strerror(res);
    } else {
        r.error = "cancelled";
    }
    r.status = (int)status;
    r.body = c->resp.data ? c->resp.data : "";
    r.body_len = c->resp.len;
    r.priv = cancelled ? NULL : c->easy;
    curl_multi_remove_handle(H.multi, c->easy);
    unlink_call(c);
    H.in_flight--;
    c->done(c->ud, &r);
    call_free(c);
}

static void check_done(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(H.multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct fd_http_call *c = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (c)
            finish(c, m->data.result, false);
    }
}

struct fd_http_call *http_request(struct fd_channel *ch,
                                  const struct fd_http_request *req,
                                  fd_http_done_fn done, void *ud)
{
    if (!H.multi || !req || !req->url || !done || (ch && ch->stopping))
        return NULL;
    if (H.before)
        H.before();
    struct fd_http_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    buf_init(&c->resp, MAX_RESPONSE);
    c->ch = ch;
    c->done = done;
    c->ud = ud;
    c->easy = H.npool ? H.pool[--H.npool] : curl_easy_init();
    if (!c->easy)
        goto fail;
    CURL *e = c->easy;
    bool has_type = false;
    for (const char *const *h = req->headers; h && *h; h++) {
        struct curl_slist *l = curl_slist_append(c->headers, *h);
        if (!l)
            goto fail;
        c->headers = l;
        if (strncasecmp(*h, "content-type:", 13) == 0)
            has_type = true;
    }
    if (req->body) {
        c->body = malloc(req->body_len + 1);
        if (!c->body)
            goto fail;
        memcpy(c->body, req->body, req->body_len);
        c->body[req->body_len] = '\0';
        if (!has_type)
            c->headers = curl_slist_append(c->headers,
                                           "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)req->body_len);
    }
    /* No "Expect: 100-continue" round trip before bodies. */
    c->headers = curl_slist_append(c->headers, "Expect:");
    const char *method = req->method ? req->method : req->body ? "POST" : "GET";
    if (strcmp(method, "GET") && strcmp(method, "POST"))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    else if (!strcmp(method, "GET") && req->body)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     (long)(req->timeout_ms > 0 ? req->timeout_ms : 30000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "frontdesk/" FRONTDESK_VERSION);
    if (curl_multi_add_handle(H.multi, e) != CURLM_OK)
        goto fail;
    if (ch) {
        c->next = ch->calls;
        if (c->next)
            c->next->prev = c;
        ch->calls = c;
    }
    H.in_flight++;
    return c;
fail:
    call_free(c);
    return NULL;
}

const char *http_response_header(const struct fd_http_response *r,
                                 const char *name)
{
    struct curl_header *h;
    if (!r || !r->priv || !name ||
        curl_easy_header(r->priv, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return NULL;
    return h->value;
}

void http_cancel(struct fd_http_call *c)
{
    if (c)
        finish(c, CURLE_OK, true);
}

void http_cancel_channel(struct fd_channel *ch)
{
    while (ch->calls)
        http_cancel(ch->calls);
}

int http_in_flight(void) { return H.in_flight; }
