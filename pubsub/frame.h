/*
 * frame.h: refcounted, immutable, encode-once WebSocket frames.
 *
 * A frame is one complete server-to-client RFC 6455 message (FIN set, no
 * mask), encoded once into a single allocation and shared by reference:
 * every subscriber's send queue holds a reference to the same bytes.
 *
 * Layout of the one allocation:
 *
 *     [ >= PS_FRAME_HEADROOM bytes ][ header, 2..10 bytes ][ payload ]
 *                                   ^ ps_frame_wire()      ^ ps_frame_payload()
 *
 * Both the framed bytes and the payload have at least PS_FRAME_HEADROOM
 * bytes of valid memory in front of them, which is what lws_write() demands
 * (LWS_PRE) of every buffer it is given.
 *
 * Threads: the reference count is atomic, so a frame may be created on one
 * thread, shared, and released on others. Its bytes never change after it is
 * first shared (see ps_frame_alloc() for the one window where they may); the
 * compressed variants it may gain later (ps_frame_deflated()) are separate
 * frames, added atomically.
 */
#ifndef PS_FRAME_H
#define PS_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Marks a function whose result must be checked: it can fail, or it hands
 * out something the caller must release. */
#ifndef PS_MUST_CHECK
#define PS_MUST_CHECK __attribute__((warn_unused_result))
#endif

/*
 * Bytes of valid memory guaranteed in front of both ps_frame_wire() and
 * ps_frame_payload(). libwebsockets needs LWS_PRE (16 on every platform lws
 * supports) before any buffer passed to lws_write(); the lws side should
 * check it once with
 *     _Static_assert(PS_FRAME_HEADROOM >= LWS_PRE, "frame headroom");
 * The headroom is zero-filled and is not part of the message.
 */
#define PS_FRAME_HEADROOM 16

/* The longest RFC 6455 server header: 2 bytes + a 64-bit length. */
#define PS_FRAME_MAX_HEADER 10

/* Control frames (close, ping, pong) carry at most this many payload bytes. */
#define PS_FRAME_MAX_CONTROL 125

/* RFC 6455 opcodes a frame may carry. Continuation frames are not offered:
 * every ps_frame is a whole, unfragmented message. */
enum ps_opcode {
    PS_OP_TEXT = 0x1,
    PS_OP_BINARY = 0x2,
    PS_OP_CLOSE = 0x8,
    PS_OP_PING = 0x9,
    PS_OP_PONG = 0xA,
};

typedef struct ps_frame ps_frame;

/*
 * Encodes one message: header (FIN + opcode, 7/16/64-bit length, unmasked)
 * followed by a copy of the len bytes at payload, behind PS_FRAME_HEADROOM
 * bytes of headroom, in one allocation.
 *
 * payload is only read during the call; it may be NULL when len is 0.
 * Returns a new frame holding one reference, which the caller owns and
 * releases with ps_frame_unref(). Returns NULL and sets errno to EINVAL for
 * an opcode not in enum ps_opcode or a control frame longer than
 * PS_FRAME_MAX_CONTROL, or to ENOMEM.
 */
PS_MUST_CHECK ps_frame *ps_frame_new(unsigned opcode, const void *payload,
                                     size_t len);

/*
 * Like ps_frame_new(), but leaves the len payload bytes for the caller to
 * fill: *payload_out is set to them. The caller must finish writing them
 * before the frame is shared (queued, published, or ref'd by another
 * thread); from then on the frame is immutable. Saves a copy when the
 * payload is produced directly into place. Same returns as ps_frame_new();
 * *payload_out is untouched on failure.
 */
PS_MUST_CHECK ps_frame *ps_frame_alloc(unsigned opcode, size_t len,
                                       unsigned char **payload_out);

/* Takes one more reference to f, which the caller then owns. Returns f.
 * Safe from any thread that already holds a reference. */
ps_frame *ps_frame_ref(ps_frame *f);

/* Takes n more references to f with one atomic addition (a fan-out takes
 * those its queues will keep at once, rather than one locked instruction
 * per subscriber). Returns f. */
ps_frame *ps_frame_ref_many(ps_frame *f, size_t n);

/* Releases n references to f at once (the last frees it). NULL or n 0 is a
 * no-op. */
void ps_frame_unref_many(ps_frame *f, size_t n);

/* Releases one reference to f; the last one frees it. NULL is a no-op.
 * Safe from any thread. f must not be used by the caller afterwards. */
void ps_frame_unref(ps_frame *f);

/*
 * The complete framed message, header included: write these bytes as they
 * are (with lws: lws_write(wsi, wire, len, LWS_WRITE_RAW), which adds no
 * framing and writes nothing into the buffer). Borrowed: valid while the
 * caller holds a reference. PS_FRAME_HEADROOM bytes in front are valid.
 */
const unsigned char *ps_frame_wire(const ps_frame *f);

/* Length of ps_frame_wire(): header plus payload. */
size_t ps_frame_wire_len(const ps_frame *f);

/*
 * The payload alone, for writers that frame it themselves (lws_write() with
 * LWS_WRITE_TEXT / LWS_WRITE_BINARY, e.g. to let permessage-deflate
 * compress it). Borrowed, like ps_frame_wire(). At least PS_FRAME_HEADROOM
 * + the header length bytes in front are valid. Note that lws_write() in
 * that mode writes its own (identical) header into those bytes in place, so
 * it must not run on one frame from two threads at once; raw writes of
 * ps_frame_wire() have no such limit.
 */
const unsigned char *ps_frame_payload(const ps_frame *f);

/* Length of ps_frame_payload(). */
size_t ps_frame_payload_len(const ps_frame *f);

/* The frame's opcode, one of enum ps_opcode. */
unsigned ps_frame_opcode(const ps_frame *f);

/* ---- permessage-deflate variants (RFC 7692) ------------------------------------------
 *
 * With no context takeover on the server's side, a message compresses to the same bytes
 * for every peer that negotiated the same server window, whatever each peer received
 * before. So a published frame carries, beside its plain bytes, at most one compressed
 * variant per window size, made the first time a subscriber with that window needs it
 * and shared by all of them, the way the plain frame is: a fan-out to 1,000 deflate
 * subscribers compresses once, and a fan-out with no deflate subscriber compresses
 * nothing. A variant is itself a ps_frame (RSV1 set in its header, the compressed
 * payload after it), so queues hold and write it like any other.
 */

/*
 * The variant of f for a peer that negotiated permessage-deflate with
 * server_max_window_bits=window_bits (8..15; 15 when the peer named none): made on the
 * first call for that window (8 and 9 share one, see deflate.h), then found. Borrowed:
 * valid while the caller holds its reference to f; ps_frame_ref() it to keep it (a queue
 * push does). Returns f itself, to be sent uncompressed, when f is a control frame or is
 * already compressed, when window_bits is out of range, when the compressed payload
 * would not be smaller than the plain one (remembered, so a fan-out tries once), or when
 * memory runs out. Safe from any thread holding a reference to f: two threads asking at
 * once may both compress, and one result is kept for both.
 */
ps_frame *ps_frame_deflated(ps_frame *f, unsigned window_bits);

/*
 * Encodes one compressed message: a frame with RSV1 set whose payload is the len bytes
 * at payload compressed as ps_deflate_message() does. opcode is PS_OP_TEXT or
 * PS_OP_BINARY. Returns a new frame holding one reference, or NULL with errno EINVAL
 * (another opcode, window_bits outside 8..15) or ENOMEM. Not smaller than the input,
 * maybe: ps_frame_deflated() is the call that decides whether to send it.
 */
PS_MUST_CHECK ps_frame *ps_frame_new_deflated(unsigned opcode, const void *payload,
                                              size_t len, unsigned window_bits);

/* 1 when f's payload is compressed (its header has RSV1 set), else 0. */
int ps_frame_compressed(const ps_frame *f);

/* The current number of references, for tests and diagnostics only: with
 * other threads holding references it may be stale as soon as it is read. */
size_t ps_frame_refcount(const ps_frame *f);

#endif /* PS_FRAME_H */
