/* test_loop.c - timers on the real loop fire when due, also when a later
 * one was scheduled while an earlier one was pending, and a cancelled one
 * never fires.  (lws 4.1.6 does not end its poll() for sul timers, so each
 * of these would otherwise wait for an unrelated event: seconds.)  The
 * bounds are generous: they tell "on time" from "stalled", not speed. */
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "loop.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct shot {
    int due_ms;
    int64_t fired_ms; /* 0: not fired */
};

static int64_t t0;
static int pending;

static void on_shot(void *ud)
{
    struct shot *s = ud;
    s->fired_ms = mono_ms() - t0;
    if (--pending == 0)
        loop_stop();
}

static void on_guard(void *ud)
{
    (void)ud;
    loop_stop();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(60); /* a stalled loop fails the run instead of hanging it */
    struct config cfg = {0};
    cfg.listen_host = "127.0.0.1";
    cfg.listen_port = 0;
    cfg.max_conns = 16;
    CHECK(loop_init(&cfg) == 0, "loop starts");

    /* Earliest first, so each later timer is scheduled while an earlier
     * wake-up is armed; then one cancelled in between. */
    struct shot s[3] = {{100, 0}, {300, 0}, {600, 0}};
    struct shot never = {200, 0};
    t0 = mono_ms();
    struct loop_timer *t[3], *c = loop_timer_new(on_shot, &never);
    for (int i = 0; i < 3; i++) {
        t[i] = loop_timer_new(on_shot, &s[i]);
        loop_timer_schedule(t[i], s[i].due_ms);
    }
    loop_timer_schedule(c, never.due_ms);
    loop_timer_stop(c);
    pending = 3;
    struct loop_timer *guard = loop_timer_new(on_guard, NULL);
    loop_timer_schedule(guard, 10000);
    loop_run();

    for (int i = 0; i < 3; i++) {
        char name[96];
        snprintf(name, sizeof name, "the %d ms timer fired, not early, not stalled (%lld ms)",
                 s[i].due_ms, (long long)s[i].fired_ms);
        CHECK(s[i].fired_ms >= s[i].due_ms && s[i].fired_ms < s[i].due_ms + 1500, name);
    }
    CHECK(s[0].fired_ms <= s[1].fired_ms && s[1].fired_ms <= s[2].fired_ms,
          "timers fire in due order");
    CHECK(never.fired_ms == 0, "a cancelled timer does not fire");

    /* Re-scheduling replaces: the timer fires once, at the new time. */
    struct shot r = {400, 0};
    struct loop_timer *rt = loop_timer_new(on_shot, &r);
    t0 = mono_ms();
    loop_timer_schedule(rt, 50);
    loop_timer_schedule(rt, r.due_ms);
    pending = 1;
    loop_timer_schedule(guard, 10000);
    loop_run();
    CHECK(r.fired_ms >= r.due_ms && r.fired_ms < r.due_ms + 1500,
          "a re-scheduled timer fires at its new time");

    for (int i = 0; i < 3; i++)
        loop_timer_free(t[i]);
    loop_timer_free(c);
    loop_timer_free(rt);
    loop_timer_free(guard);
    loop_cleanup();
    return CHECK_DONE();
}
