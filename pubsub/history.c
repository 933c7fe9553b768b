/*
 * history.c: per-topic rings of recent frames with offsets (see history.h).
 *
 * States live in a chained hash table keyed by topic name (FNV-1a: the names come from
 * the application's own publishes and subscribes, and a state costs its pattern's ring,
 * so there is no flooding to defend against beyond what the application allows). A ring
 * grows by doubling up to its pattern's capacity, so a topic with few messages costs
 * few slots.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "history.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pattern {
    char *glob;
    size_t capacity;
    int64_t ttl_ms;
} pattern;

struct ps_history_topic {
    struct ps_history_topic *next; /* hash chain */
    struct ps_history *owner;      /* keeps the registry's message total right */
    uint64_t hash;
    char *name;
    size_t len;
    size_t pat;                    /* index into owner->patterns (which may move) */
    char epoch[PS_HISTORY_EPOCH_MAX];
    uint64_t last;
    int64_t used_ms;
    ps_history_entry *ring;
    size_t ring_cap, head, count; /* head: index of the oldest */
};

struct ps_history {
    char node[17];
    uint64_t generation; /* numbers the epochs of this registry */
    pattern *patterns;
    size_t npatterns;
    ps_history_topic **buckets;
    size_t nbuckets, ntopics, nmessages;
};

#define PAT(t) (&(t)->owner->patterns[(t)->pat])

static uint64_t name_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool node_ok(const char *node)
{
    size_t n = node ? strlen(node) : 0;
    return n > 0 && n <= 16 && strspn(node, "0123456789abcdefghijklmnopqrstuvwxyz") == n;
}

ps_history *ps_history_new(const char *node)
{
    if (!node_ok(node)) {
        errno = EINVAL;
        return NULL;
    }
    ps_history *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    memcpy(h->node, node, strlen(node) + 1);
    h->nbuckets = 64;
    h->buckets = calloc(h->nbuckets, sizeof(*h->buckets));
    if (!h->buckets) {
        free(h);
        return NULL;
    }
    return h;
}

static void topic_free(ps_history *h, ps_history_topic *t)
{
    for (size_t i = 0; i < t->count; i++)
        ps_frame_unref(t->ring[(t->head + i) % t->ring_cap].frame);
    h->nmessages -= t->count;
    free(t->ring);
    free(t->name);
    free(t);
}

int ps_history_reset(ps_history *h, const char *node)
{
    if (!node_ok(node))
        return -EINVAL;
    for (size_t b = 0; b < h->nbuckets; b++) {
        ps_history_topic *t = h->buckets[b];
        while (t) {
            ps_history_topic *next = t->next;
            topic_free(h, t);
            t = next;
        }
        h->buckets[b] = NULL;
    }
    h->ntopics = 0;
    h->generation = 0;
    memcpy(h->node, node, strlen(node) + 1);
    return 0;
}

void ps_history_free(ps_history *h)
{
    if (!h)
        return;
    for (size_t b = 0; b < h->nbuckets; b++) {
        ps_history_topic *t = h->buckets[b];
        while (t) {
            ps_history_topic *next = t->next;
            topic_free(h, t);
            t = next;
        }
    }
    for (size_t i = 0; i < h->npatterns; i++)
        free(h->patterns[i].glob);
    free(h->patterns);
    free(h->buckets);
    free(h);
}

int ps_history_pattern_limits(const ps_history *h, int i, size_t *capacity, int64_t *ttl_ms)
{
    if (i < 0 || (size_t)i >= h->npatterns)
        return -EINVAL;
    *capacity = h->patterns[i].capacity;
    *ttl_ms = h->patterns[i].ttl_ms;
    return 0;
}

int ps_history_add_pattern(ps_history *h, const char *glob, size_t capacity, int64_t ttl_ms)
{
    if (!glob || !*glob || capacity == 0 || capacity > PS_HISTORY_MAX_CAPACITY || ttl_ms < 0)
        return -EINVAL;
    for (size_t i = 0; i < h->npatterns; i++)
        if (!strcmp(h->patterns[i].glob, glob))
            return -EEXIST;
    pattern *p = realloc(h->patterns, (h->npatterns + 1) * sizeof(*p));
    if (!p)
        return -ENOMEM;
    h->patterns = p;
    char *copy = strdup(glob);
    if (!copy)
        return -ENOMEM;
    h->patterns[h->npatterns++] = (pattern){copy, capacity, ttl_ms};
    return 0;
}

size_t ps_history_pattern_count(const ps_history *h)
{
    return h->npatterns;
}

int ps_history_match(const ps_history *h, const char *topic, size_t len)
{
    if (!h->npatterns || memchr(topic, '\0', len))
        return -1;
    char small[256];
    char *name = len < sizeof(small) ? small : malloc(len + 1);
    if (!name)
        return -1;
    memcpy(name, topic, len);
    name[len] = '\0';
    int found = -1;
    for (size_t i = 0; i < h->npatterns && found < 0; i++)
        if (fnmatch(h->patterns[i].glob, name, 0) == 0)
            found = (int)i;
    if (name != small)
        free(name);
    return found;
}

static ps_history_entry *entry(const ps_history_topic *t, size_t i)
{
    return &t->ring[(t->head + i) % t->ring_cap];
}

static void forget_oldest(ps_history *h, ps_history_topic *t)
{
    ps_frame_unref(entry(t, 0)->frame);
    t->head = (t->head + 1) % t->ring_cap;
    t->count--;
    h->nmessages--;
}

static size_t forget_aged(ps_history *h, ps_history_topic *t, int64_t now_ms)
{
    size_t n = 0;
    if (PAT(t)->ttl_ms == 0)
        return 0;
    while (t->count && now_ms - entry(t, 0)->at_ms >= PAT(t)->ttl_ms) {
        forget_oldest(h, t);
        n++;
    }
    return n;
}

static int grow_buckets(ps_history *h)
{
    size_t n = h->nbuckets * 2;
    ps_history_topic **b = calloc(n, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < h->nbuckets; i++) {
        ps_history_topic *t = h->buckets[i];
        while (t) {
            ps_history_topic *next = t->next;
            t->next = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
            t = next;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = n;
    return 0;
}

ps_history_topic *ps_history_topic_get(ps_history *h, const char *topic, size_t len,
                                       int64_t now_ms, bool create)
{
    uint64_t hash = name_hash(topic, len);
    for (ps_history_topic *t = h->buckets[hash & (h->nbuckets - 1)]; t; t = t->next) {
        if (t->hash == hash && t->len == len && !memcmp(t->name, topic, len)) {
            forget_aged(h, t, now_ms);
            t->used_ms = now_ms;
            return t;
        }
    }
    int p = create ? ps_history_match(h, topic, len) : -1;
    if (p < 0)
        return NULL;
    if (h->ntopics >= h->nbuckets && grow_buckets(h) < 0)
        return NULL;
    ps_history_topic *t = calloc(1, sizeof(*t));
    char *name = t ? malloc(len + 1) : NULL;
    if (!name) {
        free(t);
        errno = ENOMEM;
        return NULL;
    }
    memcpy(name, topic, len);
    name[len] = '\0';
    t->name = name;
    t->len = len;
    t->hash = hash;
    t->pat = (size_t)p;
    t->owner = h;
    t->used_ms = now_ms;
    snprintf(t->epoch, sizeof(t->epoch), "%s.%llu", h->node,
             (unsigned long long)++h->generation);
    size_t b = hash & (h->nbuckets - 1);
    t->next = h->buckets[b];
    h->buckets[b] = t;
    h->ntopics++;
    return t;
}

const char *ps_history_topic_epoch(const ps_history_topic *t)
{
    return t->epoch;
}

uint64_t ps_history_topic_last(const ps_history_topic *t)
{
    return t->last;
}

size_t ps_history_topic_count(const ps_history_topic *t)
{
    return t->count;
}

const ps_history_entry *ps_history_topic_at(const ps_history_topic *t, size_t i)
{
    return i < t->count ? entry(t, i) : NULL;
}

uint64_t ps_history_topic_push(ps_history_topic *t, ps_frame *frame, int64_t now_ms)
{
    ps_history *h = t->owner;
    if (t->count == t->ring_cap) {
        if (t->ring_cap < PAT(t)->capacity) {
            size_t cap = t->ring_cap ? t->ring_cap * 2 : 8;
            if (cap > PAT(t)->capacity)
                cap = PAT(t)->capacity;
            ps_history_entry *ring = malloc(cap * sizeof(*ring));
            if (!ring) {
                errno = ENOMEM;
                return 0;
            }
            for (size_t i = 0; i < t->count; i++)
                ring[i] = *entry(t, i);
            free(t->ring);
            t->ring = ring;
            t->ring_cap = cap;
            t->head = 0;
        } else {
            forget_oldest(h, t);
        }
    }
    ps_history_entry *e = &t->ring[(t->head + t->count) % t->ring_cap];
    e->offset = ++t->last;
    e->at_ms = now_ms;
    e->frame = ps_frame_ref(frame);
    t->count++;
    t->used_ms = now_ms;
    h->nmessages++;
    return e->offset;
}

long ps_history_topic_after(const ps_history_topic *t, const char *epoch, uint64_t since)
{
    if (!epoch || strcmp(epoch, t->epoch) || since > t->last)
        return -1;
    if (since == t->last)
        return (long)t->count;
    /* Offsets in the ring are consecutive: the first held is last - count + 1. */
    uint64_t first = t->last - t->count + 1;
    if (since + 1 < first)
        return -1;
    return (long)(since + 1 - first);
}

size_t ps_history_expire(ps_history *h, int64_t now_ms)
{
    size_t forgotten = 0;
    for (size_t b = 0; b < h->nbuckets; b++) {
        ps_history_topic **link = &h->buckets[b];
        while (*link) {
            ps_history_topic *t = *link;
            forgotten += forget_aged(h, t, now_ms);
            if (t->count == 0 && now_ms - t->used_ms >= PS_HISTORY_IDLE_MS) {
                *link = t->next;
                h->ntopics--;
                topic_free(h, t);
                continue;
            }
            link = &t->next;
        }
    }
    return forgotten;
}

size_t ps_history_topics(const ps_history *h)
{
    return h->ntopics;
}

size_t ps_history_messages(const ps_history *h)
{
    return h->nmessages;
}
