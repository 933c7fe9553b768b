/*
 * What the server gives the modules that do not own its state (ws.c): a few calls, and
 * never its struct or its locks. internal.h includes this for the modules that do.
 */
#ifndef GW_SERVERLINK_H
#define GW_SERVERLINK_H

#include <libwebsockets.h>

#include "router.h"
#include "server.h"
#include "ws.h"

/* The first field of whatever a raw connection's opaque user data points to. */
enum gw_conn_tag { GW_TAG_HTTP = 0x68747470, GW_TAG_WS = 0x77730000 };

/* Makes the asyncio loop thread's eventfd readable. Any thread. */
void gw__wake_loop(gw_server *srv);

/* Wakes the I/O thread (lws_cancel_service) unless the server has stopped. Any thread. */
void gw__wake_io(gw_server *srv);

/* The server's WebSocket hub (ws.c's own state). */
gw_ws_hub *gw__server_hub(gw_server *srv);

/* The process's shards (--workers M): how many, shard k of srv's process (0 is the one
 * Python holds), and which one srv is. */
unsigned gw__server_nshards(const gw_server *srv);
gw_server *gw__server_shard(gw_server *srv, unsigned k);
unsigned gw__server_shard_index(const gw_server *srv);

/* The counters of route's endpoint on this shard, or NULL (metrics off, not a WebSocket
 * route). Set before the server starts. */
struct gw_metrics_endpoint *gw__server_endpoint(gw_server *srv, const gw_route *route);

/* The router, for WebSocket routes. Read-only once the server runs. */
const gw_router *gw__server_router(const gw_server *srv);

/* The libwebsockets context while the server runs, else NULL. I/O thread. */
struct lws_context *gw__server_context(gw_server *srv);

/* The server's counters, or NULL when metrics are off (metrics.h). Set before the server
 * starts and never changed after, so any thread may ask. */
struct gw_metrics *gw__server_metrics(gw_server *srv);

/* Whether the server is draining (a graceful stop has begun). Any thread. */
int gw__server_draining(gw_server *srv);

/* ws.c, I/O thread: the HTTP connection on wsi asks for a WebSocket upgrade; req is its
 * head (taken over in every case). Returns 0 when the socket now belongs to ws.c (its
 * opaque user data is a gw_ws_conn and bytes after the head, rest, were kept), or an
 * HTTP status to answer with, *extra set to extra header lines (or NULL) and *body to
 * the body; the connection then stays HTTP's and closes after that answer. */
/* access_what: "IP METHOD /path" of the access log when it is on (copied), else NULL;
 * the connection's close is then logged with its code. */
int gw__ws_upgrade(gw_server *srv, struct lws *wsi, gw_request *req, const char *rest,
                   size_t rest_len, const char **extra, const char **body,
                   const char *access_what);

#endif
