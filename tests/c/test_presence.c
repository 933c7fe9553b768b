/*
 * test_presence.c: the presence table (pubsub/presence.c): this origin's members, two and
 * three tables joined by an in-memory "bus" (deltas, beats, snapshots, asks, expiry, drops,
 * who announces), the decoder's refusals, and the bounds.
 *
 * The .c is included to reach its encoders and limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "../../pubsub/presence.c"

/* ---- an in-memory bus: what a table sends is queued, then delivered to the others ------- */

#define NODES 3

typedef struct sent {
    struct sent *next;
    int from;
    uint32_t to;
    size_t len;
    unsigned char data[];
} sent;

typedef struct net {
    ps_presence *node[NODES];
    int n;
    sent *head, *tail;
    int dropping; /* messages are lost instead of queued */
    uint64_t now;
    struct gone_log *logs; /* per node: the events its table reported (NULL: not kept) */
} net;

typedef struct gone_log {
    int calls, announced; /* leaves */
    int joins, joins_announced;
    char last_id[64], last_info[64], last_topic[64];
} gone_log;

static void on_gone(void *ctx, int kind, const char *topic, size_t tl, const char *id,
                    size_t il, const char *info, size_t infl, int announce)
{
    gone_log *g = ctx;
    if (!g)
        return;
    if (kind == PS_PRESENCE_JOIN) {
        g->joins++;
        g->joins_announced += announce;
    } else {
        assert_int_equal(kind, PS_PRESENCE_LEAVE);
        g->calls++;
        g->announced += announce;
    }
    snprintf(g->last_topic, sizeof(g->last_topic), "%.*s", (int)tl, topic);
    snprintf(g->last_id, sizeof(g->last_id), "%.*s", (int)il, id);
    snprintf(g->last_info, sizeof(g->last_info), "%.*s", (int)infl, info);
}

typedef struct endpoint {
    net *net;
    int index;
} endpoint;

static endpoint ends[NODES];

static void queue_send(void *ctx, uint32_t to, const unsigned char *msg, size_t len)
{
    endpoint *e = ctx;
    if (e->net->dropping)
        return;
    sent *s = malloc(sizeof(*s) + len);
    assert_non_null(s);
    s->next = NULL;
    s->from = e->index;
    s->to = to;
    s->len = len;
    memcpy(s->data, msg, len);
    if (e->net->tail)
        e->net->tail->next = s;
    else
        e->net->head = s;
    e->net->tail = s;
}

/* Delivers everything queued (and what that sends) to every node (or the one named by to,
 * which is a node's index here). Returns the messages delivered. */
static int deliver_all(net *w)
{
    int n = 0;
    while (w->head) {
        sent *s = w->head;
        w->head = s->next;
        if (!w->head)
            w->tail = NULL;
        for (int i = 0; i < w->n; i++) {
            if (i == s->from || (s->to != PS_PRESENCE_ALL && s->to != (uint32_t)i))
                continue;
            uint64_t sender = 0;
            int rc = ps_presence_receive(w->node[i], s->data, s->len, w->now,
                                         (uint32_t)s->from, queue_send, &ends[i], on_gone,
                                         w->logs ? &w->logs[i] : NULL, &sender);
            assert_int_equal(rc, 1);
            assert_true(sender == ps_presence_origin(w->node[s->from]));
            n++;
        }
        free(s);
    }
    return n;
}

static void net_init(net *w, int n)
{
    memset(w, 0, sizeof(*w));
    w->n = n;
    w->now = 1000000;
    for (int i = 0; i < n; i++) {
        w->node[i] = ps_presence_new(0x1000 + (uint64_t)i, (uint64_t)i);
        assert_non_null(w->node[i]);
        ps_presence_set_shared(w->node[i], 1);
        ends[i].net = w;
        ends[i].index = i;
    }
}

static void net_free(net *w)
{
    while (w->head) {
        sent *s = w->head;
        w->head = s->next;
        free(s);
    }
    for (int i = 0; i < w->n; i++)
        ps_presence_free(w->node[i]);
}

static void flush_all(net *w)
{
    for (int i = 0; i < w->n; i++)
        (void)ps_presence_flush(w->node[i], queue_send, &ends[i]);
    deliver_all(w);
}

static void tick_all(net *w, gone_log *logs)
{
    w->logs = logs;
    for (int i = 0; i < w->n; i++)
        (void)ps_presence_tick(w->node[i], w->now, 1, queue_send, &ends[i], on_gone,
                               logs ? &logs[i] : NULL);
    deliver_all(w);
    w->logs = NULL;
}

/* topic's members as "id=info,id=info" in *out (cap bytes), with L for this node's own. */
static long listing(ps_presence *p, const char *topic, char *out, size_t cap)
{
    unsigned char *buf;
    size_t len;
    long n = ps_presence_copy(p, topic, strlen(topic), &buf, &len);
    assert_true(n >= 0);
    size_t at = 0, o = 0;
    out[0] = '\0';
    for (long k = 0; k < n; k++) {
        int local = buf[at];
        size_t il = (size_t)get_uint(buf + at + 1, 2);
        const char *id = (const char *)buf + at + 3;
        size_t fl = (size_t)get_uint(buf + at + 3 + il, 4);
        const char *info = (const char *)buf + at + 7 + il;
        o += (size_t)snprintf(out + o, cap - o, "%s%s%.*s=%.*s", k ? "," : "", local ? "L" : "",
                              (int)il, id, (int)fl, info);
        at += 7 + il + fl;
    }
    assert_int_equal(at, len);
    free(buf);
    return n;
}

#define JOIN(p, t, id, info) \
    assert_int_equal(ps_presence_join(p, t, strlen(t), id, strlen(id), info, strlen(info)), 1)

/* ---- this origin ----------------------------------------------------------------------- */

static void test_local_members(void **state)
{
    (void)state;
    ps_presence *p = ps_presence_new(7, 7);
    assert_non_null(p);
    char out[256];
    JOIN(p, "room", "a", "{\"n\":1}");
    JOIN(p, "room", "b", "{}");
    JOIN(p, "other", "a", "{}");
    /* A second join replaces the info and keeps the place. */
    assert_int_equal(ps_presence_join(p, "room", 4, "a", 1, "{\"n\":2}", 7), 0);
    assert_int_equal(listing(p, "room", out, sizeof(out)), 2);
    assert_string_equal(out, "La={\"n\":2},Lb={}");
    assert_int_equal(ps_presence_count(p, "room", 4), 2);
    assert_int_equal(ps_presence_count(p, "nobody", 6), 0);
    assert_int_equal(ps_presence_leave(p, "room", 4, "a", 1), 1);
    assert_int_equal(ps_presence_leave(p, "room", 4, "a", 1), 0);
    assert_int_equal(listing(p, "room", out, sizeof(out)), 1);
    assert_string_equal(out, "Lb={}");
    ps_presence_stats st;
    ps_presence_get_stats(p, &st);
    assert_int_equal(st.local, 2);
    assert_int_equal(st.seq, 5); /* four joins (one a replacement) and a leave */
    /* Out of bounds: refused, nothing changed. */
    char big[PS_PRESENCE_MAX_INFO + 1];
    memset(big, 'x', sizeof(big));
    assert_int_equal(ps_presence_join(p, "room", 4, "c", 1, big, sizeof(big)), -EINVAL);
    assert_int_equal(ps_presence_join(p, "", 0, "c", 1, "{}", 2), -EINVAL);
    assert_int_equal(ps_presence_join(p, "room", 4, "", 0, "{}", 2), -EINVAL);
    char longid[PS_PRESENCE_MAX_ID + 1];
    memset(longid, 'i', sizeof(longid));
    assert_int_equal(ps_presence_join(p, "room", 4, longid, sizeof(longid), "{}", 2), -EINVAL);
    assert_int_equal(ps_presence_count(p, "room", 4), 1);
    assert_null(ps_presence_new(0, 0));
    assert_int_equal(errno, EINVAL);
    ps_presence_free(p);
}

/* ---- between tables ---------------------------------------------------------------------- */

static void test_deltas_reach_the_others_in_order(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2);
    char out[256];
    /* b hears a's beat first: it does not know a, so it asks, and a answers a snapshot. */
    JOIN(w.node[0], "room", "a1", "{\"u\":1}");
    tick_all(&w, NULL);
    assert_int_equal(listing(w.node[1], "room", out, sizeof(out)), 1);
    assert_string_equal(out, "a1={\"u\":1}");
    /* The delta still in a's outbox is older than the snapshot: ignored, not doubled. */
    flush_all(&w);
    assert_int_equal(listing(w.node[1], "room", out, sizeof(out)), 1);
    /* Deltas now apply one by one. */
    JOIN(w.node[0], "room", "a2", "{}");
    JOIN(w.node[1], "room", "b1", "{}");
    flush_all(&w);
    assert_int_equal(listing(w.node[1], "room", out, sizeof(out)), 3);
    assert_string_equal(out, "a1={\"u\":1},Lb1={},a2={}");
    assert_int_equal(ps_presence_leave(w.node[0], "room", 4, "a1", 2), 1);
    flush_all(&w);
    assert_int_equal(listing(w.node[1], "room", out, sizeof(out)), 2);
    assert_string_equal(out, "Lb1={},a2={}");
    assert_int_equal(ps_presence_count(w.node[0], "room", 4), 2);
    ps_presence_stats st;
    ps_presence_get_stats(w.node[1], &st);
    assert_int_equal(st.origins, 1);
    assert_int_equal(st.members, 1);
    assert_int_equal(st.snapshots_in, 1);
    assert_int_equal(st.bad, 0);
    net_free(&w);
}

static void test_a_lost_delta_is_repaired_by_a_snapshot(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2);
    char out[256];
    tick_all(&w, NULL); /* they know each other */
    tick_all(&w, NULL);
    JOIN(w.node[0], "room", "x", "{}");
    w.dropping = 1;
    flush_all(&w); /* lost */
    w.dropping = 0;
    JOIN(w.node[0], "room", "y", "{}");
    /* y's delta shows a gap: b asks, a's snapshot has both. */
    flush_all(&w);
    assert_int_equal(listing(w.node[1], "room", out, sizeof(out)), 2);
    assert_string_equal(out, "x={},y={}");
    /* A leave lost: the next beat carries a's sequence, b sees it differs and asks. */
    assert_int_equal(ps_presence_leave(w.node[0], "room", 4, "x", 1), 1);
    w.dropping = 1;
    flush_all(&w);
    w.dropping = 0;
    w.now += 1500; /* past the ask's rate limit */
    tick_all(&w, NULL);
    assert_int_equal(listing(w.node[1], "room", out, sizeof(out)), 1);
    assert_string_equal(out, "y={}");
    net_free(&w);
}

static void test_silence_expires_and_the_lowest_rank_announces(void **state)
{
    (void)state;
    net w;
    net_init(&w, 3);
    gone_log logs[NODES];
    memset(logs, 0, sizeof(logs));
    JOIN(w.node[2], "room", "c1", "{\"c\":1}");
    JOIN(w.node[2], "room", "c2", "{}");
    JOIN(w.node[1], "room", "b1", "{}");
    tick_all(&w, NULL);
    tick_all(&w, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ps_presence_count(w.node[i], "room", 4), 3);
    /* Node 2 goes silent; 0 and 1 keep beating. Exactly at the expiry it is still there. */
    w.n = 2;
    w.now += PS_PRESENCE_EXPIRY_MS;
    tick_all(&w, logs);
    assert_int_equal(ps_presence_count(w.node[0], "room", 4), 3);
    w.now += 1;
    tick_all(&w, logs);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ps_presence_count(w.node[i], "room", 4), 1);
    /* Both report the two members; only node 0 (the lowest rank alive) announces. */
    assert_int_equal(logs[0].calls, 2);
    assert_int_equal(logs[0].announced, 2);
    assert_int_equal(logs[1].calls, 2);
    assert_int_equal(logs[1].announced, 0);
    assert_string_equal(logs[0].last_topic, "room");
    ps_presence_stats st;
    ps_presence_get_stats(w.node[0], &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.origins, 1);
    /* Node 2 comes back: its beat names an origin they forgot; they ask, it answers. The
     * one that announced its members' leaves announces their joins; the other, which
     * announced nothing, reports nothing. */
    w.n = 3;
    w.now += 10;
    tick_all(&w, logs);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ps_presence_count(w.node[i], "room", 4), 3);
    assert_int_equal(logs[0].joins, 2);
    assert_int_equal(logs[0].joins_announced, 2);
    assert_int_equal(logs[1].joins, 0); /* it announced nothing, so it buried nothing */
    /* Silent again, while the bus is cut off (may_announce 0): dropped, nothing announced,
     * and nothing announced when it comes back either. */
    memset(logs, 0, sizeof(logs));
    w.n = 2;
    w.now += 1500;
    tick_all(&w, NULL); /* 0 and 1 hear each other; 2 is silent from here */
    w.now += PS_PRESENCE_EXPIRY_MS + 1 - 1500;
    w.logs = logs;
    for (int i = 0; i < 2; i++)
        (void)ps_presence_tick(w.node[i], w.now, 0, queue_send, &ends[i], on_gone, &logs[i]);
    deliver_all(&w);
    assert_int_equal(logs[0].calls, 2);
    assert_int_equal(logs[0].announced, 0);
    w.n = 3;
    w.now += 10;
    tick_all(&w, logs);
    assert_int_equal(ps_presence_count(w.node[0], "room", 4), 3);
    assert_int_equal(logs[0].joins, 0);
    net_free(&w);
}

static void test_a_dropped_link_goes_at_once(void **state)
{
    (void)state;
    net w;
    net_init(&w, 3);
    gone_log logs[NODES];
    memset(logs, 0, sizeof(logs));
    JOIN(w.node[0], "room", "a1", "{\"a\":1}");
    tick_all(&w, NULL);
    tick_all(&w, NULL);
    uint64_t dead = ps_presence_origin(w.node[0]);
    /* Node 0 (the lowest) dies: of 1 and 2, node 1 announces. */
    assert_int_equal(ps_presence_drop(w.node[1], dead, on_gone, &logs[1]), 1);
    assert_int_equal(ps_presence_drop(w.node[2], dead, on_gone, &logs[2]), 1);
    assert_int_equal(ps_presence_drop(w.node[2], dead, on_gone, &logs[2]), 0);
    assert_int_equal(logs[1].announced, 1);
    assert_string_equal(logs[1].last_id, "a1");
    assert_string_equal(logs[1].last_info, "{\"a\":1}");
    assert_int_equal(logs[2].calls, 1);
    assert_int_equal(logs[2].announced, 0);
    /* A table never drops itself. */
    assert_int_equal(ps_presence_drop(w.node[1], ps_presence_origin(w.node[1]), on_gone,
                                      &logs[1]), 0);
    assert_int_equal(ps_presence_count(w.node[1], "room", 4), 0);
    net_free(&w);
}

static void test_snapshots_in_parts_and_an_overflowing_outbox(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2);
    tick_all(&w, NULL);
    tick_all(&w, NULL);
    /* Enough members for several parts, and more deltas than the outbox holds. */
    char info[1024];
    memset(info, 'i', sizeof(info));
    info[0] = '{';
    info[sizeof(info) - 1] = '}';
    w.dropping = 1; /* nothing is sent while they join */
    for (int i = 0; i < 1200; i++) {
        char id[16];
        snprintf(id, sizeof(id), "m%d", i);
        assert_int_equal(ps_presence_join(w.node[0], "big", 3, id, strlen(id), info,
                                          sizeof(info)), 1);
    }
    w.dropping = 0;
    ps_presence *a = w.node[0];
    assert_int_equal(a->resync, 1); /* 1.2 MB of deltas: replaced by one snapshot */
    assert_int_equal(a->outbox.count, 0);
    flush_all(&w);
    assert_int_equal(a->resync, 0);
    assert_int_equal(ps_presence_count(w.node[1], "big", 3), 1200);
    ps_presence_stats st;
    ps_presence_get_stats(w.node[1], &st);
    assert_int_equal(st.snapshots_in, 2);
    /* A snapshot of the sequence already held is skipped. */
    ps_presence_snapshot(a, queue_send, &ends[0], PS_PRESENCE_ALL);
    deliver_all(&w);
    ps_presence_get_stats(w.node[1], &st);
    assert_int_equal(st.snapshots_in, 2);
    assert_int_equal(ps_presence_count(w.node[1], "big", 3), 1200);
    net_free(&w);
}

static void test_own_echo_and_ask_all(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2);
    JOIN(w.node[1], "room", "b", "{}");
    /* What a node sends, handed back to it (as Redis does), changes nothing. */
    pr_out o = {0};
    pthread_mutex_lock(&w.node[1]->lock);
    assert_int_equal(encode_snapshot(w.node[1], PS_PRESENCE_ALL, &o), 0);
    pthread_mutex_unlock(&w.node[1]->lock);
    uint64_t sender = 0;
    assert_int_equal(ps_presence_receive(w.node[1], o.head->data, o.head->len, w.now, 0,
                                         queue_send, &ends[1], NULL, NULL, &sender), 0);
    assert_true(sender == ps_presence_origin(w.node[1]));
    out_free(&o);
    assert_int_equal(ps_presence_count(w.node[1], "room", 4), 1);
    /* A newcomer asks everyone: every table answers its snapshot. */
    ps_presence_ask_all(w.node[0], queue_send, &ends[0], PS_PRESENCE_ALL);
    deliver_all(&w);
    assert_int_equal(ps_presence_count(w.node[0], "room", 4), 1);
    net_free(&w);
}

/* ---- the decoder --------------------------------------------------------------------------- */

static void send_nowhere(void *ctx, uint32_t to, const unsigned char *msg, size_t len)
{
    (void)ctx;
    (void)to;
    (void)msg;
    (void)len;
}

static size_t head(unsigned char *b, int kind, uint64_t origin)
{
    b[0] = 'P';
    b[1] = (unsigned char)kind;
    for (int i = 0; i < 8; i++) {
        b[2 + i] = (unsigned char)(origin >> (8 * i));
        b[10 + i] = 0;
        b[18 + i] = i == 0;
    }
    return HEAD_BYTES;
}

static void test_decoder_refuses_bad_input(void **state)
{
    (void)state;
    ps_presence *p = ps_presence_new(9, 9);
    assert_non_null(p);
    unsigned char b[128];
    uint64_t sender;
    size_t n;
#define REFUSED(len) \
    assert_int_equal(ps_presence_receive(p, b, (len), 0, 0, send_nowhere, NULL, NULL, NULL, \
                                         &sender), \
                     -EPROTO)
    n = head(b, PS_PRESENCE_BEAT, 5);
    REFUSED(n - 1);                 /* shorter than a head */
    b[0] = 'Q';
    REFUSED(n);                     /* not 'P' */
    n = head(b, 9, 5);
    REFUSED(n);                     /* an unknown kind */
    n = head(b, PS_PRESENCE_BEAT, 0);
    REFUSED(n);                     /* origin 0 */
    n = head(b, PS_PRESENCE_BEAT, 5);
    b[n] = 0;
    REFUSED(n + 1);                 /* a byte after a beat */
    n = head(b, PS_PRESENCE_ASK, 5);
    REFUSED(n + 7);                 /* an ASK's target cut short */
    n = head(b, PS_PRESENCE_LEAVE, 5);
    memcpy(b + n, "\x00\x00\x01\x00i", 5);
    REFUSED(n + 5);                 /* an empty topic */
    memcpy(b + n, "\x01\x00t\x00\x00", 5);
    REFUSED(n + 5);                 /* an empty id */
    memcpy(b + n, "\x05\x00t\x01\x00i", 6);
    REFUSED(n + 6);                 /* a topic longer than the message */
    n = head(b, PS_PRESENCE_JOIN, 5);
    memcpy(b + n, "\x01\x00t\x01\x00i\x10\x00\x00\x00{}", 12);
    REFUSED(n + 12);                /* info longer than the message */
    memcpy(b + n, "\x01\x00t\x01\x00i\x01\x40\x00\x00", 10);
    REFUSED(n + 10);                /* info over PS_PRESENCE_MAX_INFO */
    memcpy(b + n, "\x01\x00t\x01\x00i\x02\x00\x00\x00{}!", 13);
    REFUSED(n + 13);                /* a byte after the member */
    n = head(b, PS_PRESENCE_SNAP, 5);
    memcpy(b + n, "\x00\x00\x00\x00\x02\x00\x00\x00\x00", 9);
    REFUSED(n + 9);                 /* last neither 0 nor 1 */
    memcpy(b + n, "\x00\x00\x00\x00\x01\xff\xff\xff\xff", 9);
    REFUSED(n + 9);                 /* a count the body cannot hold */
    memcpy(b + n, "\x00\x00\x00\x00\x01\x02\x00\x00\x00\x01\x00t\x01\x00i\x02\x00\x00\x00{}", 21);
    REFUSED(n + 21);                /* two members announced, one there */
    memcpy(b + n, "\x00\x00\x00\x00\x01\x01\x00\x00\x00\x01\x00t\x01\x00i\x02\x00\x00\x00[]", 21);
    REFUSED(n + 21);                /* an info that is not an object */
    memcpy(b + n, "\x00\x00\x00\x00\x01\x01\x00\x00\x00\x01\x00t\x01\x00i\x00\x00\x00\x00", 19);
    REFUSED(n + 19);                /* an empty info */
    memcpy(b + n, "\x00\x00\x00\x00\x01\x01\x00\x00\x00\x01\x00\xff\x01\x00i\x02\x00\x00\x00{}", 21);
    REFUSED(n + 21);                /* a topic that is not UTF-8 */
    memcpy(b + n, "\x00\x00\x00\x00\x01\x01\x00\x00\x00\x01\x00t\x01\x00i\x03\x00\x00\x00{\xc3}", 22);
    REFUSED(n + 22);                /* an info that is not UTF-8 */
    ps_presence_stats st;
    ps_presence_get_stats(p, &st);
    assert_int_equal(st.bad, 19);
    assert_int_equal(st.origins, 0); /* nothing refused made an origin */
    /* The same bytes, well-formed, are taken. */
    memcpy(b + n, "\x00\x00\x00\x00\x01\x01\x00\x00\x00\x01\x00t\x01\x00i\x02\x00\x00\x00{}", 21);
    assert_int_equal(ps_presence_receive(p, b, n + 21, 0, 0, send_nowhere, NULL, NULL, NULL,
                                         &sender), 1);
    assert_int_equal(ps_presence_count(p, "t", 1), 1);
    ps_presence_free(p);
#undef REFUSED
}

static void test_origins_are_bounded(void **state)
{
    (void)state;
    ps_presence *p = ps_presence_new(1, 1);
    assert_non_null(p);
    unsigned char b[64];
    uint64_t sender;
    for (uint64_t o = 2; o < 2 + PS_PRESENCE_MAX_ORIGINS + 5; o++) {
        size_t n = head(b, PS_PRESENCE_BEAT, o);
        int rc = ps_presence_receive(p, b, n, 0, 0, send_nowhere, NULL, NULL, NULL, &sender);
        assert_int_equal(rc, o < 2 + PS_PRESENCE_MAX_ORIGINS ? 1 : 0);
    }
    ps_presence_stats st;
    ps_presence_get_stats(p, &st);
    assert_int_equal(st.origins, PS_PRESENCE_MAX_ORIGINS);
    assert_int_equal(st.refused, 5);
    ps_presence_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_members),
        cmocka_unit_test(test_deltas_reach_the_others_in_order),
        cmocka_unit_test(test_a_lost_delta_is_repaired_by_a_snapshot),
        cmocka_unit_test(test_silence_expires_and_the_lowest_rank_announces),
        cmocka_unit_test(test_a_dropped_link_goes_at_once),
        cmocka_unit_test(test_snapshots_in_parts_and_an_overflowing_outbox),
        cmocka_unit_test(test_own_echo_and_ask_all),
        cmocka_unit_test(test_decoder_refuses_bad_input),
        cmocka_unit_test(test_origins_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
