/*
 * router.c - one inbound message, start to end, in one store transaction:
 * dedupe on (channel, event id), find or open the case, run the channel's
 * script (unless humans have the case), turn its actions into outbox
 * entries and case changes, commit, then hand the entries to the outbox.
 *
 * A script error or budget overrun discards the script's actions and hands
 * the case to humans instead, so nothing is half-processed.
 */
#include "router.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "log.h"
#include "outbox.h"
#include "script.h"
#include "store.h"

/* An outbox entry committed with the batch, then handed to the outbox. */
struct queued {
    struct fd_channel *ch;
    struct outbox_rec rec;
};

struct router {
    struct store *st;
    int idle_hours;
    bool draining, batching, flushing;
    cJSON *capture;
    struct queued *q; /* waiting for the batch's commit */
    size_t nq, capq;
    void (*committed)(bool ok); /* after each batch (webhook answers) */
    uint64_t batch_no;          /* the open (or next) batch, from 1 */
    uint64_t last_failed;       /* the newest batch whose commit failed */
};

static uint64_t failures;

struct router *router_new(struct store *st, int case_idle_hours)
{
    struct router *r = calloc(1, sizeof *r);
    if (r) {
        r->st = st;
        r->idle_hours = case_idle_hours > 0 ? case_idle_hours : 24;
        r->batch_no = 1;
    }
    return r;
}

static void drop_queued(struct router *r)
{
    for (size_t i = 0; i < r->nq; i++)
        outbox_rec_clear(&r->q[i].rec);
    r->nq = 0;
}

void router_free(struct router *r)
{
    if (!r)
        return;
    drop_queued(r);
    free(r->q);
    free(r);
}

void router_set_batching(struct router *r, bool on, void (*committed)(bool ok))
{
    r->batching = on;
    r->committed = committed;
    store_set_batching(r->st, on);
}

bool router_batch_open(struct router *r) { return store_in_tx(r->st); }

/* Hands committed entries to their channels' outboxes and kicks each. */
static void hand_over(struct router *r)
{
    struct fd_channel *last = NULL;
    for (size_t i = 0; i < r->nq; i++) {
        struct fd_channel *ch = r->q[i].ch;
        outbox_push(ch, &r->q[i].rec); /* takes the strings */
        if (ch != last && last && last->plugin)
            outbox_kick(last);
        last = ch;
    }
    r->nq = 0;
    if (last && last->plugin)
        outbox_kick(last);
}

int router_flush(struct router *r)
{
    if (!r || r->flushing || !store_in_tx(r->st))
        return 0;
    r->flushing = true;
    int rc = store_flush(r->st);
    if (rc < 0) {
        failures++;
        log_error("store", "commit failed (%s): %zu action(s) and this turn's "
                  "deliveries dropped; platforms retry what was not answered 200",
                  store_errmsg(r->st), r->nq);
        drop_queued(r);
        r->last_failed = r->batch_no;
    } else {
        hand_over(r);
    }
    r->batch_no++;
    if (r->committed)
        r->committed(rc == 0);
    r->flushing = false;
    return rc;
}

/* Batches are numbered in order, so "a batch since the channel's first
 * unchecked delivery failed" is one comparison with the newest failure. */
static void note_delivery(struct router *r, struct fd_channel *ch)
{
    if (r->batching && !ch->unchecked_batch)
        ch->unchecked_batch = r->batch_no;
}

int router_commit(struct fd_channel *ch)
{
    struct router *r = ch->router;
    router_flush(r);
    uint64_t first = ch->unchecked_batch;
    ch->unchecked_batch = 0;
    return first && r->last_failed >= first ? FD_ESTORE : FD_OK;
}

struct store *router_store(struct router *r) { return r->st; }
void router_set_draining(struct router *r, bool d) { r->draining = d; }
void router_capture(struct router *r, cJSON *sink) { r->capture = sink; }
uint64_t router_failures(void) { return failures; }

/* Outbox entries of one message, pushed to the outbox after the commit.
 * Lives on the stack per delivery: only n is initialised, never the whole
 * 12 KB (entries are set as they are queued). */
struct pending {
    struct outbox_rec v[128];
    size_t n;
};

static void pending_clear(struct pending *p)
{
    for (size_t i = 0; i < p->n; i++)
        outbox_rec_clear(&p->v[i]);
    p->n = 0;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static int queue_rec(struct router *r, struct pending *p, struct fd_channel *ch,
                     int kind, int64_t case_id, const char *text,
                     const char *chat_id, const char *message_id,
                     const char *thread, const char *user_id, bool is_private)
{
    if (p->n >= sizeof p->v / sizeof p->v[0])
        return -1;
    struct outbox_rec *o = &p->v[p->n];
    memset(o, 0, sizeof *o);
    o->channel = strdup(ch->name);
    o->case_id = case_id;
    o->kind = kind;
    o->is_private = is_private;
    o->text = dup_or_null(text);
    o->chat_id = dup_or_null(chat_id);
    o->message_id = dup_or_null(message_id);
    o->thread = dup_or_null(thread);
    o->user_id = dup_or_null(user_id);
    o->state = OUTBOX_PENDING;
    if (store_outbox_add(r->st, o) < 0) {
        outbox_rec_clear(o);
        return -1;
    }
    p->n++;
    return 0;
}

static cJSON *capture(struct router *r, const char *action, const char *text)
{
    if (!r->capture)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "action", action);
    if (text)
        cJSON_AddStringToObject(o, "text", text);
    cJSON_AddItemToArray(r->capture, o);
    return o;
}

/* Waiting DMs of a case become pending again (the user opened the DM). */
struct wake {
    int64_t case_id;
    struct pending *p;
};

static void wake_one(void *ud, struct outbox_rec *rec)
{
    struct wake *w = ud;
    if (rec->case_id != w->case_id ||
        w->p->n >= sizeof w->p->v / sizeof w->p->v[0])
        return;
    struct outbox_rec *o = &w->p->v[w->p->n++];
    *o = *rec;
    memset(rec, 0, sizeof *rec); /* strings now belong to o */
    o->state = OUTBOX_PENDING;
    o->next_at = 0;
}

static int link_case(struct router *r, struct fd_channel *ch,
                     const struct fd_msg *m, const char *user,
                     struct case_rec *c, struct pending *p)
{
    char *end;
    long long id = strtoll(m->link_case, &end, 10);
    if (*end || id <= 0 || store_case_get(r->st, id, c) != 1)
        return 0;
    if (strcmp(c->channel, ch->name) || strcmp(c->user_id, user) ||
        c->state == CASE_CLOSED)
        return 0; /* someone else's link: open their own case instead */
    struct wake w = {.case_id = c->id, .p = p};
    size_t before = p->n;
    if (store_outbox_list(r->st, OUTBOX_WAITING_DM, wake_one, &w) < 0)
        return -1;
    for (size_t i = before; i < p->n; i++)
        if (store_outbox_set(r->st, p->v[i].id, OUTBOX_PENDING,
                             p->v[i].attempts, 0, NULL) < 0)
            return -1;
    if (c->state == CASE_BOT)
        c->state = CASE_PRIVATE;
    log_msg(LOG_INFO, ch->platform, ch->name,
            "case %" PRId64 " continues in private (%zu waiting message(s))",
            c->id, p->n - before);
    return 1;
}

static int find_case(struct router *r, struct fd_channel *ch,
                     const struct fd_msg *m, const char *user,
                     struct case_rec *c, struct pending *p)
{
    if (m->link_case && *m->link_case) {
        int rc = link_case(r, ch, m, user, c, p);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
    int64_t since = store_now_ms() - (int64_t)r->idle_hours * 3600 * 1000;
    int rc = store_case_find_open(r->st, ch->name, user, since, c);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return 0;
    memset(c, 0, sizeof *c);
    c->state = CASE_BOT;
    snprintf(c->channel, sizeof c->channel, "%s", ch->name);
    snprintf(c->user_id, sizeof c->user_id, "%s", user);
    return store_case_create(r->st, ch->name, user, &c->id);
}

/* Carries out the script's actions; returns the case's new state or -1. */
static int apply(struct router *r, struct fd_channel *ch,
                 const struct fd_msg *m, const char *user, struct case_rec *c,
                 const struct script_result *res, struct pending *p,
                 const char **tag, const char **queue)
{
    int state = c->state;
    const char *mid = m->message_id ? m->message_id : m->event_id;
    /* Hides go out first, whatever the script's order: a post with private
     * data must leave the public page before anything else happens. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < res->n; i++) {
            const struct script_action *a = &res->v[i];
            if ((a->kind == SCRIPT_HIDE) != (pass == 0))
                continue;
            const char *pub = NULL, *priv = NULL;
            switch (a->kind) {
            case SCRIPT_REPLY:
                pub = a->a;
                break;
            case SCRIPT_DM:
                priv = a->a;
                break;
            case SCRIPT_TO_PRIVATE:
                pub = a->a;
                priv = a->b;
                break;
            case SCRIPT_HANDOFF: {
                state = CASE_HUMAN;
                *queue = a->b ? a->b : "support";
                cJSON *o = capture(r, "handoff", a->a);
                if (o)
                    cJSON_AddStringToObject(o, "queue", *queue);
                log_msg(LOG_INFO, ch->platform, ch->name,
                        "case %" PRId64 " handed to humans (queue %s)", c->id,
                        *queue);
                continue;
            }
            case SCRIPT_HIDE:
                capture(r, "hide", NULL);
                if (m->is_private)
                    continue;
                if (!(ch->caps & FD_CAP_HIDE)) {
                    log_msg(LOG_INFO, ch->platform, ch->name,
                            "hide: %s cannot hide posts; nothing done",
                            ch->platform);
                    continue;
                }
                if (queue_rec(r, p, ch, FD_ACTION_HIDE, c->id, NULL, m->chat_id,
                              mid, m->thread, user, m->is_private) < 0)
                    return -1;
                continue;
            case SCRIPT_TAG:
                *tag = a->a;
                capture(r, "tag", a->a);
                continue;
            }
            if (pub) {
                capture(r, "reply", pub);
                if (queue_rec(r, p, ch, FD_ACTION_REPLY, c->id, pub, m->chat_id,
                              mid, m->thread, user, m->is_private) < 0)
                    return -1;
            }
            if (priv) {
                capture(r, "dm", priv);
                if (!(ch->caps & FD_CAP_DM) && !m->is_private) {
                    /* Never post private text publicly: humans take over. */
                    log_msg(LOG_WARN, ch->platform, ch->name,
                            "%s cannot send private messages: case %" PRId64
                            " handed to humans instead",
                            ch->platform, c->id);
                    state = CASE_HUMAN;
                    *queue = "private";
                    continue;
                }
                if (queue_rec(r, p, ch, FD_ACTION_DM, c->id, priv, m->chat_id,
                              mid, m->thread, user, m->is_private) < 0)
                    return -1;
                if (a->kind == SCRIPT_TO_PRIVATE && state == CASE_BOT)
                    state = CASE_PRIVATE;
            }
        }
    }
    return state;
}

static int process(struct router *r, struct fd_channel *ch,
                   const struct fd_msg *m, struct pending *p)
{
    const char *user = m->user_id && *m->user_id ? m->user_id : "anonymous";
    struct case_rec c;
    if (find_case(r, ch, m, user, &c, p) < 0)
        return -1;
    if (c.state == CASE_HUMAN) {
        log_msg(LOG_INFO, ch->platform, ch->name,
                "case %" PRId64 " is with humans: message kept, no script",
                c.id);
        if (r->capture) {
            cJSON *o = capture(r, "held", NULL);
            cJSON_AddNumberToObject(o, "case", (double)c.id);
        }
        return store_case_update(r->st, c.id, -1, NULL, NULL, true);
    }

    struct script_msg sm = {
        .id = m->message_id ? m->message_id : m->event_id,
        .text = m->text ? m->text : "",
        .platform = ch->platform,
        .channel = ch->name,
        .is_private = m->is_private,
        .user_id = user,
        .user_name = m->user_name && *m->user_name ? m->user_name
                     : m->user_handle && *m->user_handle ? m->user_handle
                                                          : user,
        .user_handle = m->user_handle,
        .chat_id = m->chat_id ? m->chat_id : user,
        .thread = m->thread,
        .case_id = c.id,
        .case_state = case_state_name(c.state),
    };
    struct script_result res = {0};
    char err[512] = "no script loaded";
    int state;
    const char *tag = NULL, *queue = NULL;
    cJSON *first = NULL;
    int ncap = r->capture ? cJSON_GetArraySize(r->capture) : 0;
    if (!ch->script || script_call(ch->script, &sm, &res, err, sizeof err) < 0) {
        ch->counters[CNT_SCRIPT_ERR]++;
        log_msg(LOG_WARN, ch->platform, ch->name,
                "script error: %s; case %" PRId64 " handed to humans", err,
                c.id);
        state = CASE_HUMAN;
        queue = "script-error";
        first = capture(r, "handoff", err);
        if (first)
            cJSON_AddStringToObject(first, "queue", queue);
    } else {
        state = apply(r, ch, m, user, &c, &res, p, &tag, &queue);
    }
    if (state >= 0 && store_case_update(r->st, c.id, state == c.state ? -1 : state,
                                        tag, queue, true) < 0)
        state = -1;
    script_result_clear(&res);
    if (state < 0)
        return -1;
    for (int i = ncap; r->capture && i < cJSON_GetArraySize(r->capture); i++) {
        cJSON *o = cJSON_GetArrayItem(r->capture, i);
        cJSON_AddNumberToObject(o, "case", (double)c.id);
        cJSON_AddStringToObject(o, "state", case_state_name(state));
    }
    return 0;
}

/* Entries of one message: to the outbox now when every message commits
 * alone, else held until the batch's commit, so nothing is sent that the
 * store might still lose. */
static int hand_or_hold(struct router *r, struct fd_channel *ch,
                        struct pending *p)
{
    if (!r->batching) {
        for (size_t i = 0; i < p->n; i++)
            outbox_push(ch, &p->v[i]); /* takes the strings */
        p->n = 0;
        if (ch->plugin)
            outbox_kick(ch);
        return 0;
    }
    if (r->nq + p->n > r->capq) {
        size_t cap = r->capq ? r->capq * 2 : 256;
        while (cap < r->nq + p->n)
            cap *= 2;
        struct queued *v = realloc(r->q, cap * sizeof *v);
        if (!v) {
            pending_clear(p);
            return -1;
        }
        r->q = v;
        r->capq = cap;
    }
    for (size_t i = 0; i < p->n; i++) {
        r->q[r->nq].ch = ch;
        r->q[r->nq++].rec = p->v[i]; /* strings move */
    }
    p->n = 0;
    return 0;
}

int router_deliver(struct fd_channel *ch, const struct fd_msg *m)
{
    if (!ch || !m || !m->event_id || !*m->event_id)
        return FD_EINVAL;
    struct router *r = ch->router;
    if (r->draining) {
        failures++;
        return FD_ESTOPPED;
    }
    struct pending p;
    p.n = 0;
    if (store_savepoint(r->st) < 0)
        goto fail;
    int fresh = store_seen_add(r->st, ch->name, m->event_id);
    if (fresh < 0)
        goto fail_undo;
    if (fresh == 0) {
        store_rollback_to(r->st);
        note_delivery(r, ch); /* its first record may be in the open batch */
        ch->counters[CNT_DUP]++;
        log_msg(LOG_DEBUG, ch->platform, ch->name,
                "delivery %s seen before: dropped", m->event_id);
        return FD_DUPLICATE;
    }
    if (process(r, ch, m, &p) < 0 || store_release(r->st) < 0)
        goto fail_undo;
    ch->counters[CNT_IN]++;
    note_delivery(r, ch);
    if (hand_or_hold(r, ch, &p) < 0)
        log_msg(LOG_ERROR, ch->platform, ch->name,
                "out of memory: delivery %s recorded, its actions are sent "
                "after a restart", m->event_id);
    return FD_OK;
fail_undo:
    store_rollback_to(r->st);
fail:
    pending_clear(&p);
    failures++;
    log_msg(LOG_ERROR, ch->platform, ch->name,
            "delivery %s not recorded (store: %s); the platform must retry",
            m->event_id, store_errmsg(r->st));
    return FD_ESTORE;
}

int router_queue(struct fd_channel *ch, int kind, int64_t case_id,
                 const char *text, const char *chat_id,
                 const char *message_id, const char *thread,
                 const char *user_id, bool is_private)
{
    struct router *r = ch->router;
    struct pending p;
    p.n = 0;
    if (queue_rec(r, &p, ch, kind, case_id, text, chat_id, message_id, thread,
                  user_id, is_private) < 0)
        return -1;
    return hand_or_hold(r, ch, &p) < 0 ? -1 : 0;
}
