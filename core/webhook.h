/*
 * webhook.h - the HTTP listener: /hooks/<channel>[/...] to the channel's
 * plugin, /healthz, /metrics, "/" to the web-page channel, and websocket
 * upgrades at those paths to the plugin's ws_event.
 */
#ifndef FRONTDESK_WEBHOOK_H
#define FRONTDESK_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "plugin_api.h"

struct lws;
enum lws_callback_reasons;

size_t webhook_pss_size(void);
int webhook_callback(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len);
/* A server-side websocket's connection record is going away first. */
void webhook_conn_detach(struct lws *wsi);
/* Limits from [core]. */
void webhook_set_limits(long max_body);
/* Answers wait for the store's batch: open() tells whether one is open;
 * webhook_committed(ok) releases them (503 when the commit failed). */
void webhook_set_batch_probe(bool (*open)(void));
void webhook_committed(bool ok);
/* Refuse new requests with 503 (draining). */
void webhook_set_draining(bool draining);
/* Frees what the listener kept between requests (after loop_cleanup). */
void webhook_cleanup(void);

/* Host services (plugin_api.h). */
void webhook_reply_status(struct fd_http_reply *r, int status);
void webhook_reply_type(struct fd_http_reply *r, const char *type);
int webhook_reply_body(struct fd_http_reply *r, const char *data, size_t len);
const char *webhook_header(const struct fd_http_in *req, const char *name);

#endif
