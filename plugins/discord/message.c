/*
 * message.c - one MESSAGE_CREATE dispatch into one fd_msg.
 *
 * Ignored: our own messages (author.id == the user READY named), other
 * bots, system users, webhook posts, and message types other than DEFAULT
 * (0) and REPLY (19) (joins, pins, thread notices...).  A message without
 * guild_id is a DM.  Threads are channels on Discord: channel_id is where
 * the answer goes either way; the thread id is also passed as msg.thread.
 *
 * A user whose DM the platform refused (error 50007, see send.c) is noted
 * in the key/value store; their next DM to the bot carries link_case, so the
 * waiting private message goes out and the case continues in the DM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discord.h"

/* Turns one MESSAGE_CREATE into a delivery.  0 when done with it
 * (delivered, duplicate or ignored), the core's negative code when it could
 * not record it. */
int dsc_message_create(struct dsc *d, const cJSON *m)
{
    const char *id = dsc_json_str(m, "id");
    const char *chan = dsc_json_str(m, "channel_id");
    const char *guild = dsc_json_str(m, "guild_id");
    const cJSON *author = dsc_json_obj(m, "author");
    const char *uid = dsc_json_str(author, "id");
    int64_t type = 0, ctype = -1;
    const char *why = NULL;
    if (!dsc_is_snowflake(id) || !dsc_is_snowflake(chan))
        why = "no message or channel id";
    else if (!dsc_is_snowflake(uid))
        why = "no author";
    else if (d->self_id[0] && !strcmp(uid, d->self_id))
        why = "our own";
    else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(author, "bot")) ||
             cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(author, "system")))
        why = "from a bot";
    else if (cJSON_GetObjectItemCaseSensitive(m, "webhook_id"))
        why = "posted by a webhook";
    else if (cJSON_GetObjectItemCaseSensitive(m, "type") &&
             (!dsc_json_int64(m, "type", &type) || (type != 0 && type != 19)))
        why = "not a user's message";
    else if (guild && !dsc_is_snowflake(guild))
        why = "bad guild id";
    if (why) {
        H->log(d->ch, FD_LOG_DEBUG, "message %s: %s, ignored",
               dsc_is_snowflake(id) ? id : "?", why);
        return 0;
    }
    const char *text = dsc_json_str(m, "content");
    if (!text || !*text) {
        if (guild && !d->warned_content) {
            d->warned_content = true;
            H->log(d->ch, FD_LOG_WARN,
                   "a server message arrived without text: if questions go "
                   "unanswered, turn on MESSAGE CONTENT INTENT (Developer "
                   "Portal -> Bot -> Privileged Gateway Intents)");
        }
        H->log(d->ch, FD_LOG_DEBUG, "message %s: no text, ignored", id);
        return 0;
    }
    bool is_private = guild == NULL;
    /* Threads are channels: the answer goes to channel_id either way; the
     * script still learns it is in one. */
    dsc_json_int64(m, "channel_type", &ctype);
    bool thread = ctype == 10 || ctype == 11 || ctype == 12;

    const cJSON *member = dsc_json_obj(m, "member");
    const char *name = dsc_json_str(member, "nick");
    if (!name || !*name)
        name = dsc_json_str(author, "global_name");
    if (!name || !*name)
        name = dsc_json_str(author, "username");
    char namebuf[200];
    if (name)
        snprintf(namebuf, sizeof namebuf, "%.*s", dsc_utf8_prefix(name, 190),
                 name);

    /* A user whose DM we could not deliver writes to us privately: that
     * continues their case and releases the waiting message. */
    char key[64], link[24] = "";
    snprintf(key, sizeof key, NODM_PREFIX "%s", uid);
    if (is_private) {
        char *v = H->kv_get(d->ch, key);
        if (v && strspn(v, "0123456789") == strlen(v) && *v &&
            strlen(v) < sizeof link)
            snprintf(link, sizeof link, "%s", v);
        free(v);
    }
    struct fd_msg msg = {
        .event_id = id,
        .message_id = id,
        .text = text,
        .is_private = is_private,
        .user_id = uid,
        .user_name = name ? namebuf : NULL,
        .user_handle = dsc_json_str(author, "username"),
        .chat_id = chan,
        .thread = thread ? chan : NULL,
        .link_case = link[0] ? link : NULL,
    };
    int rc = H->deliver(d->ch, &msg);
    if (rc >= 0 && link[0])
        H->kv_set(d->ch, key, NULL);
    /* The sequence moves past this event next: only once it is committed
     * (a failed commit resumes from before it, like a failed delivery). */
    if (rc >= 0 && H->commit(d->ch) != FD_OK)
        rc = FD_ESTORE;
    H->log(d->ch, rc < 0 ? FD_LOG_WARN : FD_LOG_INFO,
           "message %s in %s %s from user %s%s%s", id,
           is_private ? "DM"
           : thread   ? "thread"
                      : "channel",
           chan, uid, link[0] ? " (continues a case)" : "",
           rc == FD_DUPLICATE  ? ", duplicate"
           : rc == FD_ESTOPPED ? ", not taken (stopping)"
           : rc < 0            ? ", not recorded: will resume before it"
                               : "");
    H->log(d->ch, FD_LOG_DEBUG, "message %s text: %.*s", id,
           dsc_utf8_prefix(text, 80), text);
    return rc < 0 ? rc : 0;
}
