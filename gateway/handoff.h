/*
 * The hand-off queues: requests from the I/O thread to the threads that run Python.
 *
 * Sync requests go to one queue drained by the bridge's worker threads (one drains it,
 * keeping the GIL across requests; another is woken only when the queue stalls, so that a
 * handler that blocks holds up nobody). Async requests go to a queue the asyncio loop
 * thread takes whole after a wake-up on an eventfd. Requests dispatched during one
 * lws_service() round reach their queue together, under one lock and one wake-up.
 *
 * Ownership: a request taken from a queue belongs to the taker, who answers it
 * (answer.h) and frees it with gw_request_free().
 */
#ifndef GW_HANDOFF_H
#define GW_HANDOFF_H

#include "request.h"

struct gw_server;

/* Blocks until a sync request is queued for this worker (workers are numbered from 0)
 * and returns it, or returns NULL once the server stops. Call without holding the GIL.
 * Only one worker drains the queue at a time; another is woken when it stalls. */
gw_request *gw_server_next_sync(struct gw_server *srv, int worker);

/* A worker thread calls this once when it starts, before gw_server_next_sync(). */
void gw_server_worker_started(struct gw_server *srv);

/* Returns a queued sync request, or NULL at once when there is none or when another
 * worker is draining the queue steadily (this one should then go back to sleep). */
gw_request *gw_server_try_next_sync(struct gw_server *srv, int worker);

/* The fd that becomes readable when async requests are queued (an eventfd). */
int gw_server_async_fd(const struct gw_server *srv);

/* Resets the eventfd. The loop thread calls it BEFORE taking the queues (async requests
 * and WebSocket events): a producer only writes the eventfd when its queue was empty, so
 * a reset after a take could swallow the one wake-up of an item queued in between, and
 * that queue would never wake the loop again. */
void gw_server_reset_wake(struct gw_server *srv);

/* Takes every queued async request (a list linked by ->next, oldest first), or NULL. */
gw_request *gw_server_take_async(struct gw_server *srv);


#endif
