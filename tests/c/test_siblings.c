/*
 * test_siblings.c: the siblings bus (pubsub/bus_siblings.c): its framing, its bounded
 * queues, and two buses of one process talking over their real Unix sockets.
 *
 * The .c is included to reach the framing and queue functions, which are static.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../pubsub/bus_siblings.c"

/* ---- framing ----------------------------------------------------------------------- */

/* The wire bytes of m (head then payload), in a new buffer of *len bytes. */
static unsigned char *wire(const sib_msg *m, size_t *len)
{
    *len = sib_msg_len(m);
    unsigned char *buf = malloc(*len);
    assert_non_null(buf);
    memcpy(buf, m->head, m->head_len);
    if (m->frame)
        memcpy(buf + m->head_len, ps_frame_payload(m->frame), ps_frame_payload_len(m->frame));
    return buf;
}

static void test_publish_round_trip(void **state)
{
    (void)state;
    ps_frame *f = ps_frame_new(PS_OP_BINARY, "\x00\x01payload", 9);
    assert_non_null(f);
    sib_msg *m = sib_encode_publish("room:a", 6, f);
    assert_non_null(m);
    /* The payload is referenced, not copied: the message holds the frame. */
    assert_int_equal(ps_frame_refcount(f), 2);
    size_t len;
    unsigned char *buf = wire(m, &len);
    assert_int_equal(len, 4 + 1 + 1 + 4 + 6 + 9);
    sib_view v = {0};
    assert_int_equal(sib_decode(buf, len, 1024, &v), (long)len);
    assert_int_equal(v.type, SIB_PUBLISH);
    assert_int_equal(v.opcode, PS_OP_BINARY);
    assert_int_equal(v.topic_len, 6);
    assert_memory_equal(v.topic, "room:a", 6);
    assert_int_equal(v.payload_len, 9);
    assert_memory_equal(v.payload, "\x00\x01payload", 9);
    /* Every prefix is incomplete, never an error. */
    for (size_t i = 0; i < len; i++)
        assert_int_equal(sib_decode(buf, i, 1024, &v), 0);
    free(buf);
    sib_msg_unref(m);
    assert_int_equal(ps_frame_refcount(f), 1);
    ps_frame_unref(f);
}

static void test_small_messages_round_trip(void **state)
{
    (void)state;
    size_t len;
    sib_view v = {0};
    sib_msg *m = sib_encode_hello(3, 4242);
    unsigned char *buf = wire(m, &len);
    assert_int_equal(sib_decode(buf, len, 64, &v), (long)len);
    assert_int_equal(v.type, SIB_HELLO);
    assert_int_equal(v.slot, 3);
    assert_int_equal(v.pid, 4242);
    free(buf);
    sib_msg_unref(m);

    m = sib_encode_query(77, "t", 1);
    buf = wire(m, &len);
    assert_int_equal(sib_decode(buf, len, 64, &v), (long)len);
    assert_int_equal(v.type, SIB_QUERY);
    assert_int_equal(v.qid, 77);
    assert_int_equal(v.topic_len, 1);
    assert_memory_equal(v.topic, "t", 1);
    free(buf);
    sib_msg_unref(m);

    m = sib_encode_answer(9, (uint64_t)1 << 40);
    buf = wire(m, &len);
    assert_int_equal(sib_decode(buf, len, 64, &v), (long)len);
    assert_int_equal(v.type, SIB_ANSWER);
    assert_int_equal(v.qid, 9);
    assert_true(v.count == (uint64_t)1 << 40);
    free(buf);
    sib_msg_unref(m);
}

static void test_decode_refuses_bad_input(void **state)
{
    (void)state;
    sib_view v = {0};
    /* A zero length, an unknown type, a length over the limit. */
    assert_int_equal(sib_decode((const unsigned char *)"\0\0\0\0", 4, 64, &v), -EPROTO);
    assert_int_equal(sib_decode((const unsigned char *)"\1\0\0\0\x63", 5, 64, &v), -EPROTO);
    assert_int_equal(sib_decode((const unsigned char *)"\x41\0\0\0", 4, 64, &v), -EMSGSIZE);
    /* A HELLO with the wrong magic, and one of the wrong size. */
    unsigned char hello[17] = {13, 0, 0, 0, SIB_HELLO, 'X', 'S', 'B', '1'};
    assert_int_equal(sib_decode(hello, sizeof(hello), 64, &v), -EPROTO);
    unsigned char short_hello[9] = {5, 0, 0, 0, SIB_HELLO, 'R', 'S', 'B', '1'};
    assert_int_equal(sib_decode(short_hello, sizeof(short_hello), 64, &v), -EPROTO);
    /* A PUBLISH whose topic runs past its end, and one with a close opcode. */
    unsigned char pub[12] = {8, 0, 0, 0, SIB_PUBLISH, PS_OP_TEXT, 9, 0, 0, 0, 'a', 'b'};
    assert_int_equal(sib_decode(pub, sizeof(pub), 64, &v), -EPROTO);
    unsigned char pub_close[10] = {6, 0, 0, 0, SIB_PUBLISH, PS_OP_CLOSE, 0, 0, 0, 0};
    assert_int_equal(sib_decode(pub_close, sizeof(pub_close), 64, &v), -EPROTO);
    /* An ANSWER too short for its count. */
    unsigned char ans[9] = {5, 0, 0, 0, SIB_ANSWER, 1, 0, 0, 0};
    assert_int_equal(sib_decode(ans, sizeof(ans), 64, &v), -EPROTO);
}

static void test_two_messages_in_one_buffer(void **state)
{
    (void)state;
    sib_msg *a = sib_encode_query(1, "x", 1), *b = sib_encode_answer(2, 5);
    size_t la, lb;
    unsigned char *wa = wire(a, &la), *wb = wire(b, &lb);
    unsigned char both[64];
    memcpy(both, wa, la);
    memcpy(both + la, wb, lb);
    sib_view v = {0};
    assert_int_equal(sib_decode(both, la + lb, 64, &v), (long)la);
    assert_int_equal(v.type, SIB_QUERY);
    assert_int_equal(sib_decode(both + la, lb, 64, &v), (long)lb);
    assert_int_equal(v.type, SIB_ANSWER);
    free(wa);
    free(wb);
    sib_msg_unref(a);
    sib_msg_unref(b);
}

/* ---- the bounded queue ----------------------------------------------------------------- */

static void test_queue_never_holds_more_than_its_limit(void **state)
{
    (void)state;
    sib_queue q = {.limit = 100};
    sib_msg *m = sib_encode_answer(1, 1); /* 17 bytes */
    size_t pushed = 0;
    while (sib_queue_push(&q, m) == 0)
        pushed++;
    assert_int_equal(pushed, 100 / 17);
    assert_int_equal(q.bytes, pushed * 17);
    assert_true(q.bytes <= q.limit);
    assert_int_equal(m->refs, 1 + pushed);
    /* A refused push changed nothing. */
    assert_int_equal(sib_queue_push(&q, m), -ENOBUFS);
    assert_int_equal(q.count, pushed);
    /* A message larger than the whole limit is refused on an empty queue too. */
    sib_queue big = {.limit = 10};
    assert_int_equal(sib_queue_push(&big, m), -ENOBUFS);
    sib_queue_clear(&q);
    assert_int_equal(m->refs, 1);
    sib_msg_unref(m);
}

static void test_queue_partial_writes(void **state)
{
    (void)state;
    ps_frame *f = ps_frame_new(PS_OP_TEXT, "hello", 5);
    sib_msg *m = sib_encode_publish("t", 1, f); /* 11 head bytes + 5 payload */
    sib_queue q = {.limit = 1000};
    assert_int_equal(sib_queue_push(&q, m), 0);
    assert_int_equal(sib_queue_push(&q, m), 0);
    struct iovec iov[8];
    assert_int_equal(sib_queue_iov(&q, iov, 8), 4);
    assert_int_equal(iov[0].iov_len, 11);
    assert_int_equal(iov[1].iov_len, 5);
    /* 13 bytes out: the first message is 3 bytes into its payload. */
    sib_queue_consume(&q, 13);
    assert_int_equal(q.count, 2);
    assert_int_equal(q.bytes, 32 - 13);
    assert_int_equal(sib_queue_iov(&q, iov, 8), 3);
    assert_int_equal(iov[0].iov_len, 3);
    assert_memory_equal(iov[0].iov_base, "llo", 3);
    /* Room for one message's two parts only. */
    assert_int_equal(sib_queue_iov(&q, iov, 2), 1);
    sib_queue_consume(&q, 3);
    assert_int_equal(q.count, 1);
    sib_queue_consume(&q, 16);
    assert_int_equal(q.count, 0);
    assert_int_equal(q.bytes, 0);
    sib_queue_clear(&q);
    sib_msg_unref(m);
    ps_frame_unref(f);
}

/* ---- two buses over real sockets ------------------------------------------------------ */

typedef struct got {
    int n;
    char last[64];
} got;

static int collect(void *ctx, ps_subscriber *sub, ps_frame *frame)
{
    (void)sub;
    got *g = ctx;
    g->n++;
    size_t n = ps_frame_payload_len(frame);
    if (n >= sizeof(g->last))
        n = sizeof(g->last) - 1;
    memcpy(g->last, ps_frame_payload(frame), n);
    g->last[n] = '\0';
    return 0;
}

static ps_bus *make(ps_topics *t, const char *group, unsigned slot, size_t limit)
{
    ps_siblings_config cfg = {.group = group, .slot = slot, .count = 2, .queue_limit = limit,
                              .max_message = limit};
    char err[256];
    ps_bus *b = ps_bus_siblings_new(t, &cfg, err, sizeof(err));
    assert_non_null(b);
    return b;
}

static void service_both(ps_bus *a, ps_bus *b, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        ps_bus_siblings_service(a);
        ps_bus_siblings_service(b);
        usleep(1000);
    }
}

static void group_name(char *out, size_t cap, const char *what)
{
    snprintf(out, cap, "test-%d-%s", (int)getpid(), what);
}

static void wait_connected(ps_bus *a, ps_bus *b)
{
    ps_siblings_stats sa, sb;
    for (int i = 0; i < 2000; i++) {
        service_both(a, b, 1);
        ps_bus_siblings_stats(a, &sa);
        ps_bus_siblings_stats(b, &sb);
        if (sa.connected && sb.connected && sa.accepted && sb.accepted)
            return;
    }
    fail_msg("the buses did not connect");
}

static void test_publish_reaches_the_sibling(void **state)
{
    (void)state;
    char group[64];
    group_name(group, sizeof(group), "pub");
    got ga = {0}, gb = {0};
    ps_topics *ta = ps_topics_new(collect, &ga), *tb = ps_topics_new(collect, &gb);
    ps_bus *a = make(ta, group, 0, 1 << 20), *b = make(tb, group, 1, 1 << 20);
    /* The same slot cannot be taken twice. */
    ps_siblings_config dup = {.group = group, .slot = 1, .count = 2, .queue_limit = 4096,
                              .max_message = 4096};
    char err[256];
    assert_null(ps_bus_siblings_new(tb, &dup, err, sizeof(err)));
    assert_int_equal(errno, EADDRINUSE);
    wait_connected(a, b);
    ps_subscriber *sb = ps_subscriber_new(tb, 1, NULL);
    assert_int_equal(ps_topics_subscribe(sb, "room", 4), 1);
    /* No subscriber here: the local count is 0, the sibling's subscriber gets it. */
    assert_int_equal(ps_bus_publish(a, "room", 4, PS_OP_TEXT, "one", 3, NULL), 0);
    assert_int_equal(ps_bus_publish(a, "room", 4, PS_OP_TEXT, "two", 3, NULL), 0);
    for (int i = 0; i < 200 && gb.n < 2; i++)
        service_both(a, b, 1);
    assert_int_equal(gb.n, 2);
    assert_string_equal(gb.last, "two");
    assert_int_equal(ga.n, 0);
    ps_siblings_stats st;
    ps_bus_siblings_stats(b, &st);
    assert_int_equal(st.received, 2);
    ps_subscriber_free(sb);
    ps_bus_close(a);
    ps_bus_close(b);
    ps_topics_free(ta);
    ps_topics_free(tb);
}

typedef struct counted {
    int calls;
    uint64_t remote;
    unsigned answered;
} counted;

static void on_count(void *arg, uint64_t remote, unsigned answered)
{
    counted *c = arg;
    c->calls++;
    c->remote = remote;
    c->answered = answered;
}

static void test_machine_wide_count(void **state)
{
    (void)state;
    char group[64];
    group_name(group, sizeof(group), "count");
    got ga = {0}, gb = {0};
    ps_topics *ta = ps_topics_new(collect, &ga), *tb = ps_topics_new(collect, &gb);
    ps_bus *a = make(ta, group, 0, 1 << 20);
    /* Alone: answered at once, by nobody. */
    counted alone = {0};
    assert_int_equal(ps_bus_siblings_count(a, "room", 4, on_count, &alone), 0);
    assert_int_equal(alone.calls, 1);
    assert_int_equal(alone.answered, 0);
    ps_bus *b = make(tb, group, 1, 1 << 20);
    wait_connected(a, b);
    ps_subscriber *s1 = ps_subscriber_new(tb, 1, NULL), *s2 = ps_subscriber_new(tb, 2, NULL);
    assert_int_equal(ps_topics_subscribe(s1, "room", 4), 1);
    assert_int_equal(ps_topics_subscribe(s2, "room", 4), 1);
    counted c = {0};
    assert_int_equal(ps_bus_siblings_count(a, "room", 4, on_count, &c), 0);
    for (int i = 0; i < 200 && !c.calls; i++)
        service_both(a, b, 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.answered, 1);
    assert_int_equal(c.remote, 2);
    /* A count still waiting when the bus closes is finished by the close. */
    counted pending = {0};
    assert_int_equal(ps_bus_siblings_count(a, "room", 4, on_count, &pending), 0);
    ps_bus_close(a);
    assert_int_equal(pending.calls, 1);
    ps_subscriber_free(s1);
    ps_subscriber_free(s2);
    ps_bus_close(b);
    ps_topics_free(ta);
    ps_topics_free(tb);
}

/* count_here: what a process with several registries (I/O shards) answers a QUERY with. */
static size_t seven_more(void *ctx, const char *topic, size_t len)
{
    return ps_topics_subscriber_count(ctx, topic, len) + 7;
}

static void test_count_answered_by_the_embedder(void **state)
{
    (void)state;
    char group[64];
    group_name(group, sizeof(group), "count-here");
    got ga = {0}, gb = {0};
    ps_topics *ta = ps_topics_new(collect, &ga), *tb = ps_topics_new(collect, &gb);
    ps_bus *a = make(ta, group, 0, 1 << 20);
    ps_siblings_config cfg = {.group = group, .slot = 1, .count = 2, .queue_limit = 1 << 20,
                              .max_message = 1 << 20, .count_here = seven_more,
                              .deliver_ctx = tb};
    char err[256];
    ps_bus *b = ps_bus_siblings_new(tb, &cfg, err, sizeof(err));
    assert_non_null(b);
    wait_connected(a, b);
    ps_subscriber *s1 = ps_subscriber_new(tb, 1, NULL);
    assert_int_equal(ps_topics_subscribe(s1, "room", 4), 1);
    counted c = {0};
    assert_int_equal(ps_bus_siblings_count(a, "room", 4, on_count, &c), 0);
    for (int i = 0; i < 200 && !c.calls; i++)
        service_both(a, b, 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.answered, 1);
    assert_int_equal(c.remote, 8); /* b's registry's 1, and the 7 the callback adds */
    ps_subscriber_free(s1);
    ps_bus_close(a);
    ps_bus_close(b);
    ps_topics_free(ta);
    ps_topics_free(tb);
}

static void test_sibling_that_stops_reading_is_cut_off(void **state)
{
    (void)state;
    char group[64];
    group_name(group, sizeof(group), "slow");
    got ga = {0}, gb = {0};
    ps_topics *ta = ps_topics_new(collect, &ga), *tb = ps_topics_new(collect, &gb);
    ps_bus *a = make(ta, group, 0, 64 * 1024), *b = make(tb, group, 1, 64 * 1024);
    wait_connected(a, b);
    /* From now on b never reads: a's publishes fill the socket, then a's queue, then a
     * cuts b off, and never blocks on the way. */
    char payload[4096];
    memset(payload, 'x', sizeof(payload));
    ps_siblings_stats st = {0};
    int published = 0;
    while (published < 10000) {
        assert_int_equal(ps_bus_publish(a, "t", 1, PS_OP_BINARY, payload, sizeof(payload),
                                        NULL), 0);
        published++;
        ps_bus_siblings_service(a);
        ps_bus_siblings_stats(a, &st);
        if (st.cut_off)
            break;
    }
    assert_int_equal(st.cut_off, 1);
    assert_int_equal(st.connected, 0);
    struct bus_siblings *impl = (struct bus_siblings *)a;
    assert_null(impl->out[1]);
    /* A message larger than the queue limit is not sent (and does not cut anyone off). */
    wait_connected(a, b);
    char *huge = calloc(1, 70 * 1024);
    assert_int_equal(ps_bus_publish(a, "t", 1, PS_OP_BINARY, huge, 70 * 1024, NULL), 0);
    free(huge);
    ps_bus_siblings_stats(a, &st);
    assert_int_equal(st.too_large, 1);
    assert_int_equal(st.cut_off, 1);
    assert_int_equal(st.connected, 1);
    ps_bus_close(a);
    ps_bus_close(b);
    ps_topics_free(ta);
    ps_topics_free(tb);
}

typedef struct presence_seen {
    int in, ups, downs;
    unsigned slot, down_slot;
    uint64_t down_origin;
    char last[32];
} presence_seen;

static uint64_t presence_in(void *ctx, unsigned slot, const unsigned char *msg, size_t len)
{
    presence_seen *p = ctx;
    p->in++;
    p->slot = slot;
    snprintf(p->last, sizeof(p->last), "%.*s", (int)len, (const char *)msg);
    return len ? 0xabcdefULL : 0; /* the origin the bytes came from, as the table says */
}

static void presence_link(void *ctx, unsigned slot, int up, uint64_t origin)
{
    presence_seen *p = ctx;
    if (up) {
        p->ups++;
    } else {
        p->downs++;
        p->down_slot = slot;
        p->down_origin = origin;
    }
}

static void test_presence_messages_and_links(void **state)
{
    (void)state;
    char group[64];
    group_name(group, sizeof(group), "presence");
    got ga = {0}, gb = {0};
    presence_seen pa = {0}, pb = {0};
    ps_topics *ta = ps_topics_new(collect, &ga), *tb = ps_topics_new(collect, &gb);
    ps_siblings_config ca = {.group = group, .slot = 0, .count = 2, .queue_limit = 1 << 20,
                             .max_message = 1 << 20, .presence_in = presence_in,
                             .presence_link = presence_link, .presence_ctx = &pa};
    ps_siblings_config cb = ca;
    cb.slot = 1;
    cb.presence_ctx = &pb;
    char err[256];
    ps_bus *a = ps_bus_siblings_new(ta, &ca, err, sizeof(err));
    ps_bus *b = ps_bus_siblings_new(tb, &cb, err, sizeof(err));
    assert_non_null(a);
    assert_non_null(b);
    assert_true(ps_bus_is_siblings(a));
    wait_connected(a, b);
    /* Each heard its own connection come up, once. */
    assert_int_equal(pa.ups, 1);
    assert_int_equal(pb.ups, 1);
    assert_int_equal(ps_bus_siblings_presence_send(a, PS_SIBLINGS_ALL, "hello", 5), 1);
    assert_int_equal(ps_bus_siblings_presence_send(a, 1, "to-one", 6), 1);
    assert_int_equal(ps_bus_siblings_presence_send(a, 0, "to-self", 7), 0); /* no such link */
    for (int i = 0; i < 200 && pb.in < 2; i++)
        service_both(a, b, 1);
    assert_int_equal(pb.in, 2);
    assert_int_equal(pb.slot, 0);
    assert_string_equal(pb.last, "to-one");
    assert_int_equal(pa.in, 0);
    /* a goes away: b hears that slot 0's link closed, with the origin it named. */
    ps_bus_close(a);
    for (int i = 0; i < 200 && pb.downs == 0; i++)
        service_both(b, b, 1);
    assert_int_equal(pb.downs, 1);
    assert_int_equal(pb.down_slot, 0);
    assert_true(pb.down_origin == 0xabcdefULL);
    /* Closing a bus is no death: a heard nothing while it closed. */
    assert_int_equal(pa.downs, 0);
    ps_bus_close(b);
    assert_int_equal(pb.downs, 1);
    ps_topics_free(ta);
    ps_topics_free(tb);
}

static void test_bad_configurations(void **state)
{
    (void)state;
    ps_topics *t = ps_topics_new(collect, NULL);
    char err[256];
    ps_siblings_config one = {.group = "g", .slot = 0, .count = 1, .queue_limit = 4096,
                              .max_message = 4096};
    assert_null(ps_bus_siblings_new(t, &one, err, sizeof(err)));
    assert_int_equal(errno, EINVAL);
    ps_siblings_config slot = {.group = "g", .slot = 2, .count = 2, .queue_limit = 4096,
                               .max_message = 4096};
    assert_null(ps_bus_siblings_new(t, &slot, err, sizeof(err)));
    ps_siblings_config nogroup = {.group = "", .slot = 0, .count = 2, .queue_limit = 4096,
                                  .max_message = 4096};
    assert_null(ps_bus_siblings_new(t, &nogroup, err, sizeof(err)));
    assert_non_null(strstr(err, "bad siblings configuration"));
    ps_topics_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_round_trip),
        cmocka_unit_test(test_small_messages_round_trip),
        cmocka_unit_test(test_decode_refuses_bad_input),
        cmocka_unit_test(test_two_messages_in_one_buffer),
        cmocka_unit_test(test_queue_never_holds_more_than_its_limit),
        cmocka_unit_test(test_queue_partial_writes),
        cmocka_unit_test(test_publish_reaches_the_sibling),
        cmocka_unit_test(test_machine_wide_count),
        cmocka_unit_test(test_count_answered_by_the_embedder),
        cmocka_unit_test(test_sibling_that_stops_reading_is_cut_off),
        cmocka_unit_test(test_presence_messages_and_links),
        cmocka_unit_test(test_bad_configurations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
