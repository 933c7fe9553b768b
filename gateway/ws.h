/*
 * WebSocket connections: the upgrade, message reassembly, per-connection send queues,
 * topics and fan-out, all on the I/O thread; and the calls Python threads make to send,
 * close, subscribe and publish, which reach the I/O thread through one command queue
 * and one lws_cancel_service() per batch.
 *
 * Python sees a connection through a gw_ws_handle, a small refcounted record that
 * outlives the connection: once the connection is gone the handle says so and every
 * call on it answers -ENOTCONN. Events for Python (open, message, close, drained) are
 * queued for the asyncio loop thread, which takes them in batches (gw_ws_take_events).
 *
 * The topic registry belongs to the I/O thread and has no lock. Subscribe, unsubscribe
 * and publish reach it as commands on the same queue, so a publish made right after a
 * subscribe reaches the new subscriber. The counts these calls answer at once come from a
 * ledger of the subscriptions they made, changed in the same critical section that queues
 * each command; the fan-out itself, with one encoded frame shared by every queue, runs on
 * the I/O thread with no lock held.
 */
#ifndef GW_WS_H
#define GW_WS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "frame.h"
#include "ledger.h"
#include "server.h"

typedef struct gw_ws_hub gw_ws_hub;
struct gw_ws_conn;
struct ps_subscriber;
struct lws;

/* Python's view of one connection. Fields marked "I/O thread" are for ws.c only. */
typedef struct gw_ws_handle {
    uint64_t id;
    atomic_int refs;
    atomic_int inbox;      /* messages handed to Python and not consumed yet */
    const gw_route *route;
    gw_packed_request *handshake; /* the upgrade request, packed: path, query, params, headers */
    void *user;            /* the bridge's object for this connection; GIL-protected */
    atomic_size_t cmd_bytes; /* bytes sent by Python that the I/O thread has not queued */
    atomic_size_t queued;    /* ps_queue_footprint() of the send queue, as the I/O thread last saw it */
    atomic_int gone;       /* set once the connection has closed */
    atomic_int want_drain; /* a sender waits for the backlog to fall */
    int in_ledger;         /* under the hub's command lock: ledger below is in use */
    struct gw_ws_conn *io;       /* I/O thread */
    struct ps_subscriber *sub;   /* I/O thread: the connection in the registry */
    ps_ledger_member ledger;     /* under the hub's command lock: its topics in the ledger */
} gw_ws_handle;

enum gw_ws_event_type {
    GW_WS_OPEN = 1,
    GW_WS_MESSAGE = 2,
    GW_WS_CLOSE = 3,
    GW_WS_DRAINED = 4,
    GW_WS_HANDSHAKE = 5 /* a pre-check: Python must call gw_ws_accept() or gw_ws_refuse() */
};

/* An event for the asyncio loop thread. Owns one reference to conn and its data. */
typedef struct gw_ws_event {
    struct gw_ws_event *next;
    int type;
    gw_ws_handle *conn;
    unsigned char *data; /* MESSAGE: the whole message (NUL-terminated, not counted) */
    size_t len;
    int binary;
    int code;            /* CLOSE: the close code (1006 when none was received) */
    char reason[124];    /* CLOSE: the reason, NUL-terminated */
} gw_ws_event;

typedef struct gw_ws_config {
    size_t max_message;      /* bytes; a larger message is answered with close 1009 */
    size_t high_water;       /* send backlog past which Python senders wait */
    size_t send_limit;       /* send queue bytes past which the endpoint policy applies */
    size_t max_connections;  /* WebSocket connections; more are answered 503 */
    unsigned ping_interval;  /* seconds of silence before a ping; 0 disables */
    unsigned ping_timeout;   /* seconds without any answer before the connection is closed */
    int inbox_limit;         /* messages waiting for Python before reading pauses */
} gw_ws_config;

/* ---- for server.c (I/O thread unless stated) ---------------------------------------- */

/* Returns a new hub, or NULL when out of memory. Any thread, before the server starts. */
gw_ws_hub *gw_ws_hub_new(gw_server *srv);
/* Frees the hub, its topics and every event still queued. After the context is gone. */
void gw_ws_hub_free(gw_ws_hub *hub);
/* Sets the limits (before the server starts). */
void gw_ws_configure(gw_ws_hub *hub, const gw_ws_config *cfg);

/* The callback of WebSocket connections (http.c forwards to it once a socket has been
 * upgraded). */
int gw_ws_raw_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len);
/* Applies every queued command (EVENT_WAIT_CANCELLED). */
void gw_ws_run_commands(gw_server *srv);
/* Closes every connection with code 1001 "going away" (graceful stop). Any thread. */
void gw_ws_close_all(gw_server *srv);

/* Sets the WebSocket limits (before the server starts). */
void gw_server_configure_ws(gw_server *srv, const gw_ws_config *cfg);

/* Once the context exists, before the I/O thread runs: the bus's descriptors join the
 * loop (the siblings bus's epoll descriptor, as GW_SIBLINGS_PROTOCOL). */
void gw_ws_start(gw_server *srv);
#define GW_SIBLINGS_PROTOCOL "robyn-siblings"
int gw_ws_siblings_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                            void *in, size_t len);
/* The bus beyond this process (docs/redis.md). gw__ws_start_bus() runs once the lws
 * context exists and before the I/O thread starts: with a Redis configuration it swaps the
 * in-process bus for the Redis bus (0, or -ENOMEM). gw__ws_stop_bus() runs after the I/O
 * thread has stopped and before the context is destroyed, stops presence's beat, and swaps
 * back. */
int gw__ws_start_bus(gw_server *srv);
void gw__ws_stop_bus(gw_server *srv);

/* ---- for the bridge (any thread) --------------------------------------------------- */

gw_ws_handle *gw_ws_handle_ref(gw_ws_handle *h);
void gw_ws_handle_unref(gw_ws_handle *h);

/* Takes every queued event, oldest first (a list linked by ->next), or NULL. */
gw_ws_event *gw_ws_take_events(gw_server *srv);
void gw_ws_event_free(gw_ws_event *ev);

/* Queues a message (opcode PS_OP_TEXT or PS_OP_BINARY). Returns 0, 1 when the backlog is
 * now over the high-water mark (the sender should wait for a DRAINED event), -ENOTCONN
 * when the connection is gone, -ENOMEM. */
int gw_ws_send(gw_server *srv, gw_ws_handle *h, unsigned opcode, const void *data, size_t len);

/* A sender that got 1 from gw_ws_send() calls this before waiting: returns 1 when the
 * backlog is still over the high-water mark (a DRAINED event will come), 0 when it has
 * already fallen (do not wait). */
int gw_ws_wait_drain(gw_server *srv, gw_ws_handle *h);

/* Python's answer to a GW_WS_HANDSHAKE event: accept the upgrade, or refuse it with a
 * complete HTTP answer (from gw_response_alloc(), taken over). Return 0 or -ENOTCONN (the client left). */
int gw_ws_accept(gw_server *srv, gw_ws_handle *h);
int gw_ws_refuse(gw_server *srv, gw_ws_handle *h, char *response, size_t len);

/* Starts the close handshake with code and reason (<= 123 bytes). Returns 0 or -ENOTCONN. */
int gw_ws_close(gw_server *srv, gw_ws_handle *h, int code, const char *reason);

/* Returns 1 when subscribed, 0 when it already was, -ENOTCONN, -ENOMEM. */
int gw_ws_subscribe(gw_server *srv, gw_ws_handle *h, const char *topic, size_t len);
/* Returns 1 when unsubscribed, 0 when it was not subscribed, -ENOTCONN, -ENOMEM (then
 * nothing changed: it is still subscribed). */
int gw_ws_unsubscribe(gw_server *srv, gw_ws_handle *h, const char *topic, size_t len);

/* Publishes a message to every subscriber of topic in this process except `exclude`
 * (may be NULL). Returns how many subscribers it will reach, or -ENOMEM. */
long gw_ws_publish(gw_server *srv, const char *topic, size_t len, unsigned opcode,
                   const void *data, size_t dlen, gw_ws_handle *exclude);

/* The number of subscribers of topic in this process. */
size_t gw_ws_subscribers(gw_server *srv, const char *topic, size_t len);

/*
 * Makes this process one of `count` sibling processes (slot is its place): publishes
 * reach the subscribers of all of them through the siblings bus (pubsub/bus.h), and a
 * sibling that does not read is cut off once queue_limit bytes wait for it. Before the
 * server starts. Returns 0, or a negative errno with a reason in err.
 */
int gw_ws_use_siblings(gw_server *srv, const char *group, unsigned slot, unsigned count,
                       size_t queue_limit, char *err, size_t errlen);

/*
 * The subscribers of topic on the whole machine: this process's, plus what every
 * connected sibling answers within timeout_ms (*answered says how many did). Without
 * siblings, the local count. Blocks the calling thread (never the I/O thread). Returns
 * the count, or -ENOMEM.
 */
long gw_ws_subscribers_everywhere(gw_server *srv, const char *topic, size_t len,
                                  unsigned timeout_ms, unsigned *answered);

/*
 * The calling thread (the asyncio loop's) holds back its wake-ups of the I/O thread until
 * gw_ws_flush_wakes(): the commands that one pass of its handlers makes (every publish and
 * send answering one read's messages) then reach the I/O thread as one batch, which writes
 * each subscriber all of them in one write instead of some now and the rest a round later.
 * Other threads' commands queued meanwhile behind them wait for that wake-up too (they
 * would otherwise have been taken in the same batch). The loop calls the flush at the end
 * of the pass; the server's stop flushes too.
 */
void gw_ws_defer_wakes(gw_server *srv);
void gw_ws_flush_wakes(gw_server *srv);

/* Python consumed n messages of this connection's inbox (reading resumes when it had
 * paused and the inbox is below half its limit). */
void gw_ws_consumed(gw_server *srv, gw_ws_handle *h, int n);

/* Counters for tests and operators. */
typedef struct gw_ws_stats {
    size_t connections;
    size_t topics;
    size_t slow_closed;  /* closed with 1008 by the "close" policy */
    size_t slow_dropped; /* messages dropped by the "drop" policy */
} gw_ws_stats;
void gw_ws_get_stats(gw_server *srv, gw_ws_stats *out);

/*
 * For tests: a witness that a call from a Python thread does not wait for a fan-out.
 * gw_ws_test_hold_fanout() arms a hold on the next publish to topic run by the I/O thread:
 * after `after` deliveries (after >= 1) of that fan-out, the I/O thread stops where it is,
 * in the middle of it, until gw_ws_test_release() (or 10 s, so that a test can never leave
 * a server stuck). Any thread; one hold at a time: 0, -EBUSY while one is armed or under
 * way, -EINVAL for after 0, -ENOMEM.
 */
int gw_ws_test_hold_fanout(gw_server *srv, const char *topic, size_t len, size_t after);
/* Waits (never on the I/O thread) up to timeout_ms for the I/O thread to stop at the hold.
 * Returns 1 with the deliveries made so far in *delivered, or 0 when it did not. */
int gw_ws_test_wait_held(gw_server *srv, unsigned timeout_ms, size_t *delivered);
/* Lets the held fan-out go on. Returns 1 when the I/O thread was still stopped at the hold
 * (so everything the caller did meanwhile happened in the middle of the fan-out), 0 when
 * it had given up waiting or never got there. */
int gw_ws_test_release(gw_server *srv);
/* After the held fan-out has ended: 1 with how many it reached in *reached, else 0. */
int gw_ws_test_hold_result(gw_server *srv, size_t *reached);

/* Publishes go through Redis once the server starts (cfg copied; NULL: in-process only).
 * Before the server starts. 0 or -ENOMEM. */
struct ps_redis_config;
int gw_ws_set_pubsub(gw_server *srv, const struct ps_redis_config *cfg);

/* The Redis bus's counters: 1 with *out filled when the Redis bus runs, else 0. */
struct ps_redis_stats;
int gw_ws_pubsub_stats(gw_server *srv, struct ps_redis_stats *out);

/* ---- topics with history (docs/realtime.md) ---------------------------------------- */

/* Where a topic's offsets stand: its epoch and last offset; for a publish, how many
 * subscribers here it reaches; for a subscribe with history, how many messages it
 * replays. */
typedef struct gw_ws_position {
    long reached;
    size_t replayed;
    uint64_t offset;
    char epoch[32];
} gw_ws_position;

/* Topics matching glob keep their last `capacity` messages for ttl_ms (0: no age limit);
 * the first pattern a topic matches applies. Before the server starts. 0, -EINVAL,
 * -EEXIST (that glob already), -ENOMEM. */
int gw_ws_history_pattern(gw_server *srv, const char *glob, size_t capacity, int64_t ttl_ms);

/* Publishes to a topic with history: the message is the text {"epoch":E,"offset":N, then
 * `rest` (JSON: "topic":...,"data":...}), numbered, kept and fanned out in offset order.
 * Returns 0 with *out filled, -ENOENT (topic keeps no history), -ENOMEM. */
int gw_ws_publish_history(gw_server *srv, const char *topic, size_t len, const char *rest,
                          size_t rest_len, gw_ws_handle *exclude, gw_ws_position *out);

/* Subscribes h to a topic with history after replaying, in the same I/O-thread command,
 * the messages after `since` of `epoch` (or, with epoch NULL, the last `last` held).
 * Returns 0 (*out: the topic's position at the seam and the number replayed), -ESTALE
 * (they are not all held any more, or another epoch: *out says where the topic is),
 * -EALREADY (already subscribed), -ENOENT (no history for topic), -ENOTCONN, -ENOMEM. */
int gw_ws_subscribe_since(gw_server *srv, gw_ws_handle *h, const char *topic, size_t len,
                          const char *epoch, uint64_t since, size_t last, gw_ws_position *out);

/* A copy of part of a topic's history: references to the frames, oldest first. */
typedef struct gw_ws_history {
    gw_ws_position pos; /* epoch "" when the topic has no state yet */
    size_t n;
    struct { uint64_t offset; ps_frame *frame; } *entries;
} gw_ws_history;

/* With epoch NULL, the newest `limit` messages held (0: all); else the first `limit`
 * after since. 0, -ESTALE, -ENOENT (no history for topic), -ENOMEM. Free with
 * gw_ws_history_free() whatever it returned. */
int gw_ws_history_read(gw_server *srv, const char *topic, size_t len, const char *epoch,
                       uint64_t since, size_t limit, gw_ws_history *out);
void gw_ws_history_free(gw_ws_history *hist);

/* The topic name every connection of a route is subscribed to, for broadcast(). */
#define GW_WS_ROUTE_TOPIC_FMT "\x01route:%p"

/* ---- I/O shards (--workers M) ------------------------------------------------------ */

/* Before the shard starts: its connection ids are first + step, first + 2 step, ... so that
 * ids are unique in the process and id % step names the shard. */
void gw_ws_number_ids(gw_ws_hub *hub, unsigned first, unsigned step);

/* A publish from Python to every shard of srv's process: the same frame queued to each
 * shard's FIFO (exclude left out where it belongs, exclude_shard). Returns the sum of the
 * shards' counts, as gw_ws_publish does for one. With one shard it is gw_ws_publish. */
long gw_ws_publish_all(gw_server *srv, const char *topic, size_t len, unsigned opcode,
                       const void *data, size_t dlen, gw_ws_handle *exclude,
                       gw_server *exclude_shard);

/* Topics with subscribers in any of the process's shards, each counted once. */
size_t gw_ws_topics_all(gw_server *srv);

/* gw_ws_subscribers summed over the process's shards. */
size_t gw_ws_subscribers_all(gw_server *srv, const char *topic, size_t len);

#endif
