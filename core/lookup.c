/*
 * lookup.c - host names resolved off the loop (see lookup.h).
 *
 * A lookup's thread fills in its result, marks it done and wakes the loop
 * through an eventfd; the loop takes the finished ones off its list, joins
 * their threads and calls back.  glibc's getaddrinfo_a would do the same,
 * but its exit-time cleanup (__libc_freeres, run under valgrind) frees
 * pointers it never initialised once it has been used at all (glibc 2.36),
 * so the daemon could not be checked with valgrind.
 *
 * Threading: a lookup's thread reads host and writes err and res, then
 * sets done (release); the loop reads them only after seeing done
 * (acquire).  Everything else is the loop thread's.
 */
#include "lookup.h"

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop.h"

struct lookup {
    struct lookup *next;
    pthread_t thread;
    char *host;
    int err;
    struct addrinfo *res;
    atomic_bool done;
    lookup_fn fn; /* NULL: cancelled */
    void *ud;
};

static struct {
    int efd; /* set once, before the first thread; never closed */
    struct loop_watch *watch; /* for the daemon's lifetime */
    struct lookup *list;
} L = {.efd = -1};

static void *run(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    l->err = getaddrinfo(l->host, NULL, &hints, &l->res);
    atomic_store_explicit(&l->done, true, memory_order_release);
    uint64_t one = 1;
    ssize_t w = write(L.efd, &one, sizeof one);
    (void)w; /* the counter cannot overflow with one write per lookup */
    return NULL;
}

static void on_wake(int fd, void *ud)
{
    (void)ud;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
    /* Take the finished ones off the list first: callbacks may start new
     * lookups. */
    struct lookup *done = NULL, **pp = &L.list;
    while (*pp) {
        struct lookup *l = *pp;
        if (!atomic_load_explicit(&l->done, memory_order_acquire)) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        l->next = done;
        done = l;
    }
    while (done) {
        struct lookup *l = done;
        done = l->next;
        pthread_join(l->thread, NULL);
        /* An earlier callback in this batch may cancel this one. */
        if (l->fn)
            l->fn(l->ud, l->err, l->err ? NULL : l->res);
        else if (!l->err)
            freeaddrinfo(l->res);
        free(l->host);
        free(l);
    }
}

struct lookup *lookup_start(const char *host, lookup_fn fn, void *ud)
{
    if (L.efd < 0) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0)
            return NULL;
        L.watch = loop_watch_fd(fd, on_wake, NULL);
        if (!L.watch) {
            close(fd);
            return NULL;
        }
        L.efd = fd;
    }
    struct lookup *l = calloc(1, sizeof *l);
    if (!l || !(l->host = strdup(host))) {
        free(l);
        return NULL;
    }
    l->fn = fn;
    l->ud = ud;
    atomic_init(&l->done, false);
    /* The thread takes no signals: they belong to the loop's signalfd. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&l->thread, NULL, run, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free(l->host);
        free(l);
        return NULL;
    }
    l->next = L.list;
    L.list = l;
    return l;
}

void lookup_cancel(struct lookup *l)
{
    if (l) {
        l->fn = NULL;
        l->ud = NULL;
    }
}
