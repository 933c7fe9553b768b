/*
 * ledger.c: topics with member counts, and members' lists of topics. See ledger.h.
 *
 * The name table is open addressing (linear probing, load <= 1/2, backward-shift deletion,
 * so no tombstones), as in topics.c.
 */
#include "ledger.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "siphash.h"

#define TABLE_MIN 16 /* table slots: a power of two, never fewer */
#define ARRAY_MIN 4  /* a member's first array of topics */
_Static_assert(ARRAY_MIN > PS_LEDGER_INLINE, "leaving the inline slots must make room for one more");

struct ps_ledger_topic {
    uint64_t hash;
    size_t members;
    size_t len;
    char name[]; /* len bytes */
};

struct ps_ledger {
    struct ps_ledger_topic **table; /* cap slots, NULL when empty */
    size_t cap, count;
    uint64_t key[2];
};

ps_ledger *ps_ledger_new(void)
{
    ps_ledger *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->table = calloc(TABLE_MIN, sizeof(*l->table));
    if (l->table == NULL) {
        free(l);
        return NULL;
    }
    l->cap = TABLE_MIN;
    ps_random_key(l->key, l);
    return l;
}

void ps_ledger_free(ps_ledger *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->cap; i++)
        free(l->table[i]);
    free(l->table);
    free(l);
}

/* The slot holding name, or the empty slot where it would go (there always is one). */
static size_t table_find(const ps_ledger *l, uint64_t hash, const char *name, size_t len)
{
    size_t mask = l->cap - 1;
    size_t i = (size_t)hash & mask;
    const struct ps_ledger_topic *t;

    while ((t = l->table[i]) != NULL) {
        if (t->hash == hash && t->len == len && (len == 0 || memcmp(t->name, name, len) == 0))
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static struct ps_ledger_topic *lookup(const ps_ledger *l, const char *name, size_t len)
{
    return l->table[table_find(l, ps_siphash13(l->key, name, len), name, len)];
}

/* Makes room for one more topic. Returns 0 or -ENOMEM (the table unchanged). */
static int table_reserve(ps_ledger *l)
{
    if ((l->count + 1) * 2 <= l->cap)
        return 0;
    if (l->cap > SIZE_MAX / 2 / sizeof(*l->table))
        return -ENOMEM;
    size_t ncap = l->cap * 2;
    struct ps_ledger_topic **nt = calloc(ncap, sizeof(*nt));
    if (nt == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < l->cap; i++) {
        if (l->table[i] != NULL) {
            size_t j = (size_t)l->table[i]->hash & (ncap - 1);
            while (nt[j] != NULL)
                j = (j + 1) & (ncap - 1);
            nt[j] = l->table[i];
        }
    }
    free(l->table);
    l->table = nt;
    l->cap = ncap;
    return 0;
}

/* Takes t out of the table and frees it, shifting back the entries its slot displaced. */
static void topic_die(ps_ledger *l, struct ps_ledger_topic *t)
{
    size_t mask = l->cap - 1;
    size_t i = table_find(l, t->hash, t->name, t->len);
    size_t j = i;

    for (;;) {
        j = (j + 1) & mask;
        if (l->table[j] == NULL)
            break;
        size_t home = (size_t)l->table[j]->hash & mask;
        /* Move j back into the hole at i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            l->table[i] = l->table[j];
            i = j;
        }
    }
    l->table[i] = NULL;
    l->count--;
    free(t);
}

static void topic_unref(ps_ledger *l, struct ps_ledger_topic *t)
{
    if (--t->members == 0)
        topic_die(l, t);
}

/* Where t is in m's sorted array: its index (*found true) or where it would go. */
static uint32_t array_search(const ps_ledger_member *m, const struct ps_ledger_topic *t,
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
static int64_t member_find(const ps_ledger_member *m, const struct ps_ledger_topic *t)
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
    struct ps_ledger_topic *const *x = a, *const *y = b;
    return ((uintptr_t)*x > (uintptr_t)*y) - ((uintptr_t)*x < (uintptr_t)*y);
}

/* Adds t (not in m yet) to m. Returns 0 or -ENOMEM (m unchanged). */
static int member_add(ps_ledger_member *m, struct ps_ledger_topic *t)
{
    if (m->topics == NULL && m->n < PS_LEDGER_INLINE) {
        m->inline_topics[m->n++] = t;
        return 0;
    }
    if (m->n == UINT32_MAX)
        return -ENOMEM;
    if (m->topics == NULL) {
        /* Out of the inline slots: every topic moves to a sorted array. */
        struct ps_ledger_topic **a = malloc(ARRAY_MIN * sizeof(*a));
        if (a == NULL)
            return -ENOMEM;
        memcpy(a, m->inline_topics, m->n * sizeof(*a));
        qsort(a, m->n, sizeof(*a), pointer_order);
        m->topics = a;
        m->cap = ARRAY_MIN;
    } else if (m->n == m->cap) {
        uint32_t ncap = m->cap > UINT32_MAX / 2 ? UINT32_MAX : m->cap * 2;
        struct ps_ledger_topic **a = realloc(m->topics, (size_t)ncap * sizeof(*a));
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
        struct ps_ledger_topic **a = m->topics;
        memcpy(m->inline_topics, a, m->n * sizeof(*a));
        m->topics = NULL;
        m->cap = 0;
        free(a);
    }
}

int ps_ledger_join(ps_ledger *l, ps_ledger_member *m, const char *name, size_t len)
{
    uint64_t hash = ps_siphash13(l->key, name, len);
    size_t at = table_find(l, hash, name, len);
    struct ps_ledger_topic *t = l->table[at];

    if (t != NULL && member_find(m, t) >= 0)
        return 0;
    bool born = t == NULL;
    if (born) {
        if (len > SIZE_MAX - sizeof(*t) || table_reserve(l) < 0)
            return -ENOMEM;
        t = malloc(sizeof(*t) + len);
        if (t == NULL)
            return -ENOMEM;
        t->hash = hash;
        t->members = 0;
        t->len = len;
        if (len > 0)
            memcpy(t->name, name, len);
        /* The table may have been rebuilt: find the empty slot again. */
        l->table[table_find(l, hash, name, len)] = t;
        l->count++;
    }
    if (member_add(m, t) < 0) {
        if (born)
            topic_die(l, t);
        return -ENOMEM;
    }
    t->members++;
    return 1;
}

int ps_ledger_leave(ps_ledger *l, ps_ledger_member *m, const char *name, size_t len)
{
    struct ps_ledger_topic *t = lookup(l, name, len);
    int64_t i = t != NULL ? member_find(m, t) : -1;

    if (i < 0)
        return 0;
    member_remove(m, (uint32_t)i);
    topic_unref(l, t);
    return 1;
}

void ps_ledger_leave_all(ps_ledger *l, ps_ledger_member *m)
{
    struct ps_ledger_topic **list = m->topics != NULL ? m->topics : m->inline_topics;

    for (uint32_t i = 0; i < m->n; i++)
        topic_unref(l, list[i]);
    free(m->topics);
    memset(m, 0, sizeof(*m));
}

bool ps_ledger_is_member(const ps_ledger *l, const ps_ledger_member *m, const char *name,
                         size_t len)
{
    const struct ps_ledger_topic *t = lookup(l, name, len);
    return t != NULL && member_find(m, t) >= 0;
}

size_t ps_ledger_count(const ps_ledger *l, const char *name, size_t len)
{
    const struct ps_ledger_topic *t = lookup(l, name, len);
    return t != NULL ? t->members : 0;
}

size_t ps_ledger_topics(const ps_ledger *l)
{
    return l->count;
}

void ps_ledger_each(const ps_ledger *l, ps_ledger_topic_fn fn, void *ctx)
{
    for (size_t i = 0; i < l->cap; i++)
        if (l->table[i])
            fn(ctx, l->table[i]->name, l->table[i]->len);
}
