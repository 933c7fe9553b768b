/*
 * frame.c: encode-once WebSocket frames with an atomic reference count.
 */
#include "frame.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Offset of the payload inside buf: the headroom plus the longest header,
 * rounded up to 16 so the payload starts aligned. The header sits right in
 * front of the payload; everything before it is headroom.
 */
#define PAYLOAD_OFFSET                                                         \
    ((PS_FRAME_HEADROOM + PS_FRAME_MAX_HEADER + 15) / 16 * 16)

struct ps_frame {
    atomic_size_t refs;
    size_t payload_len;
    unsigned char opcode;
    unsigned char header_len;
    _Alignas(16) unsigned char buf[];
};

_Static_assert(PS_FRAME_HEADROOM >= 16, "lws needs LWS_PRE (16) bytes");
_Static_assert(PAYLOAD_OFFSET - PS_FRAME_MAX_HEADER >= PS_FRAME_HEADROOM,
               "headroom in front of the longest header");

/* Returns 1 if opcode may start a ps_frame, else 0. */
static int opcode_valid(unsigned opcode)
{
    switch (opcode) {
    case PS_OP_TEXT:
    case PS_OP_BINARY:
    case PS_OP_CLOSE:
    case PS_OP_PING:
    case PS_OP_PONG:
        return 1;
    default:
        return 0;
    }
}

/*
 * Writes the RFC 6455 server header for a final frame of opcode carrying len
 * bytes into out (at least PS_FRAME_MAX_HEADER bytes). Returns its length.
 */
static size_t encode_header(unsigned char *out, unsigned opcode, size_t len)
{
    uint64_t n = (uint64_t)len;

    out[0] = (unsigned char)(0x80u | opcode);
    if (n < 126) {
        out[1] = (unsigned char)n;
        return 2;
    }
    if (n <= 0xFFFF) {
        out[1] = 126;
        out[2] = (unsigned char)(n >> 8);
        out[3] = (unsigned char)n;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)(n >> (56 - 8 * i));
    return 10;
}

ps_frame *ps_frame_alloc(unsigned opcode, size_t len,
                         unsigned char **payload_out)
{
    unsigned char hdr[PS_FRAME_MAX_HEADER];
    ps_frame *f;
    size_t hlen;

    if (!opcode_valid(opcode) || (opcode >= PS_OP_CLOSE &&
                                  len > PS_FRAME_MAX_CONTROL)) {
        errno = EINVAL;
        return NULL;
    }
    /* RFC 6455 5.2: the most significant bit of a 64-bit length is 0. */
    if ((uint64_t)len > (uint64_t)INT64_MAX ||
        len > SIZE_MAX - sizeof(*f) - PAYLOAD_OFFSET) {
        errno = ENOMEM;
        return NULL;
    }
    f = malloc(sizeof(*f) + PAYLOAD_OFFSET + len);
    if (f == NULL)
        return NULL;

    hlen = encode_header(hdr, opcode, len);
    atomic_init(&f->refs, 1);
    f->payload_len = len;
    f->opcode = (unsigned char)opcode;
    f->header_len = (unsigned char)hlen;
    memset(f->buf, 0, PAYLOAD_OFFSET - hlen);
    memcpy(f->buf + PAYLOAD_OFFSET - hlen, hdr, hlen);
    *payload_out = f->buf + PAYLOAD_OFFSET;
    return f;
}

ps_frame *ps_frame_new(unsigned opcode, const void *payload, size_t len)
{
    unsigned char *dst;
    ps_frame *f = ps_frame_alloc(opcode, len, &dst);

    if (f != NULL && len > 0)
        memcpy(dst, payload, len);
    return f;
}

ps_frame *ps_frame_ref(ps_frame *f)
{
    /* A new reference is made from one already held, so no ordering is
     * needed: nothing is published by taking it. */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

ps_frame *ps_frame_ref_many(ps_frame *f, size_t n)
{
    atomic_fetch_add_explicit(&f->refs, n, memory_order_relaxed);
    return f;
}

void ps_frame_unref_many(ps_frame *f, size_t n)
{
    if (f == NULL || n == 0)
        return;
    /* As ps_frame_unref(), for n drops at once. */
    if (atomic_fetch_sub_explicit(&f->refs, n, memory_order_acq_rel) == n)
        free(f);
}

void ps_frame_unref(ps_frame *f)
{
    if (f == NULL)
        return;
    /* Release orders this thread's reads of the frame before its drop;
     * acquire, on the last drop, orders every other thread's reads before
     * the free. (acq_rel rather than release + an acquire fence: the same
     * guarantee, and one ThreadSanitizer can check.) */
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

const unsigned char *ps_frame_wire(const ps_frame *f)
{
    return f->buf + PAYLOAD_OFFSET - f->header_len;
}

size_t ps_frame_wire_len(const ps_frame *f)
{
    return f->header_len + f->payload_len;
}

const unsigned char *ps_frame_payload(const ps_frame *f)
{
    return f->buf + PAYLOAD_OFFSET;
}

size_t ps_frame_payload_len(const ps_frame *f)
{
    return f->payload_len;
}

unsigned ps_frame_opcode(const ps_frame *f)
{
    return f->opcode;
}

size_t ps_frame_refcount(const ps_frame *f)
{
    return atomic_load_explicit(&f->refs, memory_order_relaxed);
}
