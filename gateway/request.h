/*
 * A request as C hands it to Python: one growable buffer holding every string of it
 * (target, headers, query pairs, path parameters, body), and the pool that recycles them.
 *
 * Ownership: a request is made by the I/O thread (gw_pool_take) and filled there by the
 * HTTP parser adapter (httpparse.h). Once handed to the bridge it belongs to the bridge,
 * which answers it through server.h and gives it back with gw_request_free() from any
 * thread; the memory then returns to its pool, not to free().
 *
 * Nothing here knows of sockets, libwebsockets or Python.
 */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct gw_route;
struct gw_pending;
struct gw_pool;

/* One name/value pair stored in a request's buffer; both NUL-terminated there. */
typedef struct gw_pair {
    uint32_t name_off;
    uint32_t name_len;
    uint32_t value_off;
    uint32_t value_len;
} gw_pair;

/* Room for any peer address as text (an IPv6 literal is at most 45 characters). */
#define GW_PEER_ADDRESS_MAX 64

typedef struct gw_request {
    struct gw_request *next;   /* queue link; whoever holds the request uses it */
    struct gw_pool *pool;      /* where the memory goes back to */
    const struct gw_route *route;
    struct gw_pending *pending; /* the connection's side of the answer; NULL once answered */
    int method;                /* GW_METHOD_*, or -1 for a token no route can have */
    int version;               /* 10 or 11 */
    int keep_alive;            /* the connection stays open after the answer */
    int expect_continue;       /* the client waits for "100 Continue" before its body */
    int upgrade;               /* the client asked to switch protocols */
    int refuse;                /* a status to answer instead of routing (400 for %00 ...) */
    unsigned allowed;          /* with refuse 405: the methods the path has routes for */
    char *buf;                 /* every string below lives here */
    size_t buf_len, buf_cap;
    uint32_t target_off, target_len; /* the request target exactly as sent */
    uint32_t path_off, path_len;     /* the path, percent-decoded */
    uint32_t host_off, host_len;
    gw_pair *pairs;            /* headers, then query pairs, then path parameters */
    uint32_t npairs, pairs_cap;
    uint32_t header_at, nheaders; /* names lower-case, in arrival order, repeats kept */
    uint32_t query_at, nquery;    /* decoded */
    uint32_t param_at, nparams;
    uint32_t body_off;
    size_t body_len;
    char ip[GW_PEER_ADDRESS_MAX]; /* the peer's address as text */
} gw_request;

/* Returns the string at off inside req's buffer (NUL-terminated). */
static inline const char *gw_request_str(const gw_request *req, uint32_t off)
{
    return req->buf + off;
}

/*
 * A request packed into one block of exactly its strings: what a WebSocket connection keeps
 * of its handshake for Python (method, path, host, peer address, body, headers, query and
 * path parameters) for as long as it is open. A gw_request with its buffer and pairs
 * costs about 580 bytes for a 200-byte handshake (its fixed fields, its 64-byte address,
 * three blocks); packed, the same handshake takes about 260, and the request itself goes
 * back to its pool. Python asks for the request rarely (a handler reading headers or
 * query parameters), and gets a copy unpacked for it.
 */
typedef struct gw_packed_request gw_packed_request;

/* Packs req (which is left as it was). Returns one malloc'd block (free() it), or NULL
 * when out of memory. */
gw_packed_request *gw_request_pack(const gw_request *req);

/* A request with the packed one's contents, in memory of its own (no pool: free it with
 * gw_request_release(), from any thread), or NULL when out of memory. It is answered
 * already (pending NULL) and has no target. */
gw_request *gw_request_unpack(const gw_packed_request *packed);

/* The route the packed request was routed to. */
const struct gw_route *gw_packed_request_route(const gw_packed_request *packed);

/* Returns the value of the first header called name (lower-case, name_len bytes) and its
 * length in *len, or NULL. */
const char *gw_request_header(const gw_request *req, const char *name, size_t name_len,
                              size_t *len);

/* Returns a new pair slot at the end of pairs (npairs counts it), for strings already in
 * the buffer, or NULL when out of memory. */
gw_pair *gw_request_new_pair(gw_request *req);

/* Makes room for more bytes in the buffer. Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result))
int gw_request_reserve(gw_request *req, size_t more);

/* Appends bytes and a NUL. Returns the offset of the copy, or -1 when out of memory. */
int64_t gw_request_append(gw_request *req, const char *s, size_t len);

/* Appends a pair (both strings copied). Returns 0 or -ENOMEM. The caller counts it in
 * nheaders, nquery or nparams. */
__attribute__((warn_unused_result))
int gw_request_add_pair(gw_request *req, const char *name, size_t name_len,
                        const char *value, size_t value_len);

/*
 * The pool. Requests are made on the I/O thread and finished on whichever thread ran the
 * handler; freeing them there and allocating anew on the I/O thread sends every request
 * through glibc's locked arena paths. Finished requests go back, buffers kept, onto a
 * lock-free stack that the owner takes whole when its own list runs dry.
 */
typedef struct gw_pool {
    gw_request *free_list;               /* owner thread only */
    size_t free_len;                     /* owner thread only */
    _Atomic(gw_request *) returned;      /* pushed by any thread, taken whole */
} gw_pool;

/* Returns an empty request from the pool, or a new one; NULL when out of memory.
 * The pool's owner thread only. */
gw_request *gw_pool_take(gw_pool *pool);

/* Frees everything the pool holds. Nothing may be given back afterwards. */
void gw_pool_free(gw_pool *pool);

/* Gives a request's memory back to its pool (or to free() for one made by
 * gw_request_unpack()), from any thread, without answering it. NULL is fine. (server.h's gw_request_free() answers an unanswered one first.) */
void gw_request_release(gw_request *req);

#endif
