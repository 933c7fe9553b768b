/*
 * bus_redis.h: the bus across machines, on Redis Pub/Sub (docs/redis.md).
 *
 * Every process talks to Redis itself over two connections: one it PUBLISHes
 * on and one it SUBSCRIBEs on. Each topic is one Redis channel (the prefix,
 * then the topic), subscribed while this process has a local subscriber of
 * it and unsubscribed after the last one leaves (with several registries in the process,
 * I/O shards, the host merges their interest first, tally.h, so the bus hears of each
 * topic once). A publish is delivered to
 * the local subscribers at once, directly, and sent to Redis in an envelope
 * (envelope.h) carrying this process's random origin id and a sequence
 * number; when Redis hands it back to this same process, the origin says so
 * and it is dropped, so nobody here gets it twice. Topics with history are the
 * exception (redis_history.h): Redis numbers their messages and every process, this one
 * included, delivers them from the channel.
 *
 * While Redis is unreachable, local delivery goes on; publishes wait in a
 * bounded buffer (messages and bytes) and go out, in order, once both
 * connections are back and every wanted channel is subscribed again. What
 * does not fit is counted and logged once per outage. Reconnection backs off
 * exponentially from 100 ms to retry_max_ms.
 *
 * The bus owns no thread and no event loop: the host (the gateway's I/O
 * thread) drives it. The host attaches each hiredis connection to its loop,
 * runs one timer, wakes its loop on request, and delivers received messages
 * into its registry. Threads: publish, service and tick run on the host's
 * loop thread; subscribe_interest / unsubscribe_interest may come from any
 * thread (they queue the change and wake the loop); stats from any thread.
 */
#ifndef PS_BUS_REDIS_H
#define PS_BUS_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"

struct redisAsyncContext;

/* What a URL says, checked (ps_redis_parse_url). */
typedef struct ps_redis_config {
    char host[256];     /* as written in the URL (brackets of an IPv6 address removed) */
    char addr[64];      /* host resolved to a numeric address (ps_redis_resolve) */
    int port;           /* 1..65535, default 6379 */
    char user[128];     /* AUTH user (Redis 6 ACL), "" for none */
    char password[512]; /* AUTH password, "" for none */
    int has_password;
    int db;             /* 0..(2^31-1), default 0: SELECTed on the publishing connection */
    char prefix[256];   /* channel = prefix + topic; default "robyn:<db>:" */
    size_t buffer_messages; /* publishes kept during an outage, default 10000 */
    size_t buffer_bytes;    /* and their bytes (envelopes), default 16 MiB */
    unsigned retry_max_ms;  /* backoff cap, default 2000 */
    unsigned connect_timeout_ms; /* per attempt, default 2000 */
} ps_redis_config;

/*
 * Parses url: redis://[[user]:password@]host[:port][/db][?option=value&...],
 * options buffer, buffer_bytes, prefix, retry_max_ms, connect_timeout_ms.
 * User and password may be percent-encoded. Returns 0, or -EINVAL with the
 * reason in err (NUL-terminated, errlen bytes at most); rediss:// answers
 * -ENOTSUP (this build has no TLS for Redis, see docs/redis.md).
 */
PS_MUST_CHECK int ps_redis_parse_url(const char *url, ps_redis_config *cfg, char *err,
                                     size_t errlen);

/* Resolves cfg->host into cfg->addr (getaddrinfo; blocking, so done once, at
 * start, off the loop thread). Returns 0 or -EHOSTUNREACH with err set. */
PS_MUST_CHECK int ps_redis_resolve(ps_redis_config *cfg, char *err, size_t errlen);

/*
 * Connects to cfg->addr synchronously (within cfg->connect_timeout_ms), sends
 * AUTH if configured, SELECT db and PING, and disconnects: the check made at
 * start so that a wrong address, password or db is an error then, not an
 * endless retry. Returns 0, or -ECONNREFUSED (cannot connect) / -EACCES (AUTH
 * refused) / -EINVAL (SELECT refused) / -EPROTO (anything else) with err set.
 */
PS_MUST_CHECK int ps_redis_probe(const ps_redis_config *cfg, char *err, size_t errlen);

/* What the host gives the bus (all on the loop thread, except wake). */
typedef struct ps_redis_host {
    void *ctx;
    /* Drives ac from the loop: sets ac->ev (hiredis' adapter hooks). 0 or -1. */
    int (*attach)(void *ctx, struct redisAsyncContext *ac);
    /* Calls ps_bus_redis_tick() once, after usec microseconds, replacing any
     * call scheduled before; usec < 0 cancels. */
    void (*schedule)(void *ctx, int64_t usec);
    /* Any thread: makes the loop thread call ps_bus_redis_service() soon. */
    void (*wake)(void *ctx);
    /* Delivers a frame received from Redis (borrowed) to this process's
     * subscribers of topic (len bytes). Returns how many it reached. */
    size_t (*deliver)(void *ctx, const char *topic, size_t len, ps_frame *frame);
    /* Optional: presence (presence.h). presence gets each message of the reserved
     * presence channel (borrowed bytes, this process's own included: Redis echoes them);
     * presence_online hears that the bus can now send and receive presence (both
     * connections ready and the channel subscribed), after start and after each outage:
     * the moment to send a snapshot and ask for everyone's. */
    void (*presence)(void *ctx, const unsigned char *msg, size_t len);
    void (*presence_online)(void *ctx);
    /* Topics with history (redis_history.h), all optional: a message Redis numbered
     * (frame borrowed, epoch/offset its head's; NULL: delivered with deliver()); a
     * channel's SUBSCRIBE confirmed (topic valid until the callback calls into the bus);
     * both connections lost (once per outage). */
    void (*deliver_history)(void *ctx, const char *topic, size_t len, const char *epoch,
                            size_t epoch_len, uint64_t offset, ps_frame *frame);
    void (*channel_ready)(void *ctx, const char *topic, size_t len);
    void (*down)(void *ctx);
} ps_redis_host;

/*
 * Makes the Redis bus delivering locally into topics (borrowed; the bus must
 * be closed before it is freed) and starts connecting (cfg->addr must be
 * resolved). cfg and host are copied. Returns the bus (released with
 * ps_bus_close(), which disconnects), or NULL with errno ENOMEM. Wire the
 * interest with ps_topics_set_interest(topics, ps_bus_on_interest, bus).
 */
PS_MUST_CHECK ps_bus *ps_bus_redis_new(ps_topics *topics, const ps_redis_config *cfg,
                                       const ps_redis_host *host);

/* Loop thread: applies the interest changes queued by other threads. */
void ps_bus_redis_service(ps_bus *bus);

/* Loop thread: the timer scheduled through host->schedule fired. */
void ps_bus_redis_tick(ps_bus *bus);

/* Counters and state, any thread (each field read atomically). */
typedef struct ps_redis_stats {
    int connected;        /* both connections ready and the buffer sent */
    uint64_t outages;     /* times the connection to Redis was lost (or never made) */
    uint64_t published;   /* publishes handed to Redis */
    uint64_t buffered;    /* publishes waiting in the outage buffer now */
    uint64_t dropped;     /* publishes lost because the buffer was full */
    uint64_t received;    /* messages from other processes delivered here */
    uint64_t own_skipped; /* this process's own messages Redis handed back, dropped */
    uint64_t gaps;        /* messages of other processes never seen (sequence gaps) */
    uint64_t bad;         /* messages on our channels that were not valid envelopes */
    uint64_t channels;    /* channels subscribed now */
} ps_redis_stats;

void ps_bus_redis_stats(ps_bus *bus, ps_redis_stats *out);

/*
 * The reserved presence channel: the prefix, then "\x01presence". Every node subscribes to
 * it for as long as it is connected, whatever its topics; no topic can name it (a topic
 * starting with \x01 never goes to Redis). Publishes msg (len bytes) on it. Loop thread.
 * Returns 0, or -ENOTCONN while Redis is not reachable: presence is not buffered through an
 * outage, the snapshots sent when it ends (presence_online) replace what was missed.
 */
int ps_bus_redis_presence_send(ps_bus *bus, const void *msg, size_t len);

/* ---- topics with history kept in Redis (redis_history.h, docs/redis.md) ---------------- */

/*
 * Loop thread: publishes to a topic with history. Redis numbers the message, keeps it in
 * the topic's stream (capacity messages, ttl_ms at most, 0: no age limit) and PUBLISHes it
 * on the topic's channel, from which every node delivers it, this one included (nothing is
 * delivered here now). rest is what follows the message's head ("topic":...,"data":...}),
 * copied. While Redis is away the publish waits in the outage buffer like any other.
 * Returns 0, or -ENOMEM / -ENOBUFS (dropped, counted).
 */
int ps_bus_redis_publish_history(ps_bus *bus, const char *topic, size_t len, const char *rest,
                                 size_t rest_len, size_t capacity, int64_t ttl_ms);

/* What to read from a topic's stream. */
typedef struct ps_rh_query {
    int create;            /* make the epoch when there is none (a subscribe) */
    char mode;             /* 's' after (epoch, since), 'l' the newest limit, 'a' all */
    const char *epoch;     /* 's' only */
    uint64_t since;        /* 's' only */
    size_t limit;          /* 's': at most this many (0: all); 'l': how many */
    int64_t ttl_ms;        /* the topic's ttl (0: none) */
} ps_rh_query;

struct ps_rh_result;
/* The answer of a read: rc 0 and res decoded (borrowed for the call), or rc -ECONNRESET
 * (Redis went away first), -EPROTO (a reply the decoder refused), -ENOMEM, -ECANCELED
 * (the bus is closing). Called exactly once, on the loop thread. */
typedef void (*ps_rh_done_fn)(void *arg, int rc, const struct ps_rh_result *res);

/* Loop thread: reads topic's history on the command connection. Returns 0 (done will be
 * called), -ENOTCONN (Redis is not connected now), -ENOEXEC (Redis refused the scripts) or
 * -ENOMEM (done is never called). */
int ps_bus_redis_read_history(ps_bus *bus, const char *topic, size_t len,
                              const ps_rh_query *q, ps_rh_done_fn done, void *arg);

/* Loop thread: keeps topic's channel subscribed while pinned, whether or not this
 * process has subscribers of it (a recovery's live messages must be heard before its
 * read). Returns 1 when the subscription is confirmed now, 0 when host->channel_ready
 * will say so, -ENOMEM. Every pin is undone by one unpin. */
int ps_bus_redis_pin(ps_bus *bus, const char *topic, size_t len);
void ps_bus_redis_unpin(ps_bus *bus, const char *topic, size_t len);

/* Whether bus is a Redis bus. */
int ps_bus_is_redis(const ps_bus *bus);

#endif /* PS_BUS_REDIS_H */
