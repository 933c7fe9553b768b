/*
 * libFuzzer target for the decoders of what Redis answers for topics with history
 * (pubsub/redis_history.c): anyone who can write to Redis controls those bytes.
 *
 * Input: one byte, then bytes. Byte 'h': the rest is a message from a topic's channel,
 * given to the head parser as it is (a heap copy of exactly it). Anything else: the rest is
 * RESP, read by hiredis' reader as the bus reads it, and each whole reply is given to the
 * read script's decoder, the reader bounded as the bus bounds it (ps_rh_bound_reader). The
 * decoders must never crash or leak; what they accept must lie
 * inside the input and obey redis_history.h (epochs of [0-9a-z.], offsets increasing and
 * at most the last, every message starting with its own head).
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzz_check.h"
#include "redis_history.h"

static void check_head(const char *p, size_t n)
{
    ps_rh_head h;
    if (ps_rh_head_parse(p, n, &h))
        return;
    CHECK(h.epoch > p && h.epoch + h.epoch_len <= p + n);
    CHECK(h.epoch_len >= 1 && h.epoch_len < PS_RH_EPOCH_MAX);
    CHECK(h.offset >= 1);
    for (size_t i = 0; i < h.epoch_len; i++)
        CHECK((h.epoch[i] >= '0' && h.epoch[i] <= '9') || (h.epoch[i] >= 'a' && h.epoch[i] <= 'z') ||
              h.epoch[i] == '.');
}

static void check_reply(const redisReply *r)
{
    ps_rh_result res;
    int rc = ps_rh_decode(r, &res);
    CHECK(rc == 0 || rc == -EPROTO || rc == -ENOMEM);
    if (rc == 0) {
        CHECK(res.status >= PS_RH_OK && res.status <= PS_RH_NONE);
        CHECK(strlen(res.epoch) < PS_RH_EPOCH_MAX);
        CHECK((res.epoch[0] == '\0') == (res.status == PS_RH_NONE));
        CHECK(res.n == 0 || res.status == PS_RH_OK);
        uint64_t prev = 0;
        for (size_t i = 0; i < res.n; i++) {
            ps_rh_head h;
            CHECK(res.entries[i].offset > prev && res.entries[i].offset <= res.last);
            prev = res.entries[i].offset;
            CHECK(ps_rh_head_parse(res.entries[i].data, res.entries[i].len, &h) == 0);
            CHECK(h.offset == res.entries[i].offset);
            CHECK(h.epoch_len == strlen(res.epoch) && !memcmp(h.epoch, res.epoch, h.epoch_len));
            CHECK(ps_utf8_valid((const unsigned char *)res.entries[i].data, res.entries[i].len));
        }
    } else {
        CHECK(res.n == 0 && res.entries == NULL);
    }
    ps_rh_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *copy = malloc(size - 1 ? size - 1 : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data + 1, size - 1);
    if (data[0] == 'h') {
        check_head(copy, size - 1);
    } else {
        /* Bounded as the bus bounds its connections' readers: a reply claiming a huge
         * aggregate is refused before hiredis allocates its element table. */
        redisReader *rd = redisReaderCreate();
        if (rd != NULL)
            ps_rh_bound_reader(rd);
        if (rd != NULL && redisReaderFeed(rd, copy, size - 1) == REDIS_OK) {
            /* Every whole reply in the input, until the reader errs or wants more. */
            for (int k = 0; k < 64; k++) {
                void *reply = NULL;
                if (redisReaderGetReply(rd, &reply) != REDIS_OK || reply == NULL)
                    break;
                check_reply(reply);
                freeReplyObject(reply);
            }
        }
        if (rd != NULL)
            redisReaderFree(rd);
    }
    free(copy);
    return 0;
}
