/*
 * slack.h - what the Slack plugin's files share (private to the plugin;
 * only plugin_api.h is the ABI).
 *
 *   slack.c    the plugin table, configuration, start/stop, the Web API
 *              call plumbing, the JSON helpers and auth.test
 *   socket.c   Socket Mode: apps.connections.open, the websocket, hello,
 *              acks, disconnect/refresh and reconnects
 *   inbound.c  turning an Events API payload into an fd_msg (both modes)
 *              and the Events API webhook (mode = events)
 *   send.c     chat.postMessage / conversations.open for the outbox
 *
 * Everything runs on the daemon's loop thread.
 */
#ifndef FRONTDESK_SLACK_H
#define FRONTDESK_SLACK_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin_api.h"
#include "progress.h"

#define API_HTTP_MS 20000 /* every Web API call */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define AUTH_BACKOFF_MAX_MS 300000 /* a refused token: retry every 5 min */
#define HELLO_MS 10000             /* from websocket open to Slack's hello */
#define HEALTHY_MS 10000       /* a connection up this long was no failure */
#define LINK_DISABLED_MS 60000 /* Socket Mode turned off: ask again after */
#define MAX_TEXT_CHARS 4000    /* per message; Slack truncates at 40,000 */
#define MAX_PARTS 10           /* longer texts are cut after this many */
#define DM_CACHE 256           /* user id -> DM channel id */
#define ID_MAX 40              /* Slack ids (U, C, D, T, B...) fit easily */
#define TS_MAX 32              /* "1355517523.000005" */
#define SIG_WINDOW_S 300       /* v0 signatures: 5 minutes either way */

/* The host's service table, set once by init; H for short. */
extern const struct fd_host *sk_host;
#define H sk_host

enum sk_call_kind {
    CALL_AUTH = 0, /* auth.test */
    CALL_OPEN,     /* apps.connections.open */
    CALL_SEND,     /* chat.postMessage */
    CALL_DMOPEN,   /* conversations.open */
};

struct ssend;

/* One Web API call in flight; owned by its done callback once issued. */
struct call {
    struct sk *sk;
    enum sk_call_kind kind;
    struct ssend *s; /* CALL_SEND / CALL_DMOPEN: owned */
};

/* One outbox action being carried out, possibly in several messages. */
struct ssend {
    struct fd_send *token;
    enum fd_action_kind kind;
    int64_t action_id;
    char channel[ID_MAX]; /* where it goes (a DM: filled by conversations.open)
                           */
    char user[ID_MAX];    /* DM: whose */
    char thread_ts[TS_MAX]; /* "" for none */
    bool need_open;         /* DM: the DM channel is not known yet */
    bool from_cache;        /* channel came from the DM cache */
    char *text;
    size_t start[MAX_PARTS], end[MAX_PARTS]; /* part i: text[start, end) */
    size_t nparts, part;
};

struct dm_entry {
    char user[ID_MAX];
    char channel[ID_MAX];
};

enum sk_phase { PH_AUTH = 0, PH_READY };

/* Per-channel state. */
struct sk {
    struct fd_channel *ch;
    bool socket_mode;
    char *api;      /* api_url without a trailing '/' */
    char *auth_bot; /* "Authorization: Bearer xoxb-...": never logged */
    char *auth_app; /* "Authorization: Bearer xapp-..." (socket mode) */
    char *signing_secret;
    enum sk_phase phase;
    int failures; /* auth.test failures in a row */
    struct fd_timer *ctl_timer;
    char bot_user[ID_MAX]; /* auth.test user_id: the bot's own user */
    char bot_id[ID_MAX];   /* auth.test bot_id */
    char team_id[ID_MAX];
    /* Socket Mode (socket.c) */
    struct fd_conn *cur;  /* the connection that said hello last */
    struct fd_conn *next; /* one being set up (start, reconnect, refresh) */
    struct fd_conn *old;  /* the previous `cur`, read a little longer */
    struct fd_timer *old_timer;
    struct fd_timer *hello_timer; /* for `next` */
    struct fd_timer *sock_timer;  /* the next apps.connections.open */
    bool opening;                 /* apps.connections.open in flight */
    int sock_failures;            /* connects that came to nothing, in a row */
    int64_t cur_hello_ms;
    bool warned_foreign;
    /* send.c */
    struct dm_entry dms[DM_CACHE];
    size_t ndms, dm_next;
    struct progress_table prog; /* split sends, across retries */
};

/* A Web API answer: HTTP status, and `ok` / `error` of the body. */
struct answer {
    cJSON *doc;        /* owns the strings; free with cJSON_Delete */
    bool ok;           /* HTTP 2xx and "ok": true */
    const char *error; /* the body's "error", or NULL */
    bool transient;    /* worth retrying (429, 5xx, network, internal) */
    int wait_ms;       /* Retry-After in ms, or 0 */
};

/* slack.c: JSON helpers; every getter takes NULL and wrong types. */
const char *sk_str(const cJSON *o, const char *key);
const cJSON *sk_obj(const cJSON *o, const char *key);
/* A Slack id or ts as we accept it: 1..max-1 of [A-Za-z0-9._-]. */
bool sk_is_id(const char *s, size_t max);
int64_t sk_now_ms(void);

/* slack.c: POSTs to `method` with c as the done context.  `body` (JSON,
 * or NULL for an empty form POST) is freed here.  app: use the app-level
 * token.  Returns 0 when the call is in flight (c is then freed after
 * its done callback), -1 when it could not start (the caller still owns c). */
int sk_api_call(struct sk *sk, struct call *c, const char *method, char *body,
                bool app);
void sk_answer_parse(const struct fd_http_response *r, struct answer *a);
/* A short reason for the log ("HTTP 429", "channel_not_found"): never the
 * URL, never a token. */
void sk_describe(char *out, size_t len, const struct fd_http_response *r,
                 const struct answer *a);
/* The start-up chain: auth.test, then (socket mode) the websocket. */
void sk_ctl_step(struct sk *sk);

/* socket.c */
void sk_sock_begin(struct sk *sk);
void sk_sock_open_done(struct sk *sk, const struct fd_http_response *r);
void sk_ws_event(struct fd_channel *ch, struct fd_conn *c, enum fd_ws_event ev,
                 const char *data, size_t len);
void sk_sock_stop(struct sk *sk);

/* inbound.c: one Events API payload (the HTTP body, or a Socket Mode
 * envelope's payload).  Returns FD_OK / FD_DUPLICATE (also for events
 * that are not for us), or a negative code when the core could not record
 * a message (then the platform must send it again). */
int sk_handle_payload(struct sk *sk, const cJSON *payload, const char *via);
void sk_webhook(struct fd_channel *ch, const struct fd_http_in *req,
                struct fd_http_reply *reply);

/* send.c */
int sk_send(struct fd_channel *ch, const struct fd_action *a,
            struct fd_send *token);
void sk_send_done(struct sk *sk, struct call *c,
                  const struct fd_http_response *r);
void sk_ssend_free(struct ssend *s);

#endif
