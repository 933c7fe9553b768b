/*
 * ledger.h: who is subscribed to what, for counting only.
 *
 * The gateway's topic registry (topics.h) belongs to the I/O thread; the calls Python
 * makes (publish's count, subscribers(), whether a subscribe is new) are answered from a
 * ledger of the subscriptions those calls made, kept beside it under the gateway's command
 * lock. A ledger never delivers, so it keeps no topic's list of subscribers: a topic is its
 * name and how many members it has, and a member's record is its list of topics, which its
 * owner embeds (a WebSocket connection's handle): an idle connection with its endpoint's
 * topic and one room costs its 32-byte record and nothing else. A registry subscriber
 * (about 100 bytes, and a slot in each topic's array) would cost that again per connection.
 *
 * A topic exists while it has a member. Names are hashed with SipHash under a random key
 * (names chosen by clients cannot force collisions). A member's first two topics are inside
 * its record; more live in an array sorted by topic, so that asking about one of them costs
 * a binary search, not a walk.
 *
 * Threads: nothing here locks; the owner guards a ledger and its members.
 */
#ifndef PS_LEDGER_H
#define PS_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ps_ledger ps_ledger;
struct ps_name;

#define PS_LEDGER_INLINE 2

/* A member's topics. All zero (= {0}) is a member with none; its owner embeds it. */
typedef struct ps_ledger_member {
    struct ps_name *inline_topics[PS_LEDGER_INLINE]; /* while n <= PS_LEDGER_INLINE */
    struct ps_name **topics; /* once more: every topic, sorted by address */
    uint32_t n, cap;
} ps_ledger_member;

/* An empty ledger, or NULL (out of memory). */
ps_ledger *ps_ledger_new(void);

/* Frees the ledger and its topics. Members still joined must not be used with it again
 * (their arrays are theirs: ps_ledger_leave_all() them first to free those). */
void ps_ledger_free(ps_ledger *l);

/* Adds topic (len bytes, any bytes) to m. Returns 1 when m joined it, 0 when m already
 * was a member, -ENOMEM (nothing changed). */
int ps_ledger_join(ps_ledger *l, ps_ledger_member *m, const char *topic, size_t len);

/* Takes topic out of m. Returns 1 when m was a member, else 0. */
int ps_ledger_leave(ps_ledger *l, ps_ledger_member *m, const char *topic, size_t len);

/* Takes m out of every topic and frees its array; m is then a member with none. */
void ps_ledger_leave_all(ps_ledger *l, ps_ledger_member *m);

/* Whether m is a member of topic. */
bool ps_ledger_is_member(const ps_ledger *l, const ps_ledger_member *m, const char *topic,
                         size_t len);

/* The members of topic (0 when nobody is). */
size_t ps_ledger_count(const ps_ledger *l, const char *topic, size_t len);

/* The topics with at least one member. */
size_t ps_ledger_topics(const ps_ledger *l);

/* Calls fn once for each topic with a member, in no particular order; fn must not change
 * l. */
typedef void (*ps_ledger_topic_fn)(void *ctx, const char *topic, size_t len);
void ps_ledger_each(const ps_ledger *l, ps_ledger_topic_fn fn, void *ctx);

#endif
