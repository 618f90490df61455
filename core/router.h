/*
 * router.h - the message path inside the core: dedupe, case lookup, the
 * channel's script, and the actions it takes into the outbox, all in one
 * store transaction, so a message is processed whole or not at all.
 *
 * The same router serves the daemon (SQLite file, plugins send) and the
 * offline runs `frontdesk try` / `frontdesk test` and the reload gate
 * (an in-memory store, actions captured instead of sent).
 */
#ifndef FRONTDESK_ROUTER_H
#define FRONTDESK_ROUTER_H

#include <stdbool.h>
#include <stdint.h>

#include "plugin_api.h"

struct store;
struct cJSON;

struct router;

struct router *router_new(struct store *st, int case_idle_hours);
void router_free(struct router *r);
struct store *router_store(struct router *r);
void router_set_draining(struct router *r, bool draining);

/* Collect every action as a JSON object (as `frontdesk try --json` prints
 * them) into *sink (an array the caller owns) instead of only queueing it.
 * NULL turns capture off. */
void router_capture(struct router *r, struct cJSON *sink);

/* Batch the store's writes per loop turn (the loop calls router_flush at
 * the end of each turn); committed(ok) runs after each flush.  Without
 * batching (offline runs) each message commits alone. */
void router_set_batching(struct router *r, bool on, void (*committed)(bool ok));
bool router_batch_open(struct router *r);
/* Commits the open batch, then hands its actions to the outbox. */
int router_flush(struct router *r);

/* host->commit: commits the open batch; FD_ESTORE when a commit failed
 * since the channel's first delivery after its last call. */
int router_commit(struct fd_channel *ch);

/* host->deliver: FD_OK, FD_DUPLICATE or a negative code. */
int router_deliver(struct fd_channel *ch, const struct fd_msg *m);
/* How many deliveries failed since start (webhook.c turns a failure
 * during a request into 503). */
uint64_t router_failures(void);

/* Queue a public reply/DM for a case outside a script (fallbacks). */
int router_queue(struct fd_channel *ch, int kind, int64_t case_id,
                 const char *text, const char *chat_id,
                 const char *message_id, const char *thread,
                 const char *user_id, bool is_private);

#endif
