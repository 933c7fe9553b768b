/*
 * libFuzzer target for the presence table's decoder and state machine (pubsub/presence.c):
 * the bytes of the Redis presence channel, which anyone who can PUBLISH to Redis controls,
 * and of a sibling's PRESENCE messages.
 *
 * Input: a sequence of messages, each a u16 little-endian length and that many bytes (a
 * length past the end takes what is left), each copied to a heap buffer of exactly its size
 * (reading past the end is an ASan error) and handed to one table as if from link (length
 * mod 4), a clock moving 700 ms per message, a tick every fourth message and, when a
 * message's first byte is 0xDD, a drop of the last sender. Every message the table sends in
 * answer (asks, snapshots, beats) must be one a second table takes; the table's own
 * listings must agree with its counts; nothing may crash, leak or grow past the bounds.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "presence.h"

static ps_presence *other;
static uint64_t clock_ms;

/* The other table's own answers (asks) go nowhere: it only checks what it is sent. */
static void ignore(void *ctx, uint32_t to, const unsigned char *msg, size_t len)
{
    (void)ctx;
    (void)to;
    (void)msg;
    (void)len;
}

/* What the fuzzed table sends must be well-formed: the other table takes it (1), or it is
 * the other's own (0, never here: the origins differ). */
static void send_to_other(void *ctx, uint32_t to, const unsigned char *msg, size_t len)
{
    (void)ctx;
    (void)to;
    CHECK(len <= PS_PRESENCE_MAX_MESSAGE);
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, msg, len);
    uint64_t sender = 0;
    int rc = ps_presence_receive(other, copy, len, clock_ms, 0, ignore, NULL, NULL, NULL,
                                 &sender);
    CHECK(rc == 1);
    free(copy);
}

static void on_gone(void *ctx, int kind, const char *topic, size_t tl, const char *id,
                    size_t il, const char *info, size_t infl, int announce)
{
    (void)ctx;
    CHECK(kind == PS_PRESENCE_LEAVE || kind == PS_PRESENCE_JOIN);
    CHECK(announce == 0 || announce == 1);
    CHECK(tl >= 1 && tl <= PS_PRESENCE_MAX_TOPIC && topic);
    CHECK(il >= 1 && il <= PS_PRESENCE_MAX_ID && id);
    CHECK(infl >= 2 && infl <= PS_PRESENCE_MAX_INFO && info[0] == '{' && info[infl - 1] == '}');
}

/* Walks a listing and checks it against the count. */
static void check_listing(ps_presence *p, const char *topic, size_t tl)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    long n = ps_presence_copy(p, topic, tl, &buf, &len);
    if (n < 0)
        return; /* out of memory */
    CHECK((size_t)n == ps_presence_count(p, topic, tl));
    size_t at = 0;
    for (long k = 0; k < n; k++) {
        CHECK(len - at >= 3);
        CHECK(buf[at] <= 1);
        size_t il = (size_t)buf[at + 1] | (size_t)buf[at + 2] << 8;
        at += 3;
        CHECK(il >= 1 && il <= PS_PRESENCE_MAX_ID && len - at >= il + 4);
        at += il;
        size_t fl = (size_t)buf[at] | (size_t)buf[at + 1] << 8 | (size_t)buf[at + 2] << 16 |
                    (size_t)buf[at + 3] << 24;
        at += 4;
        CHECK(fl <= PS_PRESENCE_MAX_INFO && len - at >= fl);
        at += fl;
    }
    CHECK(at == len);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ps_presence *p = ps_presence_new(0x5eed, 3);
    other = ps_presence_new(0x07e1, 9);
    if (!p || !other) {
        ps_presence_free(p);
        ps_presence_free(other);
        return 0;
    }
    ps_presence_set_shared(p, 1);
    /* Some members of its own, so that snapshots have parts to send. */
    CHECK(ps_presence_join(p, "t", 1, "own", 3, "{}", 2) == 1);
    CHECK(ps_presence_join(p, "room", 4, "x", 1, "{\"a\":1}", 7) == 1);
    clock_ms = 1000;
    uint64_t last_sender = 0;
    size_t at = 0, count = 0;
    while (at + 2 <= size && count < 256) {
        size_t len = (size_t)data[at] | (size_t)data[at + 1] << 8;
        at += 2;
        if (len > size - at)
            len = size - at;
        unsigned char *msg = malloc(len ? len : 1);
        if (!msg)
            break;
        memcpy(msg, data + at, len);
        at += len;
        uint64_t sender = 0;
        int rc = ps_presence_receive(p, msg, len, clock_ms, (uint32_t)(len % 4), send_to_other,
                                     NULL, on_gone, NULL, &sender);
        CHECK(rc == 1 || rc == 0 || rc == -EPROTO);
        if (rc >= 0) {
            CHECK(sender != 0);
            last_sender = sender;
            /* A topic the message named has a listing that agrees with its count. */
            if (len > 28 && msg[1] >= 1 && msg[1] <= 2) {
                size_t tl = (size_t)msg[26] | (size_t)msg[27] << 8;
                if (tl >= 1 && 28 + tl <= len)
                    check_listing(p, (const char *)msg + 28, tl);
            }
        }
        if (len && msg[0] == 0xDD && last_sender)
            (void)ps_presence_drop(p, last_sender, on_gone, NULL);
        free(msg);
        clock_ms += 700;
        if (++count % 4 == 0)
            (void)ps_presence_tick(p, clock_ms, (int)(count / 4) % 2, send_to_other, NULL,
                                   on_gone, NULL);
    }
    (void)ps_presence_flush(p, send_to_other, NULL);
    ps_presence_snapshot(p, send_to_other, NULL, PS_PRESENCE_ALL);
    check_listing(p, "t", 1);
    check_listing(p, "room", 4);
    ps_presence_stats st;
    ps_presence_get_stats(p, &st);
    CHECK(st.origins <= PS_PRESENCE_MAX_ORIGINS);
    CHECK(st.members <= PS_PRESENCE_MAX_REMOTE);
    CHECK(st.local == 2);
    /* The other table holds exactly the fuzzed table's own members now (its snapshot). */
    CHECK(ps_presence_count(other, "t", 1) == 1 && ps_presence_count(other, "room", 4) == 1);
    ps_presence_free(p);
    ps_presence_free(other);
    other = NULL;
    return 0;
}
