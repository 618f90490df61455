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

/* Token buckets for the platform's send limits. */
struct bucket {
    double tokens;
    int64_t at; /* ms of the last refill; 0: unused */
};

#define CHAT_BUCKETS 1024

struct chat_bucket {
    uint64_t hash;
    struct bucket b;
};

struct outq {
    struct fd_channel *ch;
    struct outq *next_kick; /* on the list kicked at the end of the turn */
    bool kick_queued;
    struct bucket all;
    struct chat_bucket chats[CHAT_BUCKETS];
    struct item *head, *tail;
    int in_flight, pending;
    struct loop_timer *timer;
    int64_t timer_at;
};

static struct store *store;
static bool paused;
static int total_in_flight;
static struct outq *to_kick;
static int sending; /* inside a plugin's send() */

bool outbox_sending(void) { return sending > 0; }

/* Kicks queues at the end of the loop turn: results of sends (which may
 * arrive inside a plugin's send()) never re-enter the kick that made them. */
static void kick_at_turn_end(struct outq *q)
{
    if (q->kick_queued)
        return;
    q->kick_queued = true;
    q->next_kick = to_kick;
    to_kick = q;
}

bool outbox_turn(void)
{
    bool any = to_kick != NULL;
    while (to_kick) {
        struct outq *q = to_kick;
        to_kick = q->next_kick;
        q->kick_queued = false;
        outbox_kick(q->ch);
    }
    return any;
}

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
    for (struct outq **pp = &to_kick; *pp; pp = &(*pp)->next_kick)
        if (*pp == q) {
            *pp = q->next_kick;
            break;
        }
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
    if (at <= now) {
        kick_at_turn_end(q);
        return;
    }
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

static void refill(struct bucket *b, double per_ms, double cap, int64_t now)
{
    if (!b->at) {
        b->tokens = cap;
        b->at = now;
    }
    b->tokens += (double)(now - b->at) * per_ms;
    if (b->tokens > cap)
        b->tokens = cap;
    b->at = now;
}

/* ms until the bucket holds one token (0: now). */
static int64_t bucket_wait(struct bucket *b, double per_ms, double cap,
                           int64_t now)
{
    if (per_ms <= 0)
        return 0;
    refill(b, per_ms, cap, now);
    return b->tokens >= 1 ? 0 : (int64_t)((1 - b->tokens) / per_ms) + 1;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ? h : 1;
}

/* The bucket of one conversation; a slot idle for two minutes is full again
 * anyway, so it may be reused. */
static struct bucket *chat_bucket(struct outq *q, const char *key, int64_t now)
{
    uint64_t h = fnv1a(key);
    for (size_t i = 0; i < 16; i++) {
        struct chat_bucket *c = &q->chats[(h + i) % CHAT_BUCKETS];
        if (c->hash == h)
            return &c->b;
        if (!c->hash || now - c->b.at > 120000) {
            c->hash = h;
            c->b.at = 0;
            return &c->b;
        }
    }
    return NULL; /* table crowded: no per-chat limit for this one */
}

/* How long `it` must wait for the rate limits; takes the tokens when 0. */
static int64_t throttle(struct outq *q, const struct item *it, const char *key,
                        int64_t now)
{
    struct fd_channel *ch = q->ch;
    double all_ms = ch->rate_per_s / 1000.0;
    double per_min = it->rec.kind == FD_ACTION_DM || it->rec.is_private
                         ? ch->dm_per_min : ch->chat_per_min;
    double chat_ms = per_min / 60000.0;
    /* Small bursts: a second's worth overall, a tenth of a minute per chat,
     * so a sliding minute never sees much more than the published rate. */
    double all_cap = ch->rate_per_s > 1 ? ch->rate_per_s : 1;
    double chat_cap = per_min / 10 > 1 ? per_min / 10 : 1;
    struct bucket *cb = chat_ms > 0 ? chat_bucket(q, key, now) : NULL;
    int64_t w1 = bucket_wait(&q->all, all_ms, all_cap, now);
    int64_t w2 = cb ? bucket_wait(cb, chat_ms, chat_cap, now) : 0;
    if (w1 || w2)
        return w1 > w2 ? w1 : w2;
    if (all_ms > 0)
        q->all.tokens -= 1;
    if (cb)
        cb->tokens -= 1;
    return 0;
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
    sending++;
    int rc = ch->def->send(ch, &a, &it->token);
    sending--;
    if (rc < 0 && it->in_flight) {
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
        if (waits)
            continue;
        int64_t wait = throttle(q, it, key, now);
        if (wait) {
            q->ch->counters[CNT_THROTTLED]++;
            if (!next_due || now + wait < next_due)
                next_due = now + wait;
            continue;
        }
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
    case FD_SEND_HANDOFF:
        /* Not silently dropped: humans take the case (and the bot stays
         * quiet on it), the action stays listed as a dead letter. */
        st = OUTBOX_DEAD;
        ch->counters[CNT_DEAD]++;
        store_case_update(store, r->case_id, CASE_HUMAN, NULL, "platform", false);
        log_msg(LOG_WARN, ch->platform, ch->name,
                "outbox %" PRId64 " given up after %d attempt(s): %s; case %" PRId64
                " handed to humans (queue platform)",
                r->id, r->attempts, *err ? err : "cannot deliver", r->case_id);
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

static bool queued(struct fd_channel *ch, int64_t id)
{
    for (struct item *it = ch->outq ? ch->outq->head : NULL; it; it = it->next)
        if (it->rec.id == id && !it->gone)
            return true;
    return false;
}

static void resume_one(void *ud, struct outbox_rec *r)
{
    bool rescan = ud != NULL;
    struct fd_channel *ch = r->channel ? host_channel(r->channel) : NULL;
    if (ch && rescan && queued(ch, r->id))
        return;
    if (!ch) {
        log_warn("outbox", "entry %" PRId64 " is for channel %s, which is not "
                 "configured: left pending", r->id, r->channel ? r->channel : "?");
        return;
    }
    outbox_push(ch, r);
}

int outbox_resume(struct store *st, bool rescan)
{
    if (store_outbox_list(st, OUTBOX_PENDING, resume_one, rescan ? st : NULL) < 0)
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
