/*
 * presence.c: the presence table of every origin a bus reaches (see presence.h).
 *
 * Members live in three lists at once: their topic's (join order, what a listing walks),
 * their origin's (what a snapshot or a drop walks) and a hash chain keyed by (origin, topic,
 * id) (what a delta looks up). This origin is origins[0] and is kept like any other, so a
 * listing and a count need no second table.
 *
 * Nothing is sent and no callback runs under the lock: the messages a call produces are
 * encoded into a list under it and handed to the send callback after it, and dropped
 * members are unlinked under it and reported after.
 */
#include "presence.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "envelope.h" /* ps_utf8_valid */

#define HEAD_BYTES (2u + 8u + 8u + 8u)
#define PR_BURIED 64u

/* ---- bytes ------------------------------------------------------------------------------ */

typedef struct pr_buf {
    unsigned char *data;
    size_t len, cap;
    int failed; /* an allocation failed: the buffer is unusable */
} pr_buf;

static void buf_need(pr_buf *b, size_t more)
{
    if (b->failed)
        return;
    if (b->cap - b->len >= more)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = 1;
        return;
    }
    b->data = d;
    b->cap = cap;
}

static void buf_put(pr_buf *b, const void *src, size_t n)
{
    buf_need(b, n);
    if (!b->failed && n) {
        memcpy(b->data + b->len, src, n);
        b->len += n;
    }
}

static void buf_u8(pr_buf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    buf_put(b, &c, 1);
}

static void buf_uint(pr_buf *b, uint64_t v, int bytes)
{
    unsigned char tmp[8];
    for (int i = 0; i < bytes; i++)
        tmp[i] = (unsigned char)(v >> (8 * i));
    buf_put(b, tmp, (size_t)bytes);
}

static uint64_t get_uint(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A list of encoded messages waiting to be sent once the lock is let go. */
typedef struct pr_msg {
    struct pr_msg *next;
    uint32_t to;
    size_t len;
    unsigned char data[];
} pr_msg;

typedef struct pr_out {
    pr_msg *head, *tail;
    size_t bytes, count;
} pr_out;

static int out_add(pr_out *o, uint32_t to, const pr_buf *b)
{
    if (b->failed)
        return -ENOMEM;
    pr_msg *m = malloc(sizeof(*m) + b->len);
    if (!m)
        return -ENOMEM;
    m->next = NULL;
    m->to = to;
    m->len = b->len;
    memcpy(m->data, b->data, b->len);
    if (o->tail)
        o->tail->next = m;
    else
        o->head = m;
    o->tail = m;
    o->bytes += b->len;
    o->count++;
    return 0;
}

static void out_free(pr_out *o)
{
    pr_msg *m = o->head;
    while (m) {
        pr_msg *next = m->next;
        free(m);
        m = next;
    }
    o->head = o->tail = NULL;
    o->bytes = o->count = 0;
}

/* Sends and frees every message of o (outside the lock). Returns how many. */
static size_t out_send(pr_out *o, ps_presence_send_fn send, void *ctx)
{
    size_t n = 0;
    for (pr_msg *m = o->head; m; m = m->next, n++)
        send(ctx, m->to, m->data, m->len);
    out_free(o);
    return n;
}

/* ---- the table ---------------------------------------------------------------------------- */

struct pr_topic;
struct pr_origin;

typedef struct pr_member {
    struct pr_member *hnext;         /* hash chain */
    struct pr_member *tprev, *tnext; /* the topic's members, in join order */
    struct pr_member *oprev, *onext; /* the origin's members */
    struct pr_topic *topic;
    struct pr_origin *origin;
    uint64_t hash;
    uint32_t id_len, info_len;
    char *info; /* info_len bytes, its own allocation: a join may replace it */
    char id[];
} pr_member;

typedef struct pr_topic {
    struct pr_topic *hnext;
    pr_member *head, *tail;
    size_t count;
    uint64_t hash;
    uint32_t len;
    char name[];
} pr_topic;

enum origin_state {
    O_NEW,      /* heard from, no snapshot yet: its deltas are not applied */
    O_SYNCED,   /* holds every member at seq */
    O_LOADING,  /* between the parts of a snapshot (snap_seq, snap_next) */
    O_SKIPPING  /* synced, and skipping a snapshot of the sequence it already holds */
};

typedef struct pr_origin {
    uint64_t id, rank, seq;
    uint64_t heard_ms, asked_ms;
    int asked; /* asked_ms means something */
    enum origin_state state;
    uint64_t snap_seq;
    uint32_t snap_next;
    uint32_t link;
    pr_member *head, *tail;
    size_t count;
} pr_origin;

struct ps_presence {
    pthread_mutex_t lock;
    pr_origin **origins; /* [0] is this one */
    size_t norigins;
    pr_member **mbuckets;
    size_t nmbuckets, nmembers;
    pr_topic **tbuckets;
    size_t ntbuckets, ntopics;
    size_t remote_members;
    pr_out outbox;
    int shared; /* a bus carries this origin's changes: queue them */
    int resync; /* the outbox overflowed: send a snapshot instead of it */
    uint64_t seed; /* mixed into every hash: a peer cannot aim its names at one chain */
    /* The last origins whose leaves this table announced: if one comes back (it was only
     * silent), the joins of its members are announced by the same table. */
    uint64_t buried[PR_BURIED];
    size_t nburied, buried_next;
    ps_presence_stats stats;
};

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static uint64_t topic_hash(const ps_presence *p, const char *t, size_t n)
{
    return fnv(1469598103934665603ULL ^ p->seed, t, n);
}

static uint64_t member_hash(uint64_t origin, uint64_t th, const char *id, size_t n)
{
    uint64_t h = fnv(th, &origin, sizeof(origin));
    return fnv(h, id, n);
}

static void *grow_table(void *old, size_t *nbuckets, size_t elem_next_offset, int is_member)
{
    size_t n = *nbuckets * 2;
    void **nb = calloc(n, sizeof(void *));
    if (!nb)
        return old; /* longer chains, still correct */
    void **ob = old;
    for (size_t i = 0; i < *nbuckets; i++) {
        char *e = ob[i];
        while (e) {
            char *next = *(char **)(e + elem_next_offset);
            uint64_t h = is_member ? ((pr_member *)e)->hash : ((pr_topic *)e)->hash;
            size_t j = (size_t)(h & (n - 1));
            *(void **)(e + elem_next_offset) = nb[j];
            nb[j] = e;
            e = next;
        }
    }
    free(old);
    *nbuckets = n;
    return nb;
}

static pr_topic **topic_slot(ps_presence *p, const char *t, size_t n, uint64_t h)
{
    pr_topic **pp = &p->tbuckets[h & (p->ntbuckets - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->len == n && !memcmp((*pp)->name, t, n)))
        pp = &(*pp)->hnext;
    return pp;
}

static pr_topic *topic_get(ps_presence *p, const char *t, size_t n, int create)
{
    uint64_t h = topic_hash(p, t, n);
    pr_topic **pp = topic_slot(p, t, n, h);
    if (*pp || !create)
        return *pp;
    pr_topic *tp = calloc(1, sizeof(*tp) + n);
    if (!tp)
        return NULL;
    tp->hash = h;
    tp->len = (uint32_t)n;
    memcpy(tp->name, t, n);
    *pp = tp;
    if (++p->ntopics > p->ntbuckets)
        p->tbuckets = grow_table(p->tbuckets, &p->ntbuckets, offsetof(pr_topic, hnext), 0);
    return tp;
}

static void topic_release(ps_presence *p, pr_topic *tp)
{
    if (tp->count)
        return;
    pr_topic **pp = topic_slot(p, tp->name, tp->len, tp->hash);
    if (*pp == tp) {
        *pp = tp->hnext;
        p->ntopics--;
    }
    free(tp);
}

static pr_member **member_slot(ps_presence *p, const pr_origin *o, const pr_topic *tp,
                               const char *id, size_t n, uint64_t h)
{
    pr_member **pp = &p->mbuckets[h & (p->nmbuckets - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->origin == o && (*pp)->topic == tp &&
                    (*pp)->id_len == n && !memcmp((*pp)->id, id, n)))
        pp = &(*pp)->hnext;
    return pp;
}

/* Unlinks m from every list (its topic freed when it empties); the caller frees m. */
static void member_unlink(ps_presence *p, pr_member *m)
{
    pr_member **pp = member_slot(p, m->origin, m->topic, m->id, m->id_len, m->hash);
    if (*pp == m)
        *pp = m->hnext;
    p->nmembers--;
    pr_topic *tp = m->topic;
    if (m->tprev)
        m->tprev->tnext = m->tnext;
    else
        tp->head = m->tnext;
    if (m->tnext)
        m->tnext->tprev = m->tprev;
    else
        tp->tail = m->tprev;
    tp->count--;
    pr_origin *o = m->origin;
    if (m->oprev)
        m->oprev->onext = m->onext;
    else
        o->head = m->onext;
    if (m->onext)
        m->onext->oprev = m->oprev;
    else
        o->tail = m->oprev;
    o->count--;
    if (o != p->origins[0])
        p->remote_members--;
    topic_release(p, tp);
    m->topic = NULL;
}

static void member_free(pr_member *m)
{
    free(m->info);
    free(m);
}

/* Sets (creating when absent) o's member id on topic. 1 joined, 0 replaced, <0 errno. */
static int member_set(ps_presence *p, pr_origin *o, const char *t, size_t tl, const char *id,
                      size_t il, const char *info, size_t infl)
{
    bool local = o == p->origins[0];
    pr_topic *tp = topic_get(p, t, tl, 1);
    if (!tp)
        return -ENOMEM;
    uint64_t h = member_hash(o->id, tp->hash, id, il);
    pr_member **pp = member_slot(p, o, tp, id, il, h);
    char *copy = malloc(infl ? infl : 1);
    if (!copy) {
        topic_release(p, tp);
        return -ENOMEM;
    }
    memcpy(copy, info, infl);
    if (*pp) {
        free((*pp)->info);
        (*pp)->info = copy;
        (*pp)->info_len = (uint32_t)infl;
        return 0;
    }
    if (!local && p->remote_members >= PS_PRESENCE_MAX_REMOTE) {
        free(copy);
        topic_release(p, tp);
        p->stats.refused++;
        return -ENOSPC;
    }
    pr_member *m = calloc(1, sizeof(*m) + il);
    if (!m) {
        free(copy);
        topic_release(p, tp);
        return -ENOMEM;
    }
    m->hash = h;
    m->topic = tp;
    m->origin = o;
    m->id_len = (uint32_t)il;
    memcpy(m->id, id, il);
    m->info = copy;
    m->info_len = (uint32_t)infl;
    *pp = m;
    if (++p->nmembers > p->nmbuckets)
        p->mbuckets = grow_table(p->mbuckets, &p->nmbuckets, offsetof(pr_member, hnext), 1);
    m->tprev = tp->tail;
    if (tp->tail)
        tp->tail->tnext = m;
    else
        tp->head = m;
    tp->tail = m;
    tp->count++;
    m->oprev = o->tail;
    if (o->tail)
        o->tail->onext = m;
    else
        o->head = m;
    o->tail = m;
    o->count++;
    if (!local)
        p->remote_members++;
    return 1;
}

static pr_member *member_find(ps_presence *p, pr_origin *o, const char *t, size_t tl,
                              const char *id, size_t il)
{
    pr_topic *tp = topic_get(p, t, tl, 0);
    if (!tp)
        return NULL;
    uint64_t h = member_hash(o->id, tp->hash, id, il);
    return *member_slot(p, o, tp, id, il, h);
}

/* Members an origin took with it (or brought back), copied so that they can be reported
 * outside the lock. */
typedef struct pr_dead {
    struct pr_dead *next;
    size_t topic_len, id_len, info_len;
    char data[]; /* topic, id, info */
} pr_dead;

typedef struct pr_gone {
    pr_dead *head, *tail;
    int kind; /* PS_PRESENCE_LEAVE or PS_PRESENCE_JOIN */
    int announce;
} pr_gone;

/* Appends a copy of m to g (a member that cannot be copied goes unreported: out of memory,
 * nothing else can be done). */
static void gone_add(pr_gone *g, const pr_member *m)
{
    size_t tl = m->topic->len;
    pr_dead *d = malloc(sizeof(*d) + tl + m->id_len + m->info_len);
    if (!d)
        return;
    d->next = NULL;
    d->topic_len = tl;
    d->id_len = m->id_len;
    d->info_len = m->info_len;
    memcpy(d->data, m->topic->name, tl);
    memcpy(d->data + tl, m->id, m->id_len);
    memcpy(d->data + tl + m->id_len, m->info, m->info_len);
    if (g->tail)
        g->tail->next = d;
    else
        g->head = d;
    g->tail = d;
}

/* Unlinks and frees every member of o, keeping a copy of each in g (when not NULL). */
static void origin_clear(ps_presence *p, pr_origin *o, pr_gone *g)
{
    while (o->head) {
        pr_member *m = o->head;
        if (g)
            gone_add(g, m);
        member_unlink(p, m);
        member_free(m);
    }
}

static void gone_report(pr_gone *g, ps_presence_event_fn event, void *ctx)
{
    pr_dead *d = g->head;
    while (d) {
        pr_dead *next = d->next;
        if (event)
            event(ctx, g->kind, d->data, d->topic_len, d->data + d->topic_len, d->id_len,
                  d->data + d->topic_len + d->id_len, d->info_len, g->announce);
        free(d);
        d = next;
    }
    g->head = g->tail = NULL;
}

static void bury(ps_presence *p, uint64_t id)
{
    p->buried[p->buried_next] = id;
    p->buried_next = (p->buried_next + 1) % PR_BURIED;
    if (p->nburied < PR_BURIED)
        p->nburied++;
}

/* Whether id was buried here (it is not any more). */
static int unbury(ps_presence *p, uint64_t id)
{
    for (size_t i = 0; i < p->nburied; i++)
        if (p->buried[i] == id) {
            p->buried[i] = 0; /* no origin is 0 */
            return 1;
        }
    return 0;
}

static pr_origin *origin_find(ps_presence *p, uint64_t id, size_t *index)
{
    for (size_t i = 0; i < p->norigins; i++)
        if (p->origins[i]->id == id) {
            if (index)
                *index = i;
            return p->origins[i];
        }
    return NULL;
}

static pr_origin *origin_add(ps_presence *p, uint64_t id, uint64_t rank)
{
    if (p->norigins - 1 >= PS_PRESENCE_MAX_ORIGINS) {
        p->stats.refused++;
        return NULL;
    }
    pr_origin **arr = realloc(p->origins, (p->norigins + 1) * sizeof(*arr));
    if (!arr)
        return NULL;
    p->origins = arr;
    pr_origin *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->id = id;
    o->rank = rank;
    o->state = O_NEW;
    arr[p->norigins++] = o;
    return o;
}

/* Removes origins[index] (not 0) into g. */
static void origin_remove(ps_presence *p, size_t index, pr_gone *g)
{
    pr_origin *o = p->origins[index];
    origin_clear(p, o, g);
    p->origins[index] = p->origins[--p->norigins];
    free(o);
}

static int expired(const pr_origin *o, uint64_t now_ms)
{
    return now_ms - o->heard_ms > PS_PRESENCE_EXPIRY_MS;
}

/* Whether this origin is the one to announce: the lowest (rank, id) of those left (those
 * expired at now_ms, unless now_ms is 0, and skip are not left). */
static int lowest_alive(const ps_presence *p, uint64_t now_ms, const pr_origin *skip)
{
    const pr_origin *self = p->origins[0];
    for (size_t i = 1; i < p->norigins; i++) {
        const pr_origin *o = p->origins[i];
        if (o == skip || (now_ms && expired(o, now_ms)))
            continue;
        if (o->rank < self->rank || (o->rank == self->rank && o->id < self->id))
            return 0;
    }
    return 1;
}

/* ---- encoding ------------------------------------------------------------------------- */

static void put_head(pr_buf *b, int kind, const pr_origin *self)
{
    buf_u8(b, 'P');
    buf_u8(b, (unsigned)kind);
    buf_uint(b, self->id, 8);
    buf_uint(b, self->rank, 8);
    buf_uint(b, self->seq, 8);
}

static void put_member(pr_buf *b, const char *t, size_t tl, const char *id, size_t il,
                       const char *info, size_t infl)
{
    buf_uint(b, tl, 2);
    buf_put(b, t, tl);
    buf_uint(b, il, 2);
    buf_put(b, id, il);
    buf_uint(b, infl, 4);
    buf_put(b, info, infl);
}

/* Queues the outbox delta of a change just made (under the lock). */
static void outbox_delta(ps_presence *p, int kind, const char *t, size_t tl, const char *id,
                         size_t il, const char *info, size_t infl)
{
    if (!p->shared || p->resync)
        return; /* no bus; or the snapshot that replaces the outbox will carry it */
    pr_buf b = {0};
    put_head(&b, kind, p->origins[0]);
    if (kind == PS_PRESENCE_JOIN) {
        put_member(&b, t, tl, id, il, info, infl);
    } else {
        buf_uint(&b, tl, 2);
        buf_put(&b, t, tl);
        buf_uint(&b, il, 2);
        buf_put(&b, id, il);
    }
    if (p->outbox.bytes + b.len > PS_PRESENCE_OUTBOX_BYTES ||
        out_add(&p->outbox, PS_PRESENCE_ALL, &b)) {
        out_free(&p->outbox);
        p->resync = 1;
    }
    free(b.data);
}

/* Encodes this origin's snapshot for link to into o (under the lock). */
static int encode_snapshot(ps_presence *p, uint32_t to, pr_out *o)
{
    const pr_origin *self = p->origins[0];
    const pr_member *m = self->head;
    uint32_t part = 0;
    do {
        pr_buf b = {0};
        put_head(&b, PS_PRESENCE_SNAP, self);
        buf_uint(&b, part, 4);
        size_t last_at = b.len;
        buf_u8(&b, 0);
        size_t count_at = b.len;
        buf_uint(&b, 0, 4);
        uint32_t count = 0;
        while (m && (count == 0 || b.len < PS_PRESENCE_PART_BYTES)) {
            put_member(&b, m->topic->name, m->topic->len, m->id, m->id_len, m->info,
                       m->info_len);
            count++;
            m = m->onext;
        }
        if (!b.failed) {
            b.data[last_at] = m == NULL;
            for (int i = 0; i < 4; i++)
                b.data[count_at + (size_t)i] = (unsigned char)(count >> (8 * i));
        }
        int rc = out_add(o, to, &b);
        free(b.data);
        if (rc)
            return rc;
        part++;
    } while (m);
    return 0;
}

static void encode_ask(const ps_presence *p, uint64_t target, uint32_t to, pr_out *o)
{
    pr_buf b = {0};
    put_head(&b, PS_PRESENCE_ASK, p->origins[0]);
    buf_uint(&b, target, 8);
    (void)out_add(o, to, &b);
    free(b.data);
}

/* ---- decoding ------------------------------------------------------------------------- */

typedef struct pr_view {
    int kind;
    uint64_t origin, rank, seq;
    const unsigned char *body; /* after the head */
    size_t body_len;
    uint32_t part, count;      /* SNAP */
    int last;                  /* SNAP */
    const unsigned char *members; /* SNAP: the first member */
    uint64_t target;           /* ASK */
} pr_view;

typedef struct pr_field {
    const char *topic, *id, *info;
    size_t topic_len, id_len, info_len;
} pr_field;

/* Reads one member (info when with_info) at *at within end. 0, or -1 when malformed. */
static int read_member(const unsigned char **at, const unsigned char *end, int with_info,
                       pr_field *f)
{
    const unsigned char *q = *at;
    if ((size_t)(end - q) < 2)
        return -1;
    f->topic_len = (size_t)get_uint(q, 2);
    q += 2;
    if (f->topic_len < 1 || (size_t)(end - q) < f->topic_len + 2)
        return -1;
    f->topic = (const char *)q;
    q += f->topic_len;
    f->id_len = (size_t)get_uint(q, 2);
    q += 2;
    if (f->id_len < 1 || f->id_len > PS_PRESENCE_MAX_ID || (size_t)(end - q) < f->id_len)
        return -1;
    if (!ps_utf8_valid((const unsigned char *)f->topic, f->topic_len) ||
        !ps_utf8_valid(q, f->id_len))
        return -1;
    f->id = (const char *)q;
    q += f->id_len;
    f->info = NULL;
    f->info_len = 0;
    if (with_info) {
        if ((size_t)(end - q) < 4)
            return -1;
        f->info_len = (size_t)get_uint(q, 4);
        q += 4;
        if (f->info_len > PS_PRESENCE_MAX_INFO || (size_t)(end - q) < f->info_len)
            return -1;
        /* What Python gave: a JSON object. The shape is checked here, the rest where it is
         * parsed (robyn/realtime.py leaves out a member whose info does not parse). */
        if (f->info_len < 2 || q[0] != '{' || q[f->info_len - 1] != '}' ||
            !ps_utf8_valid(q, f->info_len))
            return -1;
        f->info = (const char *)q;
        q += f->info_len;
    }
    *at = q;
    return 0;
}

/* Checks a whole message. 0 with v filled, or -EPROTO. */
static int decode(const unsigned char *msg, size_t len, pr_view *v)
{
    if (len < HEAD_BYTES || len > PS_PRESENCE_MAX_MESSAGE || msg[0] != 'P')
        return -EPROTO;
    memset(v, 0, sizeof(*v));
    v->kind = msg[1];
    v->origin = get_uint(msg + 2, 8);
    v->rank = get_uint(msg + 10, 8);
    v->seq = get_uint(msg + 18, 8);
    v->body = msg + HEAD_BYTES;
    v->body_len = len - HEAD_BYTES;
    if (v->origin == 0)
        return -EPROTO;
    const unsigned char *q = v->body, *end = v->body + v->body_len;
    pr_field f;
    switch (v->kind) {
    case PS_PRESENCE_JOIN:
        if (read_member(&q, end, 1, &f))
            return -EPROTO;
        break;
    case PS_PRESENCE_LEAVE:
        if (read_member(&q, end, 0, &f))
            return -EPROTO;
        break;
    case PS_PRESENCE_BEAT:
        break;
    case PS_PRESENCE_SNAP:
        if (v->body_len < 9)
            return -EPROTO;
        v->part = (uint32_t)get_uint(q, 4);
        if (q[4] > 1)
            return -EPROTO;
        v->last = q[4];
        v->count = (uint32_t)get_uint(q + 5, 4);
        q += 9;
        v->members = q;
        /* Each member takes at least 6 bytes: a count the body cannot hold is refused
         * before any walk. */
        if (v->count > (size_t)(end - q) / 6)
            return -EPROTO;
        for (uint32_t i = 0; i < v->count; i++)
            if (read_member(&q, end, 1, &f))
                return -EPROTO;
        break;
    case PS_PRESENCE_ASK:
        if (v->body_len != 8)
            return -EPROTO;
        v->target = get_uint(q, 8);
        q += 8;
        break;
    default:
        return -EPROTO;
    }
    return q == end ? 0 : -EPROTO;
}

/* ---- the public calls ------------------------------------------------------------------- */

ps_presence *ps_presence_new(uint64_t origin, uint64_t rank)
{
    if (origin == 0) {
        errno = EINVAL;
        return NULL;
    }
    ps_presence *p = calloc(1, sizeof(*p));
    if (!p)
        goto nomem;
    p->nmbuckets = p->ntbuckets = 64;
    p->mbuckets = calloc(p->nmbuckets, sizeof(*p->mbuckets));
    p->tbuckets = calloc(p->ntbuckets, sizeof(*p->tbuckets));
    p->origins = calloc(1, sizeof(*p->origins));
    pr_origin *self = p->origins ? calloc(1, sizeof(*self)) : NULL;
    if (!p->mbuckets || !p->tbuckets || !self) {
        free(self);
        free(p->origins);
        free(p->mbuckets);
        free(p->tbuckets);
        free(p);
        goto nomem;
    }
    self->id = origin;
    self->rank = rank;
    self->state = O_SYNCED;
    p->origins[0] = self;
    p->norigins = 1;
    if (getrandom(&p->seed, sizeof(p->seed), 0) != (ssize_t)sizeof(p->seed))
        p->seed = (uint64_t)(uintptr_t)p ^ origin; /* no entropy source: still not fixed */
    pthread_mutex_init(&p->lock, NULL);
    return p;
nomem:
    errno = ENOMEM;
    return NULL;
}

void ps_presence_free(ps_presence *p)
{
    if (!p)
        return;
    while (p->norigins > 1)
        origin_remove(p, p->norigins - 1, NULL);
    origin_clear(p, p->origins[0], NULL);
    free(p->origins[0]);
    free(p->origins);
    free(p->mbuckets);
    free(p->tbuckets);
    out_free(&p->outbox);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

uint64_t ps_presence_origin(const ps_presence *p)
{
    return p->origins[0]->id;
}

void ps_presence_set_origin(ps_presence *p, uint64_t origin)
{
    if (origin == 0)
        return;
    pthread_mutex_lock(&p->lock);
    /* The member hashes include the origin: rehash this origin's members (none, at start,
     * but nothing here depends on it). */
    pr_origin *self = p->origins[0];
    pr_member *m = self->head;
    uint64_t old = self->id;
    self->id = origin;
    for (; m; m = m->onext) {
        pr_member **pp = member_slot(p, self, m->topic, m->id, m->id_len, m->hash);
        if (*pp == m)
            *pp = m->hnext;
        m->hash = member_hash(origin, m->topic->hash, m->id, m->id_len);
        pr_member **head = &p->mbuckets[m->hash & (p->nmbuckets - 1)];
        m->hnext = *head;
        *head = m;
    }
    if (self->rank == old) /* off the siblings bus the rank is the id */
        self->rank = origin;
    pthread_mutex_unlock(&p->lock);
}

void ps_presence_set_shared(ps_presence *p, int shared)
{
    pthread_mutex_lock(&p->lock);
    p->shared = shared;
    if (!shared) {
        out_free(&p->outbox);
        p->resync = 0;
    }
    pthread_mutex_unlock(&p->lock);
}

void ps_presence_set_rank(ps_presence *p, uint64_t rank)
{
    pthread_mutex_lock(&p->lock);
    p->origins[0]->rank = rank;
    pthread_mutex_unlock(&p->lock);
}

int ps_presence_join(ps_presence *p, const char *topic, size_t topic_len, const char *id,
                     size_t id_len, const char *info, size_t info_len)
{
    if (topic_len < 1 || topic_len > PS_PRESENCE_MAX_TOPIC || id_len < 1 ||
        id_len > PS_PRESENCE_MAX_ID || info_len > PS_PRESENCE_MAX_INFO)
        return -EINVAL;
    pthread_mutex_lock(&p->lock);
    pr_origin *self = p->origins[0];
    int rc = member_set(p, self, topic, topic_len, id, id_len, info, info_len);
    if (rc >= 0) {
        self->seq++;
        outbox_delta(p, PS_PRESENCE_JOIN, topic, topic_len, id, id_len, info, info_len);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int ps_presence_leave(ps_presence *p, const char *topic, size_t topic_len, const char *id,
                      size_t id_len)
{
    pthread_mutex_lock(&p->lock);
    pr_origin *self = p->origins[0];
    pr_member *m = member_find(p, self, topic, topic_len, id, id_len);
    if (m) {
        member_unlink(p, m);
        member_free(m);
        self->seq++;
        outbox_delta(p, PS_PRESENCE_LEAVE, topic, topic_len, id, id_len, NULL, 0);
    }
    pthread_mutex_unlock(&p->lock);
    return m != NULL;
}

size_t ps_presence_count(ps_presence *p, const char *topic, size_t topic_len)
{
    pthread_mutex_lock(&p->lock);
    pr_topic *tp = topic_get(p, topic, topic_len, 0);
    size_t n = tp ? tp->count : 0;
    pthread_mutex_unlock(&p->lock);
    return n;
}

long ps_presence_copy(ps_presence *p, const char *topic, size_t topic_len, unsigned char **out,
                      size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    pthread_mutex_lock(&p->lock);
    pr_topic *tp = topic_get(p, topic, topic_len, 0);
    long n = 0;
    if (tp && tp->count) {
        pr_buf b = {0};
        for (pr_member *m = tp->head; m; m = m->tnext, n++) {
            buf_u8(&b, m->origin == p->origins[0]);
            buf_uint(&b, m->id_len, 2);
            buf_put(&b, m->id, m->id_len);
            buf_uint(&b, m->info_len, 4);
            buf_put(&b, m->info, m->info_len);
        }
        if (b.failed) {
            free(b.data);
            n = -ENOMEM;
        } else {
            *out = b.data;
            *out_len = b.len;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

size_t ps_presence_flush(ps_presence *p, ps_presence_send_fn send, void *ctx)
{
    pr_out o = {0};
    pthread_mutex_lock(&p->lock);
    if (p->resync) {
        if (encode_snapshot(p, PS_PRESENCE_ALL, &o) == 0)
            p->resync = 0;
        else
            out_free(&o); /* tried again at the next flush */
    } else {
        o = p->outbox;
        memset(&p->outbox, 0, sizeof(p->outbox));
    }
    pthread_mutex_unlock(&p->lock);
    return out_send(&o, send, ctx);
}

void ps_presence_snapshot(ps_presence *p, ps_presence_send_fn send, void *ctx, uint32_t to)
{
    pr_out o = {0};
    pthread_mutex_lock(&p->lock);
    if (encode_snapshot(p, to, &o))
        out_free(&o); /* out of memory: the receiver asks again after the next beat */
    pthread_mutex_unlock(&p->lock);
    out_send(&o, send, ctx);
}

void ps_presence_ask_all(ps_presence *p, ps_presence_send_fn send, void *ctx, uint32_t to)
{
    pr_out o = {0};
    pthread_mutex_lock(&p->lock);
    encode_ask(p, 0, to, &o);
    p->stats.asked++;
    pthread_mutex_unlock(&p->lock);
    out_send(&o, send, ctx);
}

size_t ps_presence_tick(ps_presence *p, uint64_t now_ms, int may_announce,
                        ps_presence_send_fn send, void *ctx, ps_presence_event_fn event,
                        void *event_ctx)
{
    pr_out o = {0};
    pr_gone g = {.kind = PS_PRESENCE_LEAVE};
    size_t dropped = 0;
    pthread_mutex_lock(&p->lock);
    pr_buf b = {0};
    put_head(&b, PS_PRESENCE_BEAT, p->origins[0]);
    (void)out_add(&o, PS_PRESENCE_ALL, &b);
    free(b.data);
    /* Who announces is decided among those that stay: before any is removed. */
    g.announce = may_announce && lowest_alive(p, now_ms, NULL);
    for (size_t i = p->norigins; i-- > 1;) {
        if (expired(p->origins[i], now_ms)) {
            if (g.announce)
                bury(p, p->origins[i]->id);
            origin_remove(p, i, &g);
            dropped++;
        }
    }
    p->stats.expired += dropped;
    pthread_mutex_unlock(&p->lock);
    out_send(&o, send, ctx);
    gone_report(&g, event, event_ctx);
    return dropped;
}

int ps_presence_drop(ps_presence *p, uint64_t origin, ps_presence_event_fn event, void *ctx)
{
    pr_gone g = {.kind = PS_PRESENCE_LEAVE};
    size_t i;
    pthread_mutex_lock(&p->lock);
    pr_origin *o = origin != p->origins[0]->id ? origin_find(p, origin, &i) : NULL;
    if (o) {
        g.announce = lowest_alive(p, 0, o);
        if (g.announce)
            bury(p, origin);
        origin_remove(p, i, &g);
        p->stats.dropped++;
    }
    pthread_mutex_unlock(&p->lock);
    gone_report(&g, event, ctx);
    return o != NULL;
}

/* Asks o for its snapshot, at most once per refresh period (under the lock). */
static void ask(ps_presence *p, pr_origin *o, uint64_t now_ms, pr_out *out)
{
    if (o->asked && now_ms - o->asked_ms < PS_PRESENCE_REFRESH_MS)
        return;
    o->asked = 1;
    o->asked_ms = now_ms;
    encode_ask(p, o->id, o->link, out);
    p->stats.asked++;
}

/* Applies the members of a SNAP part to o (the message was checked whole). */
static void apply_part(ps_presence *p, pr_origin *o, const pr_view *v)
{
    const unsigned char *q = v->members, *end = v->body + v->body_len;
    for (uint32_t i = 0; i < v->count; i++) {
        pr_field f;
        if (read_member(&q, end, 1, &f))
            break; /* cannot happen: decode() walked the same bytes */
        (void)member_set(p, o, f.topic, f.topic_len, f.id, f.id_len, f.info, f.info_len);
    }
}

int ps_presence_receive(ps_presence *p, const unsigned char *msg, size_t len, uint64_t now_ms,
                        uint32_t link, ps_presence_send_fn send, void *ctx,
                        ps_presence_event_fn event, void *event_ctx, uint64_t *sender)
{
    pr_view v;
    pr_out out = {0};
    pr_gone back = {.kind = PS_PRESENCE_JOIN, .announce = 1};
    if (decode(msg, len, &v)) {
        pthread_mutex_lock(&p->lock);
        p->stats.bad++;
        pthread_mutex_unlock(&p->lock);
        return -EPROTO;
    }
    *sender = v.origin;
    pthread_mutex_lock(&p->lock);
    if (v.origin == p->origins[0]->id) {
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    pr_origin *o = origin_find(p, v.origin, NULL);
    if (!o) {
        o = origin_add(p, v.origin, v.rank);
        if (!o) {
            pthread_mutex_unlock(&p->lock);
            return 0;
        }
    }
    o->heard_ms = now_ms;
    o->link = link;
    o->rank = v.rank;
    const unsigned char *q = v.body, *end = v.body + v.body_len;
    pr_field f;
    switch (v.kind) {
    case PS_PRESENCE_JOIN:
    case PS_PRESENCE_LEAVE:
        if (o->state == O_SKIPPING)
            o->state = O_SYNCED; /* the skipped snapshot is over */
        if (o->state != O_SYNCED || v.seq > o->seq + 1) {
            if (o->state == O_LOADING)
                o->state = O_NEW; /* a snapshot cut short */
            ask(p, o, now_ms, &out);
            break;
        }
        if (v.seq <= o->seq)
            break; /* already held (a snapshot carried it) */
        (void)read_member(&q, end, v.kind == PS_PRESENCE_JOIN, &f);
        if (v.kind == PS_PRESENCE_JOIN) {
            (void)member_set(p, o, f.topic, f.topic_len, f.id, f.id_len, f.info, f.info_len);
        } else {
            pr_member *m = member_find(p, o, f.topic, f.topic_len, f.id, f.id_len);
            if (m) {
                member_unlink(p, m);
                member_free(m);
            }
        }
        o->seq = v.seq;
        break;
    case PS_PRESENCE_BEAT:
        if (o->state == O_SKIPPING)
            o->state = O_SYNCED;
        if (o->state != O_SYNCED || v.seq != o->seq) {
            if (o->state == O_LOADING)
                o->state = O_NEW;
            ask(p, o, now_ms, &out);
        }
        break;
    case PS_PRESENCE_SNAP:
        if (v.part == 0) {
            if ((o->state == O_SYNCED || o->state == O_SKIPPING) && o->seq == v.seq) {
                o->state = v.last ? O_SYNCED : O_SKIPPING;
                break;
            }
            origin_clear(p, o, NULL); /* replaced: the origin announced its own leaves */
            o->state = O_LOADING;
            o->snap_seq = v.seq;
            o->snap_next = 0;
        }
        if (o->state == O_SKIPPING && v.seq == o->seq) {
            if (v.last)
                o->state = O_SYNCED;
            break;
        }
        if (o->state != O_LOADING || v.seq != o->snap_seq || v.part != o->snap_next) {
            o->state = O_NEW;
            ask(p, o, now_ms, &out);
            break;
        }
        apply_part(p, o, &v);
        o->snap_next++;
        if (v.last) {
            o->state = O_SYNCED;
            o->seq = v.seq;
            o->asked = 0;
            p->stats.snapshots_in++;
            if (unbury(p, o->id)) /* it was only silent: its members are back */
                for (const pr_member *m = o->head; m; m = m->onext)
                    gone_add(&back, m);
        }
        break;
    case PS_PRESENCE_ASK:
        if (v.target == 0 || v.target == p->origins[0]->id) {
            /* Out of memory: the parts encoded are still sent, and the asker, finding the
             * snapshot cut short, asks again. */
            (void)encode_snapshot(p, link, &out);
        }
        if (o->state == O_NEW)
            ask(p, o, now_ms, &out); /* a newcomer: learn its members too */
        break;
    }
    pthread_mutex_unlock(&p->lock);
    out_send(&out, send, ctx);
    gone_report(&back, event, event_ctx);
    return 1;
}

void ps_presence_get_stats(ps_presence *p, ps_presence_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    out->origins = p->norigins - 1;
    out->members = p->remote_members;
    out->local = p->origins[0]->count;
    out->seq = p->origins[0]->seq;
    pthread_mutex_unlock(&p->lock);
}
