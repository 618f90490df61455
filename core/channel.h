/*
 * channel.h - the core's view of one configured channel (struct fd_channel,
 * opaque to plugins) and the loop resources it owns.  Everything a channel
 * started (HTTP calls, timers, websocket connections) is linked here so that
 * stopping a channel cancels all of it before the plugin frees its state.
 */
#ifndef FRONTDESK_CHANNEL_H
#define FRONTDESK_CHANNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "plugin_api.h"

struct conf_channel;
struct plugin;
struct router;
struct script;
struct outq;
struct fd_http_call;
struct fd_timer;
struct fd_conn;

struct fd_channel {
    char *name;
    const char *platform;            /* plugin name, or --platform in try */
    const struct conf_channel *conf; /* borrowed from the config */
    struct plugin *plugin;           /* NULL in offline runs (try/test) */
    const struct fd_plugin *def;     /* the plugin's callbacks, or NULL */
    unsigned caps;
    char *script_path;
    char *lib_dir;
    struct script *script;
    struct router *router;
    struct outq *outq;
    void *data;                      /* the plugin's */
    struct fd_http_call *calls;         /* in flight, doubly linked */
    struct fd_timer *timers;
    struct fd_conn *conns;
    double rate_per_s, chat_per_min, dm_per_min; /* 0: no limit */
    bool started, stopping;
    uint64_t unchecked_batch;        /* router: the batch of the first
                                        delivery since host->commit; 0 none */
    uint64_t counters[9];            /* see enum channel_counter */
};

enum channel_counter {
    CNT_IN = 0,      /* messages accepted */
    CNT_DUP,         /* duplicate deliveries dropped */
    CNT_SCRIPT_ERR,  /* script errors / budget overruns */
    CNT_SENT,        /* actions the platform accepted */
    CNT_RETRY,       /* sends to be retried */
    CNT_DEAD,        /* actions given up */
    CNT_REFUSED,     /* webhook requests refused (401/400/413) */
    CNT_RELOAD,      /* script reloads */
    CNT_THROTTLED,   /* sends delayed by a rate limit */
};

#endif
