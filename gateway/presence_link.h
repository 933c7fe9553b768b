/*
 * presence_link.h: the presence table (pubsub/presence.h) wired to the server: Python's
 * joins and leaves, the bus that carries them (siblings or Redis), the once-a-second beat
 * and expiry on the I/O thread, and the leaves of dead origins handed to the loop thread
 * for announcing (docs/realtime.md, "Presence").
 *
 * Threads: the Python calls from any thread (the table has its own lock); everything the
 * bus does on the I/O thread, which never runs Python: the members of a dead origin wait in
 * a bounded list that the loop thread takes (gw_presence_take_gone) when woken.
 */
#ifndef GW_PRESENCE_LINK_H
#define GW_PRESENCE_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "bus_redis.h"
#include "presence.h"
#include "server.h"

typedef struct gw_presence gw_presence;

/* Leaves waiting for the loop thread past which further ones are dropped (and counted). */
#define GW_PRESENCE_GONE_LIMIT 100000u

/* A table with a random origin for srv. NULL when out of memory. Before the server starts. */
gw_presence *gw_presence_new(gw_server *srv);
void gw_presence_free(gw_presence *gp);
ps_presence *gw_presence_table(gw_presence *gp);

/* The siblings bus's callbacks (ps_siblings_config.presence_*, ctx: the gw_presence), and
 * the rank that makes the lowest live slot the announcer. Before the bus is made. */
void gw_presence_siblings_config(gw_presence *gp, ps_siblings_config *cfg);
/* The Redis host's presence callbacks (redis_lws.c), which reach the link through
 * gw_presence_of(srv). */
void gw_presence_redis_in(gw_server *srv, const unsigned char *msg, size_t len);
void gw_presence_redis_online(gw_server *srv);

/* The bus presence travels on from now on (NULL: none; I/O thread or before it runs), and
 * the start of the beat (once the lws context exists, before the I/O thread runs). */
void gw_presence_use_bus(gw_presence *gp, ps_bus *bus);
void gw_presence_start(gw_presence *gp);
/* The beat stops: after the I/O thread stopped, before the lws context goes. */
void gw_presence_stop(gw_presence *gp);
/* I/O thread, on every wake-up: sends the deltas Python's joins and leaves queued. */
void gw_presence_service(gw_presence *gp);

/* ---- the Python side (any thread) --------------------------------------------------- */

/* ps_presence_join / ps_presence_leave, then a wake-up of the I/O thread to send it. */
int gw_presence_join(gw_presence *gp, const char *topic, size_t tl, const char *id, size_t il,
                     const char *info, size_t infl);
int gw_presence_leave(gw_presence *gp, const char *topic, size_t tl, const char *id, size_t il);

/* One member a dead origin took with it (joined 0), or that a silent one brought back
 * (joined 1), which this process is to announce. */
typedef struct gw_presence_gone {
    struct gw_presence_gone *next;
    int joined;
    size_t topic_len, id_len, info_len;
    char data[]; /* topic, id, info */
} gw_presence_gone;

/* Takes the list (oldest first), or NULL; free each entry with free(). */
gw_presence_gone *gw_presence_take_gone(gw_presence *gp);

/* Counters beyond the table's: leaves dropped because the list was full. */
uint64_t gw_presence_gone_dropped(gw_presence *gp);

/* ---- what ws.c provides for it -------------------------------------------------------- */

/* The hub's presence link. */
gw_presence *gw_presence_of(gw_server *srv);

#endif
