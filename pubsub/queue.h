/*
 * queue.h: a connection's bounded send queue of frame references.
 *
 * A FIFO of ps_frame references with a byte budget. Each queued message is
 * charged its wire length plus PS_QUEUE_SLOT_COST (the queue's own per-slot
 * memory); the sum of the charges of what is still unwritten is the
 * queue's footprint. Two marks bound it:
 *
 *   high_water  at or under it, a push is always admitted, whatever the
 *               message's size (so a message bigger than the limit can be
 *               sent, one at a time); past it, pushes still succeed but
 *               answer PS_SEND_BACKPRESSURE: the sender should wait (a
 *               Python `await ws.send_text()` parks until
 *               ps_queue_pressured() turns false), a broadcaster may count
 *               the consumer as slow;
 *   limit       over the high-water mark, a push that would take the
 *               footprint past it is refused with PS_SEND_DROPPED and
 *               nothing is queued.
 *
 * Invariants: ps_queue_footprint() <= max(limit, high_water + the charge
 * of the largest message pushed) at all times, and the queue's own memory
 * (ps_queue_memory()) never exceeds that bound or PS_QUEUE_MIN_SLOTS *
 * sizeof(void *), whichever is larger, however long its reader stalls.
 * The frames themselves are shared and freed when their last reference goes.
 *
 * The writer side peeks the head frame and reports how many of its bytes
 * went out (ps_queue_consume()), so a frame may be written in several parts;
 * or it pops whole frames (ps_queue_pop()).
 *
 * Threads: a queue is not thread-safe. It belongs to the I/O thread that
 * owns its connection; other threads hand frames over to that thread.
 */
#ifndef PS_QUEUE_H
#define PS_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "frame.h"

/* What each queued message is charged on top of its wire bytes: its slot,
 * with room for the slot array's doubling. */
#define PS_QUEUE_SLOT_COST (2 * sizeof(void *))

/* Slots inside the queue itself: this many frames queue without allocating. */
#define PS_QUEUE_INLINE_SLOTS 4

/* Slots of the first heap ring, allocated by the push past the inline ones;
 * the floor of ps_queue_memory(). */
#define PS_QUEUE_MIN_SLOTS (2 * PS_QUEUE_INLINE_SLOTS)

/* Results of ps_queue_push(). */
enum ps_send_result {
    PS_SEND_OK = 0,           /* queued; footprint <= high_water */
    PS_SEND_BACKPRESSURE = 1, /* queued; footprint now > high_water */
    PS_SEND_DROPPED = 2,      /* not queued: over high_water, it would exceed limit */
};

typedef struct ps_queue ps_queue;

/*
 * Creates an empty queue. Returns it (owned by the caller, released with
 * ps_queue_free()), or NULL with errno EINVAL if high_water > limit, or
 * ENOMEM.
 */
PS_MUST_CHECK ps_queue *ps_queue_new(size_t high_water, size_t limit);

/* Releases every queued frame reference and the queue. NULL is a no-op. */
void ps_queue_free(ps_queue *q);

/*
 * Appends frame. On PS_SEND_OK and PS_SEND_BACKPRESSURE the queue has taken
 * its own reference to frame; on PS_SEND_DROPPED and on error it has taken
 * none and changed nothing. Either way the caller keeps its own reference.
 * Returns an enum ps_send_result, or -ENOMEM if the slot array could not
 * grow (treat it like PS_SEND_DROPPED).
 */
PS_MUST_CHECK int ps_queue_push(ps_queue *q, ps_frame *frame);

/*
 * Like ps_queue_push(), but on PS_SEND_OK and PS_SEND_BACKPRESSURE the
 * queue keeps one of the caller's references to frame (which the caller no
 * longer owns) instead of taking its own; otherwise the caller keeps it.
 */
PS_MUST_CHECK int ps_queue_push_owned(ps_queue *q, ps_frame *frame);

/*
 * The frame at the head, or NULL if the queue is empty. If offset is not
 * NULL, *offset is set to how many of its ps_frame_wire() bytes have been
 * consumed already (0 when empty), so the next bytes to write are
 * ps_frame_wire(f) + *offset, ps_frame_wire_len(f) - *offset of them.
 * Borrowed: valid until the next call that consumes, pops or clears.
 */
ps_frame *ps_queue_peek(const ps_queue *q, size_t *offset);

/* peek, clear, count, bytes and footprint also take NULL, a queue not made yet (a user that makes
 * its queue on the first push, as gateway/ws.c does): empty. */

/*
 * Records that n more bytes of the head frame's wire bytes were written.
 * When that completes the frame, the queue releases its reference and the
 * next frame becomes the head. Returns 1 if the head frame was completed, 0
 * if part of it remains, -EINVAL (and changes nothing) if the queue is empty
 * or n is more than what remains of the head frame.
 */
PS_MUST_CHECK int ps_queue_consume(ps_queue *q, size_t n);

/*
 * Removes the head frame and hands the queue's reference to the caller, who
 * must ps_frame_unref() it. Returns NULL if the queue is empty. Any partial
 * progress on that frame (ps_queue_consume()) is forgotten: a writer uses
 * either pop (whole frames) or peek + consume (parts), not both on a frame.
 */
PS_MUST_CHECK ps_frame *ps_queue_pop(ps_queue *q);

/* Releases every queued frame reference and the heap slots; the queue stays
 * usable. */
void ps_queue_clear(ps_queue *q);

/* Gives back the heap slots of an empty queue (an emptied queue keeps them
 * for its next frames); a no-op while frames are queued, and on NULL. Call
 * it for queues that have stayed empty a while, e.g. once a second. */
void ps_queue_trim(ps_queue *q);

/* Messages queued, the partly written head included. */
size_t ps_queue_count(const ps_queue *q);

/* Wire bytes queued and not yet consumed. */
size_t ps_queue_bytes(const ps_queue *q);

/* ps_queue_bytes() + ps_queue_count() * PS_QUEUE_SLOT_COST: what the marks
 * are checked against. */
size_t ps_queue_footprint(const ps_queue *q);

/*
 * True while the footprint is above the high-water mark. A writer that
 * wants to wake waiting senders samples it before consuming and again after:
 * true then false means the queue drained back under the mark.
 */
bool ps_queue_pressured(const ps_queue *q);

/* Bytes of heap memory the queue holds for its slots beyond the inline
 * ones (0 while they suffice, and after ps_queue_trim() of an empty queue),
 * not counting the shared frames. */
size_t ps_queue_memory(const ps_queue *q);

/* The marks given to ps_queue_new(). */
size_t ps_queue_high_water(const ps_queue *q);
size_t ps_queue_limit(const ps_queue *q);

#endif /* PS_QUEUE_H */
