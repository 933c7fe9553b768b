/*
 * The HTTP server: one libwebsockets context served by one I/O thread.
 *
 * The I/O thread parses requests, matches routes, answers what needs no Python (404,
 * 405, 413, 431, const routes) and hands every other request to one of two queues:
 * the sync queue, drained by worker threads that the bridge runs, and the async queue,
 * drained by the asyncio loop thread after a wake-up on an eventfd. Answers come back
 * through a third queue and one lws_cancel_service() per batch.
 *
 * This module knows nothing of Python. Every function here is safe to call from any
 * thread unless it says "I/O thread only" or "before gw_server_start()".
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"
#include "router.h"

typedef struct gw_server gw_server;
typedef struct gw_pending gw_pending;

/* How a route is served. */
enum gw_route_kind {
    GW_ROUTE_SYNC = 0,  /* handler runs on a worker thread */
    GW_ROUTE_ASYNC = 1, /* handler runs on the asyncio loop thread */
    GW_ROUTE_CONST = 2, /* the I/O thread writes stored bytes; no Python at all */
    GW_ROUTE_STATIC = 3, /* a static directory's answer (static.h); never in the router */
    GW_ROUTE_METRICS = 4 /* the I/O thread renders the metrics (metrics.h) */
};

/* What happens to a subscriber whose send queue is over its limit when a publish or a
 * broadcast reaches it. */
enum gw_ws_policy {
    GW_WS_POLICY_CLOSE = 0, /* close it with 1008 (and count it) */
    GW_WS_POLICY_DROP = 1   /* drop the message for it (and count it) */
};

/* Per-endpoint WebSocket options (WS routes only). */
typedef struct gw_ws_options {
    int policy;    /* enum gw_ws_policy */
    int compress;  /* allow permessage-deflate on this endpoint */
    size_t compress_threshold; /* with it, messages this long or longer leave compressed */
    char *origins; /* allowed Origin values, NUL-separated, ending with an empty string;
                      NULL allows any origin. Owned by the route. */
    int precheck;  /* Python decides each upgrade before it is answered (on_connect) */
} gw_ws_options;

/* A registered route. The server owns it; `handler` belongs to the bridge, which keeps
 * it alive at least as long as the server. */
typedef struct gw_route {
    int kind;
    int method;
    void *handler;
    char *pattern;
    /* CONST only: the whole response, and how much of it is the head (for HEAD requests). */
    char *const_response;
    size_t const_len;
    size_t const_head_len;
    gw_ws_options ws;
    struct gw_metrics_endpoint *metrics; /* WS routes, when metrics are on (metrics.h) */
    size_t index; /* in the server's route list: the other shards' counters are kept by it */
} gw_route;

/* The limits and deadlines of docs/http.md. */
typedef struct gw_config {
    const char *host;      /* an IPv4 or IPv6 literal, e.g. "127.0.0.1" or "::1" */
    int port;              /* 1-65535 */
    size_t max_body;       /* bytes; larger bodies are answered 413 */
    size_t max_header;     /* bytes of request head; larger is answered 431 */
    size_t max_header_count; /* header lines; more are answered 431 */
    size_t max_url;        /* bytes of request target; longer is answered 414 */
    unsigned keepalive_timeout; /* seconds an idle keep-alive connection is kept */
    unsigned header_timeout;    /* seconds for a request head to arrive: 408 after */
    unsigned body_timeout;      /* seconds a body may stall: 408 after */
    unsigned max_pipeline;      /* requests of one connection waiting for answers */
    size_t stream_high_water;   /* unsent bytes past which a stream's writer waits */
    int reuse_port;             /* SO_REUSEPORT: other processes may bind the port too */
    int access_log;             /* a line per answer to the log ring (gateway/lwslog.h) */
} gw_config;

/* Returns a new server with an empty route table, or NULL when out of memory. */
gw_server *gw_server_new(void);

/* Stops the server if it runs, then frees it with its routes and any request it still
 * holds. Requests already handed to the bridge stay the bridge's to free. */
void gw_server_free(gw_server *srv);

/*
 * Adds a route (before gw_server_start()). Returns the route, owned by the server, or
 * NULL with a reason naming the pattern in err (see gw_router_add) and *code set to
 * -EINVAL, -EEXIST or -ENOMEM.
 */
gw_route *gw_server_add_route(gw_server *srv, int method, const char *pattern, int kind,
                              void *handler, char *err, size_t errlen, int *code);

/* Gives a CONST route its stored response (copied): head_len bytes of status line and
 * headers, then the body. Returns 0, or -ENOMEM. Before gw_server_start(). */
__attribute__((warn_unused_result))
int gw_server_set_const(gw_server *srv, gw_route *route, const char *response, size_t len,
                        size_t head_len);

/* Makes a route that receives every request of a known method that no route matches
 * (those C would answer 404 or 405), with no path parameters: an app whose middleware
 * must see unrouted requests asks for it. It is listed after the routes added so far
 * (gw_server_each_route visits it) and there is at most one. Returns the route, or NULL
 * with *code set to -EEXIST (one exists already) or -ENOMEM. Before gw_server_start(). */
gw_route *gw_server_set_fallback(gw_server *srv, int kind, void *handler, int *code);

/* Matches a request as the I/O thread routes it (HEAD falls back to GET), for callers
 * that answer requests without a socket (the Python test client). Returns the route's
 * position in registration order, or -1 when no route takes the path; then *allowed has
 * the bitmask (1u << method) of the methods that would (HEAD wherever GET is). params
 * needs room for GW_ROUTER_MAX_PARAMS; values point into path. Static mounts and the
 * fallback are not consulted. A method out of range (or GW_METHOD_WS) never matches. */
long gw_server_match(const gw_server *srv, int method, const char *path, size_t path_len,
                     gw_param *params, int *nparams, unsigned *allowed);

/* Visits every route, in registration order. */
void gw_server_each_route(gw_server *srv, void (*fn)(gw_route *route, void *arg), void *arg);

/*
 * Binds and starts the I/O thread. Returns 0, or a negative errno-style code with a
 * one-line reason in err (e.g. "address 127.0.0.1:8080 is already in use").
 */
__attribute__((warn_unused_result))
int gw_server_start(gw_server *srv, const gw_config *cfg, char *err, size_t errlen);

/* --workers M: the most I/O shards one process runs. */
#define GW_MAX_SHARDS 64

/*
 * Before gw_server_start(): serve with count I/O shards (1..GW_MAX_SHARDS), each its own
 * thread, event loop, listening socket (SO_REUSEPORT) and share of the WebSocket
 * connections, while Python keeps one loop and one sync pool (docs/architecture.md, "I/O
 * shards"). Returns 0, -EINVAL for a count out of range, -EALREADY once started.
 */
int gw_server_set_shards(gw_server *srv, unsigned count);

/* The number of shards asked for (1 unless gw_server_set_shards). */
unsigned gw_server_shard_count(const gw_server *srv);

/* Shard k (0 is srv itself) while the server runs; NULL for k out of range. The shard is a
 * gw_server for the WebSocket calls (ws.h) and answers of the requests it took. */
gw_server *gw_server_shard(gw_server *srv, unsigned k);

/* How many connections the shard's listening socket has taken. Any thread. */
size_t gw_server_accepted(const gw_server *srv);

/* The port actually bound (useful after port 0), or 0 when not started. */
int gw_server_port(const gw_server *srv);

/* Graceful stop, step one: new requests are answered 503 with "Connection: close";
 * requests in flight still get their answers. */
void gw_server_drain(gw_server *srv);

/* The number of requests handed to the bridge and not answered yet. */
size_t gw_server_in_flight(const gw_server *srv);

/* The I/O threads' event loop while the server runs: "epoll" or "poll". When poll() serves
 * though ROBYN_EVENT_LOOP did not ask for it, *poll_reason (if given) says why; else NULL.
 * docs/architecture.md, "The I/O loop". */
const char *gw_server_event_loop(const gw_server *srv, const char **poll_reason);

/* Stops the I/O thread and closes every connection; wakes every thread blocked in
 * gw_server_next_sync(). Idempotent. */
void gw_server_stop(gw_server *srv);

/* The hand-off queues (handoff.h) and the answers (answer.h) are the bridge's other
 * half of this API. */

/* Frees a request without answering it (handshakes have nothing to answer). NULL is
 * fine. */
static inline void gw_request_free_unanswered(gw_request *req)
{
    gw_request_release(req);
}

/* Sets a route's WebSocket options (copied). Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result))
int gw_route_set_ws_options(gw_route *route, int policy, int compress,
                            size_t compress_threshold, int precheck, const char *origins,
                            size_t origins_len);

/* Returns the standard reason phrase for an HTTP status ("Not Found"), or "Unknown". */
const char *gw_http_reason(int status);

/* Writes a complete response with a plain-text body into a new gw_response_alloc()
 * buffer; *len receives its length. Returns NULL when out of memory. */
char *gw_response_plain(int status, const char *body, const char *extra_headers,
                        int keep_alive, size_t *len);

#include "answer.h"
#include "handoff.h"

#endif
