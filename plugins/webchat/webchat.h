/*
 * webchat.h - shared declarations of the webchat plugin: the demo web page
 * with a public board and a private chat pane per visitor.
 *
 * State lives in memory only, per channel (struct webchat): the last
 * `history` board posts, the visitors seen (each with its private
 * conversation and open connections), and every browser connection.  Every
 * collection is bounded (limits below), so a browser can never make the
 * daemon grow without end.  A restart clears the board; the outbox is still
 * durable, so an action pending at restart reaches the re-created visitor.
 *
 * Threading: everything runs on the daemon's loop thread.
 */
#ifndef WEBCHAT_H
#define WEBCHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin_api.h"

struct cJSON;

#define WC_MAX_FRAME 16384     /* bytes of one websocket message in */
#define WC_MAX_BOARD_MSG (512 * 1024) /* the board sent on hello */
#define WC_MAX_TEXT 4096       /* bytes of one post or private message */
#define WC_MAX_NAME 40         /* bytes of a display name */
#define WC_MIN_VISITOR_ID 16   /* a visitor id is a bearer secret: not short */
#define WC_MAX_VISITOR_ID 64
#define WC_MAX_ANSWERS 8       /* answers kept under one post (newest) */
#define WC_MAX_DMS 40          /* private messages kept per visitor */
#define WC_MAX_DM_BYTES 65536  /* and their total text */
#define WC_MAX_VISITORS 1000   /* offline ones are forgotten beyond this */
#define WC_DEFAULT_HISTORY 100
#define WC_MAX_HISTORY 1000
/* Token bucket per visitor: a burst of RATE_BURST messages, then one per
 * RATE_MS; keeps one browser from flooding scripts and the outbox. */
#define WC_RATE_BURST 10
#define WC_RATE_MS 1000
/* Other visitors see a new post this long after its author: the script's
 * hide is carried out within a few loop turns, so posted bank data is
 * usually hidden before anyone else's board shows it.  Best effort: a
 * slower hide still replaces the post everywhere when it comes. */
#define WC_HOLD_MS 300

struct wc_answer {
    char *text;
    int64_t case_id;
    int64_t ts;  /* ms since the epoch */
};

struct wc_post {
    char id[48];
    char visitor[WC_MAX_VISITOR_ID + 1]; /* author; never sent to others */
    char name[WC_MAX_NAME + 1];
    char *text;                          /* NULL once hidden */
    bool hidden;
    bool held;                           /* only its author sees it yet */
    int64_t held_until;                  /* monotonic ms */
    int64_t ts;
    struct wc_answer answers[WC_MAX_ANSWERS];
    int nanswers;
};

struct wc_dm {
    char *text;
    bool from_bot;
    int64_t case_id;
    int64_t ts;
};

struct wc_conn;

struct wc_visitor {
    char id[WC_MAX_VISITOR_ID + 1];
    char name[WC_MAX_NAME + 1];
    struct wc_dm dms[WC_MAX_DMS]; /* oldest first */
    int ndms;
    size_t dm_bytes;
    int unread;                   /* bot messages not yet shown */
    int64_t last_case;
    double tokens;                /* rate limit */
    int64_t tokens_at;
    struct wc_conn *conns;        /* open tabs, linked by vnext */
    struct wc_visitor *prev, *next; /* most recently active first */
};

struct wc_conn {
    struct fd_conn *c;
    struct webchat *wc;
    struct wc_visitor *v;         /* NULL until hello */
    struct wc_conn *prev, *next;  /* every conn of the channel */
    struct wc_conn *vnext;        /* conns of the same visitor */
};

struct webchat {
    struct fd_channel *ch;
    char *page;
    size_t page_len;
    int history;
    char boot[17];                /* random per start: ids stay unique */
    uint64_t seq;
    struct wc_post **posts;       /* oldest first, at most `history` */
    int nposts;
    struct wc_visitor *visitors;  /* most recently seen first */
    int nvisitors;
    struct wc_conn *conns;
    struct fd_timer *release;     /* pending release of held posts */
};

extern const struct fd_host *wc_host;

/* ---- state.c ---------------------------------------------------------- */

int64_t wc_now_ms(void);
int64_t wc_mono_ms(void);
/* A malloc'd copy of s with surrounding white space trimmed, control
 * characters (but newline and tab) turned into spaces and at most `max`
 * bytes (cut on a character boundary).  NULL when s is not valid UTF-8, is
 * empty after trimming, or memory ran out.  `oneline` turns newlines and
 * tabs into spaces too. */
char *wc_clean_text(const char *s, size_t max, bool oneline);
bool wc_utf8_valid(const char *s, size_t len);
bool wc_visitor_id_ok(const char *id);

struct wc_post *wc_post_add(struct webchat *wc, const char *id,
                            const struct wc_visitor *v, char *text);
struct wc_post *wc_post_find(struct webchat *wc, const char *id);
void wc_post_remove(struct webchat *wc, const char *id);
void wc_post_hide(struct wc_post *p);
int wc_post_answer(struct wc_post *p, const char *text, int64_t case_id);
void wc_board_free(struct webchat *wc);

struct wc_visitor *wc_visitor_find(struct webchat *wc, const char *id);
/* Finds or creates (evicting the longest-unseen offline visitor when
 * full); NULL when every slot holds a connected visitor or on ENOMEM. */
struct wc_visitor *wc_visitor_get(struct webchat *wc, const char *id);
int wc_visitor_dm(struct wc_visitor *v, const char *text, bool from_bot,
                  int64_t case_id);
bool wc_visitor_rate_ok(struct wc_visitor *v);
void wc_visitors_free(struct webchat *wc);

/* JSON for the browsers; each returns a malloc'd string or NULL. `viewer`
 * marks the author's own posts ("mine"); held posts of others are left
 * out of the board. */
struct cJSON *wc_post_json(const struct wc_post *p, const char *viewer);
char *wc_msg_board(struct webchat *wc, const char *viewer);
char *wc_msg_post(const struct wc_post *p, const char *viewer);
char *wc_msg_answer(const struct wc_post *p, const struct wc_answer *a);
char *wc_msg_hidden(const struct wc_post *p);
char *wc_msg_dm(const struct wc_dm *d);
char *wc_msg_dms(const struct wc_visitor *v);
char *wc_msg_simple(const char *type, const char *key, const char *value);

/* ---- assets.c --------------------------------------------------------- */

/* Builds the page (embedded HTML with the style, script and the
 * HTML-escaped title filled in) into a malloc'd buffer. */
int wc_page_build(const char *title, char **out, size_t *outlen);

#endif
