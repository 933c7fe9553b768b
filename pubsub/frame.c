/*
 * frame.c: encode-once WebSocket frames with an atomic reference count.
 */
#include "frame.h"

#include "deflate.h"

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
    /* A plain message's compressed variants, newest first, each holding one reference
     * that this frame owns; linked through next_variant. Only ever prepended to. */
    _Atomic(ps_frame *) variants;
    ps_frame *next_variant;
    unsigned char opcode;
    unsigned char header_len;
    unsigned char rsv1;        /* the payload is compressed (permessage-deflate) */
    unsigned char window_bits; /* a variant: the window zlib compressed it with */
    unsigned char no_gain;     /* a variant: not smaller than the plain payload */
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
static size_t encode_header(unsigned char *out, unsigned opcode, size_t len,
                            int rsv1)
{
    uint64_t n = (uint64_t)len;

    out[0] = (unsigned char)(0x80u | (rsv1 ? 0x40u : 0u) | opcode);
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

/* Sets up the fields and the header of a frame whose payload (len bytes) sits at
 * PAYLOAD_OFFSET, with zeroed headroom in front of the header. */
static void init_frame(ps_frame *f, unsigned opcode, size_t len, int rsv1)
{
    unsigned char hdr[PS_FRAME_MAX_HEADER];
    size_t hlen = encode_header(hdr, opcode, len, rsv1);

    atomic_init(&f->refs, 1);
    f->payload_len = len;
    atomic_init(&f->variants, NULL);
    f->next_variant = NULL;
    f->opcode = (unsigned char)opcode;
    f->header_len = (unsigned char)hlen;
    f->rsv1 = rsv1 != 0;
    f->window_bits = 0;
    f->no_gain = 0;
    memset(f->buf, 0, PAYLOAD_OFFSET - hlen);
    memcpy(f->buf + PAYLOAD_OFFSET - hlen, hdr, hlen);
}

ps_frame *ps_frame_alloc(unsigned opcode, size_t len,
                         unsigned char **payload_out)
{
    ps_frame *f;

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

    init_frame(f, opcode, len, 0);
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
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) {
        ps_frame *v = atomic_load_explicit(&f->variants, memory_order_acquire);
        while (v != NULL) {
            ps_frame *next = v->next_variant;
            ps_frame_unref(v);
            v = next;
        }
        free(f);
    }
}

ps_frame *ps_frame_new_deflated(unsigned opcode, const void *payload, size_t len,
                                unsigned window_bits)
{
    unsigned char *buf;
    size_t clen;
    ps_frame *f;

    if (opcode != PS_OP_TEXT && opcode != PS_OP_BINARY) {
        errno = EINVAL;
        return NULL;
    }
    if (ps_deflate_effective_bits(window_bits) == 0) {
        errno = EINVAL;
        return NULL;
    }
    /* Compressed straight behind the room for the struct and the header: no copy. */
    buf = ps_deflate_message(payload, len, window_bits, sizeof(*f) + PAYLOAD_OFFSET,
                             &clen);
    if (buf == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    f = (ps_frame *)(void *)buf;
    init_frame(f, opcode, clen, 1);
    f->window_bits = (unsigned char)ps_deflate_effective_bits(window_bits);
    return f;
}

/* The variant of f compressed with an effective window of bits, or NULL. */
static ps_frame *find_variant(ps_frame *head, unsigned bits)
{
    for (ps_frame *v = head; v != NULL; v = v->next_variant)
        if (v->window_bits == bits)
            return v;
    return NULL;
}

ps_frame *ps_frame_deflated(ps_frame *f, unsigned window_bits)
{
    unsigned bits = ps_deflate_effective_bits(window_bits);
    ps_frame *head, *v, *found;

    if (bits == 0 || f->rsv1 ||
        (f->opcode != PS_OP_TEXT && f->opcode != PS_OP_BINARY))
        return f;
    /* Acquire pairs with the release below: a variant found is fully written. */
    head = atomic_load_explicit(&f->variants, memory_order_acquire);
    found = find_variant(head, bits);
    if (found != NULL)
        return found->no_gain ? f : found;
    v = ps_frame_new_deflated(f->opcode, ps_frame_payload(f), f->payload_len, bits);
    if (v == NULL)
        return f;
    if (v->payload_len >= f->payload_len) {
        /* Incompressible: remember that (so it is not tried again for the next
         * subscriber) without keeping the bytes. */
        ps_frame *small = realloc(v, sizeof(*v) + PAYLOAD_OFFSET);
        if (small != NULL)
            v = small;
        v->no_gain = 1;
    }
    /* Another thread may have added the same variant meanwhile: then use that one, so
     * that every subscriber shares one buffer. */
    do {
        found = find_variant(head, bits);
        if (found != NULL) {
            free(v);
            return found->no_gain ? f : found;
        }
        v->next_variant = head;
    } while (!atomic_compare_exchange_weak_explicit(&f->variants, &head, v,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire));
    return v->no_gain ? f : v;
}

int ps_frame_compressed(const ps_frame *f)
{
    return f->rsv1;
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
