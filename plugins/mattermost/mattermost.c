/*
 * mattermost.c - the Mattermost plugin (one bot account per channel): the
 * plugin table, configuration, start/stop, the REST plumbing every call
 * shares, and the small caches.
 *
 * Inbound (socket.c, inbound.c): the websocket at /api/v4/websocket,
 * authenticated with the token (header and authentication_challenge);
 * `posted` events become fd_msgs with the post id as event id.  Posts
 * missed while the socket was down come back either from the server (a
 * reconnect with connection_id + sequence_number replays them) or, when the
 * server lost them, from GET /channels/{id}/posts?since=.  Outbound
 * (send.c): POST /posts (threads by root_id), POST /channels/direct for
 * DMs, DELETE /posts/{id} to hide.
 *
 * Channel types: O (open) and P (private channel) are public to the case
 * model, D (direct with the bot) is private, and G (group DM) counts as
 * public: other people read it, so nothing private is ever posted there
 * (the private part of a to_private goes to the user's own DM).
 *
 * The token travels only in the Authorization header (REST and websocket
 * upgrade) and in the authentication_challenge: never in a URL or a log.
 * Lifetimes: every HTTP call carries a `struct call` listed in its channel;
 * a done callback that finds its channel gone or the call cancelled only
 * frees its context.  The host drops timers and closes websockets before
 * stop(), so their callbacks may use the channel state freely.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mattermost.h"

const struct fd_host *mm_host;

/* ---- helpers ------------------------------------------------------------ */

const char *mm_json_str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* An integer sent as a JSON number (timestamps in ms, seq).  Anything that
 * is not an integer within 2^53 is refused rather than rounded. */
bool mm_json_int64(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0))
        return false;
    if (d != (double)(int64_t)d)
        return false;
    *out = (int64_t)d;
    return true;
}

/* Every id Mattermost hands out (model.NewId) is 26 characters of
 * [a-z0-9].  Only such ids go into URLs and bodies, so nothing from the
 * network can change a request's path. */
bool mm_is_id(const char *s)
{
    return s && strlen(s) == ID_LEN &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789") == ID_LEN;
}

int64_t mm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mm_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Byte length of s cut to at most max bytes without splitting a UTF-8
 * sequence (for log excerpts). */
int mm_utf8_prefix(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

/* ---- calls --------------------------------------------------------------- */

struct call *mm_call_new(enum call_kind kind)
{
    struct call *c = calloc(1, sizeof *c);
    if (c)
        c->kind = kind;
    return c;
}

static void call_free(struct call *c)
{
    if (c) {
        mm_msend_free(c->s);
        free(c);
    }
}

static void on_http_done(void *ud, const struct fd_http_response *r);

int mm_api_call(struct mm *t, struct call *c, const char *method,
                const char *path, const char *body)
{
    size_t n = strlen(t->api) + strlen(path) + 1;
    char *url = malloc(n);
    if (!url)
        return -1;
    snprintf(url, n, "%s%s", t->api, path);
    const char *headers[] = {t->auth, "Accept: application/json", NULL};
    struct fd_http_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = API_HTTP_MS,
    };
    c->mm = t;
    struct fd_http_call *http = H->http(t->ch, &req, on_http_done, c);
    free(url);
    return http ? 0 : -1;
}

const char *mm_error_text(const struct fd_http_response *r, cJSON **doc)
{
    *doc = NULL;
    if (!r->body || !r->body_len)
        return NULL;
    *doc = cJSON_ParseWithLength(r->body, r->body_len);
    if (!cJSON_IsObject(*doc))
        return NULL;
    const char *m = mm_json_str(*doc, "message");
    return m && *m ? m : mm_json_str(*doc, "id");
}

void mm_describe(char *out, size_t len, const struct fd_http_response *r)
{
    if (r->status == 0) {
        snprintf(out, len, "no answer (%.100s)", r->error ? r->error : "?");
        return;
    }
    cJSON *doc;
    const char *m = mm_error_text(r, &doc);
    if (m)
        snprintf(out, len, "HTTP %d: %.*s", r->status, mm_utf8_prefix(m, 200),
                 m);
    else
        snprintf(out, len, "HTTP %d", r->status);
    cJSON_Delete(doc);
}

int mm_limit_wait_ms(const struct fd_http_response *r)
{
    if (r->retry_after_s > 0)
        return (r->retry_after_s > 3600 ? 3600 : r->retry_after_s) * 1000;
    const char *reset = H->response_header(r, "X-Ratelimit-Reset");
    char *end;
    long secs = reset ? strtol(reset, &end, 10) : 0;
    if (reset && end != reset && *end == '\0' && secs > 0)
        return (int)(secs > 3600 ? 3600 : secs) * 1000;
    return 1000;
}

/* Every call's completion. */
static void on_http_done(void *ud, const struct fd_http_response *r)
{
    struct call *c = ud;
    struct mm *t = c->mm;
    if (r->cancelled) {
        call_free(c); /* the channel stops: nothing to report */
        return;
    }
    switch (c->kind) {
    case CALL_ME:
    case CALL_CONFIG:
        mm_ctl_done(t, c, r);
        break;
    case CALL_CHANNELS:
    case CALL_POSTS:
    case CALL_USERS:
        mm_catchup_done(t, c, r);
        break;
    case CALL_SEND:
        mm_send_done(t, c, r);
        break;
    }
    call_free(c);
}

/* ---- caches ---------------------------------------------------------------
 * Small arrays with least-recently-used eviction: a bot serves a few
 * hundred channels and users at once, and losing an entry only costs one
 * more REST call (or, for the known channels, a narrower fallback). */

char mm_known_type(struct mm *t, const char *chan)
{
    for (size_t i = 0; i < t->nknown; i++)
        if (strcmp(t->known[i].id, chan) == 0) {
            t->known[i].used = ++t->tick;
            return t->known[i].type;
        }
    return 0;
}

void mm_known_note(struct mm *t, const char *chan, char type)
{
    if (!mm_is_id(chan) || !type)
        return;
    size_t victim = 0;
    for (size_t i = 0; i < t->nknown; i++) {
        if (strcmp(t->known[i].id, chan) == 0) {
            t->known[i].type = type;
            t->known[i].used = ++t->tick;
            return;
        }
        if (t->known[i].used < t->known[victim].used)
            victim = i;
    }
    struct known_chan *k =
        t->nknown < MAX_KNOWN ? &t->known[t->nknown++] : &t->known[victim];
    memcpy(k->id, chan, ID_BUF);
    k->type = type;
    k->used = ++t->tick;
}

const char *mm_dm_get(struct mm *t, const char *user)
{
    for (size_t i = 0; i < t->ndms; i++)
        if (strcmp(t->dms[i].user, user) == 0) {
            t->dms[i].used = ++t->tick;
            return t->dms[i].chan;
        }
    return NULL;
}

void mm_dm_put(struct mm *t, const char *user, const char *chan)
{
    if (!mm_is_id(user) || !mm_is_id(chan))
        return;
    size_t victim = 0;
    for (size_t i = 0; i < t->ndms; i++) {
        if (strcmp(t->dms[i].user, user) == 0) {
            memcpy(t->dms[i].chan, chan, ID_BUF);
            t->dms[i].used = ++t->tick;
            return;
        }
        if (t->dms[i].used < t->dms[victim].used)
            victim = i;
    }
    struct dm_entry *e =
        t->ndms < MAX_DMS ? &t->dms[t->ndms++] : &t->dms[victim];
    memcpy(e->user, user, ID_BUF);
    memcpy(e->chan, chan, ID_BUF);
    e->used = ++t->tick;
}

void mm_dm_forget(struct mm *t, const char *user)
{
    for (size_t i = 0; i < t->ndms; i++)
        if (strcmp(t->dms[i].user, user) == 0) {
            t->dms[i] = t->dms[--t->ndms];
            return;
        }
}

struct user_entry *mm_user_get(struct mm *t, const char *id)
{
    for (size_t i = 0; i < t->nusers; i++)
        if (strcmp(t->users[i].id, id) == 0) {
            t->users[i].used = ++t->tick;
            return &t->users[i];
        }
    return NULL;
}

/* The entry for id, created (empty) when missing. */
struct user_entry *mm_user_put(struct mm *t, const char *id)
{
    if (!mm_is_id(id))
        return NULL;
    struct user_entry *e = mm_user_get(t, id);
    if (e)
        return e;
    size_t victim = 0;
    for (size_t i = 1; i < t->nusers; i++)
        if (t->users[i].used < t->users[victim].used)
            victim = i;
    e = t->nusers < MAX_USERS ? &t->users[t->nusers++] : &t->users[victim];
    memset(e, 0, sizeof *e);
    memcpy(e->id, id, ID_BUF);
    e->used = ++t->tick;
    return e;
}

void mm_hidden_note(struct mm *t, const char *post)
{
    if (!mm_is_id(post) || mm_hidden_has(t, post))
        return;
    memcpy(t->hidden[t->hidden_at], post, ID_BUF);
    t->hidden_at = (t->hidden_at + 1) % MAX_HIDDEN;
    if (t->nhidden < MAX_HIDDEN)
        t->nhidden++;
}

bool mm_hidden_has(struct mm *t, const char *post)
{
    for (size_t i = 0; i < t->nhidden; i++)
        if (strcmp(t->hidden[i], post) == 0)
            return true;
    return false;
}

/* ---- configuration, start, stop ------------------------------------------ */

#define TOKEN_CHARS                                                            \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-."

/* The base URL without trailing slashes and without a pasted "/api/v4";
 * its length, or 0 when it is not an http(s) URL we can build on. */
static size_t base_len(const char *api)
{
    if (strncmp(api, "http://", 7) && strncmp(api, "https://", 8))
        return 0;
    if (strpbrk(api, "?# \t\r\n"))
        return 0;
    size_t n = strlen(api);
    while (n > 0 && api[n - 1] == '/')
        n--;
    if (n >= 7 && strncmp(api + n - 7, "/api/v4", 7) == 0)
        n -= 7;
    while (n > 0 && api[n - 1] == '/')
        n--;
    const char *host = api + (api[4] == 's' ? 8 : 7);
    return n > (size_t)(host - api) ? n : 0;
}

/* Checks values the key table cannot express.  0, or -1 with err set. */
static int validate(struct fd_channel *ch, char *err, size_t len)
{
    const char *token = H->conf(ch, "token");
    const char *api = H->conf(ch, "api_url");
    size_t tl = token ? strlen(token) : 0;
    if (tl < 1 || tl > 256 || strspn(token, TOKEN_CHARS) != tl) {
        snprintf(err, len,
                 "token: expected a bot access token (letters, digits, "
                 "'_', '-', '.')");
        return -1;
    }
    if (!api || !base_len(api)) {
        snprintf(err, len,
                 "api_url: expected the server's http:// or https:// base "
                 "URL, e.g. https://chat.example.com");
        return -1;
    }
    return 0;
}

static int mm_check(struct fd_channel *ch, char *err, size_t len)
{
    return validate(ch, err, len) < 0 ? FD_EINVAL : FD_OK;
}

static void mm_free(struct mm *t)
{
    if (!t)
        return;
    mm_inbound_free(t);
    free(t->api);
    free(t->ws_url);
    if (t->auth)
        memset(t->auth, 0, strlen(t->auth));
    if (t->token)
        memset(t->token, 0, strlen(t->token));
    free(t->auth);
    free(t->token);
    free(t);
}

static int mm_start(struct fd_channel *ch)
{
    char err[256];
    if (validate(ch, err, sizeof err) < 0) {
        H->log(ch, FD_LOG_ERROR, "%s", err);
        return FD_EINVAL;
    }
    struct mm *t = calloc(1, sizeof *t);
    if (!t)
        return FD_ENOMEM;
    t->ch = ch;
    t->max_runes = DEFAULT_MAX_RUNES;
    t->next_seq = -1;
    const char *api = H->conf(ch, "api_url");
    const char *token = H->conf(ch, "token");
    size_t bl = base_len(api);
    bool tls = api[4] == 's';
    size_t hl = bl - (tls ? 8 : 7); /* host[:port][/path] */
    const char *host = api + (tls ? 8 : 7);
    size_t n = bl + strlen("/api/v4") + 1;
    if ((t->api = malloc(n)))
        snprintf(t->api, n, "%.*s/api/v4", (int)bl, api);
    n = hl + strlen("wss:///api/v4/websocket") + 1;
    if ((t->ws_url = malloc(n)))
        snprintf(t->ws_url, n, "%s://%.*s/api/v4/websocket", tls ? "wss" : "ws",
                 (int)hl, host);
    n = strlen("Authorization: Bearer ") + strlen(token) + 1;
    if ((t->auth = malloc(n)))
        snprintf(t->auth, n, "Authorization: Bearer %s", token);
    t->token = strdup(token);
    if (H->random_hex(t->nonce, 6) < 0)
        snprintf(t->nonce, sizeof t->nonce, "%012llx",
                 (unsigned long long)mm_mono_ms());
    if (!t->api || !t->ws_url || !t->auth || !t->token) {
        mm_free(t);
        return FD_ENOMEM;
    }
    H->set_data(ch, t);
    mm_cursor_load(t);
    H->log(ch, FD_LOG_INFO, "starting: server %s", t->api);
    t->phase = PH_ME;
    mm_ctl_step(t);
    return FD_OK;
}

static void mm_stop(struct fd_channel *ch)
{
    struct mm *t = H->get_data(ch);
    if (!t)
        return;
    /* The host cancelled our calls (their callbacks freed their contexts)
     * and dropped our timers before this. */
    mm_ws_stop(t);
    H->set_data(ch, NULL);
    mm_free(t);
}

static int mm_init(const struct fd_host *host)
{
    if (!host || host->abi != FD_PLUGIN_ABI ||
        host->size < sizeof(struct fd_host))
        return FD_ERR;
    H = host;
    return FD_OK;
}

static const struct fd_key mm_keys[] = {
    {.name = "token",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_REQUIRED | FD_KEY_SECRET,
     .help = "the bot account's access token"},
    {.name = "api_url",
     .type = FD_KEY_URL,
     .flags = FD_KEY_REQUIRED,
     .help = "server base URL, e.g. https://chat.example.com (REST under "
             "/api/v4, websocket at /api/v4/websocket)"},
    {.name = NULL},
};

FD_EXPORT const struct fd_plugin frontdesk_plugin = {
    FD_PLUGIN_INIT,
    .name = "mattermost",
    .version = "1.0",
    /* HIDE: DELETE /posts/{id}; deleting other people's posts needs the
     * delete_others_posts permission (docs/platforms/mattermost.md). */
    .caps = FD_CAP_THREADS | FD_CAP_DM | FD_CAP_HIDE,
    .keys = mm_keys,
    .init = mm_init,
    .check = mm_check,
    .start = mm_start,
    .stop = mm_stop,
    .send = mm_send,
    .ws_event = mm_ws_event,
    /* Mattermost's rate limiting (off by default) allows 10 requests/s
     * per client with bursts of 100 when an admin turns it on. */
    .rate_per_s = 10,
};
