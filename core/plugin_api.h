/*
 * plugin_api.h - the one header a frontdesk platform plugin includes (the ABI).
 *
 * A plugin is a shared object exporting one symbol:
 *
 *     FD_EXPORT const struct fd_plugin frontdesk_plugin = { FD_PLUGIN_INIT, ... };
 *
 * The host refuses a plugin whose `abi` differs from FD_PLUGIN_ABI or whose
 * `size` is smaller than the host expects, and one that lacks a mandatory
 * callback (start, stop, send).  Optional callbacks may be NULL.
 *
 * One plugin serves any number of channels; a channel is one [channel:NAME]
 * section of the configuration.  Every callback runs on the daemon's single
 * event-loop thread and must never block: no sleeping, no synchronous network
 * or DNS, no long loops.  Network I/O goes through the host services below.
 *
 * Ownership: pointers passed into a callback are borrowed for the duration of
 * that call unless a comment says otherwise; copy what you keep.  Strings are
 * NUL-terminated UTF-8.  Whatever a plugin allocates, it frees.
 */
#ifndef FRONTDESK_PLUGIN_API_H
#define FRONTDESK_PLUGIN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on every incompatible change of the structs below. */
#define FD_PLUGIN_ABI 1

#define FD_EXPORT __attribute__((visibility("default")))

/* Return codes shared by host services and plugin callbacks. */
enum {
    FD_OK = 0,
    FD_DUPLICATE = 1,  /* deliver: already processed; answer as success */
    FD_ERR = -1,       /* generic failure (logged where it happened) */
    FD_ENOMEM = -2,
    FD_EINVAL = -3,    /* bad argument or malformed input */
    FD_ESTORE = -4,    /* the store could not record it: ask for a retry */
    FD_ESTOPPED = -5,  /* the daemon is draining and accepts no new work */
};

enum fd_log_level { FD_LOG_DEBUG, FD_LOG_INFO, FD_LOG_WARN, FD_LOG_ERROR };

/* What a platform can do; scripts ask through fd.can("hide") etc. */
enum fd_cap {
    FD_CAP_THREADS = 1u << 0,       /* answers can go into a thread */
    FD_CAP_DM = 1u << 1,            /* the bot can write to a user privately */
    FD_CAP_PRIVATE_REPLY = 1u << 2, /* private reply to a public comment */
    FD_CAP_HIDE = 1u << 3,          /* hide or delete a public post */
    FD_CAP_TYPING = 1u << 4,        /* typing indicator */
    FD_CAP_WEBPAGE = 1u << 5,       /* serves a web page; the first such
                                       channel is also mounted at "/" */
};

struct fd_channel;   /* one configured channel (opaque) */
struct fd_conn;      /* one websocket connection, either side (opaque) */
struct fd_timer;     /* a one-shot timer (opaque) */
struct fd_http_call; /* an outbound HTTP request in flight (opaque) */
struct fd_send;      /* the token of one outbox action being sent (opaque) */
struct fd_http_reply;/* the answer to an inbound webhook request (opaque) */

/* ---- configuration keys a plugin declares ---------------------------- */

enum fd_key_type {
    FD_KEY_STRING = 0,
    FD_KEY_URL,      /* http:// or https:// (ws:// wss:// accepted too) */
    FD_KEY_INT,      /* decimal integer */
    FD_KEY_ENUM,     /* one of `choices`, "a|b|c" */
    FD_KEY_BOOL,     /* true/false/yes/no/on/off/1/0 */
};

#define FD_KEY_REQUIRED 1u
#define FD_KEY_SECRET 2u /* never logged */

/* One key of a [channel:NAME] section.  The host rejects unknown keys and
 * missing required ones, and checks the type, naming file, section, key. */
struct fd_key {
    const char *name;
    enum fd_key_type type;
    unsigned flags;
    const char *def;     /* default when absent, or NULL */
    const char *choices; /* FD_KEY_ENUM: "poll|webhook" */
    const char *help;    /* one line for `frontdesk check` and the README */
};

/* ---- inbound messages ------------------------------------------------- */

/* One message from the platform, handed to host->deliver().  All strings are
 * borrowed for the call; only `event_id` and `text` are required. */
struct fd_msg {
    const char *event_id;    /* platform-unique delivery id, for dedupe */
    const char *message_id;  /* the platform's id of this message (reply/hide) */
    const char *text;
    bool is_private;         /* a DM / private chat, not a public post */
    const char *user_id;
    const char *user_name;   /* display name; the host falls back to user_id */
    const char *user_handle; /* username where the platform has one */
    const char *chat_id;     /* where it was posted (group, channel, topic) */
    const char *thread;      /* thread / topic id, or NULL */
    const char *link_case;   /* the user asks to continue case N (e.g. a
                                Telegram /start deep link), or NULL; honoured
                                only when user_id is the case's user (map a
                                platform's private id to its public one) */
};

/* ---- outbound actions ------------------------------------------------- */

enum fd_action_kind {
    FD_ACTION_REPLY = 0, /* answer where the message was */
    FD_ACTION_DM,        /* write to the author privately */
    FD_ACTION_HIDE,      /* hide/delete the message */
};

/* One outbox entry to carry out; borrowed for the send() call. */
struct fd_action {
    int64_t id;            /* outbox id: stable across retries and restarts */
    enum fd_action_kind kind;
    int64_t case_id;
    int attempt;           /* 1 on the first try */
    bool is_private;       /* the message answered was private */
    const char *text;      /* REPLY, DM */
    const char *chat_id;   /* chat of the message answered */
    const char *message_id;/* message answered / to hide */
    const char *thread;
    const char *user_id;   /* its author */
};

enum fd_send_status {
    FD_SEND_OK = 0,  /* the platform accepted it */
    FD_SEND_RETRY,   /* transient (429, 5xx, network): try again later */
    FD_SEND_FAILED,  /* permanent: give up (logged, dead-lettered) */
    FD_SEND_NO_DM,   /* the platform refuses a DM to this user (never
                        started the bot, DMs closed): the host posts
                        `fallback` publicly and keeps the DM waiting */
    FD_SEND_HANDOFF, /* the platform cannot deliver it now and a bot may not
                        (e.g. outside a messaging window): the case goes to
                        humans, the action is kept as a dead letter */
};

struct fd_send_result {
    enum fd_send_status status;
    int retry_after_ms;   /* RETRY: the platform's wait, or 0 for backoff */
    const char *error;    /* a short reason for the log, or NULL */
    const char *fallback; /* NO_DM: public text to post instead, or NULL */
};

/* ---- webhooks (inbound HTTP) ------------------------------------------ */

/* An inbound HTTP request for /hooks/<channel>[/...], body complete. */
struct fd_http_in {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* rest after /hooks/<channel>: "" or "/..." */
    const char *query;   /* query without '?', or "": name=value pairs
                            joined by '&', already %-decoded by lws */
    const char *body;    /* raw bytes as received (sign over these) */
    size_t body_len;
    const char *remote;  /* peer address */
    void *priv;          /* host's */
};

/* ---- outbound HTTP ----------------------------------------------------- */

struct fd_http_request {
    const char *method;          /* NULL: GET, or POST when body != NULL */
    const char *url;
    const char *const *headers;  /* NULL-terminated "Name: value" lines */
    const char *body;            /* copied by the host */
    size_t body_len;
    int timeout_ms;              /* 0: 30 s */
};

struct fd_http_response {
    int status;          /* HTTP status, or 0 when no answer came */
    const char *body;    /* NUL-terminated, may contain NULs before body_len */
    size_t body_len;
    const char *error;   /* status 0: why (timeout, refused, cancelled) */
    int retry_after_s;   /* Retry-After header in seconds, or -1 */
    bool cancelled;      /* the channel stopped; free your context only */
    void *priv;          /* host's (host->response_header) */
};

typedef void (*fd_http_done_fn)(void *ud, const struct fd_http_response *r);
typedef void (*fd_timer_fn)(void *ud);

enum fd_ws_event {
    FD_WS_OPEN = 0,  /* connected (client) or accepted (server side) */
    FD_WS_MESSAGE,   /* one complete text message: data, len */
    FD_WS_CLOSED,    /* gone; data is a reason. The conn is freed after. */
};

/* What text_cut counts: platforms limit bytes (Instagram), characters
 * (code points), or UTF-16 code units (Telegram, JavaScript-based APIs). */
enum fd_text_unit { FD_TEXT_BYTES = 0, FD_TEXT_CHARS = 1, FD_TEXT_UTF16 = 2 };

/* ---- host services ----------------------------------------------------- */

struct fd_host {
    unsigned abi;
    size_t size;

    /* printf-style, one line, prefixed with plugin[channel]. */
    void (*log)(struct fd_channel *ch, enum fd_log_level lvl, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));

    /* The channel's value for `key` (its default applied), or NULL. */
    const char *(*conf)(struct fd_channel *ch, const char *key);
    /* A [core] value: "public_url", "listen", ... or NULL. */
    const char *(*core_conf)(const char *key);
    const char *(*channel_name)(struct fd_channel *ch);

    /* The plugin's per-channel state pointer. */
    void (*set_data)(struct fd_channel *ch, void *data);
    void *(*get_data)(struct fd_channel *ch);

    /* Hand one inbound message to the core: dedupe, case, script, outbox.
     * FD_OK when accepted, FD_DUPLICATE when seen before (both mean "answer
     * the platform with success"), a negative code when it could not be
     * recorded (answer 5xx so the platform retries). */
    int (*deliver)(struct fd_channel *ch, const struct fd_msg *msg);

    /* Report the outcome of send(); exactly once per token. May be called
     * from inside send() or later. The token is invalid afterwards. */
    void (*send_done)(struct fd_send *token, const struct fd_send_result *r);

    /* Outbound HTTP on the event loop. `done` is called exactly once, later,
     * never from inside http(). Returns NULL (and calls nothing) on failure. */
    struct fd_http_call *(*http)(struct fd_channel *ch,
                                 const struct fd_http_request *req,
                                 fd_http_done_fn done, void *ud);
    /* Cancel a call: `done` runs with cancelled = true. */
    void (*http_cancel)(struct fd_http_call *call);

    /* One-shot timer; cancelled automatically when the channel stops. */
    struct fd_timer *(*timer_add)(struct fd_channel *ch, int ms, fd_timer_fn fn,
                                  void *ud);
    void (*timer_cancel)(struct fd_timer *t);

    /* Websocket client: connect to ws:// or wss:// url (DNS off the loop,
     * no redirects). Events arrive in plugin->ws_event. */
    struct fd_conn *(*ws_connect)(struct fd_channel *ch, const char *url,
                                  const char *const *headers,
                                  const char *subprotocol);
    /* Queue one text message on a connection (either side). */
    int (*ws_send)(struct fd_conn *c, const char *data, size_t len);
    /* Close; FD_WS_CLOSED follows. */
    void (*ws_close)(struct fd_conn *c);
    void (*conn_set_data)(struct fd_conn *c, void *data);
    void *(*conn_get_data)(struct fd_conn *c);

    /* Webhook answer: status (default 200), content type, body (copied). */
    void (*reply_status)(struct fd_http_reply *r, int status);
    void (*reply_type)(struct fd_http_reply *r, const char *content_type);
    int (*reply_body)(struct fd_http_reply *r, const char *data, size_t len);
    /* A request header by name (case-insensitive), or NULL. Borrowed. */
    const char *(*header)(const struct fd_http_in *req, const char *name);

    /* Per-channel persistent key/value store of the plugin (apart from the
     * script's fd.store). get returns a malloc'd copy the caller frees, or
     * NULL; set with value NULL deletes.  An entry neither read nor written
     * for [core] case_retention_days is deleted: keep only what can be
     * learnt again (caches, links to cases that retention deletes too). */
    char *(*kv_get)(struct fd_channel *ch, const char *key);
    int (*kv_set)(struct fd_channel *ch, const char *key, const char *value);

    /* Helpers. */
    bool (*ct_equal)(const char *a, const char *b); /* constant-time */
    /* hex(HMAC-SHA256(key, data)) equals `hex` (constant time). */
    bool (*hmac_sha256_hex_ok)(const char *key, const void *data, size_t len,
                               const char *hex);
    /* `n` random bytes as 2n hex digits into out (size >= 2n+1). */
    int (*random_hex)(char *out, size_t n);

    /* The byte length of the longest prefix of s[0..len) that fits `max`
     * units (enum fd_text_unit) and ends on a UTF-8 character boundary,
     * preferring to break after a newline or space in its last fifth.  For
     * splitting long texts at a platform's limit.  Never 0 when len > 0, so
     * a loop `s += cut` always advances. */
    size_t (*text_cut)(const char *s, size_t len, size_t max, int unit);
    /* Exponential backoff with +-20 % jitter: base_ms * 2^(attempt-1),
     * capped at max_ms (attempt starts at 1). */
    int (*backoff_ms)(int attempt, int base_ms, int max_ms);
    /* Narrow (or widen) one channel's capabilities from the plugin's
     * default, e.g. when a key turns hiding off.  Call it from check():
     * scripts see the channel's capabilities as they are at load. */
    void (*set_caps)(struct fd_channel *ch, unsigned caps);
    /* A header of an HTTP response, inside the done callback only
     * (e.g. X-RateLimit-Remaining), or NULL.  Borrowed. */
    const char *(*response_header)(const struct fd_http_response *r,
                                   const char *name);

    /* The core commits deliveries at the end of each loop turn, so a
     * delivery's FD_OK means "taken", not yet "durable".  A plugin that
     * confirms messages to the platform by itself (a poll offset, a socket
     * ack) calls commit() first: it commits now and returns FD_OK when
     * every message the channel delivered since its last call is recorded,
     * or FD_ESTORE when a commit failed and some were dropped: confirm
     * none of them, so the platform sends them again. */
    int (*commit)(struct fd_channel *ch);
};

/* ---- the plugin ---------------------------------------------------------- */

struct fd_plugin {
    unsigned abi;  /* FD_PLUGIN_ABI */
    size_t size;   /* sizeof(struct fd_plugin) */
    const char *name;
    const char *version;
    unsigned caps;              /* enum fd_cap bits */
    const struct fd_key *keys;  /* terminated by { NULL } */

    /* Once after loading, before any channel starts (optional). */
    int (*init)(const struct fd_host *host);
    void (*deinit)(void);

    /* Extra validation of a channel's values beyond the key table
     * (optional); write a message naming the key into err. */
    int (*check)(struct fd_channel *ch, char *err, size_t errlen);

    /* Begin serving a channel: connect, poll, register webhooks. */
    int (*start)(struct fd_channel *ch);
    /* Stop serving: free everything of the channel. Pending http calls
     * are cancelled (their done runs) and timers dropped by the host. */
    void (*stop)(struct fd_channel *ch);

    /* An inbound request for /hooks/<channel>[/...] (optional). Set the
     * answer through host->reply_*; call host->deliver for each message.
     * The host turns the answer into 503 if a delivery could not be
     * recorded. */
    void (*webhook)(struct fd_channel *ch, const struct fd_http_in *req,
                    struct fd_http_reply *reply);

    /* Carry out one action; report with host->send_done(token, ...). */
    int (*send)(struct fd_channel *ch, const struct fd_action *a,
                struct fd_send *token);

    /* Websocket events for connections of this channel (optional): client
     * connections from ws_connect, and, for FD_CAP_WEBPAGE plugins only,
     * browsers that upgraded at /hooks/<channel> (or "/"). */
    void (*ws_event)(struct fd_channel *ch, struct fd_conn *c,
                     enum fd_ws_event ev, const char *data, size_t len);

    /* The platform's published send limits, enforced by the outbox with
     * token buckets (0: no limit).  A channel may override them with the
     * core keys rate_per_s / chat_per_min / dm_per_min. */
    double rate_per_s;   /* actions per second, whole channel */
    double chat_per_min; /* per public conversation (group, channel) */
    double dm_per_min;   /* per private conversation */
};

#define FD_PLUGIN_INIT .abi = FD_PLUGIN_ABI, .size = sizeof(struct fd_plugin)

#ifdef __cplusplus
}
#endif
#endif
