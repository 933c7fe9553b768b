/*
 * tally.c: per-topic counts of the registries holding a topic. See tally.h.
 *
 * The table is open addressing (linear probing, load <= 1/2, backward-shift deletion, so
 * no tombstones), as in ledger.c.
 */
#include "tally.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "siphash.h"

#define TABLE_MIN 16 /* slots: a power of two, never fewer */

struct tally_topic {
    uint64_t hash;
    size_t holders; /* registries holding the topic, at least 1 */
    size_t len;
    char name[]; /* len bytes */
};

struct ps_tally {
    struct tally_topic **table; /* cap slots, NULL when empty */
    size_t cap, count;
    uint64_t key[2];
    ps_interest_fn fn;
    void *ctx;
};

ps_tally *ps_tally_new(ps_interest_fn fn, void *ctx)
{
    ps_tally *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->table = calloc(TABLE_MIN, sizeof(*t->table));
    if (t->table == NULL) {
        free(t);
        return NULL;
    }
    t->cap = TABLE_MIN;
    t->fn = fn;
    t->ctx = ctx;
    ps_random_key(t->key, t);
    return t;
}

void ps_tally_free(ps_tally *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->cap; i++)
        free(t->table[i]);
    free(t->table);
    free(t);
}

/* The slot holding name, or the empty slot where it would go (there always is one). */
static size_t table_find(const ps_tally *t, uint64_t hash, const char *name, size_t len)
{
    size_t mask = t->cap - 1;
    size_t i = (size_t)hash & mask;
    const struct tally_topic *e;

    while ((e = t->table[i]) != NULL) {
        if (e->hash == hash && e->len == len && (len == 0 || memcmp(e->name, name, len) == 0))
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

/* Makes room for one more topic. Returns 0 or -ENOMEM (the table unchanged). */
static int table_reserve(ps_tally *t)
{
    if ((t->count + 1) * 2 <= t->cap)
        return 0;
    if (t->cap > SIZE_MAX / 2 / sizeof(*t->table))
        return -ENOMEM;
    size_t ncap = t->cap * 2;
    struct tally_topic **nt = calloc(ncap, sizeof(*nt));
    if (nt == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->table[i] != NULL) {
            size_t j = (size_t)t->table[i]->hash & (ncap - 1);
            while (nt[j] != NULL)
                j = (j + 1) & (ncap - 1);
            nt[j] = t->table[i];
        }
    }
    free(t->table);
    t->table = nt;
    t->cap = ncap;
    return 0;
}

/* Empties slot i, shifting back the entries it displaced. */
static void table_remove(ps_tally *t, size_t i)
{
    size_t mask = t->cap - 1;
    size_t j = i;

    for (;;) {
        j = (j + 1) & mask;
        if (t->table[j] == NULL)
            break;
        size_t home = (size_t)t->table[j]->hash & mask;
        /* Move j back into the hole at i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            t->table[i] = t->table[j];
            i = j;
        }
    }
    t->table[i] = NULL;
    t->count--;
}

long ps_tally_change(ps_tally *t, const char *topic, size_t len, bool alive)
{
    uint64_t hash = ps_siphash13(t->key, topic, len);
    size_t at = table_find(t, hash, topic, len);
    struct tally_topic *e = t->table[at];

    if (!alive) {
        if (e == NULL)
            return -ENOENT;
        size_t left = --e->holders;
        if (left == 0) {
            table_remove(t, at);
            t->fn(t->ctx, e->name, len, false);
            free(e);
        }
        return (long)left;
    }
    if (e != NULL)
        return (long)++e->holders;
    if (len > SIZE_MAX - sizeof(*e) - 1 || table_reserve(t) < 0)
        return -ENOMEM;
    e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return -ENOMEM;
    e->hash = hash;
    e->holders = 1;
    e->len = len;
    if (len > 0)
        memcpy(e->name, topic, len);
    e->name[len] = '\0';
    /* The table may have been rebuilt: find the empty slot again. */
    t->table[table_find(t, hash, topic, len)] = e;
    t->count++;
    /* Handed the tally's own NUL-terminated copy, as a registry hands its own. */
    t->fn(t->ctx, e->name, len, true);
    return 1;
}

size_t ps_tally_count(const ps_tally *t, const char *topic, size_t len)
{
    const struct tally_topic *e =
        t->table[table_find(t, ps_siphash13(t->key, topic, len), topic, len)];
    return e != NULL ? e->holders : 0;
}

size_t ps_tally_topics(const ps_tally *t)
{
    return t->count;
}
