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

#include "router.h"

typedef struct gw_server gw_server;
typedef struct gw_pending gw_pending;

/* How a route is served. */
enum gw_route_kind {
    GW_ROUTE_SYNC = 0,  /* handler runs on a worker thread */
    GW_ROUTE_ASYNC = 1, /* handler runs on the asyncio loop thread */
    GW_ROUTE_CONST = 2  /* the I/O thread writes stored bytes; no Python at all */
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
} gw_route;

/* One name/value pair stored in a request's buffer; both NUL-terminated there. */
typedef struct gw_pair {
    uint32_t name_off;
    uint32_t name_len;
    uint32_t value_off;
    uint32_t value_len;
} gw_pair;

/* Room for any peer address as text (an IPv6 literal is at most 45 characters). */
#define GW_PEER_ADDRESS_MAX 64

/*
 * A request, copied out of libwebsockets on the I/O thread. Once dispatched it belongs
 * to the bridge, which must answer it exactly once (gw_server_respond) and free it
 * (gw_request_free), in either order, from any thread.
 */
typedef struct gw_request {
    struct gw_request *next;
    struct gw_server *owner; /* whose pool the request goes back to */
    const gw_route *route;
    gw_pending *pending; /* the I/O thread's side of the exchange; NULL once answered */
    int method;          /* the request's own method (HEAD stays HEAD on a GET route) */
    int keep_alive;      /* 0 when the client asked for "Connection: close" */
    char *buf;           /* every string below lives here */
    size_t buf_len, buf_cap;
    uint32_t path_off, path_len;
    uint32_t host_off, host_len;
    gw_pair *pairs; /* path params, then query pairs, then headers */
    uint32_t nparams, nquery, nheaders;
    uint32_t pairs_cap;
    uint32_t body_off;
    size_t body_len;
    size_t body_expected;
    char ip[GW_PEER_ADDRESS_MAX]; /* the peer's address as text */
} gw_request;

typedef struct gw_config {
    const char *host;      /* an IPv4 or IPv6 literal, e.g. "127.0.0.1" or "::1" */
    int port;              /* 0 picks a free port; see gw_server_port() */
    size_t max_body;       /* bytes; larger bodies are answered 413 */
    size_t max_header;     /* bytes of request head; larger is answered 431 */
    unsigned keepalive_timeout; /* seconds an idle keep-alive connection is kept */
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

/* Adds a header name to capture on libwebsockets builds that cannot list the headers
 * they have no token for (4.1); elsewhere every header is captured anyway. Before
 * gw_server_start(). Returns 1 when added, 0 when already there, -EINVAL, -ENOMEM. */
int gw_server_watch_header(gw_server *srv, const char *name);

/* Visits every route, in registration order. */
void gw_server_each_route(gw_server *srv, void (*fn)(gw_route *route, void *arg), void *arg);

/*
 * Binds and starts the I/O thread. Returns 0, or a negative errno-style code with a
 * one-line reason in err (e.g. "address 127.0.0.1:8080 is already in use").
 */
__attribute__((warn_unused_result))
int gw_server_start(gw_server *srv, const gw_config *cfg, char *err, size_t errlen);

/* The port actually bound (useful after port 0), or 0 when not started. */
int gw_server_port(const gw_server *srv);

/* Graceful stop, step one: new requests are answered 503 with "Connection: close";
 * requests in flight still get their answers. */
void gw_server_drain(gw_server *srv);

/* The number of requests handed to the bridge and not answered yet. */
size_t gw_server_in_flight(const gw_server *srv);

/* Stops the I/O thread and closes every connection; wakes every thread blocked in
 * gw_server_next_sync(). Idempotent. */
void gw_server_stop(gw_server *srv);

/* Blocks until a sync request is queued for this worker (workers are numbered from 0)
 * and returns it, or returns NULL once the server stops. Call without holding the GIL.
 * Only one worker drains the queue at a time; another is woken when it stalls. */
gw_request *gw_server_next_sync(gw_server *srv, int worker);

/* A worker thread calls this once when it starts, before gw_server_next_sync(). */
void gw_server_worker_started(gw_server *srv);

/* Returns a queued sync request, or NULL at once when there is none or when another
 * worker is draining the queue steadily (this one should then go back to sleep). */
gw_request *gw_server_try_next_sync(gw_server *srv, int worker);

/* The fd that becomes readable when async requests are queued (an eventfd). */
int gw_server_async_fd(const gw_server *srv);

/* Resets the eventfd. The loop thread calls it BEFORE taking the queues (async requests
 * and WebSocket events): a producer only writes the eventfd when its queue was empty, so
 * a reset after a take could swallow the one wake-up of an item queued in between, and
 * that queue would never wake the loop again. */
void gw_server_reset_wake(gw_server *srv);

/* Takes every queued async request (a list linked by ->next, oldest first), or NULL. */
gw_request *gw_server_take_async(gw_server *srv);

/*
 * Answers a request. response is the complete HTTP/1.1 message (status line, headers,
 * blank line, body) and is taken over by the server: it must come from
 * gw_response_alloc(). Safe from any thread; calling it twice for one request, or
 * after the client left, is harmless (the answer is dropped). Returns 0 when the answer
 * was queued, -ENOTCONN when the request was answered already.
 */
int gw_server_respond(gw_server *srv, gw_request *req, char *response, size_t len);

/* Returns a buffer for gw_server_respond with room for len bytes (and the headroom that
 * libwebsockets needs in front, which the caller does not see), or NULL. */
char *gw_response_alloc(size_t len);

/* Frees a buffer from gw_response_alloc that was not handed to gw_server_respond. */
void gw_response_free(char *response);

/* Frees a request taken from a queue. If it was never answered, it is answered 500. */
void gw_request_free(gw_server *srv, gw_request *req);

/* Returns a new request for route holding a copy of path and params, or NULL when out of
 * memory. I/O thread only (requests come from the server's pool). */
gw_request *gw_request_new_copy(gw_server *srv, const gw_route *route, int method,
                                const char *path, size_t len, const gw_param *params,
                                int nparams);

/* Frees a request without answering it (for handshakes, which have nothing to answer).
 * NULL is fine. */
void gw_request_free_unanswered(gw_request *req);

/* Sets a route's WebSocket options (copied). Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result))
int gw_route_set_ws_options(gw_route *route, int policy, int compress, int precheck,
                            const char *origins, size_t origins_len);

/* Accessors for a request's strings (NUL-terminated, inside req->buf). */
static inline const char *gw_request_str(const gw_request *req, uint32_t off)
{
    return req->buf + off;
}

/* Returns the standard reason phrase for an HTTP status ("Not Found"), or "Unknown". */
const char *gw_http_reason(int status);

/* Writes a complete response with a plain-text body into a new gw_response_alloc()
 * buffer; *len receives its length. Returns NULL when out of memory. */
char *gw_response_plain(int status, const char *body, const char *extra_headers,
                        int keep_alive, size_t *len);

#endif
