/*
 * tally.h: how many registries hold each topic, for one bus that several registries feed.
 *
 * With --workers M every I/O shard keeps a topic registry of its own, while one bus (shard
 * 0's Redis bus) subscribes for the whole process. Each registry reports its topics'
 * births and deaths (ps_interest_fn, topics.h); the tally counts, per topic, the
 * registries holding it, and passes on only the process's first birth and its last death.
 * The bus then hears of a topic exactly while some registry has a subscriber of it, and
 * once, however many registries share it.
 *
 * A registry reports alternately (born, died, born ...) per topic, so counts never go
 * below zero while every registry's reports arrive in its own order; reports of two
 * registries may interleave in any way.
 *
 * Names are hashed with SipHash under a random key (clients may choose topic names).
 * Threads: nothing here locks; the owner calls it from one thread.
 */
#ifndef PS_TALLY_H
#define PS_TALLY_H

#include <stdbool.h>
#include <stddef.h>

#include "frame.h"
#include "topics.h"

typedef struct ps_tally ps_tally;

/* An empty tally passing on first births and last deaths to fn(ctx, ...), or NULL
 * (out of memory). */
PS_MUST_CHECK ps_tally *ps_tally_new(ps_interest_fn fn, void *ctx);

/* Frees the tally; calls nothing. NULL is a no-op. */
void ps_tally_free(ps_tally *t);

/*
 * One registry's topic (len bytes, any bytes; borrowed) was born (alive) or died. Calls
 * fn(ctx, topic, len, alive) when that makes it the first registry holding the topic, or
 * the last one leaving it. Returns how many registries hold the topic now; or -ENOMEM for
 * a birth that could not be counted (nothing changed, fn not called); or -ENOENT for a
 * death of a topic no registry holds (ignored).
 */
long ps_tally_change(ps_tally *t, const char *topic, size_t len, bool alive);

/* How many registries hold topic (0: none). */
size_t ps_tally_count(const ps_tally *t, const char *topic, size_t len);

/* How many topics some registry holds. */
size_t ps_tally_topics(const ps_tally *t);

#endif /* PS_TALLY_H */
