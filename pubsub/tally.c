/*
 * tally.c: per-topic counts of the registries holding a topic. See tally.h. The table is a
 * names.h table, the count of each name its holders.
 */
#include "tally.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "names.h"

struct ps_tally {
    ps_names names;
    ps_interest_fn fn;
    void *ctx;
};

ps_tally *ps_tally_new(ps_interest_fn fn, void *ctx)
{
    ps_tally *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (ps_names_init(&t->names) < 0) {
        free(t);
        return NULL;
    }
    t->fn = fn;
    t->ctx = ctx;
    return t;
}

void ps_tally_free(ps_tally *t)
{
    if (t == NULL)
        return;
    ps_names_release(&t->names);
    free(t);
}

long ps_tally_change(ps_tally *t, const char *topic, size_t len, bool alive)
{
    ps_name *e;

    if (!alive) {
        e = ps_names_get(&t->names, topic, len);
        if (e == NULL)
            return -ENOENT;
        size_t left = --e->count;
        if (left == 0) {
            ps_names_remove(&t->names, e);
            t->fn(t->ctx, e->name, len, false);
            free(e);
        }
        return (long)left;
    }
    int made;
    e = ps_names_put(&t->names, topic, len, &made);
    if (e == NULL)
        return -ENOMEM;
    if (++e->count == 1)
        /* Handed the tally's own NUL-terminated copy, as a registry hands its own. */
        t->fn(t->ctx, e->name, len, true);
    return (long)e->count;
}

size_t ps_tally_count(const ps_tally *t, const char *topic, size_t len)
{
    const ps_name *e = ps_names_get(&t->names, topic, len);
    return e != NULL ? e->count : 0;
}

size_t ps_tally_topics(const ps_tally *t)
{
    return t->names.n;
}
