/*
 * telegram.h - what the Telegram plugin's files share (private to the
 * plugin; only plugin_api.h is the ABI).
 *
 *   telegram.c  the plugin table, configuration, start/stop, the HTTP call
 *               plumbing and the JSON helpers
 *   inbound.c   getMe, webhook registration, getUpdates long polling, the
 *               webhook handler and turning an Update into an fd_msg
 *   send.c      sendMessage / deleteMessage for the outbox
 *
 * Everything runs on the daemon's loop thread.
 */
#ifndef FRONTDESK_TELEGRAM_H
#define FRONTDESK_TELEGRAM_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin_api.h"
#include "progress.h"

#define POLL_TIMEOUT_S 25    /* getUpdates long-poll wait */
#define POLL_HTTP_MS 35000   /* HTTP timeout, above the poll wait */
#define API_HTTP_MS 20000    /* every other call */
#define MIN_POLL_GAP_MS 1000 /* after an empty poll that came back at once */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define MAX_TEXT_UNITS 4096 /* Telegram counts UTF-16 code units */
#define MAX_PARTS 8         /* longer texts are cut after this many */
#define ALLOWED_UPDATES "[\"message\",\"edited_message\"]"
/* Telegram's alphabet for secret_token (and a safe one for tokens). */
#define SECRET_CHARS                                                           \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

/* The host's service table, set once by init; H for short. */
extern const struct fd_host *tg_host;
#define H tg_host

enum tg_phase { PH_ME = 0, PH_HOOK, PH_POLL, PH_IDLE };
enum tg_call_kind { CALL_CTL = 0, CALL_SEND };

/* One HTTP call in flight; owned by its done callback once issued. */
struct call {
    struct tg *tg;
    enum tg_call_kind kind;
    struct tsend *s; /* CALL_SEND: owned */
};

/* One outbox action being carried out, possibly in several messages. */
struct tsend {
    struct fd_send *token;
    enum fd_action_kind kind;
    int64_t action_id, case_id;
    char *chat_id;
    char *reply_to;   /* REPLY: the message answered, or NULL */
    char *message_id; /* HIDE */
    char *thread;
    char *text;
    size_t start[MAX_PARTS], end[MAX_PARTS]; /* part i: text[start, end) */
    size_t nparts, part;
    bool migrated;
};

/* Per-channel state. */
struct tg {
    struct fd_channel *ch;
    bool webhook;
    char *base;     /* api_url + "/bot" + token: never logged */
    char *secret;   /* webhook secret_token */
    char *hook_url; /* webhook mode: public_url/hooks/<channel> */
    int64_t bot_id; /* 0 until getMe answered */
    char *username;
    enum tg_phase phase;
    int failures;       /* of the control chain in a row, for the backoff */
    int64_t offset;     /* next getUpdates offset; 0: none yet */
    int64_t recorded;   /* the offset when the store last confirmed all */
    int64_t poll_started_ms;
    struct progress_table prog; /* split sends, across retries */
};

/* Parsed fields of a Bot API answer.  `doc` owns the strings. */
struct answer {
    cJSON *doc;
    bool ok;
    const cJSON *result;
    const char *description;
    int64_t retry_after_s; /* parameters.retry_after, or -1 */
    int64_t migrate_to;    /* parameters.migrate_to_chat_id, or 0 */
};

/* telegram.c: JSON helpers; every getter takes NULL and wrong types. */
bool tg_json_int64(const cJSON *o, const char *key, int64_t *out);
const char *tg_json_str(const cJSON *o, const char *key);
const cJSON *tg_json_obj(const cJSON *o, const char *key);
bool tg_is_json_int(const char *s);
bool tg_in_set(const char *s, const char *set, size_t min, size_t max);

/* telegram.c: POSTs `body` (JSON; always freed here) to `method` with c as
 * the done context.  Returns 0 when the call is in flight (c is then freed
 * after its done callback), -1 when it could not start (the caller still
 * owns c). */
int tg_api_call(struct tg *t, struct call *c, const char *method, char *body,
                int timeout_ms);
/* Fills *a from a response; free a->doc with cJSON_Delete. */
void tg_answer_parse(const struct fd_http_response *r, struct answer *a);
/* The platform's wait in ms (body first, then Retry-After), or 0. */
int tg_answer_wait_ms(const struct answer *a, const struct fd_http_response *r);
/* A short reason for the log ("HTTP 429: ..."): never the URL. */
void tg_describe(char *out, size_t len, const struct fd_http_response *r,
                 const struct answer *a);

/* inbound.c */
void tg_ctl_step(struct tg *t);
void tg_ctl_done(struct tg *t, const struct fd_http_response *r);
void tg_webhook(struct fd_channel *ch, const struct fd_http_in *req,
                struct fd_http_reply *reply);

/* send.c */
int tg_send(struct fd_channel *ch, const struct fd_action *a,
            struct fd_send *token);
void tg_send_done(struct tg *t, struct call *c,
                  const struct fd_http_response *r);
void tg_tsend_free(struct tsend *s);

#endif
