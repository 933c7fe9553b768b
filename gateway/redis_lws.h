/*
 * redis_lws.h: the Redis bus (pubsub/bus_redis.c) driven by the I/O thread's lws loop.
 *
 * hiredis' async connections are watched by libwebsockets as raw file descriptors of the
 * GW_REDIS_PROTOCOL protocol (a dup of hiredis' socket, so that each side closes its own
 * descriptor), the bus's one timer is an lws_sorted_usec_list_t, its wake-up is
 * lws_cancel_service(), and what it receives goes into the hub's registry like a local
 * publish. No thread, no Python.
 */
#ifndef GW_REDIS_LWS_H
#define GW_REDIS_LWS_H

#include <libwebsockets.h>

#include "bus_redis.h"
#include "server.h"

#define GW_REDIS_PROTOCOL "robyn-redis"

typedef struct gw_redis_host gw_redis_host;

/* Makes the Redis bus for srv delivering into topics (cfg resolved and probed). The
 * context must exist; the I/O thread may not run yet. Returns the bus and its host in
 * *host_out (freed with gw__redis_host_free() after the bus is closed), or NULL. */
ps_bus *gw__redis_bus_new(gw_server *srv, ps_topics *topics, const ps_redis_config *cfg,
                          gw_redis_host **host_out);

/* Frees the host once its bus has been closed (the I/O thread stopped). */
void gw__redis_host_free(gw_redis_host *host);

/* The protocol callback of the Redis descriptors. */
int gw__redis_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                       void *in, size_t len);

/* ---- what ws.c provides for it ---------------------------------------------------------- */

/* The bus the hub publishes through. I/O thread. */
ps_bus *gw__ws_bus(gw_server *srv);

/* Delivers a frame that came from another process (borrowed) to this process's
 * subscribers of topic, like a local publish; the writes happen at gw__ws_flush(). I/O
 * thread. Returns how many subscribers it reached. */
size_t gw__ws_deliver_remote(gw_server *srv, const char *topic, size_t len, ps_frame *frame);
/* Topics with history in Redis (gateway/ws.c): a numbered message from a channel, a
 * channel's SUBSCRIBE confirmed, Redis lost. I/O thread. */
void gw__ws_deliver_history(gw_server *srv, const char *topic, size_t len, const char *epoch,
                            size_t epoch_len, uint64_t offset, ps_frame *frame);
void gw__ws_redis_channel_ready(gw_server *srv, const char *topic, size_t len);
void gw__ws_redis_down(gw_server *srv);

/* Writes what the deliveries since the last call queued. I/O thread. */
void gw__ws_flush(gw_server *srv);

#endif
