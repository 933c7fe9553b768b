/*
 * ledger.c: topics with member counts, and members' lists of topics. See ledger.h.
 *
 * The topics are a names.h table (open addressing, as in topics.c), each name's count its
 * members.
 */
#include "ledger.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

#define ARRAY_MIN 4  /* a member's first array of topics */
_Static_assert(ARRAY_MIN > PS_LEDGER_INLINE, "leaving the inline slots must make room for one more");

/* A topic is a names.h entry; its count is its members. */
struct ps_ledger {
    ps_names names;
};

ps_ledger *ps_ledger_new(void)
{
    ps_ledger *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    if (ps_names_init(&l->names) < 0) {
        free(l);
        return NULL;
    }
    return l;
}

void ps_ledger_free(ps_ledger *l)
{
    if (l == NULL)
        return;
    ps_names_release(&l->names);
    free(l);
}

static struct ps_name *lookup(const ps_ledger *l, const char *name, size_t len)
{
    return ps_names_get(&l->names, name, len);
}

/* Takes t out of the table and frees it. */
static void topic_die(ps_ledger *l, struct ps_name *t)
{
    ps_names_remove(&l->names, t);
    free(t);
}

static void topic_unref(ps_ledger *l, struct ps_name *t)
{
    if (--t->count == 0)
        topic_die(l, t);
}

/* Where t is in m's sorted array: its index (*found true) or where it would go. */
static uint32_t array_search(const ps_ledger_member *m, const struct ps_name *t,
                             bool *found)
{
    uint32_t lo = 0, hi = m->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)m->topics[mid] < (uintptr_t)t)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < m->n && m->topics[lo] == t;
    return lo;
}

/* m's index of t, or -1. */
static int64_t member_find(const ps_ledger_member *m, const struct ps_name *t)
{
    if (m->topics == NULL) {
        for (uint32_t i = 0; i < m->n; i++)
            if (m->inline_topics[i] == t)
                return i;
        return -1;
    }
    bool found;
    uint32_t at = array_search(m, t, &found);
    return found ? (int64_t)at : -1;
}

static int pointer_order(const void *a, const void *b)
{
    struct ps_name *const *x = a, *const *y = b;
    return ((uintptr_t)*x > (uintptr_t)*y) - ((uintptr_t)*x < (uintptr_t)*y);
}

/* Adds t (not in m yet) to m. Returns 0 or -ENOMEM (m unchanged). */
static int member_add(ps_ledger_member *m, struct ps_name *t)
{
    if (m->topics == NULL && m->n < PS_LEDGER_INLINE) {
        m->inline_topics[m->n++] = t;
        return 0;
    }
    if (m->n == UINT32_MAX)
        return -ENOMEM;
    if (m->topics == NULL) {
        /* Out of the inline slots: every topic moves to a sorted array. */
        struct ps_name **a = malloc(ARRAY_MIN * sizeof(*a));
        if (a == NULL)
            return -ENOMEM;
        memcpy(a, m->inline_topics, m->n * sizeof(*a));
        qsort(a, m->n, sizeof(*a), pointer_order);
        m->topics = a;
        m->cap = ARRAY_MIN;
    } else if (m->n == m->cap) {
        uint32_t ncap = m->cap > UINT32_MAX / 2 ? UINT32_MAX : m->cap * 2;
        struct ps_name **a = realloc(m->topics, (size_t)ncap * sizeof(*a));
        if (a == NULL)
            return -ENOMEM;
        m->topics = a;
        m->cap = ncap;
    }
    bool found;
    uint32_t at = array_search(m, t, &found);
    memmove(&m->topics[at + 1], &m->topics[at], (m->n - at) * sizeof(*m->topics));
    m->topics[at] = t;
    m->n++;
    return 0;
}

/* Takes the topic at index i out of m; back inside the record once it fits there. */
static void member_remove(ps_ledger_member *m, uint32_t i)
{
    if (m->topics == NULL) {
        m->inline_topics[i] = m->inline_topics[--m->n];
        m->inline_topics[m->n] = NULL;
        return;
    }
    memmove(&m->topics[i], &m->topics[i + 1], (m->n - i - 1) * sizeof(*m->topics));
    m->n--;
    if (m->n <= PS_LEDGER_INLINE) {
        struct ps_name **a = m->topics;
        memcpy(m->inline_topics, a, m->n * sizeof(*a));
        m->topics = NULL;
        m->cap = 0;
        free(a);
    }
}

int ps_ledger_join(ps_ledger *l, ps_ledger_member *m, const char *name, size_t len)
{
    struct ps_name *t = lookup(l, name, len);

    if (t != NULL && member_find(m, t) >= 0)
        return 0;
    int born = 0;
    if (t == NULL && (t = ps_names_put(&l->names, name, len, &born)) == NULL)
        return -ENOMEM;
    if (member_add(m, t) < 0) {
        if (born)
            topic_die(l, t);
        return -ENOMEM;
    }
    t->count++;
    return 1;
}

int ps_ledger_leave(ps_ledger *l, ps_ledger_member *m, const char *name, size_t len)
{
    struct ps_name *t = lookup(l, name, len);
    int64_t i = t != NULL ? member_find(m, t) : -1;

    if (i < 0)
        return 0;
    member_remove(m, (uint32_t)i);
    topic_unref(l, t);
    return 1;
}

void ps_ledger_leave_all(ps_ledger *l, ps_ledger_member *m)
{
    struct ps_name **list = m->topics != NULL ? m->topics : m->inline_topics;

    for (uint32_t i = 0; i < m->n; i++)
        topic_unref(l, list[i]);
    free(m->topics);
    memset(m, 0, sizeof(*m));
}

bool ps_ledger_is_member(const ps_ledger *l, const ps_ledger_member *m, const char *name,
                         size_t len)
{
    const struct ps_name *t = lookup(l, name, len);
    return t != NULL && member_find(m, t) >= 0;
}

size_t ps_ledger_count(const ps_ledger *l, const char *name, size_t len)
{
    const struct ps_name *t = lookup(l, name, len);
    return t != NULL ? t->count : 0;
}

size_t ps_ledger_topics(const ps_ledger *l)
{
    return l->names.n;
}

void ps_ledger_each(const ps_ledger *l, ps_ledger_topic_fn fn, void *ctx)
{
    for (size_t i = 0; i < l->names.cap; i++)
        if (l->names.slots[i])
            fn(ctx, l->names.slots[i]->name, l->names.slots[i]->len);
}
