/*
 * testhook.c - a minimal platform for the core's own tests.
 *
 * POST /hooks/<ch>  {"id": "...", "text": "...", "user": "...",
 *                    "private": false, "link_case": "..."}  → host->deliver
 * GET  /hooks/<ch>/sent   every action sent so far, as a JSON array
 * Key `fail_sends` (n): the first n sends answer RETRY (retry_after 100 ms).
 * Key `refuse_sends` (n): the first n sends answer FAILED (dead letters).
 * Key `api_url`: when set, each action is also POSTed there as JSON (exercises
 * the core's outbound HTTP); 2xx → OK, 429/5xx/no answer → RETRY (honouring
 * Retry-After), other → FAILED.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_api.h"

static const struct fd_host *host;

struct state {
    cJSON *sent;
    long fail_left, refuse_left;
};

static const struct fd_key keys[] = {
    {"fail_sends", FD_KEY_INT, 0, "0", NULL, "sends that fail first"},
    {"refuse_sends", FD_KEY_INT, 0, "0", NULL, "sends refused for good first"},
    {"api_url", FD_KEY_URL, 0, NULL, NULL, "POST actions here"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static int init(const struct fd_host *h)
{
    host = h;
    return 0;
}

static int start(struct fd_channel *ch)
{
    struct state *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->sent = cJSON_CreateArray();
    s->fail_left = strtol(host->conf(ch, "fail_sends"), NULL, 10);
    s->refuse_left = strtol(host->conf(ch, "refuse_sends"), NULL, 10);
    host->set_data(ch, s);
    return 0;
}

static void stop(struct fd_channel *ch)
{
    struct state *s = host->get_data(ch);
    cJSON_Delete(s->sent);
    free(s);
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static void webhook(struct fd_channel *ch, const struct fd_http_in *req,
                    struct fd_http_reply *reply)
{
    struct state *s = host->get_data(ch);
    if (!strcmp(req->method, "GET") && !strcmp(req->path, "/sent")) {
        char *out = cJSON_PrintUnformatted(s->sent);
        host->reply_body(reply, out, strlen(out));
        free(out);
        return;
    }
    cJSON *j = cJSON_ParseWithLength(req->body, req->body_len);
    if (!cJSON_IsObject(j) || !str(j, "id")) {
        host->log(ch, FD_LOG_WARN, "malformed test delivery: 400");
        host->reply_status(reply, 400);
        cJSON_Delete(j);
        return;
    }
    struct fd_msg m = {
        .event_id = str(j, "id"),
        .message_id = str(j, "id"),
        .text = str(j, "text"),
        .is_private = cJSON_IsTrue(cJSON_GetObjectItem(j, "private")),
        .user_id = str(j, "user"),
        .user_name = str(j, "user"),
        .chat_id = str(j, "chat") ? str(j, "chat") : "room",
        .link_case = str(j, "link_case"),
    };
    int rc = host->deliver(ch, &m);
    host->reply_body(reply, rc == FD_DUPLICATE ? "{\"dup\":true}" : "{}",
                     rc == FD_DUPLICATE ? 12 : 2);
    cJSON_Delete(j);
}

struct fwd {
    struct fd_send *token;
};

static void forwarded(void *ud, const struct fd_http_response *r)
{
    struct fwd *f = ud;
    if (!r->cancelled) {
        struct fd_send_result res = {.status = FD_SEND_OK};
        if (r->status == 0 || r->status == 429 || r->status >= 500) {
            res.status = FD_SEND_RETRY;
            res.retry_after_ms = r->retry_after_s > 0 ? r->retry_after_s * 1000 : 0;
            res.error = r->status ? "platform busy" : r->error;
        } else if (r->status >= 300) {
            res.status = FD_SEND_FAILED;
            res.error = "refused";
        }
        host->send_done(f->token, &res);
    }
    free(f);
}

static int send_(struct fd_channel *ch, const struct fd_action *a,
                 struct fd_send *token)
{
    struct state *s = host->get_data(ch);
    const char *api = host->conf(ch, "api_url");
    if (s->refuse_left > 0) {
        s->refuse_left--;
        struct fd_send_result r = {.status = FD_SEND_FAILED, .error = "test refusal"};
        host->send_done(token, &r);
        return 0;
    }
    if (s->fail_left > 0) {
        s->fail_left--;
        struct fd_send_result r = {.status = FD_SEND_RETRY,
                                   .retry_after_ms = 100, .error = "test 503"};
        host->send_done(token, &r);
        return 0;
    }
    static const char *const kinds[] = {"reply", "dm", "hide"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "action", kinds[a->kind]);
    if (a->text)
        cJSON_AddStringToObject(o, "text", a->text);
    cJSON_AddNumberToObject(o, "case", (double)a->case_id);
    cJSON_AddNumberToObject(o, "outbox", (double)a->id);
    cJSON_AddNumberToObject(o, "attempt", a->attempt);
    if (a->chat_id)
        cJSON_AddStringToObject(o, "chat", a->chat_id);
    if (a->message_id)
        cJSON_AddStringToObject(o, "message_id", a->message_id);
    if (api) {
        char url[512];
        snprintf(url, sizeof url, "%s/send", api);
        char *body = cJSON_PrintUnformatted(o);
        struct fwd *f = malloc(sizeof *f);
        f->token = token;
        struct fd_http_request req = {.url = url, .body = body,
                                      .body_len = strlen(body)};
        if (!host->http(ch, &req, forwarded, f)) {
            free(f);
            struct fd_send_result r = {.status = FD_SEND_RETRY,
                                       .error = "cannot start request"};
            host->send_done(token, &r);
        }
        free(body);
        cJSON_Delete(o);
        return 0;
    }
    cJSON_AddItemToArray(s->sent, o);
    struct fd_send_result r = {.status = FD_SEND_OK};
    host->send_done(token, &r);
    return 0;
}

FD_EXPORT const struct fd_plugin frontdesk_plugin = {
    FD_PLUGIN_INIT,
    .name = "testhook",
    .version = "1",
    .caps = FD_CAP_DM | FD_CAP_HIDE | FD_CAP_THREADS,
    .keys = keys,
    .init = init,
    .start = start,
    .stop = stop,
    .webhook = webhook,
    .send = send_,
};
