/*
 * discord.h - what the Discord plugin's files share (private to the plugin;
 * only plugin_api.h is the ABI).
 *
 *   discord.c  the plugin table, configuration, start/stop, the REST call
 *              plumbing (auth header, 429 holds) and the JSON helpers
 *   gateway.c  the Gateway v10 websocket: Hello, heartbeats with ACK
 *              tracking, Identify/Resume, READY, op 7/9, close handling
 *   message.c  MESSAGE_CREATE -> fd_msg
 *   send.c     replies, DMs (open the DM channel, then post) and deletes
 *              for the outbox
 *
 * Plugin state in the channel's key/value store (shared with the channel's
 * script, hence the "_discord." prefix):
 *   _discord.gateway       {"session_id","resume_url","seq","at"}: the last
 *                          session, so a restart resumes instead of losing
 *                          what was said meanwhile
 *   _discord.nodm.<user>   the case whose DM the user's settings refused;
 *                          the user's next DM to the bot continues it
 *
 * Everything runs on the daemon's loop thread.
 */
#ifndef FRONTDESK_DISCORD_H
#define FRONTDESK_DISCORD_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin_api.h"
#include "progress.h"

#define API_DEFAULT "https://discord.com/api/v10"
#define API_HTTP_MS 20000
#define USER_AGENT "User-Agent: DiscordBot (frontdesk, 1.0)"
/* GUILD_MESSAGES (1<<9) | DIRECT_MESSAGES (1<<12) | MESSAGE_CONTENT (1<<15).
 * Not GUILDS: its GUILD_CREATE payloads (every channel, role and member
 * list of a guild) can outgrow the host's 1 MiB websocket message limit and
 * a support bot needs none of it. */
#define INTENTS 37376
#define MAX_TEXT_UNITS 2000 /* content limit, counted in UTF-16 units */
#define MAX_PARTS 5         /* a longer text is cut after this many messages */
#define MAX_HOLDS 32        /* routes with a 429 hold */
#define DM_CACHE 128        /* user id -> DM channel id */
#define MAX_WAIT_MS 3600000 /* the longest platform wait we honour */
#define SNOWFLAKE_MAX 20    /* digits of a 64-bit id */
#define NODM_PREFIX "_discord.nodm."

/* Gateway timings (ms). */
#define HELLO_TIMEOUT_MS 20000 /* connect .. Hello */
#define READY_TIMEOUT_MS 30000 /* Identify/Resume .. READY/RESUMED */
#define CLOSE_GUARD_MS 5000    /* ws_close .. CLOSED, else the conn is left */
#define RECONNECT_MIN_MS 1000
#define RECONNECT_MAX_MS 60000
#define SUSPECT_WAIT_MS 300000 /* after EARLY_CLOSES refusals in a row */
#define EARLY_CLOSES 3
#define RESUME_TRIES 4       /* failed connections before a new session */
#define IDENTIFY_GAP_MS 5000 /* one Identify per 5 s (max_concurrency 1) */
#define SESSION_KEEP_S 600   /* an older saved session is not tried */

/* The host's service table, set once by init; H for short. */
extern const struct fd_host *dsc_host;
#define H dsc_host

enum call_kind { CALL_GATEWAY_BOT = 0, CALL_TOKEN_CHECK, CALL_SEND };

struct dsc;
struct dsend;

/* One HTTP call in flight; freed after its done callback. */
struct call {
    struct dsc *d;
    enum call_kind kind;
    struct dsend *s; /* CALL_SEND: owned */
};

/* The parsed error/answer of a REST call.  `doc` owns the strings. */
struct answer {
    cJSON *doc;
    int code;            /* Discord's JSON error code, or 0 */
    const char *message; /* its message, or NULL */
    int wait_ms;         /* 429: retry_after (body, else header), or 0 */
    bool global;         /* 429: the bot's global limit */
};

enum gw_phase {
    GW_IDLE = 0,   /* a timer will start the next step */
    GW_FETCH,      /* GET /gateway/bot in flight */
    GW_CONNECTING, /* ws_connect issued, no Hello yet */
    GW_IDENTIFYING,
    GW_RESUMING,
    GW_READY,
    GW_CLOSING,  /* we closed it; CLOSED (or the guard) starts the next */
    GW_CHECKING, /* an unexplained refusal: checking the token over REST */
    GW_DEAD,     /* a close code that forbids reconnecting */
};

/* After our own close: what the next connection does. */
enum gw_next { NEXT_RESUME = 0, NEXT_IDENTIFY };

struct hold {
    char route[48];
    int64_t until; /* monotonic ms */
};

struct dm_entry {
    char user[SNOWFLAKE_MAX + 1];
    char chan[SNOWFLAKE_MAX + 1];
};

/* Per-channel state. */
struct dsc {
    struct fd_channel *ch;
    char *api;   /* api_url without a trailing '/' */
    char *token; /* for Identify/Resume: never logged */
    char *auth;  /* "Authorization: Bot <token>": never logged */

    /* REST rate limits learnt from 429 answers (the host gives plugins no
     * response headers, so X-RateLimit-* cannot be followed ahead). */
    int64_t global_until;
    struct hold holds[MAX_HOLDS];
    struct dsend *deferred; /* sends waiting for a hold to pass */
    struct fd_timer *defer_timer;
    int64_t defer_at;

    /* gateway */
    enum gw_phase phase;
    struct fd_conn *conn; /* the current connection, or NULL */
    bool conn_open;       /* it got FD_WS_OPEN */
    char *gateway_url;    /* from /gateway/bot, with ?v=10&encoding=json */
    char *resume_url;     /* from READY, with the same query */
    char *session_id;
    int64_t seq;       /* last dispatch handled; 0: none */
    int64_t saved_seq; /* what the key/value store holds */
    char self_id[SNOWFLAKE_MAX + 1];
    int hb_interval; /* ms, from Hello */
    bool hb_awaiting_ack;
    struct fd_timer *hb_timer;
    struct fd_timer *gw_timer; /* reconnect, handshake timeout, close guard */
    int next_delay_ms;         /* after our own close */
    int failures;              /* connections in a row that never got READY */
    int early_closes;          /* closed after Identify/Resume, before READY */
    int64_t last_identify;     /* monotonic ms */
    int64_t replayed;          /* dispatches since Resume, for the log */
    bool warned_content;       /* the MESSAGE_CONTENT hint was logged */
    bool frozen;               /* draining: `seq` no longer moves */

    struct dm_entry dms[DM_CACHE];
    size_t dm_next;
    struct progress_table prog; /* split sends, across retries */
};

/* discord.c: helpers */
int64_t dsc_now_ms(void);
const char *dsc_json_str(const cJSON *o, const char *key);
const cJSON *dsc_json_obj(const cJSON *o, const char *key);
bool dsc_json_int64(const cJSON *o, const char *key, int64_t *out);
bool dsc_is_snowflake(const char *s);
/* A random integer in [0, n) (n > 0). */
int dsc_random(int n);
/* Cuts s to at most max bytes on a UTF-8 boundary (for log excerpts). */
int dsc_utf8_prefix(const char *s, size_t max);

/* discord.c: REST.  Issues `method path` (body: JSON, borrowed) with c as
 * the done context.  0 when in flight (c is freed after its done
 * callback), -1 when it could not start (the caller still owns c). */
int dsc_rest(struct dsc *d, struct call *c, const char *method,
             const char *path, const char *body);
/* Fills *a from a response; free a->doc with cJSON_Delete. */
void dsc_answer_parse(const struct fd_http_response *r, struct answer *a);
/* "HTTP 403 (50007: Cannot send messages to this user)": never the URL. */
void dsc_describe(char *out, size_t len, const struct fd_http_response *r,
                  const struct answer *a);
/* The moment (monotonic ms) before which `route` must not be called. */
int64_t dsc_hold_until(struct dsc *d, const char *route);
void dsc_hold_set(struct dsc *d, const char *route, bool global, int ms);

/* gateway.c */
void dsc_gw_start(struct dsc *d);
void dsc_gw_http_done(struct dsc *d, enum call_kind kind,
                      const struct fd_http_response *r);
void dsc_ws_event(struct fd_channel *ch, struct fd_conn *c, enum fd_ws_event ev,
                  const char *data, size_t len);
/* Parses the saved session (start-up). */
void dsc_gw_load(struct dsc *d);

/* message.c: one MESSAGE_CREATE `d`.  0 when done with it (delivered,
 * duplicate or ignored), the core's negative code when not recorded. */
int dsc_message_create(struct dsc *d, const cJSON *m);

/* send.c */
int dsc_send(struct fd_channel *ch, const struct fd_action *a,
             struct fd_send *token);
void dsc_send_done(struct dsc *d, struct call *c,
                   const struct fd_http_response *r);
void dsend_free(struct dsend *s);
void dsc_deferred_free(struct dsc *d);

#endif
