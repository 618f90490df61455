/*
 * outbox.h - carries queued actions out through the plugins: in order per
 * conversation, retried with exponential backoff and jitter (honouring the
 * platform's Retry-After), dead-lettered after the last attempt, resumed
 * from the store on start.
 */
#ifndef FRONTDESK_OUTBOX_H
#define FRONTDESK_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "plugin_api.h"

struct store;
struct outbox_rec;

/* Per-channel queue; created on first use. */
void outbox_channel_free(struct fd_channel *ch);

/* A record just committed to the store: queue it (takes its strings). */
void outbox_push(struct fd_channel *ch, struct outbox_rec *r);
/* Try to send what is due. */
void outbox_kick(struct fd_channel *ch);
/* Kicks the queues that asked for it this turn (loop_on_turn); true if
 * there were any. */
bool outbox_turn(void);
/* Loads pending entries of every channel from the store; with rescan, only
 * those not queued yet (entries queued again by `frontdesk outbox retry`). */
int outbox_resume(struct store *st, bool rescan);
void outbox_set_store(struct store *st);
/* Stop starting new sends (draining); in-flight ones finish. */
void outbox_pause(bool paused);
int outbox_in_flight(void);
int outbox_pending(struct fd_channel *ch);

/* True while a plugin's send() runs (its requests need no commit first). */
bool outbox_sending(void);

/* host->send_done */
void outbox_send_done(struct fd_send *token, const struct fd_send_result *r);

#endif
