/*
 * Unit tests for gateway/wsproto.{c,h}: the frame parser against every RFC 6455 / RFC 7692
 * rule it enforces (with the exact close code and the exact byte at which it stops), byte
 * splits, UTF-8, limits, permessage-deflate, frame building and the handshake helpers.
 * Every test frees what it makes, so ASan and valgrind stay quiet.
 */
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
#include "wsproto.h"

/* ---- helpers: recording callbacks ---------------------------------------------------- */

/* What the callbacks saw: a log line per event ("T5:68656c6c6f;" ...), the last message
 * (owned here), and a switch to make the n-th event's callback ask to stop. */
typedef struct rec {
    char *log;
    size_t len, cap;
    int events;
    int stop_at; /* 1-based event whose callback returns nonzero; 0 for never */
    unsigned char *msg;
    size_t msg_len;
    int msg_binary;
    int nmsg;
} rec;

static void rec_logf(rec *r, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    if (r->len + (size_t)n + 1 > r->cap) {
        size_t cap = (r->len + (size_t)n + 1) * 2;
        char *l = realloc(r->log, cap);
        assert_non_null(l);
        r->log = l;
        r->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(r->log + r->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    r->len += (size_t)n;
}

/* Logs bytes: in hex when short, else as length and FNV-1a hash. */
static void rec_bytes(rec *r, const unsigned char *d, size_t n)
{
    if (n <= 64) {
        for (size_t i = 0; i < n; i++)
            rec_logf(r, "%02x", d[i]);
    } else {
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < n; i++)
            h = (h ^ d[i]) * 16777619u;
        rec_logf(r, "#%08x", h);
    }
    rec_logf(r, ";");
}

static int rec_stop(rec *r)
{
    return ++r->events == r->stop_at;
}

static int on_message(void *ctx, int binary, unsigned char *data, size_t len)
{
    rec *r = ctx;
    assert_non_null(data);
    assert_int_equal(data[len], 0);
    rec_logf(r, "%c%zu:", binary ? 'B' : 'T', len);
    rec_bytes(r, data, len);
    free(r->msg);
    r->msg = data; /* ours now */
    r->msg_len = len;
    r->msg_binary = binary;
    r->nmsg++;
    return rec_stop(r);
}

static int on_ping(void *ctx, const unsigned char *data, size_t len)
{
    rec *r = ctx;
    assert_non_null(data);
    rec_logf(r, "I%zu:", len);
    rec_bytes(r, data, len);
    return rec_stop(r);
}

static int on_pong(void *ctx, const unsigned char *data, size_t len)
{
    rec *r = ctx;
    assert_non_null(data);
    rec_logf(r, "O%zu:", len);
    rec_bytes(r, data, len);
    return rec_stop(r);
}

static int on_close(void *ctx, int code, const char *reason, size_t len)
{
    rec *r = ctx;
    assert_non_null(reason);
    rec_logf(r, "C%d:", code);
    rec_bytes(r, (const unsigned char *)reason, len);
    return rec_stop(r);
}

static const gw_wsp_callbacks CB = {on_message, on_ping, on_pong, on_close};

static void rec_free(rec *r)
{
    free(r->log);
    free(r->msg);
    memset(r, 0, sizeof(*r));
}

static const char *rec_log(const rec *r)
{
    return r->log != NULL ? r->log : "";
}

/* ---- helpers: building client frames ------------------------------------------------- */

typedef struct wbuf {
    unsigned char *d;
    size_t len, cap;
    unsigned nframes;
} wbuf;

static void wb_put(wbuf *b, const void *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2 + 16;
        unsigned char *d = realloc(b->d, cap);
        assert_non_null(d);
        b->d = d;
        b->cap = cap;
    }
    if (n != 0)
        memcpy(b->d + b->len, s, n);
    b->len += n;
}

static void wb_free(wbuf *b)
{
    free(b->d);
    memset(b, 0, sizeof(*b));
}

#define FIN 0x80
#define RSV1 0x40
#define RSV2 0x20
#define RSV3 0x10

/* Appends a client frame. b0 is the first header byte (FIN, RSV bits, opcode); form 0 uses
 * the minimal length encoding, 2 forces a 16-bit one, 8 a 64-bit one. The masking key
 * changes from frame to frame. */
static void frame_ex(wbuf *b, unsigned b0, const void *payload, size_t n, int form, int masked)
{
    unsigned char h[14], key[4];
    size_t hl = 0;
    const unsigned char *s = payload;

    if (form == 0)
        form = n < 126 ? 0 : n <= 0xFFFF ? 2 : 8;
    h[hl++] = (unsigned char)b0;
    if (form == 0) {
        h[hl++] = (unsigned char)((masked ? 0x80 : 0) | n);
    } else if (form == 2) {
        h[hl++] = (unsigned char)((masked ? 0x80 : 0) | 126);
        h[hl++] = (unsigned char)(n >> 8);
        h[hl++] = (unsigned char)n;
    } else {
        h[hl++] = (unsigned char)((masked ? 0x80 : 0) | 127);
        for (int i = 0; i < 8; i++)
            h[hl++] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    }
    for (int i = 0; i < 4; i++)
        key[i] = (unsigned char)(0x37 + 17 * b->nframes + 31 * (unsigned)i);
    b->nframes++;
    if (masked) {
        memcpy(h + hl, key, 4);
        hl += 4;
    }
    wb_put(b, h, hl);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)(s[i] ^ (masked ? key[i & 3] : 0));
        wb_put(b, &c, 1);
    }
}

static void frame(wbuf *b, unsigned b0, const void *payload, size_t n)
{
    frame_ex(b, b0, payload, n, 0, 1);
}

static void frame_str(wbuf *b, unsigned b0, const char *s)
{
    frame(b, b0, s, strlen(s));
}

/* ---- helpers: feeding --------------------------------------------------------------- */

static int feed(gw_wsp *p, const void *d, size_t n, rec *r, const char **why)
{
    return gw_wsp_feed(p, d, n, &CB, r, why);
}

/* Feeds one byte at a time until a call returns nonzero; *at is that byte's index (n when
 * every call returned 0). */
static int feed_bytewise(gw_wsp *p, const unsigned char *d, size_t n, rec *r, size_t *at)
{
    for (size_t i = 0; i < n; i++) {
        const char *why = NULL;
        int rc = feed(p, d + i, 1, r, &why);
        if (rc != 0) {
            if (rc > 0)
                assert_non_null(why);
            *at = i;
            return rc;
        }
    }
    *at = n;
    return 0;
}

/* Feeds in pseudo-random pieces of 1..maxpiece bytes. */
static int feed_random(gw_wsp *p, const unsigned char *d, size_t n, rec *r, uint32_t seed,
                       size_t maxpiece)
{
    size_t i = 0;
    while (i < n) {
        size_t k;
        int rc;
        seed = seed * 1664525u + 1013904223u;
        k = 1 + (seed >> 8) % maxpiece;
        if (k > n - i)
            k = n - i;
        rc = feed(p, d + i, k, r, NULL);
        if (rc != 0)
            return rc;
        i += k;
    }
    return 0;
}

/*
 * Checks that the bytes fail with code, both fed whole and byte by byte, that the bytewise
 * feed stops exactly at byte fail_at, and that the log before failure is want_log. The
 * failure must be sticky.
 */
static void expect_fail(const unsigned char *d, size_t n, size_t max, int deflate, int code,
                        size_t fail_at, const char *want_log)
{
    gw_wsp p;
    rec r = {0};
    const char *why = NULL, *why2 = NULL;
    size_t at = 0;
    int rc;

    gw_wsp_init(&p, max, deflate);
    rc = feed(&p, d, n, &r, &why);
    assert_int_equal(rc, code);
    assert_non_null(why);
    assert_true(strlen(why) > 0 && strlen(why) <= 123);
    assert_string_equal(rec_log(&r), want_log);
    /* Sticky: feeding again reads nothing and says the same. */
    assert_int_equal(feed(&p, d, n, &r, &why2), code);
    assert_ptr_equal(why, why2);
    assert_string_equal(rec_log(&r), want_log);
    gw_wsp_free(&p);
    rec_free(&r);

    gw_wsp_init(&p, max, deflate);
    rc = feed_bytewise(&p, d, n, &r, &at);
    assert_int_equal(rc, code);
    assert_int_equal(at, fail_at);
    assert_string_equal(rec_log(&r), want_log);
    gw_wsp_free(&p);
    rec_free(&r);
}

static void expect_fail_wb(wbuf *b, size_t max, int deflate, int code, size_t fail_at,
                           const char *want_log)
{
    expect_fail(b->d, b->len, max, deflate, code, fail_at, want_log);
    wb_free(b);
}

/* Feeds whole, bytewise and in random pieces; each must succeed with the log want. */
static void expect_log(const unsigned char *d, size_t n, size_t max, int deflate,
                       const char *want)
{
    gw_wsp p;
    rec r = {0};
    size_t at;

    gw_wsp_init(&p, max, deflate);
    assert_int_equal(feed(&p, d, n, &r, NULL), 0);
    assert_string_equal(rec_log(&r), want);
    gw_wsp_free(&p);
    rec_free(&r);

    gw_wsp_init(&p, max, deflate);
    assert_int_equal(feed_bytewise(&p, d, n, &r, &at), 0);
    assert_string_equal(rec_log(&r), want);
    gw_wsp_free(&p);
    rec_free(&r);

    for (uint32_t seed = 1; seed <= 8; seed++) {
        gw_wsp_init(&p, max, deflate);
        assert_int_equal(feed_random(&p, d, n, &r, seed, 1 + seed * 7), 0);
        assert_string_equal(rec_log(&r), want);
        gw_wsp_free(&p);
        rec_free(&r);
    }
}

#define MAX_DEFAULT ((size_t)1 << 20)

/* ---- SHA-1, base64, accept key ------------------------------------------------------ */

static void hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_sha1(const void *data, size_t len, const char *want)
{
    unsigned char dg[20];
    char h[41];
    gw__wsp_sha1(data, len, dg);
    hex(dg, 20, h);
    assert_string_equal(h, want);
}

static void test_sha1_vectors(void **state)
{
    (void)state;
    check_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    check_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    check_sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
               "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    check_sha1("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
               112, "a49b2446a02c645bf419f995b67091253a04a259");
    check_sha1("The quick brown fox jumps over the lazy dog", 43,
               "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");

    unsigned char *a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    check_sha1(a, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(a);
}

/* Lengths around the padding boundaries (55, 56, 63, 64, 65 bytes of 'x'). */
static void test_sha1_padding_boundaries(void **state)
{
    (void)state;
    char buf[130];
    memset(buf, 'x', sizeof(buf));
    /* Digests from coreutils sha1sum. */
    check_sha1(buf, 55, "cef734ba81a024479e09eb5a75b6ddae62e6abf1");
    check_sha1(buf, 56, "901305367c259952f4e7af8323f480d59f81335b");
    check_sha1(buf, 63, "0ddc4e0cccd9a12850deb5abb0853a4425559fec");
    check_sha1(buf, 64, "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163");
    check_sha1(buf, 65, "78c741ddc482e4cdf8c474a0876347a0905b6233");
}

static void test_accept_key(void **state)
{
    (void)state;
    char out[29];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";

    memset(out, '#', sizeof(out));
    assert_int_equal(gw_wsp_accept_key(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    /* Surrounding spaces and tabs are ignored. */
    memset(out, '#', sizeof(out));
    assert_int_equal(gw_wsp_accept_key(" \tdGhlIHNhbXBsZSBub25jZQ== \t", 28, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    /* The length counts, not the NUL. */
    assert_int_equal(gw_wsp_accept_key("dGhlIHNhbXBsZSBub25jZQ==garbage", 24, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    static const char *bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",    /* 23 */
        "dGhlIHNhbXBsZSBub25jZQ===",  /* 25 */
        "dGhlIHNhbXBsZSBub25jZQAA",   /* 18 bytes, no padding */
        "dGhlIHNhbXBsZSBub25jZ===",   /* 15 bytes + '=' */
        "dGhlIHNhbXBsZSBub25jZ.==",   /* not base64 */
        "dGhlIHNhbXBs ZSBub25jZQ==",  /* inner space */
        "dGhlIHNhbXBsZSBub25j-Q==",   /* base64url is not base64 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(out, '#', sizeof(out));
        assert_int_equal(gw_wsp_accept_key(bad[i], strlen(bad[i]), out), -1);
        assert_int_equal(out[0], '#');
    }
}

/* ---- frame building ----------------------------------------------------------------- */

static void test_header_builder(void **state)
{
    (void)state;
    unsigned char h[10];

    assert_int_equal(gw_wsp_header(h, GW_WSP_OP_TEXT, 0, 0), 2);
    assert_memory_equal(h, "\x81\x00", 2);
    assert_int_equal(gw_wsp_header(h, GW_WSP_OP_BINARY, 125, 0), 2);
    assert_memory_equal(h, "\x82\x7d", 2);
    assert_int_equal(gw_wsp_header(h, GW_WSP_OP_TEXT, 126, 1), 4);
    assert_memory_equal(h, "\xc1\x7e\x00\x7e", 4);
    assert_int_equal(gw_wsp_header(h, GW_WSP_OP_BINARY, 65535, 0), 4);
    assert_memory_equal(h, "\x82\x7e\xff\xff", 4);
    assert_int_equal(gw_wsp_header(h, GW_WSP_OP_BINARY, 65536, 0), 10);
    assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    assert_int_equal(gw_wsp_header(h, GW_WSP_OP_CLOSE, 2, 0), 2);
    assert_memory_equal(h, "\x88\x02", 2);
    assert_int_equal(gw_wsp_header(h, GW_WSP_OP_PING, 5, 0), 2);
    assert_memory_equal(h, "\x89\x05", 2);
#if SIZE_MAX > 0xFFFFFFFFu
    assert_int_equal(gw_wsp_header(h, GW_WSP_OP_TEXT, (size_t)0x0102030405060708ull, 0), 10);
    assert_memory_equal(h, "\x81\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10);
#endif
}

static void test_close_payload(void **state)
{
    (void)state;
    unsigned char out[125];
    char reason[200];

    assert_int_equal(gw_wsp_close_payload(out, 1000, NULL), 2);
    assert_memory_equal(out, "\x03\xe8", 2);
    assert_int_equal(gw_wsp_close_payload(out, 1001, "bye"), 5);
    assert_memory_equal(out, "\x03\xe9" "bye", 5);
    assert_int_equal(gw_wsp_close_payload(out, 4999, ""), 2);
    assert_memory_equal(out, "\x13\x87", 2);
    assert_int_equal(gw_wsp_close_payload(out, 0, "x"), 0);
    assert_int_equal(gw_wsp_close_payload(out, 999, "x"), 0);
    assert_int_equal(gw_wsp_close_payload(out, 5000, "x"), 0);

    /* ASCII longer than 123: cut at 123. */
    memset(reason, 'a', 150);
    reason[150] = 0;
    assert_int_equal(gw_wsp_close_payload(out, 1008, reason), 125);
    assert_memory_equal(out + 2, reason, 123);

    /* 122 'a' then 'é' (2 bytes): byte 123 would split it, so only the 'a's stay. */
    memset(reason, 'a', 122);
    strcpy(reason + 122, "\xc3\xa9zz");
    assert_int_equal(gw_wsp_close_payload(out, 1008, reason), 124);
    /* 121 'a' then '€' (3 bytes) = 124: the euro sign goes. */
    memset(reason, 'a', 121);
    strcpy(reason + 121, "\xe2\x82\xac");
    assert_int_equal(gw_wsp_close_payload(out, 1008, reason), 123);
    /* 120 'a' then '€' = 123 exactly: it stays. */
    memset(reason, 'a', 120);
    strcpy(reason + 120, "\xe2\x82\xac");
    assert_int_equal(gw_wsp_close_payload(out, 1008, reason), 125);
    assert_memory_equal(out + 122, "\xe2\x82\xac", 3);
    /* 119 'a' then a 4-byte character then more: it fits (123), the rest goes. */
    memset(reason, 'a', 119);
    strcpy(reason + 119, "\xf0\x9f\x98\x80zzz");
    assert_int_equal(gw_wsp_close_payload(out, 1008, reason), 125);
    /* 120 'a' then a 4-byte character: cut back to 120. */
    memset(reason, 'a', 120);
    strcpy(reason + 120, "\xf0\x9f\x98\x80");
    assert_int_equal(gw_wsp_close_payload(out, 1008, reason), 122);
}

/* ---- basic parsing ------------------------------------------------------------------ */

static void test_struct_is_small(void **state)
{
    (void)state;
    assert_true(sizeof(gw_wsp) <= 128);
}

static void test_rfc_examples(void **state)
{
    (void)state;
    /* RFC 6455 5.7: a single-frame masked text message "Hello". */
    static const unsigned char hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                          0x7f, 0x9f, 0x4d, 0x51, 0x58};
    expect_log(hello, sizeof(hello), MAX_DEFAULT, 0, "T5:48656c6c6f;");

    /* The unmasked version is refused at its second byte. */
    static const unsigned char unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    expect_fail(unmasked, sizeof(unmasked), MAX_DEFAULT, 0, 1002, 1, "");
}

static void test_message_owned_and_terminated(void **state)
{
    (void)state;
    gw_wsp p;
    rec r = {0};
    wbuf b = {0};

    frame_str(&b, FIN | GW_WSP_OP_BINARY, "a\0b");
    frame(&b, FIN | GW_WSP_OP_BINARY, "a\0b", 3);
    frame(&b, FIN | GW_WSP_OP_TEXT, "", 0);
    gw_wsp_init(&p, MAX_DEFAULT, 0);
    assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
    assert_string_equal(rec_log(&r), "B1:61;B3:610062;T0:;");
    assert_int_equal(r.msg_len, 0);
    assert_int_equal(r.msg_binary, 0);
    assert_int_equal(r.msg[0], 0);
    gw_wsp_free(&p);
    rec_free(&r);

    /* No on_message (and no callbacks at all): the parser frees the messages itself. */
    gw_wsp_callbacks none = {0};
    gw_wsp_init(&p, MAX_DEFAULT, 0);
    assert_int_equal(gw_wsp_feed(&p, b.d, b.len, &none, NULL, NULL), 0);
    gw_wsp_free(&p);
    gw_wsp_init(&p, MAX_DEFAULT, 0);
    assert_int_equal(gw_wsp_feed(&p, b.d, b.len, NULL, NULL, NULL), 0);
    gw_wsp_free(&p);
    wb_free(&b);
}

static void test_lengths_7_16_64(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    unsigned char *data = malloc(70000);
    assert_non_null(data);
    for (size_t i = 0; i < 70000; i++)
        data[i] = (unsigned char)(i * 7 + (i >> 8));

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        wbuf b = {0};
        gw_wsp p;
        rec r = {0};
        size_t at;

        frame(&b, FIN | GW_WSP_OP_BINARY, data, n);
        assert_int_equal(b.len, n + 6 + (n < 126 ? 0 : n <= 0xFFFF ? 2 : 8));
        gw_wsp_init(&p, MAX_DEFAULT, 0);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
        assert_int_equal(r.nmsg, 1);
        assert_int_equal(r.msg_len, n);
        assert_true(n == 0 || memcmp(r.msg, data, n) == 0);
        gw_wsp_free(&p);
        rec_free(&r);

        gw_wsp_init(&p, MAX_DEFAULT, 0);
        assert_int_equal(feed_bytewise(&p, b.d, b.len, &r, &at), 0);
        assert_int_equal(r.nmsg, 1);
        assert_int_equal(r.msg_len, n);
        assert_true(n == 0 || memcmp(r.msg, data, n) == 0);
        gw_wsp_free(&p);
        rec_free(&r);
        wb_free(&b);
    }
    free(data);
}

/* Decision: non-minimal length encodings are accepted. */
static void test_non_minimal_lengths_accepted(void **state)
{
    (void)state;
    wbuf b = {0};
    frame_ex(&b, FIN | GW_WSP_OP_TEXT, "hello", 5, 2, 1);
    frame_ex(&b, FIN | GW_WSP_OP_TEXT, "hello", 5, 8, 1);
    frame_ex(&b, FIN | GW_WSP_OP_PING, "", 0, 0, 1);
    frame_ex(&b, FIN | GW_WSP_OP_TEXT, "", 0, 8, 1);
    expect_log(b.d, b.len, MAX_DEFAULT, 0, "T5:68656c6c6f;T5:68656c6c6f;I0:;T0:;");
    wb_free(&b);
}

/* ---- the rules, with exact codes and positions ---------------------------------------- */

static void test_unmasked_frames_refused(void **state)
{
    (void)state;
    wbuf b = {0};
    frame_ex(&b, FIN | GW_WSP_OP_TEXT, "hi", 2, 0, 0);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 1, "");
    frame_ex(&b, FIN | GW_WSP_OP_PING, "", 0, 0, 0);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 1, "");
    frame_ex(&b, FIN | GW_WSP_OP_CLOSE, "\x03\xe8", 2, 0, 0);
    expect_fail_wb(&b, MAX_DEFAULT, 1, 1002, 1, "");
    /* After a good frame, the bad one fails at its own second byte. */
    frame_str(&b, FIN | GW_WSP_OP_TEXT, "ok");
    frame_ex(&b, FIN | GW_WSP_OP_BINARY, "x", 1, 0, 0);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 9, "T2:6f6b;");
}

static void test_rsv_bits(void **state)
{
    (void)state;
    wbuf b = {0};
    /* Without permessage-deflate every RSV bit is an error, on any frame. */
    static const unsigned rsv[] = {RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3};
    for (size_t i = 0; i < 4; i++) {
        frame_str(&b, FIN | rsv[i] | GW_WSP_OP_TEXT, "x");
        expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 0, "");
        frame_str(&b, FIN | rsv[i] | GW_WSP_OP_PING, "x");
        expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 0, "");
    }
    /* With it, RSV2 and RSV3 are still errors. */
    frame_str(&b, FIN | RSV2 | GW_WSP_OP_TEXT, "x");
    expect_fail_wb(&b, MAX_DEFAULT, 1, 1002, 0, "");
    frame_str(&b, FIN | RSV1 | RSV3 | GW_WSP_OP_BINARY, "x");
    expect_fail_wb(&b, MAX_DEFAULT, 1, 1002, 0, "");
    /* RSV1 on a control frame. */
    frame_str(&b, FIN | RSV1 | GW_WSP_OP_PING, "x");
    expect_fail_wb(&b, MAX_DEFAULT, 1, 1002, 0, "");
    frame(&b, FIN | RSV1 | GW_WSP_OP_CLOSE, "", 0);
    expect_fail_wb(&b, MAX_DEFAULT, 1, 1002, 0, "");
    /* RSV1 on a continuation frame (the message started uncompressed). */
    frame_str(&b, GW_WSP_OP_TEXT, "ab");
    frame_str(&b, FIN | RSV1 | GW_WSP_OP_CONT, "cd");
    expect_fail_wb(&b, MAX_DEFAULT, 1, 1002, 8, "");
}

static void test_reserved_opcodes(void **state)
{
    (void)state;
    static const unsigned ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        wbuf b = {0};
        frame_str(&b, FIN | ops[i], "x");
        expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 0, "");
        /* Also without FIN, and in the middle of a fragmented message. */
        frame_str(&b, GW_WSP_OP_TEXT, "a");
        frame_str(&b, ops[i], "x");
        expect_fail_wb(&b, MAX_DEFAULT, 1, 1002, 7, "");
    }
}

static void test_control_frame_rules(void **state)
{
    (void)state;
    wbuf b = {0};
    unsigned char big[126];
    memset(big, 'p', sizeof(big));

    /* 125 bytes is fine, 126 (16-bit length) is refused at the length byte. */
    frame(&b, FIN | GW_WSP_OP_PING, big, 125);
    {
        char want[32];
        uint32_t h = 2166136261u; /* the recorder's hash of 125 'p' */
        for (int i = 0; i < 125; i++)
            h = (h ^ 'p') * 16777619u;
        snprintf(want, sizeof(want), "I125:#%08x;", h);
        expect_log(b.d, b.len, MAX_DEFAULT, 0, want);
        wb_free(&b);
    }
    frame(&b, FIN | GW_WSP_OP_PING, big, 126);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 1, "");
    frame(&b, FIN | GW_WSP_OP_PONG, big, 126);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 1, "");
    frame(&b, FIN | GW_WSP_OP_CLOSE, big, 126);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 1, "");
    /* A control frame may not use the 16- or 64-bit forms even for a short payload: its
     * 7-bit length field (126, 127) is already over 125. */
    frame_ex(&b, FIN | GW_WSP_OP_PING, "hello", 5, 2, 1);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 1, "");
    frame_ex(&b, FIN | GW_WSP_OP_PING, "hello", 5, 8, 1);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 1, "");

    /* Control frames must not be fragmented. */
    frame_str(&b, GW_WSP_OP_PING, "x");
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 0, "");
    frame_str(&b, GW_WSP_OP_PONG, "x");
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 0, "");
    frame(&b, GW_WSP_OP_CLOSE, "", 0);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 0, "");
}

static void test_fragmentation_rules(void **state)
{
    (void)state;
    wbuf b = {0};

    /* Continuation with no message open: first frame, and after a complete message. */
    frame_str(&b, FIN | GW_WSP_OP_CONT, "x");
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 0, "");
    frame_str(&b, GW_WSP_OP_CONT, "x");
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 0, "");
    frame_str(&b, FIN | GW_WSP_OP_TEXT, "a");
    frame_str(&b, FIN | GW_WSP_OP_CONT, "x");
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 7, "T1:61;");
    frame_str(&b, GW_WSP_OP_TEXT, "a");
    frame_str(&b, FIN | GW_WSP_OP_CONT, "b");
    frame_str(&b, FIN | GW_WSP_OP_CONT, "x");
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 14, "T2:6162;");

    /* A new data frame while a fragmented message is open, even after a ping. */
    frame_str(&b, GW_WSP_OP_TEXT, "a");
    frame_str(&b, FIN | GW_WSP_OP_TEXT, "b");
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 7, "");
    frame_str(&b, GW_WSP_OP_BINARY, "a");
    frame_str(&b, FIN | GW_WSP_OP_PING, "p");
    frame_str(&b, GW_WSP_OP_TEXT, "b");
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 14, "I1:70;");
    frame_str(&b, GW_WSP_OP_TEXT, "a");
    frame_str(&b, GW_WSP_OP_CONT, "b");
    frame_str(&b, FIN | GW_WSP_OP_BINARY, "c");
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 14, "");
}

static void test_fragments_with_control_frames(void **state)
{
    (void)state;
    wbuf b = {0};
    frame_str(&b, GW_WSP_OP_TEXT, "Hel");
    frame_str(&b, FIN | GW_WSP_OP_PING, "p1");
    frame_str(&b, GW_WSP_OP_CONT, "lo");
    frame_str(&b, FIN | GW_WSP_OP_PONG, "");
    frame_str(&b, FIN | GW_WSP_OP_PING, "p2");
    frame_str(&b, GW_WSP_OP_CONT, "");
    frame_str(&b, FIN | GW_WSP_OP_CONT, "!");
    frame_str(&b, GW_WSP_OP_BINARY, "\x01");
    frame_str(&b, FIN | GW_WSP_OP_CONT, "\x02");
    expect_log(b.d, b.len, MAX_DEFAULT, 0,
               "I2:7031;O0:;I2:7032;T6:48656c6c6f21;B2:0102;");
    wb_free(&b);
}

static void test_length_top_bit(void **state)
{
    (void)state;
    static const unsigned char f[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    expect_fail(f, sizeof(f), SIZE_MAX, 0, 1002, 2, "");
    /* 2^63 - 1 is a legal length, refused by a 1 GiB limit at its last length byte. */
    static const unsigned char g[] = {0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    expect_fail(g, sizeof(g), (size_t)1 << 30, 0, 1009, 9, "");
}

/* ---- max_message ---------------------------------------------------------------------- */

static void test_max_message_on_header(void **state)
{
    (void)state;
    unsigned char data[300];
    wbuf b = {0};
    memset(data, 'z', sizeof(data));

    /* Exactly the limit passes, one more fails at the length byte: no payload needed. */
    frame(&b, FIN | GW_WSP_OP_BINARY, data, 100);
    {
        gw_wsp p;
        rec r = {0};
        gw_wsp_init(&p, 100, 0);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
        assert_int_equal(r.msg_len, 100);
        gw_wsp_free(&p);
        rec_free(&r);
        wb_free(&b);
    }
    /* Only the 2-byte header is fed: already 1009. */
    expect_fail((const unsigned char *)"\x82\xe5", 2, 100, 0, 1009, 1, "");
    /* 16-bit: 4 header bytes. */
    expect_fail((const unsigned char *)"\x82\xfe\x01\x00", 4, 200, 0, 1009, 3, "");
    /* 64-bit, huge: 10 header bytes, no mask, no payload. */
    expect_fail((const unsigned char *)"\x82\xff\x00\x00\x01\x00\x00\x00\x00\x00", 10, 1 << 20,
                0, 1009, 9, "");

    /* Across fragments: 60 + 40 = 100 fine, 60 + 41 refused on the second header, even with
     * a ping in between. */
    frame(&b, GW_WSP_OP_TEXT, data, 60);
    frame(&b, FIN | GW_WSP_OP_PING, "", 0);
    frame(&b, FIN | GW_WSP_OP_CONT, data, 40);
    {
        gw_wsp p;
        rec r = {0};
        gw_wsp_init(&p, 100, 0);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
        assert_int_equal(r.msg_len, 100);
        gw_wsp_free(&p);
        rec_free(&r);
        wb_free(&b);
    }
    frame(&b, GW_WSP_OP_TEXT, data, 60);
    frame(&b, FIN | GW_WSP_OP_PING, "", 0);
    frame(&b, FIN | GW_WSP_OP_CONT, data, 41);
    expect_fail_wb(&b, 100, 0, 1009, 66 + 6 + 1, "I0:;");

    /* The count restarts with each message; control frames do not count. */
    frame(&b, FIN | GW_WSP_OP_TEXT, data, 100);
    frame(&b, FIN | GW_WSP_OP_PING, data, 125);
    frame(&b, FIN | GW_WSP_OP_TEXT, data, 100);
    {
        gw_wsp p;
        rec r = {0};
        gw_wsp_init(&p, 100, 0);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
        assert_int_equal(r.nmsg, 2);
        gw_wsp_free(&p);
        rec_free(&r);
        wb_free(&b);
    }

    /* A limit of 0 allows only empty messages. */
    frame(&b, FIN | GW_WSP_OP_TEXT, "", 0);
    frame(&b, GW_WSP_OP_TEXT, "", 0);
    frame(&b, FIN | GW_WSP_OP_CONT, "", 0);
    expect_log(b.d, b.len, 0, 0, "T0:;T0:;");
    wb_free(&b);
    expect_fail((const unsigned char *)"\x81\x81", 2, 0, 0, 1009, 1, "");
}

/* The buffer grows with the payload actually received, not the announced length. */
static void test_no_allocation_before_payload(void **state)
{
    (void)state;
    gw_wsp p;
    rec r = {0};
    /* Announces 16 MiB, sends 10 bytes of it. */
    static const unsigned char h[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4,
                                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    gw_wsp_init(&p, 32u << 20, 0);
    assert_int_equal(feed(&p, h, sizeof(h), &r, NULL), 0);
    assert_true(p.msg_cap <= 64);
    gw_wsp_free(&p);
    rec_free(&r);
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

#define VALID (-1)
#define INCOMPLETE (-2)
typedef struct u8case {
    const char *s;
    size_t n;
    int bad; /* index of the first invalid byte, VALID, or INCOMPLETE at the end */
} u8case;
#define U(str, bad) {str, sizeof(str) - 1, bad}

static const u8case u8cases[] = {
    U("", VALID),
    U("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", VALID),
    U("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", VALID), /* Autobahn 6.2: κόσμε */
    U("\x00", VALID),
    U("\x7f", VALID),
    U("\xc2\x80", VALID),
    U("\xdf\xbf", VALID),
    U("\xe0\xa0\x80", VALID),
    U("\xed\x9f\xbf", VALID),       /* U+D7FF */
    U("\xee\x80\x80", VALID),       /* U+E000 */
    U("\xef\xbf\xbd", VALID),       /* U+FFFD */
    U("\xef\xbf\xbf", VALID),       /* U+FFFF: a noncharacter, still valid UTF-8 */
    U("\xf0\x90\x80\x80", VALID),   /* U+10000 */
    U("\xf4\x8f\xbf\xbf", VALID),   /* U+10FFFF */
    U("\xf0\x9f\x98\x80 ok", VALID),
    U("abcdefghijklmnopqrstuvwxyz0123456789\xe2\x82\xac", VALID),
    U("\xc0\xaf", 0),               /* overlong '/' */
    U("\xc1\xbf", 0),
    U("\xe0\x80\xaf", 1),           /* overlong, 3 bytes */
    U("\xe0\x9f\xbf", 1),
    U("\xf0\x80\x80\xaf", 1),       /* overlong, 4 bytes */
    U("\xf0\x8f\xbf\xbf", 1),
    U("\xed\xa0\x80", 1),           /* U+D800 */
    U("\xed\xbf\xbf", 1),           /* U+DFFF */
    U("\xed\xa0\x80\xed\xb0\x80", 1), /* a surrogate pair, CESU-8 */
    U("\xf4\x90\x80\x80", 1),       /* U+110000 */
    U("\xf5\x80\x80\x80", 0),
    U("\xf7\xbf\xbf\xbf", 0),
    U("\xf8\x88\x80\x80\x80", 0),
    U("\xfc\x84\x80\x80\x80\x80", 0),
    U("\xfe", 0),
    U("\xff", 0),
    U("\x80", 0),                   /* lone continuation */
    U("\xbf", 0),
    U("a\x80" "b", 1),
    U("\xc2\x41", 1),               /* missing continuation */
    U("\xe2\x82\x41", 2),
    U("\xf0\x9f\x98\x41", 3),
    U("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited", 12), /* 6.3.1 */
    U("\xc2", INCOMPLETE),
    U("\xe2\x82", INCOMPLETE),
    U("\xf0\x9f\x98", INCOMPLETE),
    U("abc\xf4\x8f\xbf", INCOMPLETE),
};

/* Builds a text message of the case split into fragments at the given cut points. */
static void u8_message(wbuf *b, const u8case *c, const size_t *cuts, size_t ncuts)
{
    size_t start = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : c->n;
        unsigned b0 = (i == 0 ? GW_WSP_OP_TEXT : GW_WSP_OP_CONT) | (i == ncuts ? FIN : 0);
        frame(b, b0, c->s + start, end - start);
        start = end;
    }
}

static void u8_check(const u8case *c, const size_t *cuts, size_t ncuts)
{
    wbuf b = {0};
    gw_wsp p;
    rec r = {0};
    int rc;

    u8_message(&b, c, cuts, ncuts);
    gw_wsp_init(&p, MAX_DEFAULT, 0);
    rc = feed(&p, b.d, b.len, &r, NULL);
    if (c->bad == VALID) {
        if (rc != 0)
            fail_msg("valid case %zu bytes got %d", c->n, rc);
        assert_int_equal(r.nmsg, 1);
        assert_int_equal(r.msg_len, c->n);
        assert_memory_equal(r.msg, c->s, c->n);
    } else {
        assert_int_equal(rc, 1007);
        assert_int_equal(r.nmsg, 0);
    }
    gw_wsp_free(&p);
    rec_free(&r);
    wb_free(&b);
}

static void test_utf8_table_single_frame(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(u8cases) / sizeof(u8cases[0]); k++) {
        const u8case *c = &u8cases[k];
        wbuf b = {0};
        gw_wsp p;
        rec r = {0};
        size_t at;
        int rc;

        u8_check(c, NULL, 0);
        /* Byte by byte, the failure is found at the first invalid byte exactly. */
        frame(&b, FIN | GW_WSP_OP_TEXT, c->s, c->n);
        gw_wsp_init(&p, MAX_DEFAULT, 0);
        rc = feed_bytewise(&p, b.d, b.len, &r, &at);
        if (c->bad == VALID) {
            assert_int_equal(rc, 0);
        } else {
            size_t want = 6 + (c->bad == INCOMPLETE ? c->n - 1 : (size_t)c->bad);
            assert_int_equal(rc, 1007);
            if (at != want)
                fail_msg("case %zu: failed at %zu, want %zu", k, at, want);
        }
        gw_wsp_free(&p);
        rec_free(&r);
        wb_free(&b);

        /* The same bytes as a binary message are fine. */
        frame(&b, FIN | GW_WSP_OP_BINARY, c->s, c->n);
        gw_wsp_init(&p, MAX_DEFAULT, 0);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
        assert_int_equal(r.nmsg, 1);
        gw_wsp_free(&p);
        rec_free(&r);
        wb_free(&b);
    }
}

/* Sequences cut between fragments at every point (so truncated ends become valid with the
 * next fragment), and every byte a fragment of its own. */
static void test_utf8_across_fragments(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(u8cases) / sizeof(u8cases[0]); k++) {
        const u8case *c = &u8cases[k];
        size_t cuts[64];
        for (size_t i = 0; i <= c->n; i++)
            u8_check(c, &i, 1);
        for (size_t i = 0; i <= c->n; i++)
            for (size_t j = i; j <= c->n; j++) {
                size_t two[2] = {i, j};
                u8_check(c, two, 2);
            }
        assert_true(c->n < 64);
        for (size_t i = 0; i + 1 < c->n; i++)
            cuts[i] = i + 1;
        u8_check(c, cuts, c->n > 0 ? c->n - 1 : 0);
    }
}

/* A text message's UTF-8 state survives control frames between its fragments, and a close
 * reason is checked on its own. */
static void test_utf8_state_across_control_frames(void **state)
{
    (void)state;
    wbuf b = {0};
    frame_str(&b, GW_WSP_OP_TEXT, "\xe2");
    frame_str(&b, FIN | GW_WSP_OP_PING, "\xc3\xa9");
    frame_str(&b, GW_WSP_OP_CONT, "\x82");
    frame_str(&b, FIN | GW_WSP_OP_PONG, "\xff");
    frame_str(&b, FIN | GW_WSP_OP_CONT, "\xac");
    expect_log(b.d, b.len, MAX_DEFAULT, 0, "I2:c3a9;O1:ff;T3:e282ac;");
    wb_free(&b);
}

/* ---- close frames ----------------------------------------------------------------------- */

static void close_frame(wbuf *b, int code, const char *reason, size_t rlen)
{
    unsigned char pl[200] = {0};
    size_t n = 0;
    if (code >= 0) {
        pl[n++] = (unsigned char)(code >> 8);
        pl[n++] = (unsigned char)code;
    }
    memcpy(pl + n, reason, rlen);
    frame(b, FIN | GW_WSP_OP_CLOSE, pl, n + rlen);
}

static void test_close_codes(void **state)
{
    (void)state;
    static const int good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                               1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const int bad[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100,
                              2000, 2999, 5000, 0xFFFF};
    char want[64];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        wbuf b = {0};
        close_frame(&b, good[i], "", 0);
        snprintf(want, sizeof(want), "C%d:;", good[i]);
        expect_log(b.d, b.len, MAX_DEFAULT, 0, want);
        wb_free(&b);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wbuf b = {0};
        close_frame(&b, bad[i], "x", 1);
        expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 8, "");
    }
}

static void test_close_payloads(void **state)
{
    (void)state;
    wbuf b = {0};
    char reason[124];

    /* No payload: 1005, empty reason. */
    close_frame(&b, -1, "", 0);
    expect_log(b.d, b.len, MAX_DEFAULT, 0, "C1005:;");
    wb_free(&b);
    /* One byte: 1002 once it is in. */
    frame(&b, FIN | GW_WSP_OP_CLOSE, "\x03", 1);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1002, 6, "");
    /* A UTF-8 reason. */
    close_frame(&b, 1001, "bye \xe2\x82\xac", 7);
    expect_log(b.d, b.len, MAX_DEFAULT, 0, "C1001:62796520e282ac;");
    wb_free(&b);
    /* The longest reason, 123 bytes. */
    memset(reason, 'r', 123);
    close_frame(&b, 4000, reason, 123);
    {
        gw_wsp p;
        rec r = {0};
        gw_wsp_init(&p, MAX_DEFAULT, 0);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
        assert_true(strncmp(rec_log(&r), "C4000:#", 7) == 0);
        gw_wsp_free(&p);
        rec_free(&r);
        wb_free(&b);
    }
    /* Invalid UTF-8 reasons: 1007. */
    close_frame(&b, 1000, "\xc0\xaf", 2);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1007, 9, "");
    close_frame(&b, 1000, "ok\xe2\x82", 4);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1007, 11, "");
    close_frame(&b, 1000, "\xed\xa0\x80", 3);
    expect_fail_wb(&b, MAX_DEFAULT, 0, 1007, 10, "");
    /* A close between fragments of a text message with an open UTF-8 sequence is valid. */
    frame_str(&b, GW_WSP_OP_TEXT, "\xe2\x82");
    close_frame(&b, 1000, "ok", 2);
    expect_log(b.d, b.len, MAX_DEFAULT, 0, "C1000:6f6b;");
    wb_free(&b);
}

static void test_bytes_after_close_ignored(void **state)
{
    (void)state;
    wbuf b = {0};
    gw_wsp p;
    rec r = {0};
    static const unsigned char junk[] = {0xFF, 0xFF, 0x00, 0x13};

    frame_str(&b, FIN | GW_WSP_OP_TEXT, "a");
    close_frame(&b, 1000, "", 0);
    frame_str(&b, FIN | GW_WSP_OP_TEXT, "never");
    wb_put(&b, junk, sizeof(junk));
    expect_log(b.d, b.len, MAX_DEFAULT, 0, "T1:61;C1000:;");

    gw_wsp_init(&p, MAX_DEFAULT, 0);
    assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
    assert_int_equal(feed(&p, junk, sizeof(junk), &r, NULL), 0);
    assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
    assert_string_equal(rec_log(&r), "T1:61;C1000:;");
    gw_wsp_free(&p);
    rec_free(&r);
    wb_free(&b);
}

/* ---- callbacks stopping the parser ------------------------------------------------------ */

static void test_callback_stops(void **state)
{
    (void)state;
    wbuf b = {0};
    static const char *want[] = {"", "T1:61;", "T1:61;I1:70;", "T1:61;I1:70;O1:71;",
                                 "T1:61;I1:70;O1:71;B1:62;", "T1:61;I1:70;O1:71;B1:62;C1000:;"};

    frame_str(&b, FIN | GW_WSP_OP_TEXT, "a");
    frame_str(&b, FIN | GW_WSP_OP_PING, "p");
    frame_str(&b, FIN | GW_WSP_OP_PONG, "q");
    frame_str(&b, FIN | GW_WSP_OP_BINARY, "b");
    close_frame(&b, 1000, "", 0);

    for (int stop = 1; stop <= 5; stop++) {
        for (int bytewise = 0; bytewise <= 1; bytewise++) {
            gw_wsp p;
            rec r = {0};
            const char *why = NULL;
            size_t at = 0;
            int rc;

            r.stop_at = stop;
            gw_wsp_init(&p, MAX_DEFAULT, 0);
            rc = bytewise ? feed_bytewise(&p, b.d, b.len, &r, &at)
                          : feed(&p, b.d, b.len, &r, &why);
            assert_int_equal(rc, -1);
            assert_string_equal(rec_log(&r), want[stop]);
            if (bytewise)
                assert_int_equal(at, 7 * (size_t)stop - 1 + (stop == 5 ? 1 : 0));
            /* Sticky, and no more callbacks. */
            assert_int_equal(feed(&p, b.d, b.len, &r, &why), -1);
            assert_non_null(why);
            assert_string_equal(rec_log(&r), want[stop]);
            gw_wsp_free(&p);
            rec_free(&r);
        }
    }
    wb_free(&b);
}

/* ---- splits ----------------------------------------------------------------------------- */

static void mixed_sequence(wbuf *b, unsigned char *big, size_t nbig)
{
    frame_str(b, GW_WSP_OP_TEXT, "frag\xe2");
    frame_str(b, FIN | GW_WSP_OP_PING, "ping!");
    frame_str(b, GW_WSP_OP_CONT, "\x82");
    frame_str(b, FIN | GW_WSP_OP_CONT, "\xac end");
    frame(b, FIN | GW_WSP_OP_BINARY, big, nbig);
    frame_str(b, FIN | GW_WSP_OP_PONG, "");
    frame_str(b, FIN | GW_WSP_OP_TEXT, "");
    frame(b, FIN | GW_WSP_OP_BINARY, big, 300);
    frame_ex(b, FIN | GW_WSP_OP_TEXT, "short", 5, 8, 1);
    frame(b, GW_WSP_OP_BINARY, big, 1);
    frame(b, GW_WSP_OP_CONT, big + 1, 200);
    frame(b, FIN | GW_WSP_OP_CONT, big + 201, 2);
    close_frame(b, 1000, "done", 4);
}

static void test_every_split_same_callbacks(void **state)
{
    (void)state;
    unsigned char *big = malloc(70000);
    wbuf b = {0};
    gw_wsp p;
    rec whole = {0};

    assert_non_null(big);
    for (size_t i = 0; i < 70000; i++)
        big[i] = (unsigned char)(i ^ (i >> 7));
    mixed_sequence(&b, big, 70000);

    gw_wsp_init(&p, MAX_DEFAULT, 0);
    assert_int_equal(feed(&p, b.d, b.len, &whole, NULL), 0);
    gw_wsp_free(&p);
    assert_int_equal(whole.nmsg, 6);
    assert_true(strstr(rec_log(&whole), "I5:70696e6721;T11:66726167e282ac20656e64;") != NULL);
    assert_true(strstr(rec_log(&whole), "C1000:646f6e65;") != NULL);

    /* One byte at a time, and in random pieces. */
    expect_log(b.d, b.len, MAX_DEFAULT, 0, rec_log(&whole));
    wb_free(&b);

    /* Every split into two feeds, on a sequence short enough to try them all. */
    mixed_sequence(&b, big, 130);
    rec_free(&whole);
    gw_wsp_init(&p, MAX_DEFAULT, 0);
    assert_int_equal(feed(&p, b.d, b.len, &whole, NULL), 0);
    gw_wsp_free(&p);
    for (size_t cut = 0; cut <= b.len; cut++) {
        rec r = {0};
        gw_wsp_init(&p, MAX_DEFAULT, 0);
        assert_int_equal(feed(&p, b.d, cut, &r, NULL), 0);
        assert_int_equal(feed(&p, b.d + cut, b.len - cut, &r, NULL), 0);
        assert_string_equal(rec_log(&r), rec_log(&whole));
        gw_wsp_free(&p);
        rec_free(&r);
    }
    /* And into three. */
    for (size_t c1 = 0; c1 <= b.len; c1 += 7) {
        for (size_t c2 = c1; c2 <= b.len; c2 += 5) {
            rec r = {0};
            gw_wsp_init(&p, MAX_DEFAULT, 0);
            assert_int_equal(feed(&p, b.d, c1, &r, NULL), 0);
            assert_int_equal(feed(&p, b.d + c1, c2 - c1, &r, NULL), 0);
            assert_int_equal(feed(&p, b.d + c2, b.len - c2, &r, NULL), 0);
            assert_string_equal(rec_log(&r), rec_log(&whole));
            gw_wsp_free(&p);
            rec_free(&r);
        }
    }
    rec_free(&whole);
    wb_free(&b);
    free(big);
}

/* Zero-length feeds are harmless, and one parser can be reused after gw_wsp_free. */
static void test_empty_feed_and_reuse(void **state)
{
    (void)state;
    gw_wsp p;
    rec r = {0};
    wbuf b = {0};

    gw_wsp_init(&p, MAX_DEFAULT, 0);
    assert_int_equal(feed(&p, NULL, 0, &r, NULL), 0);
    frame_str(&b, FIN | GW_WSP_OP_PING, "x");
    assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
    frame_str(&b, GW_WSP_OP_TEXT, "half");
    assert_int_equal(feed(&p, b.d + 7, 8, &r, NULL), 0); /* open message, partial frame */
    gw_wsp_free(&p);
    gw_wsp_init(&p, MAX_DEFAULT, 0);
    assert_int_equal(feed(&p, b.d, 7, &r, NULL), 0);
    assert_string_equal(rec_log(&r), "I1:78;I1:78;");
    gw_wsp_free(&p);
    rec_free(&r);
    wb_free(&b);
}

/* ---- permessage-deflate ----------------------------------------------------------------- */

/* Appends a compressed message split into frames of at most piece bytes (0: one frame). */
static void deflate_message(wbuf *b, unsigned op, const unsigned char *d, size_t n,
                            size_t piece, const char *ping_between)
{
    size_t clen = 0, off = 0;
    unsigned char *c = gw_wsp_deflate(d, n, &clen);
    assert_non_null(c);
    assert_true(clen >= 1);
    if (piece == 0 || piece >= clen) {
        frame(b, FIN | RSV1 | op, c, clen);
    } else {
        while (off < clen) {
            size_t k = clen - off < piece ? clen - off : piece;
            unsigned b0 = (off == 0 ? (RSV1 | op) : GW_WSP_OP_CONT) | (off + k == clen ? FIN : 0);
            frame(b, b0, c + off, k);
            off += k;
            if (ping_between != NULL && off < clen)
                frame_str(b, FIN | GW_WSP_OP_PING, ping_between);
        }
    }
    free(c);
}

static void check_round_trip(const unsigned char *d, size_t n, unsigned op, size_t piece,
                             size_t max)
{
    wbuf b = {0};
    gw_wsp p;
    rec r = {0};
    size_t at;

    deflate_message(&b, op, d, n, piece, "pp");
    for (int bytewise = 0; bytewise <= 1; bytewise++) {
        gw_wsp_init(&p, max, 1);
        if (bytewise)
            assert_int_equal(feed_bytewise(&p, b.d, b.len, &r, &at), 0);
        else
            assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
        assert_int_equal(r.nmsg, 1);
        assert_int_equal(r.msg_binary, op == GW_WSP_OP_BINARY);
        assert_int_equal(r.msg_len, n);
        assert_true(n == 0 || memcmp(r.msg, d, n) == 0);
        assert_int_equal(r.msg[n], 0);
        assert_true(p.msg_cap <= max + 1);
        gw_wsp_free(&p);
        rec_free(&r);
    }
    wb_free(&b);
}

static void test_deflate_round_trip(void **state)
{
    (void)state;
    static const char hello[] = "Hello, hello, hello, compressed world! \xe2\x82\xac";
    size_t big = 200000;
    unsigned char *rnd = malloc(big), *txt = malloc(big);
    uint32_t s = 12345;

    assert_non_null(rnd);
    assert_non_null(txt);
    for (size_t i = 0; i < big; i++) {
        s = s * 1103515245u + 12345u;
        rnd[i] = (unsigned char)(s >> 16);
        txt[i] = (unsigned char)("lorem ipsum dolor sit amet "[i % 27]);
    }
    check_round_trip((const unsigned char *)hello, sizeof(hello) - 1, GW_WSP_OP_TEXT, 0,
                     MAX_DEFAULT);
    check_round_trip((const unsigned char *)hello, sizeof(hello) - 1, GW_WSP_OP_TEXT, 3,
                     MAX_DEFAULT);
    check_round_trip(NULL, 0, GW_WSP_OP_TEXT, 0, MAX_DEFAULT);
    check_round_trip(NULL, 0, GW_WSP_OP_BINARY, 0, 1); /* 1 byte on the wire */
    check_round_trip(txt, big, GW_WSP_OP_TEXT, 0, big);      /* exactly the limit */
    check_round_trip(txt, big, GW_WSP_OP_TEXT, 100, big);
    check_round_trip(rnd, 20000, GW_WSP_OP_BINARY, 0, MAX_DEFAULT); /* incompressible */
    /* Deflate makes random bytes a little longer; the wire limit sees that. */
    check_round_trip(rnd, 20000, GW_WSP_OP_BINARY, 4096, 20100);
    {
        wbuf b = {0};
        deflate_message(&b, GW_WSP_OP_BINARY, rnd, 20000, 0, NULL);
        assert_true(b.len > 20000 + 8);
        gw_wsp p;
        rec r = {0};
        gw_wsp_init(&p, 20000, 1);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 1009);
        gw_wsp_free(&p);
        rec_free(&r);
        wb_free(&b);
    }
    free(rnd);
    free(txt);
}

/* Between messages a connection holds no buffer: the inflate state lives for one compressed
 * message, the control buffer for one control frame, the message buffer until it is handed
 * on; a message cut by a control frame keeps only what it needs meanwhile. */
static void test_buffers_only_while_in_use(void **state)
{
    (void)state;
    static const char text[] = "lorem ipsum dolor sit amet, lorem ipsum dolor sit amet";
    wbuf b = {0};
    gw_wsp p;
    rec r = {0};

    gw_wsp_init(&p, MAX_DEFAULT, 1);
    deflate_message(&b, GW_WSP_OP_TEXT, (const unsigned char *)text, sizeof(text) - 1, 0, NULL);
    assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
    assert_int_equal(r.nmsg, 1);
    assert_null(p.inflater);
    assert_null(p.msg);
    wb_free(&b);

    /* A compressed message cut in two with a ping between: inflating, then idle again. */
    deflate_message(&b, GW_WSP_OP_TEXT, (const unsigned char *)text, sizeof(text) - 1, 10, "hi");
    size_t half = b.len / 2;
    assert_int_equal(feed(&p, b.d, half, &r, NULL), 0);
    assert_non_null(p.inflater);
    assert_int_equal(feed(&p, b.d + half, b.len - half, &r, NULL), 0);
    assert_int_equal(r.nmsg, 2);
    assert_memory_equal(r.msg, text, sizeof(text) - 1);
    assert_null(p.inflater);
    assert_null(p.ctl);
    assert_null(p.msg);
    wb_free(&b);

    /* Pings and pongs with payloads: the control buffer goes once each is handed on. */
    frame_str(&b, 0x89, "ping payload");
    frame_str(&b, 0x8A, "pong payload");
    assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
    assert_null(p.ctl);
    assert_non_null(strstr(rec_log(&r), "I12:70696e67207061796c6f6164;O12:706f6e67207061796c6f6164;"));
    wb_free(&b);

    /* A close in the middle of a compressed message frees everything at once. */
    deflate_message(&b, GW_WSP_OP_BINARY, (const unsigned char *)text, sizeof(text) - 1, 10, NULL);
    assert_int_equal(feed(&p, b.d, 16, &r, NULL), 0);
    assert_non_null(p.inflater);
    wb_free(&b);
    frame(&b, 0x88, "\x03\xe8", 2);
    assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
    assert_null(p.inflater);
    assert_null(p.ctl);
    assert_null(p.msg);
    assert_int_equal(r.nmsg, 2);
    wb_free(&b);
    gw_wsp_free(&p);
    rec_free(&r);
}

/* Several messages in a row, compressed and not, each inflated with a fresh stream. */
static void test_deflate_mixed_messages(void **state)
{
    (void)state;
    wbuf b = {0};
    const char *a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    deflate_message(&b, GW_WSP_OP_TEXT, (const unsigned char *)a, strlen(a), 0, NULL);
    frame_str(&b, FIN | GW_WSP_OP_TEXT, "plain");
    deflate_message(&b, GW_WSP_OP_TEXT, (const unsigned char *)a, strlen(a), 2, "x");
    frame_str(&b, GW_WSP_OP_BINARY, "un");
    frame_str(&b, FIN | GW_WSP_OP_CONT, "compressed");
    deflate_message(&b, GW_WSP_OP_BINARY, (const unsigned char *)"zz", 2, 0, NULL);
    /* The second compressed copy went out in 2-byte fragments with a ping after each but
     * the last. */
    size_t clen;
    unsigned char *c = gw_wsp_deflate((const unsigned char *)a, strlen(a), &clen);
    assert_non_null(c);
    free(c);
    char aa[97], want[512] = "";
    for (int i = 0; i < 48; i++)
        memcpy(aa + 2 * i, "61", 2);
    aa[96] = 0;
    snprintf(want, sizeof(want), "T48:%s;T5:706c61696e;", aa);
    for (size_t i = 0; i + 1 < (clen + 1) / 2; i++)
        strcat(want, "I1:78;");
    snprintf(want + strlen(want), sizeof(want) - strlen(want),
             "T48:%s;B12:756e636f6d70726573736564;B2:7a7a;", aa);
    expect_log(b.d, b.len, MAX_DEFAULT, 1, want);
    wb_free(&b);
}

/* A stream that ends with a final block (BFINAL, as Z_FINISH makes) is accepted. */
static void test_deflate_final_block(void **state)
{
    (void)state;
    const char *msg = "finished stream finished stream";
    unsigned char out[256];
    z_stream z;
    wbuf b = {0};

    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)msg;
    z.avail_in = (uInt)strlen(msg);
    z.next_out = out;
    z.avail_out = sizeof(out);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    frame(&b, FIN | RSV1 | GW_WSP_OP_TEXT, out, sizeof(out) - z.avail_out);
    deflateEnd(&z);
    expect_log(b.d, b.len, MAX_DEFAULT, 1,
               "T31:66696e69736865642073747265616d2066696e69736865642073747265616d;");

    wb_free(&b);

    /* RFC 7692 7.2.3.4: "Hello" in a BFINAL block, then a stray 0x00, which is ignored. */
    frame(&b, FIN | RSV1 | GW_WSP_OP_TEXT, "\xf3\x48\xcd\xc9\xc9\x07\x00\x00", 8);
    expect_log(b.d, b.len, MAX_DEFAULT, 1, "T5:48656c6c6f;");
    wb_free(&b);
    /* Also across fragments: the stream ends in the first, the rest is ignored. */
    frame(&b, RSV1 | GW_WSP_OP_TEXT, "\xf3\x48\xcd\xc9\xc9\x07\x00", 7);
    frame(&b, FIN | GW_WSP_OP_CONT, "\xff\xff", 2);
    frame(&b, FIN | RSV1 | GW_WSP_OP_TEXT, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    expect_log(b.d, b.len, MAX_DEFAULT, 1, "T5:48656c6c6f;T5:48656c6c6f;");
    wb_free(&b);
}

static void test_deflate_bomb(void **state)
{
    (void)state;
    const size_t max = 64 * 1024;
    size_t n = 4u << 20, clen;
    unsigned char *zeros = calloc(1, n);
    unsigned char *c;
    wbuf b = {0};
    gw_wsp p;
    rec r = {0};
    int rc = 0;

    assert_non_null(zeros);
    c = gw_wsp_deflate(zeros, n, &clen);
    assert_non_null(c);
    /* 4 MiB of zeros squeeze into about 4 KB: well under the limit on the wire. */
    assert_true(clen < 8192);
    frame(&b, FIN | RSV1 | GW_WSP_OP_BINARY, c, clen);
    free(c);
    free(zeros);

    /* Fed in small pieces: the buffer never passes max + 1 and it ends in 1009. */
    gw_wsp_init(&p, max, 1);
    for (size_t i = 0; i < b.len && rc == 0; i += 64) {
        size_t k = b.len - i < 64 ? b.len - i : 64;
        rc = feed(&p, b.d + i, k, &r, NULL);
        assert_true(p.msg_cap <= max + 1);
        if (rc == 0)
            assert_true(p.msg_len <= max);
    }
    assert_int_equal(rc, 1009);
    assert_int_equal(r.nmsg, 0);
    gw_wsp_free(&p);

    /* Whole: the same. */
    gw_wsp_init(&p, max, 1);
    assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 1009);
    gw_wsp_free(&p);
    rec_free(&r);
    wb_free(&b);

    /* A 1 KB bomb: 1 MiB of 'A' behind ~1 KB, limit 100 KB. */
    zeros = malloc(1u << 20);
    assert_non_null(zeros);
    memset(zeros, 'A', 1u << 20);
    c = gw_wsp_deflate(zeros, 1u << 20, &clen);
    assert_non_null(c);
    assert_true(clen < 2048);
    frame(&b, FIN | RSV1 | GW_WSP_OP_TEXT, c, clen);
    free(c);
    free(zeros);
    gw_wsp_init(&p, 100 * 1024, 1);
    rc = 0;
    for (size_t i = 0; i < b.len && rc == 0; i++) {
        rc = feed(&p, b.d + i, 1, &r, NULL);
        assert_true(p.msg_cap <= 100 * 1024 + 1);
    }
    assert_int_equal(rc, 1009);
    gw_wsp_free(&p);
    rec_free(&r);
    wb_free(&b);
}

/* One byte past the limit once inflated. */
static void test_deflate_limit_exact(void **state)
{
    (void)state;
    unsigned char d[1001];
    wbuf b = {0};
    memset(d, 'q', sizeof(d));
    deflate_message(&b, GW_WSP_OP_TEXT, d, 1001, 0, NULL);
    {
        gw_wsp p;
        rec r = {0};
        gw_wsp_init(&p, 1001, 1);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
        assert_int_equal(r.msg_len, 1001);
        gw_wsp_free(&p);
        rec_free(&r);
        gw_wsp_init(&p, 1000, 1);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 1009);
        assert_int_equal(r.nmsg, 0);
        gw_wsp_free(&p);
        rec_free(&r);
    }
    wb_free(&b);
    /* The compressed size counts on the header too. */
    unsigned char raw[300];
    for (int i = 0; i < 300; i++)
        raw[i] = (unsigned char)(i * 37 + 11);
    frame(&b, FIN | RSV1 | GW_WSP_OP_BINARY, raw, 300);
    expect_fail_wb(&b, 200, 1, 1009, 3, "");
}

static void test_deflate_bad_data(void **state)
{
    (void)state;
    wbuf b = {0};
    size_t clen;
    unsigned char *c;

    /* Not a deflate stream (reserved block type 3). */
    frame(&b, FIN | RSV1 | GW_WSP_OP_BINARY, "\xff\xff\xff\xff", 4);
    {
        gw_wsp p;
        rec r = {0};
        gw_wsp_init(&p, MAX_DEFAULT, 1);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 1007);
        gw_wsp_free(&p);
        rec_free(&r);
        wb_free(&b);
    }
    /* A stream cut short anywhere is 1007: some cuts make invalid codes, others (the
     * last byte, for one) leave inflate mid-block after the appended 00 00 ff ff. */
    {
        const char *msg = "a message long enough to have a few symbols in its block";
        c = gw_wsp_deflate((const unsigned char *)msg, strlen(msg), &clen);
        assert_non_null(c);
        assert_true(clen > 10 && clen < 126);
        for (size_t cut = 1; cut < clen; cut++) {
            gw_wsp p;
            rec r = {0};
            frame(&b, FIN | RSV1 | GW_WSP_OP_TEXT, c, clen - cut);
            gw_wsp_init(&p, MAX_DEFAULT, 1);
            assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 1007);
            assert_int_equal(r.nmsg, 0);
            gw_wsp_free(&p);
            rec_free(&r);
            wb_free(&b);
        }
        free(c);
    }
    /* Invalid UTF-8 inside a compressed text message: 1007; as binary it is fine. */
    c = gw_wsp_deflate((const unsigned char *)"ok \xed\xa0\x80 no", 10, &clen);
    assert_non_null(c);
    frame(&b, FIN | RSV1 | GW_WSP_OP_TEXT, c, clen);
    frame(&b, FIN | RSV1 | GW_WSP_OP_BINARY, c, clen);
    free(c);
    {
        gw_wsp p;
        rec r = {0};
        gw_wsp_init(&p, MAX_DEFAULT, 1);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 1007);
        assert_int_equal(r.nmsg, 0);
        gw_wsp_free(&p);
        rec_free(&r);
        gw_wsp_init(&p, MAX_DEFAULT, 1);
        assert_int_equal(feed(&p, b.d + b.len / 2, b.len / 2, &r, NULL), 0);
        assert_int_equal(r.nmsg, 1);
        assert_int_equal(r.msg_len, 10);
        gw_wsp_free(&p);
        rec_free(&r);
    }
    wb_free(&b);
    /* Compressed text ending inside a UTF-8 sequence. */
    c = gw_wsp_deflate((const unsigned char *)"end \xe2\x82", 6, &clen);
    assert_non_null(c);
    frame(&b, FIN | RSV1 | GW_WSP_OP_TEXT, c, clen);
    free(c);
    {
        gw_wsp p;
        rec r = {0};
        gw_wsp_init(&p, MAX_DEFAULT, 1);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 1007);
        gw_wsp_free(&p);
        rec_free(&r);
    }
    wb_free(&b);
}

static void test_deflate_output_shape(void **state)
{
    (void)state;
    size_t n = 0;
    unsigned char *c = gw_wsp_deflate(NULL, 0, &n);
    assert_non_null(c);
    assert_int_equal(n, 1);
    assert_int_equal(c[0], 0x00); /* RFC 7692 7.2.3.6: an empty message is 0x00 */
    free(c);
    /* RFC 7692 7.2.3.1: "Hello" compresses to f2 48 cd c9 c9 07 00. */
    c = gw_wsp_deflate((const unsigned char *)"Hello", 5, &n);
    assert_non_null(c);
    assert_int_equal(n, 7);
    assert_memory_equal(c, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    free(c);

    /* RFC 7692 7.2.3.2: "Hello" split over two frames, masked here by our helper. */
    wbuf b = {0};
    frame(&b, RSV1 | GW_WSP_OP_TEXT, "\xf2\x48\xcd", 3);
    frame(&b, FIN | GW_WSP_OP_CONT, "\xc9\xc9\x07\x00", 4);
    expect_log(b.d, b.len, MAX_DEFAULT, 1, "T5:48656c6c6f;");
    wb_free(&b);
    /* RFC 7692 7.2.3.3: a stored (uncompressed) block. */
    frame(&b, FIN | RSV1 | GW_WSP_OP_TEXT, "\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00", 11);
    expect_log(b.d, b.len, MAX_DEFAULT, 1, "T5:48656c6c6f;");
    wb_free(&b);
}

/* ---- Sec-WebSocket-Extensions ------------------------------------------------------------ */

#define BASE_ANSWER "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

/* Parses offer; it must be accepted with exactly the terms given, and answered with want. */
static void expect_offer(const char *offer, unsigned server_bits, unsigned client_bits,
                         const char *want)
{
    gw_wsp_deflate_params dp;
    char answer[GW_WSP_DEFLATE_RESPONSE_MAX];
    size_t n;

    memset(&dp, 0xAA, sizeof(dp));
    if (gw_wsp_parse_deflate_offer(offer, strlen(offer), &dp) != 1)
        fail_msg("should accept: %s", offer);
    if (dp.server_bits != server_bits || dp.client_bits != client_bits)
        fail_msg("%s: server %u client %u, want %u %u", offer, dp.server_bits, dp.client_bits,
                 server_bits, client_bits);
    n = gw_wsp_deflate_response(&dp, answer);
    assert_int_equal(n, strlen(answer));
    if (strcmp(answer, want) != 0)
        fail_msg("%s: answered \"%s\", want \"%s\"", offer, answer, want);
}

static void test_deflate_offer(void **state)
{
    (void)state;
    static const struct {
        const char *offer;
        unsigned server_bits, client_bits;
        const char *answer;
    } yes[] = {
        {"permessage-deflate", 15, 15, BASE_ANSWER},
        {"permessage-deflate; client_max_window_bits", 15, 15, BASE_ANSWER},
        {"permessage-deflate; client_max_window_bits=10", 15, 10,
         BASE_ANSWER "; client_max_window_bits=10"},
        /* 8 is not answered: inflated with 15, which reads any window. */
        {"permessage-deflate; client_max_window_bits=8", 15, 15, BASE_ANSWER},
        {"permessage-deflate; client_max_window_bits=9", 15, 9,
         BASE_ANSWER "; client_max_window_bits=9"},
        {"permessage-deflate; client_max_window_bits=\"15\"", 15, 15,
         BASE_ANSWER "; client_max_window_bits=15"},
        {"permessage-deflate; server_max_window_bits=15", 15, 15,
         BASE_ANSWER "; server_max_window_bits=15"},
        {"permessage-deflate; server_max_window_bits=10", 10, 15,
         BASE_ANSWER "; server_max_window_bits=10"},
        /* Autobahn 13.3: zlib compresses with 9 bits, which fits an 8-bit window. */
        {"permessage-deflate; server_max_window_bits=8", 8, 15,
         BASE_ANSWER "; server_max_window_bits=8"},
        {"permessage-deflate; server_max_window_bits=9", 9, 15,
         BASE_ANSWER "; server_max_window_bits=9"},
        {"permessage-deflate; server_max_window_bits=\"15\"; client_max_window_bits=9", 15, 9,
         BASE_ANSWER "; server_max_window_bits=15; client_max_window_bits=9"},
        {"permessage-deflate; server_max_window_bits=12; client_max_window_bits=11", 12, 11,
         BASE_ANSWER "; server_max_window_bits=12; client_max_window_bits=11"},
        {"permessage-deflate; server_no_context_takeover; client_no_context_takeover", 15, 15,
         BASE_ANSWER},
        /* Autobahn 13.5: no context takeover asked, and an 8-bit server window. */
        {"permessage-deflate; client_no_context_takeover; client_max_window_bits; "
         "server_no_context_takeover; server_max_window_bits=8",
         8, 15, BASE_ANSWER "; server_max_window_bits=8"},
        /* Autobahn 13.7: three offers, the first acceptable one wins. */
        {"permessage-deflate; client_no_context_takeover; client_max_window_bits; "
         "server_no_context_takeover; server_max_window_bits=8, permessage-deflate; "
         "client_no_context_takeover; client_max_window_bits; server_no_context_takeover, "
         "permessage-deflate; client_max_window_bits",
         8, 15, BASE_ANSWER "; server_max_window_bits=8"},
        {"permessage-deflate;client_no_context_takeover;server_no_context_takeover;"
         "client_max_window_bits;server_max_window_bits=15",
         15, 15, BASE_ANSWER "; server_max_window_bits=15"},
        {"x-webkit-deflate-frame, permessage-deflate", 15, 15, BASE_ANSWER},
        {"permessage-deflate; server_max_window_bits=10, permessage-deflate", 10, 15,
         BASE_ANSWER "; server_max_window_bits=10"},
        /* A declined offer (malformed) gives way to the next one. */
        {"permessage-deflate; server_max_window_bits=7, permessage-deflate; "
         "server_max_window_bits=11",
         11, 15, BASE_ANSWER "; server_max_window_bits=11"},
        {"permessage-deflate; server_max_window_bits, permessage-deflate; "
         "client_max_window_bits=12",
         15, 12, BASE_ANSWER "; client_max_window_bits=12"},
        {"permessage-deflate; client_max_window_bits=16, permessage-deflate", 15, 15,
         BASE_ANSWER},
        {"permessage-deflate; server_max_window_bits=9; server_max_window_bits=9, "
         "permessage-deflate; server_max_window_bits=13",
         13, 15, BASE_ANSWER "; server_max_window_bits=13"},
        {"permessage-deflate; unknown, permessage-deflate; server_max_window_bits=14", 14, 15,
         BASE_ANSWER "; server_max_window_bits=14"},
        {"  permessage-deflate ;  client_max_window_bits  ", 15, 15, BASE_ANSWER},
        {"Permessage-Deflate; Client_Max_Window_Bits", 15, 15, BASE_ANSWER},
        {"Permessage-Deflate; Server_Max_Window_Bits=13", 13, 15,
         BASE_ANSWER "; server_max_window_bits=13"},
        {"foo; bar=\"a,b;c\", permessage-deflate", 15, 15, BASE_ANSWER},
        {", permessage-deflate,,", 15, 15, BASE_ANSWER},
        {"permessage-deflate; client_max_window_bits = 12", 15, 12,
         BASE_ANSWER "; client_max_window_bits=12"},
        {"permessage-deflate; server_max_window_bits = \"9\"", 9, 15,
         BASE_ANSWER "; server_max_window_bits=9"},
    };
    static const char *no[] = {
        "",
        "   ",
        "x-webkit-deflate-frame",
        "permessage-deflate-x",
        "deflate",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=0",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=\"\"",
        "permessage-deflate; server_max_window_bits=-9",
        "permessage-deflate; server_max_window_bits=9.0",
        "permessage-deflate; server_max_window_bits=\"9",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=10; Server_Max_Window_Bits=12",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=08",
        "permessage-deflate; client_max_window_bits=015",
        "permessage-deflate; client_max_window_bits=\"\"",
        "permessage-deflate; client_max_window_bits=1x",
        "permessage-deflate; client_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover=\"\"",
        "permessage-deflate; unknown_param",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=7, permessage-deflate; "
        "client_max_window_bits=7",
        "permessage-deflate;",
        "permessage-deflate; =15",
        "permessage-deflate x",
        "permessage-deflate; client_max_window_bits=\"10",
        "permessage-deflate; client_max_window_bits=",
        "permessage-deflate, foo bar",
        /* Bad syntax anywhere refuses the whole header, even after a good offer. */
        "permessage-deflate; server_max_window_bits=10, foo bar",
        "permessage-deflate\x01",
    };
    gw_wsp_deflate_params dp = {1, 2, 3, 4};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        expect_offer(yes[i].offer, yes[i].server_bits, yes[i].client_bits, yes[i].answer);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (gw_wsp_parse_deflate_offer(no[i], strlen(no[i]), &dp) != 0)
            fail_msg("should decline: %s", no[i]);
        /* Declined: the terms are left alone. */
        assert_int_equal(dp.server_bits, 1);
        assert_int_equal(dp.client_bits, 2);
        assert_int_equal(dp.name_server_bits, 3);
        assert_int_equal(dp.name_client_bits, 4);
    }
    /* The length counts, not the NUL. */
    assert_int_equal(gw_wsp_parse_deflate_offer("permessage-deflate; bogus", 18, NULL), 1);
    assert_int_equal(gw_wsp_parse_deflate_offer("permessage-deflate; server_max_window_bits=10",
                                                strlen("permessage-deflate; "
                                                       "server_max_window_bits=1"), &dp), 0);
    /* The longest answer fits. */
    expect_offer("permessage-deflate; server_max_window_bits=10; client_max_window_bits=10", 10,
                 10, BASE_ANSWER "; server_max_window_bits=10; client_max_window_bits=10");
    assert_true(strlen(BASE_ANSWER "; server_max_window_bits=10; client_max_window_bits=10") <
                GW_WSP_DEFLATE_RESPONSE_MAX);
}

/* Bytes whose compression refers back `distance` bytes: a random block, then it again. */
static unsigned char *repeat_at(size_t distance, size_t *n)
{
    unsigned char *d = malloc(2 * distance);
    uint32_t s = 777;

    assert_non_null(d);
    for (size_t i = 0; i < distance; i++) {
        s = s * 1103515245u + 12345u;
        d[i] = (unsigned char)(s >> 16);
    }
    memcpy(d + distance, d, distance);
    *n = 2 * distance;
    return d;
}

/* Inflates a compressed frame with the client window negotiated, fed whole and then byte
 * by byte; returns gw_wsp_feed()'s result for the bytewise feed (the whole feed must agree
 * when it succeeds) and checks the message when it is 0. Byte by byte is the case the
 * window is for: zlib may refer back into output it wrote in the same call, so only
 * output from earlier calls has to fit the window. */
static int inflate_with(const unsigned char *c, size_t clen, unsigned client_bits,
                        const unsigned char *want, size_t want_len)
{
    gw_wsp_deflate_params dp = {15, (unsigned char)client_bits, 0, 1};
    wbuf b = {0};
    gw_wsp p;
    rec r = {0};
    size_t at;
    int rc;

    frame(&b, FIN | RSV1 | GW_WSP_OP_BINARY, c, clen);
    gw_wsp_init_deflate(&p, MAX_DEFAULT, &dp);
    rc = feed_bytewise(&p, b.d, b.len, &r, &at);
    if (rc == 0) {
        assert_int_equal(r.nmsg, 1);
        assert_int_equal(r.msg_len, want_len);
        assert_memory_equal(r.msg, want, want_len);
        gw_wsp_free(&p);
        rec_free(&r);
        gw_wsp_init_deflate(&p, MAX_DEFAULT, &dp);
        assert_int_equal(feed(&p, b.d, b.len, &r, NULL), 0);
        assert_int_equal(r.msg_len, want_len);
        assert_memory_equal(r.msg, want, want_len);
    } else {
        assert_int_equal(r.nmsg, 0);
    }
    gw_wsp_free(&p);
    rec_free(&r);
    wb_free(&b);
    return rc;
}

/* client_max_window_bits=N answered: the parser inflates with 2^N bytes of window (and
 * zlib allocates only that much for it), so a message within the window always inflates,
 * and one that refers further back than the client agreed to fails with 1007. */
static void test_deflate_client_window(void **state)
{
    (void)state;
    size_t n, clen;
    unsigned char *d = repeat_at(2000, &n), *c;

    /* Compressed with 15 bits: the second half is a match 2000 bytes back. */
    c = ps_deflate_message(d, n, 15, 0, &clen);
    assert_non_null(c);
    assert_true(clen < 2100);
    assert_int_equal(inflate_with(c, clen, 15, d, n), 0);
    assert_int_equal(inflate_with(c, clen, 11, d, n), 0);    /* 2048 >= 2000 */
    assert_int_equal(inflate_with(c, clen, 9, d, n), 1007);  /* 512 < 2000 */
    assert_int_equal(inflate_with(c, clen, 10, d, n), 1007); /* 1024 < 2000 */
    free(c);
    /* Compressed within 9 bits, the same bytes inflate with a 9-bit window. */
    c = ps_deflate_message(d, n, 9, 0, &clen);
    assert_non_null(c);
    assert_int_equal(inflate_with(c, clen, 9, d, n), 0);
    free(c);
    free(d);
    /* A window outside 8..15 counts as 15. */
    d = repeat_at(20000, &n);
    c = ps_deflate_message(d, n, 15, 0, &clen);
    assert_non_null(c);
    assert_true(clen < 21000);
    assert_int_equal(inflate_with(c, clen, 0, d, n), 0);
    assert_int_equal(inflate_with(c, clen, 14, d, n), 1007); /* 16384 < 20000 */
    free(c);
    free(d);
    /* The server window is the connection's, for what it sends. */
    {
        gw_wsp p;
        gw_wsp_deflate_params dp = {8, 15, 1, 0};
        gw_wsp_init_deflate(&p, MAX_DEFAULT, &dp);
        assert_int_equal(gw_wsp_server_window(&p), 8);
        gw_wsp_free(&p);
        gw_wsp_init_deflate(&p, MAX_DEFAULT, NULL);
        assert_int_equal(gw_wsp_server_window(&p), 0);
        gw_wsp_free(&p);
        gw_wsp_init(&p, MAX_DEFAULT, 1);
        assert_int_equal(gw_wsp_server_window(&p), 15);
        gw_wsp_free(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1_vectors),
        cmocka_unit_test(test_sha1_padding_boundaries),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_header_builder),
        cmocka_unit_test(test_close_payload),
        cmocka_unit_test(test_struct_is_small),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_message_owned_and_terminated),
        cmocka_unit_test(test_lengths_7_16_64),
        cmocka_unit_test(test_non_minimal_lengths_accepted),
        cmocka_unit_test(test_unmasked_frames_refused),
        cmocka_unit_test(test_rsv_bits),
        cmocka_unit_test(test_reserved_opcodes),
        cmocka_unit_test(test_control_frame_rules),
        cmocka_unit_test(test_fragmentation_rules),
        cmocka_unit_test(test_fragments_with_control_frames),
        cmocka_unit_test(test_length_top_bit),
        cmocka_unit_test(test_max_message_on_header),
        cmocka_unit_test(test_no_allocation_before_payload),
        cmocka_unit_test(test_utf8_table_single_frame),
        cmocka_unit_test(test_utf8_across_fragments),
        cmocka_unit_test(test_utf8_state_across_control_frames),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_close_payloads),
        cmocka_unit_test(test_bytes_after_close_ignored),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_every_split_same_callbacks),
        cmocka_unit_test(test_empty_feed_and_reuse),
        cmocka_unit_test(test_deflate_round_trip),
        cmocka_unit_test(test_deflate_mixed_messages),
        cmocka_unit_test(test_buffers_only_while_in_use),
        cmocka_unit_test(test_deflate_final_block),
        cmocka_unit_test(test_deflate_bomb),
        cmocka_unit_test(test_deflate_limit_exact),
        cmocka_unit_test(test_deflate_bad_data),
        cmocka_unit_test(test_deflate_output_shape),
        cmocka_unit_test(test_deflate_offer),
        cmocka_unit_test(test_deflate_client_window),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    ps_deflate_release_thread();
    return failed;
}
