/*
 * presence.h: who is present on which topic, in this process and in every other process a
 * bus reaches (docs/realtime.md, "Presence"; docs/architecture.md says why this shape).
 *
 * Every process is an *origin*: a random 64-bit id drawn at start (a restarted process is a
 * new origin) and a rank (its slot on the siblings bus; its id on Redis) that decides which
 * survivor announces a dead origin's leaves. The table holds the members of every origin
 * it knows: its own, joined and left by Python, and the others', learnt from messages:
 *
 *   JOIN / LEAVE  one member, sent as soon as it changes, numbered by the origin's sequence
 *   BEAT          the origin's sequence, every PS_PRESENCE_REFRESH_MS
 *   SNAP          every member of the origin at one sequence, in parts of about 64 KiB
 *   ASK           "send me your snapshot" (to one origin, or to all)
 *
 * A receiver applies a delta whose sequence follows the one it holds, ignores an older one,
 * and asks for a snapshot when it sees a gap, a beat with another sequence, or an origin it
 * does not know. An origin not heard from for PS_PRESENCE_EXPIRY_MS is dropped with all its
 * members; so is one whose bus link closes (ps_presence_drop).
 *
 * Wire format (little-endian; what the bus carries as one message):
 *
 *     u8 'P', u8 kind, u64 origin, u64 rank, u64 seq, then by kind:
 *     JOIN  1   member
 *     LEAVE 2   u16 topic length, topic, u16 id length, id
 *     BEAT  3   (nothing)
 *     SNAP  4   u32 part, u8 last (0/1), u32 count, count x member
 *     ASK   5   u64 target origin (0: every origin)
 *
 *     member = u16 topic length, topic, u16 id length, id, u32 info length, info
 *
 * with topic 1..65535 bytes and id 1..PS_PRESENCE_MAX_ID of UTF-8, info 2..PS_PRESENCE_MAX_INFO
 * bytes of UTF-8 from '{' to '}' (the JSON object Python gave) and nothing after the last
 * field. The decoder checks all of it.
 *
 * Threads: every call takes the table's lock (held for a lookup, an insert or the copy of
 * one topic's members, never across a callback that sends): Python threads join, leave and
 * read; the I/O thread receives, flushes, beats and expires.
 */
#ifndef PS_PRESENCE_H
#define PS_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h" /* PS_MUST_CHECK */

#define PS_PRESENCE_REFRESH_MS 1000u
#define PS_PRESENCE_EXPIRY_MS 3000u
#define PS_PRESENCE_MAX_ID 255u
#define PS_PRESENCE_MAX_INFO (16u * 1024u)
#define PS_PRESENCE_MAX_TOPIC 65535u
/* A snapshot part is closed once it passes this many bytes (so a part holds at most this
 * plus one member); the largest message of any kind is PS_PRESENCE_MAX_MESSAGE. */
#define PS_PRESENCE_PART_BYTES (64u * 1024u)
#define PS_PRESENCE_MAX_MESSAGE (PS_PRESENCE_PART_BYTES + 2u + 65535u + 2u + 255u + 4u + \
                                 PS_PRESENCE_MAX_INFO + 64u)
/* Other origins known at once, and members held for all of them together: past either,
 * what a message would add is refused (and counted), so no peer can grow the table
 * without bound. */
#define PS_PRESENCE_MAX_ORIGINS 1024u
#define PS_PRESENCE_MAX_REMOTE (1000u * 1000u)
/* Deltas waiting for the I/O thread: past this, they are replaced by one snapshot. */
#define PS_PRESENCE_OUTBOX_BYTES (1024u * 1024u)

enum ps_presence_kind {
    PS_PRESENCE_JOIN = 1,
    PS_PRESENCE_LEAVE = 2,
    PS_PRESENCE_BEAT = 3,
    PS_PRESENCE_SNAP = 4,
    PS_PRESENCE_ASK = 5
};

typedef struct ps_presence ps_presence;

/* The table of origin (non-zero) with rank. NULL with errno ENOMEM or EINVAL. */
PS_MUST_CHECK ps_presence *ps_presence_new(uint64_t origin, uint64_t rank);
void ps_presence_free(ps_presence *p);
uint64_t ps_presence_origin(const ps_presence *p);
/* Draws this origin's id again (non-zero; before any bus runs: a forked worker's). */
void ps_presence_set_origin(ps_presence *p, uint64_t origin);
/* Whether this origin's changes are queued for a bus (they are not until this is set: a
 * process without a bus keeps no outbox). Before any bus runs. */
void ps_presence_set_shared(ps_presence *p, int shared);
/* Sets this origin's rank (before any bus runs: the siblings bus's slot). */
void ps_presence_set_rank(ps_presence *p, uint64_t rank);

/* ---- this origin's members (any thread) ----------------------------------------------- */

/* Makes id present on topic with info (JSON text, copied), or replaces its info. Returns 1
 * (joined), 0 (info replaced), -EINVAL (a length out of bounds), -ENOMEM. The delta waits
 * in the outbox for ps_presence_flush(). */
PS_MUST_CHECK int ps_presence_join(ps_presence *p, const char *topic, size_t topic_len,
                                   const char *id, size_t id_len, const char *info,
                                   size_t info_len);
/* Takes id off topic. Returns 1, or 0 when it was not there. */
int ps_presence_leave(ps_presence *p, const char *topic, size_t topic_len, const char *id,
                      size_t id_len);

/* ---- reading (any thread) ------------------------------------------------------------- */

/* Members of topic in every origin (this one's included). */
size_t ps_presence_count(ps_presence *p, const char *topic, size_t topic_len);

/*
 * Copies topic's members, in the order they joined (a snapshot's members join when it is
 * applied), into one malloc'd buffer (*out, freed by the caller; NULL when there are
 * none): per member u8 local (1 for this origin's), u16 id length, id, u32 info length,
 * info. Returns the number of members, or -ENOMEM.
 */
PS_MUST_CHECK long ps_presence_copy(ps_presence *p, const char *topic, size_t topic_len,
                                    unsigned char **out, size_t *out_len);

/* ---- the bus side (the I/O thread) ----------------------------------------------------- */

/* Sends one encoded message (borrowed for the call). to: the link it must go to, or
 * PS_PRESENCE_ALL for every one. */
#define PS_PRESENCE_ALL UINT32_MAX
typedef void (*ps_presence_send_fn)(void *ctx, uint32_t to, const unsigned char *msg,
                                    size_t len);

/*
 * A member of another origin that this table lost or got back without a delta saying so:
 * kind PS_PRESENCE_LEAVE when it was dropped with its origin, PS_PRESENCE_JOIN when an
 * origin this table had announced dead came back (its snapshot listed the member again).
 * announce says this process is the one that should publish it: for a leave, the lowest
 * (rank, id) among the origins still alive, and only when the bus reaches the others; for a
 * join, the process that announced the origin's leaves. Borrowed bytes.
 */
typedef void (*ps_presence_event_fn)(void *ctx, int kind, const char *topic, size_t topic_len,
                                     const char *id, size_t id_len, const char *info,
                                     size_t info_len, int announce);

/* Sends the deltas waiting in the outbox, in order, to every link; if they overflowed it
 * (PS_PRESENCE_OUTBOX_BYTES), one snapshot instead. Returns the messages sent. */
size_t ps_presence_flush(ps_presence *p, ps_presence_send_fn send, void *ctx);

/* Sends this origin's snapshot (every member, at its current sequence) to link to. */
void ps_presence_snapshot(ps_presence *p, ps_presence_send_fn send, void *ctx, uint32_t to);

/* Sends an ASK for every origin's snapshot to link to (a node that just joined the bus,
 * or came back from an outage). */
void ps_presence_ask_all(ps_presence *p, ps_presence_send_fn send, void *ctx, uint32_t to);

/*
 * The periodic work, every PS_PRESENCE_REFRESH_MS: sends a BEAT to every link, then drops
 * every origin not heard from since now_ms - PS_PRESENCE_EXPIRY_MS, calling event (a
 * LEAVE) for each of its members. may_announce is 0 while the bus is cut off from the
 * others (they are out of sight, not known dead: nothing is announced). Returns the origins
 * dropped.
 */
size_t ps_presence_tick(ps_presence *p, uint64_t now_ms, int may_announce,
                        ps_presence_send_fn send, void *ctx, ps_presence_event_fn event,
                        void *event_ctx);

/*
 * Applies one message that came on link (the bus's number for where it came from, to
 * which an ASK or a snapshot for its sender is sent), at now_ms. Sends what it calls for:
 * an ASK to the sender when this table needs its snapshot (at most one per refresh period
 * per origin), this origin's snapshot when asked; calls event (a JOIN) for each member of
 * an origin it had announced dead whose snapshot just came in. Returns 1 (applied; *sender is its
 * origin), 0 for a well-formed message of this origin itself (a Redis echo) or one refused
 * because the table is full (*sender set too), or -EPROTO for malformed bytes (nothing
 * changed).
 */
int ps_presence_receive(ps_presence *p, const unsigned char *msg, size_t len, uint64_t now_ms,
                        uint32_t link, ps_presence_send_fn send, void *ctx,
                        ps_presence_event_fn event, void *event_ctx, uint64_t *sender);

/* Drops origin (its link closed) with all its members, calling event (a LEAVE) for each.
 * Returns 1, or 0 when the origin was not known. */
int ps_presence_drop(ps_presence *p, uint64_t origin, ps_presence_event_fn event, void *ctx);

/* Counters, for tests and operators. */
typedef struct ps_presence_stats {
    uint64_t origins;      /* other origins known now */
    uint64_t members;      /* members of other origins held now */
    uint64_t local;        /* this origin's members */
    uint64_t seq;          /* this origin's sequence */
    uint64_t snapshots_in; /* snapshots applied */
    uint64_t asked;        /* ASKs sent */
    uint64_t expired;      /* origins dropped for silence */
    uint64_t dropped;      /* origins dropped because their link closed */
    uint64_t bad;          /* malformed messages */
    uint64_t refused;      /* members or origins refused because the table was full */
} ps_presence_stats;
void ps_presence_get_stats(ps_presence *p, ps_presence_stats *out);

#endif /* PS_PRESENCE_H */
