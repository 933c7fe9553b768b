/*
 * presence_link.c: the presence table on the server's buses (see presence_link.h).
 */
#include "presence_link.h"

#include <errno.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "redis_lws.h"
#include "serverlink.h"

struct gw_presence {
    gw_server *srv;
    ps_presence *table;
    ps_bus *bus; /* I/O thread (set before it runs or on it) */
    /* Whether a bus carries presence: what Python's threads look at to decide whether the
     * I/O thread has anything to send (set while it does not run). */
    atomic_int shared;
    atomic_int pending; /* deltas were queued since the I/O thread last sent them */
    lws_sorted_usec_list_t timer;
    int beating; /* the timer is scheduled: it must be cancelled before the context goes */
    uint64_t last_beat_ms; /* when the table last ticked (I/O thread) */

    pthread_mutex_t gone_lock;
    gw_presence_gone *gone_head, *gone_tail;
    size_t gone_count;
    atomic_int has_gone; /* gone_head is not NULL: the loop thread's check without the lock */
    atomic_uint_fast64_t gone_dropped;
    int gone_logged;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t new_origin(void)
{
    uint64_t origin = 0;
    while (origin == 0) {
        if (getrandom(&origin, sizeof(origin), 0) != (ssize_t)sizeof(origin)) {
            /* No entropy source: the clock and the pid still tell processes apart. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            origin = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                     ((uint64_t)getpid() << 40);
        }
    }
    return origin;
}

gw_presence *gw_presence_new(gw_server *srv)
{
    uint64_t origin = new_origin();
    gw_presence *gp = calloc(1, sizeof(*gp));
    if (!gp)
        return NULL;
    /* Off the siblings bus the rank is the origin itself: the lowest id announces. */
    gp->table = ps_presence_new(origin, origin);
    if (!gp->table) {
        free(gp);
        return NULL;
    }
    gp->srv = srv;
    pthread_mutex_init(&gp->gone_lock, NULL);
    return gp;
}

void gw_presence_free(gw_presence *gp)
{
    if (!gp)
        return;
    /* gw_presence_stop ran before the context went, so the timer is no longer linked
     * anywhere; cancelling it here would touch the freed context. */
    gw_presence_gone *g = gp->gone_head;
    while (g) {
        gw_presence_gone *next = g->next;
        free(g);
        g = next;
    }
    ps_presence_free(gp->table);
    pthread_mutex_destroy(&gp->gone_lock);
    free(gp);
}

ps_presence *gw_presence_table(gw_presence *gp)
{
    return gp->table;
}

/* ---- sending -------------------------------------------------------------------------- */

static void send_on_bus(void *ctx, uint32_t to, const unsigned char *msg, size_t len)
{
    gw_presence *gp = ctx;
    ps_bus *bus = gp->bus;
    if (ps_bus_is_siblings(bus))
        (void)ps_bus_siblings_presence_send(bus, to == PS_PRESENCE_ALL ? PS_SIBLINGS_ALL : to,
                                            msg, len);
    else if (ps_bus_is_redis(bus))
        (void)ps_bus_redis_presence_send(bus, msg, len); /* one channel: every node hears */
}

/* Whether the bus reaches the others now: announcing a leave while cut off from them would
 * announce members that are only out of sight (a Redis outage), not gone. */
static int bus_reaches_others(gw_presence *gp)
{
    if (ps_bus_is_siblings(gp->bus))
        return 1;
    if (ps_bus_is_redis(gp->bus)) {
        ps_redis_stats st;
        ps_bus_redis_stats(gp->bus, &st);
        return st.connected;
    }
    return 0;
}

static void on_event(void *ctx, int kind, const char *topic, size_t tl, const char *id,
                     size_t il, const char *info, size_t infl, int announce)
{
    gw_presence *gp = ctx;
    if (!announce)
        return;
    gw_presence_gone *g = malloc(sizeof(*g) + tl + il + infl);
    pthread_mutex_lock(&gp->gone_lock);
    if (!g || gp->gone_count >= GW_PRESENCE_GONE_LIMIT) {
        atomic_fetch_add(&gp->gone_dropped, 1);
        if (!gp->gone_logged)
            lwsl_err("presence: %s; the leaves (or returns) of a dead (or silent) process's "
                     "members are not all announced\n",
                     g ? "too many wait for the loop thread" : "out of memory");
        gp->gone_logged = 1;
        pthread_mutex_unlock(&gp->gone_lock);
        free(g);
        return;
    }
    g->next = NULL;
    g->joined = kind == PS_PRESENCE_JOIN;
    g->topic_len = tl;
    g->id_len = il;
    g->info_len = infl;
    memcpy(g->data, topic, tl);
    memcpy(g->data + tl, id, il);
    memcpy(g->data + tl + il, info, infl);
    if (gp->gone_tail)
        gp->gone_tail->next = g;
    else
        gp->gone_head = g;
    gp->gone_tail = g;
    int first = gp->gone_count++ == 0;
    atomic_store(&gp->has_gone, 1);
    pthread_mutex_unlock(&gp->gone_lock);
    if (first)
        gw__wake_loop(gp->srv);
}

gw_presence_gone *gw_presence_take_gone(gw_presence *gp)
{
    /* Asked at every wake-up of the loop thread of an app with presence events. */
    if (!atomic_load(&gp->has_gone))
        return NULL;
    pthread_mutex_lock(&gp->gone_lock);
    atomic_store(&gp->has_gone, 0);
    gw_presence_gone *list = gp->gone_head;
    gp->gone_head = gp->gone_tail = NULL;
    gp->gone_count = 0;
    gp->gone_logged = 0;
    pthread_mutex_unlock(&gp->gone_lock);
    return list;
}

uint64_t gw_presence_gone_dropped(gw_presence *gp)
{
    return atomic_load(&gp->gone_dropped);
}

/* ---- the siblings bus ------------------------------------------------------------------- */

static uint64_t siblings_in(void *ctx, unsigned slot, const unsigned char *msg, size_t len)
{
    gw_presence *gp = ctx;
    uint64_t sender = 0;
    if (ps_presence_receive(gp->table, msg, len, now_ms(), slot, send_on_bus, gp, on_event, gp,
                            &sender) < 0)
        return 0;
    return sender;
}

static void siblings_link(void *ctx, unsigned slot, int up, uint64_t origin)
{
    gw_presence *gp = ctx;
    if (up) {
        /* Before the bus is ours (made at start, connecting to whoever is up) there is
         * nothing to send yet: gw_presence_start sends the snapshot. */
        if (gp->bus)
            ps_presence_snapshot(gp->table, send_on_bus, gp, slot);
    } else if (origin) {
        (void)ps_presence_drop(gp->table, origin, on_event, gp);
    }
}

void gw_presence_siblings_config(gw_presence *gp, ps_siblings_config *cfg)
{
    cfg->presence_in = siblings_in;
    cfg->presence_link = siblings_link;
    cfg->presence_ctx = gp;
}

/* ---- the Redis bus ---------------------------------------------------------------------- */

void gw_presence_redis_in(gw_server *srv, const unsigned char *msg, size_t len)
{
    gw_presence *gp = gw_presence_of(srv);
    uint64_t sender;
    if (gp)
        (void)ps_presence_receive(gp->table, msg, len, now_ms(), 0, send_on_bus, gp, on_event,
                                  gp, &sender);
}

void gw_presence_redis_online(gw_server *srv)
{
    gw_presence *gp = gw_presence_of(srv);
    if (!gp || !gp->bus)
        return;
    /* New on the channel, or back after an outage: what the others hold of us may be stale
     * or gone, and so may what we hold of them. */
    ps_presence_snapshot(gp->table, send_on_bus, gp, PS_PRESENCE_ALL);
    ps_presence_ask_all(gp->table, send_on_bus, gp, PS_PRESENCE_ALL);
}

/* ---- the beat ----------------------------------------------------------------------------- */

/* How soon a late beat looks again, once the loop has served the input waiting. */
#define STALL_RECHECK_US ((lws_usec_t)20 * 1000)

static void beat(lws_sorted_usec_list_t *sul)
{
    gw_presence *gp = lws_container_of(sul, gw_presence, timer);
    struct lws_context *ctx = gw__server_context(gp->srv);
    gp->beating = 0;
    if (!gp->bus || !ctx)
        return;
    atomic_store(&gp->pending, 0);
    (void)ps_presence_flush(gp->table, send_on_bus, gp);
    uint64_t now = now_ms();
    if (gp->last_beat_ms && now - gp->last_beat_ms > 2 * (uint64_t)PS_PRESENCE_REFRESH_MS) {
        /* Seconds late: this process stood still (stopped, or its I/O thread held up), and
         * the others' beats of that time are still unread; judged now, every other origin
         * would expire. The loop reads what waits first (an event loop may run a due timer
         * before the input that came with it), and the table ticks just after. */
        gp->last_beat_ms = now;
        lws_sul_schedule(ctx, 0, &gp->timer, beat, STALL_RECHECK_US);
        gp->beating = 1;
        return;
    }
    gp->last_beat_ms = now;
    (void)ps_presence_tick(gp->table, now, bus_reaches_others(gp), send_on_bus, gp,
                           on_event, gp);
    lws_sul_schedule(ctx, 0, &gp->timer, beat, (lws_usec_t)PS_PRESENCE_REFRESH_MS * 1000);
    gp->beating = 1;
}

void gw_presence_use_bus(gw_presence *gp, ps_bus *bus)
{
    gp->bus = ps_bus_is_siblings(bus) || ps_bus_is_redis(bus) ? bus : NULL;
    atomic_store(&gp->shared, gp->bus != NULL);
    ps_presence_set_shared(gp->table, gp->bus != NULL);
    if (!gp->bus && gp->beating) {
        lws_sul_cancel(&gp->timer);
        gp->beating = 0;
    }
}

void gw_presence_stop(gw_presence *gp)
{
    if (gp->beating) {
        lws_sul_cancel(&gp->timer);
        gp->beating = 0;
    }
}

void gw_presence_start(gw_presence *gp)
{
    struct lws_context *ctx = gw__server_context(gp->srv);
    /* The server was made before --processes forked its workers: each draws its own
     * origin now, or every sibling would take the others' messages for its own echoes. */
    ps_presence_set_origin(gp->table, new_origin());
    if (!gp->bus || !ctx)
        return;
    if (ps_bus_is_siblings(gp->bus))
        ps_presence_snapshot(gp->table, send_on_bus, gp, PS_PRESENCE_ALL);
    gp->last_beat_ms = now_ms(); /* so that a first beat that comes late is judged late */
    lws_sul_schedule(ctx, 0, &gp->timer, beat, (lws_usec_t)PS_PRESENCE_REFRESH_MS * 1000);
    gp->beating = 1;
}

void gw_presence_service(gw_presence *gp)
{
    /* Every wake-up of the I/O thread comes here (HTTP answers too): one atomic load when
     * there is nothing to send. */
    if (gp->bus && atomic_exchange(&gp->pending, 0))
        (void)ps_presence_flush(gp->table, send_on_bus, gp);
}

/* ---- Python's calls ------------------------------------------------------------------------ */

int gw_presence_join(gw_presence *gp, const char *topic, size_t tl, const char *id, size_t il,
                     const char *info, size_t infl)
{
    int rc = ps_presence_join(gp->table, topic, tl, id, il, info, infl);
    if (rc >= 0 && atomic_load(&gp->shared) && !atomic_exchange(&gp->pending, 1))
        gw__wake_io(gp->srv);
    return rc;
}

int gw_presence_leave(gw_presence *gp, const char *topic, size_t tl, const char *id, size_t il)
{
    int rc = ps_presence_leave(gp->table, topic, tl, id, il);
    if (rc > 0 && atomic_load(&gp->shared) && !atomic_exchange(&gp->pending, 1))
        gw__wake_io(gp->srv);
    return rc;
}
