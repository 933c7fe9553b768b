/*
 * test_redis_history.c: unit tests of pubsub/redis_history.c, the decoders of what Redis
 * answers for topics with history: the read script's reply (built here from RESP bytes by
 * hiredis' own reader, as the bus receives it) and the head of a numbered message. Each
 * malformed input has its exact answer. (The scripts themselves run against a real Redis
 * in tests/python/test_redis_history.py.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "redis_history.h"

/* The reply hiredis makes of resp (one whole reply), owned by the caller. */
static redisReply *reply_of(const char *resp)
{
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;

    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    assert_non_null(reply);
    redisReaderFree(rd);
    return reply;
}

/* Decodes resp; returns the code, *out filled (freed by the caller). */
static int decode(const char *resp, ps_rh_result *out)
{
    redisReply *r = reply_of(resp);
    int rc = ps_rh_decode(r, out);
    freeReplyObject(r);
    return rc;
}

static void expect(const char *resp, int code)
{
    ps_rh_result res;
    redisReply *r = reply_of(resp);

    assert_int_equal(ps_rh_decode(r, &res), code);
    if (code != 0) {
        assert_int_equal(res.n, 0);
        assert_null(res.entries);
    }
    ps_rh_result_free(&res);
    freeReplyObject(r);
}

#define M1 "{\"epoch\":\"ab.1\",\"offset\":7,\"topic\":\"t\",\"data\":1}"
#define M2 "{\"epoch\":\"ab.1\",\"offset\":9,\"topic\":\"t\",\"data\":\"\xc3\xa9\"}"

static void test_entries_decode_in_order(void **state)
{
    (void)state;
    char resp[512];
    snprintf(resp, sizeof(resp), "*7\r\n:0\r\n$4\r\nab.1\r\n:9\r\n:7\r\n$%zu\r\n%s\r\n:9\r\n$%zu\r\n%s\r\n",
             strlen(M1), M1, strlen(M2), M2);
    redisReply *r = reply_of(resp);
    ps_rh_result res;
    assert_int_equal(ps_rh_decode(r, &res), 0);
    assert_int_equal(res.status, PS_RH_OK);
    assert_string_equal(res.epoch, "ab.1");
    assert_int_equal(res.last, 9);
    assert_int_equal(res.n, 2);
    assert_int_equal(res.entries[0].offset, 7);
    assert_int_equal(res.entries[0].len, strlen(M1));
    assert_memory_equal(res.entries[0].data, M1, strlen(M1));
    assert_int_equal(res.entries[1].offset, 9);
    assert_memory_equal(res.entries[1].data, M2, strlen(M2));
    ps_rh_result_free(&res);
    freeReplyObject(r);
}

static void test_gone_and_none(void **state)
{
    (void)state;
    ps_rh_result res;
    assert_int_equal(decode("*3\r\n:1\r\n$4\r\nab.1\r\n:12\r\n", &res), 0);
    assert_int_equal(res.status, PS_RH_GONE);
    assert_string_equal(res.epoch, "ab.1");
    assert_int_equal(res.last, 12);
    assert_int_equal(res.n, 0);
    ps_rh_result_free(&res);
    assert_int_equal(decode("*3\r\n:2\r\n$0\r\n\r\n:0\r\n", &res), 0);
    assert_int_equal(res.status, PS_RH_NONE);
    assert_string_equal(res.epoch, "");
    ps_rh_result_free(&res);
    assert_int_equal(decode("*3\r\n:0\r\n$4\r\nab.1\r\n:0\r\n", &res), 0);
    assert_int_equal(res.status, PS_RH_OK);
    assert_int_equal(res.n, 0);
    ps_rh_result_free(&res);
}

static void test_malformed_replies(void **state)
{
    (void)state;
    char resp[600];
    expect("$2\r\nhi\r\n", -EPROTO);                                   /* not an array */
    expect("-ERR no\r\n", -EPROTO);                                    /* an error */
    expect("*2\r\n:0\r\n$4\r\nab.1\r\n", -EPROTO);                     /* too short */
    expect("*4\r\n:0\r\n$4\r\nab.1\r\n:1\r\n:1\r\n", -EPROTO);         /* half an entry */
    expect("*3\r\n:3\r\n$4\r\nab.1\r\n:1\r\n", -EPROTO);               /* unknown status */
    expect("*3\r\n:-1\r\n$4\r\nab.1\r\n:1\r\n", -EPROTO);
    expect("*3\r\n$1\r\n0\r\n$4\r\nab.1\r\n:1\r\n", -EPROTO);          /* status not int */
    expect("*3\r\n:0\r\n:5\r\n:1\r\n", -EPROTO);                       /* epoch not str */
    expect("*3\r\n:0\r\n$4\r\nAB.1\r\n:1\r\n", -EPROTO);               /* epoch's chars */
    expect("*3\r\n:0\r\n$4\r\nab\"1\r\n:1\r\n", -EPROTO);
    expect("*3\r\n:0\r\n$32\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n:1\r\n", -EPROTO); /* too long */
    expect("*3\r\n:0\r\n$0\r\n\r\n:1\r\n", -EPROTO);                   /* OK with no epoch */
    expect("*3\r\n:2\r\n$4\r\nab.1\r\n:1\r\n", -EPROTO);               /* NONE with one */
    expect("*3\r\n:0\r\n$4\r\nab.1\r\n:-2\r\n", -EPROTO);              /* negative last */
    expect("*3\r\n:0\r\n$4\r\nab.1\r\n$1\r\n9\r\n", -EPROTO);          /* last not int */
    /* Entries where none may be, and entries that are not what they say. */
    snprintf(resp, sizeof(resp), "*5\r\n:1\r\n$4\r\nab.1\r\n:9\r\n:7\r\n$%zu\r\n%s\r\n", strlen(M1), M1);
    expect(resp, -EPROTO);
    snprintf(resp, sizeof(resp), "*5\r\n:0\r\n$4\r\nab.1\r\n:6\r\n:7\r\n$%zu\r\n%s\r\n", strlen(M1), M1);
    expect(resp, -EPROTO); /* beyond the last offset */
    snprintf(resp, sizeof(resp), "*5\r\n:0\r\n$4\r\nab.1\r\n:9\r\n:8\r\n$%zu\r\n%s\r\n", strlen(M1), M1);
    expect(resp, -EPROTO); /* its head says 7 */
    snprintf(resp, sizeof(resp), "*5\r\n:0\r\n$4\r\nab.2\r\n:9\r\n:7\r\n$%zu\r\n%s\r\n", strlen(M1), M1);
    expect(resp, -EPROTO); /* its head says epoch ab.1 */
    snprintf(resp, sizeof(resp), "*5\r\n:0\r\n$4\r\nab.1\r\n:9\r\n$1\r\n7\r\n$%zu\r\n%s\r\n", strlen(M1), M1);
    expect(resp, -EPROTO); /* offset not an integer */
    snprintf(resp, sizeof(resp), "*5\r\n:0\r\n$4\r\nab.1\r\n:9\r\n:7\r\n:7\r\n");
    expect(resp, -EPROTO); /* message not a string */
    snprintf(resp, sizeof(resp), "*7\r\n:0\r\n$4\r\nab.1\r\n:9\r\n:7\r\n$%zu\r\n%s\r\n:7\r\n$%zu\r\n%s\r\n",
             strlen(M1), M1, strlen(M1), M1);
    expect(resp, -EPROTO); /* offsets not increasing */
    static const char bad_utf8[] = "{\"epoch\":\"ab.1\",\"offset\":7,\"d\":\"\xff\"}";
    snprintf(resp, sizeof(resp), "*5\r\n:0\r\n$4\r\nab.1\r\n:9\r\n:7\r\n$%zu\r\n%s\r\n",
             strlen(bad_utf8), bad_utf8);
    expect(resp, -EPROTO);
    expect("*0\r\n", -EPROTO); /* empty array */
    ps_rh_result res;
    assert_int_equal(ps_rh_decode(NULL, &res), -EPROTO);
    ps_rh_result_free(&res);
}

static int head(const char *s, ps_rh_head *h)
{
    return ps_rh_head_parse(s, strlen(s), h);
}

static void test_heads(void **state)
{
    (void)state;
    ps_rh_head h;
    assert_int_equal(head("{\"epoch\":\"3f9a0c12be.7\",\"offset\":418,\"topic\":\"x\"}", &h), 0);
    assert_int_equal(h.epoch_len, 12);
    assert_memory_equal(h.epoch, "3f9a0c12be.7", 12);
    assert_int_equal(h.offset, 418);
    assert_int_equal(head("{\"epoch\":\"e\",\"offset\":18446744073709551615,", &h), 0);
    assert_true(h.offset == UINT64_MAX);
    assert_int_equal(head("{\"epoch\":\"e\",\"offset\":18446744073709551616,", &h), -1);
    assert_int_equal(head("{\"epoch\":\"e\",\"offset\":0,", &h), -1);
    assert_int_equal(head("{\"epoch\":\"e\",\"offset\":01,", &h), -1);
    assert_int_equal(head("{\"epoch\":\"e\",\"offset\":1}", &h), -1);
    assert_int_equal(head("{\"epoch\":\"e\",\"offset\":1", &h), -1);
    assert_int_equal(head("{\"epoch\":\"e\",\"offset\":,", &h), -1);
    assert_int_equal(head("{\"epoch\":\"\",\"offset\":1,", &h), -1);
    assert_int_equal(head("{\"epoch\":\"E\",\"offset\":1,", &h), -1);
    assert_int_equal(head("{\"epoch\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"offset\":1,", &h), -1);
    assert_int_equal(head("{\"epoch\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"offset\":1,", &h), 0);
    assert_int_equal(head("{\"offset\":1,\"epoch\":\"e\",", &h), -1);
    assert_int_equal(head("{\"epoch\":\"e\"", &h), -1);
    assert_int_equal(head("", &h), -1);
    assert_int_equal(ps_rh_head_parse("{\"epoch\":\"e\",\"offset\":12,", 24, &h), -1); /* cut */
}

/* What a bounded reader (ps_rh_bound_reader, as the bus's connections have) makes of resp:
 * REDIS_OK with a reply, or REDIS_ERR with hiredis' error string in err. */
static int bounded_read(const char *resp, size_t len, char *err, size_t errlen)
{
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;

    assert_non_null(rd);
    ps_rh_bound_reader(rd);
    ps_rh_bound_reader(rd); /* twice is once */
    assert_int_equal(redisReaderFeed(rd, resp, len), REDIS_OK);
    int rc = redisReaderGetReply(rd, &reply);
    if (rc == REDIS_OK) {
        assert_non_null(reply);
        freeReplyObject(reply);
    } else {
        snprintf(err, errlen, "%s", rd->errstr);
    }
    redisReaderFree(rd);
    return rc;
}

static void test_reader_bounds(void **state)
{
    (void)state;
    char err[128] = "", huge[64];

    /* At the top: a whole history's read (3 + 2 x 1,000,000) may be claimed, not one more. */
    snprintf(huge, sizeof(huge), "*%zu\r\n", (size_t)PS_RH_TOP_ELEMENTS + 1);
    assert_int_equal(bounded_read(huge, strlen(huge), err, sizeof(err)), REDIS_ERR);
    assert_string_equal(err, "Out of memory");
    assert_int_equal(bounded_read("*2000000000\r\n", 13, err, sizeof(err)), REDIS_ERR);
    assert_string_equal(err, "Out of memory");
    /* The largest claim allowed is read (its table allocated) and waits for its elements. */
    snprintf(huge, sizeof(huge), "*%zu\r\n", (size_t)PS_RH_TOP_ELEMENTS);
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    ps_rh_bound_reader(rd);
    assert_int_equal(redisReaderFeed(rd, huge, strlen(huge)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    assert_null(reply);
    redisReaderFree(rd);
    /* Nested: 8 elements (more than a pmessage's 4), not 9. */
    const char nested8[] = "*2\r\n*8\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n:7\r\n:8\r\n:0\r\n";
    assert_int_equal(bounded_read(nested8, sizeof(nested8) - 1, err, sizeof(err)), REDIS_OK);
    assert_int_equal(bounded_read("*2\r\n*9\r\n", 8, err, sizeof(err)), REDIS_ERR);
    assert_string_equal(err, "Out of memory");
    /* What the bus reads every day still reads. */
    const char message[] = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";
    assert_int_equal(bounded_read(message, sizeof(message) - 1, err, sizeof(err)), REDIS_OK);
    const char read_reply[] = "*5\r\n:0\r\n$4\r\nab.1\r\n:7\r\n:7\r\n$" "48" "\r\n" M1 "\r\n";
    assert_int_equal(bounded_read(read_reply, sizeof(read_reply) - 1, err, sizeof(err)), REDIS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_decode_in_order),
        cmocka_unit_test(test_gone_and_none),
        cmocka_unit_test(test_malformed_replies),
        cmocka_unit_test(test_heads),
        cmocka_unit_test(test_reader_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
