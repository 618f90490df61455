/*
 * facebook.c - the Facebook Page plugin (one Page per channel): comments
 * on the Page's posts are public messages, Messenger conversations with
 * the Page private ones.
 *
 * Inbound: Meta's webhooks for the app's `page` object arrive at
 * /hooks/<channel>: the GET verification handshake, then POSTs signed with
 * X-Hub-Signature-256 (see meta_common.h).  `changes` of field `feed` with
 * item `comment`: verb add and edited reach the script (an edit carries
 * its text's hash in the event id, so a retried delivery is a duplicate
 * and a new edit is not); verb remove (and hide) is logged only, there is
 * nothing left to answer.  `messaging` events are private (meta_pages.h);
 * echoes of our own messages and the Page's own comments (from.id ==
 * page_id, how our answers come back) are ignored, so the bot never talks
 * to itself.  Entries of another Page of the same app go to that Page's
 * channel.
 *
 * Outbound (meta_pages.h): answers under a comment (POST /<comment>/
 * comments), hiding (POST /<comment> {is_hidden: true}), Private Replies
 * (POST /<page_id>/messages {recipient: {comment_id}}) and Messenger
 * messages inside the 24-hour window.  Messenger texts are cut at 2000
 * characters, comments at 8000.
 */
#include "meta_pages.h"

static void fb_change(struct meta *m, const cJSON *c);

static const struct pages_flavor fb_flavor = {
    .reply_edge = "comments",
    .hide_field = "is_hidden",
    .comment_max = 8000,
    .comment_unit = FD_TEXT_CHARS,
    .dm_max = 2000, /* Send API: "UTF-8, 2000 character limit" */
    .dm_unit = FD_TEXT_CHARS,
    .messages_by_self = true,
    .dm_name = "Messenger",
    .object = "page",
    .owner = "Page",
    .change = fb_change,
};

/* One `feed` change: a comment added or edited reaches the script. */
static void fb_change(struct meta *m, const cJSON *c)
{
    const char *field = mj_str(c, "field");
    const cJSON *v = mj_obj(c, "value");
    if (!field || strcmp(field, "feed") || !v)
        return; /* other Page fields: nothing for a support script */
    const char *item = mj_str(v, "item");
    const char *verb = mj_str(v, "verb");
    if (!item || strcmp(item, "comment") || !verb)
        return; /* posts, reactions, likes, shares */
    const cJSON *from = mj_obj(v, "from");
    const char *from_id = mj_str(from, "id");
    const char *cid = mj_str(v, "comment_id");
    const char *post = mj_str(v, "post_id");
    const char *parent = mj_str(v, "parent_id");
    const char *text = mj_str(v, "message");
    if (!meta_id_ok(cid)) {
        H->log(m->ch, FD_LOG_WARN,
               "feed comment without a usable "
               "comment_id: ignored");
        return;
    }
    /* The Page's own comments, our answers among them, come back here. */
    if (from_id && !strcmp(from_id, m->self_id))
        return;
    if (!strcmp(verb, "remove") || !strcmp(verb, "hide")) {
        H->log(m->ch, FD_LOG_INFO, "comment %s: verb %s, nothing to answer",
               cid, verb);
        return;
    }
    bool edited = !strcmp(verb, "edited");
    if (!edited && strcmp(verb, "add"))
        return; /* unhide, block, ... */
    if (!text || !*text) {
        H->log(m->ch, FD_LOG_INFO,
               "comment %s has no text (photo or "
               "sticker): not for the script",
               cid);
        return;
    }
    char ev[META_MAX_EVENT];
    if (edited)
        snprintf(ev, sizeof ev, "e:%s:%016" PRIx64, cid, meta_hash(text));
    else
        snprintf(ev, sizeof ev, "c:%s", cid);
    /* Top-level comments have parent_id == post_id; a reply's answer goes
     * under its parent, where Facebook shows the thread. */
    bool reply = meta_id_ok(parent) && (!post || strcmp(parent, post));
    struct pages_comment pc = {
        .event_id = ev,
        .id = cid,
        .text = text,
        .from_id = from_id,
        .from_name = mj_str(from, "name"),
        .chat = meta_id_ok(post) ? post : cid,
        .thread = reply ? parent : NULL,
    };
    pages_deliver_comment(m, &pc);
}

static int fb_check(struct fd_channel *ch, char *err, size_t len)
{
    return pages_check(ch, "page_id", err, len);
}

static int fb_start(struct fd_channel *ch)
{
    return pages_start(ch, "page_id", "id,name");
}

static int fb_init(const struct fd_host *host)
{
    PF = &fb_flavor;
    return meta_init(host);
}

static const struct fd_key fb_keys[] = {
    META_KEY_TOKEN("Page access token (pages_messaging, "
                   "pages_manage_engagement, pages_read_engagement, "
                   "pages_manage_metadata)"),
    {.name = "page_id",
     .type = FD_KEY_STRING,
     .flags = FD_KEY_REQUIRED,
     .help = "the Page's numeric id; its own comments are never answered"},
    META_KEY_SECRETS,
    PAGES_KEY_FALLBACK("We could not reach you by private message. Please "
                       "send us a message on Messenger."),
    META_KEY_API,
    {.name = NULL},
};

FD_EXPORT const struct fd_plugin frontdesk_plugin = {
    FD_PLUGIN_INIT,
    .name = "facebook",
    .version = "1.0",
    .caps = FD_CAP_THREADS | FD_CAP_DM | FD_CAP_PRIVATE_REPLY | FD_CAP_HIDE,
    .keys = fb_keys,
    .init = fb_init,
    .check = fb_check,
    .start = fb_start,
    .stop = meta_end,
    .webhook = pages_webhook,
    .send = pages_send,
    /* The Send API takes 300 text messages/s per Page; comments count
     * against the Page's hourly limits, which a support bot stays far
     * below at this pace.  Throttling shows as Graph errors 4/17/32/613,
     * retried with backoff. */
    .rate_per_s = 20,
};
