/*
 * loop.c - the libwebsockets context, its protocols, timers and fd watches.
 *
 * Debian's lws (4.1.6) has no external-poll support and one service thread;
 * lws_service() sleeps until the next fd event or lws_sul timer, so all the
 * daemon's work is either an fd callback or a sul timer on this loop.
 */
#include "loop.h"

#include <fcntl.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/timerfd.h>
#include <time.h>

#include "channel.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "webhook.h"
#include "ws.h"

struct loop_watch {
    struct lws *wsi;
    int fd;
    loop_fd_fn fn;
    void *ud;
};

struct fd_timer {
    lws_sorted_usec_list_t sul; /* first: the sul callback casts back */
    struct fd_channel *ch;
    struct fd_timer *prev, *next;
    fd_timer_fn fn;
    void *ud;
};

struct loop_timer {
    lws_sorted_usec_list_t sul;
    void (*fn)(void *ud);
    void *ud;
};

static struct {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    volatile bool stop;
    int wake_fd;             /* timerfd: ends poll() when a timer is due */
    struct loop_watch *wake;
    int64_t wake_at;         /* CLOCK_MONOTONIC us armed for; 0 none, -1 stale */
    bool (*turn[4])(void);
    int nturn;
    struct loop_timer *again; /* turn-end work left over: come back now */
} L = {.wake_fd = -1};

void loop_on_turn(bool (*fn)(void))
{
    if (L.nturn < 4)
        L.turn[L.nturn++] = fn;
}

/* lws 4.1 does not bound its poll() by pending sul timers here (measured:
 * a 1 s timer fired after 6 s in an idle loop), so a timerfd the loop
 * watches is kept armed for the earliest pending timer: its expiry ends the
 * poll and lws then runs the due timers. */
static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Every sul scheduled through loop_sul_schedule, with its due time, so the
 * timerfd can always be armed for the earliest: lws keeps its list to
 * itself.  A handful of entries (a few per channel and connection). */
struct pending_sul {
    lws_sorted_usec_list_t *sul;
    sul_cb_t cb;
    int64_t at;
};
static struct {
    struct pending_sul *v;
    int n, cap;
} P;

static int pending_find(const lws_sorted_usec_list_t *sul)
{
    for (int i = 0; i < P.n; i++)
        if (P.v[i].sul == sul)
            return i;
    return -1;
}

static void pending_drop(int i)
{
    P.v[i] = P.v[--P.n];
}

/* Arms the timerfd for the earliest pending timer.  Armed earlier already
 * (that timer was cancelled or moved later) is left alone: the early
 * wake-up re-arms, which costs less than a syscall per re-scheduling (curl
 * moves its timeout with every request). */
static void wake_rearm(void)
{
    if (L.wake_fd < 0)
        return;
    int64_t at = 0;
    for (int i = 0; i < P.n; i++)
        if (!at || P.v[i].at < at)
            at = P.v[i].at;
    if (!at || (L.wake_at > 0 && L.wake_at <= at))
        return;
    struct itimerspec its = {0};
    its.it_value.tv_sec = at / 1000000;
    its.it_value.tv_nsec = (at % 1000000) * 1000;
    if (timerfd_settime(L.wake_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        L.wake_at = at;
}

static void on_wake(int fd, void *ud)
{
    (void)ud;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
    /* The due timers fire in this lws_service; arm for the next one. */
    L.wake_at = -1;
    wake_rearm();
}

static void sul_fire(lws_sorted_usec_list_t *sul)
{
    int i = pending_find(sul);
    if (i < 0)
        return; /* cannot happen: every sul we schedule is registered */
    sul_cb_t cb = P.v[i].cb;
    pending_drop(i);
    wake_rearm();
    cb(sul);
}

void loop_sul_schedule(lws_sorted_usec_list_t *sul, sul_cb_t cb, int64_t us)
{
    if (!L.ctx)
        return;
    int i = pending_find(sul);
    if (i < 0 && P.n == P.cap) {
        int cap = P.cap ? P.cap * 2 : 32;
        struct pending_sul *v = realloc(P.v, (size_t)cap * sizeof *v);
        if (!v) {
            /* No wake-up of its own: it still fires, maybe late. */
            log_error("core", "out of memory scheduling a timer");
            lws_sul_schedule(L.ctx, 0, sul, cb, us);
            return;
        }
        P.v = v;
        P.cap = cap;
    }
    if (i < 0)
        i = P.n++;
    P.v[i] = (struct pending_sul){
        .sul = sul, .cb = cb, .at = mono_us() + (us > 0 ? us : 0) + 100};
    lws_sul_schedule(L.ctx, 0, sul, sul_fire, us);
    wake_rearm();
}

void loop_sul_cancel(lws_sorted_usec_list_t *sul)
{
    lws_sul_cancel(sul);
    int i = pending_find(sul);
    if (i >= 0) {
        pending_drop(i);
        wake_rearm();
    }
}

/* The end-of-turn work, also after timer callbacks: lws runs due timers and
 * then goes on polling inside the same lws_service(), so work a timer
 * caused (a store write, an outbox kick) would otherwise wait for the next
 * network event.
 * A hook's work can make work for another, or for itself (a send that
 * completes inside curl's "time out now" frees a conversation for the next
 * send; a commit hands sends to the outbox): run the hooks until a round
 * finds nothing to do.  Nothing may be left for a later turn, which may be
 * far away when no socket or timer wakes the loop. */
void loop_turn_end(void)
{
    for (int round = 0; round < 16; round++) {
        bool busy = false;
        for (int i = 0; i < L.nturn; i++)
            busy |= L.turn[i]();
        if (!busy)
            return;
    }
    /* Still busy (a burst): serve the sockets, then come back at once. */
    loop_timer_schedule(L.again, 0);
}

static void turn_again(void *ud)
{
    (void)ud; /* core_timer_fire runs loop_turn_end */
}

static int watch_callback(struct lws *wsi, enum lws_callback_reasons reason,
                          void *user, void *in, size_t len)
{
    (void)user, (void)in, (void)len;
    struct loop_watch *w = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (w)
            w->fn(w->fd, w->ud);
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (w)
            w->wsi = NULL;
        break;
    default:
        break;
    }
    return 0;
}

static int curl_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len)
{
    return http_raw_callback(wsi, (int)reason, user, in, len);
}

static struct lws_protocols protocols[] = {
    /* First: the default for HTTP and for websocket upgrades. */
    {"frontdesk", webhook_callback, 0, 65536, 0, NULL, 0},
    {"fd-curl", curl_callback, 0, 0, 0, NULL, 0},
    {"fd-watch", watch_callback, 0, 0, 0, NULL, 0},
    {"fd-wsclient", ws_client_callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_msg(level == LLL_ERR ? LOG_WARN : LOG_DEBUG, "lws", NULL, "%.*s",
            (int)n, line);
}

int loop_init(const struct config *cfg)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
    protocols[0].per_session_data_size = webhook_pss_size();

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.fd_limit_per_thread = (unsigned)cfg->max_conns + 256;
    L.ctx = lws_create_context(&info);
    if (!L.ctx) {
        log_error("core", "cannot create the libwebsockets context");
        return -1;
    }

    memset(&info, 0, sizeof info);
    info.vhost_name = "frontdesk";
    info.port = cfg->listen_port;
    info.iface = cfg->listen_host;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                   LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.keepalive_timeout = 30;  /* idle keep-alive connections */
    info.timeout_secs = 20;       /* a request that does not complete */
    info.max_http_header_data = 8192;
    info.max_http_header_pool = (unsigned short)(cfg->max_conns > 65535 ? 65535 : cfg->max_conns);
    L.vh = lws_create_vhost(L.ctx, &info);
    if (!L.vh) {
        log_error("core", "cannot listen on %s:%d (in use, or no such address)",
                  cfg->listen_host, cfg->listen_port);
        lws_context_destroy(L.ctx);
        L.ctx = NULL;
        return -1;
    }
    L.again = loop_timer_new(turn_again, NULL);
    L.wake_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (L.wake_fd >= 0)
        L.wake = loop_watch_fd(L.wake_fd, on_wake, NULL);
    if (http_init(L.ctx, L.vh) < 0) {
        log_error("core", "cannot initialise libcurl");
        return -1;
    }
    return 0;
}

void loop_cleanup(void)
{
    http_cleanup();
    loop_timer_free(L.again);
    L.again = NULL;
    loop_unwatch(L.wake);
    L.wake = NULL;
    if (L.wake_fd >= 0)
        close(L.wake_fd);
    L.wake_fd = -1;
    L.wake_at = 0;
    free(P.v);
    P.v = NULL;
    P.n = P.cap = 0;
    if (L.ctx)
        lws_context_destroy(L.ctx);
    L.ctx = NULL;
    L.vh = NULL;
}

void loop_run(void)
{
    L.stop = false;
    while (!L.stop) {
        if (lws_service(L.ctx, 0) < 0)
            break;
        /* End of a turn: one poll()'s worth of events handled.  Work
         * deferred to here (the store's commit, outbox kicks) costs no
         * timer and no wake-up of its own. */
        loop_turn_end();
    }
}

void loop_stop(void)
{
    L.stop = true;
    if (L.ctx)
        lws_cancel_service(L.ctx);
}

struct lws_context *loop_context(void) { return L.ctx; }
struct lws_vhost *loop_vhost(void) { return L.vh; }

struct loop_watch *loop_watch_fd(int fd, loop_fd_fn fn, void *ud)
{
    struct loop_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0) {
        free(w);
        return NULL;
    }
    lws_sock_file_fd_type u;
    u.filefd = d;
    w->fd = fd;
    w->fn = fn;
    w->ud = ud;
    w->wsi = lws_adopt_descriptor_vhost(L.vh, LWS_ADOPT_RAW_FILE_DESC, u,
                                        "fd-watch", NULL);
    if (!w->wsi) {
        free(w);
        return NULL;
    }
    lws_set_opaque_user_data(w->wsi, w);
    return w;
}

void loop_unwatch(struct loop_watch *w)
{
    if (!w)
        return;
    if (w->wsi) {
        lws_set_opaque_user_data(w->wsi, NULL);
        lws_set_timeout(w->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
    }
    free(w);
}

/* ---- timers ----------------------------------------------------------- */

static void timer_unlink(struct fd_timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else if (t->ch)
        t->ch->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

static void timer_fire(lws_sorted_usec_list_t *sul)
{
    struct fd_timer *t = (struct fd_timer *)sul;
    fd_timer_fn fn = t->fn;
    void *ud = t->ud;
    timer_unlink(t);
    free(t);
    fn(ud);
    loop_turn_end();
}

struct fd_timer *loop_timer_add(struct fd_channel *ch, int ms, fd_timer_fn fn,
                                void *ud)
{
    if (!L.ctx || !fn || (ch && ch->stopping))
        return NULL;
    struct fd_timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ch = ch;
    t->fn = fn;
    t->ud = ud;
    if (ch) {
        t->next = ch->timers;
        if (t->next)
            t->next->prev = t;
        ch->timers = t;
    }
    loop_sul_schedule(&t->sul, timer_fire,
                     (lws_usec_t)(ms < 0 ? 0 : ms) * LWS_US_PER_MS);
    return t;
}

void loop_timer_cancel(struct fd_timer *t)
{
    if (!t)
        return;
    loop_sul_cancel(&t->sul);
    timer_unlink(t);
    free(t);
}

void loop_timer_cancel_channel(struct fd_channel *ch)
{
    while (ch->timers)
        loop_timer_cancel(ch->timers);
}

static void core_timer_fire(lws_sorted_usec_list_t *sul)
{
    struct loop_timer *t = (struct loop_timer *)sul;
    t->fn(t->ud);
    loop_turn_end();
}

struct loop_timer *loop_timer_new(void (*fn)(void *ud), void *ud)
{
    struct loop_timer *t = calloc(1, sizeof *t);
    if (t) {
        t->fn = fn;
        t->ud = ud;
    }
    return t;
}

void loop_timer_schedule(struct loop_timer *t, int ms)
{
    if (t && L.ctx)
        loop_sul_schedule(&t->sul, core_timer_fire,
                         (lws_usec_t)(ms < 0 ? 0 : ms) * LWS_US_PER_MS);
}

void loop_timer_stop(struct loop_timer *t)
{
    if (t && L.ctx)
        loop_sul_cancel(&t->sul);
}

void loop_timer_free(struct loop_timer *t)
{
    if (!t)
        return;
    loop_timer_stop(t);
    free(t);
}
