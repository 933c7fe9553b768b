/*
 * topics.c: topic registry, subscriptions and fan-out for one I/O thread.
 *
 * Each subscription is recorded twice, and each record knows where the other
 * one is, so either side removes it in O(1):
 *
 *   topic->slots[si]      = { sub, mi }   (the topic's subscribers)
 *   sub->mem[mi]          = { topic, si } (the subscriber's topics)
 *
 * Both arrays are dense and remove by moving their last entry into the hole,
 * fixing that entry's back index, except that while a fan-out walks a topic
 * (topic->iterating > 0) a removed slot only has its sub cleared, so the
 * walk's indices stay put; the walk skips cleared slots, and when the
 * outermost walk ends the slots are compacted and an empty topic dies. A
 * topic is never freed while a walk holds it.
 *
 * Topic names live in an open-addressing table (linear probing, load <= 1/2,
 * backward-shift deletion, so no tombstones) hashed with SipHash-1-3 under a
 * per-registry random key, so names chosen by clients cannot force
 * collisions.
 */
#include "topics.h"
#include "siphash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MIN 16 /* table slots: a power of two, never fewer */
#define VEC_MIN 4    /* first allocation of a slot or membership array */
#define SUB_INLINE 2 /* memberships kept inside the subscriber: a connection's endpoint
                      * topic and a room need no allocation of their own */
_Static_assert(VEC_MIN > SUB_INLINE, "leaving the inline slots must make room for one more");
#define PREFETCH_AHEAD 8 /* fan-out: subscribers fetched this many turns ahead */

struct topic_slot {
    ps_subscriber *sub; /* NULL: removed during a walk, awaiting compaction */
    size_t mi;          /* index of the matching record in sub->mem */
};

struct membership {
    struct topic *topic;
    size_t si; /* index of the matching record in topic->slots */
};

struct topic {
    uint64_t hash;
    struct topic_slot *slots;
    size_t nslots; /* used slots, cleared ones included */
    size_t cap;
    size_t live;        /* slots with a subscriber */
    unsigned iterating; /* fan-outs walking this topic right now */
    bool holes;         /* some slot below nslots is cleared */
    size_t len;
    char name[]; /* len bytes + NUL */
};

struct ps_subscriber {
    ps_topics *reg;
    uint64_t id;
    void *user;
    struct membership *mem; /* inline_mem until more than SUB_INLINE are needed */
    uint32_t n, cap; /* 32 bits: every connection has a subscriber, and few have many topics */
    ps_subscriber *prev, *next; /* the registry's list of subscribers */
    struct membership inline_mem[SUB_INLINE];
};

struct ps_topics {
    struct topic **table; /* cap slots, NULL when empty */
    size_t cap, count;
    uint64_t key[2];
    ps_deliver_fn deliver;
    void *deliver_ctx;
    ps_interest_fn interest;
    void *interest_ctx;
    ps_subscriber *subs;
    unsigned busy; /* publishes and interest callbacks in progress */
};

/* --- the name table --------------------------------------------------- */

/* Returns the slot index holding name, or of the empty slot where it would
 * go. The table always has an empty slot (load <= 1/2). */
static size_t table_find(const ps_topics *r, uint64_t hash, const char *name,
                         size_t len)
{
    size_t mask = r->cap - 1;
    size_t i = (size_t)hash & mask;
    struct topic *t;

    while ((t = r->table[i]) != NULL) {
        if (t->hash == hash && t->len == len &&
            (len == 0 || memcmp(t->name, name, len) == 0))
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static struct topic *lookup(const ps_topics *r, const char *name, size_t len)
{
    uint64_t hash = ps_siphash13(r->key, name, len);

    return r->table[table_find(r, hash, name, len)];
}

/* Rebuilds the table with ncap slots. Returns 0, or -ENOMEM with the table
 * unchanged. */
static int table_resize(ps_topics *r, size_t ncap)
{
    struct topic **old = r->table;
    size_t ocap = r->cap;
    struct topic **nt = calloc(ncap, sizeof(*nt));

    if (nt == NULL)
        return -ENOMEM;
    r->table = nt;
    r->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i] != NULL) {
            size_t j = (size_t)old[i]->hash & (ncap - 1);
            while (nt[j] != NULL)
                j = (j + 1) & (ncap - 1);
            nt[j] = old[i];
        }
    }
    free(old);
    return 0;
}

/* Makes room for one more topic. Returns 0 or -ENOMEM. */
static int table_reserve(ps_topics *r)
{
    if ((r->count + 1) * 2 <= r->cap)
        return 0;
    if (r->cap > SIZE_MAX / 2 / sizeof(*r->table))
        return -ENOMEM;
    return table_resize(r, r->cap * 2);
}

/* Removes t from the table, shifting back the entries its slot displaced. */
static void table_remove(ps_topics *r, const struct topic *t)
{
    size_t mask = r->cap - 1;
    size_t i = table_find(r, t->hash, t->name, t->len);
    size_t j = i;

    for (;;) {
        size_t home;

        j = (j + 1) & mask;
        if (r->table[j] == NULL)
            break;
        home = (size_t)r->table[j]->hash & mask;
        /* The entry at j may move to i unless its home lies in (i, j]. */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        r->table[i] = r->table[j];
        i = j;
    }
    r->table[i] = NULL;
    r->count--;
    /* Shrinking is an optimisation: on failure the table stays as it is. */
    if (r->cap > TABLE_MIN && r->count * 8 < r->cap)
        (void)table_resize(r, r->cap / 2);
}

/* --- topics ------------------------------------------------------------- */

static void announce(ps_topics *r, const struct topic *t, bool alive)
{
    if (r->interest == NULL)
        return;
    r->busy++;
    r->interest(r->interest_ctx, t->name, t->len, alive);
    r->busy--;
}

/* Removes a topic left with no subscriber and no walk, and frees it. */
static void topic_die(ps_topics *r, struct topic *t)
{
    table_remove(r, t);
    announce(r, t, false);
    free(t->slots);
    free(t);
}

/* Squeezes the cleared slots out of t, fixing back indices. No walk may
 * hold t. */
static void topic_compact(struct topic *t)
{
    size_t w = 0;

    for (size_t i = 0; i < t->nslots; i++) {
        struct topic_slot s = t->slots[i];
        if (s.sub == NULL)
            continue;
        t->slots[w] = s;
        s.sub->mem[s.mi].si = w;
        w++;
    }
    t->nslots = w;
    t->holes = false;
}

/* Gives back slot memory a shrunken topic no longer needs. Optional: on
 * failure the array stays as it is. */
static void topic_trim(struct topic *t)
{
    if (t->iterating == 0 && t->cap > VEC_MIN && t->nslots * 4 < t->cap) {
        size_t ncap = t->cap / 2;
        struct topic_slot *ns = realloc(t->slots, ncap * sizeof(*ns));
        if (ns != NULL) {
            t->slots = ns;
            t->cap = ncap;
        }
    }
}

/* Frees s's membership array when it is on the heap (not its inline slots). */
static void free_memberships(ps_subscriber *s)
{
    if (s->mem != s->inline_mem)
        free(s->mem);
}

/*
 * Returns the array arr (of *cap elements of size elem) grown to hold at
 * least need (need >= 1), possibly moved, updating *cap; or NULL on ENOMEM,
 * with arr and *cap unchanged.
 */
static void *vec_reserve(void *arr, size_t *cap, size_t need, size_t elem)
{
    size_t ncap;
    void *na;

    if (need <= *cap)
        return arr;
    ncap = *cap ? *cap : VEC_MIN;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem)
            return NULL;
        ncap *= 2;
    }
    na = realloc(arr, ncap * elem);
    if (na != NULL)
        *cap = ncap;
    return na;
}

/* --- the registry ------------------------------------------------------- */

ps_topics *ps_topics_new(ps_deliver_fn deliver, void *deliver_ctx)
{
    ps_topics *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->table = calloc(TABLE_MIN, sizeof(*r->table));
    if (r->table == NULL) {
        free(r);
        return NULL;
    }
    r->cap = TABLE_MIN;
    r->deliver = deliver;
    r->deliver_ctx = deliver_ctx;
    ps_random_key(r->key, r);
    return r;
}

void ps_topics_free(ps_topics *r)
{
    if (r == NULL)
        return;
    if (r->busy) {
        fputs("ps_topics_free: called during a publish or callback\n",
              stderr);
        abort();
    }
    while (r->subs != NULL) {
        ps_subscriber *s = r->subs;
        r->subs = s->next;
        free_memberships(s);
        free(s);
    }
    for (size_t i = 0; i < r->cap; i++) {
        if (r->table[i] != NULL) {
            free(r->table[i]->slots);
            free(r->table[i]);
        }
    }
    free(r->table);
    free(r);
}

void ps_topics_set_interest(ps_topics *r, ps_interest_fn fn, void *ctx)
{
    r->interest = fn;
    r->interest_ctx = fn ? ctx : NULL;
}

size_t ps_topics_publish(ps_topics *r, const char *name, size_t len,
                         ps_frame *frame, const ps_subscriber *exclude)
{
    struct topic *t = lookup(r, name, len);
    size_t n, reached = 0;

    if (t == NULL || t->live == 0 || r->deliver == NULL)
        return 0;
    /* Only the slots present now are walked; subscribers appended by the
     * callbacks wait for the next message. Slots are re-read each turn
     * because an append may move the array. */
    n = t->nslots;
    t->iterating++;
    r->busy++;
    for (size_t i = 0; i < n; i++) {
        ps_subscriber *s = t->slots[i].sub;
        /* A big topic's subscribers, and the connections they point to, are scattered
         * over more memory than the caches hold: ask for the ones a few turns ahead, so
         * that the callback does not wait for each in turn. */
        if (i + PREFETCH_AHEAD < n && t->slots[i + PREFETCH_AHEAD].sub != NULL)
            __builtin_prefetch(t->slots[i + PREFETCH_AHEAD].sub);
        if (i + PREFETCH_AHEAD / 2 < n && t->slots[i + PREFETCH_AHEAD / 2].sub != NULL)
            __builtin_prefetch(t->slots[i + PREFETCH_AHEAD / 2].sub->user);
        if (s == NULL || s == exclude)
            continue;
        if (r->deliver(r->deliver_ctx, s, frame) >= 0)
            reached++;
    }
    r->busy--;
    if (--t->iterating == 0) {
        if (t->holes)
            topic_compact(t);
        if (t->live == 0)
            topic_die(r, t);
        else
            topic_trim(t);
    }
    return reached;
}

size_t ps_topics_count(const ps_topics *r)
{
    return r->count;
}

size_t ps_topics_subscriber_count(const ps_topics *r, const char *name,
                                  size_t len)
{
    const struct topic *t = lookup(r, name, len);

    return t ? t->live : 0;
}

/* --- subscribers ------------------------------------------------------- */

ps_subscriber *ps_subscriber_new(ps_topics *r, uint64_t id, void *user)
{
    ps_subscriber *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->reg = r;
    s->id = id;
    s->user = user;
    s->mem = s->inline_mem;
    s->cap = SUB_INLINE;
    s->next = r->subs;
    if (r->subs != NULL)
        r->subs->prev = s;
    r->subs = s;
    return s;
}

void ps_subscriber_free(ps_subscriber *s)
{
    ps_topics *r;

    if (s == NULL)
        return;
    r = s->reg;
    (void)ps_topics_unsubscribe_all(s);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        r->subs = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    free_memberships(s);
    free(s);
}

uint64_t ps_subscriber_id(const ps_subscriber *s)
{
    return s->id;
}

void *ps_subscriber_user(const ps_subscriber *s)
{
    return s->user;
}

size_t ps_subscriber_topic_count(const ps_subscriber *s)
{
    return s->n;
}

const char *ps_subscriber_topic(const ps_subscriber *s, size_t i, size_t *len)
{
    if (i >= s->n)
        return NULL;
    if (len != NULL)
        *len = s->mem[i].topic->len;
    return s->mem[i].topic->name;
}

/* Returns the index in s->mem of s's membership of t, or SIZE_MAX. Searches
 * whichever side is shorter. */
static size_t find_membership(const ps_subscriber *s, const struct topic *t)
{
    if (s->n <= t->nslots) {
        for (size_t mi = 0; mi < s->n; mi++)
            if (s->mem[mi].topic == t)
                return mi;
    } else {
        for (size_t si = 0; si < t->nslots; si++)
            if (t->slots[si].sub == s)
                return t->slots[si].mi;
    }
    return SIZE_MAX;
}

bool ps_topics_is_subscribed(const ps_subscriber *s, const char *name,
                             size_t len)
{
    const struct topic *t = lookup(s->reg, name, len);

    return t != NULL && find_membership(s, t) != SIZE_MAX;
}

/* Makes an empty topic and puts it in the table (room was reserved).
 * Returns it, or NULL on ENOMEM. */
static struct topic *topic_new(ps_topics *r, uint64_t hash, size_t at,
                               const char *name, size_t len)
{
    struct topic *t;

    if (len > SIZE_MAX - sizeof(*t) - 1)
        return NULL;
    t = calloc(1, sizeof(*t) + len + 1);
    if (t == NULL)
        return NULL;
    t->hash = hash;
    t->len = len;
    if (len > 0)
        memcpy(t->name, name, len);
    t->name[len] = '\0';
    r->table[at] = t;
    r->count++;
    return t;
}

int ps_topics_subscribe(ps_subscriber *s, const char *name, size_t len)
{
    ps_topics *r = s->reg;
    uint64_t hash = ps_siphash13(r->key, name, len);
    size_t at = table_find(r, hash, name, len);
    struct topic *t = r->table[at];
    struct membership *mem;
    struct topic_slot *slots;
    bool born = false;

    if (t != NULL && find_membership(s, t) != SIZE_MAX)
        return 0;
    if (s->n >= UINT32_MAX / 2)
        return -ENOMEM; /* cap, twice n at most, must stay in 32 bits */
    if (s->mem == s->inline_mem && s->n + 1 > SUB_INLINE) {
        /* Out of the inline slots: the array moves to the heap. */
        mem = malloc(VEC_MIN * sizeof(*mem));
        if (mem == NULL)
            return -ENOMEM;
        memcpy(mem, s->inline_mem, s->n * sizeof(*mem));
        s->cap = VEC_MIN;
    } else {
        size_t cap = s->cap;
        mem = vec_reserve(s->mem, &cap, (size_t)s->n + 1, sizeof(*mem));
        if (mem == NULL)
            return -ENOMEM;
        s->cap = (uint32_t)cap;
    }
    s->mem = mem;
    if (t == NULL) {
        if (table_reserve(r) < 0)
            return -ENOMEM;
        /* The table may have been rebuilt: find the empty slot again. */
        at = table_find(r, hash, name, len);
        t = topic_new(r, hash, at, name, len);
        if (t == NULL)
            return -ENOMEM;
        born = true;
    }
    slots = vec_reserve(t->slots, &t->cap, t->nslots + 1, sizeof(*slots));
    if (slots == NULL) {
        if (born) {
            table_remove(r, t);
            free(t);
        }
        return -ENOMEM;
    }
    t->slots = slots;
    t->slots[t->nslots] = (struct topic_slot){.sub = s, .mi = s->n};
    s->mem[s->n] = (struct membership){.topic = t, .si = t->nslots};
    t->nslots++;
    t->live++;
    s->n++;
    if (born)
        announce(r, t, true);
    return 1;
}

/* Removes membership mi of s from both sides; the topic dies if it is left
 * empty and no walk holds it. */
static void detach(ps_subscriber *s, size_t mi)
{
    struct membership m = s->mem[mi];
    struct topic *t = m.topic;
    size_t last;

    if (t->iterating) {
        t->slots[m.si].sub = NULL;
        t->holes = true;
    } else {
        last = t->nslots - 1;
        if (m.si != last) {
            t->slots[m.si] = t->slots[last];
            t->slots[m.si].sub->mem[t->slots[m.si].mi].si = m.si;
        }
        t->nslots--;
    }
    t->live--;

    last = s->n - 1;
    if (mi != last) {
        s->mem[mi] = s->mem[last];
        s->mem[mi].topic->slots[s->mem[mi].si].mi = mi;
    }
    s->n--;

    if (t->iterating == 0) {
        if (t->live == 0)
            topic_die(s->reg, t);
        else
            topic_trim(t);
    }
}

int ps_topics_unsubscribe(ps_subscriber *s, const char *name, size_t len)
{
    struct topic *t = lookup(s->reg, name, len);
    size_t mi;

    if (t == NULL)
        return 0;
    mi = find_membership(s, t);
    if (mi == SIZE_MAX)
        return 0;
    detach(s, mi);
    return 1;
}

size_t ps_topics_unsubscribe_all(ps_subscriber *s)
{
    size_t n = s->n;

    while (s->n > 0)
        detach(s, s->n - 1);
    free_memberships(s);
    s->mem = s->inline_mem;
    s->cap = SUB_INLINE;
    return n;
}
