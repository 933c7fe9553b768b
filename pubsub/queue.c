/*
 * queue.c: bounded per-connection send queues.
 *
 * The slots form a ring whose capacity is a power of two. Its first
 * PS_QUEUE_INLINE_SLOTS slots live in the queue itself, so a fan-out that
 * queues a frame or a few for each of thousands of subscribers allocates
 * nothing per subscriber. Past them the ring moves to the heap and grows by
 * doubling, only after a push has been admitted; a full ring of cap slots
 * admitted means a footprint of at least
 * (cap + 1) * PS_QUEUE_SLOT_COST = (cap + 1) * 2 * sizeof(void *), which is
 * more than the doubled ring's 2 * cap * sizeof(void *). So the heap ring
 * never outgrows the footprint's bound (queue.h). An emptied queue keeps it,
 * so that a connection given a few dozen frames per round does not allocate
 * and free it (three times, growing) every round; ps_queue_trim() gives it
 * back once the queue has stayed empty, so an idle connection holds none.
 */
#include "queue.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ps_queue {
    ps_frame **ring; /* inline_slots, or a heap array of cap slots */
    size_t cap;    /* slots in ring: a power of two */
    size_t head;   /* index of the oldest frame */
    size_t count;  /* frames queued */
    size_t bytes;  /* wire bytes not yet consumed */
    size_t offset; /* bytes of the head frame already consumed */
    size_t high_water;
    size_t limit;
    ps_frame *inline_slots[PS_QUEUE_INLINE_SLOTS];
};

/* Points the ring back at the inline slots (the heap ring, if any, is the
 * caller's to free). */
static void ring_reset(ps_queue *q)
{
    q->ring = q->inline_slots;
    q->cap = PS_QUEUE_INLINE_SLOTS;
    q->head = 0;
}

ps_queue *ps_queue_new(size_t high_water, size_t limit)
{
    ps_queue *q;

    if (high_water > limit) {
        errno = EINVAL;
        return NULL;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->high_water = high_water;
    q->limit = limit;
    ring_reset(q);
    return q;
}

void ps_queue_free(ps_queue *q)
{
    if (q == NULL)
        return;
    ps_queue_clear(q);
    free(q);
}

/* Doubles the ring (from the inline slots: onto the heap), keeping order.
 * Returns 0 or -ENOMEM, in which case the ring is unchanged. */
static int ring_grow(ps_queue *q)
{
    size_t ncap = q->cap * 2;
    ps_frame **nring;

    if (ncap > SIZE_MAX / sizeof(*nring))
        return -ENOMEM;
    nring = malloc(ncap * sizeof(*nring));
    if (nring == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < q->count; i++)
        nring[i] = q->ring[(q->head + i) & (q->cap - 1)];
    if (q->ring != q->inline_slots)
        free(q->ring);
    q->ring = nring;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

/* Drops the head slot (whose reference has been taken care of). */
static void ring_advance(ps_queue *q)
{
    q->head = (q->head + 1) & (q->cap - 1);
    q->offset = 0;
    if (--q->count == 0)
        q->head = 0;
}

/* Appends frame; owned: the queue keeps one of the caller's references
 * instead of taking a new one. */
static int push(ps_queue *q, ps_frame *frame, bool owned)
{
    size_t wire = ps_frame_wire_len(frame);
    size_t used = ps_queue_footprint(q);

    /* At or under the high-water mark any one message is taken, however large: one bigger
     * than the limit could otherwise never be sent, even on an idle connection. Past the
     * mark it must fit under the limit; a queue already over the limit (made so by such a
     * message) takes nothing until it drains. */
    if (used > q->high_water &&
        (used > q->limit || wire > q->limit - used ||
         PS_QUEUE_SLOT_COST > q->limit - used - wire))
        return PS_SEND_DROPPED;
    if (q->count == q->cap) {
        int rc = ring_grow(q);
        if (rc < 0)
            return rc;
    }
    q->ring[(q->head + q->count) & (q->cap - 1)] = owned ? frame : ps_frame_ref(frame);
    q->count++;
    q->bytes += wire;
    return ps_queue_pressured(q) ? PS_SEND_BACKPRESSURE : PS_SEND_OK;
}

int ps_queue_push(ps_queue *q, ps_frame *frame)
{
    return push(q, frame, false);
}

int ps_queue_push_owned(ps_queue *q, ps_frame *frame)
{
    return push(q, frame, true);
}

ps_frame *ps_queue_peek(const ps_queue *q, size_t *offset)
{
    size_t count = q != NULL ? q->count : 0;
    if (offset != NULL)
        *offset = count ? q->offset : 0;
    return count ? q->ring[q->head] : NULL;
}

int ps_queue_consume(ps_queue *q, size_t n)
{
    ps_frame *f;
    size_t left;

    if (q->count == 0)
        return -EINVAL;
    f = q->ring[q->head];
    left = ps_frame_wire_len(f) - q->offset;
    if (n > left)
        return -EINVAL;
    q->bytes -= n;
    if (n < left) {
        q->offset += n;
        return 0;
    }
    ring_advance(q);
    ps_frame_unref(f);
    return 1;
}

ps_frame *ps_queue_pop(ps_queue *q)
{
    ps_frame *f;

    if (q->count == 0)
        return NULL;
    f = q->ring[q->head];
    q->bytes -= ps_frame_wire_len(f) - q->offset;
    ring_advance(q);
    return f;
}

void ps_queue_clear(ps_queue *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->count; i++)
        ps_frame_unref(q->ring[(q->head + i) & (q->cap - 1)]);
    if (q->ring != q->inline_slots)
        free(q->ring);
    ring_reset(q);
    q->count = q->bytes = q->offset = 0;
}

void ps_queue_trim(ps_queue *q)
{
    if (q != NULL && q->count == 0 && q->ring != q->inline_slots) {
        free(q->ring);
        ring_reset(q);
    }
}

size_t ps_queue_count(const ps_queue *q)
{
    return q != NULL ? q->count : 0;
}

size_t ps_queue_bytes(const ps_queue *q)
{
    return q != NULL ? q->bytes : 0;
}

size_t ps_queue_footprint(const ps_queue *q)
{
    return q != NULL ? q->bytes + q->count * PS_QUEUE_SLOT_COST : 0;
}

bool ps_queue_pressured(const ps_queue *q)
{
    return ps_queue_footprint(q) > q->high_water;
}

size_t ps_queue_memory(const ps_queue *q)
{
    return q->ring == q->inline_slots ? 0 : q->cap * sizeof(*q->ring);
}

size_t ps_queue_high_water(const ps_queue *q)
{
    return q->high_water;
}

size_t ps_queue_limit(const ps_queue *q)
{
    return q->limit;
}
