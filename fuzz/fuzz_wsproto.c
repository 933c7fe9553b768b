/*
 * libFuzzer target for the WebSocket frame parser (gateway/wsproto.c): the bytes a client
 * sends once its upgrade is accepted, which anyone who can connect controls.
 *
 * Input: one control byte, one cut byte, then data.
 *
 *   control bit 0     permessage-deflate was negotiated
 *   control bits 1-3  max_message: 0, 1, 2, 125, 126, 1000, 65536 or no limit
 *   control bit 4     the callback of the second event asks to stop (the -1 path)
 *   control bit 7     round-trip mode (below); else stream mode
 *   cut               how the data is cut into feeds (each feed a heap copy of exactly
 *                     its bytes, so reading past it is an ASan error)
 *
 * Stream mode: data is the client's byte stream, fed once whole and once cut. Both runs
 * must see the same callbacks with the same bytes and end with the same result (the
 * parser's answer may not depend on how TCP split the stream). Every callback's arguments
 * are checked against the contract: messages NUL-terminated and within max_message, text
 * valid UTF-8 (by a second, independent validator), control payloads <= 125 bytes, close
 * codes a peer may send with a valid UTF-8 reason; after a close or a failure nothing is
 * called again, and a failure is sticky.
 *
 * Round-trip mode: data is one message. It is compressed with gw_wsp_deflate() when
 * deflate is on, cut into fragments (cut byte: how many, 1-4) with a ping between every two
 * and masked as a client would; parsing must give back exactly the message, or exactly
 * the close code its size or UTF-8 calls for (control bit 5: text, else binary).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsproto.h"
#include "fuzz_check.h"


static const size_t limits[8] = {0, 1, 2, 125, 126, 1000, 65536, SIZE_MAX};

/* A UTF-8 check written independently of wsproto.c's (decode, then range-check the code
 * point): 1 when the n bytes are valid, complete UTF-8. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        unsigned len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (unsigned k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
            return 0; /* overlong */
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* What one run of the parser saw. */
typedef struct run {
    uint64_t hash;    /* FNV-1a over every event and its bytes */
    unsigned events;
    unsigned stop_at; /* 1-based event whose callback returns nonzero; 0: never */
    int ended;        /* a close was reported, or a callback stopped: nothing may follow */
    size_t max_message;
    /* Round-trip mode keeps the (last) message. */
    unsigned char *msg;
    size_t msg_len;
    int msg_binary;
    unsigned messages, pings;
} run;

static void mix(run *r, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        r->hash = (r->hash ^ s[i]) * UINT64_C(0x100000001b3);
}

static void event(run *r, char kind, const void *data, size_t len)
{
    CHECK(!r->ended);
    mix(r, &kind, 1);
    mix(r, &len, sizeof(len));
    if (len != 0)
        mix(r, data, len);
    r->events++;
}

static int stop(run *r)
{
    if (r->events == r->stop_at) {
        r->ended = 1;
        return 1;
    }
    return 0;
}

static int on_message(void *ctx, int binary, unsigned char *data, size_t len)
{
    run *r = ctx;
    CHECK(data != NULL);
    CHECK(data[len] == 0);
    CHECK(len <= r->max_message);
    CHECK(binary == 0 || binary == 1);
    if (!binary)
        CHECK(utf8_ok(data, len));
    event(r, binary ? 'B' : 'T', data, len);
    free(r->msg);
    r->msg = data;
    r->msg_len = len;
    r->msg_binary = binary;
    r->messages++;
    return stop(r);
}

static int on_ping(void *ctx, const unsigned char *data, size_t len)
{
    run *r = ctx;
    CHECK(data != NULL && len <= GW_WSP_MAX_CONTROL);
    event(r, 'I', data, len);
    r->pings++;
    return stop(r);
}

static int on_pong(void *ctx, const unsigned char *data, size_t len)
{
    run *r = ctx;
    CHECK(data != NULL && len <= GW_WSP_MAX_CONTROL);
    event(r, 'O', data, len);
    return stop(r);
}

static int on_close(void *ctx, int code, const char *reason, size_t len)
{
    run *r = ctx;
    CHECK(reason != NULL && len <= GW_WSP_MAX_CONTROL - 2);
    CHECK(code == 1005 || (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
          (code >= 3000 && code <= 4999));
    CHECK(code != 1005 || len == 0);
    CHECK(utf8_ok((const unsigned char *)reason, len));
    event(r, 'C', reason, len);
    mix(r, &code, sizeof(code));
    if (stop(r))
        return 1;
    r->ended = 1; /* bytes after the peer's close are ignored */
    return 0;
}

static const gw_wsp_callbacks callbacks = {on_message, on_ping, on_pong, on_close};

static int known_result(int rc)
{
    return rc == 0 || rc == -1 || rc == 1002 || rc == 1007 || rc == 1009 || rc == 1011;
}

/* Feeds in[0..len) to p in pieces whose sizes come from cut (0: all at once). Returns the
 * parser's result and its reason. */
static int feed(gw_wsp *p, run *r, const unsigned char *in, size_t len, unsigned cut,
                const char **reason)
{
    uint32_t seed = cut * 2654435761u + 1;
    size_t off = 0;
    int rc = 0;

    *reason = NULL;
    do {
        size_t n = len - off;
        unsigned char *piece;
        if (cut != 0) {
            seed = seed * 1103515245u + 12345u;
            /* Mostly small pieces (header bytes split), sometimes large ones. */
            size_t k = (seed >> 16) & 7 ? 1 + ((seed >> 8) & 15) : 1 + ((seed >> 4) & 1023);
            if (k < n)
                n = k;
        }
        piece = malloc(n ? n : 1);
        if (piece == NULL)
            return 0;
        if (n != 0)
            memcpy(piece, in + off, n);
        rc = gw_wsp_feed(p, piece, n, &callbacks, r, reason);
        free(piece);
        off += n;
        CHECK(known_result(rc));
        if (rc != 0) {
            CHECK(*reason != NULL && strlen(*reason) <= GW_WSP_MAX_CONTROL - 2);
            break;
        }
    } while (off < len);
    if (rc != 0) {
        /* Sticky, and nothing more is read or called. */
        const char *again;
        unsigned events = r->events;
        CHECK(gw_wsp_feed(p, in, len, &callbacks, r, &again) == rc);
        CHECK(again == *reason);
        CHECK(r->events == events);
        if (rc == -1)
            CHECK(r->ended);
    }
    return rc;
}

static void stream_mode(unsigned control, unsigned cut, const unsigned char *data, size_t size)
{
    size_t max = limits[(control >> 1) & 7];
    unsigned stop_at = control & 0x10 ? 2 : 0;
    gw_wsp whole, split;
    run a = {UINT64_C(0xcbf29ce484222325), 0, stop_at, 0, max, NULL, 0, 0, 0, 0};
    run b = a;
    const char *why_a, *why_b;
    int rc_a, rc_b;

    gw_wsp_init(&whole, max, control & 1);
    gw_wsp_init(&split, max, control & 1);
    a.max_message = b.max_message = max == SIZE_MAX ? SIZE_MAX - 1 : max;
    rc_a = feed(&whole, &a, data, size, 0, &why_a);
    rc_b = feed(&split, &b, data, size, cut | 1, &why_b);
    CHECK(rc_a == rc_b);
    CHECK(a.events == b.events);
    CHECK(a.hash == b.hash);
    CHECK((why_a == NULL) == (why_b == NULL));
    if (why_a != NULL)
        CHECK(strcmp(why_a, why_b) == 0);
    gw_wsp_free(&whole);
    gw_wsp_free(&split);
    /* A freed parser may be initialised again and holds nothing. */
    gw_wsp_init(&whole, max, control & 1);
    gw_wsp_free(&whole);
    free(a.msg);
    free(b.msg);
}

/* Appends a masked client frame to out (room checked by the caller's sizing). */
static size_t put_frame(unsigned char *out, unsigned first, const unsigned char *payload,
                        size_t len, uint32_t key)
{
    size_t n = 0;
    unsigned char mask[4] = {(unsigned char)(key >> 24), (unsigned char)(key >> 16),
                             (unsigned char)(key >> 8), (unsigned char)key};
    out[n++] = (unsigned char)first;
    if (len < 126) {
        out[n++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xFFFF) {
        out[n++] = 0x80 | 126;
        out[n++] = (unsigned char)(len >> 8);
        out[n++] = (unsigned char)len;
    } else {
        out[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memcpy(out + n, mask, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        out[n + i] = payload[i] ^ mask[i & 3];
    return n + len;
}

static void round_trip_mode(unsigned control, unsigned cut, const unsigned char *msg,
                            size_t len)
{
    int deflate = control & 1;
    int text = (control & 0x20) != 0;
    size_t max = limits[(control >> 1) & 7];
    unsigned fragments = 1 + (cut & 3);
    unsigned char *wire_payload = (unsigned char *)(uintptr_t)msg, *compressed = NULL;
    size_t wire_len = len, out_len = 0;
    unsigned char *stream;
    gw_wsp p;
    run r = {UINT64_C(0xcbf29ce484222325), 0, 0, 0, 0, NULL, 0, 0, 0, 0};
    const char *why;
    int rc, expect_ok;

    if (deflate) {
        compressed = gw_wsp_deflate(msg, len, &wire_len);
        if (compressed == NULL)
            return; /* out of memory */
        CHECK(wire_len >= 1);
        wire_payload = compressed;
    }
    /* Every fragment's header (<= 14 bytes) and a 4-byte ping after all but the last. */
    stream = malloc(wire_len + fragments * (14 + 6 + 4));
    if (stream == NULL) {
        free(compressed);
        return;
    }
    for (unsigned f = 0; f < fragments; f++) {
        size_t from = wire_len * f / fragments, to = wire_len * (f + 1) / fragments;
        unsigned first = (f == 0 ? (text ? GW_WSP_OP_TEXT : GW_WSP_OP_BINARY) : GW_WSP_OP_CONT) |
                         (f == fragments - 1 ? 0x80 : 0) | (f == 0 && deflate ? 0x40 : 0);
        out_len += put_frame(stream + out_len, first, wire_payload + from, to - from,
                             0x9e3779b9u * (f + 1));
        if (f != fragments - 1)
            out_len += put_frame(stream + out_len, 0x80 | GW_WSP_OP_PING,
                                 (const unsigned char *)"ping", 4, 0x12345678u);
    }

    gw_wsp_init(&p, max, deflate);
    r.max_message = max == SIZE_MAX ? SIZE_MAX - 1 : max;
    rc = feed(&p, &r, stream, out_len, cut >> 2, &why);
    expect_ok = len <= max && wire_len <= max && (!text || utf8_ok(msg, len));
    if (expect_ok) {
        CHECK(rc == 0);
        CHECK(r.messages == 1 && r.pings == fragments - 1);
        CHECK(r.msg_len == len && r.msg_binary == !text);
        CHECK(len == 0 || memcmp(r.msg, msg, len) == 0);
    } else {
        /* Too big is 1009 (on a frame header for the wire bytes, while inflating for the
         * message's), bad UTF-8 is 1007; with both, whichever the parser meets first. */
        int too_big = len > max || wire_len > max;
        int bad_text = text && !utf8_ok(msg, len);
        CHECK((too_big && rc == 1009) || (bad_text && rc == 1007));
    }
    if (!expect_ok)
        CHECK(r.messages == 0);
    gw_wsp_free(&p);
    free(r.msg);
    free(stream);
    free(compressed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (data[0] & 0x80)
        round_trip_mode(data[0], data[1], data + 2, size - 2);
    else
        stream_mode(data[0], data[1], data + 2, size - 2);
    return 0;
}
