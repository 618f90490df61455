/*
 * ws.h - websocket connections of both sides, for plugins: browsers that
 * upgraded on the listener (server side) and connections the daemon opens
 * (client side, DNS resolved off the loop, no redirects, keepalive pings).
 * Each connection has a bounded send queue.
 *
 * FD_WS_CLOSED's reason text, for plugins that care:
 *   "channel stopped"              the channel is stopping (reconnect nothing)
 *   "closed"                       after the plugin's own ws_close
 *   "closed by peer[: CODE text]"  the peer's close frame (CODE, e.g. 4004)
 *   "connection lost[ (...)]"      no close frame; "(no answer to pings for
 *                                  30 s)" when the keepalive gave up
 *   "connect error: ..."           the connect failed (" (HTTP 403)" when
 *                                  the upgrade was answered with a status)
 *   "connect timed out", "cannot resolve the host name: ..."
 */
#ifndef FRONTDESK_WS_H
#define FRONTDESK_WS_H

#include <stddef.h>

#include "plugin_api.h"

struct lws;
enum lws_callback_reasons;

int ws_client_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len);

/* Server side, called by webhook.c: a browser upgraded onto channel ch. */
struct fd_conn *ws_server_open(struct lws *wsi, struct fd_channel *ch);
void ws_server_receive(struct fd_conn *c, const void *in, size_t len);
int ws_server_writeable(struct fd_conn *c);
void ws_server_closed(struct fd_conn *c);

/* Host services (plugin_api.h). */
struct fd_conn *ws_connect(struct fd_channel *ch, const char *url,
                           const char *const *headers, const char *subprotocol);
int ws_send(struct fd_conn *c, const char *data, size_t len);
void ws_close(struct fd_conn *c);
void ws_conn_set_data(struct fd_conn *c, void *data);
void *ws_conn_get_data(struct fd_conn *c);
/* Closes every connection of a channel (their CLOSED events run). */
void ws_close_channel(struct fd_channel *ch);

#endif
