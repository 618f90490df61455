/*
 * mattermost.h - what the Mattermost plugin's files share (private to the
 * plugin; only plugin_api.h is the ABI).
 *
 *   mattermost.c  the plugin table, configuration, start/stop, the REST
 *                 plumbing, JSON and id helpers, the small caches
 *   socket.c      the websocket: connect, authenticate, hello, event
 *                 sequence numbers, ping, reconnect (resuming where the
 *                 server still has the missed events)
 *   inbound.c     start-up calls (users/me, client config), turning a post
 *                 into an fd_msg, and the REST catch-up of posts missed
 *                 while the websocket was down (or the daemon stopped)
 *   send.c        posts, direct channels and deletes for the outbox
 *
 * Everything runs on the daemon's loop thread.
 */
#ifndef FRONTDESK_MATTERMOST_H
#define FRONTDESK_MATTERMOST_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin_api.h"
#include "progress.h"

#define ID_LEN 26 /* Mattermost ids: 26 characters of [a-z0-9] */
#define ID_BUF (ID_LEN + 1)

#define API_HTTP_MS 20000       /* every REST call */
#define CTL_BACKOFF_MIN_MS 1000 /* start-up calls, catch-up retries */
#define CTL_BACKOFF_MAX_MS 60000
#define WS_BACKOFF_MIN_MS 1000 /* reconnects */
#define WS_BACKOFF_MAX_MS 60000
#define PING_INTERVAL_MS 30000 /* like Mattermost's own clients */
/* Posts are broadcast a little after their create_at: look back this far. */
#define CATCHUP_SLACK_MS 10000
#define CATCHUP_MAX_AGE_MS (24LL * 3600 * 1000) /* after a long outage */
#define CATCHUP_PAGE_FULL 1000 /* `since` answers at most this many */
#define CATCHUP_MAX_ROUNDS 20  /* pages of one channel per catch-up */
#define CURSOR_SAVE_MS 2000    /* the cursor is persisted this often */
#define DEFAULT_MAX_RUNES 4000 /* until the server tells MaxPostSize */
#define MAX_PARTS 8            /* longer texts are cut after this many */
#define MAX_KNOWN 1024         /* channels seen (catch-up fallback) */
#define MAX_DMS 256            /* user -> direct channel */
#define MAX_USERS 512          /* user -> names */
#define MAX_HIDDEN 64          /* posts we deleted (no thread under them) */
#define HANDLE_MAX 64
#define USER_NAME_BYTES 128

/* The host's service table, set once by init; H for short. */
extern const struct fd_host *mm_host;
#define H mm_host

enum mm_phase { PH_ME = 0, PH_CONFIG, PH_LIVE };

enum call_kind {
    CALL_ME = 0,
    CALL_CONFIG,
    CALL_CHANNELS, /* catch-up: the bot's channels */
    CALL_POSTS,    /* catch-up: one channel's posts since */
    CALL_USERS,    /* catch-up: names of the authors */
    CALL_SEND,
};

struct msend;

/* One HTTP call in flight; owned by its done callback once issued. */
struct call {
    struct mm *mm;
    enum call_kind kind;
    unsigned gen;    /* catch-up calls: the run they belong to */
    struct msend *s; /* CALL_SEND: owned */
};

/* One outbox action being carried out, possibly in several posts. */
struct msend {
    struct fd_send *token;
    enum fd_action_kind kind;
    int64_t action_id, case_id;
    char chat[ID_BUF]; /* REPLY: channel; DM: the direct channel once known */
    char user[ID_BUF]; /* DM: the recipient */
    char root[ID_BUF]; /* REPLY: thread root, or "" */
    char post[ID_BUF]; /* HIDE: the post */
    bool opening_dm;   /* DM: the current call is channels/direct */
    bool dm_cached;    /* DM: chat came from the cache */
    bool dropped_root; /* REPLY: retried without root_id once */
    char *text;
    size_t start[MAX_PARTS], end[MAX_PARTS]; /* part i: text[start, end) */
    size_t nparts, part;
};

struct known_chan {
    char id[ID_BUF];
    char type; /* O P D G */
    uint64_t used;
};

struct dm_entry {
    char user[ID_BUF];
    char chan[ID_BUF];
    uint64_t used;
};

struct user_entry {
    char id[ID_BUF];
    char handle[HANDLE_MAX + 1];
    char name[USER_NAME_BYTES + 1];
    uint64_t used;
};

/* One channel the catch-up visits. */
struct cu_chan {
    char id[ID_BUF];
    char type;
};

/* Per-channel state. */
struct mm {
    struct fd_channel *ch;
    char *api;    /* <api_url>/api/v4 */
    char *ws_url; /* ws(s)://.../api/v4/websocket */
    char *auth;   /* "Authorization: Bearer <token>": never logged */
    char *token;
    char bot_id[ID_BUF];
    char bot_name[HANDLE_MAX + 1];
    char nonce[13]; /* random, per start: part of every pending_post_id */
    int max_runes;
    enum mm_phase phase;
    int ctl_failures;
    uint64_t tick; /* LRU clock of the caches */

    /* websocket (socket.c) */
    struct fd_conn *conn;
    bool conn_open, conn_up; /* up: hello or a pong seen on it */
    char conn_id[ID_BUF];    /* the server's connection_id, for resuming */
    int64_t next_seq;        /* event seq expected next; -1: take any */
    int64_t req_seq;         /* our actions' seq on this connection */
    int64_t ping_seq;        /* the unanswered ping, or 0 */
    int ws_failures;
    struct fd_timer *ws_timer, *ping_timer;
    bool warned_foreign;

    /* catch-up (inbound.c).  cursor: server ms such that every post
     * created before it (less the slack) was handed to the core.  Held
     * (frozen) from a gap or a failed delivery until a catch-up covered
     * it; seen_max is the newest time known. */
    int64_t cursor, seen_max, saved_cursor, saved_at;
    bool frozen;
    unsigned gap_gen; /* bumped by every reason to catch up */
    bool cu_running, cu_failed;
    unsigned cu_gen, cu_run;     /* gap_gen at start; run number */
    unsigned ws_epoch, cu_epoch; /* connections lost; at the run's start */
    int64_t cu_anchor;           /* seen_max at the run's start */
    int64_t cu_since, cu_page_since;
    int cu_round, cu_failures, cu_wait_ms;
    struct cu_chan *cu_list;
    size_t cu_n, cu_i;
    size_t cu_delivered, cu_dups;
    cJSON *cu_batch; /* a page waiting for its authors' names */
    struct fd_timer *cu_timer, *save_timer;

    struct known_chan known[MAX_KNOWN];
    size_t nknown;
    struct dm_entry dms[MAX_DMS];
    size_t ndms;
    struct user_entry users[MAX_USERS];
    size_t nusers;
    char hidden[MAX_HIDDEN][ID_BUF];
    size_t nhidden, hidden_at;
    struct progress_table prog; /* split sends, across retries */
};

/* mattermost.c: JSON helpers; every getter takes NULL and wrong types. */
const char *mm_json_str(const cJSON *o, const char *key);
bool mm_json_int64(const cJSON *o, const char *key, int64_t *out);
bool mm_is_id(const char *s);
int64_t mm_now_ms(void);                       /* wall clock */
int64_t mm_mono_ms(void);                      /* monotonic */
int mm_utf8_prefix(const char *s, size_t max); /* log excerpts */

/* mattermost.c: a REST call to api + path (path starts with '/'), body
 * JSON or NULL (copied), c as the done context.  0 when in flight (c is
 * then freed after its done callback), -1 when it could not start (the
 * caller still owns c). */
int mm_api_call(struct mm *t, struct call *c, const char *method,
                const char *path, const char *body);
struct call *mm_call_new(enum call_kind kind);
/* The AppError "message" (or id) of an error answer, or NULL; *doc must be
 * freed by the caller with cJSON_Delete. */
const char *mm_error_text(const struct fd_http_response *r, cJSON **doc);
/* "HTTP 403: message" / "no answer (timeout)": never a URL. */
void mm_describe(char *out, size_t len, const struct fd_http_response *r);
/* How long a 429 asks us to wait, in ms: Retry-After, else the limiter's
 * X-Ratelimit-Reset (seconds), else 1 s (the limiter counts per second). */
int mm_limit_wait_ms(const struct fd_http_response *r);

/* mattermost.c: caches. */
char mm_known_type(struct mm *t, const char *chan);
void mm_known_note(struct mm *t, const char *chan, char type);
const char *mm_dm_get(struct mm *t, const char *user);
void mm_dm_put(struct mm *t, const char *user, const char *chan);
void mm_dm_forget(struct mm *t, const char *user);
struct user_entry *mm_user_get(struct mm *t, const char *id);
struct user_entry *mm_user_put(struct mm *t, const char *id);
void mm_hidden_note(struct mm *t, const char *post);
bool mm_hidden_has(struct mm *t, const char *post);

/* socket.c */
void mm_ws_connect(struct mm *t);
void mm_ws_event(struct fd_channel *ch, struct fd_conn *c, enum fd_ws_event ev,
                 const char *data, size_t len);
void mm_ws_stop(struct mm *t);
/* A ping now, when connected and none is outstanding: its answer is a
 * network event, which ends the loop turn (and commits store writes). */
void mm_ws_nudge(struct mm *t);

/* inbound.c */
void mm_ctl_step(struct mm *t);
void mm_ctl_done(struct mm *t, struct call *c,
                 const struct fd_http_response *r);
/* One post (an object) from an event or the catch-up.  type: the channel
 * type (O P D G, or 0 when unknown), sender: the event's sender_name or
 * NULL.  POST_* below; POST_FAILED when the core could not record it (a
 * catch-up is then scheduled). */
enum { POST_FAILED = -1, POST_IGNORED = 0, POST_DELIVERED, POST_DUPLICATE };
int mm_handle_post(struct mm *t, const cJSON *post, char type,
                   const char *sender);
/* Server time `ms` is known (a post's create_at, a pong's server_time). */
void mm_cursor_advance(struct mm *t, int64_t ms, bool from_pong);
/* Something may have been missed since the cursor: catch up. */
void mm_catchup_request(struct mm *t, const char *why);
void mm_catchup_done(struct mm *t, struct call *c,
                     const struct fd_http_response *r);
void mm_cursor_load(struct mm *t);
void mm_inbound_free(struct mm *t);

/* send.c */
int mm_send(struct fd_channel *ch, const struct fd_action *a,
            struct fd_send *token);
void mm_send_done(struct mm *t, struct call *c,
                  const struct fd_http_response *r);
void mm_msend_free(struct msend *s);

#endif
