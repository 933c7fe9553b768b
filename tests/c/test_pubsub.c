/*
 * test_pubsub.c: unit tests of pubsub/ (frames, send queues, topics, buses).
 *
 * Every test frees everything it made, so ASan and valgrind stay quiet.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus.h"
#include "frame.h"
#include "queue.h"
#include "topics.h"
#include "ledger.h"

/* --- helpers ------------------------------------------------------------ */

static ps_frame *text(const char *s)
{
    ps_frame *f = ps_frame_new(PS_OP_TEXT, s, strlen(s));

    assert_non_null(f);
    return f;
}

/* A frame whose payload is a sender number and a sequence number. */
static ps_frame *seq_frame(uint32_t sender, uint32_t seq)
{
    unsigned char p[8];
    ps_frame *f;

    memcpy(p, &sender, 4);
    memcpy(p + 4, &seq, 4);
    f = ps_frame_new(PS_OP_BINARY, p, sizeof(p));
    assert_non_null(f);
    return f;
}

static void seq_read(const ps_frame *f, uint32_t *sender, uint32_t *seq)
{
    assert_int_equal(ps_frame_payload_len(f), 8);
    memcpy(sender, ps_frame_payload(f), 4);
    memcpy(seq, ps_frame_payload(f) + 4, 4);
}

static void unref_all(ps_frame **fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ps_frame_unref(fs[i]);
}

/* What a connection on the I/O thread would hold: its subscriber handle and
 * its send queue. */
struct conn {
    ps_subscriber *sub;
    ps_queue *q;
    size_t got; /* deliveries accepted */
    size_t idx;
};

struct hub;
typedef void (*hook_fn)(struct hub *h, struct conn *c, ps_frame *f);

/* The delivery side of a registry, as the lws code would write it. */
struct hub {
    ps_topics *t;
    hook_fn hook; /* runs after each accepted delivery */
    int close_on_drop;
    size_t calls, dropped, backpressure, closed;
    struct conn *conns;
    size_t nconns;
    int step; /* free for hooks */
    char events[4096];
};

static void conn_close(struct hub *h, struct conn *c)
{
    ps_subscriber_free(c->sub);
    c->sub = NULL;
    if (c->q != NULL)
        ps_queue_clear(c->q);
    h->closed++;
}

static int hub_deliver(void *ctx, ps_subscriber *sub, ps_frame *f)
{
    struct hub *h = ctx;
    struct conn *c = ps_subscriber_user(sub);

    h->calls++;
    if (c->q != NULL) {
        int rc = ps_queue_push(c->q, f);
        if (rc == PS_SEND_BACKPRESSURE)
            h->backpressure++;
        if (rc == PS_SEND_DROPPED || rc < 0) {
            h->dropped++;
            if (h->close_on_drop)
                conn_close(h, c);
            return -1;
        }
    }
    c->got++;
    if (h->hook != NULL)
        h->hook(h, c, f);
    return 0;
}

static void hub_interest(void *ctx, const char *topic, size_t len,
                         bool alive)
{
    struct hub *h = ctx;
    size_t used = strlen(h->events);

    assert_int_equal(topic[len], '\0');
    snprintf(h->events + used, sizeof(h->events) - used, "%c%.*s;",
             alive ? '+' : '-', (int)len, topic);
}

static void hub_init(struct hub *h, size_t nconns)
{
    memset(h, 0, sizeof(*h));
    h->t = ps_topics_new(hub_deliver, h);
    assert_non_null(h->t);
    ps_topics_set_interest(h->t, hub_interest, h);
    h->nconns = nconns;
    h->conns = calloc(nconns ? nconns : 1, sizeof(*h->conns));
    assert_non_null(h->conns);
}

/* Opens conn i; a queue with the given marks if limit > 0. */
static struct conn *hub_open(struct hub *h, size_t i, size_t high_water,
                             size_t limit)
{
    struct conn *c = &h->conns[i];

    c->idx = i;
    c->got = 0;
    c->sub = ps_subscriber_new(h->t, 1000 + i, c);
    assert_non_null(c->sub);
    c->q = NULL;
    if (limit > 0) {
        c->q = ps_queue_new(high_water, limit);
        assert_non_null(c->q);
    }
    return c;
}

static void hub_free(struct hub *h)
{
    for (size_t i = 0; i < h->nconns; i++) {
        ps_subscriber_free(h->conns[i].sub);
        ps_queue_free(h->conns[i].q);
    }
    free(h->conns);
    ps_topics_free(h->t);
}

static void sub_ok(struct conn *c, const char *topic)
{
    assert_int_equal(ps_topics_subscribe(c->sub, topic, strlen(topic)), 1);
}

static size_t publish(struct hub *h, const char *topic, ps_frame *f,
                      const struct conn *exclude)
{
    return ps_topics_publish(h->t, topic, strlen(topic), f,
                             exclude ? exclude->sub : NULL);
}

/* --- frames ------------------------------------------------------------- */

static void check_frame(unsigned op, size_t len, const unsigned char *hdr,
                        size_t hlen)
{
    unsigned char *payload = malloc(len ? len : 1);
    const unsigned char *pre;
    ps_frame *f;

    assert_non_null(payload);
    for (size_t i = 0; i < len; i++)
        payload[i] = (unsigned char)(i * 7 + 3);
    f = ps_frame_new(op, len ? payload : NULL, len);
    assert_non_null(f);
    assert_int_equal(ps_frame_opcode(f), op);
    assert_int_equal(ps_frame_wire_len(f), hlen + len);
    assert_int_equal(ps_frame_payload_len(f), len);
    assert_memory_equal(ps_frame_wire(f), hdr, hlen);
    assert_ptr_equal(ps_frame_payload(f), ps_frame_wire(f) + hlen);
    if (len > 0)
        assert_memory_equal(ps_frame_payload(f), payload, len);
    /* The headroom in front of the wire bytes is valid, zeroed memory. */
    pre = ps_frame_wire(f) - PS_FRAME_HEADROOM;
    for (size_t i = 0; i < PS_FRAME_HEADROOM; i++)
        assert_int_equal(pre[i], 0);
    assert_int_equal(ps_frame_refcount(f), 1);
    ps_frame_unref(f);
    free(payload);
}

static void frame_len_0(void **state)
{
    (void)state;
    check_frame(PS_OP_TEXT, 0, (const unsigned char[]){0x81, 0x00}, 2);
}

static void frame_len_125(void **state)
{
    (void)state;
    check_frame(PS_OP_BINARY, 125, (const unsigned char[]){0x82, 0x7D}, 2);
}

static void frame_len_126(void **state)
{
    (void)state;
    check_frame(PS_OP_TEXT, 126,
                (const unsigned char[]){0x81, 0x7E, 0x00, 0x7E}, 4);
}

static void frame_len_65535(void **state)
{
    (void)state;
    check_frame(PS_OP_BINARY, 65535,
                (const unsigned char[]){0x82, 0x7E, 0xFF, 0xFF}, 4);
}

static void frame_len_65536(void **state)
{
    (void)state;
    check_frame(PS_OP_TEXT, 65536,
                (const unsigned char[]){0x81, 0x7F, 0, 0, 0, 0, 0, 0x01, 0,
                                        0},
                10);
}

static void frame_len_1mb(void **state)
{
    (void)state;
    check_frame(PS_OP_BINARY, 1u << 20,
                (const unsigned char[]){0x82, 0x7F, 0, 0, 0, 0, 0, 0x10, 0,
                                        0},
                10);
}

static void frame_control(void **state)
{
    unsigned char big[PS_FRAME_MAX_CONTROL + 1] = {0};
    const unsigned char close_payload[] = {0x03, 0xE8}; /* 1000 */

    (void)state;
    check_frame(PS_OP_PING, PS_FRAME_MAX_CONTROL,
                (const unsigned char[]){0x89, 0x7D}, 2);
    check_frame(PS_OP_PONG, 0, (const unsigned char[]){0x8A, 0x00}, 2);

    ps_frame *f = ps_frame_new(PS_OP_CLOSE, close_payload, 2);
    assert_non_null(f);
    assert_memory_equal(ps_frame_wire(f),
                        ((const unsigned char[]){0x88, 0x02, 0x03, 0xE8}), 4);
    ps_frame_unref(f);

    errno = 0;
    assert_null(ps_frame_new(PS_OP_PING, big, sizeof(big)));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(ps_frame_new(PS_OP_CLOSE, big, sizeof(big)));
    assert_int_equal(errno, EINVAL);
}

static void frame_bad_opcode(void **state)
{
    const unsigned bad[] = {0x0, 0x3, 0x7, 0xB, 0xF, 0x10, 0x81};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_null(ps_frame_new(bad[i], "x", 1));
        assert_int_equal(errno, EINVAL);
    }
}

static void frame_alloc_fill(void **state)
{
    unsigned char *p = NULL;
    ps_frame *f = ps_frame_alloc(PS_OP_TEXT, 300, &p);

    (void)state;
    assert_non_null(f);
    assert_ptr_equal(p, ps_frame_payload(f));
    memset(p, 'a', 300);
    assert_memory_equal(ps_frame_wire(f),
                        ((const unsigned char[]){0x81, 0x7E, 0x01, 0x2C}), 4);
    assert_int_equal(ps_frame_payload(f)[299], 'a');
    ps_frame_unref(f);
}

static void frame_refcount(void **state)
{
    ps_frame *f = text("hello");

    (void)state;
    assert_int_equal(ps_frame_refcount(f), 1);
    assert_ptr_equal(ps_frame_ref(f), f);
    assert_ptr_equal(ps_frame_ref(f), f);
    assert_int_equal(ps_frame_refcount(f), 3);
    ps_frame_unref(f);
    ps_frame_unref(f);
    assert_int_equal(ps_frame_refcount(f), 1);
    assert_memory_equal(ps_frame_payload(f), "hello", 5);
    ps_frame_unref(f);
    ps_frame_unref(NULL);
}

/* Two threads taking and dropping references to one frame at once. */
struct churn {
    ps_frame *f;
    int rounds;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;

    for (int i = 0; i < c->rounds; i++) {
        ps_frame *a = ps_frame_ref(c->f);
        ps_frame *b = ps_frame_ref(c->f);
        ps_frame_unref(a);
        ps_frame_unref(b);
    }
    ps_frame_unref(c->f); /* the reference main gave this thread */
    return NULL;
}

static void frame_refcount_threads(void **state)
{
    struct churn c = {.f = text("shared"), .rounds = 200000};
    pthread_t th[2];

    (void)state;
    ps_frame_ref(c.f);
    ps_frame_ref(c.f); /* one for each thread */
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, churn_main, &c), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(ps_frame_refcount(c.f), 1);
    ps_frame_unref(c.f);
}

/* Frames made on one thread and released by two at the same moment: the
 * last release, on either thread, frees. */
struct handoff {
    pthread_barrier_t bar;
    ps_frame *slot;
    int rounds;
};

static void *handoff_main(void *arg)
{
    struct handoff *h = arg;

    for (int i = 0; i < h->rounds; i++) {
        if (i % 2 == 1) { /* odd rounds: this thread makes the frame */
            h->slot = seq_frame(1, (uint32_t)i);
            ps_frame_ref(h->slot);
        }
        pthread_barrier_wait(&h->bar);
        ps_frame_unref(h->slot);
        pthread_barrier_wait(&h->bar);
    }
    return NULL;
}

static void frame_release_across_threads(void **state)
{
    struct handoff h = {.rounds = 4000};
    pthread_t th;

    (void)state;
    assert_int_equal(pthread_barrier_init(&h.bar, NULL, 2), 0);
    assert_int_equal(pthread_create(&th, NULL, handoff_main, &h), 0);
    for (int i = 0; i < h.rounds; i++) {
        if (i % 2 == 0) { /* even rounds: main makes the frame */
            h.slot = seq_frame(0, (uint32_t)i);
            ps_frame_ref(h.slot);
        }
        pthread_barrier_wait(&h.bar);
        ps_frame_unref(h.slot);
        pthread_barrier_wait(&h.bar);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_barrier_destroy(&h.bar);
}

/* --- queues ------------------------------------------------------------- */

static void queue_new_invalid(void **state)
{
    ps_queue *q;

    (void)state;
    errno = 0;
    assert_null(ps_queue_new(10, 5));
    assert_int_equal(errno, EINVAL);
    q = ps_queue_new(7, 7);
    assert_non_null(q);
    assert_int_equal(ps_queue_high_water(q), 7);
    assert_int_equal(ps_queue_limit(q), 7);
    ps_queue_free(q);
    ps_queue_free(NULL);
}

/* A queue not made yet (NULL) reads as empty, for users that make theirs on first push. */
static void queue_null_is_empty(void **state)
{
    size_t off = 99;

    (void)state;
    assert_null(ps_queue_peek(NULL, &off));
    assert_int_equal(off, 0);
    assert_null(ps_queue_peek(NULL, NULL));
    assert_int_equal(ps_queue_count(NULL), 0);
    assert_int_equal(ps_queue_bytes(NULL), 0);
    assert_int_equal(ps_queue_footprint(NULL), 0);
    ps_queue_clear(NULL);
    ps_queue_free(NULL);
}

static void queue_return_codes(void **state)
{
    char payload[100];
    ps_frame *f;
    size_t cost;
    ps_queue *q;

    (void)state;
    memset(payload, 'x', sizeof(payload));
    f = ps_frame_new(PS_OP_TEXT, payload, sizeof(payload));
    assert_non_null(f);
    cost = ps_frame_wire_len(f) + PS_QUEUE_SLOT_COST; /* 102 + slot */
    q = ps_queue_new(2 * cost, 4 * cost);
    assert_non_null(q);

    assert_int_equal(ps_queue_push(q, f), PS_SEND_OK);
    assert_false(ps_queue_pressured(q));
    assert_int_equal(ps_queue_push(q, f), PS_SEND_OK); /* == high water */
    assert_false(ps_queue_pressured(q));
    assert_int_equal(ps_queue_push(q, f), PS_SEND_BACKPRESSURE);
    assert_true(ps_queue_pressured(q));
    assert_int_equal(ps_queue_push(q, f), PS_SEND_BACKPRESSURE); /* limit */
    assert_int_equal(ps_queue_footprint(q), 4 * cost);
    assert_int_equal(ps_frame_refcount(f), 5);

    /* Full: refused, and no reference taken. */
    assert_int_equal(ps_queue_push(q, f), PS_SEND_DROPPED);
    assert_int_equal(ps_frame_refcount(f), 5);
    assert_int_equal(ps_queue_count(q), 4);
    assert_int_equal(ps_queue_bytes(q), 4 * ps_frame_wire_len(f));
    assert_int_equal(ps_queue_footprint(q), 4 * cost);

    /* Draining crosses back under the high-water mark. */
    ps_frame_unref(ps_queue_pop(q));
    assert_true(ps_queue_pressured(q));
    assert_int_equal(ps_queue_consume(q, ps_frame_wire_len(f)), 1);
    assert_false(ps_queue_pressured(q));
    assert_int_equal(ps_frame_refcount(f), 3);

    /* Room again: accepted. */
    assert_int_equal(ps_queue_push(q, f), PS_SEND_BACKPRESSURE);
    ps_queue_clear(q);
    assert_int_equal(ps_queue_count(q), 0);
    assert_int_equal(ps_queue_footprint(q), 0);
    assert_int_equal(ps_frame_refcount(f), 1);
    assert_int_equal(ps_queue_push(q, f), PS_SEND_OK); /* still usable */
    ps_queue_free(q);
    assert_int_equal(ps_frame_refcount(f), 1);
    ps_frame_unref(f);
}

static void queue_oversized(void **state)
{
    char payload[200] = {0};
    ps_frame *big = ps_frame_new(PS_OP_BINARY, payload, sizeof(payload));
    ps_frame *small = ps_frame_new(PS_OP_BINARY, payload, 10);
    ps_queue *q = ps_queue_new(64, 128);
    size_t big_cost, small_cost;

    (void)state;
    assert_non_null(big);
    assert_non_null(small);
    assert_non_null(q);
    big_cost = ps_frame_wire_len(big) + PS_QUEUE_SLOT_COST;
    small_cost = ps_frame_wire_len(small) + PS_QUEUE_SLOT_COST;
    assert_true(big_cost > 128);

    /* Bigger than the whole limit, on an empty queue: taken, and the queue is over. */
    assert_int_equal(ps_queue_push(q, big), PS_SEND_BACKPRESSURE);
    assert_int_equal(ps_queue_footprint(q), big_cost);
    assert_int_equal(ps_frame_refcount(big), 2);
    /* Over the limit now: nothing more, not even the smallest message. */
    assert_int_equal(ps_queue_push(q, small), PS_SEND_DROPPED);
    assert_int_equal(ps_queue_push(q, big), PS_SEND_DROPPED);
    assert_int_equal(ps_queue_count(q), 1);
    assert_int_equal(ps_frame_refcount(small), 1);
    assert_true(ps_queue_memory(q) <= big_cost);

    /* Half written, still over the high-water mark: still refused. */
    assert_int_equal(ps_queue_consume(q, ps_frame_wire_len(big) - 60), 0);
    assert_int_equal(ps_queue_footprint(q), 60 + PS_QUEUE_SLOT_COST);
    assert_true(ps_queue_pressured(q));
    assert_int_equal(ps_queue_push(q, big), PS_SEND_DROPPED);
    /* ... but a message that fits under the limit is taken. */
    assert_int_equal(ps_queue_push(q, small), PS_SEND_BACKPRESSURE);
    assert_int_equal(ps_queue_footprint(q), 60 + PS_QUEUE_SLOT_COST + small_cost);

    /* Written down to the high-water mark: a big one is taken again. */
    assert_int_equal(ps_queue_consume(q, 60), 1);
    assert_int_equal(ps_queue_footprint(q), small_cost);
    assert_false(ps_queue_pressured(q));
    assert_int_equal(ps_queue_push(q, big), PS_SEND_BACKPRESSURE);
    assert_int_equal(ps_queue_footprint(q), small_cost + big_cost);
    assert_int_equal(ps_queue_count(q), 2);
    ps_queue_free(q);
    assert_int_equal(ps_frame_refcount(big), 1);
    assert_int_equal(ps_frame_refcount(small), 1);
    ps_frame_unref(small);

    /* Exactly at the mark still counts as under it; one byte over does not. */
    q = ps_queue_new(small_cost, small_cost);
    small = ps_frame_new(PS_OP_BINARY, payload, 10);
    assert_non_null(q);
    assert_non_null(small);
    assert_int_equal(ps_queue_push(q, small), PS_SEND_OK);
    assert_int_equal(ps_queue_push(q, big), PS_SEND_BACKPRESSURE);
    assert_int_equal(ps_queue_push(q, small), PS_SEND_DROPPED);
    ps_queue_free(q);
    ps_frame_unref(small);

    /* A zero limit takes one message on an empty queue, then nothing until it drains. */
    q = ps_queue_new(0, 0);
    small = text("");
    assert_non_null(q);
    assert_int_equal(ps_queue_push(q, small), PS_SEND_BACKPRESSURE);
    assert_int_equal(ps_queue_push(q, small), PS_SEND_DROPPED);
    ps_frame_unref(ps_queue_pop(q));
    assert_int_equal(ps_queue_push(q, big), PS_SEND_BACKPRESSURE);
    ps_queue_free(q);
    ps_frame_unref(small);
    ps_frame_unref(big);
}

static void queue_fifo_wraparound(void **state)
{
    ps_queue *q = ps_queue_new(1u << 20, 1u << 20);
    uint32_t next_in = 0, next_out = 0;

    (void)state;
    assert_non_null(q);
    /* Push 3, pop 2, many times: the ring wraps and grows while in use. */
    for (int round = 0; round < 500; round++) {
        for (int k = 0; k < 3; k++) {
            ps_frame *f = seq_frame(0, next_in++);
            assert_true(ps_queue_push(q, f) >= 0);
            ps_frame_unref(f);
        }
        for (int k = 0; k < 2; k++) {
            uint32_t s, n;
            ps_frame *f = ps_queue_pop(q);
            assert_non_null(f);
            seq_read(f, &s, &n);
            assert_int_equal(n, next_out++);
            ps_frame_unref(f);
        }
    }
    assert_int_equal(ps_queue_count(q), 500);
    while (ps_queue_count(q) > 0) {
        uint32_t s, n;
        size_t off = 99;
        ps_frame *f = ps_queue_peek(q, &off);
        assert_int_equal(off, 0);
        seq_read(f, &s, &n);
        assert_int_equal(n, next_out++);
        assert_int_equal(ps_queue_consume(q, ps_frame_wire_len(f)), 1);
    }
    assert_int_equal(next_out, next_in);
    /* Emptied, the ring is kept for the next frames; trimming gives it back. */
    assert_true(ps_queue_memory(q) > 0);
    ps_queue_trim(q);
    assert_int_equal(ps_queue_memory(q), 0);
    ps_queue_free(q);
}

/* Up to PS_QUEUE_INLINE_SLOTS frames queue inside the queue itself: a
 * fan-out that gives each subscriber a frame or a few allocates nothing per
 * subscriber. One more moves the ring to the heap, where it stays, emptied,
 * until trimmed. */
static void queue_inline_slots(void **state)
{
    ps_queue *q = ps_queue_new(1u << 16, 1u << 16);
    uint32_t next_out = 0;

    (void)state;
    assert_non_null(q);
    for (int round = 0; round < 3; round++) {
        for (uint32_t i = 0; i < PS_QUEUE_INLINE_SLOTS; i++) {
            ps_frame *f = seq_frame(0, i);
            assert_int_equal(ps_queue_push(q, f), PS_SEND_OK);
            ps_frame_unref(f);
            assert_int_equal(ps_queue_memory(q), 0);
        }
        ps_frame *extra = seq_frame(0, PS_QUEUE_INLINE_SLOTS);
        assert_int_equal(ps_queue_push(q, extra), PS_SEND_OK);
        ps_frame_unref(extra);
        assert_int_equal(ps_queue_memory(q), PS_QUEUE_MIN_SLOTS * sizeof(void *));
        assert_int_equal(ps_queue_count(q), PS_QUEUE_INLINE_SLOTS + 1);
        next_out = 0;
        while (ps_queue_count(q) > 0) {
            uint32_t sender, n;
            ps_frame *f = ps_queue_pop(q);
            seq_read(f, &sender, &n);
            assert_int_equal(n, next_out++);
            ps_frame_unref(f);
        }
        assert_int_equal(next_out, PS_QUEUE_INLINE_SLOTS + 1);
        /* Kept while empty, and reused: the next round allocates nothing. */
        assert_int_equal(ps_queue_memory(q), PS_QUEUE_MIN_SLOTS * sizeof(void *));
        ps_frame *again = seq_frame(0, 0);
        assert_int_equal(ps_queue_push(q, again), PS_SEND_OK);
        assert_int_equal(ps_queue_memory(q), PS_QUEUE_MIN_SLOTS * sizeof(void *));
        ps_queue_trim(q); /* not empty: nothing happens */
        assert_int_equal(ps_queue_memory(q), PS_QUEUE_MIN_SLOTS * sizeof(void *));
        ps_frame_unref(ps_queue_pop(q));
        ps_frame_unref(again);
        ps_queue_trim(q);
        assert_int_equal(ps_queue_memory(q), 0);
    }
    /* Wrapping within the inline slots keeps order too: with one slot left
     * free, push one and pop one, many times round. */
    uint32_t next_in = 0;
    next_out = 0;
    for (int i = 0; i < 40; i++) {
        ps_frame *f = seq_frame(1, next_in++);
        assert_int_equal(ps_queue_push(q, f), PS_SEND_OK);
        ps_frame_unref(f);
        if (ps_queue_count(q) == PS_QUEUE_INLINE_SLOTS) {
            uint32_t sender, n;
            ps_frame *g = ps_queue_pop(q);
            seq_read(g, &sender, &n);
            assert_int_equal(n, next_out++);
            ps_frame_unref(g);
        }
        assert_int_equal(ps_queue_memory(q), 0);
    }
    assert_int_equal(next_in - next_out, PS_QUEUE_INLINE_SLOTS - 1);
    ps_queue_free(q);
}

/* A fan-out's references taken in one go and handed to the queues: a push
 * that is refused leaves the caller its reference, and what is left over is
 * given back at once. */
static void queue_push_owned_and_bulk_references(void **state)
{
    ps_frame *f = text("shared");
    ps_queue *a = ps_queue_new(1u << 16, 1u << 16);
    ps_queue *b = ps_queue_new(0, 4); /* over its mark once it holds anything */
    ps_frame *filler = text("x");

    (void)state;
    assert_non_null(f);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(ps_queue_push(b, filler), PS_SEND_BACKPRESSURE);
    ps_frame_unref(filler);
    assert_ptr_equal(ps_frame_ref_many(f, 3), f);
    assert_int_equal(ps_frame_refcount(f), 4);
    assert_int_equal(ps_queue_push_owned(a, f), PS_SEND_OK);  /* one of the 3 */
    assert_int_equal(ps_frame_refcount(f), 4);
    assert_int_equal(ps_queue_push_owned(b, f), PS_SEND_DROPPED); /* kept by us */
    assert_int_equal(ps_frame_refcount(f), 4);
    ps_frame_unref_many(f, 2); /* the two not handed out */
    assert_int_equal(ps_frame_refcount(f), 2);
    ps_frame_unref_many(f, 0);
    ps_frame_unref_many(NULL, 5);
    assert_int_equal(ps_frame_refcount(f), 2);
    ps_queue_free(a); /* the queue's reference */
    assert_int_equal(ps_frame_refcount(f), 1);
    ps_queue_free(b);
    ps_frame_ref_many(f, 2);
    ps_frame_unref_many(f, 3); /* the last three drops at once free it (valgrind checks) */
}

static void queue_partial_writes(void **state)
{
    char payload[1000];
    ps_frame *a, *b;
    ps_queue *q = ps_queue_new(1u << 16, 1u << 16);
    size_t off;

    (void)state;
    memset(payload, 'p', sizeof(payload));
    a = ps_frame_new(PS_OP_TEXT, payload, sizeof(payload)); /* 1004 bytes */
    b = text("next");
    assert_non_null(a);
    assert_non_null(q);
    assert_int_equal(ps_queue_push(q, a), PS_SEND_OK);
    assert_int_equal(ps_queue_push(q, b), PS_SEND_OK);
    assert_int_equal(ps_queue_bytes(q), 1004 + 6);

    assert_ptr_equal(ps_queue_peek(q, &off), a);
    assert_int_equal(off, 0);
    assert_int_equal(ps_queue_consume(q, 300), 0);
    assert_ptr_equal(ps_queue_peek(q, &off), a);
    assert_int_equal(off, 300);
    assert_int_equal(ps_queue_bytes(q), 704 + 6);
    assert_int_equal(ps_queue_count(q), 2);

    /* Too much for what remains of the head: refused, nothing changes. */
    assert_int_equal(ps_queue_consume(q, 705), -EINVAL);
    assert_int_equal(ps_queue_bytes(q), 704 + 6);
    assert_int_equal(ps_queue_consume(q, 0), 0);

    assert_int_equal(ps_queue_consume(q, 704), 1);
    assert_int_equal(ps_frame_refcount(a), 1);
    assert_ptr_equal(ps_queue_peek(q, &off), b);
    assert_int_equal(off, 0);

    /* Pop forgets partial progress and accounts the rest. */
    assert_int_equal(ps_queue_consume(q, 2), 0);
    ps_frame *p = ps_queue_pop(q);
    assert_ptr_equal(p, b);
    ps_frame_unref(p);
    assert_int_equal(ps_queue_bytes(q), 0);
    assert_int_equal(ps_queue_count(q), 0);

    assert_int_equal(ps_queue_consume(q, 1), -EINVAL);
    off = 42;
    assert_null(ps_queue_peek(q, &off));
    assert_int_equal(off, 0);
    assert_null(ps_queue_pop(q));
    ps_queue_free(q);
    ps_frame_unref(a);
    ps_frame_unref(b);
}

/* A writer that can only put 7 bytes out per call still sends the exact
 * concatenation of the queued frames. */
static void queue_partial_stream(void **state)
{
    ps_queue *q = ps_queue_new(1u << 20, 1u << 20);
    unsigned char *expect = malloc(1u << 16), *out = malloc(1u << 16);
    size_t elen = 0, olen = 0;

    (void)state;
    assert_non_null(q);
    assert_non_null(expect);
    assert_non_null(out);
    for (uint32_t i = 0; i < 40; i++) {
        char buf[300];
        size_t n = (i * 37) % sizeof(buf);
        memset(buf, 'a' + (int)(i % 26), n);
        ps_frame *f = ps_frame_new(PS_OP_TEXT, buf, n);
        assert_non_null(f);
        memcpy(expect + elen, ps_frame_wire(f), ps_frame_wire_len(f));
        elen += ps_frame_wire_len(f);
        assert_true(ps_queue_push(q, f) >= 0);
        ps_frame_unref(f);
    }
    for (;;) {
        size_t off;
        ps_frame *f = ps_queue_peek(q, &off);
        if (f == NULL)
            break;
        size_t n = ps_frame_wire_len(f) - off;
        if (n > 7)
            n = 7;
        memcpy(out + olen, ps_frame_wire(f) + off, n);
        olen += n;
        assert_true(ps_queue_consume(q, n) >= 0);
    }
    assert_int_equal(olen, elen);
    assert_memory_equal(out, expect, elen);
    assert_int_equal(ps_queue_bytes(q), 0);
    ps_queue_free(q);
    free(expect);
    free(out);
}

static void queue_memory_bounded(void **state)
{
    const size_t limit = 4096;
    ps_queue *q = ps_queue_new(limit / 2, limit);
    ps_frame *f = text(""); /* the cheapest message: 2 wire bytes */
    size_t accepted = 0;
    const size_t floor = PS_QUEUE_MIN_SLOTS * sizeof(void *);

    (void)state;
    assert_non_null(q);
    for (int i = 0; i < 10000; i++) {
        int rc = ps_queue_push(q, f);
        assert_true(rc >= 0);
        if (rc != PS_SEND_DROPPED)
            accepted++;
        assert_true(ps_queue_footprint(q) <= limit);
        assert_true(ps_queue_memory(q) <= (limit > floor ? limit : floor));
    }
    assert_int_equal(accepted, limit / (2 + PS_QUEUE_SLOT_COST));
    assert_int_equal(ps_frame_refcount(f), 1 + accepted);
    ps_queue_clear(q);
    assert_int_equal(ps_queue_memory(q), 0);
    assert_int_equal(ps_frame_refcount(f), 1);
    ps_queue_free(q);
    ps_frame_unref(f);
}

/* --- topics ------------------------------------------------------------- */

static void topics_subscribe_unsubscribe(void **state)
{
    struct hub h;
    struct conn *a, *b;
    size_t len;

    (void)state;
    hub_init(&h, 2);
    a = hub_open(&h, 0, 0, 0);
    b = hub_open(&h, 1, 0, 0);
    assert_int_equal(ps_subscriber_id(a->sub), 1000);
    assert_ptr_equal(ps_subscriber_user(b->sub), b);

    assert_int_equal(ps_topics_subscribe(a->sub, "chat", 4), 1);
    assert_int_equal(ps_topics_subscribe(a->sub, "chat", 4), 0);
    assert_int_equal(ps_topics_count(h.t), 1);
    assert_int_equal(ps_topics_subscriber_count(h.t, "chat", 4), 1);
    assert_int_equal(ps_topics_subscribe(b->sub, "chat", 4), 1);
    assert_int_equal(ps_topics_subscriber_count(h.t, "chat", 4), 2);
    assert_int_equal(ps_topics_count(h.t), 1);
    assert_string_equal(h.events, "+chat;");

    assert_int_equal(ps_subscriber_topic_count(a->sub), 1);
    assert_string_equal(ps_subscriber_topic(a->sub, 0, &len), "chat");
    assert_int_equal(len, 4);
    assert_null(ps_subscriber_topic(a->sub, 1, &len));

    assert_int_equal(ps_topics_unsubscribe(a->sub, "chat", 4), 1);
    assert_int_equal(ps_topics_unsubscribe(a->sub, "chat", 4), 0);
    assert_int_equal(ps_topics_unsubscribe(a->sub, "nope", 4), 0);
    assert_int_equal(ps_subscriber_topic_count(a->sub), 0);
    assert_int_equal(ps_topics_subscriber_count(h.t, "chat", 4), 1);
    assert_int_equal(ps_topics_subscriber_count(h.t, "nope", 4), 0);
    assert_int_equal(ps_topics_count(h.t), 1);
    hub_free(&h);
}

/* ps_ledger_each(): every topic with a member once, none that lost its last. */
struct seen_topics {
    char names[8][8];
    size_t n;
};

static void note_topic(void *ctx, const char *topic, size_t len)
{
    struct seen_topics *seen = ctx;
    assert_true(seen->n < 8 && len < 8);
    memcpy(seen->names[seen->n], topic, len);
    seen->names[seen->n][len] = '\0';
    seen->n++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void ledger_each_walks_every_topic_once(void **state)
{
    ps_ledger *l = ps_ledger_new();
    ps_ledger_member a = {0}, b = {0};
    struct seen_topics seen = {.n = 0};

    (void)state;
    assert_non_null(l);
    ps_ledger_each(l, note_topic, &seen);
    assert_int_equal(seen.n, 0);
    assert_int_equal(ps_ledger_join(l, &a, "chat", 4), 1);
    assert_int_equal(ps_ledger_join(l, &b, "chat", 4), 1);
    assert_int_equal(ps_ledger_join(l, &a, "news", 4), 1);
    assert_int_equal(ps_ledger_join(l, &b, "gone", 4), 1);
    assert_int_equal(ps_ledger_leave(l, &b, "gone", 4), 1);
    ps_ledger_each(l, note_topic, &seen);
    assert_int_equal(seen.n, 2);
    qsort(seen.names, seen.n, sizeof(seen.names[0]), by_name);
    assert_string_equal(seen.names[0], "chat");
    assert_string_equal(seen.names[1], "news");
    ps_ledger_leave_all(l, &a);
    ps_ledger_leave_all(l, &b);
    ps_ledger_free(l);
}

static void topics_unsubscribe_all(void **state)
{
    const char *names[] = {"a", "b", "c", "d", "e"};
    struct hub h;
    struct conn *a, *b;

    (void)state;
    hub_init(&h, 2);
    a = hub_open(&h, 0, 0, 0);
    b = hub_open(&h, 1, 0, 0);
    for (int i = 0; i < 5; i++)
        sub_ok(a, names[i]);
    sub_ok(b, "b");
    sub_ok(b, "d");
    assert_int_equal(ps_topics_count(h.t), 5);

    assert_int_equal(ps_topics_unsubscribe_all(a->sub), 5);
    assert_int_equal(ps_subscriber_topic_count(a->sub), 0);
    assert_int_equal(ps_topics_count(h.t), 2);
    assert_int_equal(ps_topics_subscriber_count(h.t, "b", 1), 1);
    assert_int_equal(ps_topics_subscriber_count(h.t, "d", 1), 1);
    assert_int_equal(ps_topics_subscriber_count(h.t, "a", 1), 0);
    assert_int_equal(ps_topics_unsubscribe_all(a->sub), 0);

    /* The subscriber stays usable after unsubscribe_all. */
    sub_ok(a, "b");
    assert_int_equal(ps_topics_subscriber_count(h.t, "b", 1), 2);
    hub_free(&h);
}

/* A subscriber's first memberships live inside it; a third moves them to the heap, and
 * every topic keeps its subscriber across the move, in either direction. */
static void topics_memberships_leave_the_inline_slots(void **state)
{
    const char *names[] = {"r0", "r1", "r2", "r3", "r4", "r5"};
    struct hub h;
    struct conn *a;
    ps_frame *f = text("m");
    size_t len;

    (void)state;
    hub_init(&h, 1);
    a = hub_open(&h, 0, 1u << 16, 1u << 16);
    sub_ok(a, "r0");
    sub_ok(a, "r1");
    assert_int_equal(ps_topics_unsubscribe(a->sub, "r0", 2), 1);
    for (int i = 2; i < 6; i++)
        sub_ok(a, names[i]);
    assert_int_equal(ps_subscriber_topic_count(a->sub), 5);
    assert_string_equal(ps_subscriber_topic(a->sub, 0, &len), "r1");
    for (int i = 1; i < 6; i++)
        assert_int_equal(publish(&h, names[i], f, NULL), 1);
    assert_int_equal(publish(&h, "r0", f, NULL), 0);
    assert_int_equal(a->got, 5);

    assert_int_equal(ps_topics_unsubscribe_all(a->sub), 5);
    sub_ok(a, "r2");
    sub_ok(a, "r3");
    sub_ok(a, "r4");
    assert_int_equal(publish(&h, "r4", f, NULL), 1);
    assert_int_equal(ps_topics_unsubscribe(a->sub, "r2", 2), 1);
    assert_int_equal(publish(&h, "r3", f, NULL), 1);
    assert_int_equal(a->got, 7);
    hub_free(&h);
    ps_frame_unref(f);
}

static void topics_death_and_interest(void **state)
{
    struct hub h;
    struct conn *a, *b;

    (void)state;
    hub_init(&h, 2);
    a = hub_open(&h, 0, 0, 0);
    b = hub_open(&h, 1, 0, 0);
    sub_ok(a, "news");
    sub_ok(b, "news");
    sub_ok(b, "sport");
    assert_string_equal(h.events, "+news;+sport;");

    assert_int_equal(ps_topics_unsubscribe(a->sub, "news", 4), 1);
    assert_string_equal(h.events, "+news;+sport;"); /* b still there */
    assert_int_equal(ps_topics_unsubscribe(b->sub, "news", 4), 1);
    assert_string_equal(h.events, "+news;+sport;-news;");
    assert_int_equal(ps_topics_count(h.t), 1);
    assert_int_equal(ps_topics_subscriber_count(h.t, "news", 4), 0);

    /* Closing a connection kills the topics it alone held. */
    ps_subscriber_free(b->sub);
    b->sub = NULL;
    assert_string_equal(h.events, "+news;+sport;-news;-sport;");
    assert_int_equal(ps_topics_count(h.t), 0);

    /* A dead topic can be born again. */
    sub_ok(a, "news");
    assert_string_equal(h.events, "+news;+sport;-news;-sport;+news;");

    /* Without an interest callback nothing is announced. */
    ps_topics_set_interest(h.t, NULL, NULL);
    sub_ok(a, "quiet");
    assert_int_equal(ps_topics_unsubscribe(a->sub, "quiet", 5), 1);
    assert_string_equal(h.events, "+news;+sport;-news;-sport;+news;");
    hub_free(&h);
}

static void topics_binary_names(void **state)
{
    struct hub h;
    struct conn *a;
    ps_frame *f = text("m");
    size_t len;

    (void)state;
    hub_init(&h, 1);
    a = hub_open(&h, 0, 0, 0);
    assert_int_equal(ps_topics_subscribe(a->sub, "a\0b", 3), 1);
    assert_int_equal(ps_topics_subscribe(a->sub, "a\0c", 3), 1);
    assert_int_equal(ps_topics_subscribe(a->sub, "a", 1), 1);
    assert_int_equal(ps_topics_subscribe(a->sub, "", 0), 1);
    assert_int_equal(ps_topics_subscribe(a->sub, "", 0), 0);
    assert_int_equal(ps_topics_count(h.t), 4);
    assert_int_equal(ps_topics_publish(h.t, "a\0b", 3, f, NULL), 1);
    assert_int_equal(ps_topics_publish(h.t, "a\0d", 3, f, NULL), 0);
    assert_int_equal(ps_topics_publish(h.t, "", 0, f, NULL), 1);
    for (size_t i = 0; i < 4; i++) {
        const char *n = ps_subscriber_topic(a->sub, i, &len);
        assert_non_null(n);
        assert_int_equal(n[len], '\0');
    }
    assert_int_equal(ps_topics_unsubscribe(a->sub, "a\0c", 3), 1);
    assert_int_equal(ps_topics_subscriber_count(h.t, "a\0b", 3), 1);
    assert_int_equal(ps_topics_subscriber_count(h.t, "a\0c", 3), 0);
    assert_int_equal(a->got, 2);
    hub_free(&h);
    ps_frame_unref(f);
}

static void topics_publish_exclude(void **state)
{
    struct hub h;
    struct conn *c[3];
    ps_frame *f = text("hello");

    (void)state;
    hub_init(&h, 3);
    for (int i = 0; i < 3; i++) {
        c[i] = hub_open(&h, (size_t)i, 1u << 16, 1u << 16);
        sub_ok(c[i], "room");
    }
    assert_int_equal(publish(&h, "room", f, c[1]), 2);
    assert_int_equal(ps_queue_count(c[0]->q), 1);
    assert_int_equal(ps_queue_count(c[1]->q), 0);
    assert_int_equal(ps_queue_count(c[2]->q), 1);
    /* One encoded frame, shared by every queue. */
    assert_ptr_equal(ps_queue_peek(c[0]->q, NULL), f);
    assert_ptr_equal(ps_queue_peek(c[2]->q, NULL), f);
    assert_int_equal(ps_frame_refcount(f), 3);

    assert_int_equal(publish(&h, "room", f, NULL), 3);
    assert_int_equal(publish(&h, "elsewhere", f, NULL), 0);
    assert_int_equal(h.calls, 5);
    assert_int_equal(ps_frame_refcount(f), 6);
    hub_free(&h);
    assert_int_equal(ps_frame_refcount(f), 1);
    ps_frame_unref(f);
}

/* A registry made without a delivery callback only records and counts. */
static void topics_ledger_counts_and_reaches_nobody(void **state)
{
    ps_topics *ledger = ps_topics_new(NULL, NULL);
    ps_subscriber *a, *b;
    ps_frame *f = text("nobody hears this");

    (void)state;
    assert_non_null(ledger);
    a = ps_subscriber_new(ledger, 1, NULL);
    b = ps_subscriber_new(ledger, 2, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(ps_topics_subscribe(a, "room", 4), 1);
    assert_int_equal(ps_topics_subscribe(a, "room", 4), 0);
    assert_int_equal(ps_topics_subscribe(b, "room", 4), 1);
    assert_int_equal(ps_topics_subscribe(b, "r\0om", 4), 1);
    assert_true(ps_topics_is_subscribed(a, "room", 4));
    assert_false(ps_topics_is_subscribed(a, "r\0om", 4));
    assert_true(ps_topics_is_subscribed(b, "r\0om", 4));
    assert_false(ps_topics_is_subscribed(a, "nowhere", 7));
    assert_int_equal(ps_topics_subscriber_count(ledger, "room", 4), 2);
    assert_int_equal(ps_topics_publish(ledger, "room", 4, f, NULL), 0);
    assert_int_equal(ps_frame_refcount(f), 1);
    assert_int_equal(ps_topics_unsubscribe(a, "room", 4), 1);
    assert_false(ps_topics_is_subscribed(a, "room", 4));
    assert_int_equal(ps_topics_subscriber_count(ledger, "room", 4), 1);
    ps_subscriber_free(b);
    assert_int_equal(ps_topics_subscriber_count(ledger, "room", 4), 0);
    assert_int_equal(ps_topics_count(ledger), 0);
    ps_subscriber_free(a);
    ps_topics_free(ledger);
    ps_frame_unref(f);
}

/* The ledger counts members, answers membership, and keeps a member's topics inside its
 * record up to PS_LEDGER_INLINE, in a sorted array beyond, and back inside once they fit. */
static void ledger_counts_and_memberships(void **state)
{
    ps_ledger *l = ps_ledger_new();
    ps_ledger_member a = {0}, b = {0};
    char name[16];

    (void)state;
    assert_non_null(l);
    assert_int_equal(ps_ledger_join(l, &a, "room", 4), 1);
    assert_int_equal(ps_ledger_join(l, &a, "room", 4), 0);
    assert_int_equal(ps_ledger_join(l, &b, "room", 4), 1);
    assert_int_equal(ps_ledger_join(l, &b, "r\0om", 4), 1);
    assert_int_equal(ps_ledger_join(l, &b, "", 0), 1);
    assert_true(ps_ledger_is_member(l, &a, "room", 4));
    assert_false(ps_ledger_is_member(l, &a, "r\0om", 4));
    assert_true(ps_ledger_is_member(l, &b, "r\0om", 4));
    assert_true(ps_ledger_is_member(l, &b, "", 0));
    assert_false(ps_ledger_is_member(l, &a, "nowhere", 7));
    assert_int_equal(ps_ledger_count(l, "room", 4), 2);
    assert_int_equal(ps_ledger_count(l, "nowhere", 7), 0);
    assert_int_equal(ps_ledger_topics(l), 3);
    assert_non_null(b.topics); /* three topics: past the record's two */
    assert_int_equal(ps_ledger_leave(l, &a, "room", 4), 1);
    assert_int_equal(ps_ledger_leave(l, &a, "room", 4), 0);
    assert_false(ps_ledger_is_member(l, &a, "room", 4));
    assert_int_equal(ps_ledger_count(l, "room", 4), 1);
    assert_int_equal(ps_ledger_leave(l, &b, "", 0), 1);
    assert_null(b.topics); /* two again: back inside the record */
    assert_true(ps_ledger_is_member(l, &b, "room", 4));
    assert_true(ps_ledger_is_member(l, &b, "r\0om", 4));

    /* Many topics: every one found by its binary search, counted, and left. */
    for (int i = 0; i < 300; i++) {
        int n = snprintf(name, sizeof(name), "t%d", i);
        assert_int_equal(ps_ledger_join(l, &a, name, (size_t)n), 1);
        if (i % 3 == 0)
            assert_int_equal(ps_ledger_join(l, &b, name, (size_t)n), 1);
    }
    assert_int_equal(a.n, 300);
    assert_int_equal(ps_ledger_topics(l), 302);
    for (int i = 0; i < 300; i++) {
        int n = snprintf(name, sizeof(name), "t%d", i);
        assert_true(ps_ledger_is_member(l, &a, name, (size_t)n));
        assert_int_equal(ps_ledger_is_member(l, &b, name, (size_t)n), i % 3 == 0);
        assert_int_equal(ps_ledger_count(l, name, (size_t)n), i % 3 == 0 ? 2 : 1);
    }
    for (int i = 0; i < 300; i += 2) {
        int n = snprintf(name, sizeof(name), "t%d", i);
        assert_int_equal(ps_ledger_leave(l, &a, name, (size_t)n), 1);
    }
    assert_int_equal(a.n, 150);
    for (int i = 0; i < 300; i++) {
        int n = snprintf(name, sizeof(name), "t%d", i);
        assert_int_equal(ps_ledger_is_member(l, &a, name, (size_t)n), i % 2 == 1);
    }
    /* t0, t6, ... were b's and a's: b still holds them. */
    ps_ledger_leave_all(l, &a);
    assert_int_equal(a.n, 0);
    assert_null(a.topics);
    assert_int_equal(ps_ledger_count(l, "t3", 2), 1);
    assert_int_equal(ps_ledger_count(l, "t1", 2), 0);
    assert_int_equal(ps_ledger_topics(l), 2 + 100);
    ps_ledger_leave_all(l, &b);
    assert_int_equal(ps_ledger_topics(l), 0);
    assert_int_equal(ps_ledger_count(l, "room", 4), 0);
    /* A member left with nothing joins again. */
    assert_int_equal(ps_ledger_join(l, &a, "room", 4), 1);
    ps_ledger_leave_all(l, &a);
    ps_ledger_free(l);
}

/* A subscriber the callback reports unreached is not counted. */
static void topics_publish_counts_dropped(void **state)
{
    struct hub h;
    struct conn *a, *b;
    ps_frame *f = text("0123456789");

    (void)state;
    hub_init(&h, 2);
    a = hub_open(&h, 0, 1u << 16, 1u << 16);
    b = hub_open(&h, 1, 4, 40);
    sub_ok(a, "t");
    sub_ok(b, "t");
    /* b's queue is over its high-water mark, with no room left under its limit. */
    assert_int_equal(ps_queue_push(b->q, f), PS_SEND_BACKPRESSURE);
    assert_int_equal(publish(&h, "t", f, NULL), 1);
    assert_int_equal(h.calls, 2);
    assert_int_equal(h.dropped, 1);
    hub_free(&h);
    ps_frame_unref(f);
}

/* --- re-entrancy during fan-out --------------------------------------- */

static void hook_unsub_self(struct hub *h, struct conn *c, ps_frame *f)
{
    (void)f;
    assert_int_equal(ps_topics_unsubscribe(c->sub, "t", 1), 1);
    /* The topic is being walked: its death waits for the walk to end. */
    assert_int_equal(ps_topics_count(h->t), 1);
    assert_string_equal(h->events, "+t;");
}

static void reentrant_unsubscribe_self(void **state)
{
    struct hub h;
    ps_frame *f = text("x");

    (void)state;
    hub_init(&h, 50);
    for (size_t i = 0; i < 50; i++)
        sub_ok(hub_open(&h, i, 0, 0), "t");
    h.hook = hook_unsub_self;
    assert_int_equal(publish(&h, "t", f, NULL), 50);
    for (size_t i = 0; i < 50; i++)
        assert_int_equal(h.conns[i].got, 1);
    assert_int_equal(ps_topics_count(h.t), 0);
    assert_string_equal(h.events, "+t;-t;");
    h.hook = NULL;
    assert_int_equal(publish(&h, "t", f, NULL), 0);
    hub_free(&h);
    ps_frame_unref(f);
}

/* The first subscriber reached unsubscribes every other one: they are not
 * reached, and the walk's skipped slots are compacted afterwards. */
static void hook_unsub_others(struct hub *h, struct conn *c, ps_frame *f)
{
    (void)f;
    if (h->step++ != 0)
        return;
    for (size_t i = 0; i < h->nconns; i++)
        if (&h->conns[i] != c)
            assert_int_equal(
                ps_topics_unsubscribe(h->conns[i].sub, "t", 1), 1);
}

static void reentrant_unsubscribe_others(void **state)
{
    struct hub h;
    ps_frame *f = text("x");
    size_t first = SIZE_MAX;

    (void)state;
    hub_init(&h, 20);
    for (size_t i = 0; i < 20; i++)
        sub_ok(hub_open(&h, i, 0, 0), "t");
    h.hook = hook_unsub_others;
    assert_int_equal(publish(&h, "t", f, NULL), 1);
    for (size_t i = 0; i < 20; i++) {
        if (h.conns[i].got == 1) {
            assert_int_equal(first, SIZE_MAX);
            first = i;
        } else {
            assert_int_equal(h.conns[i].got, 0);
        }
    }
    assert_int_not_equal(first, SIZE_MAX);
    assert_int_equal(ps_topics_subscriber_count(h.t, "t", 1), 1);
    assert_int_equal(publish(&h, "t", f, NULL), 1);
    assert_int_equal(h.conns[first].got, 2);
    /* Everyone can come back. */
    for (size_t i = 0; i < 20; i++)
        if (i != first)
            sub_ok(&h.conns[i], "t");
    h.hook = NULL;
    assert_int_equal(publish(&h, "t", f, NULL), 20);
    hub_free(&h);
    ps_frame_unref(f);
}

/* A subscriber added during a fan-out waits for the next message. */
static void hook_add_late(struct hub *h, struct conn *c, ps_frame *f)
{
    (void)c;
    (void)f;
    if (h->step++ == 0)
        sub_ok(hub_open(h, h->nconns - 1, 0, 0), "t");
}

static void reentrant_subscribe(void **state)
{
    struct hub h;
    ps_frame *f = text("x");
    struct conn *late;

    (void)state;
    hub_init(&h, 11);
    for (size_t i = 0; i < 10; i++)
        sub_ok(hub_open(&h, i, 0, 0), "t");
    h.hook = hook_add_late;
    assert_int_equal(publish(&h, "t", f, NULL), 10);
    late = &h.conns[10];
    assert_int_equal(late->got, 0);
    assert_int_equal(ps_topics_subscriber_count(h.t, "t", 1), 11);
    assert_int_equal(publish(&h, "t", f, NULL), 11);
    assert_int_equal(late->got, 1);
    hub_free(&h);
    ps_frame_unref(f);
}

/* Leaving and rejoining inside one delivery moves the slot past the walk:
 * still one copy of the message. */
static void hook_rejoin(struct hub *h, struct conn *c, ps_frame *f)
{
    (void)h;
    (void)f;
    assert_int_equal(ps_topics_unsubscribe(c->sub, "t", 1), 1);
    sub_ok(c, "t");
}

static void reentrant_rejoin(void **state)
{
    struct hub h;
    ps_frame *f = text("x");

    (void)state;
    hub_init(&h, 8);
    for (size_t i = 0; i < 8; i++)
        sub_ok(hub_open(&h, i, 0, 0), "t");
    h.hook = hook_rejoin;
    assert_int_equal(publish(&h, "t", f, NULL), 8);
    assert_int_equal(publish(&h, "t", f, NULL), 8);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(h.conns[i].got, 2);
    assert_string_equal(h.events, "+t;");
    hub_free(&h);
    ps_frame_unref(f);
}

/* Everyone leaves during the walk, then one rejoins: the topic never died,
 * so nothing is announced. */
static void hook_empty_then_revive(struct hub *h, struct conn *c,
                                   ps_frame *f)
{
    (void)c;
    (void)f;
    if (h->step++ != 0)
        return;
    for (size_t i = 0; i < h->nconns; i++)
        (void)ps_topics_unsubscribe_all(h->conns[i].sub);
    assert_int_equal(ps_topics_count(h->t), 1);
    sub_ok(&h->conns[3], "t");
}

static void reentrant_empty_then_revive(void **state)
{
    struct hub h;
    ps_frame *f = text("x");

    (void)state;
    hub_init(&h, 6);
    for (size_t i = 0; i < 6; i++)
        sub_ok(hub_open(&h, i, 0, 0), "t");
    h.hook = hook_empty_then_revive;
    assert_int_equal(publish(&h, "t", f, NULL), 1);
    assert_string_equal(h.events, "+t;");
    assert_int_equal(ps_topics_count(h.t), 1);
    assert_int_equal(ps_topics_subscriber_count(h.t, "t", 1), 1);
    assert_int_equal(h.conns[3].got, 0); /* rejoined behind the walk */
    assert_int_equal(publish(&h, "t", f, NULL), 1);
    assert_int_equal(h.conns[3].got, 1);
    assert_int_equal(h.conns[0].got, 1);
    hub_free(&h);
    ps_frame_unref(f);
}

/* The slow-consumer policy: a subscriber is closed (freed) from inside its
 * own delivery, and others are closed from inside someone else's. */
static void hook_close(struct hub *h, struct conn *c, ps_frame *f)
{
    (void)f;
    if (c->idx % 3 == 0)
        conn_close(h, c); /* itself */
    if (c->idx + 1 < h->nconns && (c->idx + 1) % 3 == 1 &&
        h->conns[c->idx + 1].sub != NULL)
        conn_close(h, &h->conns[c->idx + 1]); /* a neighbour */
}

static void reentrant_close_during_fanout(void **state)
{
    struct hub h;
    ps_frame *f = text("x");
    size_t reached, alive = 0;

    (void)state;
    hub_init(&h, 30);
    for (size_t i = 0; i < 30; i++) {
        struct conn *c = hub_open(&h, i, 1024, 4096);
        sub_ok(c, "t");
        sub_ok(c, i % 2 ? "odd" : "even");
    }
    h.hook = hook_close;
    reached = publish(&h, "t", f, NULL);
    for (size_t i = 0; i < 30; i++)
        if (h.conns[i].sub != NULL)
            alive++;
    /* Every conn reached unless a neighbour closed it first. */
    /* Delivery runs in subscription order: conn 3k closes itself and
     * 3k + 1 (never reached), 3k + 2 survives. */
    assert_int_equal(reached, 20);
    assert_int_equal(alive, 10);
    assert_int_equal(h.closed, 20);
    assert_int_equal(ps_topics_subscriber_count(h.t, "t", 1), alive);
    h.hook = NULL;
    assert_int_equal(publish(&h, "t", f, NULL), alive);
    assert_int_equal(ps_topics_subscriber_count(h.t, "odd", 3) +
                         ps_topics_subscriber_count(h.t, "even", 4),
                     alive);
    hub_free(&h);
    assert_int_equal(ps_frame_refcount(f), 1);
    ps_frame_unref(f);
}

/* A delivery that publishes again, on the same topic and on another, with
 * unsubscribes inside the inner walk. */
static void hook_nested(struct hub *h, struct conn *c, ps_frame *f)
{
    uint32_t s, n;

    seq_read(f, &s, &n);
    if (n == 1 && h->step++ == 0) {
        ps_frame *g = seq_frame(0, 2);
        /* Inner walk on the topic the outer walk holds. */
        assert_int_equal(ps_topics_publish(h->t, "t", 1, g, NULL),
                         h->nconns);
        ps_frame_unref(g);
        g = seq_frame(0, 3);
        assert_int_equal(ps_topics_publish(h->t, "u", 1, g, c->sub),
                         h->nconns - 1);
        ps_frame_unref(g);
    }
    if (n == 2 && c->idx == h->nconns - 1)
        assert_int_equal(ps_topics_unsubscribe(h->conns[0].sub, "t", 1), 1);
}

static void reentrant_nested_publish(void **state)
{
    struct hub h;
    ps_frame *f = seq_frame(0, 1);

    (void)state;
    hub_init(&h, 5);
    for (size_t i = 0; i < 5; i++) {
        struct conn *c = hub_open(&h, i, 1u << 16, 1u << 16);
        sub_ok(c, "t");
        sub_ok(c, "u");
    }
    h.hook = hook_nested;
    publish(&h, "t", f, NULL);
    assert_int_equal(ps_topics_subscriber_count(h.t, "t", 1), 4);
    h.hook = NULL;
    assert_int_equal(publish(&h, "t", f, NULL), 4);
    /* conn 0: seq 1, then the nested seq 2; it was excluded from seq 3 and
     * had left "t" before the last publish. */
    assert_int_equal(ps_queue_count(h.conns[0].q), 2);
    /* Later subscribers get the nested messages before the outer one, as
     * documented: a publish from a callback runs at once. */
    {
        const uint32_t want[] = {2, 3, 1, 1};
        for (size_t i = 0; i < 4; i++) {
            uint32_t s, n;
            ps_frame *g = ps_queue_pop(h.conns[1].q);
            assert_non_null(g);
            seq_read(g, &s, &n);
            assert_int_equal(n, want[i]);
            ps_frame_unref(g);
        }
    }
    hub_free(&h);
    ps_frame_unref(f);
}

/* --- scale ------------------------------------------------------------- */

static void scale_10k_subscribers(void **state)
{
    enum { N = 10000 };
    struct hub h;
    ps_frame *f = text("to everyone");

    (void)state;
    hub_init(&h, N);
    for (size_t i = 0; i < N; i++)
        sub_ok(hub_open(&h, i, 4096, 8192), "all");
    assert_int_equal(ps_topics_count(h.t), 1);
    assert_int_equal(ps_topics_subscriber_count(h.t, "all", 3), N);
    assert_int_equal(publish(&h, "all", f, &h.conns[17]), N - 1);
    assert_int_equal(ps_frame_refcount(f), N);
    for (size_t i = 0; i < N; i += 2)
        assert_int_equal(ps_topics_unsubscribe(h.conns[i].sub, "all", 3), 1);
    assert_int_equal(publish(&h, "all", f, NULL), N / 2);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(h.conns[i].got, (i % 2 ? 2 : 1) - (i == 17));
    for (size_t i = 1; i < N; i += 2) {
        ps_subscriber_free(h.conns[i].sub);
        h.conns[i].sub = NULL;
    }
    assert_int_equal(ps_topics_count(h.t), 0);
    assert_string_equal(h.events, "+all;-all;");
    hub_free(&h);
    assert_int_equal(ps_frame_refcount(f), 1);
    ps_frame_unref(f);
}

static void scale_10k_topics(void **state)
{
    enum { N = 10000 };
    struct hub h;
    struct conn *a, *b;
    ps_frame *f = text("m");
    char name[32];

    (void)state;
    hub_init(&h, 2);
    a = hub_open(&h, 0, 1u << 20, 1u << 20);
    b = hub_open(&h, 1, 0, 0);
    h.events[0] = '\0';
    ps_topics_set_interest(h.t, NULL, NULL);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "topic-%d", i);
        sub_ok(a, name);
        if (i % 100 == 0)
            sub_ok(b, name);
    }
    assert_int_equal(ps_topics_count(h.t), N);
    assert_int_equal(ps_subscriber_topic_count(a->sub), N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "topic-%d", i);
        assert_int_equal(publish(&h, name, f, NULL), i % 100 == 0 ? 2 : 1);
    }
    assert_int_equal(a->got, N);
    assert_int_equal(b->got, N / 100);
    /* Remove every odd topic: lookups of the rest still succeed as the
     * table shifts entries back and shrinks. */
    for (int i = 1; i < N; i += 2) {
        snprintf(name, sizeof(name), "topic-%d", i);
        assert_int_equal(ps_topics_unsubscribe(a->sub, name, strlen(name)),
                         1);
    }
    assert_int_equal(ps_topics_count(h.t), N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "topic-%d", i);
        assert_int_equal(ps_topics_subscriber_count(h.t, name, strlen(name)),
                         i % 2 ? 0 : (i % 100 == 0 ? 2 : 1));
    }
    assert_int_equal(ps_topics_unsubscribe_all(a->sub), N / 2);
    assert_int_equal(ps_topics_count(h.t), N / 100);
    assert_int_equal(ps_topics_unsubscribe_all(b->sub), N / 100);
    assert_int_equal(ps_topics_count(h.t), 0);
    hub_free(&h);
    assert_int_equal(ps_frame_refcount(f), 1);
    ps_frame_unref(f);
}

/* Three senders publish interleaved on one topic while subscribers come and
 * go; each subscriber receives each sender's messages in sending order. */
static void order_preserved(void **state)
{
    enum { SUBS = 12, SENDERS = 3, MSGS = 3000 };
    struct hub h;
    uint32_t seq[SENDERS] = {0};
    uint32_t rng = 12345;

    (void)state;
    hub_init(&h, SUBS);
    for (size_t i = 0; i < SUBS; i++) {
        struct conn *c = hub_open(&h, i, 1u << 20, 1u << 20);
        if (i < SUBS / 2)
            sub_ok(c, "room");
    }
    for (int m = 0; m < MSGS; m++) {
        rng = rng * 1103515245u + 12345u;
        uint32_t s = (rng >> 16) % SENDERS;
        ps_frame *f = seq_frame(s, seq[s]++);
        /* Sender s is connection s: it does not hear itself. */
        publish(&h, "room", f, &h.conns[s]);
        ps_frame_unref(f);
        if (m == MSGS / 3)
            for (size_t i = SUBS / 2; i < SUBS; i++)
                sub_ok(&h.conns[i], "room");
        if (m == 2 * MSGS / 3)
            assert_int_equal(ps_topics_unsubscribe(h.conns[SUBS - 1].sub,
                                                   "room", 4),
                             1);
    }
    for (size_t i = 0; i < SUBS; i++) {
        int64_t last[SENDERS] = {-1, -1, -1};
        size_t count[SENDERS] = {0};
        ps_frame *f;
        while ((f = ps_queue_pop(h.conns[i].q)) != NULL) {
            uint32_t s, n;
            seq_read(f, &s, &n);
            assert_true(s < SENDERS);
            assert_true((int64_t)n > last[s]);
            if (i < SUBS / 2)
                assert_int_equal(n, last[s] + 1); /* nothing missed */
            last[s] = n;
            count[s]++;
            ps_frame_unref(f);
        }
        for (uint32_t s = 0; s < SENDERS; s++) {
            if (i == s)
                assert_int_equal(count[s], 0);
            else if (i < SUBS / 2)
                assert_int_equal(count[s], seq[s]);
            else
                assert_true(count[s] > 0 && count[s] < seq[s]);
        }
    }
    hub_free(&h);
}

/* Stalled readers never drain: each queue stays within its limit whatever
 * is published, and the frames live exactly as long as a queue holds them. */
static void memory_bounded_stalled(void **state)
{
    enum { SUBS = 200, MSGS = 2000, LIMIT = 8192, HW = 4096 };
    struct hub h;
    char payload[100];
    ps_frame *frames[MSGS];
    size_t per_queue;

    (void)state;
    memset(payload, 'z', sizeof(payload));
    hub_init(&h, SUBS);
    for (size_t i = 0; i < SUBS; i++)
        sub_ok(hub_open(&h, i, HW, LIMIT), "feed");
    for (int m = 0; m < MSGS; m++) {
        frames[m] = ps_frame_new(PS_OP_TEXT, payload, sizeof(payload));
        assert_non_null(frames[m]);
        publish(&h, "feed", frames[m], NULL);
        for (size_t i = 0; i < SUBS; i += 37) {
            assert_true(ps_queue_footprint(h.conns[i].q) <= LIMIT);
            assert_true(ps_queue_memory(h.conns[i].q) <= LIMIT);
        }
    }
    per_queue = LIMIT / (102 + PS_QUEUE_SLOT_COST);
    for (size_t i = 0; i < SUBS; i++) {
        assert_int_equal(ps_queue_count(h.conns[i].q), per_queue);
        assert_true(ps_queue_pressured(h.conns[i].q));
    }
    assert_int_equal(h.dropped, (size_t)SUBS * (MSGS - per_queue));
    /* The first per_queue frames are held by every queue, the rest by
     * none. */
    for (int m = 0; m < MSGS; m++)
        assert_int_equal(ps_frame_refcount(frames[m]),
                         (size_t)m < per_queue ? 1 + SUBS : 1);
    for (size_t i = 0; i < SUBS; i++)
        ps_queue_clear(h.conns[i].q);
    for (int m = 0; m < MSGS; m++)
        assert_int_equal(ps_frame_refcount(frames[m]), 1);
    unref_all(frames, MSGS);
    hub_free(&h);
}

/* The close policy: a consumer over its limit is closed and unsubscribed
 * from inside the fan-out; once all are closed the topic dies. */
static void memory_close_policy(void **state)
{
    enum { SUBS = 100 };
    struct hub h;
    char payload[500];
    int m;

    (void)state;
    memset(payload, 'q', sizeof(payload));
    hub_init(&h, SUBS);
    h.close_on_drop = 1;
    for (size_t i = 0; i < SUBS; i++)
        /* Different limits: consumers fall over at different times. */
        sub_ok(hub_open(&h, i, 1024, 2048 + 512 * (i % 4)), "feed");
    for (m = 0; ps_topics_count(h.t) > 0; m++) {
        ps_frame *f = ps_frame_new(PS_OP_BINARY, payload, sizeof(payload));
        assert_non_null(f);
        publish(&h, "feed", f, NULL);
        ps_frame_unref(f);
        assert_true(m < 100);
    }
    assert_int_equal(h.closed, SUBS);
    assert_int_equal(h.dropped, SUBS);
    assert_string_equal(h.events, "+feed;-feed;");
    for (size_t i = 0; i < SUBS; i++)
        assert_int_equal(ps_queue_count(h.conns[i].q), 0);
    hub_free(&h);
}

static void topics_free_with_live_subscribers(void **state)
{
    ps_topics *t = ps_topics_new(hub_deliver, NULL);
    ps_subscriber *s[3];

    (void)state;
    assert_non_null(t);
    for (int i = 0; i < 3; i++) {
        s[i] = ps_subscriber_new(t, (uint64_t)i, NULL);
        assert_non_null(s[i]);
    }
    assert_int_equal(ps_topics_subscribe(s[0], "x", 1), 1);
    assert_int_equal(ps_topics_subscribe(s[1], "x", 1), 1);
    assert_int_equal(ps_topics_subscribe(s[1], "y", 1), 1);
    ps_subscriber_free(s[2]);
    ps_topics_free(t); /* frees s[0], s[1] and both topics */
    ps_topics_free(NULL);
}

/* --- buses ------------------------------------------------------------- */

static void bus_local_publish(void **state)
{
    struct hub h;
    ps_bus *bus;
    ps_frame *f0, *f1;

    (void)state;
    hub_init(&h, 3);
    for (size_t i = 0; i < 3; i++)
        sub_ok(hub_open(&h, i, 1u << 16, 1u << 16), "room");
    bus = ps_bus_local_new(h.t);
    assert_non_null(bus);
    assert_string_equal(bus->ops->name, "local");

    assert_int_equal(ps_bus_publish(bus, "room", 4, PS_OP_TEXT, "hi", 2,
                                    h.conns[2].sub),
                     2);
    f0 = ps_queue_peek(h.conns[0].q, NULL);
    f1 = ps_queue_peek(h.conns[1].q, NULL);
    assert_non_null(f0);
    assert_ptr_equal(f0, f1); /* encoded once */
    assert_int_equal(ps_frame_opcode(f0), PS_OP_TEXT);
    assert_memory_equal(ps_frame_wire(f0), "\x81\x02hi", 4);
    assert_int_equal(ps_frame_refcount(f0), 2); /* the queues' only */
    assert_int_equal(ps_queue_count(h.conns[2].q), 0);

    assert_int_equal(
        ps_bus_publish(bus, "room", 4, PS_OP_BINARY, NULL, 0, NULL), 3);
    assert_int_equal(ps_bus_publish(bus, "none", 4, PS_OP_TEXT, "x", 1, NULL),
                     0);
    assert_int_equal(ps_bus_publish(bus, "room", 4, 0x3, "x", 1, NULL),
                     -EINVAL);

    f0 = text("framed already");
    assert_int_equal(ps_bus_publish_frame(bus, "room", 4, f0, NULL), 3);
    assert_int_equal(ps_frame_refcount(f0), 4);
    ps_frame_unref(f0);

    /* The local bus follows no interest: forwarding it is harmless. */
    ps_topics_set_interest(h.t, ps_bus_on_interest, bus);
    sub_ok(&h.conns[0], "other");
    assert_int_equal(ps_topics_unsubscribe(h.conns[0].sub, "other", 5), 1);

    /* Stop forwarding before the bus goes: freeing the hub kills topics. */
    ps_topics_set_interest(h.t, NULL, NULL);
    ps_bus_close(bus);
    ps_bus_close(NULL);
    hub_free(&h);
}

/* A bus of another kind, written against bus.h alone: it delivers locally
 * and records what it would send elsewhere and which topics it follows. */
struct fake_bus {
    ps_bus base;
    ps_topics *topics;
    char log[512];
    size_t sent_bytes;
};

static void fake_log(struct fake_bus *b, const char *what, const char *topic,
                     size_t len)
{
    size_t used = strlen(b->log);

    snprintf(b->log + used, sizeof(b->log) - used, "%s%.*s;", what, (int)len,
             topic);
}

static int fake_publish(ps_bus *bus, const char *topic, size_t len,
                        ps_frame *frame, const ps_subscriber *exclude)
{
    struct fake_bus *b = (struct fake_bus *)bus;
    size_t n = ps_topics_publish(b->topics, topic, len, frame, exclude);

    fake_log(b, "pub:", topic, len);
    b->sent_bytes += ps_frame_payload_len(frame);
    return (int)n;
}

static void fake_sub(ps_bus *bus, const char *topic, size_t len)
{
    fake_log((struct fake_bus *)bus, "sub:", topic, len);
}

static void fake_unsub(ps_bus *bus, const char *topic, size_t len)
{
    fake_log((struct fake_bus *)bus, "unsub:", topic, len);
}

static void fake_close(ps_bus *bus)
{
    free(bus);
}

static const ps_bus_ops fake_ops = {
    .name = "fake",
    .publish = fake_publish,
    .subscribe_interest = fake_sub,
    .unsubscribe_interest = fake_unsub,
    .close = fake_close,
};

static void bus_interface_interest(void **state)
{
    struct hub h;
    struct fake_bus *fb = calloc(1, sizeof(*fb));
    ps_bus *bus;

    (void)state;
    assert_non_null(fb);
    hub_init(&h, 2);
    fb->base.ops = &fake_ops;
    fb->topics = h.t;
    bus = &fb->base;
    ps_topics_set_interest(h.t, ps_bus_on_interest, bus);

    sub_ok(hub_open(&h, 0, 1u << 16, 1u << 16), "a");
    sub_ok(&h.conns[0], "b");
    sub_ok(hub_open(&h, 1, 1u << 16, 1u << 16), "a");
    assert_int_equal(ps_bus_publish(bus, "a", 1, PS_OP_TEXT, "xyz", 3, NULL),
                     2);
    assert_int_equal(fb->sent_bytes, 3);
    ps_subscriber_free(h.conns[0].sub);
    h.conns[0].sub = NULL;
    assert_string_equal(fb->log, "sub:a;sub:b;pub:a;unsub:b;");
    ps_subscriber_free(h.conns[1].sub);
    h.conns[1].sub = NULL;
    assert_string_equal(fb->log, "sub:a;sub:b;pub:a;unsub:b;unsub:a;");
    ps_bus_close(bus);
    hub_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frame_len_0),
        cmocka_unit_test(frame_len_125),
        cmocka_unit_test(frame_len_126),
        cmocka_unit_test(frame_len_65535),
        cmocka_unit_test(frame_len_65536),
        cmocka_unit_test(frame_len_1mb),
        cmocka_unit_test(frame_control),
        cmocka_unit_test(frame_bad_opcode),
        cmocka_unit_test(frame_alloc_fill),
        cmocka_unit_test(frame_refcount),
        cmocka_unit_test(frame_refcount_threads),
        cmocka_unit_test(frame_release_across_threads),
        cmocka_unit_test(queue_new_invalid),
        cmocka_unit_test(queue_null_is_empty),
        cmocka_unit_test(queue_return_codes),
        cmocka_unit_test(queue_oversized),
        cmocka_unit_test(queue_fifo_wraparound),
        cmocka_unit_test(queue_inline_slots),
        cmocka_unit_test(queue_push_owned_and_bulk_references),
        cmocka_unit_test(queue_partial_writes),
        cmocka_unit_test(queue_partial_stream),
        cmocka_unit_test(queue_memory_bounded),
        cmocka_unit_test(topics_subscribe_unsubscribe),
        cmocka_unit_test(topics_unsubscribe_all),
        cmocka_unit_test(topics_memberships_leave_the_inline_slots),
        cmocka_unit_test(topics_death_and_interest),
        cmocka_unit_test(topics_binary_names),
        cmocka_unit_test(topics_publish_exclude),
        cmocka_unit_test(topics_ledger_counts_and_reaches_nobody),
        cmocka_unit_test(topics_publish_counts_dropped),
        cmocka_unit_test(reentrant_unsubscribe_self),
        cmocka_unit_test(reentrant_unsubscribe_others),
        cmocka_unit_test(reentrant_subscribe),
        cmocka_unit_test(reentrant_rejoin),
        cmocka_unit_test(reentrant_empty_then_revive),
        cmocka_unit_test(reentrant_close_during_fanout),
        cmocka_unit_test(reentrant_nested_publish),
        cmocka_unit_test(scale_10k_subscribers),
        cmocka_unit_test(scale_10k_topics),
        cmocka_unit_test(order_preserved),
        cmocka_unit_test(memory_bounded_stalled),
        cmocka_unit_test(memory_close_policy),
        cmocka_unit_test(topics_free_with_live_subscribers),
        cmocka_unit_test(ledger_counts_and_memberships),
        cmocka_unit_test(ledger_each_walks_every_topic_once),
        cmocka_unit_test(bus_local_publish),
        cmocka_unit_test(bus_interface_interest),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
