/*
 * progress.h - how far a split send got, for plugins that cut long texts
 * into several posts.  When part 3 of 5 fails and the core retries the
 * action, the plugin resumes at part 3 instead of posting 1 and 2 again.
 * A small table per channel; when full, the oldest entry is forgotten (its
 * retry then starts over, a duplicate rather than a loss).
 */
#ifndef FRONTDESK_PROGRESS_H
#define FRONTDESK_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PROGRESS_MAX 32

struct progress {
    int64_t action_id;
    size_t done; /* parts already posted */
    int64_t aux; /* the plugin's own note (Discourse: the PM topic opened) */
};

struct progress_table {
    struct progress v[PROGRESS_MAX];
    size_t n;
};

static inline struct progress *progress_find(struct progress_table *t,
                                             int64_t action_id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].action_id == action_id)
            return &t->v[i];
    return NULL;
}

static inline void progress_drop(struct progress_table *t, int64_t action_id)
{
    struct progress *p = progress_find(t, action_id);
    if (p)
        *p = t->v[--t->n];
}

/* Records that `done` parts of the action are out; returns its entry. */
static inline struct progress *progress_note(struct progress_table *t,
                                             int64_t action_id, size_t done)
{
    struct progress *p = progress_find(t, action_id);
    if (!p) {
        if (t->n == PROGRESS_MAX) { /* forget the oldest */
            t->n--;
            memmove(t->v, t->v + 1, sizeof t->v[0] * t->n);
        }
        p = &t->v[t->n++];
        *p = (struct progress){.action_id = action_id};
    }
    p->done = done;
    return p;
}

#endif
