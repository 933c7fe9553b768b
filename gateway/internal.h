/*
 * What the server's own modules (server.c, http.c, listen.c, ws.c) share and nothing else
 * sees: the server's state, the answer slots, and the tags that tell which module a raw
 * connection currently belongs to.
 */
#ifndef GW_INTERNAL_H
#define GW_INTERNAL_H

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>

#include "httpparse.h"
#include "metrics.h"
#include "serverlink.h"
#include "server.h"
#include "static.h"
#include "ws.h"

#define GW_LWS_AT_LEAST(maj, min)                                                               \
    (LWS_LIBRARY_VERSION_MAJOR > (maj) ||                                                       \
     (LWS_LIBRARY_VERSION_MAJOR == (maj) && LWS_LIBRARY_VERSION_MINOR >= (min)))

/* How long the sync queue may go without a worker taking a request before another
 * worker is woken: a handler that blocks (time.sleep, I/O) must not hold up the rest. */
#define GW_SYNC_STALL_NS (2 * 1000 * 1000)


struct gw_http_conn;

/* What the access log line of an answer Python gives needs, kept on its slot (only when
 * the access log is on). */
typedef struct gw_access {
    int64_t since;  /* when the request was handed over, µs */
    size_t bytes;   /* of the answer, head included, as they go to the socket */
    int status;     /* read from the answer's status line */
    char what[200]; /* "ip METHOD /path" */
} gw_access;

/* One piece of an answer on its way from a handler's thread to the I/O thread. */
typedef struct gw_part {
    struct gw_part *next;
    struct gw_pending *p;
    char *data; /* from gw_response_alloc(); NULL for none */
    size_t len;
    size_t counted; /* bytes of it counted in p->unsent */
    int final;      /* the answer is complete after this part */
    int abort;      /* the answer cannot be completed: close after what went out */
} gw_part;

/*
 * One answer owed to a connection, in its list of slots (request order). Shared: the I/O
 * thread holds one reference while the slot is in its connection's list, the request
 * holds one until it posts its final part. Everything not atomic is the I/O thread's,
 * except `own` and the stream fields the answering thread sets before posting.
 */
struct gw_pending {
    struct gw_pending *next_slot;  /* the connection's list */
    struct gw_http_conn *conn;     /* NULL once the client left */
    gw_server *srv;
    atomic_int refs;
    gw_part own;                   /* the first (often only) part, inline */
    gw_part *ready_head, *ready_tail; /* arrived, not yet written */
    int done;                      /* the final part has arrived */
    int close_after;               /* the connection closes after this answer */
    int head_only;                 /* HEAD: a stream's chunks are not sent */
    int chunked;                   /* a stream on HTTP/1.1 (else close-delimited) */
    int streaming;                 /* answering thread: a stream was started */
    atomic_size_t unsent;          /* stream bytes posted and not yet in the output */
    atomic_size_t conn_backlog;    /* the output bytes the socket has not taken */
    atomic_int gone;
    atomic_int want_writable;      /* a stream writer waits (see gw_stream_*) */
    atomic_int loop_wait;          /* that writer is on the event loop (wants the list) */
    int listed;                    /* on srv->writable_head; guarded by stream_lock */
    void *waiter;                  /* the bridge's callback; GIL-protected */
    struct gw_static_answer *file; /* a static file still to send from disk after the
                                      parts (I/O thread only; NULL for none) */
    struct gw_pending *next_writable; /* srv->writable list */
    gw_access *access;             /* NULL unless the access log is on (I/O thread only) */
    int64_t metrics_since;         /* metrics on: when its last bytes arrived, µs */
    int metrics_status;            /* and the status its answer began with */
};

typedef struct gw_route_list {
    gw_route **items;
    size_t len, cap;
} gw_route_list;

struct gw_server {
    gw_router *router;
    gw_route_list routes;
    gw_route *fallback; /* takes what no route matches (404 / 405), when the app asks */
    gw_config cfg;
    gw_hp_limits limits;
    char host[64];

    struct lws_context *context;
    struct lws_vhost *vhost;
    /* The I/O thread's libev loop (epoll), lent to lws as its foreign loop, and what runs
     * before each wait on it; NULL when lws' own poll() loop serves (ROBYN_EVENT_LOOP=poll). */
    struct ev_loop *loop;
    void *foreign_loops[1];
    struct ev_prepare *before_wait;
    const char *poll_reason; /* why poll() serves though epoll was not refused; or NULL */
    int epoll_required;      /* ROBYN_EVENT_LOOP=epoll: no falling back to poll() */
    pthread_t io_thread;
    int io_started;
    atomic_int stopping;
    atomic_int draining;
    atomic_size_t in_flight;
    int port;
    int listen_fd;
    struct lws *listen_wsi;
    lws_sorted_usec_list_t accept_timer; /* accepts resume after running out of fds */
    int accept_paused;
    int accept_warned;

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

    /* Answer parts posted by handler threads, in posting order. */
    pthread_mutex_t answer_lock;
    gw_part *answer_head, *answer_tail;

    /* Streams whose writer waits: a condition for threads, a list for the loop. */
    pthread_mutex_t stream_lock;
    pthread_cond_t stream_cond;
    gw_pending *writable_head;

    gw_pool pool; /* requests; taken on the I/O thread */

    /* HTTP connections (I/O thread only): every one, for the deadline sweep, and those
     * given something to write by the answers being taken. */
    struct gw_http_conn *http_conns;
    size_t n_http_conns;
    struct gw_http_conn **flush;
    size_t nflush, flush_cap;
    lws_sorted_usec_list_t sweep_timer;

    gw_ws_hub *ws; /* WebSocket connections, topics and their queues (ws.c) */

    struct gw_static_set *statics; /* serve_directory mounts (static.c); NULL for none */

    struct gw_metrics *metrics;  /* NULL unless gw_server_enable_metrics() (metrics.h) */
    gw_route *metrics_route;

    /* --workers M (docs/architecture.md, "I/O shards"): the server Python holds is shard 0
     * and owns shards[1..M-1], each a gw_server of its own (context, listening socket, I/O
     * thread, hub) that borrows shard 0's router, routes, static mounts and Python queues.
     * With M = 1 shards is NULL, nshards 1 and primary NULL: nothing on any path changes. */
    gw_server *primary;   /* shard 0 for shards 1..M-1; NULL in shard 0 */
    gw_server **shards;   /* shard 0 only: all M, itself first; NULL when M = 1 */
    unsigned nshards;     /* shard 0: M (set before start); others: 1 */
    unsigned shard_index; /* 0..M-1 */
    gw_ws_config ws_cfg;  /* as given to gw_server_configure_ws, for the shards made at start */
    int ws_configured;
    atomic_size_t accepted; /* connections this shard's listening socket took (stats) */
    /* Metrics on, shards 1..M-1: their WebSocket endpoints' counters, by route index (shard
     * 0's hang on the routes). */
    struct gw_metrics_endpoint *endpoints;
    /* Metrics on, shard 0 with M above 1: its bus's figures as of its last sweep, for the
     * scrapes the other shards answer (the bus's own counters are its thread's). */
    pthread_mutex_t bus_snapshot_lock;
    gw_metrics_bus bus_snapshot;
};

/* The server whose Python queues (sync, async, the loop's eventfd) a shard uses: shard 0. */
static inline gw_server *gw__queue_owner(gw_server *srv)
{
    return srv->primary ? srv->primary : srv;
}

/* I/O thread, after each lws_service() round: hands the round's requests over
 * (handoff.c). */
void gw__flush_round(gw_server *srv);

/* Frees a request that never reached Python, with its slot (the context is gone). */
void gw__req_discard(gw_request *req);

/* After the context is gone: frees every answer part still queued (answer.c). */
void gw__discard_answers(gw_server *srv);


/* I/O thread: queues a request for Python (held until the round ends). */
void gw__dispatch(gw_server *srv, gw_request *req);

/* Drops one reference to p, freeing it with the last. Any thread. */
void gw__pending_unref(gw_pending *p);

/* I/O thread: a stream's writer may go on (the backlog fell, or the client left). */
void gw__stream_writable(gw_server *srv, gw_pending *p);

/* Writes a plain-text answer into out (room for cap bytes); returns its length, or 0
 * when it does not fit. head_only leaves the body out. */
size_t gw__plain_answer(char *out, size_t cap, int status, const char *extra_headers,
                        int keep_alive, int head_only);

/* The listening socket (listen.c): opens, binds and listens; returns the fd or a
 * negative errno with a reason in err. */
int gw__listen_open(const char *host, int port, int reuse_port, char *err, size_t errlen);

/* Adopts the listening socket into the context so that its accepts run on the I/O
 * thread. Returns 0 or -1. */
int gw__listen_adopt(gw_server *srv);

/* The lws protocol of the listening socket. */
#define GW_LISTEN_PROTOCOL "robyn-listen"
int gw__listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                        void *in, size_t len);

#endif
