/*
 * fdbench.c - load generator and mock Bot API in one epoll loop, for
 * `make bench`.
 *
 * It posts Telegram-format updates to the target (closed loop over --conns
 * keep-alive connections, or at a fixed --rate), and serves as the Bot API
 * the daemon answers through (getMe, setWebhook, sendMessage...).  Because
 * both ends live in this process, the latency from posting an update to the
 * arrival of its sendMessage is measured on one clock.  With --bare the
 * target is a plain responder and only responses are counted.
 *
 * Prints one line of key=value results.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFSZ 65536

enum { CLIENT, MOCK_LISTEN, MOCK_CONN };

struct conn {
    int kind, fd;
    char in[BUFSZ];
    size_t inlen;
    char out[8192];
    size_t outlen, outoff;
    bool busy;
    uint64_t id; /* update in flight (client) */
};

static struct {
    const char *host, *path, *header;
    int port, mock_port, conns, users, chats;
    double seconds, rate, grace;
    bool bare;
    uint64_t start_id, next_id, sent, ok, bad, answers, dup_answers, errors;
    uint64_t *t_sent, *t_answer; /* ns, by id - start_id */
    uint64_t *rtt;               /* webhook round trips, ns */
    uint64_t nrtt;
    uint64_t cap;
    int ep;
} B = {.host = "127.0.0.1", .path = "/", .conns = 50, .users = 1000,
       .chats = 1000, .seconds = 10, .grace = 3, .start_id = 1};

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void watch(struct conn *c, uint32_t ev, int op)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(B.ep, op, c->fd, &e) < 0 && op != EPOLL_CTL_DEL)
        die("epoll_ctl");
}

static int connect_target(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)B.port)};
    inet_pton(AF_INET, B.host, &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
        die("connect");
    return fd;
}

static const char *const questions[] = {
    "Wann habt ihr geöffnet?", "What is the delivery time?",
    "Wie kann ich mein Passwort zurücksetzen?", "How do I contact you?",
};

static void send_update(struct conn *c)
{
    uint64_t id = B.next_id++;
    if (id - B.start_id >= B.cap) {
        B.next_id--;
        return;
    }
    char body[1024];
    uint64_t user = id % (uint64_t)B.users, chat = id % (uint64_t)B.chats;
    int bl = snprintf(body, sizeof body,
                      "{\"update_id\":%llu,\"message\":{\"message_id\":%llu,"
                      "\"date\":1717000000,\"from\":{\"id\":%llu,\"is_bot\":false,"
                      "\"first_name\":\"User%llu\"},\"chat\":{\"id\":-100%llu,"
                      "\"type\":\"supergroup\",\"title\":\"Bench\"},\"text\":\"%s\"}}",
                      (unsigned long long)id, (unsigned long long)id,
                      (unsigned long long)(1000000 + user), (unsigned long long)user,
                      (unsigned long long)chat, questions[id % 4]);
    c->outlen = (size_t)snprintf(c->out, sizeof c->out,
                                 "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                                 "application/json\r\n%s%sContent-Length: %d\r\n\r\n%s",
                                 B.path, B.host, B.header ? B.header : "",
                                 B.header ? "\r\n" : "", bl, body);
    c->outoff = 0;
    c->busy = true;
    c->id = id;
    B.t_sent[id - B.start_id] = now_ns();
    B.sent++;
    ssize_t w = write(c->fd, c->out, c->outlen);
    if (w > 0)
        c->outoff = (size_t)w;
    if (c->outoff < c->outlen)
        watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
}

/* One complete HTTP message in c->in: its total length, or 0. */
static size_t message_len(struct conn *c, long *clen)
{
    char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (!end)
        return 0;
    *clen = 0;
    for (char *p = c->in; p < end; p++) {
        if ((p == c->in || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
            *clen = strtol(p + 15, NULL, 10);
            break;
        }
    }
    size_t total = (size_t)(end + 4 - c->in) + (size_t)*clen;
    return c->inlen >= total ? total : 0;
}

static void consume(struct conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->inlen - n);
    c->inlen -= n;
}

static void mock_answer(struct conn *c, const char *req, size_t len)
{
    const char *body = memmem(req, len, "\r\n\r\n", 4);
    const char *result = "true";
    if (memmem(req, len < 200 ? len : 200, "/getMe", 6))
        result = "{\"id\":4242,\"is_bot\":true,\"first_name\":\"Bench\","
                 "\"username\":\"bench_bot\"}";
    else if (memmem(req, len < 200 ? len : 200, "/sendMessage", 12)) {
        result = "{\"message_id\":1,\"date\":0,\"chat\":{\"id\":1,\"type\":\"supergroup\"}}";
        const char *k = body ? memmem(body, len - (size_t)(body - req),
                                      "\"reply_to_message_id\":", 22)
                             : NULL;
        if (k) {
            uint64_t id = strtoull(k + 22, NULL, 10);
            if (id >= B.start_id && id - B.start_id < B.cap) {
                if (B.t_answer[id - B.start_id])
                    B.dup_answers++;
                else {
                    B.t_answer[id - B.start_id] = now_ns();
                    B.answers++;
                }
            }
        }
    }
    char out[512];
    char json[400];
    int jl = snprintf(json, sizeof json, "{\"ok\":true,\"result\":%s}", result);
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s", jl, json);
    if (write(c->fd, out, (size_t)n) < 0)
        B.errors++;
}

static void on_readable(struct conn *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
            watch(c, 0, EPOLL_CTL_DEL);
            close(c->fd);
            if (c->kind == CLIENT) { /* reconnect; what was in flight is lost */
                B.errors++;
                c->busy = false;
                c->inlen = 0;
                c->fd = connect_target();
                watch(c, EPOLLIN, EPOLL_CTL_ADD);
            } else {
                free(c);
            }
            return;
        }
        if (r < 0)
            break;
        c->inlen += (size_t)r;
    }
    long clen;
    size_t n;
    while ((n = message_len(c, &clen))) {
        if (c->kind == MOCK_CONN) {
            mock_answer(c, c->in, n);
        } else {
            int status = (int)strtol(c->in + 9, NULL, 10);
            if (B.nrtt < B.cap)
                B.rtt[B.nrtt++] = now_ns() - B.t_sent[c->id - B.start_id];
            if (status == 200)
                B.ok++;
            else
                B.bad++;
            c->busy = false;
        }
        consume(c, n);
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc - 1; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port")) B.port = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--path")) B.path = v;
        else if (!strcmp(k, "--header")) B.header = v;
        else if (!strcmp(k, "--mock")) B.mock_port = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--conns")) B.conns = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--seconds")) B.seconds = strtod(v, NULL);
        else if (!strcmp(k, "--grace")) B.grace = strtod(v, NULL);
        else if (!strcmp(k, "--rate")) B.rate = strtod(v, NULL);
        else if (!strcmp(k, "--users")) B.users = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--chats")) B.chats = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--start-id")) B.start_id = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--bare")) B.bare = strcmp(v, "0") != 0;
        else {
            fprintf(stderr, "fdbench: unknown option %s\n", k);
            return 2;
        }
    }
    B.cap = 8u << 20;
    B.t_sent = calloc(B.cap, sizeof *B.t_sent);
    B.t_answer = calloc(B.cap, sizeof *B.t_answer);
    B.rtt = calloc(B.cap, sizeof *B.rtt);
    B.next_id = B.start_id;
    B.ep = epoll_create1(0);
    if (!B.t_sent || !B.t_answer || B.ep < 0)
        die("setup");

    if (B.mock_port) {
        struct conn *l = calloc(1, sizeof *l);
        l->kind = MOCK_LISTEN;
        l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)B.mock_port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (bind(l->fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(l->fd, 512) < 0)
            die("mock listen");
        watch(l, EPOLLIN, EPOLL_CTL_ADD);
    }
    /* With only --mock (no --port), serve the mock until stdin closes. */
    struct conn *clients = B.port ? calloc((size_t)B.conns, sizeof *clients) : NULL;
    for (int i = 0; B.port && i < B.conns; i++) {
        clients[i].kind = CLIENT;
        clients[i].fd = connect_target();
        watch(&clients[i], EPOLLIN, EPOLL_CTL_ADD);
    }
    if (!B.port) {
        struct conn *in = calloc(1, sizeof *in);
        in->kind = -1;
        in->fd = 0;
        watch(in, EPOLLIN, EPOLL_CTL_ADD);
    }

    uint64_t t0 = now_ns(), load_end = t0 + (uint64_t)(B.seconds * 1e9);
    uint64_t end = load_end + (uint64_t)(B.grace * 1e9);
    double interval = B.rate > 0 ? 1e9 / B.rate : 0;
    uint64_t next_at = t0;
    bool loading = B.port != 0;
    struct epoll_event ev[256];
    for (;;) {
        uint64_t now = now_ns();
        if (B.port && now >= end)
            break;
        if (loading && now >= load_end)
            loading = false;
        if (loading) {
            for (int i = 0; i < B.conns; i++) {
                struct conn *c = &clients[i];
                if (c->busy)
                    continue;
                if (interval > 0) {
                    if (now < next_at)
                        break;
                    next_at += (uint64_t)interval;
                }
                send_update(c);
            }
        }
        int timeout = 1;
        if (interval > 0 && loading && next_at > now)
            timeout = (int)((next_at - now) / 1000000);
        int n = epoll_wait(B.ep, ev, 256, timeout);
        for (int i = 0; i < n; i++) {
            struct conn *c = ev[i].data.ptr;
            if (c->kind == -1) {
                char buf[64];
                if (read(0, buf, sizeof buf) <= 0)
                    return 0;
                continue;
            }
            if (c->kind == MOCK_LISTEN) {
                int fd;
                while ((fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct conn *m = calloc(1, sizeof *m);
                    m->kind = MOCK_CONN;
                    m->fd = fd;
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    watch(m, EPOLLIN, EPOLL_CTL_ADD);
                }
                continue;
            }
            if ((ev[i].events & EPOLLOUT) && c->kind == CLIENT && c->outoff < c->outlen) {
                ssize_t w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
                if (w > 0)
                    c->outoff += (size_t)w;
                if (c->outoff >= c->outlen)
                    watch(c, EPOLLIN, EPOLL_CTL_MOD);
            }
            if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
        }
    }
    /* Results. */
    uint64_t nlat = 0, lost = 0, in_window = 0;
    uint64_t *lat = malloc((B.next_id - B.start_id + 1) * sizeof *lat);
    for (uint64_t id = B.start_id; id < B.next_id; id++) {
        uint64_t s = B.t_sent[id - B.start_id], a = B.t_answer[id - B.start_id];
        if (a) {
            lat[nlat++] = a > s ? a - s : 0;
            in_window += a <= load_end;
        }
        else if (!B.bare)
            lost++;
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    qsort(B.rtt, B.nrtt, sizeof *B.rtt, cmp_u64);
    double secs = B.seconds;
    printf("sent=%llu ok=%llu non200=%llu errors=%llu resp_per_s=%.0f answers=%llu "
           "answers_per_s=%.0f dup_answers=%llu lost=%llu p50_ms=%.3f p99_ms=%.3f "
           "max_ms=%.3f rtt_p50_ms=%.3f rtt_p99_ms=%.3f\n",
           (unsigned long long)B.sent, (unsigned long long)B.ok,
           (unsigned long long)B.bad, (unsigned long long)B.errors, B.ok / secs,
           (unsigned long long)B.answers, in_window / secs,
           (unsigned long long)B.dup_answers, (unsigned long long)lost,
           nlat ? lat[nlat / 2] / 1e6 : 0, nlat ? lat[nlat * 99 / 100] / 1e6 : 0,
           nlat ? lat[nlat - 1] / 1e6 : 0, B.nrtt ? B.rtt[B.nrtt / 2] / 1e6 : 0,
           B.nrtt ? B.rtt[B.nrtt * 99 / 100] / 1e6 : 0);
    free(lat);
    return 0;
}
