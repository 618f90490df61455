/*
 * store.h - the durable state behind one interface: seen deliveries (dedupe),
 * cases, the outbox, the per-channel key/value store.  SQLite in WAL mode is
 * the embedded implementation; a server database can replace this file.
 *
 * Every call runs on the loop thread.  Callers group the writes of one
 * message into one transaction (store_begin/store_commit) so a message is
 * recorded whole or not at all.
 */
#ifndef FRONTDESK_STORE_H
#define FRONTDESK_STORE_H

#include <stdbool.h>
#include <stdint.h>

struct store;

enum case_state { CASE_BOT = 0, CASE_PRIVATE, CASE_HUMAN, CASE_CLOSED };
const char *case_state_name(int s);
int case_state_parse(const char *s); /* -1 if unknown */

enum outbox_state {
    OUTBOX_PENDING = 0,
    OUTBOX_DONE,
    OUTBOX_DEAD,        /* gave up: listed by `frontdesk outbox` */
    OUTBOX_WAITING_DM,  /* the platform refused a DM; waits for the user */
};

struct case_rec {
    int64_t id;
    int state;
    char channel[72];
    char user_id[128];
    char tag[64];
    char queue[64];
    int64_t created, updated; /* ms since the epoch */
    int messages;
};

/* One outbox entry.  Strings are owned by the record (outbox_rec_clear). */
struct outbox_rec {
    int64_t id;
    char *channel;
    int64_t case_id;
    int kind;          /* enum fd_action_kind */
    bool is_private;
    char *text, *chat_id, *message_id, *thread, *user_id;
    int state;
    int attempts;
    int64_t next_at;   /* ms since the epoch */
    char *error;
};
void outbox_rec_clear(struct outbox_rec *r);

int store_open(const char *path, struct store **out);
void store_close(struct store *s);
const char *store_errmsg(struct store *s);

int store_begin(struct store *s);
/* Batching: from now on writes open a transaction when none is open; the
 * owner commits with store_flush (once per loop turn).  Without batching
 * every write (or savepoint) commits by itself. */
void store_set_batching(struct store *s, bool on);
bool store_in_tx(struct store *s);
int store_flush(struct store *s);
/* One message inside the batch: undone alone if it fails. */
int store_savepoint(struct store *s);
int store_release(struct store *s);
void store_rollback_to(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* 1 when (channel, event_id) is new (and now recorded), 0 when seen before. */
int store_seen_add(struct store *s, const char *channel, const char *event_id);
int store_seen_prune(struct store *s, int64_t before_ms);
/* DMs waiting (OUTBOX_WAITING_DM) since before before_ms become dead
 * letters with error `why`; returns how many. */
int store_outbox_expire_dms(struct store *s, int64_t before_ms,
                            const char *why);
/* Deletes up to `max` sent (OUTBOX_DONE) entries created before
 * before_ms, oldest first; returns how many. */
int store_outbox_prune(struct store *s, int64_t before_ms, int max);

/* The newest case of (channel, user) not closed and updated since
 * `since_ms` (bot cases older than that count as closed): 1 found, 0 none. */
int store_case_find_open(struct store *s, const char *channel,
                         const char *user_id, int64_t since_ms,
                         struct case_rec *out);
int store_case_get(struct store *s, int64_t id, struct case_rec *out);
int store_case_create(struct store *s, const char *channel,
                      const char *user_id, int64_t *id);
/* Any field may be left alone: state < 0, tag/queue NULL. Bumps updated
 * and (with count_message) the message count. */
int store_case_update(struct store *s, int64_t id, int state, const char *tag,
                      const char *queue, bool count_message);
/* Deletes up to `max` cases neither created nor updated since before_ms,
 * oldest first; returns how many.  A platform link to a deleted case (a
 * Telegram start parameter) opens a new case. */
int store_case_prune(struct store *s, int64_t before_ms, int max);
typedef void (*store_case_fn)(void *ud, const struct case_rec *c);
int store_case_list(struct store *s, bool open_only, store_case_fn fn,
                    void *ud);

int store_outbox_add(struct store *s, struct outbox_rec *r); /* sets r->id */
int store_outbox_set(struct store *s, int64_t id, int state, int attempts,
                     int64_t next_at, const char *error);
typedef void (*store_outbox_fn)(void *ud, struct outbox_rec *r);
/* Entries in `state` (or every state with -1), oldest first; the callback
 * may take the record's strings (set them NULL). */
int store_outbox_list(struct store *s, int state, store_outbox_fn fn,
                      void *ud);
int store_outbox_get(struct store *s, int64_t id, struct outbox_rec *out);
/* DMs of case waiting for the user → pending again; returns how many. */
int store_outbox_wake_dms(struct store *s, int64_t case_id);

/* Plugins keep their entries under STORE_PLUGIN_NS "<channel>", scripts
 * under "<channel>" (channel names have no ':'); store_kv_prune deletes
 * only the former (its SQL spells the prefix). */
#define STORE_PLUGIN_NS "plugin:"
char *store_kv_get(struct store *s, const char *channel, const char *key);
int store_kv_set(struct store *s, const char *channel, const char *key,
                 const char *value);
/* Deletes up to max plugin entries (STORE_PLUGIN_NS) neither read
 * nor written since before_ms (reads are recorded at most daily); scripts'
 * fd.store entries are never deleted.  Returns how many went, or -1. */
int store_kv_prune(struct store *s, int64_t before_ms, int max);

int64_t store_now_ms(void);

#endif
