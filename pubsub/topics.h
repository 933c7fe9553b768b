/*
 * topics.h: the topic registry of one I/O thread.
 *
 * A map from topic name to the set of its subscribers and, on each
 * subscriber, the list of its topics. A topic exists while it has a
 * subscriber: it is born with its first and dies with its last. Publishing
 * looks the topic up once and hands the frame to each of its subscribers
 * through the registry's delivery callback, so it costs only the subscribers
 * it reaches. A message is delivered to each subscriber in the order it was
 * published, so any one sender's messages keep their order.
 *
 * A subscriber is an opaque handle made by the registry for one connection;
 * the connection keeps the pointer and gives a stable id and a user pointer
 * (its per-connection state) that the delivery callback gets back.
 *
 * Fan-out is re-entrant. From inside the delivery callback one may
 * subscribe, unsubscribe, unsubscribe_all or free any subscriber (the one
 * being delivered to included, e.g. to close a slow consumer), and publish
 * again. A fan-out reaches the subscribers the topic had when it began and
 * that are still subscribed when their turn comes; subscribers added during
 * it wait for the next message.
 *
 * Threads: a registry, its subscribers and every call on them belong to one
 * thread (the I/O thread that owns those connections); nothing here locks.
 * Run one registry per I/O thread. Only the frames are shared across threads.
 *
 * A registry made without a delivery callback records who is subscribed to
 * what and answers counts, and is never published on; whoever shares one
 * between threads guards it. ledger.h does the same with less memory per
 * member (the gateway's ledger beside the I/O thread's registry).
 */
#ifndef PS_TOPICS_H
#define PS_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

typedef struct ps_topics ps_topics;
typedef struct ps_subscriber ps_subscriber;

/*
 * Delivers frame to sub, typically by pushing it onto sub's send queue
 * (ps_queue_push() takes its own reference) and asking for a writeable
 * callback. frame is borrowed for the call. Returns >= 0 if the subscriber
 * was reached, < 0 if not (dropped); ps_topics_publish() counts the former.
 */
typedef int (*ps_deliver_fn)(void *ctx, ps_subscriber *sub, ps_frame *frame);

/*
 * Tells that topic (len bytes, also NUL-terminated; borrowed for the call)
 * was born (alive = true: first subscriber) or died (alive = false: last
 * one gone). A bus uses it to follow which topics this thread wants. It must
 * not call back into the registry.
 */
typedef void (*ps_interest_fn)(void *ctx, const char *topic, size_t len,
                               bool alive);

/*
 * Creates an empty registry that delivers through deliver(deliver_ctx, ...),
 * or a ledger when deliver is NULL (publishing on it reaches nobody).
 * Returns it (owned by the caller, released with ps_topics_free()), or NULL
 * with errno ENOMEM.
 */
PS_MUST_CHECK ps_topics *ps_topics_new(ps_deliver_fn deliver,
                                       void *deliver_ctx);

/*
 * Frees the registry, every topic, and every subscriber still in it (their
 * handles become invalid). Calls no callback. Must not be called during a
 * publish on it or from one of its callbacks (it aborts if it is).
 */
void ps_topics_free(ps_topics *t);

/* Sets (or, with fn NULL, clears) the birth/death callback. Topics already
 * alive are not announced. */
void ps_topics_set_interest(ps_topics *t, ps_interest_fn fn, void *ctx);

/*
 * Publishes frame on topic (len bytes, any bytes): calls the delivery
 * callback once for each subscriber of topic, except exclude (may be NULL).
 * frame is borrowed for the call; the callback takes the references it
 * keeps. Returns the number of subscribers the callback reports reached
 * (0 when the topic does not exist).
 */
size_t ps_topics_publish(ps_topics *t, const char *topic, size_t len,
                         ps_frame *frame, const ps_subscriber *exclude);

/* Number of live topics. */
size_t ps_topics_count(const ps_topics *t);

/* Number of subscribers of topic (0 when it does not exist). */
size_t ps_topics_subscriber_count(const ps_topics *t, const char *topic,
                                  size_t len);

/*
 * Makes a subscriber with no topics in t, carrying id and user (both only
 * stored and handed back). Returns the handle, owned by the caller and
 * released with ps_subscriber_free() (or by ps_topics_free()), or NULL with
 * errno ENOMEM.
 */
PS_MUST_CHECK ps_subscriber *ps_subscriber_new(ps_topics *t, uint64_t id,
                                               void *user);

/* Unsubscribes s from all its topics (as ps_topics_unsubscribe_all()) and
 * frees it. NULL is a no-op. Allowed inside a delivery callback. */
void ps_subscriber_free(ps_subscriber *s);

uint64_t ps_subscriber_id(const ps_subscriber *s);
void *ps_subscriber_user(const ps_subscriber *s);

/* Whether s is subscribed to topic (len bytes). */
bool ps_topics_is_subscribed(const ps_subscriber *s, const char *topic,
                             size_t len);

/* Number of topics s is subscribed to. */
size_t ps_subscriber_topic_count(const ps_subscriber *s);

/*
 * The i-th topic of s (0 <= i < ps_subscriber_topic_count(s), in no
 * particular order), NUL-terminated, its length in *len if len is not NULL.
 * Borrowed: valid until s's subscriptions next change. NULL if i is out of
 * range.
 */
const char *ps_subscriber_topic(const ps_subscriber *s, size_t i,
                                size_t *len);

/*
 * Subscribes s to topic (len bytes, any bytes; copied), creating the topic
 * if it is new (and then announcing it to the interest callback). Returns 1
 * if s was newly subscribed, 0 if it already was, -ENOMEM (nothing changed).
 */
PS_MUST_CHECK int ps_topics_subscribe(ps_subscriber *s, const char *topic,
                                      size_t len);

/*
 * Unsubscribes s from topic; a topic left with no subscriber dies
 * (announced to the interest callback; deferred to the end of a fan-out in
 * progress on it). Returns 1 if s was subscribed, 0 if not.
 */
int ps_topics_unsubscribe(ps_subscriber *s, const char *topic, size_t len);

/* Unsubscribes s from every topic (on close). Returns how many. */
size_t ps_topics_unsubscribe_all(ps_subscriber *s);

#endif /* PS_TOPICS_H */
