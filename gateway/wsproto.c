/*
 * wsproto.c: the server side of RFC 6455 framing and RFC 7692 permessage-deflate as a
 * byte-level state machine, and the handshake helpers (SHA-1, base64, extension offers).
 * See wsproto.h for the contracts.
 */
#include "wsproto.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

_Static_assert(sizeof(gw_wsp) <= 128, "gw_wsp must stay small");

/* Parser states. */
enum { ST_HEADER = 0, ST_PAYLOAD, ST_CLOSED, ST_FAILED };

/* Payload is unmasked into a stack buffer this large before it is inflated. */
#define INFLATE_CHUNK 4096

/* A message buffer first grows straight to the end of a frame when that end is this close. */
#define WHOLE_FRAME_HINT 65536

static const unsigned char deflate_tail[4] = {0x00, 0x00, 0xff, 0xff};

static int window_ok(unsigned bits)
{
    return bits >= 8 && bits <= 15;
}

static int is_control(unsigned op)
{
    return (op & 0x8) != 0;
}

/* Records why parsing stops and returns code, for "return fail(p, 1002, ...)". */
static int fail(gw_wsp *p, int code, const char *why)
{
    p->fail_reason = why;
    return code;
}

/* ---- UTF-8 ------------------------------------------------------------------------ */

/*
 * An incremental UTF-8 validator (Unicode 15, table 3-7): need is the number of
 * continuation bytes still due, lo..hi the range the next one must fall in (narrower than
 * 80..BF only right after E0, ED, F0 and F4, which is what rules out overlong forms,
 * surrogates and code points past U+10FFFF). C0, C1 and F5..FF never start a sequence.
 */
static void u8_reset(gw_wsp *p)
{
    p->u8_need = 0;
    p->u8_lo = 0x80;
    p->u8_hi = 0xBF;
}

/* Runs the validator in p over n bytes. Returns 0 while valid so far (possibly inside a
 * sequence), -1 at the first byte that cannot be valid. */
static int u8_run(gw_wsp *p, const unsigned char *s, size_t n)
{
    unsigned need = p->u8_need, lo = p->u8_lo, hi = p->u8_hi;
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        if (need != 0) {
            if (c < lo || c > hi)
                return -1;
            need--;
            lo = 0x80;
            hi = 0xBF;
            i++;
            continue;
        }
        if (c < 0x80) {
            /* Skip runs of ASCII eight bytes at a time. */
            i++;
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & UINT64_C(0x8080808080808080))
                    break;
                i += 8;
            }
            continue;
        }
        if (c < 0xC2) {
            return -1;
        } else if (c < 0xE0) {
            need = 1;
        } else if (c < 0xF0) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c < 0xF5) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return -1;
        }
        i++;
    }
    p->u8_need = (unsigned char)need;
    p->u8_lo = (unsigned char)lo;
    p->u8_hi = (unsigned char)hi;
    return 0;
}

/* Returns 1 when the n bytes at s are complete, valid UTF-8. Leaves p's validator as it
 * found it (a text message may be open). */
static int u8_valid_whole(gw_wsp *p, const unsigned char *s, size_t n)
{
    unsigned char need = p->u8_need, lo = p->u8_lo, hi = p->u8_hi;
    int ok;

    u8_reset(p);
    ok = u8_run(p, s, n) == 0 && p->u8_need == 0;
    p->u8_need = need;
    p->u8_lo = lo;
    p->u8_hi = hi;
    return ok;
}

/* ---- parser ----------------------------------------------------------------------- */

void gw_wsp_init_deflate(gw_wsp *p, size_t max_message, const gw_wsp_deflate_params *deflate)
{
    memset(p, 0, sizeof(*p));
    p->max_message = max_message == SIZE_MAX ? SIZE_MAX - 1 : max_message;
    if (deflate != NULL) {
        p->deflate = window_ok(deflate->client_bits) ? deflate->client_bits : 15;
        p->server_bits = window_ok(deflate->server_bits) ? deflate->server_bits : 15;
    }
    p->state = ST_HEADER;
    u8_reset(p);
}

void gw_wsp_init(gw_wsp *p, size_t max_message, int deflate)
{
    static const gw_wsp_deflate_params defaults = {15, 15, 0, 0};
    gw_wsp_init_deflate(p, max_message, deflate ? &defaults : NULL);
}

unsigned gw_wsp_server_window(const gw_wsp *p)
{
    return p->server_bits;
}

/* Drops the message being reassembled, if any. */
static void drop_message(gw_wsp *p)
{
    free(p->msg);
    p->msg = NULL;
    p->msg_len = 0;
    p->msg_cap = 0;
}

/* Frees the inflate state (about 7 KB, and the 32 KB window once it inflated). With no
 * context takeover nothing carries over from one message to the next, so it exists only
 * while a compressed message is being read: an idle connection holds none. */
static void release_inflater(gw_wsp *p)
{
    if (p->inflater != NULL) {
        inflateEnd(p->inflater);
        free(p->inflater);
        p->inflater = NULL;
    }
}

/* Frees the control payload buffer once its frame has been handed on. */
static void release_ctl(gw_wsp *p)
{
    free(p->ctl);
    p->ctl = NULL;
    p->ctl_len = 0;
}

void gw_wsp_free(gw_wsp *p)
{
    drop_message(p);
    release_ctl(p);
    release_inflater(p);
}

/* Copies n payload bytes from src to dst, unmasking them with the frame's key. */
static void unmask(gw_wsp *p, unsigned char *dst, const unsigned char *src, size_t n)
{
    size_t i = 0;
    unsigned pos = p->mask_pos;

    while (i < n && pos != 0) {
        dst[i] = src[i] ^ p->mask[pos];
        pos = (pos + 1) & 3;
        i++;
    }
    if (n - i >= 8) {
        uint64_t m, w;
        unsigned char m8[8];
        memcpy(m8, p->mask, 4);
        memcpy(m8 + 4, p->mask, 4);
        memcpy(&m, m8, 8);
        for (; n - i >= 8; i += 8) {
            memcpy(&w, src + i, 8);
            w ^= m;
            memcpy(dst + i, &w, 8);
        }
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ p->mask[pos];
        pos = (pos + 1) & 3;
    }
    p->mask_pos = (unsigned char)pos;
}

/*
 * Makes room for need bytes in the message buffer, preferably want (growing at least
 * twofold), never more than max_message + 1. Returns 0, 1009 when need exceeds that
 * bound, or 1011 when out of memory.
 */
static int reserve(gw_wsp *p, size_t need, size_t want)
{
    size_t limit = p->max_message + 1;
    size_t cap;
    unsigned char *m;

    if (need <= p->msg_cap)
        return 0;
    if (need > limit)
        return fail(p, 1009, "message too big");
    cap = p->msg_cap <= limit / 2 ? p->msg_cap * 2 : limit;
    if (cap < want)
        cap = want;
    if (cap < need)
        cap = need;
    if (cap > limit)
        cap = limit;
    m = realloc(p->msg, cap);
    if (m == NULL)
        return fail(p, 1011, "out of memory");
    p->msg = m;
    p->msg_cap = cap;
    return 0;
}

/*
 * Inflates n bytes of the open compressed message into the message buffer, validating
 * text as it comes out and stopping as soon as the output passes max_message. Bytes after
 * the end of a stream closed by a final (BFINAL) block are ignored, as zlib-based peers
 * do: RFC 7692 7.2.3.4's own example carries one. Returns 0, 1007, 1009 or 1011.
 */
static int inflate_some(gw_wsp *p, const unsigned char *in, size_t n)
{
    z_stream *z = p->inflater;

    if (p->z_end)
        return 0;
    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)n;
    for (;;) {
        size_t room, got;
        int zr, rc;

        if (p->msg_len == p->msg_cap) {
            size_t want = p->msg_len + INFLATE_CHUNK;
            rc = reserve(p, p->msg_len + 1, want < p->msg_len ? p->msg_len + 1 : want);
            if (rc != 0)
                return rc;
        }
        room = p->msg_cap - p->msg_len;
        if (room > UINT_MAX)
            room = UINT_MAX;
        z->next_out = p->msg + p->msg_len;
        z->avail_out = (uInt)room;
        zr = inflate(z, Z_SYNC_FLUSH);
        got = room - z->avail_out;
        if (got != 0) {
            if (p->msg_op == GW_WSP_OP_TEXT && u8_run(p, p->msg + p->msg_len, got) != 0)
                return fail(p, 1007, "invalid UTF-8 in text message");
            p->msg_len += got;
            if (p->msg_len > p->max_message)
                return fail(p, 1009, "message too big");
        }
        if (zr == Z_STREAM_END) {
            p->z_end = 1;
            return 0;
        }
        if (zr == Z_MEM_ERROR)
            return fail(p, 1011, "out of memory");
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return fail(p, 1007, "invalid compressed data");
        if (z->avail_out != 0) {
            /* Output room is left, so inflate took all the input it could. */
            if (z->avail_in == 0)
                return 0;
            return fail(p, 1007, "invalid compressed data");
        }
        /* The buffer is full: there may be more output pending. Grow and go on. */
    }
}

/* Hands the payload bytes of the current frame (n of them, at in) to where they go. */
static int payload(gw_wsp *p, const unsigned char *in, size_t n)
{
    if (is_control(p->opcode)) {
        unmask(p, p->ctl + p->ctl_len, in, n);
        p->ctl_len = (unsigned char)(p->ctl_len + n);
        return 0;
    }
    if (p->msg_deflate) {
        unsigned char tmp[INFLATE_CHUNK];
        while (n != 0) {
            size_t k = n < sizeof(tmp) ? n : sizeof(tmp);
            int rc;
            unmask(p, tmp, in, k);
            rc = inflate_some(p, tmp, k);
            if (rc != 0)
                return rc;
            in += k;
            n -= k;
        }
        return 0;
    } else {
        /* remaining still counts these n bytes; msg_len + remaining <= max_message. */
        size_t end = p->msg_len + (size_t)p->remaining + 1;
        size_t want = end - p->msg_len <= WHOLE_FRAME_HINT ? end : 0;
        unsigned char *dst;
        int rc = reserve(p, p->msg_len + n + 1, want);
        if (rc != 0)
            return rc;
        dst = p->msg + p->msg_len;
        unmask(p, dst, in, n);
        if (p->msg_op == GW_WSP_OP_TEXT && u8_run(p, dst, n) != 0)
            return fail(p, 1007, "invalid UTF-8 in text message");
        p->msg_len += n;
        return 0;
    }
}

/* Returns 1 for close codes a peer may send (RFC 6455 7.4, the IANA registry). */
static int close_code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* Finishes the complete message: inflates the tail, checks the UTF-8 ends well, hands the
 * buffer to on_message. */
static int finish_message(gw_wsp *p, const gw_wsp_callbacks *cb, void *ctx)
{
    int binary = p->msg_op == GW_WSP_OP_BINARY;
    unsigned char *data;
    size_t len;
    int rc;

    if (p->msg_deflate) {
        rc = inflate_some(p, deflate_tail, sizeof(deflate_tail));
        if (rc != 0)
            return rc;
        /* Not at a block boundary after the empty stored block: the data was cut short. */
        if (!p->z_end && !(((z_stream *)p->inflater)->data_type & 128))
            return fail(p, 1007, "truncated compressed data");
    }
    if (!binary && p->u8_need != 0)
        return fail(p, 1007, "incomplete UTF-8 sequence at message end");
    rc = reserve(p, p->msg_len + 1, p->msg_len + 1);
    if (rc != 0)
        return rc;
    data = p->msg;
    len = p->msg_len;
    data[len] = 0;
    p->msg = NULL;
    p->msg_len = 0;
    p->msg_cap = 0;
    p->msg_op = 0;
    p->msg_deflate = 0;
    p->msg_wire = 0;
    u8_reset(p);
    release_inflater(p);
    if (cb->on_message == NULL) {
        free(data);
        return 0;
    }
    return cb->on_message(ctx, binary, data, len) != 0 ? -1 : 0;
}

/* The current frame's payload is all in: acts on it. */
static int frame_end(gw_wsp *p, const gw_wsp_callbacks *cb, void *ctx)
{
    static const unsigned char empty[1] = {0};
    const unsigned char *ctl = p->ctl != NULL ? p->ctl : empty;
    unsigned code;
    int rc;

    p->state = ST_HEADER;
    p->hdr_len = 0;
    switch (p->opcode) {
    case GW_WSP_OP_PING:
        rc = cb->on_ping != NULL && cb->on_ping(ctx, ctl, p->ctl_len) != 0 ? -1 : 0;
        release_ctl(p);
        return rc;
    case GW_WSP_OP_PONG:
        rc = cb->on_pong != NULL && cb->on_pong(ctx, ctl, p->ctl_len) != 0 ? -1 : 0;
        release_ctl(p);
        return rc;
    case GW_WSP_OP_CLOSE:
        if (p->ctl_len == 1)
            return fail(p, 1002, "close frame with a 1-byte payload");
        code = 1005;
        if (p->ctl_len >= 2) {
            code = (unsigned)ctl[0] << 8 | ctl[1];
            if (!close_code_ok(code))
                return fail(p, 1002, "invalid close code");
            if (!u8_valid_whole(p, ctl + 2, p->ctl_len - 2u))
                return fail(p, 1007, "close reason is not valid UTF-8");
        }
        p->state = ST_CLOSED;
        drop_message(p);
        release_inflater(p);
        rc = cb->on_close != NULL &&
                     cb->on_close(ctx, (int)code, (const char *)ctl + (p->ctl_len >= 2 ? 2 : 0),
                                  p->ctl_len >= 2 ? p->ctl_len - 2u : 0) != 0
                 ? -1
                 : 0;
        release_ctl(p);
        return rc;
    default:
        return p->fin ? finish_message(p, cb, ctx) : 0;
    }
}

/* The header is complete: sets up the frame (and the message on its first frame). */
static int begin_frame(gw_wsp *p, const gw_wsp_callbacks *cb, void *ctx)
{
    memcpy(p->mask, p->hdr + p->hdr_need - 4, 4);
    p->mask_pos = 0;
    if (is_control(p->opcode)) {
        p->ctl_len = 0;
        if (p->remaining != 0 && p->ctl == NULL) {
            p->ctl = malloc(GW_WSP_MAX_CONTROL);
            if (p->ctl == NULL)
                return fail(p, 1011, "out of memory");
        }
    } else {
        if (p->opcode != GW_WSP_OP_CONT) {
            p->msg_op = p->opcode;
            p->msg_deflate = (p->hdr[0] & 0x40) != 0;
            p->msg_wire = 0;
            p->msg_len = 0;
            p->z_end = 0;
            u8_reset(p);
            if (p->msg_deflate) {
                /* Made for this message, freed when it ends (release_inflater). Its
                 * window is the one the client promised to stay within: zlib allocates
                 * 2^bits bytes for it. */
                z_stream *z = calloc(1, sizeof(*z));
                if (z == NULL)
                    return fail(p, 1011, "out of memory");
                if (inflateInit2(z, -(int)p->deflate) != Z_OK) {
                    free(z);
                    return fail(p, 1011, "out of memory");
                }
                p->inflater = z;
            }
        }
        p->msg_wire += p->remaining;
    }
    p->state = ST_PAYLOAD;
    return p->remaining == 0 ? frame_end(p, cb, ctx) : 0;
}

/* Takes one header byte, checking each rule as soon as the bytes it needs are in. */
static int header_byte(gw_wsp *p, unsigned char b, const gw_wsp_callbacks *cb, void *ctx)
{
    unsigned n = p->hdr_len;
    unsigned ext;

    p->hdr[n] = b;
    p->hdr_len = (unsigned char)++n;
    if (n == 1) {
        unsigned op = b & 0x0F;
        p->opcode = (unsigned char)op;
        p->fin = (b & 0x80) != 0;
        if ((op >= 0x3 && op <= 0x7) || op >= 0xB)
            return fail(p, 1002, "reserved opcode");
        if (b & 0x30)
            return fail(p, 1002, "RSV2 or RSV3 set");
        if (b & 0x40) {
            if (!p->deflate)
                return fail(p, 1002, "RSV1 set without permessage-deflate");
            if (op == GW_WSP_OP_CONT || is_control(op))
                return fail(p, 1002, "RSV1 set on a frame that is not a message start");
        }
        if (is_control(op)) {
            if (!p->fin)
                return fail(p, 1002, "fragmented control frame");
        } else if (op == GW_WSP_OP_CONT) {
            if (p->msg_op == 0)
                return fail(p, 1002, "continuation frame without a message");
        } else if (p->msg_op != 0) {
            return fail(p, 1002, "new message inside a fragmented one");
        }
        return 0;
    }
    ext = (p->hdr[1] & 0x7F) == 126 ? 2 : (p->hdr[1] & 0x7F) == 127 ? 8 : 0;
    if (n == 2) {
        if (!(b & 0x80))
            return fail(p, 1002, "client frame not masked");
        if (is_control(p->opcode) && (b & 0x7F) > GW_WSP_MAX_CONTROL)
            return fail(p, 1002, "control frame longer than 125 bytes");
        p->hdr_need = (unsigned char)(2 + ext + 4);
    }
    if (n == 3 && ext == 8 && (b & 0x80))
        return fail(p, 1002, "64-bit length with the top bit set");
    if (n == 2 + ext) {
        /* The length is known: refuse a message that would grow too big right here. */
        uint64_t len = p->hdr[1] & 0x7F;
        if (ext != 0) {
            len = 0;
            for (unsigned i = 0; i < ext; i++)
                len = len << 8 | p->hdr[2 + i];
        }
        p->remaining = len;
        if (!is_control(p->opcode)) {
            uint64_t so_far = p->opcode == GW_WSP_OP_CONT ? p->msg_wire : 0;
            if (len > (uint64_t)p->max_message - so_far)
                return fail(p, 1009, "message too big");
        }
    }
    if (n == p->hdr_need)
        return begin_frame(p, cb, ctx);
    return 0;
}

int gw_wsp_feed(gw_wsp *p, const unsigned char *in, size_t len, const gw_wsp_callbacks *cb,
                void *ctx, const char **reason)
{
    static const gw_wsp_callbacks none;
    const char *unused;
    size_t i = 0;
    int rc = 0;

    if (reason == NULL)
        reason = &unused;
    *reason = NULL;
    if (cb == NULL)
        cb = &none;
    if (p->state == ST_FAILED) {
        *reason = p->fail_reason;
        return p->fail;
    }
    while (i < len && p->state != ST_CLOSED) {
        if (p->state == ST_HEADER) {
            rc = header_byte(p, in[i++], cb, ctx);
        } else {
            size_t n = len - i;
            if (n > p->remaining)
                n = (size_t)p->remaining;
            rc = payload(p, in + i, n);
            i += n;
            p->remaining -= n;
            if (rc == 0 && p->remaining == 0)
                rc = frame_end(p, cb, ctx);
        }
        if (rc != 0)
            break;
    }
    if (rc == 0)
        return 0;
    if (rc < 0)
        p->fail_reason = "stopped by callback";
    p->state = ST_FAILED;
    p->fail = rc;
    *reason = p->fail_reason;
    drop_message(p);
    release_inflater(p);
    release_ctl(p);
    return rc;
}

/* ---- building frames -------------------------------------------------------------- */

size_t gw_wsp_header(unsigned char out[10], unsigned opcode, size_t len, int rsv1)
{
    out[0] = (unsigned char)(0x80 | (rsv1 ? 0x40 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

unsigned char *gw_wsp_deflate(const unsigned char *in, size_t len, size_t *out_len)
{
    z_stream z;
    unsigned char *buf = NULL, *grown;
    size_t cap, used = 0, left = len;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    cap = (size_t)deflateBound(&z, (uLong)len) + 16;
    buf = malloc(cap);
    if (buf == NULL)
        goto err;
    z.next_in = (Bytef *)(uintptr_t)in;
    for (;;) {
        size_t room;
        int flush, zr;

        if (z.avail_in == 0 && left != 0) {
            z.avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
            left -= z.avail_in;
        }
        flush = left == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        if (used == cap) {
            if (cap > SIZE_MAX / 2)
                goto err;
            grown = realloc(buf, cap * 2);
            if (grown == NULL)
                goto err;
            buf = grown;
            cap *= 2;
        }
        room = cap - used > UINT_MAX ? UINT_MAX : cap - used;
        z.next_out = buf + used;
        z.avail_out = (uInt)room;
        zr = deflate(&z, flush);
        used += room - z.avail_out;
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            goto err;
        if (flush == Z_SYNC_FLUSH && z.avail_in == 0 && z.avail_out != 0)
            break;
    }
    deflateEnd(&z);
    if (used < 4 || memcmp(buf + used - 4, deflate_tail, 4) != 0) {
        free(buf);
        return NULL;
    }
    *out_len = used - 4;
    return buf;
err:
    deflateEnd(&z);
    free(buf);
    return NULL;
}

size_t gw_wsp_close_payload(unsigned char out[125], int code, const char *reason)
{
    size_t n;

    if (code < 1000 || code > 4999)
        return 0;
    out[0] = (unsigned char)(code >> 8);
    out[1] = (unsigned char)code;
    n = reason != NULL ? strnlen(reason, GW_WSP_MAX_CONTROL) : 0;
    if (n > GW_WSP_MAX_CONTROL - 2) {
        /* Back off to the start of the character that would be cut. */
        n = GW_WSP_MAX_CONTROL - 2;
        while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80)
            n--;
    }
    if (n != 0)
        memcpy(out + 2, reason, n);
    return 2 + n;
}

/* ---- handshake -------------------------------------------------------------------- */

static uint32_t rol(uint32_t x, unsigned n)
{
    return x << n | x >> (32 - n);
}

/* Runs the SHA-1 compression function over one 64-byte block. */
static void sha1_block(uint32_t h[5], const unsigned char *b)
{
    uint32_t w[80], a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];

    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k, t;
        if (i < 20) {
            f = (bb & c) | (~bb & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = bb ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (bb & c) | (bb & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = bb ^ c ^ d;
            k = 0xCA62C1D6;
        }
        t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(bb, 30);
        bb = a;
        a = t;
    }
    h[0] += a;
    h[1] += bb;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void gw__wsp_sha1(const void *data, size_t len, unsigned char out[20])
{
    const unsigned char *s = data;
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    unsigned char last[128];
    uint64_t bits = (uint64_t)len * 8;
    size_t full = len / 64 * 64, rest = len - full, tail;

    for (size_t i = 0; i < full; i += 64)
        sha1_block(h, s + i);
    /* Padding: 0x80, zeros, the 64-bit big-endian bit length; one or two blocks. */
    memset(last, 0, sizeof(last));
    if (rest != 0)
        memcpy(last, s + full, rest);
    last[rest] = 0x80;
    tail = rest < 56 ? 64 : 128;
    for (int i = 0; i < 8; i++)
        last[tail - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, last);
    if (tail == 128)
        sha1_block(h, last + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes base64 of n bytes into out (4 * ((n + 2) / 3) characters and a NUL). */
static void base64(const unsigned char *in, size_t n, char *out)
{
    size_t i;
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = b64[v >> 18];
        *out++ = b64[v >> 12 & 63];
        *out++ = b64[v >> 6 & 63];
        *out++ = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = b64[v >> 18];
        *out++ = b64[v >> 12 & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = b64[v >> 18];
        *out++ = b64[v >> 12 & 63];
        *out++ = b64[v >> 6 & 63];
        *out++ = '=';
    }
    *out = 0;
}

static int is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

int gw_wsp_accept_key(const char *client_key, size_t len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char buf[24 + sizeof(guid) - 1], digest[20];
    const char *k = client_key;

    while (len > 0 && (k[0] == ' ' || k[0] == '\t')) {
        k++;
        len--;
    }
    while (len > 0 && (k[len - 1] == ' ' || k[len - 1] == '\t'))
        len--;
    if (len != 24 || k[22] != '=' || k[23] != '=')
        return -1;
    for (int i = 0; i < 22; i++)
        if (!is_b64((unsigned char)k[i]))
            return -1;
    memcpy(buf, k, 24);
    memcpy(buf + 24, guid, sizeof(guid) - 1);
    gw__wsp_sha1(buf, sizeof(buf), digest);
    base64(digest, sizeof(digest), out);
    return 0;
}

/* ---- Sec-WebSocket-Extensions ----------------------------------------------------- */

static int is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A cursor over the header value. */
typedef struct {
    const unsigned char *s;
    size_t i, n;
} ext_cur;

static void skip_ows(ext_cur *c)
{
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t'))
        c->i++;
}

/* Reads a token; returns its length (0 when there is none). */
static size_t read_token(ext_cur *c, const unsigned char **tok)
{
    size_t start = c->i;
    while (c->i < c->n && is_tchar(c->s[c->i]))
        c->i++;
    *tok = c->s + start;
    return c->i - start;
}

static int token_is(const unsigned char *t, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp((const char *)t, word, n) == 0;
}

/* Reads a parameter value, token or quoted-string, unescaped into val (truncated past
 * cap - 1 bytes, with *vlen still the full length). Returns 0, or -1 on bad syntax. */
static int read_value(ext_cur *c, char *val, size_t cap, size_t *vlen)
{
    size_t n = 0;

    if (c->i < c->n && c->s[c->i] == '"') {
        c->i++;
        for (;;) {
            unsigned char ch;
            if (c->i >= c->n)
                return -1;
            ch = c->s[c->i++];
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (c->i >= c->n)
                    return -1;
                ch = c->s[c->i++];
            }
            if (ch < 0x20 && ch != '\t')
                return -1;
            if (ch == 0x7F)
                return -1;
            if (n + 1 < cap)
                val[n] = (char)ch;
            n++;
        }
    } else {
        const unsigned char *t;
        size_t tn = read_token(c, &t);
        if (tn == 0)
            return -1;
        for (size_t j = 0; j < tn; j++) {
            if (n + 1 < cap)
                val[n] = (char)t[j];
            n++;
        }
    }
    val[n < cap ? n : cap - 1] = 0;
    *vlen = n;
    return 0;
}

/* Returns the window bits (8..15) a value names, or -1 when it is not one (RFC 7692:
 * a decimal integer without leading zeros). */
static int window_bits(const char *v, size_t n)
{
    if (n == 1 && v[0] >= '8' && v[0] <= '9')
        return v[0] - '0';
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
    return -1;
}

int gw_wsp_parse_deflate_offer(const char *ext_header, size_t len, gw_wsp_deflate_params *out)
{
    ext_cur c = {(const unsigned char *)ext_header, 0, len};
    gw_wsp_deflate_params chosen = {15, 15, 0, 0};
    int found = 0;

    for (;;) {
        const unsigned char *name;
        size_t name_len;
        int ours, ok;
        unsigned seen = 0;
        /* This offer's answer: RFC 7692 7.1.2.1 wants server_max_window_bits echoed with
         * the value offered (or a smaller one); 7.1.2.2 lets client_max_window_bits be
         * answered with the value offered, or left out. */
        gw_wsp_deflate_params offer = {15, 15, 0, 0};

        skip_ows(&c);
        if (c.i >= c.n)
            break;
        if (c.s[c.i] == ',') { /* empty list element */
            c.i++;
            continue;
        }
        name_len = read_token(&c, &name);
        if (name_len == 0)
            return 0;
        ours = token_is(name, name_len, "permessage-deflate");
        ok = ours;
        skip_ows(&c);
        while (c.i < c.n && c.s[c.i] == ';') {
            const unsigned char *param;
            size_t param_len, vlen = 0;
            char val[8];
            int has_value = 0, bits;
            unsigned bit;

            c.i++;
            skip_ows(&c);
            param_len = read_token(&c, &param);
            if (param_len == 0)
                return 0;
            skip_ows(&c);
            if (c.i < c.n && c.s[c.i] == '=') {
                c.i++;
                skip_ows(&c);
                if (read_value(&c, val, sizeof(val), &vlen) != 0)
                    return 0;
                has_value = 1;
                skip_ows(&c);
            }
            if (!ours)
                continue;
            /* RFC 7692 section 5: an offer with an unknown parameter, a parameter given
             * twice or a value out of its grammar is declined (another may be taken). */
            bits = has_value ? window_bits(val, vlen) : 0;
            if (token_is(param, param_len, "server_no_context_takeover")) {
                bit = 1;
                ok &= !has_value;
            } else if (token_is(param, param_len, "client_no_context_takeover")) {
                bit = 2;
                ok &= !has_value;
            } else if (token_is(param, param_len, "server_max_window_bits")) {
                /* Always with a value (7.1.2.1); we compress within it, answer it back. */
                bit = 4;
                ok &= bits > 0;
                offer.server_bits = (unsigned char)(bits > 0 ? bits : 15);
                offer.name_server_bits = 1;
            } else if (token_is(param, param_len, "client_max_window_bits")) {
                bit = 8;
                ok &= !has_value || bits > 0;
                /* A value is the client's window: answered, then inflated with a window
                 * that small. Except 8, which zlib cannot compress with (deflate.h): a
                 * zlib client would use 9, and some (Python's websockets) fail the
                 * handshake on an answer of 8; the answer leaves it out and we inflate
                 * with 15 bits, which reads any window. */
                if (bits >= 9) {
                    offer.client_bits = (unsigned char)bits;
                    offer.name_client_bits = 1;
                }
            } else {
                bit = 0;
                ok = 0;
            }
            if (seen & bit)
                ok = 0;
            seen |= bit;
        }
        if (c.i < c.n && c.s[c.i] != ',')
            return 0;
        if (ok && !found) {
            /* Offers come in the client's order of preference (RFC 7692 section 5). */
            chosen = offer;
            found = 1;
        }
    }
    if (found && out != NULL)
        *out = chosen;
    return found;
}

size_t gw_wsp_deflate_response(const gw_wsp_deflate_params *dp,
                               char out[GW_WSP_DEFLATE_RESPONSE_MAX])
{
    /* No context takeover both ways, whatever was offered (RFC 7692 7.1.1.1 and 7.1.1.2
     * let a server answer both): each message stands alone, which is what lets one
     * compressed buffer serve every subscriber, and keeps no deflate state per
     * connection. */
    int n = snprintf(out, GW_WSP_DEFLATE_RESPONSE_MAX,
                     "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    if (dp->name_server_bits)
        n += snprintf(out + n, GW_WSP_DEFLATE_RESPONSE_MAX - (size_t)n,
                      "; server_max_window_bits=%u", (unsigned)dp->server_bits);
    if (dp->name_client_bits)
        n += snprintf(out + n, GW_WSP_DEFLATE_RESPONSE_MAX - (size_t)n,
                      "; client_max_window_bits=%u", (unsigned)dp->client_bits);
    return (size_t)n;
}
