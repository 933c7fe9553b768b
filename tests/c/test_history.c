/*
 * test_history.c: unit tests of pubsub/history.c, the per-topic rings of recent frames:
 * patterns and their refusals, offsets, the ring's eviction, ttl, recovery answers at
 * every edge (the seam, one message too old, another epoch, beyond the last offset),
 * and that every frame reference is released.
 *
 * Every test frees everything it made, so ASan and valgrind stay quiet.
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

#include "frame.h"
#include "history.h"

static ps_frame *text(const char *s)
{
    ps_frame *f = ps_frame_new(PS_OP_TEXT, s, strlen(s));
    assert_non_null(f);
    return f;
}

/* Pushes "m<offset>" messages until the topic's last offset is `upto`. */
static void push_until(ps_history_topic *t, uint64_t upto, int64_t now)
{
    while (ps_history_topic_last(t) < upto) {
        char buf[32];
        snprintf(buf, sizeof(buf), "m%llu", (unsigned long long)ps_history_topic_last(t) + 1);
        ps_frame *f = text(buf);
        uint64_t want = ps_history_topic_last(t) + 1;
        assert_int_equal(ps_history_topic_push(t, f, now), want);
        ps_frame_unref(f);
    }
}

static void assert_payload(const ps_history_entry *e, const char *want)
{
    assert_non_null(e);
    assert_int_equal(ps_frame_payload_len(e->frame), strlen(want));
    assert_memory_equal(ps_frame_payload(e->frame), want, strlen(want));
}

static void test_node_names_are_checked(void **state)
{
    (void)state;
    errno = 0;
    assert_null(ps_history_new(""));
    assert_int_equal(errno, EINVAL);
    assert_null(ps_history_new("UPPER"));
    assert_null(ps_history_new("a.b"));
    assert_null(ps_history_new("12345678901234567"));
    assert_null(ps_history_new(NULL));
    ps_history *h = ps_history_new("1234567890abcdef");
    assert_non_null(h);
    /* A reset (a forked process) forgets what it inherited and names epochs anew. */
    assert_int_equal(ps_history_add_pattern(h, "*", 4, 0), 0);
    ps_history_topic *t = ps_history_topic_get(h, "x", 1, 0, true);
    push_until(t, 3, 0);
    assert_string_equal(ps_history_topic_epoch(t), "1234567890abcdef.1");
    assert_int_equal(ps_history_reset(h, "Bad"), -EINVAL);
    assert_int_equal(ps_history_topics(h), 1); /* a refused reset changes nothing */
    assert_int_equal(ps_history_reset(h, "fork2"), 0);
    assert_int_equal(ps_history_topics(h), 0);
    assert_int_equal(ps_history_messages(h), 0);
    assert_int_equal(ps_history_pattern_count(h), 1);
    t = ps_history_topic_get(h, "x", 1, 0, true);
    assert_string_equal(ps_history_topic_epoch(t), "fork2.1");
    assert_int_equal(ps_history_topic_last(t), 0);
    ps_history_free(h);
    ps_history_free(NULL);
}

static void test_patterns_refuse_bad_values(void **state)
{
    (void)state;
    ps_history *h = ps_history_new("n1");
    assert_int_equal(ps_history_add_pattern(h, "", 10, 0), -EINVAL);
    assert_int_equal(ps_history_add_pattern(h, NULL, 10, 0), -EINVAL);
    assert_int_equal(ps_history_add_pattern(h, "room:*", 0, 0), -EINVAL);
    assert_int_equal(ps_history_add_pattern(h, "room:*", PS_HISTORY_MAX_CAPACITY + 1, 0), -EINVAL);
    assert_int_equal(ps_history_add_pattern(h, "room:*", 10, -1), -EINVAL);
    assert_int_equal(ps_history_pattern_count(h), 0);
    assert_int_equal(ps_history_add_pattern(h, "room:*", 10, 0), 0);
    assert_int_equal(ps_history_add_pattern(h, "room:*", 20, 0), -EEXIST);
    assert_int_equal(ps_history_add_pattern(h, "feed", PS_HISTORY_MAX_CAPACITY, 500), 0);
    assert_int_equal(ps_history_pattern_count(h), 2);
    ps_history_free(h);
}

static void test_first_matching_pattern_wins(void **state)
{
    (void)state;
    ps_history *h = ps_history_new("n1");
    assert_int_equal(ps_history_match(h, "room:1", 6), -1); /* no pattern at all */
    assert_int_equal(ps_history_add_pattern(h, "room:vip*", 2, 0), 0);
    assert_int_equal(ps_history_add_pattern(h, "room:*", 5, 0), 0);
    assert_int_equal(ps_history_match(h, "room:vip1", 9), 0);
    assert_int_equal(ps_history_match(h, "room:1", 6), 1);
    assert_int_equal(ps_history_match(h, "room:", 5), 1);
    assert_int_equal(ps_history_match(h, "lobby", 5), -1);
    assert_int_equal(ps_history_match(h, "room:1\0x", 8), -1); /* a NUL matches nothing */
    /* A long name (past the stack buffer) matches like a short one. */
    char long_name[600];
    memset(long_name, 'x', sizeof(long_name));
    memcpy(long_name, "room:", 5);
    assert_int_equal(ps_history_match(h, long_name, sizeof(long_name)), 1);

    /* Each state takes its own pattern's capacity. */
    ps_history_topic *vip = ps_history_topic_get(h, "room:vip1", 9, 0, true);
    ps_history_topic *plain = ps_history_topic_get(h, "room:1", 6, 0, true);
    push_until(vip, 10, 0);
    push_until(plain, 10, 0);
    assert_int_equal(ps_history_topic_count(vip), 2);
    assert_int_equal(ps_history_topic_count(plain), 5);
    assert_null(ps_history_topic_get(h, "lobby", 5, 0, true));
    ps_history_free(h);
}

static void test_offsets_count_from_one_per_topic(void **state)
{
    (void)state;
    ps_history *h = ps_history_new("n1");
    assert_int_equal(ps_history_add_pattern(h, "*", 100, 0), 0);
    assert_null(ps_history_topic_get(h, "a", 1, 0, false)); /* no state without create */
    ps_history_topic *a = ps_history_topic_get(h, "a", 1, 0, true);
    ps_history_topic *b = ps_history_topic_get(h, "b", 1, 0, true);
    assert_ptr_equal(ps_history_topic_get(h, "a", 1, 0, false), a);
    assert_int_equal(ps_history_topic_last(a), 0);
    assert_int_equal(ps_history_topic_count(a), 0);
    assert_null(ps_history_topic_at(a, 0));
    push_until(a, 3, 0);
    push_until(b, 1, 0);
    assert_int_equal(ps_history_topic_last(a), 3);
    assert_int_equal(ps_history_topic_last(b), 1);
    assert_int_equal(ps_history_topic_at(a, 0)->offset, 1);
    assert_payload(ps_history_topic_at(a, 2), "m3");
    assert_null(ps_history_topic_at(a, 3));
    /* Epochs: node name, a dot, a number; two states never share one. */
    assert_string_equal(ps_history_topic_epoch(a), "n1.1");
    assert_string_equal(ps_history_topic_epoch(b), "n1.2");
    assert_int_equal(ps_history_topics(h), 2);
    assert_int_equal(ps_history_messages(h), 4);
    ps_history_free(h);
}

static void test_a_full_ring_forgets_its_oldest(void **state)
{
    (void)state;
    ps_history *h = ps_history_new("n1");
    assert_int_equal(ps_history_add_pattern(h, "t", 20, 0), 0);
    ps_history_topic *t = ps_history_topic_get(h, "t", 1, 0, true);
    /* Past the first allocation (8) and two doublings, then past the capacity. */
    push_until(t, 57, 0);
    assert_int_equal(ps_history_topic_count(t), 20);
    assert_int_equal(ps_history_messages(h), 20);
    for (size_t i = 0; i < 20; i++)
        assert_int_equal(ps_history_topic_at(t, i)->offset, 38 + i);
    assert_payload(ps_history_topic_at(t, 0), "m38");
    assert_payload(ps_history_topic_at(t, 19), "m57");
    ps_history_free(h);
}

static void test_frames_are_shared_and_released(void **state)
{
    (void)state;
    ps_history *h = ps_history_new("n1");
    assert_int_equal(ps_history_add_pattern(h, "t", 2, 0), 0);
    ps_history_topic *t = ps_history_topic_get(h, "t", 1, 0, true);
    ps_frame *keep = text("kept");
    ps_frame *extra = ps_frame_ref(keep);
    assert_int_equal(ps_history_topic_push(t, keep, 0), 1);
    /* The ring holds the very frame subscribers got, not a copy. */
    assert_ptr_equal(ps_history_topic_at(t, 0)->frame, keep);
    push_until(t, 3, 0); /* evicts "kept": its reference must go */
    ps_frame_unref(extra);
    ps_frame_unref(keep); /* the last reference: valgrind/ASan see a leak otherwise */
    ps_history_free(h);
}

static void test_recovery_answers_at_every_edge(void **state)
{
    (void)state;
    ps_history *h = ps_history_new("n1");
    assert_int_equal(ps_history_add_pattern(h, "t", 10, 0), 0);
    ps_history_topic *t = ps_history_topic_get(h, "t", 1, 0, true);
    const char *epoch = ps_history_topic_epoch(t);
    /* Nothing published yet: from 0 there is nothing to give, and that is not gone. */
    assert_int_equal(ps_history_topic_after(t, epoch, 0), 0);
    assert_int_equal(ps_history_topic_after(t, epoch, 1), -1);
    push_until(t, 25, 0); /* holds 16..25 */
    assert_int_equal(ps_history_topic_after(t, epoch, 25), 10);      /* up to date: none */
    assert_int_equal(ps_history_topic_after(t, epoch, 24), 9);       /* the last one */
    assert_int_equal(ps_history_topic_after(t, epoch, 15), 0);       /* all ten */
    assert_int_equal(ps_history_topic_at(t, 0)->offset, 16);
    assert_int_equal(ps_history_topic_after(t, epoch, 14), -1);      /* 15 is forgotten */
    assert_int_equal(ps_history_topic_after(t, epoch, 0), -1);
    assert_int_equal(ps_history_topic_after(t, epoch, 26), -1);      /* beyond the last */
    assert_int_equal(ps_history_topic_after(t, "n1.99", 20), -1);    /* another epoch */
    assert_int_equal(ps_history_topic_after(t, NULL, 20), -1);
    ps_history_free(h);
}

static void test_ttl_forgets_old_messages(void **state)
{
    (void)state;
    ps_history *h = ps_history_new("n1");
    assert_int_equal(ps_history_add_pattern(h, "t", 100, 1000), 0);
    assert_int_equal(ps_history_add_pattern(h, "forever", 100, 0), 0);
    ps_history_topic *t = ps_history_topic_get(h, "t", 1, 0, true);
    ps_history_topic *f = ps_history_topic_get(h, "forever", 7, 0, true);
    push_until(t, 3, 0);    /* kept at 0 ms */
    push_until(t, 5, 600);  /* kept at 600 ms */
    push_until(f, 2, 0);
    /* At 999 ms nothing is a second old yet. */
    assert_ptr_equal(ps_history_topic_get(h, "t", 1, 999, false), t);
    assert_int_equal(ps_history_topic_count(t), 5);
    /* At 1000 ms the first three are; getting the state forgets them. */
    assert_ptr_equal(ps_history_topic_get(h, "t", 1, 1000, false), t);
    assert_int_equal(ps_history_topic_count(t), 2);
    assert_int_equal(ps_history_topic_at(t, 0)->offset, 4);
    assert_int_equal(ps_history_topic_after(t, ps_history_topic_epoch(t), 2), -1);
    assert_int_equal(ps_history_topic_after(t, ps_history_topic_epoch(t), 3), 0);
    /* The sweep does the same without a get; offsets go on after it. */
    assert_int_equal(ps_history_expire(h, 1600), 2);
    assert_int_equal(ps_history_topic_count(t), 0);
    assert_int_equal(ps_history_topic_count(f), 2);
    assert_int_equal(ps_history_messages(h), 2);
    push_until(t, 6, 1700);
    assert_int_equal(ps_history_topic_at(t, 0)->offset, 6);
    ps_history_free(h);
}

static void test_idle_empty_states_are_dropped(void **state)
{
    (void)state;
    ps_history *h = ps_history_new("n1");
    assert_int_equal(ps_history_add_pattern(h, "t", 10, 1000), 0);
    ps_history_topic *t = ps_history_topic_get(h, "t", 1, 0, true);
    push_until(t, 4, 0);
    char old_epoch[PS_HISTORY_EPOCH_MAX];
    snprintf(old_epoch, sizeof(old_epoch), "%s", ps_history_topic_epoch(t));
    /* Emptied by the ttl, but used recently: kept. */
    assert_int_equal(ps_history_expire(h, 1000), 4);
    assert_int_equal(ps_history_topics(h), 1);
    /* Idle long enough: dropped, and a new state gets a new epoch and starts again. */
    assert_int_equal(ps_history_expire(h, PS_HISTORY_IDLE_MS), 0);
    assert_int_equal(ps_history_topics(h), 0);
    ps_history_topic *again = ps_history_topic_get(h, "t", 1, PS_HISTORY_IDLE_MS + 1, true);
    assert_string_not_equal(ps_history_topic_epoch(again), old_epoch);
    assert_int_equal(ps_history_topic_last(again), 0);
    assert_int_equal(ps_history_topic_after(again, old_epoch, 4), -1);
    ps_history_free(h);
}

static void test_many_topics_grow_the_table(void **state)
{
    (void)state;
    ps_history *h = ps_history_new("n1");
    assert_int_equal(ps_history_add_pattern(h, "room:*", 4, 0), 0);
    char name[32];
    for (unsigned i = 0; i < 1000; i++) {
        int n = snprintf(name, sizeof(name), "room:%u", i);
        ps_history_topic *t = ps_history_topic_get(h, name, (size_t)n, 0, true);
        assert_non_null(t);
        push_until(t, i % 7, 0);
    }
    assert_int_equal(ps_history_topics(h), 1000);
    for (unsigned i = 0; i < 1000; i++) {
        int n = snprintf(name, sizeof(name), "room:%u", i);
        ps_history_topic *t = ps_history_topic_get(h, name, (size_t)n, 0, false);
        assert_non_null(t);
        assert_int_equal(ps_history_topic_last(t), i % 7);
    }
    ps_history_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_names_are_checked),
        cmocka_unit_test(test_patterns_refuse_bad_values),
        cmocka_unit_test(test_first_matching_pattern_wins),
        cmocka_unit_test(test_offsets_count_from_one_per_topic),
        cmocka_unit_test(test_a_full_ring_forgets_its_oldest),
        cmocka_unit_test(test_frames_are_shared_and_released),
        cmocka_unit_test(test_recovery_answers_at_every_edge),
        cmocka_unit_test(test_ttl_forgets_old_messages),
        cmocka_unit_test(test_idle_empty_states_are_dropped),
        cmocka_unit_test(test_many_topics_grow_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
