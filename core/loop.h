/*
 * loop.h - the one event loop: a libwebsockets context on its default poll
 * loop.  It serves the HTTP listener and websocket connections; curl's
 * sockets (http.c), the inotify and signal descriptors are adopted into it
 * as raw file descriptors; every periodic job is an lws_sul timer.
 */
#ifndef FRONTDESK_LOOP_H
#define FRONTDESK_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "plugin_api.h"

struct config;
struct lws_context;
struct lws_vhost;

/* Creates the context and the listener; <0 with a logged reason. */
int loop_init(const struct config *cfg);
void loop_cleanup(void);
/* Serves until loop_stop(). */
void loop_run(void);
/* lws_sul_schedule that also wakes the loop when the timer is due. */
struct lws_sorted_usec_list;
void loop_sul_schedule(struct lws_sorted_usec_list *sul,
                       void (*cb)(struct lws_sorted_usec_list *sul),
                       int64_t us);
/* Cancels what loop_sul_schedule scheduled. */
void loop_sul_cancel(struct lws_sorted_usec_list *sul);
/* fn runs after every turn of the loop (after each lws_service and timer
 * callback), again and again while any such fn returns true (it did work,
 * which may have made work for the others). */
void loop_on_turn(bool (*fn)(void));
/* Runs the end-of-turn work now (after timer callbacks). */
void loop_turn_end(void);
void loop_stop(void);
struct lws_context *loop_context(void);
struct lws_vhost *loop_vhost(void);

typedef void (*loop_fd_fn)(int fd, void *ud);
struct loop_watch;
/* Calls fn when fd is readable.  The loop watches a dup of fd; the caller
 * keeps owning (and closes) fd after loop_unwatch. */
struct loop_watch *loop_watch_fd(int fd, loop_fd_fn fn, void *ud);
void loop_unwatch(struct loop_watch *w);

/* Plugin timers (plugin_api.h), tied to their channel. */
struct fd_timer *loop_timer_add(struct fd_channel *ch, int ms, fd_timer_fn fn,
                                void *ud);
void loop_timer_cancel(struct fd_timer *t);
void loop_timer_cancel_channel(struct fd_channel *ch);

/* A core timer: fn(ud) once after ms; re-scheduling replaces. */
struct loop_timer;
struct loop_timer *loop_timer_new(void (*fn)(void *ud), void *ud);
void loop_timer_schedule(struct loop_timer *t, int ms);
void loop_timer_stop(struct loop_timer *t);
void loop_timer_free(struct loop_timer *t);

#endif
