/*
 * discourse.c - the Discourse plugin (one forum and bot user per channel):
 * the plugin table, configuration, start/stop, the start-up identity check
 * and the plumbing every REST call shares.
 *
 * Inbound (inbound.c): Discourse's outgoing webhooks POST to /hooks/<channel>,
 * signed with X-Discourse-Event-Signature (HMAC-SHA256 of the raw body keyed
 * with webhook_secret).  Only post_created reaches the script; the post id is
 * the event id the core dedupes on (Discourse's retries carry a new
 * X-Discourse-Event-Id but the same post).  Outbound (send.c): POST
 * /posts.json for replies (topic_id + reply_to_post_number) and for private
 * messages (archetype private_message), hiding by a staff flag or deletion.
 *
 * Every request carries Api-Key and Api-Username headers; URLs hold no
 * secret, but only paths are logged.  Lifetimes: every HTTP call carries a
 * `struct call` listed in its channel; a done callback that finds its channel
 * gone only frees its context.  Timers are dropped by the host when the
 * channel stops.  Threading: the loop thread only, like every plugin.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "discourse.h"

const struct fd_host *dc_host;

/* ---- helpers ------------------------------------------------------------- */

/* An integer sent as a JSON number.  Ids fit in 53 bits, so a double holds
 * them exactly; anything else is refused rather than rounded. */
bool dc_json_int64(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return false;
    double x = v->valuedouble;
    if (!(x >= -9007199254740992.0 && x <= 9007199254740992.0))
        return false;
    if (x != (double)(int64_t)x)
        return false;
    *out = (int64_t)x;
    return true;
}

const char *dc_json_str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

const cJSON *dc_json_obj(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsObject(v) ? v : NULL;
}

bool dc_parse_id(const char *s, int64_t *out)
{
    if (!s)
        return false;
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 16 || s[n] != '\0' || s[0] == '0')
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    if (v > 9007199254740992LL)
        return false;
    *out = v;
    return true;
}

int dc_utf8_prefix(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

/* Discourse compares usernames case-insensitively. */
bool dc_same_user(const char *a, const char *b)
{
    return a && b && strcasecmp(a, b) == 0;
}

int64_t dc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- calls ------------------------------------------------------------- */

static void on_http_done(void *ud, const struct fd_http_response *r);

int dc_api_call(struct dc *d, struct call *c, const char *method,
                const char *path, const char *body)
{
    size_t n = strlen(d->api) + strlen(path) + 1;
    char *url = malloc(n);
    if (!url)
        return -1;
    snprintf(url, n, "%s%s", d->api, path);
    struct fd_http_request req = {
        .method = method,
        .url = url,
        .headers = d->headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = API_HTTP_MS,
    };
    c->dc = d;
    struct fd_http_call *http = H->http(d->ch, &req, on_http_done, c);
    free(url);
    return http ? 0 : -1;
}

void dc_describe(char *out, size_t len, const struct fd_http_response *r,
                 const cJSON *doc)
{
    if (r->status == 0) {
        snprintf(out, len, "no answer (%.100s)", r->error ? r->error : "?");
        return;
    }
    /* Discourse's error shape: {"errors": ["..."], "error_type": "..."}. */
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(doc, "errors");
    const char *first = cJSON_IsArray(errs)
                            ? cJSON_GetStringValue(cJSON_GetArrayItem(errs, 0))
                            : NULL;
    if (!first)
        first = dc_json_str(doc, "error_type");
    if (first)
        snprintf(out, len, "HTTP %d: %.*s", r->status,
                 dc_utf8_prefix(first, 200), first);
    else
        snprintf(out, len, "HTTP %d", r->status);
    /* The text is the server's: keep it on one log line. */
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

int dc_wait_ms(const struct fd_http_response *r, const cJSON *doc)
{
    /* The body's figure is the limiter's own; Retry-After is rounded. */
    const cJSON *extras = dc_json_obj(doc, "extras");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(extras, "wait_seconds");
    if (cJSON_IsNumber(w) && w->valuedouble > 0) {
        double s = w->valuedouble > MAX_WAIT_S ? MAX_WAIT_S : w->valuedouble;
        return (int)(s * 1000.0 + 0.5);
    }
    if (r->retry_after_s > 0)
        return (r->retry_after_s > MAX_WAIT_S ? MAX_WAIT_S : r->retry_after_s) *
               1000;
    return 0;
}

/* ---- the start-up identity check -------------------------------------- */

static void me_step(struct dc *d);

static void on_me_timer(void *ud) { me_step(ud); }

/* GET /session/current.json: proves the key and user, learns the bot's id
 * (its own posts are recognised by id as well as by name) and whether it
 * is staff, which hiding needs.  Replies and webhooks do not wait for it. */
static void me_step(struct dc *d)
{
    struct call *c = calloc(1, sizeof *c);
    if (c)
        c->kind = CALL_ME;
    if (!c || dc_api_call(d, c, "GET", "/session/current.json", NULL) < 0) {
        free(c);
        int ms = H->backoff_ms(++d->me_failures, 1000, ME_BACKOFF_MAX_MS);
        H->log(d->ch, FD_LOG_WARN,
               "identity check could not start; again in %d s", ms / 1000);
        H->timer_add(d->ch, ms, on_me_timer, d);
    }
}

static void me_done(struct dc *d, const struct fd_http_response *r)
{
    cJSON *doc = r->body && r->body_len
                     ? cJSON_ParseWithLength(r->body, r->body_len)
                     : NULL;
    const cJSON *u = dc_json_obj(doc, "current_user");
    int64_t id;
    const char *name = dc_json_str(u, "username");
    if (r->status == 200 && u && dc_json_int64(u, "id", &id) && name) {
        bool staff =
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(u, "moderator")) ||
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(u, "admin"));
        d->bot_id = id;
        d->me_failures = 0;
        if (!dc_same_user(name, d->username))
            H->log(d->ch, FD_LOG_ERROR,
                   "the API acts as @%.*s, not as username %s: check the key's "
                   "user",
                   dc_utf8_prefix(name, 60), name, d->username);
        else if (d->hide != HIDE_OFF && !staff)
            H->log(d->ch, FD_LOG_WARN,
                   "bot user @%s (id %" PRId64 ") is not staff: hide = %s "
                   "will be refused; make it a moderator",
                   d->username, id, d->hide == HIDE_FLAG ? "flag" : "delete");
        else
            H->log(d->ch, FD_LOG_INFO, "bot user @%s (id %" PRId64 "%s)",
                   d->username, id, staff ? ", staff" : "");
        cJSON_Delete(doc);
        return;
    }
    char why[300];
    dc_describe(why, sizeof why, r, doc);
    int wait = dc_wait_ms(r, doc);
    cJSON_Delete(doc);
    if (r->status == 401 || r->status == 403 || r->status == 404) {
        /* A configuration problem: retrying will not fix it.  Webhooks and
         * replies still go on (a scoped key may lack this endpoint). */
        H->log(d->ch, FD_LOG_ERROR,
               "identity check: %s (check token and username; a scoped API "
               "key may not allow /session/current.json)",
               why);
        return;
    }
    int ms = wait > 0
                 ? wait
                 : H->backoff_ms(++d->me_failures, 1000, ME_BACKOFF_MAX_MS);
    H->log(d->ch, FD_LOG_WARN, "identity check: %s; again in %d s", why,
           ms / 1000);
    H->timer_add(d->ch, ms, on_me_timer, d);
}

/* ---- every call's completion ------------------------------------------- */

static void call_free(struct call *c)
{
    if (!c)
        return;
    if (c->kind == CALL_SEND)
        dc_dsend_free(c->ctx);
    free(c);
}

static void on_http_done(void *ud, const struct fd_http_response *r)
{
    struct call *c = ud;
    struct dc *d = c->dc;
    if (r->cancelled) {
        call_free(c); /* the channel stops: nothing to report */
        return;
    }
    switch (c->kind) {
    case CALL_ME:
        me_done(d, r);
        break;
    case CALL_SEND:
        dc_send_done(d, c, r);
        break;
    case CALL_LOOKUP:
        dc_lookup_done(d, c->ctx, r);
        break;
    }
    call_free(c);
}

/* ---- configuration, start, stop -------------------------------------- */

static bool token_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* Discourse usernames: letters, digits, '_', '.', '-' (and non-ASCII
 * letters where unicode usernames are on).  Nothing that could end a header
 * line or add a recipient (','). */
bool dc_username_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > MAX_USERNAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 &&
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* Checks values the key table cannot express.  0, or -1 with err set.
 * `strict` adds the rules that only protect the operator from a setting
 * Discourse would refuse (check() runs them at load; start() needs only
 * what keeps headers and URLs intact). */
static int validate(struct fd_channel *ch, char *err, size_t len, bool strict)
{
    const char *token = H->conf(ch, "token");
    const char *user = H->conf(ch, "username");
    const char *secret = H->conf(ch, "webhook_secret");
    const char *maxl = H->conf(ch, "max_length");
    const char *title = H->conf(ch, "pm_title");
    long v = maxl ? strtol(maxl, NULL, 10) : DEFAULT_MAX_LEN;
    if (v < 50 || v > 1000000) {
        snprintf(err, len,
                 "max_length: want 50-1000000 characters (the "
                 "forum's max_post_length)");
        return -1;
    }
    if (title && (strlen(title) < 2 || strlen(title) > 200)) {
        snprintf(err, len, "pm_title: want 2-200 characters");
        return -1;
    }
    /* A missing required key is reported by the host already. */
    if (strict && (!token || !user || !secret))
        return 0;
    if (!token_ok(token)) {
        snprintf(err, len,
                 "token: expected an API key (1-256 printable "
                 "characters, no spaces)");
        return -1;
    }
    if (!dc_username_ok(user)) {
        snprintf(err, len,
                 "username: expected the bot's Discourse username "
                 "(letters, digits, _ . -)");
        return -1;
    }
    /* Discourse itself refuses webhook secrets under 12 characters. */
    if (!secret || !*secret || strlen(secret) > 1024 ||
        (strict && strlen(secret) < 12)) {
        snprintf(err, len,
                 "webhook_secret: must be 12-1024 characters (the "
                 "secret set on the Discourse webhook)");
        return -1;
    }
    return 0;
}

#define DC_CAPS (FD_CAP_THREADS | FD_CAP_DM | FD_CAP_HIDE)

static int dc_check(struct fd_channel *ch, char *err, size_t len)
{
    if (validate(ch, err, len, true) < 0)
        return FD_EINVAL;
    /* hide = off: say so to the core, which then tells scripts
     * (fd.can("hide") is false) and never queues a hide. */
    const char *hide = H->conf(ch, "hide");
    if (hide && strcmp(hide, "off") == 0 && H->set_caps)
        H->set_caps(ch, DC_CAPS & ~(unsigned)FD_CAP_HIDE);
    return FD_OK;
}

static char *join2(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", a, b);
    return s;
}

static void dc_free(struct dc *d)
{
    if (!d)
        return;
    dc_lookups_free(d);
    free(d->api);
    free(d->hdr_key);
    free(d->hdr_user);
    free(d->username);
    free(d->secret);
    free(d->pm_title);
    free(d);
}

static int dc_start(struct fd_channel *ch)
{
    char err[256];
    if (validate(ch, err, sizeof err, false) < 0) {
        H->log(ch, FD_LOG_ERROR, "%s", err);
        return FD_EINVAL;
    }
    struct dc *d = calloc(1, sizeof *d);
    if (!d)
        return FD_ENOMEM;
    d->ch = ch;
    const char *api = H->conf(ch, "api_url");
    size_t al = api ? strlen(api) : 0;
    while (al > 0 && api[al - 1] == '/')
        al--;
    d->api = al ? strndup(api, al) : NULL;
    d->hdr_key = join2("Api-Key: ", H->conf(ch, "token"));
    d->hdr_user = join2("Api-Username: ", H->conf(ch, "username"));
    d->username = strdup(H->conf(ch, "username"));
    d->secret = strdup(H->conf(ch, "webhook_secret"));
    const char *title = H->conf(ch, "pm_title");
    d->pm_title = strdup(title ? title : "Support request");
    const char *hide = H->conf(ch, "hide");
    d->hide = !hide || !strcmp(hide, "off") ? HIDE_OFF
              : !strcmp(hide, "flag")       ? HIDE_FLAG
                                            : HIDE_DELETE;
    const char *maxl = H->conf(ch, "max_length");
    d->max_len = maxl ? (size_t)strtol(maxl, NULL, 10) : DEFAULT_MAX_LEN;
    const char *staff = H->conf(ch, "answer_staff");
    /* The host checked it is one of its boolean words. */
    d->answer_staff =
        staff && (!strcasecmp(staff, "true") || !strcasecmp(staff, "yes") ||
                  !strcasecmp(staff, "on") || !strcmp(staff, "1"));
    if (!d->api || !d->hdr_key || !d->hdr_user || !d->username || !d->secret ||
        !d->pm_title) {
        int rc = api && al ? FD_ENOMEM : FD_EINVAL;
        dc_free(d);
        return rc;
    }
    d->headers[0] = d->hdr_key;
    d->headers[1] = d->hdr_user;
    d->headers[2] = "Content-Type: application/json";
    d->headers[3] = "Accept: application/json";
    d->headers[4] = NULL;
    H->set_data(ch, d);
    /* Log the forum without any user:password@ in the URL. */
    const char *host = strstr(d->api, "://");
    host = host ? host + 3 : d->api;
    const char *at = strchr(host, '@');
    if (at && at < host + strcspn(host, "/"))
        host = at + 1;
    if (d->hide == HIDE_OFF)
        H->log(ch, FD_LOG_INFO,
               "forum %s as @%s; hide = off: msg:hide() is logged and not "
               "carried out (set hide = flag or delete with a moderator bot)",
               host, d->username);
    else
        H->log(ch, FD_LOG_INFO, "forum %s as @%s; hide = %s", host,
               d->username, d->hide == HIDE_FLAG ? "flag" : "delete");
    me_step(d);
    return FD_OK;
}

static void dc_stop(struct fd_channel *ch)
{
    struct dc *d = H->get_data(ch);
    if (!d)
        return;
    /* Detach first, so each done callback (run now or later) only frees
     * its context. */
    /* The host cancelled this channel's calls already (their callbacks
     * freed their contexts). */
    H->set_data(ch, NULL);
    dc_free(d);
}

static int dc_init(const struct fd_host *host)
{
    if (!host || host->abi != FD_PLUGIN_ABI ||
        host->size < sizeof(struct fd_host))
        return FD_ERR;
    H = host;
    return FD_OK;
}

static const struct fd_key dc_keys[] = {
    {.name = "api_url",
     .type = FD_KEY_URL,
     .flags = FD_KEY_REQUIRED,
     .help = "the forum's base URL, e.g. https://forum.example.com"},
    {.name = "token",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_REQUIRED | FD_KEY_SECRET,
     .help = "API key (Admin > API > New key), sent as Api-Key"},
    {.name = "username",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_REQUIRED,
     .help = "the bot's username, sent as Api-Username; its own posts are "
             "ignored"},
    {.name = "webhook_secret",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_REQUIRED | FD_KEY_SECRET,
     .help = "the webhook's Secret (12+ characters): signs every delivery"},
    {.name = "hide",
     .type = FD_KEY_ENUM,
     .def = "off",
     .choices = "off|flag|delete",
     .help = "what msg:hide() does: off (log only), flag (staff flag that "
             "hides the post), delete; flag and delete need a moderator bot"},
    {.name = "answer_staff",
     .type = FD_KEY_BOOL,
     .def = "no",
     .help = "also answer posts by moderators and admins (off: they are "
             "the support team; turn on to try the bot with a staff "
             "account)"},
    {.name = "pm_title",
     .type = FD_KEY_STRING,
     .def = "Support request",
     .help = "title of the private message the bot opens (\" #<case>\" is "
             "added)"},
    {.name = "max_length",
     .type = FD_KEY_INT,
     .def = "32000",
     .help = "characters per post (the forum's max_post_length); longer "
             "texts go out as several posts"},
    {.name = NULL},
};

FD_EXPORT const struct fd_plugin frontdesk_plugin = {
    FD_PLUGIN_INIT,
    .name = "discourse",
    .version = "1.0",
    /* HIDE: declared because the ABI has per-plugin caps only; with
     * hide = off a hide is logged and reported as failed (see send.c). */
    .caps = DC_CAPS,
    .keys = dc_keys,
    .init = dc_init,
    .check = dc_check,
    .start = dc_start,
    .stop = dc_stop,
    .webhook = dc_webhook,
    .send = dc_send,
    /* Admin API keys share 60 requests a minute; a non-staff bot may post
     * once per 5 s (rate_limit_create_post).  A moderator bot user is
     * exempt from the latter: raise chat_per_min / dm_per_min then. */
    .rate_per_s = 1,
    .chat_per_min = 12,
    .dm_per_min = 12,
};
