/*
 * outbox.c - sends the store's pending actions through the plugins.
 *
 * Each channel has an in-memory queue mirroring its pending outbox rows in
 * id order.  An entry is sent only when no earlier entry of the same
 * conversation (chat, or the user's DM) is still unsent, so replies to one
 * conversation leave in order while different conversations go in
 * parallel.  Results update the store at once; entries leave the queue on
 * the next kick (send_done may run inside the plugin's send()).
 */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "host.h"
#include "log.h"
#include "loop.h"
#include "router.h"
#include "store.h"

#define MAX_IN_FLIGHT 64   /* per channel */
#define MAX_ATTEMPTS 10
#define SCAN_LIMIT 512     /* entries looked at per kick */

struct fd_send {
    struct item *item;
    struct fd_channel *ch;
};

struct item {
    struct outbox_rec rec;
    struct item *next;
    struct fd_send token;
    bool in_flight, gone;
};

struct outq {
    struct fd_channel *ch;
    struct item *head, *tail;
    int in_flight, pending;
    struct loop_timer *timer;
    int64_t timer_at;
};

static struct store *store;
static bool paused;
static int total_in_flight;

void outbox_set_store(struct store *st) { store = st; }
void outbox_pause(bool p) { paused = p; }
int outbox_in_flight(void) { return total_in_flight; }

static void on_timer(void *ud) { outbox_kick(ud); }

static struct outq *queue_of(struct fd_channel *ch)
{
    if (!ch->outq) {
        struct outq *q = calloc(1, sizeof *q);
        if (!q)
            return NULL;
        q->ch = ch;
        q->timer = loop_timer_new(on_timer, ch);
        ch->outq = q;
    }
    return ch->outq;
}

int outbox_pending(struct fd_channel *ch)
{
    return ch->outq ? ch->outq->pending : 0;
}

void outbox_channel_free(struct fd_channel *ch)
{
    struct outq *q = ch->outq;
    if (!q)
        return;
    while (q->head) {
        struct item *it = q->head;
        q->head = it->next;
        if (it->in_flight)
            total_in_flight--;
        outbox_rec_clear(&it->rec);
        free(it);
    }
    loop_timer_free(q->timer);
    free(q);
    ch->outq = NULL;
}

void outbox_push(struct fd_channel *ch, struct outbox_rec *r)
{
    struct outq *q = ch->def ? queue_of(ch) : NULL;
    struct item *it = q ? calloc(1, sizeof *it) : NULL;
    if (!it) { /* offline run (try/test): nothing to send */
        outbox_rec_clear(r);
        return;
    }
    it->rec = *r;
    memset(r, 0, sizeof *r);
    it->token.item = it;
    it->token.ch = ch;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->pending++;
}

static void schedule(struct outq *q, int64_t at)
{
    int64_t now = store_now_ms();
    if (q->timer_at && q->timer_at <= at && q->timer_at >= now)
        return; /* an earlier kick is already due */
    q->timer_at = at;
    loop_timer_schedule(q->timer, at > now ? (int)(at - now) : 0);
}

static const char *conv_key(const struct outbox_rec *r, char *buf, size_t n)
{
    if (r->kind == FD_ACTION_DM)
        snprintf(buf, n, "dm:%s", r->user_id ? r->user_id : "");
    else
        snprintf(buf, n, "c:%s", r->chat_id ? r->chat_id : "");
    return buf;
}

static void send_one(struct outq *q, struct item *it)
{
    struct fd_channel *ch = q->ch;
    struct outbox_rec *r = &it->rec;
    r->attempts++;
    struct fd_action a = {
        .id = r->id,
        .kind = (enum fd_action_kind)r->kind,
        .case_id = r->case_id,
        .attempt = r->attempts,
        .is_private = r->is_private,
        .text = r->text,
        .chat_id = r->chat_id,
        .message_id = r->message_id,
        .thread = r->thread,
        .user_id = r->user_id,
    };
    it->in_flight = true;
    q->in_flight++;
    total_in_flight++;
    if (ch->def->send(ch, &a, &it->token) < 0 && it->in_flight) {
        struct fd_send_result res = {.status = FD_SEND_RETRY,
                                     .error = "plugin could not start the send"};
        outbox_send_done(&it->token, &res);
    }
}

void outbox_kick(struct fd_channel *ch)
{
    struct outq *q = ch->outq;
    if (!q || !ch->def)
        return;
    q->timer_at = 0;
    /* Reap finished entries. */
    struct item **pp = &q->head, *last = NULL;
    while (*pp) {
        struct item *it = *pp;
        if (it->gone) {
            *pp = it->next;
            outbox_rec_clear(&it->rec);
            free(it);
            q->pending--;
            continue;
        }
        last = it;
        pp = &it->next;
    }
    q->tail = last;
    if (paused || ch->stopping)
        return;

    char keys[64][160];
    int nkeys = 0, scanned = 0;
    int64_t now = store_now_ms(), next_due = 0;
    for (struct item *it = q->head; it && scanned < SCAN_LIMIT;
         it = it->next, scanned++) {
        char key[160];
        conv_key(&it->rec, key, sizeof key);
        bool blocked = false;
        for (int k = 0; k < nkeys && !blocked; k++)
            blocked = strcmp(keys[k], key) == 0;
        if (blocked)
            continue;
        bool waits = it->in_flight || it->rec.next_at > now ||
                     q->in_flight >= MAX_IN_FLIGHT;
        if (!it->in_flight && it->rec.next_at > now &&
            (!next_due || it->rec.next_at < next_due))
            next_due = it->rec.next_at;
        if (nkeys < 64)
            snprintf(keys[nkeys++], sizeof keys[0], "%s", key);
        else
            break; /* too many conversations blocked: next kick */
        if (!waits)
            send_one(q, it);
    }
    if (next_due)
        schedule(q, next_due);
}

static int backoff_ms(int attempts, int retry_after_ms)
{
    if (retry_after_ms > 0)
        return retry_after_ms;
    long base = 1000L << (attempts > 9 ? 9 : attempts - 1);
    if (base > 300000)
        base = 300000;
    /* ±20 % jitter so retries of many entries do not arrive together. */
    long jitter = (long)(random() % (base * 2 / 5 + 1)) - base / 5;
    return (int)(base + jitter);
}

void outbox_send_done(struct fd_send *token, const struct fd_send_result *res)
{
    if (!token || !res || !token->item->in_flight)
        return;
    struct item *it = token->item;
    struct fd_channel *ch = token->ch;
    struct outq *q = ch->outq;
    struct outbox_rec *r = &it->rec;
    it->in_flight = false;
    q->in_flight--;
    total_in_flight--;
    const char *err = res->error ? res->error : "";
    int st = OUTBOX_DONE;
    switch (res->status) {
    case FD_SEND_OK:
        ch->counters[CNT_SENT]++;
        log_msg(LOG_DEBUG, ch->platform, ch->name, "outbox %" PRId64 " sent",
                r->id);
        break;
    case FD_SEND_RETRY:
        if (r->attempts < MAX_ATTEMPTS) {
            int ms = backoff_ms(r->attempts, res->retry_after_ms);
            r->next_at = store_now_ms() + ms;
            ch->counters[CNT_RETRY]++;
            log_msg(LOG_WARN, ch->platform, ch->name,
                    "outbox %" PRId64 ": %s, retry %d in %d ms", r->id,
                    *err ? err : "failed", r->attempts, ms);
            store_outbox_set(store, r->id, OUTBOX_PENDING, r->attempts,
                             r->next_at, err);
            schedule(q, r->next_at);
            return;
        }
        __attribute__((fallthrough)); /* out of attempts */
    case FD_SEND_FAILED:
        st = OUTBOX_DEAD;
        ch->counters[CNT_DEAD]++;
        log_msg(LOG_ERROR, ch->platform, ch->name,
                "outbox %" PRId64 " given up after %d attempt(s): %s", r->id,
                r->attempts, *err ? err : "failed");
        break;
    case FD_SEND_NO_DM:
        st = OUTBOX_WAITING_DM;
        log_msg(LOG_INFO, ch->platform, ch->name,
                "outbox %" PRId64 ": DM refused, waiting for the user of case %" PRId64,
                r->id, r->case_id);
        break;
    }
    if (store_outbox_set(store, r->id, st, r->attempts, r->next_at,
                         st == OUTBOX_DONE ? NULL : err) < 0)
        log_msg(LOG_ERROR, ch->platform, ch->name,
                "outbox %" PRId64 ": cannot record the result", r->id);
    it->gone = true;
    if (st == OUTBOX_WAITING_DM && res->fallback && *res->fallback)
        router_queue(ch, FD_ACTION_REPLY, r->case_id, res->fallback,
                     r->chat_id, r->message_id, r->thread, r->user_id, false);
    schedule(q, 0);
}

static void resume_one(void *ud, struct outbox_rec *r)
{
    (void)ud;
    struct fd_channel *ch = r->channel ? host_channel(r->channel) : NULL;
    if (!ch) {
        log_warn("outbox", "entry %" PRId64 " is for channel %s, which is not "
                 "configured: left pending", r->id, r->channel ? r->channel : "?");
        return;
    }
    outbox_push(ch, r);
}

int outbox_resume(struct store *st)
{
    if (store_outbox_list(st, OUTBOX_PENDING, resume_one, NULL) < 0)
        return -1;
    size_t n;
    struct fd_channel **chs = host_channels(&n);
    for (size_t i = 0; i < n; i++) {
        if (outbox_pending(chs[i]))
            log_msg(LOG_INFO, chs[i]->platform, chs[i]->name,
                    "resuming %d unsent action(s)", outbox_pending(chs[i]));
        outbox_kick(chs[i]);
    }
    return 0;
}
