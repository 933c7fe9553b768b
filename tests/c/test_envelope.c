/*
 * test_envelope.c: unit tests of pubsub/envelope.c, the msgpack envelope of
 * messages between processes: round trips, and one exact error for each kind
 * of malformed input, built byte by byte.
 *
 * Every test frees everything it made, so ASan and valgrind stay quiet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"

static const unsigned char ORIGIN[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static ps_envelope make(const char *topic, unsigned opcode, const void *payload, size_t len,
                        uint64_t seq)
{
    ps_envelope e;

    memset(&e, 0, sizeof(e));
    memcpy(e.origin, ORIGIN, sizeof(ORIGIN));
    e.seq = seq;
    e.topic = topic;
    e.topic_len = strlen(topic);
    e.opcode = opcode;
    e.payload = payload;
    e.payload_len = len;
    return e;
}

static void round_trip(const ps_envelope *in)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    ps_envelope out;

    assert_int_equal(ps_envelope_encode(in, &buf, &len), PS_ENV_OK);
    assert_true(len <= PS_ENVELOPE_OVERHEAD + in->topic_len + in->payload_len);
    assert_int_equal(ps_envelope_decode(buf, len, &out), PS_ENV_OK);
    assert_memory_equal(out.origin, in->origin, PS_ENVELOPE_ORIGIN_LEN);
    assert_int_equal(out.seq, in->seq);
    assert_int_equal(out.topic_len, in->topic_len);
    assert_memory_equal(out.topic, in->topic, in->topic_len);
    assert_int_equal(out.opcode, in->opcode);
    assert_int_equal(out.payload_len, in->payload_len);
    if (in->payload_len)
        assert_memory_equal(out.payload, in->payload, in->payload_len);
    /* Borrowed from the buffer, not copied. */
    assert_true((const unsigned char *)out.topic > buf &&
                (const unsigned char *)out.topic < buf + len);
    /* Every strict prefix is truncated, never accepted (all of them for small ones). */
    size_t cuts[] = {0, 1, 2, len / 2, len - 2, len - 1};
    for (size_t k = 0; k < (len <= 1024 ? len : 6); k++) {
        size_t cut = len <= 1024 ? k : cuts[k];
        unsigned char *part = malloc(cut ? cut : 1);
        int rc;

        assert_non_null(part);
        memcpy(part, buf, cut);
        rc = ps_envelope_decode(part, cut, &out);
        assert_int_equal(rc, cut == 0 ? PS_ENV_EMPTY : PS_ENV_TRUNCATED);
        free(part);
    }
    free(buf);
}

static void test_round_trips(void **state)
{
    (void)state;
    ps_envelope e = make("room:lobby", PS_OP_TEXT, "hello", 5, 1);
    round_trip(&e);
    e = make("t", PS_OP_BINARY, "\x00\xff\x01", 3, UINT64_MAX);
    round_trip(&e);
    e = make("empty", PS_OP_TEXT, NULL, 0, 42);
    round_trip(&e);
    e = make("ünï ✓", PS_OP_TEXT, "καλημέρα", strlen("καλημέρα"), 300);
    round_trip(&e);
}

static void test_sizes_that_change_msgpack_headers(void **state)
{
    (void)state;
    /* str8 / str16 topics, bin8 / bin16 / bin32 payloads, seq widths. */
    size_t sizes[] = {0, 31, 32, 255, 256, 65535, 65536, 70000};
    unsigned char *payload = malloc(70000);
    char *topic = malloc(PS_ENVELOPE_MAX_TOPIC + 1);

    assert_non_null(payload);
    assert_non_null(topic);
    memset(payload, 'x', 70000);
    memset(topic, 'a', PS_ENVELOPE_MAX_TOPIC);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        ps_envelope e = make("t", PS_OP_BINARY, payload, sizes[i], (uint64_t)1 << (i * 8 % 64));
        round_trip(&e);
    }
    size_t topics[] = {1, 31, 32, 255, 256, PS_ENVELOPE_MAX_TOPIC};
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        topic[topics[i]] = '\0';
        ps_envelope e = make(topic, PS_OP_TEXT, "p", 1, 7);
        round_trip(&e);
        topic[topics[i]] = 'a';
    }
    free(payload);
    free(topic);
}

static void test_encoder_refuses_what_the_decoder_would(void **state)
{
    (void)state;
    unsigned char *buf = (unsigned char *)"untouched";
    size_t len = 0;
    ps_envelope e = make("", PS_OP_TEXT, "x", 1, 1);

    assert_int_equal(ps_envelope_encode(&e, &buf, &len), PS_ENV_BAD_TOPIC);
    e = make("\xff", PS_OP_TEXT, "x", 1, 1);
    assert_int_equal(ps_envelope_encode(&e, &buf, &len), PS_ENV_BAD_TOPIC);
    e = make("t", PS_OP_CLOSE, "x", 1, 1);
    assert_int_equal(ps_envelope_encode(&e, &buf, &len), PS_ENV_BAD_KIND);
    e = make("t", PS_OP_TEXT, "x", 1, 0);
    assert_int_equal(ps_envelope_encode(&e, &buf, &len), PS_ENV_BAD_SEQ);
    e = make("t", PS_OP_TEXT, "\xc3\x28", 2, 1);
    assert_int_equal(ps_envelope_encode(&e, &buf, &len), PS_ENV_BAD_UTF8);
    e = make("t", PS_OP_BINARY, "x", PS_ENVELOPE_MAX_PAYLOAD + 1, 1);
    assert_int_equal(ps_envelope_encode(&e, &buf, &len), PS_ENV_TOO_LARGE);
    assert_string_equal((char *)buf, "untouched");
}

/* Decodes n bytes (a heap copy of exactly them) and returns the code. */
static int decode(const char *bytes, size_t n)
{
    unsigned char *copy = malloc(n ? n : 1);
    ps_envelope out;
    int rc;

    assert_non_null(copy);
    memcpy(copy, bytes, n);
    rc = ps_envelope_decode(copy, n, &out);
    free(copy);
    return rc;
}

#define DECODE(lit) decode(lit, sizeof(lit) - 1)
/* A valid envelope's parts: version 1, origin bin8 of 16, seq 5, topic "t", kind, payload. */
#define ORIG "\xc4\x10" "ABCDEFGHIJKLMNOP"
#define GOOD_TAIL "\x05" "\xa1t" "\x01" "\xc4\x02hi"

static void test_each_malformed_input_has_its_error(void **state)
{
    (void)state;
    assert_int_equal(DECODE("\x96\x01" ORIG GOOD_TAIL), PS_ENV_OK);
    /* Non-canonical but valid msgpack: array16 of 6, uint16 version, int8 kind. */
    assert_int_equal(DECODE("\xdc\x00\x06\xcd\x00\x01" ORIG "\x05\xa1t\xd0\x02\xc4\x00"),
                     PS_ENV_OK);
    assert_int_equal(decode("", 0), PS_ENV_EMPTY);
    assert_int_equal(DECODE("\x96\x01" ORIG GOOD_TAIL "\x00"), PS_ENV_TRAILING);
    assert_int_equal(DECODE("\x95\x01" ORIG "\x05\xa1t\x01"), PS_ENV_NOT_ARRAY);
    assert_int_equal(DECODE("\x97\x01" ORIG GOOD_TAIL "\x00"), PS_ENV_NOT_ARRAY);
    assert_int_equal(DECODE("\x81\x01\x02"), PS_ENV_NOT_ARRAY); /* a map */
    assert_int_equal(DECODE("\xa5hello"), PS_ENV_NOT_ARRAY);
    assert_int_equal(DECODE("\xc1"), PS_ENV_MALFORMED);
    assert_int_equal(DECODE("\xdd\x00\x00"), PS_ENV_TRUNCATED);
    /* Hostile counts never reach msgpack-c's allocator. */
    assert_int_equal(DECODE("\xdd\xff\xff\xff\xff"), PS_ENV_NOT_ARRAY);
    assert_int_equal(DECODE("\x96\xdd\xff\xff\xff\xff"), PS_ENV_BAD_TYPE);
    assert_int_equal(DECODE("\x96\xdf\xff\xff\xff\xff"), PS_ENV_BAD_TYPE);
    assert_int_equal(DECODE("\x96\x01\xc6\xff\xff\xff\xff"), PS_ENV_TRUNCATED);
    /* Wrong element types. */
    assert_int_equal(DECODE("\x96\xc0" ORIG GOOD_TAIL), PS_ENV_BAD_TYPE);   /* nil */
    assert_int_equal(DECODE("\x96\xff" ORIG GOOD_TAIL), PS_ENV_BAD_TYPE);   /* -1 */
    assert_int_equal(DECODE("\x96\xd0\x80" ORIG GOOD_TAIL), PS_ENV_BAD_TYPE); /* int8 -128 */
    assert_int_equal(DECODE("\x96\xca\x3f\x80\x00\x00" ORIG GOOD_TAIL), PS_ENV_BAD_TYPE);
    assert_int_equal(DECODE("\x96\x01\xa2" "ab\x05\xa1t\x01\xc4\x00"), PS_ENV_BAD_TYPE);
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xc4\x01t\x01\xc4\x00"), PS_ENV_BAD_TYPE);
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xa1t\x01\xa2hi"), PS_ENV_BAD_TYPE);
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xa1t\xc3\xc4\x00"), PS_ENV_BAD_TYPE); /* true */
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xa1t\x01\xd4\x01\x00"), PS_ENV_BAD_TYPE);
    /* Wrong values. */
    assert_int_equal(DECODE("\x96\x02" ORIG GOOD_TAIL), PS_ENV_BAD_VERSION);
    assert_int_equal(DECODE("\x96\x01\xc4\x03" "abc" GOOD_TAIL), PS_ENV_BAD_ORIGIN);
    assert_int_equal(DECODE("\x96\x01" ORIG "\x00\xa1t\x01\xc4\x00"), PS_ENV_BAD_SEQ);
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xa0\x01\xc4\x00"), PS_ENV_BAD_TOPIC);
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xa1\xff\x01\xc4\x00"), PS_ENV_BAD_TOPIC);
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xa1t\x08\xc4\x00"), PS_ENV_BAD_KIND);
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xa1t\x00\xc4\x00"), PS_ENV_BAD_KIND);
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xa1t\x01\xc4\x02\xc3\x28"), PS_ENV_BAD_UTF8);
    /* The same bytes are fine as binary. */
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xa1t\x02\xc4\x02\xc3\x28"), PS_ENV_OK);
    /* Truncated inside a length field and inside a body. */
    assert_int_equal(DECODE("\x96\x01" ORIG "\xcf\x00\x00"), PS_ENV_TRUNCATED);
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xd9"), PS_ENV_TRUNCATED);
    assert_int_equal(DECODE("\x96\x01" ORIG "\x05\xa5tt"), PS_ENV_TRUNCATED);
}

static void test_strerror_names_every_code(void **state)
{
    (void)state;
    for (int code = 0; code >= PS_ENV_NOMEM; code--) {
        const char *s = ps_envelope_strerror(code);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown envelope error");
    }
    assert_string_equal(ps_envelope_strerror(-99), "unknown envelope error");
    assert_string_equal(ps_envelope_strerror(PS_ENV_BAD_UTF8), "text payload is not UTF-8");
}

static void test_utf8_rules(void **state)
{
    (void)state;
    assert_true(ps_utf8_valid((const unsigned char *)"", 0));
    assert_true(ps_utf8_valid((const unsigned char *)"\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
    assert_false(ps_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4)); /* past it */
    assert_false(ps_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3));     /* surrogate */
    assert_false(ps_utf8_valid((const unsigned char *)"\xc0\xaf", 2));         /* overlong */
    assert_false(ps_utf8_valid((const unsigned char *)"\xe0\x80\xaf", 3));     /* overlong */
    assert_false(ps_utf8_valid((const unsigned char *)"\xe2\x82", 2));         /* cut */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_sizes_that_change_msgpack_headers),
        cmocka_unit_test(test_encoder_refuses_what_the_decoder_would),
        cmocka_unit_test(test_each_malformed_input_has_its_error),
        cmocka_unit_test(test_strerror_names_every_code),
        cmocka_unit_test(test_utf8_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
