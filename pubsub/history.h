/*
 * history.h: the recent messages of topics, kept so that a client that lost its
 * connection can be sent what it missed.
 *
 * A registry of topic patterns (globs, as fnmatch(3) reads them: "room:*") says which
 * topics keep history, how many messages each keeps and for how long. A topic matching
 * one gets a state the first time it is used: an epoch (a name for this run of its
 * offsets) and a ring of its last messages, each a reference to the encoded frame that
 * subscribers were sent, with its offset (1, 2, 3 ... per topic, never reused within an
 * epoch) and the time it was kept. A full ring forgets its oldest message; a message
 * older than the pattern's ttl is forgotten the next time the topic is used, or by
 * ps_history_expire().
 *
 * Recovery asks "what came after offset O of epoch E": answered with the messages held
 * after O when E is the topic's epoch and every message after O is still held; "gone"
 * otherwise (forgotten, or another epoch: the process restarted, or the topic's state
 * was dropped after idling), and the client must reload instead.
 *
 * Threads: nothing here locks. One registry belongs to whoever serialises access to it
 * (the gateway keeps it under one mutex, docs/realtime.md). The frames are shared, as
 * everywhere in pubsub/ (atomic refcount).
 */
#ifndef PS_HISTORY_H
#define PS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

typedef struct ps_history ps_history;
typedef struct ps_history_topic ps_history_topic;

/* The longest epoch name, its NUL included. */
#define PS_HISTORY_EPOCH_MAX 32

/* A state left empty and unused this long is dropped (its epoch with it). */
#define PS_HISTORY_IDLE_MS (10 * 60 * 1000)

typedef struct ps_history_entry {
    uint64_t offset;
    int64_t at_ms;    /* when it was kept (the caller's clock) */
    ps_frame *frame;  /* the registry's reference */
} ps_history_entry;

/*
 * A new registry with no pattern. `node` (at most 16 characters of [0-9a-z], e.g. a
 * random token per process) starts every epoch name, so that two runs never name an
 * epoch alike. NULL with errno EINVAL or ENOMEM.
 */
PS_MUST_CHECK ps_history *ps_history_new(const char *node);

/*
 * Forgets every state (and so every epoch) and names the epochs from now on after node
 * (same rules as ps_history_new()); the patterns stay. For a process forked from the one
 * that made the registry: what it inherited is another process's history. 0 or -EINVAL
 * (nothing changed).
 */
int ps_history_reset(ps_history *h, const char *node);

/* Frees the registry, its states and their references. NULL is a no-op. */
void ps_history_free(ps_history *h);

/*
 * Adds a pattern: topics matching glob (and no earlier pattern) keep their last
 * `capacity` messages (1 .. PS_HISTORY_MAX_CAPACITY), each for ttl_ms at most (0: no
 * age limit). Returns 0, -EINVAL (empty glob, capacity out of range, negative ttl),
 * -EEXIST (the same glob twice) or -ENOMEM.
 */
#define PS_HISTORY_MAX_CAPACITY 1000000u
int ps_history_add_pattern(ps_history *h, const char *glob, size_t capacity, int64_t ttl_ms);

/* What pattern i (a ps_history_match() answer) keeps: its capacity and ttl. 0, or -EINVAL
 * for no such pattern. */
int ps_history_pattern_limits(const ps_history *h, int i, size_t *capacity, int64_t *ttl_ms);

/* Number of patterns. */
size_t ps_history_pattern_count(const ps_history *h);

/*
 * Whether topic (len bytes) keeps history: the index of the first pattern it matches,
 * or -1. A topic with a NUL byte in it matches none.
 */
int ps_history_match(const ps_history *h, const char *topic, size_t len);

/*
 * The state of topic, made (with a new epoch, offset 0) when there is none and create
 * is set. Forgets what has outlived the ttl first, as of now_ms. NULL when the topic
 * matches no pattern, when there is no state and create is false, or (errno ENOMEM)
 * when making one failed. The pointer is valid until the next call that may drop
 * states (ps_history_expire(), ps_history_free()).
 */
ps_history_topic *ps_history_topic_get(ps_history *h, const char *topic, size_t len,
                                       int64_t now_ms, bool create);

/* The topic's epoch name (NUL-terminated, [0-9a-z.]). */
const char *ps_history_topic_epoch(const ps_history_topic *t);
/* The offset of the last message kept (0 before the first). */
uint64_t ps_history_topic_last(const ps_history_topic *t);
/* How many messages are held, and the i-th of them (0 = oldest), borrowed. */
size_t ps_history_topic_count(const ps_history_topic *t);
const ps_history_entry *ps_history_topic_at(const ps_history_topic *t, size_t i);

/*
 * Keeps frame (a reference is taken) as the topic's next message, offset last + 1,
 * forgetting the oldest when the ring is full. Returns that offset, or 0 with errno
 * ENOMEM (nothing changed).
 */
uint64_t ps_history_topic_push(ps_history_topic *t, ps_frame *frame, int64_t now_ms);

/*
 * Where the messages after `since` of epoch begin: the index (for ps_history_topic_at)
 * of the first message with an offset above since, ps_history_topic_count() when there
 * is none; or -1 when they cannot all be given (another epoch, since beyond the last
 * offset, or a message after since already forgotten).
 */
long ps_history_topic_after(const ps_history_topic *t, const char *epoch, uint64_t since);

/*
 * Forgets every message older than its ttl as of now_ms, and drops states left empty
 * and unused for PS_HISTORY_IDLE_MS. Returns how many messages were forgotten.
 */
size_t ps_history_expire(ps_history *h, int64_t now_ms);

/* Number of topic states, and of messages held in all. */
size_t ps_history_topics(const ps_history *h);
size_t ps_history_messages(const ps_history *h);

#endif /* PS_HISTORY_H */
