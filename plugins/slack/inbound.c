/*
 * inbound.c - Slack events into fd_msg, and the Events API webhook.
 *
 * Both modes carry the same payload: {"type":"event_callback","team_id",
 * "event_id","event":{...}}.  Handled events: `message` (subscriptions
 * message.channels / .groups / .im / .mpim) and `app_mention`.  Skipped:
 * edits, deletions, joins and every other subtype but file_share,
 * thread_broadcast and me_message; messages of bots (bot_id, bot_message:
 * our own posts come back this way) and of our own bot user; messages
 * without user, channel, ts or text.
 *
 * Dedupe key: team, channel and the message's ts.  Slack's retries and
 * Socket Mode redeliveries keep the event_id and the ts alike, so they are
 * dropped as a team_id + event_id key would drop them; and a message that
 * arrives twice as two events (message.channels and app_mention, each with
 * its own event_id, when the app subscribes to both) is answered once.
 *
 * Private: channel_type "im" (a DM with the bot; ids starting with D when
 * the type is missing).  Group DMs (mpim) and private channels are public
 * for the script: other people read them.  Thread: the message's
 * thread_ts when it is inside a thread.  Text: Slack's markup is turned
 * into plain text (<@U1|name> -> @name, <url|label> -> label, &amp; ...),
 * and a leading mention of the bot itself is dropped.
 *
 * Webhook (mode = events): POST only (405); the v0 signature
 * HMAC-SHA256(signing_secret, "v0:" ts ":" raw body) is checked in constant
 * time and the timestamp must be within 5 minutes (else 401, nothing
 * delivered); then url_verification is answered with its challenge and
 * event_callback delivered.  200 only after the core recorded it (503
 * otherwise, so Slack retries; retries carry X-Slack-Retry-Num and are
 * deduped).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slack.h"

#define MAX_EVENT_TEXT 40000 /* Slack's own limit on message text */
#define MAX_NAME 80

/* Byte length of s cut to at most max bytes on a UTF-8 boundary (logs). */
static int utf8_prefix(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

/* Appends one <...> element of Slack markup (inner text, without the
 * brackets) as plain text. */
static size_t put_markup(char *out, const char *in, size_t n,
                         const char *bot_user)
{
    const char *bar = memchr(in, '|', n);
    size_t idl = bar ? (size_t)(bar - in) : n;
    const char *label = bar ? bar + 1 : NULL;
    size_t ll = bar ? n - idl - 1 : 0;
    size_t o = 0;
    if (n > 0 && (in[0] == '@' || in[0] == '#')) {
        if (in[0] == '@' && bot_user[0] && idl - 1 == strlen(bot_user) &&
            memcmp(in + 1, bot_user, idl - 1) == 0)
            return 0; /* a mention of the bot itself */
        out[o++] = in[0];
        if (label && ll) {
            if (label[0] == in[0]) { /* "@name" labels carry the sign */
                label++;
                ll--;
            }
            memcpy(out + o, label, ll);
            return o + ll;
        }
        memcpy(out + o, in + 1, idl - 1);
        return o + idl - 1;
    }
    if (n > 0 && in[0] == '!') { /* !here, !channel, !subteam^..|@team */
        if (label && ll) {
            memcpy(out, label, ll);
            return ll;
        }
        out[o++] = '@';
        memcpy(out + o, in + 1, idl - 1);
        return o + idl - 1;
    }
    if (label && ll) { /* a link with its text */
        memcpy(out, label, ll);
        return ll;
    }
    if (idl > 7 && strncmp(in, "mailto:", 7) == 0) {
        memcpy(out, in + 7, idl - 7);
        return idl - 7;
    }
    memcpy(out, in, idl);
    return idl;
}

/* Slack's mrkdwn text as plain text (malloc'd, never longer than the
 * input), or NULL when nothing is left. */
static char *plain_text(const char *in, const char *bot_user)
{
    size_t n = strlen(in);
    char *tmp = malloc(n + 1), *out = NULL;
    if (!tmp)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (in[i] == '<') {
            const char *gt = memchr(in + i + 1, '>', n - i - 1);
            const char *lt = memchr(in + i + 1, '<', n - i - 1);
            if (gt && (!lt || gt < lt)) {
                o += put_markup(tmp + o, in + i + 1, (size_t)(gt - in - i - 1),
                                bot_user);
                i = (size_t)(gt - in) + 1;
                continue;
            }
        }
        tmp[o++] = in[i++];
    }
    tmp[o] = '\0';
    /* Slack escapes exactly these three. */
    static const struct {
        const char *ent;
        char ch;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}};
    size_t w = 0;
    for (size_t r = 0; r < o;) {
        size_t k;
        for (k = 0; k < 3; k++) {
            size_t el = strlen(ents[k].ent);
            if (strncmp(tmp + r, ents[k].ent, el) == 0) {
                tmp[w++] = ents[k].ch;
                r += el;
                break;
            }
        }
        if (k == 3)
            tmp[w++] = tmp[r++];
    }
    tmp[w] = '\0';
    /* Trim: a dropped mention leaves a space in front. */
    size_t a = strspn(tmp, " \t\r\n");
    while (w > a && strchr(" \t\r\n", tmp[w - 1]))
        w--;
    if (w > a) {
        out = strndup(tmp + a, w - a);
    }
    free(tmp);
    return out;
}

static bool subtype_ok(const char *st)
{
    return !st || strcmp(st, "file_share") == 0 ||
           strcmp(st, "thread_broadcast") == 0 || strcmp(st, "me_message") == 0;
}

/* A display name from the event's user_profile, when Slack sent one. */
static void profile_names(const cJSON *ev, char *name, char *handle)
{
    const cJSON *p = sk_obj(ev, "user_profile");
    const char *dn = sk_str(p, "display_name");
    const char *rn = sk_str(p, "real_name");
    const char *un = sk_str(p, "name");
    const char *best = dn && *dn ? dn : rn && *rn ? rn : NULL;
    name[0] = handle[0] = '\0';
    if (best)
        snprintf(name, MAX_NAME, "%.*s", utf8_prefix(best, MAX_NAME - 1), best);
    if (un && *un)
        snprintf(handle, MAX_NAME, "%.*s", utf8_prefix(un, MAX_NAME - 1), un);
}

int sk_handle_payload(struct sk *sk, const cJSON *payload, const char *via)
{
    const char *type = sk_str(payload, "type");
    if (!type || strcmp(type, "event_callback") != 0) {
        if (type && strcmp(type, "app_rate_limited") == 0)
            H->log(sk->ch, FD_LOG_WARN,
                   "Slack reports app_rate_limited: events are being dropped "
                   "for this workspace (over 30,000 per hour)");
        else
            H->log(sk->ch, FD_LOG_DEBUG, "payload of type %.40s ignored",
                   type ? type : "(none)");
        return FD_DUPLICATE;
    }
    const cJSON *ev = sk_obj(payload, "event");
    const char *etype = sk_str(ev, "type");
    const char *event_id = sk_str(payload, "event_id");
    if (!etype || (strcmp(etype, "message") && strcmp(etype, "app_mention")))
        return FD_DUPLICATE; /* not for us; acked/answered all the same */
    const char *subtype = sk_str(ev, "subtype");
    const char *user = sk_str(ev, "user");
    const char *channel = sk_str(ev, "channel");
    const char *ts = sk_str(ev, "ts");
    const char *text = sk_str(ev, "text");
    if (!subtype_ok(subtype))
        return FD_DUPLICATE;
    if (cJSON_GetObjectItemCaseSensitive(ev, "bot_id") ||
        cJSON_GetObjectItemCaseSensitive(ev, "bot_profile") ||
        (user && sk->bot_user[0] && strcmp(user, sk->bot_user) == 0)) {
        H->log(sk->ch, FD_LOG_DEBUG, "message of a bot in %.40s ignored",
               channel ? channel : "?");
        return FD_DUPLICATE;
    }
    if (!sk_is_id(user, ID_MAX) || !sk_is_id(channel, ID_MAX) ||
        !sk_is_id(ts, TS_MAX) || !text) {
        H->log(sk->ch, FD_LOG_DEBUG,
               "%s event %.40s without usable user/channel/ts/text, ignored",
               etype, event_id ? event_id : "?");
        return FD_DUPLICATE;
    }
    const char *team = sk_str(payload, "team_id");
    if (!sk_is_id(team, ID_MAX))
        team = sk_is_id(sk_str(ev, "team"), ID_MAX) ? sk_str(ev, "team")
                                                    : sk->team_id;
    if (strlen(text) > MAX_EVENT_TEXT) {
        H->log(sk->ch, FD_LOG_WARN, "message %s in %s over %d bytes, ignored",
               ts, channel, MAX_EVENT_TEXT);
        return FD_DUPLICATE;
    }
    char *plain = plain_text(text, sk->bot_user);
    if (!plain) {
        H->log(sk->ch, FD_LOG_DEBUG, "message %s in %s has no text, ignored",
               ts, channel);
        return FD_DUPLICATE;
    }
    const char *ctype = sk_str(ev, "channel_type");
    bool is_private = ctype ? strcmp(ctype, "im") == 0 : channel[0] == 'D';
    const char *thread = sk_str(ev, "thread_ts");
    if (!sk_is_id(thread, TS_MAX))
        thread = NULL;
    char key[3 * ID_MAX + 4], name[MAX_NAME], handle[MAX_NAME];
    snprintf(key, sizeof key, "%s:%s:%s", team && *team ? team : "-", channel,
             ts);
    profile_names(ev, name, handle);
    struct fd_msg m = {
        .event_id = key,
        .message_id = ts,
        .text = plain,
        .is_private = is_private,
        .user_id = user,
        .user_name = name[0] ? name : NULL,
        .user_handle = handle[0] ? handle : NULL,
        .chat_id = channel,
        .thread = thread,
    };
    int rc = H->deliver(sk->ch, &m);
    H->log(sk->ch, FD_LOG_DEBUG, "%s %s %s in %s (%s, via %s): %s", etype,
           event_id ? event_id : "?", ts, channel,
           is_private ? "private" : "public", via,
           rc == FD_OK          ? "accepted"
           : rc == FD_DUPLICATE ? "seen before"
                                : "NOT recorded");
    free(plain);
    return rc;
}

/* ---- the Events API webhook ---------------------------------------------- */

static void reply(struct fd_http_reply *r, int status, const char *type,
                  const char *body)
{
    H->reply_status(r, status);
    H->reply_type(r, type);
    H->reply_body(r, body, strlen(body));
}

/* The v0 signature over the raw body, and the timestamp window. */
static const char *verify(struct sk *sk, const struct fd_http_in *req)
{
    const char *ts = H->header(req, "x-slack-request-timestamp");
    const char *sig = H->header(req, "x-slack-signature");
    if (!ts || !sig)
        return "no signature headers";
    size_t tl = strlen(ts);
    if (tl < 1 || tl > 12 || strspn(ts, "0123456789") != tl)
        return "malformed timestamp";
    long long t = strtoll(ts, NULL, 10);
    long long now = (long long)time(NULL);
    if (t < now - SIG_WINDOW_S || t > now + SIG_WINDOW_S)
        return "timestamp outside the 5-minute window";
    if (strncmp(sig, "v0=", 3) != 0 || strlen(sig) != 3 + 64 ||
        strspn(sig + 3, "0123456789abcdefABCDEF") != 64)
        return "malformed signature";
    size_t n = 3 + tl + 1 + req->body_len;
    char *base = malloc(n + 1);
    if (!base)
        return "out of memory";
    memcpy(base, "v0:", 3);
    memcpy(base + 3, ts, tl);
    base[3 + tl] = ':';
    if (req->body_len)
        memcpy(base + 4 + tl, req->body, req->body_len);
    base[n] = '\0';
    bool ok = H->hmac_sha256_hex_ok(sk->signing_secret, base, n, sig + 3);
    free(base);
    return ok ? NULL : "signature mismatch";
}

void sk_webhook(struct fd_channel *ch, const struct fd_http_in *req,
                struct fd_http_reply *r)
{
    struct sk *sk = H->get_data(ch);
    if (!sk) {
        reply(r, 503, "application/json", "{\"error\":\"not started\"}");
        return;
    }
    if (sk->socket_mode) {
        reply(r, 404, "application/json",
              "{\"error\":\"this channel uses Socket Mode\"}");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        reply(r, 405, "application/json", "{\"error\":\"POST only\"}");
        return;
    }
    const char *bad = verify(sk, req);
    if (bad) {
        H->log(ch, FD_LOG_WARN, "webhook from %s refused: %s", req->remote,
               bad);
        reply(r, 401, "application/json", "{\"error\":\"unauthorized\"}");
        return;
    }
    cJSON *o = cJSON_ParseWithLength(req->body, req->body_len);
    if (!cJSON_IsObject(o)) {
        H->log(ch, FD_LOG_WARN,
               "webhook: body is not a JSON object (%zu "
               "bytes): 400",
               req->body_len);
        reply(r, 400, "application/json", "{\"error\":\"bad json\"}");
        cJSON_Delete(o);
        return;
    }
    const char *type = sk_str(o, "type");
    if (type && strcmp(type, "url_verification") == 0) {
        const char *ch_s = sk_str(o, "challenge");
        size_t cl = ch_s ? strlen(ch_s) : 0;
        bool printable = cl > 0 && cl <= 512;
        for (size_t i = 0; printable && i < cl; i++)
            printable = ch_s[i] > ' ' && ch_s[i] < 0x7f;
        if (!printable) {
            reply(r, 400, "application/json", "{\"error\":\"bad challenge\"}");
        } else {
            H->log(ch, FD_LOG_INFO,
                   "url_verification answered: the Request "
                   "URL is confirmed");
            reply(r, 200, "text/plain", ch_s);
        }
        cJSON_Delete(o);
        return;
    }
    const char *retry = H->header(req, "x-slack-retry-num");
    if (retry) {
        const char *why = H->header(req, "x-slack-retry-reason");
        H->log(ch, FD_LOG_DEBUG, "Slack's retry %.8s (%.40s) of event %.40s",
               retry, why ? why : "?",
               sk_str(o, "event_id") ? sk_str(o, "event_id") : "?");
    }
    int rc = sk_handle_payload(sk, o, "webhook");
    cJSON_Delete(o);
    if (rc < 0)
        reply(r, 503, "application/json", "{\"error\":\"try again\"}");
    else
        reply(r, 200, "application/json", "{\"ok\":true}");
}
