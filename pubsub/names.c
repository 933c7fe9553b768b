/*
 * names.c: a table of counted names. See names.h.
 */
#include "names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "siphash.h"

#define SLOTS_MIN 16 /* a power of two, never fewer */

int ps_names_init(ps_names *t)
{
    memset(t, 0, sizeof(*t));
    t->slots = calloc(SLOTS_MIN, sizeof(*t->slots));
    if (t->slots == NULL)
        return -ENOMEM;
    t->cap = SLOTS_MIN;
    ps_random_key(t->key, t);
    return 0;
}

void ps_names_release(ps_names *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i]);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* The slot holding name, or the empty slot where it would go (there always is one). */
static size_t slot_of(const ps_names *t, uint64_t hash, const char *name, size_t len)
{
    size_t mask = t->cap - 1;
    size_t i = (size_t)hash & mask;
    const ps_name *e;

    while ((e = t->slots[i]) != NULL) {
        if (e->hash == hash && e->len == len && (len == 0 || memcmp(e->name, name, len) == 0))
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

ps_name *ps_names_get(const ps_names *t, const char *name, size_t len)
{
    return t->slots[slot_of(t, ps_siphash13(t->key, name, len), name, len)];
}

/* Makes room for one more entry. Returns 0 or -ENOMEM (the table unchanged). */
static int reserve(ps_names *t)
{
    if ((t->n + 1) * 2 <= t->cap)
        return 0;
    if (t->cap > SIZE_MAX / 2 / sizeof(*t->slots))
        return -ENOMEM;
    size_t ncap = t->cap * 2;
    ps_name **ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i] != NULL) {
            size_t j = (size_t)t->slots[i]->hash & (ncap - 1);
            while (ns[j] != NULL)
                j = (j + 1) & (ncap - 1);
            ns[j] = t->slots[i];
        }
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

ps_name *ps_names_put(ps_names *t, const char *name, size_t len, int *made)
{
    uint64_t hash = ps_siphash13(t->key, name, len);
    ps_name *e = t->slots[slot_of(t, hash, name, len)];

    *made = 0;
    if (e != NULL)
        return e;
    if (len > SIZE_MAX - sizeof(*e) - 1 || reserve(t) < 0)
        return NULL;
    e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return NULL;
    e->hash = hash;
    e->count = 0;
    e->len = len;
    if (len > 0)
        memcpy(e->name, name, len);
    e->name[len] = '\0';
    /* reserve() may have rebuilt the slots: find the empty one again. */
    t->slots[slot_of(t, hash, name, len)] = e;
    t->n++;
    *made = 1;
    return e;
}

void ps_names_remove(ps_names *t, ps_name *e)
{
    size_t mask = t->cap - 1;
    size_t i = slot_of(t, e->hash, e->name, e->len);
    size_t j = i;

    for (;;) {
        j = (j + 1) & mask;
        if (t->slots[j] == NULL)
            break;
        size_t home = (size_t)t->slots[j]->hash & mask;
        /* Move j back into the hole at i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i] = NULL;
    t->n--;
}
