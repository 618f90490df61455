/*
 * http.h - outbound HTTP with libcurl's multi socket interface, driven by the
 * libwebsockets loop (see http.c for how the two share it).
 */
#ifndef FRONTDESK_HTTP_H
#define FRONTDESK_HTTP_H

#include "plugin_api.h"

struct lws_context;
struct lws_vhost;
struct lws;

int http_init(struct lws_context *ctx, struct lws_vhost *vh);
void http_cleanup(void);

/* The host service (plugin_api.h): NULL on failure. */
struct fd_http_call *http_request(struct fd_channel *ch,
                                  const struct fd_http_request *req,
                                  fd_http_done_fn done, void *ud);
void http_cancel(struct fd_http_call *call);
const char *http_response_header(const struct fd_http_response *r,
                                 const char *name);
/* Cancels every call of a channel (their done runs with cancelled). */
void http_cancel_channel(struct fd_channel *ch);
int http_in_flight(void);
/* End-of-turn work: curl's "time out now" requests; true if it ran. */
bool http_turn(void);
/* Runs before every request starts (the router commits its batch, so no
 * request, such as a poll confirming updates, precedes the commit). */
void http_set_before_request(void (*fn)(void));

/* The lws protocol callback for adopted curl sockets ("fd-curl"). */
int http_raw_callback(struct lws *wsi, int reason, void *user, void *in,
                      size_t len);

#endif
