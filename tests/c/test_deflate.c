/*
 * test_deflate.c: unit tests of pubsub/deflate.c (the permessage-deflate compressor) and of
 * the compressed variants of frames (ps_frame_deflated() in pubsub/frame.c): output that
 * inflates with the window promised, the same bytes as gateway/wsproto.c's compressor, one
 * shared buffer per window, incompressible and control frames left plain, and variants made
 * from several threads at once.
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
#include <zlib.h>

#include "deflate.h"
#include "frame.h"
#include "wsproto.h"

/* --- helpers ------------------------------------------------------------ */

/* Inflates a permessage-deflate payload (the 00 00 ff ff tail put back, RFC 7692 7.2.2)
 * with a raw window of `bits`; returns the bytes (malloc'd, *n of them) or NULL when zlib
 * refuses the stream (a distance too far back for the window, for one). Output is taken
 * one byte per inflate() call: zlib may refer back into output it wrote during the same
 * call whatever the window, so only this way does every match have to fit the window. */
static unsigned char *inflate_raw(const unsigned char *c, size_t clen, int bits,
                                  size_t max, size_t *n)
{
    static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    unsigned char *in = malloc(clen + 4), *out = malloc(max + 1);
    size_t made = 0;
    z_stream z;
    int zr;

    assert_non_null(in);
    assert_non_null(out);
    memcpy(in, c, clen);
    memcpy(in + clen, tail, 4);
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, -bits), Z_OK);
    z.next_in = in;
    z.avail_in = (uInt)(clen + 4);
    for (;;) {
        z.next_out = out + made;
        z.avail_out = 1;
        zr = inflate(&z, Z_SYNC_FLUSH);
        made += 1 - z.avail_out;
        if (zr != Z_OK || made > max || (z.avail_out == 1 && z.avail_in == 0))
            break; /* an error, too much, or all input used with nothing more to come */
    }
    *n = made;
    inflateEnd(&z);
    free(in);
    if ((zr != Z_OK && zr != Z_BUF_ERROR) || z.avail_in != 0 || made > max) {
        free(out);
        return NULL;
    }
    return out;
}

/* n bytes of a JSON-like chat message: a fixed head, then words picked by seed. */
static char *chat_text(size_t n, uint32_t seed)
{
    static const char *words[] = {"hello", "there", "meeting", "noon", "slides", "coffee",
                                  "please", "bring", "the", "and", "today", "room"};
    char *s = malloc(n + 1);
    size_t i = 0;

    assert_non_null(s);
    while (i < n) {
        seed = seed * 1664525u + 1013904223u;
        const char *w = words[(seed >> 16) % 12];
        for (size_t k = 0; w[k] != 0 && i < n; k++)
            s[i++] = w[k];
        if (i < n)
            s[i++] = ' ';
    }
    s[n] = 0;
    return s;
}

/* --- the compressor ------------------------------------------------------ */

static void deflate_rfc_examples(void **state)
{
    (void)state;
    size_t n = 0;
    unsigned char *c = ps_deflate_message(NULL, 0, 15, 0, &n);

    /* RFC 7692 7.2.3.6: an empty message is the single byte 00. */
    assert_non_null(c);
    assert_int_equal(n, 1);
    assert_int_equal(c[0], 0x00);
    free(c);
    /* RFC 7692 7.2.3.1: "Hello" is f2 48 cd c9 c9 07 00, at every window size. */
    for (unsigned bits = 8; bits <= 15; bits++) {
        c = ps_deflate_message("Hello", 5, bits, 0, &n);
        assert_non_null(c);
        assert_int_equal(n, 7);
        assert_memory_equal(c, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
        free(c);
    }
    /* The prefix is left in front of the compressed bytes. */
    c = ps_deflate_message("Hello", 5, 15, 40, &n);
    assert_non_null(c);
    assert_int_equal(n, 7);
    assert_memory_equal(c + 40, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    free(c);
}

static void deflate_bad_windows(void **state)
{
    (void)state;
    size_t n = 12345;

    assert_null(ps_deflate_message("x", 1, 7, 0, &n));
    assert_null(ps_deflate_message("x", 1, 16, 0, &n));
    assert_null(ps_deflate_message("x", 1, 0, 0, &n));
    assert_int_equal(n, 12345);
    assert_int_equal(ps_deflate_effective_bits(8), 9);
    assert_int_equal(ps_deflate_effective_bits(9), 9);
    assert_int_equal(ps_deflate_effective_bits(15), 15);
    assert_int_equal(ps_deflate_effective_bits(7), 0);
    assert_int_equal(ps_deflate_effective_bits(16), 0);
}

/* Each message stands alone (no context takeover): compressing one message does not
 * change how the next compresses, and each inflates with a fresh stream. */
static void deflate_no_context_takeover(void **state)
{
    (void)state;
    char *a = chat_text(1000, 1);
    size_t n1, n2, n3, got;
    unsigned char *c1 = ps_deflate_message(a, 1000, 15, 0, &n1);
    unsigned char *c2 = ps_deflate_message(a, 1000, 15, 0, &n2);
    unsigned char *c3, *plain;

    assert_non_null(c1);
    assert_non_null(c2);
    assert_int_equal(n1, n2);
    assert_memory_equal(c1, c2, n1);
    assert_true(n1 < 500);
    plain = inflate_raw(c2, n2, 15, 1000, &got);
    assert_non_null(plain);
    assert_int_equal(got, 1000);
    assert_memory_equal(plain, a, 1000);
    free(plain);
    /* After the thread's states are released, they come back and compress alike. */
    ps_deflate_release_thread();
    c3 = ps_deflate_message(a, 1000, 15, 0, &n3);
    assert_non_null(c3);
    assert_int_equal(n3, n1);
    assert_memory_equal(c3, c1, n1);
    free(c1);
    free(c2);
    free(c3);
    free(a);
}

/*
 * server_max_window_bits=8 is answered as 8 though zlib compresses with 9 bits: zlib's
 * matches never reach further back than 512 - 262 = 250 bytes. Data that repeats at every
 * distance from 1 to 600 bytes, compressed for 8 bits, must inflate with a 256-byte
 * window; compressed for 15 bits, the far repeats need more and an 8-bit inflater refuses
 * them (which shows the check can fail).
 */
static void deflate_window_8_fits(void **state)
{
    (void)state;
    int refused_at_15 = 0;

    for (size_t period = 1; period <= 600; period += (period < 300 ? 1 : 7)) {
        size_t n = 4 * period + 3000, clen, got;
        unsigned char *d = malloc(n), *c, *back;
        uint32_t s = (uint32_t)period;

        assert_non_null(d);
        for (size_t i = 0; i < period; i++) {
            s = s * 1103515245u + 12345u;
            d[i] = (unsigned char)(s >> 16);
        }
        for (size_t i = period; i < n; i++)
            d[i] = d[i - period];
        c = ps_deflate_message(d, n, 8, 0, &clen);
        assert_non_null(c);
        back = inflate_raw(c, clen, 8, n, &got);
        if (back == NULL)
            fail_msg("period %zu: 8-bit output does not inflate with an 8-bit window", period);
        assert_int_equal(got, n);
        assert_memory_equal(back, d, n);
        free(back);
        free(c);
        c = ps_deflate_message(d, n, 15, 0, &clen);
        assert_non_null(c);
        back = inflate_raw(c, clen, 8, n, &got);
        if (back == NULL)
            refused_at_15++;
        free(back);
        free(c);
        free(d);
    }
    assert_true(refused_at_15 > 0);
}

/* The server's compressor (a reused zlib state, reset per message) and the peer's of
 * gateway/wsproto.c (a fresh state per message) give the same bytes for a 15-bit window. */
static void deflate_matches_wsproto(void **state)
{
    (void)state;
    for (size_t n = 0; n <= 5000; n += (n < 64 ? 1 : 97)) {
        char *text = chat_text(n, (uint32_t)n);
        size_t a_len, b_len;
        unsigned char *a = ps_deflate_message(text, n, 15, 0, &a_len);
        unsigned char *b = gw_wsp_deflate((const unsigned char *)text, n, &b_len);

        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(a_len, b_len);
        assert_memory_equal(a, b, a_len);
        free(a);
        free(b);
        free(text);
    }
}

/* --- compressed variants of frames ---------------------------------------- */

static void variant_shape(void **state)
{
    (void)state;
    char *text = chat_text(1000, 7);
    ps_frame *f = ps_frame_new(PS_OP_TEXT, text, 1000);
    ps_frame *v, *again;
    const unsigned char *w;
    unsigned char *back;
    size_t got;

    assert_non_null(f);
    assert_int_equal(ps_frame_compressed(f), 0);
    v = ps_frame_deflated(f, 15);
    assert_ptr_not_equal(v, f);
    assert_int_equal(ps_frame_compressed(v), 1);
    assert_int_equal(ps_frame_opcode(v), PS_OP_TEXT);
    assert_true(ps_frame_payload_len(v) < 500);
    /* FIN, RSV1, text; a 16-bit length would say 126: this one fits in 7 bits or 16. */
    w = ps_frame_wire(v);
    assert_int_equal(w[0], 0x80 | 0x40 | PS_OP_TEXT);
    if (ps_frame_payload_len(v) < 126) {
        assert_int_equal(w[1], ps_frame_payload_len(v));
        assert_int_equal(ps_frame_wire_len(v), 2 + ps_frame_payload_len(v));
    } else {
        assert_int_equal(w[1], 126);
        assert_int_equal((size_t)w[2] << 8 | w[3], ps_frame_payload_len(v));
        assert_int_equal(ps_frame_wire_len(v), 4 + ps_frame_payload_len(v));
    }
    /* Headroom in front, for lws_write(). */
    for (size_t i = 1; i <= PS_FRAME_HEADROOM; i++)
        assert_int_equal(w[-(ptrdiff_t)i], 0);
    back = inflate_raw(ps_frame_payload(v), ps_frame_payload_len(v), 15, 1000, &got);
    assert_non_null(back);
    assert_int_equal(got, 1000);
    assert_memory_equal(back, text, 1000);
    free(back);
    /* Asked again: the same buffer, no new compression. */
    again = ps_frame_deflated(f, 15);
    assert_ptr_equal(again, v);
    /* The plain frame owns the variant (one reference); a queue takes its own. */
    assert_int_equal(ps_frame_refcount(v), 1);
    ps_frame_ref(v);
    ps_frame_unref(f);
    /* The variant outlives the plain frame for whoever holds it. */
    assert_int_equal(ps_frame_refcount(v), 1);
    back = inflate_raw(ps_frame_payload(v), ps_frame_payload_len(v), 15, 1000, &got);
    assert_non_null(back);
    assert_memory_equal(back, text, 1000);
    free(back);
    ps_frame_unref(v);
    free(text);
}

/* One buffer per distinct window: 8 and 9 share one (zlib compresses both with 9). */
static void variant_per_window(void **state)
{
    (void)state;
    char *text = chat_text(3000, 9);
    ps_frame *f = ps_frame_new(PS_OP_BINARY, text, 3000);
    ps_frame *by_bits[16] = {0};

    assert_non_null(f);
    for (unsigned bits = 8; bits <= 15; bits++) {
        by_bits[bits] = ps_frame_deflated(f, bits);
        assert_ptr_not_equal(by_bits[bits], f);
        assert_int_equal(ps_frame_opcode(by_bits[bits]), PS_OP_BINARY);
    }
    assert_ptr_equal(by_bits[8], by_bits[9]);
    for (unsigned a = 9; a <= 15; a++)
        for (unsigned b = a + 1; b <= 15; b++)
            assert_ptr_not_equal(by_bits[a], by_bits[b]);
    /* The same answers the second time round, in another order. */
    for (unsigned bits = 15; bits >= 8; bits--)
        assert_ptr_equal(ps_frame_deflated(f, bits), by_bits[bits]);
    /* Each inflates with its own window. */
    for (unsigned bits = 8; bits <= 15; bits++) {
        size_t got;
        unsigned char *back = inflate_raw(ps_frame_payload(by_bits[bits]),
                                          ps_frame_payload_len(by_bits[bits]), (int)bits,
                                          3000, &got);
        assert_non_null(back);
        assert_int_equal(got, 3000);
        assert_memory_equal(back, text, 3000);
        free(back);
    }
    ps_frame_unref(f); /* frees every variant too: valgrind and ASan check */
    free(text);
}

/* What is sent uncompressed: control frames, compressed frames, bad windows, and messages
 * that do not get smaller. */
static void variant_left_plain(void **state)
{
    (void)state;
    unsigned char rnd[2000];
    uint32_t s = 99;
    ps_frame *ping = ps_frame_new(PS_OP_PING, "ping ping ping ping ping", 24);
    ps_frame *noise, *tiny, *z;

    for (size_t i = 0; i < sizeof(rnd); i++) {
        s = s * 1103515245u + 12345u;
        rnd[i] = (unsigned char)(s >> 16);
    }
    noise = ps_frame_new(PS_OP_BINARY, rnd, sizeof(rnd));
    tiny = ps_frame_new(PS_OP_TEXT, "a", 1);
    z = ps_frame_new_deflated(PS_OP_TEXT, "zzzzzzzzzzzzzzzzzzzzzzzzzzzz", 28, 15);
    assert_non_null(ping);
    assert_non_null(noise);
    assert_non_null(tiny);
    assert_non_null(z);
    assert_ptr_equal(ps_frame_deflated(ping, 15), ping);
    assert_ptr_equal(ps_frame_deflated(z, 15), z);
    assert_ptr_equal(ps_frame_deflated(tiny, 7), tiny);
    assert_ptr_equal(ps_frame_deflated(tiny, 16), tiny);
    /* Random bytes and a 1-byte message grow when compressed: sent as they are, and the
     * verdict is kept (the second call finds it). */
    assert_ptr_equal(ps_frame_deflated(noise, 15), noise);
    assert_ptr_equal(ps_frame_deflated(noise, 15), noise);
    assert_ptr_equal(ps_frame_deflated(tiny, 12), tiny);
    assert_ptr_equal(ps_frame_deflated(tiny, 12), tiny);
    assert_int_equal(ps_frame_refcount(noise), 1);
    /* ps_frame_new_deflated() refuses what cannot be a compressed message. */
    errno = 0;
    assert_null(ps_frame_new_deflated(PS_OP_PING, "x", 1, 15));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(ps_frame_new_deflated(PS_OP_TEXT, "x", 1, 16));
    assert_int_equal(errno, EINVAL);
    ps_frame_unref(ping);
    ps_frame_unref(noise);
    ps_frame_unref(tiny);
    ps_frame_unref(z);
}

/* Threads racing to make the same variants all end up with one buffer per window. */
#define RACERS 4

struct race {
    ps_frame *f;
    pthread_barrier_t *start;
    ps_frame *got[16];
};

static void *racer(void *arg)
{
    struct race *r = arg;

    pthread_barrier_wait(r->start);
    for (unsigned bits = 9; bits <= 15; bits++)
        r->got[bits] = ps_frame_deflated(r->f, bits);
    ps_deflate_release_thread();
    return NULL;
}

static void variant_threads(void **state)
{
    (void)state;
    pthread_barrier_t start;
    pthread_t th[RACERS];
    struct race r[RACERS];

    for (int round = 0; round < 20; round++) {
        char *text = chat_text(4000, (uint32_t)round);
        ps_frame *f = ps_frame_new(PS_OP_TEXT, text, 4000);

        assert_non_null(f);
        assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
        for (int i = 0; i < RACERS; i++) {
            memset(&r[i], 0, sizeof(r[i]));
            r[i].f = f;
            r[i].start = &start;
            assert_int_equal(pthread_create(&th[i], NULL, racer, &r[i]), 0);
        }
        for (int i = 0; i < RACERS; i++)
            assert_int_equal(pthread_join(th[i], NULL), 0);
        pthread_barrier_destroy(&start);
        for (unsigned bits = 9; bits <= 15; bits++) {
            assert_ptr_not_equal(r[0].got[bits], f);
            for (int i = 1; i < RACERS; i++)
                assert_ptr_equal(r[i].got[bits], r[0].got[bits]);
            assert_ptr_equal(ps_frame_deflated(f, bits), r[0].got[bits]);
        }
        ps_frame_unref(f);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deflate_rfc_examples),
        cmocka_unit_test(deflate_bad_windows),
        cmocka_unit_test(deflate_no_context_takeover),
        cmocka_unit_test(deflate_window_8_fits),
        cmocka_unit_test(deflate_matches_wsproto),
        cmocka_unit_test(variant_shape),
        cmocka_unit_test(variant_per_window),
        cmocka_unit_test(variant_left_plain),
        cmocka_unit_test(variant_threads),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    ps_deflate_release_thread();
    return failed;
}
