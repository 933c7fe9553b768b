/*
 * bus.h: where published messages travel.
 *
 * A bus carries a publish from the thread that makes it to every subscriber
 * it concerns: the subscribers of its own I/O thread's registry (always)
 * and, depending on the implementation, those of sibling processes or of
 * other machines (Redis). The fan-out code only ever talks to a ps_bus, so
 * a new transport is a new ps_bus_ops, not a change to the fan-out.
 *
 * Two directions:
 *   out  ps_bus_publish() / ps_bus_publish_frame(): deliver locally, and
 *        send the message (topic, ps_frame_opcode(), ps_frame_payload()) to
 *        wherever else the bus reaches, encoded as that transport wants;
 *   in   a bus that receives a message from elsewhere builds one ps_frame
 *        from it and hands it to ps_topics_publish() on its registry.
 * and interest: a remote bus only needs the messages of topics that have
 * local subscribers; ps_bus_on_interest() (given to
 * ps_topics_set_interest()) tells it as topics are born and die.
 *
 * Threads: a bus instance belongs to the I/O thread of the registry it
 * delivers into; every call on it is made on that thread.
 *
 * Writing a bus: embed struct ps_bus as the first member of the
 * implementation's struct, point ops at a static const ps_bus_ops, and hand
 * out &impl->base from its constructor.
 */
#ifndef PS_BUS_H
#define PS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "topics.h"

typedef struct ps_bus ps_bus;

typedef struct ps_bus_ops {
    /* A short name for logs ("local", "siblings", "redis"). */
    const char *name;

    /*
     * Delivers frame on topic (len bytes) to this thread's subscribers
     * except exclude (may be NULL), and to every other destination of the
     * bus (where exclude means nothing). frame is borrowed for the call: a
     * bus that keeps it (to send later) takes its own reference. Returns
     * the number of this thread's subscribers reached, or a negative errno
     * if the message was delivered nowhere.
     */
    int (*publish)(ps_bus *bus, const char *topic, size_t len,
                   ps_frame *frame, const ps_subscriber *exclude);

    /*
     * This thread's registry now has (subscribe_interest) or no longer has
     * (unsubscribe_interest) subscribers of topic (len bytes, borrowed for
     * the call). There is no failure to report: a bus that cannot act now
     * (disconnected) remembers what is wanted and catches up when it can.
     * NULL when the bus needs no interest, like the in-process bus.
     */
    void (*subscribe_interest)(ps_bus *bus, const char *topic, size_t len);
    void (*unsubscribe_interest)(ps_bus *bus, const char *topic, size_t len);

    /* Releases everything the bus holds, and the bus itself. */
    void (*close)(ps_bus *bus);
} ps_bus_ops;

struct ps_bus {
    const ps_bus_ops *ops;
};

/*
 * Encodes payload (len bytes, copied) once as a frame of opcode and
 * publishes it as ps_bus_publish_frame() does. Returns what that returns,
 * or -EINVAL / -ENOMEM if the frame could not be made (see ps_frame_new()).
 */
PS_MUST_CHECK int ps_bus_publish(ps_bus *bus, const char *topic, size_t len,
                                 unsigned opcode, const void *payload,
                                 size_t payload_len,
                                 const ps_subscriber *exclude);

/* Publishes an already encoded frame (borrowed) through bus->ops->publish.
 * Same returns. */
PS_MUST_CHECK int ps_bus_publish_frame(ps_bus *bus, const char *topic,
                                       size_t len, ps_frame *frame,
                                       const ps_subscriber *exclude);

/*
 * A ps_interest_fn forwarding to the bus passed as ctx: born topics to
 * subscribe_interest, dead ones to unsubscribe_interest (when the bus has
 * them). Wire it with ps_topics_set_interest(topics, ps_bus_on_interest,
 * bus).
 */
void ps_bus_on_interest(void *bus, const char *topic, size_t len, bool alive);

/* Closes the bus (bus->ops->close). NULL is a no-op. */
void ps_bus_close(ps_bus *bus);

/*
 * The in-process bus: publish delivers straight into topics (borrowed; it
 * must outlive the bus) and nowhere else; it needs no interest. Returns the
 * bus (owned by the caller, released with ps_bus_close()), or NULL with
 * errno ENOMEM.
 */
PS_MUST_CHECK ps_bus *ps_bus_local_new(ps_topics *topics);

/*
 * The siblings bus: the processes of one machine that serve the same app
 * (`--processes N`) form a mesh of Unix stream sockets, so a publish in any
 * of them reaches the subscribers of all. Each process listens on an
 * abstract socket named after group and its slot, connects to every other
 * slot, and writes its publishes on those outgoing connections only: one
 * stream per (publisher, receiver) pair keeps each publisher's messages in
 * order. A message is encoded once per publish (a small header shared by
 * every sibling's queue, the frame's payload referenced, not copied) and
 * framed once per receiving process. Peers must run as the same user.
 *
 * A sibling that stops reading gets at most queue_limit bytes queued, then
 * its connection is cut (with a log line) and reconnected later; nothing
 * ever blocks the publisher. Messages sent while a sibling is down are lost
 * for it (its subscribers were cut with it).
 *
 * The bus owns its sockets and drives them from one epoll descriptor,
 * ps_bus_siblings_fd(): the embedder's loop watches it for readability and
 * then calls ps_bus_siblings_service(), on the bus's thread, with whatever
 * guards the registry held (delivery goes into topics).
 */
typedef struct ps_siblings_config {
    const char *group;  /* names the sockets; the same in every sibling, <= 64 bytes */
    unsigned slot;      /* this process: 0 <= slot < count */
    unsigned count;     /* processes in the mesh, 2..PS_SIBLINGS_MAX */
    size_t queue_limit; /* bytes queued for one sibling before it is cut off */
    size_t max_message; /* the largest message taken from a sibling */
    /* Optional: hands each message from a sibling to this instead of delivering it into
     * topics (e.g. to number it first, as topics with history do); frame is borrowed. */
    void (*deliver)(void *ctx, const char *topic, size_t len, ps_frame *frame);
    /* Optional: answers a sibling's count of this process's subscribers instead of
     * topics' count (e.g. when the process keeps more registries than topics). */
    size_t (*count_here)(void *ctx, const char *topic, size_t len);
    void *deliver_ctx; /* for deliver and count_here */
    /* Optional: presence (presence.h). presence_in gets each PRESENCE message a sibling
     * sent (borrowed bytes) with its slot and returns the origin it came from (0: none);
     * presence_link hears that this process's connection to slot is up (up 1: send it a
     * snapshot) or that slot's connection to this one closed (up 0; origin: the last one
     * presence_in returned for it, 0 if none). Neither is called while the bus closes. */
    uint64_t (*presence_in)(void *ctx, unsigned slot, const unsigned char *msg, size_t len);
    void (*presence_link)(void *ctx, unsigned slot, int up, uint64_t origin);
    void *presence_ctx;
} ps_siblings_config;

#define PS_SIBLINGS_MAX 256

/*
 * Creates the bus and its listening socket (topics is borrowed and must
 * outlive the bus). Returns the bus (owned by the caller, released with
 * ps_bus_close()), or NULL with a one-line reason in err and errno set
 * (EINVAL for a bad config, EADDRINUSE when the slot's name is taken).
 */
PS_MUST_CHECK ps_bus *ps_bus_siblings_new(ps_topics *topics,
                                          const ps_siblings_config *cfg,
                                          char *err, size_t errlen);

/* The descriptor to watch for readability (owned by the bus: do not close
 * it; watch a dup() if the loop closes what it watches). */
int ps_bus_siblings_fd(ps_bus *bus);

/* Does whatever the bus's sockets and timers are ready for: accepts,
 * reads and delivers, writes, reconnects, expires counts. Never blocks. */
void ps_bus_siblings_service(ps_bus *bus);

/*
 * Called once a machine-wide count is complete: remote is the sum of the
 * subscribers of the topic that the answering siblings reported, answered
 * how many siblings answered (those not connected, or silent for a second,
 * are left out).
 */
typedef void (*ps_siblings_count_fn)(void *arg, uint64_t remote,
                                     unsigned answered);

/*
 * Asks every connected sibling how many subscribers topic has there. done
 * is called exactly once, from a later ps_bus_siblings_service(), from
 * this call (when no sibling is connected), or from ps_bus_close(). Returns
 * 0, or -ENOMEM (done is then never called).
 */
PS_MUST_CHECK int ps_bus_siblings_count(ps_bus *bus, const char *topic,
                                        size_t len, ps_siblings_count_fn done,
                                        void *arg);

/*
 * Sends a presence message (len bytes, copied) to slot, or to every sibling with
 * PS_SIBLINGS_ALL, on this process's own connections (queued like a publish). Returns the
 * siblings it was queued for, or -ENOMEM / -EMSGSIZE.
 */
#define PS_SIBLINGS_ALL UINT32_MAX
int ps_bus_siblings_presence_send(ps_bus *bus, unsigned slot, const void *msg,
                                  size_t len);

/* Whether bus is a siblings bus. */
int ps_bus_is_siblings(const ps_bus *bus);

/* Counters, for tests and operators. */
typedef struct ps_siblings_stats {
    unsigned peers;        /* the other processes of the mesh (count - 1) */
    unsigned connected;    /* outgoing connections up */
    unsigned accepted;     /* incoming connections up */
    uint64_t sent;         /* messages queued to siblings */
    uint64_t received;     /* messages delivered from siblings */
    uint64_t cut_off;      /* siblings cut off for not reading */
    uint64_t too_large;    /* publishes larger than queue_limit, not sent */
} ps_siblings_stats;
void ps_bus_siblings_stats(ps_bus *bus, ps_siblings_stats *out);

#endif /* PS_BUS_H */
