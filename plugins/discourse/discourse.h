/*
 * discourse.h - what the Discourse plugin's files share (private to the
 * plugin; only plugin_api.h is the ABI).
 *
 *   discourse.c  the plugin table, configuration, start/stop, the start-up
 *                identity check, the HTTP call plumbing and JSON helpers
 *   inbound.c    the webhook: signature, event filter, post -> fd_msg, and
 *                the participant check of private messages we did not open
 *   send.c       replies, private messages and hiding for the outbox
 *
 * Plugin state in the channel's key/value store (shared with the channel's
 * script, hence the "_dc." prefix):
 *   _dc.user.<user_id>  the author's username (a PM is addressed by name)
 *   _dc.pm.<case_id>    the PM topic the bot opened for a case
 *   _dc.pmt.<topic_id>  present when a PM topic is one the bot takes part in
 *
 * Everything runs on the daemon's loop thread.
 */
#ifndef FRONTDESK_DISCOURSE_H
#define FRONTDESK_DISCOURSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin_api.h"
#include "progress.h"

#define API_HTTP_MS 20000     /* every REST call */
#define DEFAULT_MAX_LEN 32000 /* site setting max_post_length (default) */
#define MAX_PARTS 8           /* a longer text is cut after this many posts */
#define MAX_LOOKUPS 32        /* unknown PM topics being checked at once */
#define MAX_LOOKUP_POSTS 8    /* posts waiting for one such check */
#define LOOKUP_ATTEMPTS 6
#define NEG_CACHE 128 /* PM topics known not to include the bot */
#define NEG_TTL_MS (10 * 60 * 1000)
#define ME_BACKOFF_MAX_MS 300000
#define MAX_WAIT_S 3600  /* longest platform wait we honour */
#define MAX_USERNAME 240 /* 60 characters of up to 4 bytes */
#define MAX_NAME 255
#define FLAG_INAPPROPRIATE 4 /* post_action_type_id; an auto-action flag */

/* The host's service table, set once by init; H for short. */
extern const struct fd_host *dc_host;
#define H dc_host

enum dc_hide { HIDE_OFF = 0, HIDE_FLAG, HIDE_DELETE };
enum dc_call_kind { CALL_ME = 0, CALL_SEND, CALL_LOOKUP };

struct dc;

/* One HTTP call in flight; freed after its done callback. */
struct call {
    struct dc *dc;
    enum dc_call_kind kind;
    void *ctx; /* CALL_SEND: struct dsend (owned); CALL_LOOKUP: struct lookup */
};

/* One inbound post, copied out of the webhook body. */
struct post {
    int64_t id, topic_id, post_number, user_id;
    bool is_private;
    char *username;
    char *name; /* display name, or NULL */
    char *text;
    char *event_id; /* X-Discourse-Event-Id, for the log; may be NULL */
};

/* A private-message topic the bot did not open: its participants are being
 * fetched before its posts may reach the script. */
struct lookup {
    struct lookup *next;
    struct dc *dc;
    int64_t topic_id;
    struct post *posts[MAX_LOOKUP_POSTS];
    size_t nposts;
    int attempts;
};

/* One outbox action being carried out, possibly as several posts. */
struct dsend {
    struct fd_send *token;
    enum fd_action_kind kind;
    int64_t action_id, case_id;
    int64_t topic_id; /* where the posts go; 0: open a new PM first */
    int64_t reply_to; /* post_number answered by the first part, or 0 */
    int64_t post_id;  /* HIDE */
    bool case_pm;     /* DM into the case's remembered PM topic */
    char *recipient;  /* new PM: the author's username */
    char *text;
    size_t start[MAX_PARTS], end[MAX_PARTS]; /* part i: text[start, end) */
    size_t nparts, part;
};

struct neg {
    int64_t topic_id;
    int64_t until_ms;
};

/* Per-channel state. */
struct dc {
    struct fd_channel *ch;
    char *api;      /* api_url without a trailing slash */
    char *hdr_key;  /* "Api-Key: ..." (never logged) */
    char *hdr_user; /* "Api-Username: ..." */
    const char *headers[5];
    char *username; /* the bot's user */
    char *secret;   /* webhook_secret (never logged) */
    char *pm_title;
    enum dc_hide hide;
    bool answer_staff; /* staff posts reach the script too */
    size_t max_len;    /* characters per post */
    int64_t bot_id;    /* 0 until /session/current.json answered */
    int me_failures;
    struct lookup *lookups;
    size_t nlookups;
    struct progress_table prog; /* split sends, across retries */
    struct neg neg[NEG_CACHE];
    size_t neg_next;
};

/* discourse.c: JSON helpers; every getter takes NULL and wrong types. */
bool dc_json_int64(const cJSON *o, const char *key, int64_t *out);
const char *dc_json_str(const cJSON *o, const char *key);
const cJSON *dc_json_obj(const cJSON *o, const char *key);
/* A decimal id 1..2^53 in s (a whole string), into *out. */
bool dc_parse_id(const char *s, int64_t *out);
/* Byte length of s cut to at most max bytes on a UTF-8 boundary. */
int dc_utf8_prefix(const char *s, size_t max);
bool dc_same_user(const char *a, const char *b);
/* A Discourse username we may put into a header or a recipient list. */
bool dc_username_ok(const char *s);
int64_t dc_now_ms(void);

/* discourse.c: issues a request to api + path (body JSON or NULL; copied)
 * with c as the done context.  Returns 0 when the call is in flight (c is
 * then freed after its done callback), -1 when it could not start (the
 * caller still owns c and c->ctx). */
int dc_api_call(struct dc *d, struct call *c, const char *method,
                const char *path, const char *body);
/* "HTTP 422: <first error>" or "no answer (...)": never a URL or key. */
void dc_describe(char *out, size_t len, const struct fd_http_response *r,
                 const cJSON *doc);
/* The platform's wait in ms: extras.wait_seconds, else Retry-After, else 0. */
int dc_wait_ms(const struct fd_http_response *r, const cJSON *doc);

/* inbound.c */
void dc_webhook(struct fd_channel *ch, const struct fd_http_in *req,
                struct fd_http_reply *reply);
void dc_lookup_done(struct dc *d, struct lookup *l,
                    const struct fd_http_response *r);
void dc_lookups_free(struct dc *d);
void dc_post_free(struct post *p);

/* send.c */
int dc_send(struct fd_channel *ch, const struct fd_action *a,
            struct fd_send *token);
void dc_send_done(struct dc *d, struct call *c,
                  const struct fd_http_response *r);
void dc_dsend_free(struct dsend *s);

#endif
