/*
 * instagram.c - the Instagram plugin (one professional account per
 * channel): comments on the account's media are public messages, Direct
 * messages private ones.
 *
 * Inbound: Meta's webhooks for the app's `instagram` object arrive at
 * /hooks/<channel>: the GET verification handshake, then POSTs signed with
 * X-Hub-Signature-256 (meta_common.h).  `changes` of field `comments` (and
 * `live_comments`) reach the script as public messages; `messaging` events
 * are private (meta_pages.h).  The account's own comments (from.id ==
 * account_id: our answers) and echoes of our messages are ignored.
 * Entries of another account of the same app go to that account's channel.
 *
 * Outbound (meta_pages.h): answers under a comment (POST /<comment>/
 * replies; replies nest one level, so a reply's answer goes under its
 * parent), hiding (POST /<comment> {hide: true}), Private Replies and
 * Direct messages (POST /me/messages, which names the Page with a Page
 * token and the account with an Instagram token, so both API flavours
 * work).  Direct texts are limited to 1000 bytes (UTF-8), comments to 2200
 * characters.
 */
#include "meta_pages.h"

static void ig_change(struct meta *m, const cJSON *c);

static const struct pages_flavor ig_flavor = {
    .reply_edge = "replies",
    .hide_field = "hide",
    .comment_max = 2200,
    .comment_unit = FD_TEXT_CHARS,
    .dm_max = 1000, /* Meta counts bytes of UTF-8 here */
    .dm_unit = FD_TEXT_BYTES,
    .messages_by_self = false,
    .dm_name = "Instagram",
    .object = "instagram",
    .owner = "Instagram account",
    .change = ig_change,
};

/* One `comments` change: a new comment reaches the script. */
static void ig_change(struct meta *m, const cJSON *c)
{
    const char *field = mj_str(c, "field");
    const cJSON *v = mj_obj(c, "value");
    if (!field ||
        (strcmp(field, "comments") && strcmp(field, "live_comments")) || !v)
        return; /* mentions, story insights, ... */
    const cJSON *from = mj_obj(v, "from");
    const char *from_id = mj_str(from, "id");
    const char *cid = mj_str(v, "id");
    const char *text = mj_str(v, "text");
    const char *media = mj_str(mj_obj(v, "media"), "id");
    const char *parent = mj_str(v, "parent_id");
    const char *username = mj_str(from, "username");
    if (!meta_id_ok(cid)) {
        H->log(m->ch, FD_LOG_WARN, "comment without a usable id: ignored");
        return;
    }
    /* The account's own comments, our answers among them. */
    if (from_id && !strcmp(from_id, m->self_id))
        return;
    if (!text || !*text) {
        H->log(m->ch, FD_LOG_INFO,
               "comment %s has no text: not for the "
               "script",
               cid);
        return;
    }
    char ev[META_MAX_EVENT];
    snprintf(ev, sizeof ev, "c:%s", cid);
    char *handle =
        username && meta_token_ok(username, 64) ? strdup(username) : NULL;
    struct pages_comment pc = {
        .event_id = ev,
        .id = cid,
        .text = text,
        .from_id = from_id,
        .from_name = handle,
        .handle = handle,
        .chat = meta_id_ok(media) ? media : cid,
        .thread = meta_id_ok(parent) ? parent : NULL,
    };
    pages_deliver_comment(m, &pc);
    free(handle);
}

static int ig_check(struct fd_channel *ch, char *err, size_t len)
{
    return pages_check(ch, "account_id", err, len);
}

static int ig_start(struct fd_channel *ch)
{
    return pages_start(ch, "account_id", "id,username");
}

static int ig_init(const struct fd_host *host)
{
    PF = &ig_flavor;
    return meta_init(host);
}

static const struct fd_key ig_keys[] = {
    META_KEY_TOKEN("access token: the linked Page's token (graph.facebook."
                   "com: instagram_basic, instagram_manage_comments, "
                   "instagram_manage_messages, pages_messaging) or an "
                   "Instagram user token (graph.instagram.com)"),
    {.name = "account_id",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_REQUIRED,
     .help = "the Instagram professional account's numeric id; its own "
             "comments are never answered"},
    META_KEY_SECRETS,
    PAGES_KEY_FALLBACK("We could not reach you by private message. Please "
                       "send us a direct message."),
    META_KEY_API,
    {.name = NULL},
};

FD_EXPORT const struct fd_plugin frontdesk_plugin = {
    FD_PLUGIN_INIT,
    .name = "instagram",
    .version = "1.0",
    .caps = FD_CAP_THREADS | FD_CAP_DM | FD_CAP_PRIVATE_REPLY | FD_CAP_HIDE,
    .keys = ig_keys,
    .init = ig_init,
    .check = ig_check,
    .start = ig_start,
    .stop = meta_end,
    .webhook = pages_webhook,
    .send = pages_send,
    /* Private replies: 750 an hour per account; the Send API takes far
     * more.  Throttling shows as Graph errors, retried with backoff. */
    .rate_per_s = 5,
};
