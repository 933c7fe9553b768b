/*
 * names.h: a table of names, each with a count, for the pub/sub layer's tables that only
 * count (ledger.c: a topic's members; tally.c: the registries holding a topic).
 *
 * Open addressing with linear probing, load at most 1/2, backward-shift deletion (so no
 * tombstones). Names are any bytes, hashed with SipHash under a random key: names chosen by
 * clients cannot force collisions. An entry keeps its address while it is in the table, so
 * its owner may point at it (a ledger member's list of topics does).
 *
 * Threads: nothing here locks; the owner guards a table.
 */
#ifndef PS_NAMES_H
#define PS_NAMES_H

#include <stddef.h>
#include <stdint.h>

typedef struct ps_name {
    uint64_t hash;
    size_t count; /* the owner's: 0 when put() makes the entry */
    size_t len;
    char name[];  /* len bytes, then a NUL */
} ps_name;

typedef struct ps_names {
    ps_name **slots; /* cap slots, NULL when empty */
    size_t cap, n;
    uint64_t key[2];
} ps_names;

/* An empty table in *t. 0, or -ENOMEM. */
int ps_names_init(ps_names *t);

/* Frees every entry and the slots. */
void ps_names_release(ps_names *t);

/* The entry for name (len bytes), or NULL. */
ps_name *ps_names_get(const ps_names *t, const char *name, size_t len);

/* The entry for name, made with count 0 when there was none (*made set to 1, else 0), or
 * NULL when out of memory (the table unchanged). */
ps_name *ps_names_put(ps_names *t, const char *name, size_t len, int *made);

/* Takes e out of the table (its memory stays; the caller frees it with free()). */
void ps_names_remove(ps_names *t, ps_name *e);

#endif /* PS_NAMES_H */
