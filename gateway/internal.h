/*
 * What server.c and ws.c share and nothing else sees: the server's state, and the
 * per-connection state libwebsockets keeps for us.
 */
#ifndef GW_INTERNAL_H
#define GW_INTERNAL_H

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>

#include "server.h"
#include "ws.h"

#define GW_LWS_AT_LEAST(maj, min)                                                               \
    (LWS_LIBRARY_VERSION_MAJOR > (maj) ||                                                       \
     (LWS_LIBRARY_VERSION_MAJOR == (maj) && LWS_LIBRARY_VERSION_MINOR >= (min)))

/* How long the sync queue may go without a worker taking a request before another
 * worker is woken: a handler that blocks (time.sleep, I/O) must not hold up the rest. */
#define GW_SYNC_STALL_NS (2 * 1000 * 1000)

/* Bodies larger than this past the limit are not read to the end before closing. */
#define GW_DISCARD_LIMIT (16u * 1024u * 1024u)

/* The I/O thread's side of one request/answer exchange. Owned by the I/O thread, except
 * between gw_server_respond() and the drain of the answer queue. */
struct gw_pending {
    gw_pending *next;
    struct lws *wsi; /* NULL once the client has gone; I/O thread only */
    char *response;
    size_t len;
};

/* Per-connection state that libwebsockets allocates for us (per_session_data). */
typedef struct gw_conn {
    gw_request *reading; /* request whose body is still arriving */
    gw_request *complete; /* body complete, dispatched on the next loop pass (see
                             on_body_complete) */
    struct lws *wsi;
    lws_sorted_usec_list_t dispatch_timer;
    int body_replayed; /* the body began like the request line (lws 4.1 bug, see server.c) */
    gw_pending *pending; /* request in Python's hands */
    size_t discard_left; /* bytes of an oversized body still to swallow before closing */
    int discarding;
} gw_conn;

typedef struct gw_route_list {
    gw_route **items;
    size_t len, cap;
} gw_route_list;

struct gw_server {
    gw_router *router;
    gw_route_list routes;
    gw_config cfg;
    char host[64];

    struct lws_context *context;
    pthread_t io_thread;
    int io_started;
    atomic_int stopping;
    atomic_int draining;
    atomic_size_t in_flight;
    int port;

    /* The sync queue. One worker at a time drains it, keeping the GIL across requests;
     * more are woken only when it stalls (see sync_kick), since every extra awake worker
     * costs GIL hand-offs. */
    pthread_mutex_t sync_lock;
    pthread_cond_t sync_cond;
    gw_request *sync_head, *sync_tail;
    int sync_idle;      /* workers waiting on sync_cond */
    int sync_awake;     /* workers not waiting (draining, or inside a handler) */
    int sync_signalled; /* signals sent and not yet taken by a waking worker */
    int sync_closed;
    uint64_t sync_progress_ns; /* when a worker last took a request */
    int sync_last_worker;      /* which worker that was */
    lws_sorted_usec_list_t sync_timer;
    int sync_timer_armed; /* I/O thread only */

    /* Requests dispatched during the current lws_service() round (I/O thread only). */
    gw_request *round_sync_head, *round_sync_tail;
    gw_request *round_async_head, *round_async_tail;

    pthread_mutex_t async_lock;
    gw_request *async_head, *async_tail;
    int async_fd;

    pthread_mutex_t answer_lock;
    gw_pending *answer_head, *answer_tail;

    /* Finished requests kept for reuse (see "the request pool" in server.c). */
    gw_request *pool;                   /* I/O thread only */
    size_t pool_len;                    /* I/O thread only */
    _Atomic(gw_request *) pool_returned; /* pushed by any thread, taken whole */

    struct {
        /* Lower-case header names looked up by name on lws 4.1, each stored as lws
         * stores custom names, with its colon: "x-request-id:" (len counts no colon). */
        struct gw_watched_name {
            char *name;
            size_t len;
        } *names;
        size_t len, cap;
    } watched;

    gw_ws_hub *ws; /* WebSocket connections, topics and their queues (ws.c) */
};


/* Copies the query pairs and headers of the request lws is parsing into req.
 * Returns 0, -ENOMEM, or -E2BIG when the head is larger than cfg.max_header. */
int gw__copy_head(gw_server *srv, gw_request *req, struct lws *wsi);

/* The peer's address of an HTTP connection, as text ("" when unknown); asked of the
 * kernel once per connection. I/O thread. */
const char *gw__peer_address(struct lws *wsi);

/* Makes the asyncio loop thread's eventfd readable. Any thread. */
void gw__wake_loop(gw_server *srv);

/* Writes a plain-text answer at once from an HTTP callback; returns lws_write's result. */
int gw__send_plain(struct lws *wsi, int status, const char *body, const char *extra_headers,
                   int keep_alive);

#endif
