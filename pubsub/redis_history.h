/*
 * redis_history.h: the history of topics kept in Redis, for the Redis bus
 * (docs/redis.md "History in Redis", docs/architecture.md).
 *
 * Redis owns the numbering: every topic with history has two keys,
 *
 *     <prefix>epoch:<topic>    a hash {epoch: E, offset: N}, N the last offset given
 *     <prefix>stream:<topic>   a stream of the last `history` messages, entry id "<offset>-0",
 *                              fields d (the message as subscribers get it) and t (Redis'
 *                              clock when it was added, ms)
 *
 * and two Lua scripts, loaded once per connection (SCRIPT LOAD) and run with EVALSHA, do
 * everything that must be atomic in Redis:
 *
 *   publish  read or create the epoch (a vanished hash, or a vanished stream under an
 *            offset above 0, is lost history: a new epoch), HINCRBY the offset, XADD the
 *            message with MAXLEN, forget what outlived the ttl (XTRIM MINID), PUBLISH the
 *            message on the topic's channel. Every node delivers what the channel brings,
 *            the publishing one included, so all agree on numbers and order.
 *   read     the messages after (epoch, offset), the newest N, or all, filtered by the ttl,
 *            with the topic's epoch and last offset; a position that cannot be answered
 *            exactly (another epoch, beyond the last, its next message forgotten) is "gone".
 *
 * This file holds the scripts and the decoders of what comes back from Redis: the read
 * script's reply and the head of a message on a channel. Both are untrusted bytes (anyone
 * who can write to Redis controls them): the decoders accept only what the scripts write
 * and never read outside their input (fuzz/fuzz_redis_history.c).
 */
#ifndef PS_REDIS_HISTORY_H
#define PS_REDIS_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

struct redisReply;

/* The scripts' source (NUL-terminated). */
extern const char ps_redis_history_publish_lua[];
extern const char ps_redis_history_read_lua[];

/* Key names: "epoch:" and "stream:" after the bus's prefix, then the topic. */
#define PS_RH_EPOCH_KEY "epoch:"
#define PS_RH_STREAM_KEY "stream:"

/* The longest epoch, its NUL included (as history.h's). */
#define PS_RH_EPOCH_MAX 32

/* What the read script answers. */
enum ps_rh_status {
    PS_RH_OK = 0,   /* the entries asked for (maybe none) */
    PS_RH_GONE = 1, /* the position cannot be answered exactly; epoch/last say where it is */
    PS_RH_NONE = 2, /* the topic has no epoch yet (nothing published, and not created) */
};

typedef struct ps_rh_entry {
    uint64_t offset;
    const char *data; /* borrowed from the reply: the message as subscribers get it */
    size_t len;
} ps_rh_entry;

typedef struct ps_rh_result {
    int status;                 /* enum ps_rh_status */
    char epoch[PS_RH_EPOCH_MAX];
    uint64_t last;              /* the topic's last offset */
    size_t n;
    ps_rh_entry *entries;       /* n of them, offsets strictly increasing; owned */
} ps_rh_result;

/*
 * Decodes the read script's reply into *out: {status, epoch, last, offset1, message1, ...}.
 * Every message must be valid UTF-8 and start with the head {"epoch":"<epoch>","offset":<its
 * offset>, (see ps_rh_head). Returns 0, -EPROTO (anything else; *out is then empty) or
 * -ENOMEM. Release with ps_rh_result_free() whatever it returned.
 */
int ps_rh_decode(const struct redisReply *reply, ps_rh_result *out);
void ps_rh_result_free(ps_rh_result *res);

/* The head every message of a topic with history starts with. */
typedef struct ps_rh_head {
    const char *epoch; /* into the message, epoch_len bytes of [0-9a-z.] */
    size_t epoch_len;
    uint64_t offset;   /* >= 1 */
} ps_rh_head;

/* Parses the head {"epoch":"E","offset":N, of the n bytes at p. 0, or -1 when p does not
 * start with one (E empty, too long or not [0-9a-z.]; N not 1..2^64-1 in plain digits). */
int ps_rh_head_parse(const char *p, size_t n, ps_rh_head *out);

/*
 * The most elements a reply from Redis may claim: a read of a whole history of
 * PS_HISTORY_MAX_CAPACITY messages at the top (3 + 2 a message, 16 MB of element table),
 * and no more than PS_RH_NESTED_ELEMENTS below it (no reply the bus reads nests more).
 * hiredis allocates an aggregate's element table as soon as its header claims a size (up
 * to 2^31 elements in 0.14, 2^32 in 1.x, whose RESP3 maps, sets and pushes count too), so
 * without this a Redis answering `*2000000000` makes the process allocate 16 GB.
 */
#define PS_RH_TOP_ELEMENTS (3 + 2 * (size_t)1000000)
#define PS_RH_NESTED_ELEMENTS 8

struct redisReader;

/* Makes the reader refuse a reply that claims more than the bounds above: hiredis then
 * fails the reader with its "Out of memory" error, and the connection is lost as on any
 * protocol error (the bus reconnects). Call once per reader, before it reads. */
void ps_rh_bound_reader(struct redisReader *reader);

#endif /* PS_REDIS_HISTORY_H */
