/*
 * state.c - the webchat plugin's in-memory state: board posts, visitors with
 * their private conversations, text hygiene, and the JSON the browsers get.
 *
 * Invariants: every string here is valid UTF-8 without NUL or control
 * characters but newline/tab (wc_clean_text is the only way in), so the JSON
 * we send can never make a browser drop the websocket (browsers close on
 * invalid UTF-8).  Hidden posts lose their text at once (zeroed, freed).
 * Every collection has a hard limit from webchat.h.
 *
 * Threading: loop thread only.
 */
#include "webchat.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HIDDEN_NOTE "Hidden by the bot: this post contained private data."

int64_t wc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Length of the UTF-8 sequence at s (at most `left` bytes), or 0 when it is
 * not a well-formed one (overlong, surrogate, beyond U+10FFFF, cut off). */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    size_t n;
    unsigned min, cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2; min = 0x80; cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3; min = 0x800; cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4; min = 0x10000; cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

bool wc_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

char *wc_clean_text(const char *s, size_t max, bool oneline)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    if (!wc_utf8_valid(s, len))
        return NULL;
    /* Trim ASCII white space at both ends. */
    while (len && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' ||
                   *s == '\f' || *s == '\v')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
                   s[len - 1] == '\n' || s[len - 1] == '\r' ||
                   s[len - 1] == '\f' || s[len - 1] == '\v'))
        len--;
    if (len == 0)
        return NULL;
    /* Cut at `max` on a character boundary. */
    if (len > max) {
        size_t i = 0;
        const unsigned char *p = (const unsigned char *)s;
        while (i < len) {
            size_t n = utf8_seq(p + i, len - i);
            if (i + n > max)
                break;
            i += n;
        }
        len = i;
    }
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0x7f || (c < 0x20 && c != '\n' && c != '\t') ||
            (oneline && c < 0x20))
            c = ' ';
        out[i] = (char)c;
    }
    out[len] = '\0';
    return out;
}

bool wc_visitor_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n < WC_MIN_VISITOR_ID || n > WC_MAX_VISITOR_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Copies src into a fixed field; src is short and clean by contract, but a
 * cut here must still land on a character boundary. */
static void copy_field(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* ---- board ------------------------------------------------------------ */

static void post_free(struct wc_post *p)
{
    if (!p)
        return;
    wipe_free(p->text);
    for (int i = 0; i < p->nanswers; i++)
        free(p->answers[i].text);
    free(p);
}

/* Adds a post, taking ownership of `text` (freed on failure too); drops the
 * oldest post beyond the channel's history. */
struct wc_post *wc_post_add(struct webchat *wc, const char *id,
                            const struct wc_visitor *v, char *text)
{
    struct wc_post *p = calloc(1, sizeof *p);
    if (!p) {
        wipe_free(text);
        return NULL;
    }
    copy_field(p->id, sizeof p->id, id);
    copy_field(p->visitor, sizeof p->visitor, v->id);
    copy_field(p->name, sizeof p->name, v->name);
    p->text = text;
    p->ts = wc_now_ms();
    if (wc->nposts >= wc->history) {
        post_free(wc->posts[0]);
        memmove(wc->posts, wc->posts + 1,
                (size_t)(wc->nposts - 1) * sizeof *wc->posts);
        wc->nposts--;
    }
    wc->posts[wc->nposts++] = p;
    return p;
}

struct wc_post *wc_post_find(struct webchat *wc, const char *id)
{
    if (!id)
        return NULL;
    /* Answers usually concern recent posts: search from the newest. */
    for (int i = wc->nposts - 1; i >= 0; i--)
        if (strcmp(wc->posts[i]->id, id) == 0)
            return wc->posts[i];
    return NULL;
}

void wc_post_remove(struct webchat *wc, const char *id)
{
    for (int i = 0; i < wc->nposts; i++) {
        if (strcmp(wc->posts[i]->id, id) == 0) {
            post_free(wc->posts[i]);
            memmove(wc->posts + i, wc->posts + i + 1,
                    (size_t)(wc->nposts - i - 1) * sizeof *wc->posts);
            wc->nposts--;
            return;
        }
    }
}

void wc_post_hide(struct wc_post *p)
{
    wipe_free(p->text);
    p->text = NULL;
    p->hidden = true;
}

int wc_post_answer(struct wc_post *p, const char *text, int64_t case_id)
{
    char *t = wc_clean_text(text, WC_MAX_TEXT, false);
    if (!t)
        return FD_EINVAL;
    if (p->nanswers == WC_MAX_ANSWERS) {
        free(p->answers[0].text);
        memmove(p->answers, p->answers + 1,
                (WC_MAX_ANSWERS - 1) * sizeof p->answers[0]);
        p->nanswers--;
    }
    struct wc_answer *a = &p->answers[p->nanswers++];
    a->text = t;
    a->case_id = case_id;
    a->ts = wc_now_ms();
    return FD_OK;
}

void wc_board_free(struct webchat *wc)
{
    for (int i = 0; i < wc->nposts; i++)
        post_free(wc->posts[i]);
    free(wc->posts);
    wc->posts = NULL;
    wc->nposts = 0;
}

/* ---- visitors --------------------------------------------------------- */

struct wc_visitor *wc_visitor_find(struct webchat *wc, const char *id)
{
    if (!id)
        return NULL;
    for (struct wc_visitor *v = wc->visitors; v; v = v->next)
        if (strcmp(v->id, id) == 0)
            return v;
    return NULL;
}

static void visitor_unlink(struct webchat *wc, struct wc_visitor *v)
{
    if (v->prev)
        v->prev->next = v->next;
    else
        wc->visitors = v->next;
    if (v->next)
        v->next->prev = v->prev;
    v->prev = v->next = NULL;
}

static void visitor_free(struct wc_visitor *v)
{
    for (int i = 0; i < v->ndms; i++)
        wipe_free(v->dms[i].text);
    free(v);
}

struct wc_visitor *wc_visitor_get(struct webchat *wc, const char *id)
{
    struct wc_visitor *v = wc_visitor_find(wc, id);
    if (v) {
        /* Most recently seen first, so the tail is the eviction candidate. */
        if (v != wc->visitors) {
            visitor_unlink(wc, v);
            v->next = wc->visitors;
            wc->visitors->prev = v;
            wc->visitors = v;
        }
        return v;
    }
    if (wc->nvisitors >= WC_MAX_VISITORS) {
        struct wc_visitor *victim = NULL;
        for (struct wc_visitor *x = wc->visitors; x; x = x->next)
            if (!x->conns)
                victim = x; /* the last one offline is the least recent */
        if (!victim)
            return NULL;
        visitor_unlink(wc, victim);
        visitor_free(victim);
        wc->nvisitors--;
    }
    v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    copy_field(v->id, sizeof v->id, id);
    copy_field(v->name, sizeof v->name, "visitor");
    v->tokens = WC_RATE_BURST;
    v->tokens_at = wc_mono_ms();
    v->next = wc->visitors;
    if (wc->visitors)
        wc->visitors->prev = v;
    wc->visitors = v;
    wc->nvisitors++;
    return v;
}

int wc_visitor_dm(struct wc_visitor *v, const char *text, bool from_bot,
                  int64_t case_id)
{
    char *t = wc_clean_text(text, WC_MAX_TEXT, false);
    if (!t)
        return FD_EINVAL;
    size_t len = strlen(t);
    /* Drop the oldest messages until both limits hold. */
    while (v->ndms > 0 &&
           (v->ndms == WC_MAX_DMS || v->dm_bytes + len > WC_MAX_DM_BYTES)) {
        v->dm_bytes -= strlen(v->dms[0].text);
        wipe_free(v->dms[0].text);
        memmove(v->dms, v->dms + 1, (size_t)(v->ndms - 1) * sizeof v->dms[0]);
        v->ndms--;
        if (v->unread > v->ndms)
            v->unread = v->ndms;
    }
    struct wc_dm *d = &v->dms[v->ndms++];
    d->text = t;
    d->from_bot = from_bot;
    d->case_id = case_id;
    d->ts = wc_now_ms();
    v->dm_bytes += len;
    if (case_id > 0)
        v->last_case = case_id;
    return FD_OK;
}

bool wc_visitor_rate_ok(struct wc_visitor *v)
{
    int64_t now = wc_mono_ms();
    v->tokens += (double)(now - v->tokens_at) / WC_RATE_MS;
    v->tokens_at = now;
    if (v->tokens > WC_RATE_BURST)
        v->tokens = WC_RATE_BURST;
    if (v->tokens < 1.0)
        return false;
    v->tokens -= 1.0;
    return true;
}

void wc_visitors_free(struct webchat *wc)
{
    struct wc_visitor *v = wc->visitors;
    while (v) {
        struct wc_visitor *next = v->next;
        visitor_free(v);
        v = next;
    }
    wc->visitors = NULL;
    wc->nvisitors = 0;
}

/* ---- JSON for browsers ------------------------------------------------ */

/* cJSON_Add* return NULL on ENOMEM; we check once at the end by printing:
 * a missing field only makes a smaller message, never a crash. */
static char *print_free(cJSON *o)
{
    if (!o)
        return NULL;
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static cJSON *answer_json(const struct wc_answer *a)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "text", a->text);
    if (a->case_id > 0)
        cJSON_AddNumberToObject(o, "case", (double)a->case_id);
    cJSON_AddNumberToObject(o, "ts", (double)a->ts);
    return o;
}

struct cJSON *wc_post_json(const struct wc_post *p, const char *viewer)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", p->id);
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddNumberToObject(o, "ts", (double)p->ts);
    cJSON_AddBoolToObject(o, "mine",
                          viewer && strcmp(viewer, p->visitor) == 0);
    if (p->hidden) {
        cJSON_AddBoolToObject(o, "hidden", 1);
        cJSON_AddStringToObject(o, "note", HIDDEN_NOTE);
    } else {
        cJSON_AddStringToObject(o, "text", p->text ? p->text : "");
    }
    cJSON *arr = cJSON_AddArrayToObject(o, "answers");
    for (int i = 0; arr && i < p->nanswers; i++) {
        cJSON *a = answer_json(&p->answers[i]);
        if (a)
            cJSON_AddItemToArray(arr, a);
    }
    return o;
}

/* The newest posts whose JSON fits WC_MAX_BOARD_MSG (the core closes a
 * connection on an oversize message), oldest first. */
char *wc_msg_board(struct webchat *wc, const char *viewer)
{
    static const char head[] = "{\"type\":\"board\",\"posts\":[";
    char **parts = calloc((size_t)wc->nposts + 1, sizeof *parts);
    if (!parts)
        return NULL;
    size_t total = sizeof head + 2;
    int first = wc->nposts; /* index of the oldest post included */
    for (int i = wc->nposts - 1; i >= 0; i--) {
        const struct wc_post *p = wc->posts[i];
        if (p->held && !(viewer && strcmp(viewer, p->visitor) == 0))
            continue;
        char *s = print_free(wc_post_json(p, viewer));
        if (!s)
            continue;
        size_t n = strlen(s) + 1;
        if (total + n > WC_MAX_BOARD_MSG) {
            free(s);
            break;
        }
        parts[i] = s;
        total += n;
        first = i;
    }
    char *out = malloc(total + 1);
    if (out) {
        size_t len = sizeof head - 1;
        bool comma = false;
        memcpy(out, head, len);
        for (int i = first; i < wc->nposts; i++) {
            if (!parts[i])
                continue;
            if (comma)
                out[len++] = ',';
            size_t n = strlen(parts[i]);
            memcpy(out + len, parts[i], n);
            len += n;
            comma = true;
        }
        memcpy(out + len, "]}", 3);
    }
    for (int i = 0; i < wc->nposts; i++)
        free(parts[i]);
    free(parts);
    return out;
}

char *wc_msg_post(const struct wc_post *p, const char *viewer)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "type", "post");
    cJSON *pj = wc_post_json(p, viewer);
    if (pj)
        cJSON_AddItemToObject(o, "post", pj);
    return print_free(o);
}

char *wc_msg_answer(const struct wc_post *p, const struct wc_answer *a)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "type", "answer");
    cJSON_AddStringToObject(o, "post", p->id);
    cJSON_AddStringToObject(o, "text", a->text);
    if (a->case_id > 0)
        cJSON_AddNumberToObject(o, "case", (double)a->case_id);
    cJSON_AddNumberToObject(o, "ts", (double)a->ts);
    return print_free(o);
}

char *wc_msg_hidden(const struct wc_post *p)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "type", "hidden");
    cJSON_AddStringToObject(o, "post", p->id);
    cJSON_AddStringToObject(o, "note", HIDDEN_NOTE);
    return print_free(o);
}

static cJSON *dm_json(const struct wc_dm *d)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "from", d->from_bot ? "bot" : "you");
    cJSON_AddStringToObject(o, "text", d->text);
    if (d->case_id > 0)
        cJSON_AddNumberToObject(o, "case", (double)d->case_id);
    cJSON_AddNumberToObject(o, "ts", (double)d->ts);
    return o;
}

char *wc_msg_dm(const struct wc_dm *d)
{
    cJSON *o = dm_json(d);
    if (!o)
        return NULL;
    /* "type" first reads better in logs; order does not matter to JS. */
    cJSON_AddStringToObject(o, "type", "dm");
    return print_free(o);
}

char *wc_msg_dms(const struct wc_visitor *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "type", "dms");
    cJSON_AddNumberToObject(o, "unread", v->unread);
    if (v->last_case > 0)
        cJSON_AddNumberToObject(o, "case", (double)v->last_case);
    cJSON *arr = cJSON_AddArrayToObject(o, "messages");
    for (int i = 0; arr && i < v->ndms; i++) {
        cJSON *d = dm_json(&v->dms[i]);
        if (d)
            cJSON_AddItemToArray(arr, d);
    }
    return print_free(o);
}

char *wc_msg_simple(const char *type, const char *key, const char *value)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "type", type);
    if (key && value)
        cJSON_AddStringToObject(o, key, value);
    return print_free(o);
}
