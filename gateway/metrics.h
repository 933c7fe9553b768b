/*
 * The server's counters and their Prometheus text exposition (format 0.0.4), served by
 * the I/O thread at the path given to gw_server_enable_metrics() (docs/realtime.md).
 *
 * Every counter here but one is written by one I/O thread only: the increments are a
 * relaxed load and store (gw_count(), a plain add on x86, no lock prefix), so that the
 * scrape of another I/O thread of the process (--workers M, each thread with counters of
 * its own, summed on scrape) reads them without a data race, and there is no lock on the
 * hot paths. The exception is the publish count, bumped by the Python threads that
 * publish (an atomic add, relaxed: it orders nothing). What other parts own (the send queues, the buses' counters) is read
 * at scrape time through the calls their owner gives for that.
 *
 * The increments are inline and do nothing when metrics are off (a NULL pointer), so
 * http.c and ws.c call them unconditionally.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

/* The request latency histogram's upper bounds, in microseconds (the exposition says
 * seconds). Fixed: the same buckets in every process, so they can be summed. */
#define GW_METRICS_BUCKETS 16
extern const uint32_t gw_metrics_bucket_us[GW_METRICS_BUCKETS];

/* Distinct close codes counted per endpoint; the codes past these are counted as
 * code="other", so that a peer sending every code cannot grow the exposition. */
#define GW_METRICS_CLOSE_CODES 16

/* A counter one thread writes and any thread may read. */
typedef _Atomic uint64_t gw_counter;

static inline void gw_count(gw_counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t gw_counted(const gw_counter *c)
{
    return atomic_load_explicit((gw_counter *)c, memory_order_relaxed);
}

/* One WebSocket endpoint's counters, hung on its route (gw_route.metrics) for shard 0 and
 * kept per route by the other shards (--workers M). */
typedef struct gw_metrics_endpoint {
    gw_counter connections_total;  /* upgrades accepted (101 queued) */
    gw_counter messages_received;  /* whole data messages from peers */
    gw_counter messages_sent;      /* data messages queued: sends and deliveries */
    gw_counter deliveries;         /* of them, those a publish or broadcast queued */
    gw_counter dropped;            /* deliveries dropped by the "drop" policy */
    gw_counter slow_closes;        /* connections closed 1008 for a full send queue */
    gw_counter bytes_received;     /* raw bytes read after the handshake */
    gw_counter bytes_sent;         /* raw bytes written: frames, close frames */
    struct {
        int code;
        gw_counter count;
    } closes[GW_METRICS_CLOSE_CODES];
    gw_counter closes_other;
    /* Gauges, filled by the scrape. */
    gw_counter open;
    gw_counter queued_bytes;
} gw_metrics_endpoint;

typedef struct gw_metrics {
    char labels[32];                 /* added to every sample: worker="2", or "" */
    gw_counter http_connections_total; /* sockets accepted */
    gw_counter responses[5];           /* final answers by class, 1xx .. 5xx */
    gw_counter latency_buckets[GW_METRICS_BUCKETS + 1]; /* not cumulative; last: +Inf */
    gw_counter latency_count;
    gw_counter latency_sum_us;
    atomic_uint_fast64_t publishes;  /* any thread: app.publish(), websocket.publish() ... */
    /* --workers M: this shard's gauges as of its last sweep (every 250 ms), for the scrapes
     * other shards answer; written by this shard's thread only. */
    gw_counter http_open;
} gw_metrics;

/* What the bus reports at scrape time (ws.c fills it: gw_ws_bus_state). */
typedef struct gw_metrics_bus {
    const char *name;      /* "local", "siblings", "redis" */
    int connected;         /* redis: both connections ready; siblings: every one reached */
    uint64_t buffered;     /* publishes waiting for the bus to come back */
    uint64_t lost;         /* publishes the bus could not carry (buffer full, too large) */
    uint64_t published;    /* publishes handed to the bus beyond this process */
    uint64_t received;     /* messages from other processes delivered here */
    /* redis only */
    uint64_t outages;
    uint64_t gaps;
    /* siblings only */
    unsigned siblings;           /* the other processes of the mesh */
    unsigned siblings_connected; /* of them, those this one has a connection to */
    uint64_t cut_off;
} gw_metrics_bus;

/* Everything a rendering needs besides the counters, gathered on the I/O thread. */
typedef struct gw_metrics_view {
    uint64_t http_connections;        /* open HTTP connections */
    const gw_route *const *endpoints; /* WebSocket routes, each with ->metrics */
    size_t nendpoints;
    gw_metrics_bus bus;
} gw_metrics_view;

/* Returns new, zeroed counters, every sample labelled worker="<worker>" when worker >= 0
 * (a worker of --processes N), or NULL when out of memory. */
gw_metrics *gw_metrics_new(int worker);
void gw_metrics_free(gw_metrics *m);

/* Renders the exposition into a new malloc'd buffer (*out, *len). Returns 0 or
 * -ENOMEM. Families in a fixed order, each with HELP and TYPE, every one present even
 * when zero (so that rate() has a series from the first scrape). */
int gw_metrics_render(const gw_metrics *m, const gw_metrics_view *view, char **out,
                      size_t *len);

/* ---- increments (I/O thread; m or e NULL: metrics are off) ------------------------------ */

/* A final answer to a request, by its status; us >= 0 also observes its latency (from
 * the read that brought its last bytes to the answer written or queued), us < 0 does not
 * (answers to bytes that never made a request: a malformed head, a timeout). */
void gw_metrics_observe(gw_metrics *m, int status, int64_t us);

static inline void gw_metrics_http_accepted(gw_metrics *m)
{
    if (m)
        gw_count(&m->http_connections_total, 1);
}

/* Any thread: a publish was asked for (heard by anyone or not). */
static inline void gw_metrics_published(gw_metrics *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->publishes, 1, memory_order_relaxed);
}

static inline void gw_metrics_ws_opened(gw_metrics_endpoint *e)
{
    if (e)
        gw_count(&e->connections_total, 1);
}

static inline void gw_metrics_ws_received(gw_metrics_endpoint *e)
{
    if (e)
        gw_count(&e->messages_received, 1);
}

static inline void gw_metrics_ws_sent(gw_metrics_endpoint *e)
{
    if (e)
        gw_count(&e->messages_sent, 1);
}

static inline void gw_metrics_ws_delivered(gw_metrics_endpoint *e)
{
    if (e) {
        gw_count(&e->messages_sent, 1);
        gw_count(&e->deliveries, 1);
    }
}

static inline void gw_metrics_ws_dropped(gw_metrics_endpoint *e)
{
    if (e)
        gw_count(&e->dropped, 1);
}

static inline void gw_metrics_ws_slow_closed(gw_metrics_endpoint *e)
{
    if (e)
        gw_count(&e->slow_closes, 1);
}

static inline void gw_metrics_ws_bytes_in(gw_metrics_endpoint *e, size_t n)
{
    if (e)
        gw_count(&e->bytes_received, n);
}

static inline void gw_metrics_ws_bytes_out(gw_metrics_endpoint *e, size_t n)
{
    if (e)
        gw_count(&e->bytes_sent, n);
}

/* The status of an HTTP answer from its first bytes ("HTTP/1.1 403 ..."), or 0. */
int gw_metrics_status_of(const char *data, size_t len);

/* A connection whose upgrade was accepted has ended with code (what on_close gets). */
void gw_metrics_ws_closed(gw_metrics_endpoint *e, int code);

/* ---- the server's side (metrics.c, the I/O thread unless stated) ----------------------- */

/*
 * Makes the server answer GET and HEAD of path with the exposition (other methods 405),
 * every sample labelled with worker (see gw_metrics_new). handler is what the route
 * holds for the bridge (never called). Before gw_server_start(). Returns the route, or
 * NULL with *code -EEXIST (metrics are already on, or a route has the path), -EINVAL (a
 * malformed path, or one with parameters) or -ENOMEM, and a reason in err.
 */
gw_route *gw_server_enable_metrics(gw_server *srv, const char *path, int worker,
                                   void *handler, char *err, size_t errlen, int *code);

/* Gives every WebSocket route its counters when metrics are on (gw_server_start). 0 or
 * -ENOMEM. */
int gw__metrics_prepare(gw_server *srv);

/* --workers M, each shard's sweep (every 250 ms, its I/O thread): refreshes the gauges the
 * other shards' scrapes read. Does nothing with one shard or metrics off. */
void gw__metrics_sweep(gw_server *srv);

/* The whole answer to a scrape (head, and the body unless head_only), in a new
 * gw_response_alloc() buffer; keep_alive_header adds "connection: keep-alive" (an
 * HTTP/1.0 client that asked for it), close_header "connection: close". NULL when out
 * of memory. */
char *gw__metrics_answer(gw_server *srv, int head_only, int keep_alive_header,
                         int close_header, size_t *len);

/* ws.c, for the scrape (I/O thread): calls fn for every connection whose upgrade was
 * accepted and that has not ended, with its route and the bytes in its send queue. */
void gw_ws_each_open(gw_server *srv, void (*fn)(const gw_route *route, size_t queued, void *arg),
                     void *arg);

/* ws.c, for the scrape (I/O thread): which bus publishes travel on, and its counters. */
void gw_ws_bus_state(gw_server *srv, gw_metrics_bus *out);

#endif
