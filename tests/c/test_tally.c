/*
 * test_tally.c: unit tests of pubsub/tally.c, the per-topic count of the registries (I/O
 * shards) holding a topic: only a process's first birth and last death are passed on,
 * whatever the interleaving of the shards' reports; deaths of unknown topics are ignored;
 * many topics (table growth and backward-shift deletion) keep their counts; names are
 * any bytes.
 *
 * Every test frees everything it made, so ASan and valgrind stay quiet.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tally.h"

/* What the tally passed on, in order. */
typedef struct heard {
    int births, deaths;
    char last[64];
    size_t last_len;
    bool last_alive;
} heard;

static void listen_fn(void *ctx, const char *topic, size_t len, bool alive)
{
    heard *h = ctx;
    if (alive)
        h->births++;
    else
        h->deaths++;
    assert_true(len < sizeof(h->last));
    memcpy(h->last, topic, len);
    h->last_len = len;
    h->last_alive = alive;
    assert_int_equal(topic[len], '\0'); /* as a registry's names are */
}

static long change(ps_tally *t, const char *topic, bool alive)
{
    return ps_tally_change(t, topic, strlen(topic), alive);
}

static void first_birth_and_last_death_only(void **state)
{
    (void)state;
    heard h = {0};
    ps_tally *t = ps_tally_new(listen_fn, &h);
    assert_non_null(t);
    /* Shard 1 and shard 0 both hold the room; one leaves, then the other. */
    assert_int_equal(change(t, "room", true), 1);
    assert_int_equal(h.births, 1);
    assert_true(h.last_alive && h.last_len == 4 && !memcmp(h.last, "room", 4));
    assert_int_equal(change(t, "room", true), 2);
    assert_int_equal(h.births, 1);
    assert_int_equal(ps_tally_count(t, "room", 4), 2);
    assert_int_equal(change(t, "room", false), 1);
    assert_int_equal(h.deaths, 0);
    assert_int_equal(change(t, "room", false), 0);
    assert_int_equal(h.deaths, 1);
    assert_false(h.last_alive);
    assert_int_equal(ps_tally_count(t, "room", 4), 0);
    assert_int_equal(ps_tally_topics(t), 0);
    /* Interest that comes back is a birth again. */
    assert_int_equal(change(t, "room", true), 1);
    assert_int_equal(h.births, 2);
    ps_tally_free(t);
}

static void interleavings_of_three_shards(void **state)
{
    (void)state;
    /* Every order of three shards' born/died pairs, each shard's own kept in order: the
     * tally passes on one birth and one death, in that order, each time the count crosses
     * zero, and nothing else. */
    static const int orders[][6] = {
        {0, 0, 1, 1, 2, 2}, {0, 1, 0, 1, 2, 2}, {0, 1, 2, 0, 1, 2}, {0, 1, 2, 2, 1, 0},
        {2, 1, 0, 0, 1, 2}, {1, 1, 0, 2, 2, 0}, {0, 1, 1, 2, 0, 2}, {2, 0, 2, 1, 0, 1},
    };
    for (size_t o = 0; o < sizeof(orders) / sizeof(orders[0]); o++) {
        heard h = {0};
        ps_tally *t = ps_tally_new(listen_fn, &h);
        assert_non_null(t);
        bool holds[3] = {false, false, false};
        int holders = 0, crossings_up = 0, crossings_down = 0;
        for (int i = 0; i < 6; i++) {
            int k = orders[o][i];
            holds[k] = !holds[k];
            holders += holds[k] ? 1 : -1;
            if (holds[k] && holders == 1)
                crossings_up++;
            if (!holds[k] && holders == 0)
                crossings_down++;
            assert_int_equal(change(t, "t", holds[k]), holders);
            assert_int_equal(h.births, crossings_up);
            assert_int_equal(h.deaths, crossings_down);
            assert_int_equal(ps_tally_count(t, "t", 1), (size_t)holders);
        }
        assert_int_equal(holders, 0);
        assert_int_equal(ps_tally_topics(t), 0);
        ps_tally_free(t);
    }
}

static void a_death_of_an_unknown_topic_is_ignored(void **state)
{
    (void)state;
    heard h = {0};
    ps_tally *t = ps_tally_new(listen_fn, &h);
    assert_non_null(t);
    assert_int_equal(change(t, "never", false), -ENOENT);
    assert_int_equal(h.births + h.deaths, 0);
    assert_int_equal(change(t, "a", true), 1);
    assert_int_equal(change(t, "a", false), 0);
    assert_int_equal(change(t, "a", false), -ENOENT);
    assert_int_equal(h.deaths, 1);
    ps_tally_free(t);
}

static void many_topics_keep_their_counts(void **state)
{
    (void)state;
    heard h = {0};
    ps_tally *t = ps_tally_new(listen_fn, &h);
    assert_non_null(t);
    char name[32];
    /* Topic i is held by i % 3 + 1 shards. */
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "topic:%d", i);
        for (int k = 0; k <= i % 3; k++)
            assert_int_equal(change(t, name, true), k + 1);
    }
    assert_int_equal(h.births, 5000);
    assert_int_equal(ps_tally_topics(t), 5000);
    /* The even ones go entirely (their slots shift others back); the odd keep theirs. */
    for (int i = 0; i < 5000; i += 2) {
        snprintf(name, sizeof(name), "topic:%d", i);
        for (int k = i % 3; k >= 0; k--)
            assert_int_equal(change(t, name, false), k);
    }
    assert_int_equal(h.deaths, 2500);
    assert_int_equal(ps_tally_topics(t), 2500);
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "topic:%d", i);
        assert_int_equal(ps_tally_count(t, name, strlen(name)), i % 2 ? (size_t)(i % 3 + 1) : 0);
    }
    ps_tally_free(t); /* with topics still held: freed, nothing called */
    assert_int_equal(h.deaths, 2500);
}

static void names_are_any_bytes(void **state)
{
    (void)state;
    heard h = {0};
    ps_tally *t = ps_tally_new(listen_fn, &h);
    assert_non_null(t);
    const char a[] = {'x', '\0', 'y'}, b[] = {'x', '\0', 'z'};
    assert_int_equal(ps_tally_change(t, a, 3, true), 1);
    assert_int_equal(ps_tally_change(t, b, 3, true), 1);
    assert_int_equal(ps_tally_change(t, "", 0, true), 1);
    assert_int_equal(h.births, 3);
    assert_int_equal(h.last_len, 0);
    assert_int_equal(ps_tally_count(t, a, 3), 1);
    assert_int_equal(ps_tally_count(t, "x", 1), 0);
    assert_int_equal(ps_tally_change(t, a, 3, false), 0);
    assert_int_equal(ps_tally_count(t, b, 3), 1);
    assert_int_equal(ps_tally_change(t, b, 3, false), 0);
    assert_int_equal(ps_tally_change(t, "", 0, false), 0);
    assert_int_equal(h.deaths, 3);
    ps_tally_free(t);
    ps_tally_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_birth_and_last_death_only),
        cmocka_unit_test(interleavings_of_three_shards),
        cmocka_unit_test(a_death_of_an_unknown_topic_is_ignored),
        cmocka_unit_test(many_topics_keep_their_counts),
        cmocka_unit_test(names_are_any_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
