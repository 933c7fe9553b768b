/*
 * WebSocket connections on the I/O thread, and the thread-safe calls that reach them.
 * See ws.h for the model.
 */
#include "ws.h"

#include <errno.h>
#include <libwebsockets.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bus.h"
#include "lwslog.h"
#include "metrics.h"
#include "bus_redis.h"
#include "redis_lws.h"
#include "presence_link.h"
#include "wsproto.h"
#include "serverlink.h"
#include "queue.h"
#include "topics.h"
#include "history.h"
#include "redis_history.h"
#include "tally.h"
#include <sys/random.h>

_Static_assert(PS_FRAME_HEADROOM >= LWS_PRE, "frames need LWS_PRE bytes in front");

/* Writes at most this many bytes of queued frames with one lws_write(). */
#define GW_WS_COALESCE (64u * 1024u)

/* The 101 answer: its fixed lines and accept key (about 130 bytes) and the extensions. */
#define HANDSHAKE_ANSWER_MAX (160 + GW_WSP_DEFLATE_RESPONSE_MAX)

/* The two close reasons, made when a close starts on either side: an open connection has
 * no use for their 248 bytes (docs/websocket.md, "Memory per connection"). */
typedef struct gw_ws_reasons {
    char ours[124]; /* of the close frame we send */
    char peer[124]; /* of the peer's close frame */
} gw_ws_reasons;

/* The I/O thread's state for one WebSocket connection, from the moment its upgrade is
 * confirmed (wsi is set once the socket has been handed over, see handover()). Every
 * idle connection holds one, so it keeps only what an open connection uses: buffers
 * (the 101, a refusal, the close reasons, the parser's message and inflate state, the
 * send queue's ring) are made when needed and freed when done. */
typedef struct gw_ws_conn {
    int tag;              /* GW_TAG_WS: the wsi's user data is this, not HTTP's */
    uint16_t close_code;  /* set: send a close frame with it once the queue is written */
    uint16_t peer_code;   /* what the peer's close frame said */
    struct lws *wsi;      /* the raw connection, the same one the handshake came on */
    gw_ws_handle *h;
    /* The endpoint's counters (NULL without metrics): kept here, since a fan-out touches
     * the connection anyway and h->route would be two more cache lines per delivery. */
    gw_metrics_endpoint *metrics;
    ps_queue *queue;
    gw_wsp parser;
    char *handshake_out; /* the 101 answer, written before anything else */
    char *refusal;       /* an HTTP answer refusing the upgrade (Python's decision) */
    gw_ws_reasons *reasons; /* NULL until a close starts (or when out of memory then) */
    uint32_t handshake_len;
    uint32_t refusal_len;
    unsigned accepted : 1;    /* Python's pre-check said yes (or there was none) */
    unsigned open : 1;        /* the 101 has been queued: messages may flow */
    unsigned close_sent : 1;
    unsigned close_now : 1;   /* close the TCP connection as soon as the close frame is out */
    unsigned peer_closed : 1;
    unsigned paused : 1;      /* reading stopped because Python's inbox is full */
    unsigned ping_out : 1;    /* a ping is waiting for its pong */
    /* Narrower than size_t: every idle connection holds these (connections stay far
     * below 2^32 by the descriptor limit). */
    uint32_t flush_slot;  /* 1 + its index in hub->flush while marked, else 0 */
    uint32_t conns_index; /* where it is in hub->conns */
    int64_t last_rx_us;  /* when the peer was last heard from */
    int64_t ping_sent_us; /* when the outstanding ping went out */
    char *access_what;    /* "IP METHOD /path" when the access log is on, else NULL */
    int64_t opened_us;
} gw_ws_conn;

/* Where a close reason goes (peer: the peer's, else ours), made on first use; NULL when
 * out of memory, and the close then goes without its reason. */
static char *reason_buffer(gw_ws_conn *c, int peer)
{
    if (!c->reasons) {
        c->reasons = calloc(1, sizeof(*c->reasons));
        if (!c->reasons)
            return NULL;
    }
    return peer ? c->reasons->peer : c->reasons->ours;
}

static const char *our_reason(const gw_ws_conn *c)
{
    return c->reasons ? c->reasons->ours : "";
}

static const char *peer_reason(const gw_ws_conn *c)
{
    return c->reasons ? c->reasons->peer : "";
}

typedef enum {
    CMD_SEND,
    CMD_CLOSE,
    CMD_PUBLISH,
    CMD_RESUME,
    CMD_CLOSE_ALL,
    CMD_ACCEPT,
    CMD_REFUSE,
    CMD_COUNT_EVERYWHERE,
    CMD_SUBSCRIBE,
    CMD_UNSUBSCRIBE,
    CMD_SUBSCRIBE_SINCE, /* a subscribe with a replay of history before it: one command */
    CMD_DELIVER_LOCAL,   /* a message of another process, or a sibling's numbered here */
    CMD_REDIS_HISTORY,   /* a topic with history in Redis: publish, recover or read (req) */
    CMD_INTEREST,        /* to shard 0: another shard's registry has (code 1) or no longer
                          * has (code 0) the topic (the Redis bus with --workers M) */
    CMD_RECOVERED,       /* from shard 0: a Redis recovery's frames for a connection of this
                          * shard (replay), then its join and unpin (code: RECOVERED_*) */
    CMD_UNPIN            /* to shard 0: a recovery's pin of a channel is no longer needed */
} cmd_type;

/* What a CMD_RECOVERED does after queueing its frames. */
enum { RECOVERED_JOIN = 1, RECOVERED_UNPIN = 2 };

struct gw_redis_req;
struct gw_recovery;

struct gw_count_wait;

typedef struct gw_ws_cmd {
    struct gw_ws_cmd *next;
    cmd_type type;
    gw_ws_handle *h; /* a reference, or NULL */
    ps_frame *frame; /* a reference, or NULL */
    int code;
    char *topic; /* PUBLISH, (UN)SUBSCRIBE, COUNT_EVERYWHERE: owned; REFUSE: the HTTP
                  * answer, owned */
    size_t topic_len;
    char reason[124];
    struct gw_count_wait *wait; /* COUNT_EVERYWHERE: a reference */
    ps_frame **replay;          /* SUBSCRIBE_SINCE: references to the frames to send first */
    size_t nreplay;
    struct gw_redis_req *req;   /* REDIS_HISTORY: a reference */
} gw_ws_cmd;

struct gw_ws_hub {
    gw_server *srv;
    gw_ws_config cfg;

    /* The registry: I/O thread only, no lock. Python's subscribes, unsubscribes and
     * publishes reach it as commands, in the order they were made. */
    ps_topics *topics;
    /* Other threads read the bus pointer (stats) under bus_lock. The I/O thread reads it
     * without: it changes only while the I/O thread does not run. */
    pthread_mutex_t bus_lock;
    ps_bus *bus;
    ps_bus *siblings;          /* the bus, when it is the siblings bus (else NULL) */
    struct lws *siblings_wsi;  /* its descriptor, watched by the I/O loop */
    /* The Redis bus's configuration (gw_ws_set_pubsub), its lws host while it runs, and
     * whether publishes go beyond this process (then they are sent even when nobody here
     * listens). */
    ps_redis_config *redis_cfg;
    gw_redis_host *redis_host;
    atomic_int bus_remote;
    gw_presence *presence; /* presence across the bus (presence_link.h) */
    /* Shard 0 with the Redis bus and --workers M: how many shards' registries hold each
     * topic; the bus hears of the process's first birth and last death (I/O thread). */
    ps_tally *interest;

    /* Guards the command queue and the ledger: who Python's calls have subscribed to
     * what (every handle's ledger entry), for the counts publish() and subscribers()
     * answer at once. A subscription changes the ledger in the same critical section that
     * queues its command, so the counts follow the order the registry will apply the
     * commands in. Held for a lookup and a list append, never across a fan-out. */
    pthread_mutex_t cmd_lock;
    gw_ws_cmd *cmd_head, *cmd_tail;
    ps_ledger *ledger;

    pthread_mutex_t ev_lock;
    gw_ws_event *ev_head, *ev_tail;
    /* I/O thread: the events of the read being parsed, handed over together when it is
     * done (see raw_rx), so that the loop thread takes one read's messages in one batch. */
    int ev_batching;
    gw_ws_event *batch_head, *batch_tail;

    /* I/O thread */
    uint64_t next_id;
    uint64_t id_step; /* ids go up by the number of shards: id % M names the shard */
    gw_ws_conn **conns; /* every open connection, for close_all */
    size_t nconns, conns_cap;
    gw_ws_conn **flush; /* given messages by the commands being run (see flush_marked) */
    size_t nflush, flush_cap;
    /* The frame being fanned out by run_publish() and the references to it taken for its
     * subscribers' queues in one go, not used yet (see deliver()). */
    ps_frame *prepaid;
    size_t prepaid_left;
    lws_sorted_usec_list_t ping_timer;

    atomic_size_t slow_closed, slow_dropped, open_count;

    /* gw_ws_test_hold_fanout(): armed is read by the I/O thread per publish command; the
     * rest is under lock, but counting (the deliveries of the held fan-out) is I/O thread
     * only. */
    struct {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        atomic_int armed;
        char *topic;
        size_t len, after;
        int counting;     /* I/O thread: the fan-out running now is the one to hold */
        size_t delivered; /* I/O thread while counting; under lock once held or done */
        int in_use;       /* armed, and its fan-out has not ended */
        int held, released, done;
        size_t reached;
    } hold;

    /* Topics with history (docs/realtime.md). The lock is taken by publishers around
     * "number the message, keep it, queue its command", so that offsets follow the command
     * FIFO; cmd_lock may be taken while it is held, never the other way round. NULL
     * history: no app.topic() asked for any. */
    pthread_mutex_t hist_lock;
    ps_history *history;
    unsigned history_forks; /* the process's fork count when its epochs were named */
    lws_sorted_usec_list_t history_timer;
    /* Subscribes with recovery from Redis in progress (I/O thread). */
    struct gw_recovery *recoveries;
};

/* ---- handles and events ------------------------------------------------------------ */

gw_ws_handle *gw_ws_handle_ref(gw_ws_handle *h)
{
    atomic_fetch_add(&h->refs, 1);
    return h;
}

void gw_ws_handle_unref(gw_ws_handle *h)
{
    if (!h || atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    free(h->handshake);
    /* NULL once the connection left the ledger (conn_gone); a handle outliving its hub
     * still gives back the array of its topics. */
    free(h->ledger.topics);
    free(h);
}

void gw_ws_event_free(gw_ws_event *ev)
{
    if (!ev)
        return;
    gw_ws_handle_unref(ev->conn);
    free(ev->data);
    free(ev);
}

/* Appends the list head..tail to the loop thread's events, waking it when they were none. */
static void hand_events_over(gw_ws_hub *hub, gw_ws_event *head, gw_ws_event *tail)
{
    pthread_mutex_lock(&hub->ev_lock);
    int was_empty = hub->ev_head == NULL;
    if (hub->ev_tail)
        hub->ev_tail->next = head;
    else
        hub->ev_head = head;
    hub->ev_tail = tail;
    pthread_mutex_unlock(&hub->ev_lock);
    if (was_empty)
        gw__wake_loop(hub->srv);
}

static void post_event(gw_ws_hub *hub, gw_ws_event *ev)
{
    ev->next = NULL;
    if (!hub->ev_batching) {
        hand_events_over(hub, ev, ev);
        return;
    }
    if (hub->batch_tail)
        hub->batch_tail->next = ev;
    else
        hub->batch_head = ev;
    hub->batch_tail = ev;
}

/* I/O thread, once a read is parsed: hands its events over in one go. Had each gone on its
 * own, the loop thread, woken by the first, would take a few and the rest later: its
 * handlers would then publish in several batches, and every subscriber would be written to
 * once per batch instead of once. */
static void end_event_batch(gw_ws_hub *hub)
{
    hub->ev_batching = 0;
    if (hub->batch_head)
        hand_events_over(hub, hub->batch_head, hub->batch_tail);
    hub->batch_head = hub->batch_tail = NULL;
}

static gw_ws_event *new_event(int type, gw_ws_handle *h)
{
    gw_ws_event *ev = calloc(1, sizeof(*ev));
    if (ev) {
        ev->type = type;
        ev->conn = gw_ws_handle_ref(h);
    }
    return ev;
}

gw_ws_event *gw_ws_take_events(gw_server *srv)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    pthread_mutex_lock(&hub->ev_lock);
    gw_ws_event *list = hub->ev_head;
    hub->ev_head = hub->ev_tail = NULL;
    pthread_mutex_unlock(&hub->ev_lock);
    return list;
}

/* ---- commands from other threads ---------------------------------------------------- */

static void count_wait_unref(struct gw_count_wait *w);
static void redis_req_unref(struct gw_redis_req *r);

static void cmd_free(gw_ws_cmd *c)
{
    redis_req_unref(c->req);
    for (size_t i = 0; i < c->nreplay; i++)
        ps_frame_unref(c->replay[i]);
    free(c->replay);
    count_wait_unref(c->wait);
    gw_ws_handle_unref(c->h);
    ps_frame_unref(c->frame);
    if (c->type == CMD_REFUSE)
        gw_response_free(c->topic);
    else
        free(c->topic);
    free(c);
}

/* A command of that type about h (a reference is taken; h may be NULL), or NULL. */
static gw_ws_cmd *new_command(cmd_type type, gw_ws_handle *h)
{
    gw_ws_cmd *c = calloc(1, sizeof(*c));
    if (c) {
        c->type = type;
        c->h = h ? gw_ws_handle_ref(h) : NULL;
    }
    return c;
}

/* A command carrying a copy of topic (len bytes, NUL-terminated), or NULL. */
static gw_ws_cmd *new_topic_command(cmd_type type, gw_ws_handle *h, const char *topic,
                                    size_t len)
{
    char *name = len < SIZE_MAX ? malloc(len + 1) : NULL;
    gw_ws_cmd *c = name ? new_command(type, h) : NULL;
    if (!c) {
        free(name);
        return NULL;
    }
    memcpy(name, topic, len);
    name[len] = '\0';
    c->topic = name;
    c->topic_len = len;
    return c;
}

/* Appends c to the queue (cmd_lock held). Returns whether the queue was empty: then the
 * caller wakes the I/O thread once the lock is released. */
static int append_command_locked(gw_ws_hub *hub, gw_ws_cmd *c)
{
    int was_empty = hub->cmd_head == NULL;
    c->next = NULL;
    if (hub->cmd_tail)
        hub->cmd_tail->next = c;
    else
        hub->cmd_head = c;
    hub->cmd_tail = c;
    return was_empty;
}

/*
 * The loop thread's wake-ups, deferred over one pass of its handlers (gw_ws_defer_wakes):
 * the hub whose wake-up this thread holds back, and whether one is owed. Per thread, so a
 * sync worker's commands wake the I/O thread as before.
 */
static __thread gw_ws_hub *wakes_deferred_for; /* shard 0's hub of the deferring process */
static __thread uint64_t wakes_owed;           /* bit k: shard k (k < 64) is owed one */

/* Wakes the I/O thread for the commands just queued, unless this thread defers that. */
static void wake_for_commands(gw_ws_hub *hub)
{
    if (wakes_deferred_for && wakes_deferred_for->srv == gw__server_shard(hub->srv, 0))
        wakes_owed |= (uint64_t)1 << gw__server_shard_index(hub->srv);
    else
        gw__wake_io(hub->srv);
}

void gw_ws_defer_wakes(gw_server *srv)
{
    gw_ws_hub *hub = gw__server_hub(gw__server_shard(srv, 0));
    if (wakes_deferred_for && wakes_deferred_for != hub)
        gw_ws_flush_wakes(wakes_deferred_for->srv);
    wakes_deferred_for = hub;
}

void gw_ws_flush_wakes(gw_server *srv)
{
    gw_ws_hub *hub = gw__server_hub(gw__server_shard(srv, 0));
    if (wakes_deferred_for != hub)
        return;
    wakes_deferred_for = NULL;
    for (unsigned k = 0; wakes_owed; k++, wakes_owed >>= 1)
        if (wakes_owed & 1)
            gw__wake_io(gw__server_shard(hub->srv, k));
}

static void post_command(gw_ws_hub *hub, gw_ws_cmd *c)
{
    pthread_mutex_lock(&hub->cmd_lock);
    int was_empty = append_command_locked(hub, c);
    pthread_mutex_unlock(&hub->cmd_lock);
    if (was_empty)
        wake_for_commands(hub);
}

int gw_ws_send(gw_server *srv, gw_ws_handle *h, unsigned opcode, const void *data, size_t len)
{
    if (atomic_load(&h->gone))
        return -ENOTCONN;
    ps_frame *f = ps_frame_new(opcode, data, len);
    gw_ws_cmd *c = f ? new_command(CMD_SEND, h) : NULL;
    if (!c) {
        ps_frame_unref(f);
        return -ENOMEM;
    }
    c->frame = f;
    size_t pending = atomic_fetch_add(&h->cmd_bytes, ps_frame_wire_len(f)) +
                     ps_frame_wire_len(f) + atomic_load(&h->queued);
    post_command(gw__server_hub(srv), c);
    return pending > gw__server_hub(srv)->cfg.high_water ? 1 : 0;
}

static size_t backlog_of(const gw_ws_handle *h)
{
    return atomic_load(&h->cmd_bytes) + atomic_load(&h->queued);
}

int gw_ws_wait_drain(gw_server *srv, gw_ws_handle *h)
{
    /* Flag first, then look: the I/O thread stores the backlog, then looks at the flag,
     * so one of the two always sees the other (both sequentially consistent). */
    atomic_store(&h->want_drain, 1);
    if (atomic_load(&h->gone) || backlog_of(h) <= gw__server_hub(srv)->cfg.high_water) {
        atomic_store(&h->want_drain, 0);
        return 0;
    }
    return 1;
}

int gw_ws_close(gw_server *srv, gw_ws_handle *h, int code, const char *reason)
{
    if (atomic_load(&h->gone))
        return -ENOTCONN;
    gw_ws_cmd *c = new_command(CMD_CLOSE, h);
    if (!c)
        return -ENOMEM;
    c->code = code;
    snprintf(c->reason, sizeof(c->reason), "%s", reason ? reason : "");
    post_command(gw__server_hub(srv), c);
    return 0;
}

int gw_ws_accept(gw_server *srv, gw_ws_handle *h)
{
    if (atomic_load(&h->gone))
        return -ENOTCONN;
    gw_ws_cmd *c = new_command(CMD_ACCEPT, h);
    if (!c)
        return -ENOMEM;
    post_command(gw__server_hub(srv), c);
    return 0;
}

int gw_ws_refuse(gw_server *srv, gw_ws_handle *h, char *response, size_t len)
{
    if (atomic_load(&h->gone)) {
        gw_response_free(response);
        return -ENOTCONN;
    }
    /* The connection keeps the answer's length in 32 bits. */
    gw_ws_cmd *c = len <= UINT32_MAX ? new_command(CMD_REFUSE, h) : NULL;
    if (!c) {
        gw_response_free(response);
        return -ENOMEM;
    }
    c->topic = response;
    c->topic_len = len;
    post_command(gw__server_hub(srv), c);
    return 0;
}

void gw_ws_close_all(gw_server *srv)
{
    gw_ws_cmd *c = new_command(CMD_CLOSE_ALL, NULL);
    if (!c)
        return;
    c->code = LWS_CLOSE_STATUS_GOINGAWAY;
    snprintf(c->reason, sizeof(c->reason), "server shutting down");
    post_command(gw__server_hub(srv), c);
}

void gw_ws_consumed(gw_server *srv, gw_ws_handle *h, int n)
{
    int half = gw__server_hub(srv)->cfg.inbox_limit / 2;
    int left = atomic_fetch_sub(&h->inbox, n) - n;
    /* Reading pauses only at the limit, so a resume is needed at most when the inbox
     * crosses half of it; the I/O thread checks whether it had paused. */
    if (left <= half && left + n > half && !atomic_load(&h->gone)) {
        gw_ws_cmd *c = new_command(CMD_RESUME, h);
        if (!c)
            return;
        post_command(gw__server_hub(srv), c);
    }
}

/*
 * Subscribing and unsubscribing change the ledger at once and queue the same change for
 * the registry, in one critical section: a publish made after the call is queued behind
 * it, so it reaches the new subscriber (and not the one that left), and its count agrees.
 * The I/O thread applies the command in run_subscribe()/run_unsubscribe().
 */
static int post_subscription(gw_ws_hub *hub, gw_ws_handle *h, cmd_type type, const char *topic,
                             size_t len)
{
    gw_ws_cmd *c = new_topic_command(type, h, topic, len);
    if (!c)
        return -ENOMEM;
    int was_empty = 0;
    pthread_mutex_lock(&hub->cmd_lock);
    int rc = !h->in_ledger             ? -ENOTCONN
             : type == CMD_SUBSCRIBE ? ps_ledger_join(hub->ledger, &h->ledger, topic, len)
                                     : ps_ledger_leave(hub->ledger, &h->ledger, topic, len);
    if (rc == 1)
        was_empty = append_command_locked(hub, c);
    pthread_mutex_unlock(&hub->cmd_lock);
    if (rc != 1)
        cmd_free(c); /* nothing changed: the registry has nothing to do */
    else if (was_empty)
        wake_for_commands(hub);
    return rc;
}

int gw_ws_subscribe(gw_server *srv, gw_ws_handle *h, const char *topic, size_t len)
{
    return post_subscription(gw__server_hub(srv), h, CMD_SUBSCRIBE, topic, len);
}

int gw_ws_unsubscribe(gw_server *srv, gw_ws_handle *h, const char *topic, size_t len)
{
    return post_subscription(gw__server_hub(srv), h, CMD_UNSUBSCRIBE, topic, len);
}

size_t gw_ws_subscribers(gw_server *srv, const char *topic, size_t len)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    pthread_mutex_lock(&hub->cmd_lock);
    size_t n = ps_ledger_count(hub->ledger, topic, len);
    pthread_mutex_unlock(&hub->cmd_lock);
    return n;
}

/* How many the publish reaches (cmd_lock held): the subscribers the ledger has for topic,
 * less the sender when it is one of them. */
static size_t publish_count_locked(gw_ws_hub *hub, const char *topic, size_t len,
                                   const gw_ws_handle *exclude)
{
    size_t n = ps_ledger_count(hub->ledger, topic, len);
    if (n && exclude && exclude->in_ledger &&
        ps_ledger_is_member(hub->ledger, &exclude->ledger, topic, len))
        n--;
    return n;
}

long gw_ws_publish(gw_server *srv, const char *topic, size_t len, unsigned opcode,
                   const void *data, size_t dlen, gw_ws_handle *exclude)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    gw_metrics_published(gw__server_metrics(srv));
    int remote = atomic_load(&hub->bus_remote);
    if (!remote) {
        /* Nobody here and nowhere else: no frame to make. */
        pthread_mutex_lock(&hub->cmd_lock);
        size_t n = publish_count_locked(hub, topic, len, exclude);
        pthread_mutex_unlock(&hub->cmd_lock);
        if (!n)
            return 0;
    }
    /* The payload is copied into its frame outside the lock. */
    ps_frame *f = ps_frame_new(opcode, data, dlen);
    gw_ws_cmd *c = f ? new_topic_command(CMD_PUBLISH, exclude, topic, len) : NULL;
    if (!c) {
        ps_frame_unref(f);
        return -ENOMEM;
    }
    c->frame = f;
    /* Counted again as it is queued: the count is the one the registry will see when it runs
     * the command, subscriptions queued before it included. */
    pthread_mutex_lock(&hub->cmd_lock);
    size_t n = publish_count_locked(hub, topic, len, exclude);
    int was_empty = append_command_locked(hub, c);
    pthread_mutex_unlock(&hub->cmd_lock);
    if (was_empty)
        wake_for_commands(hub);
    return (long)n;
}

void gw_ws_get_stats(gw_server *srv, gw_ws_stats *out)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    out->connections = atomic_load(&hub->open_count);
    pthread_mutex_lock(&hub->cmd_lock);
    out->topics = ps_ledger_topics(hub->ledger);
    pthread_mutex_unlock(&hub->cmd_lock);
    out->slow_closed = atomic_load(&hub->slow_closed);
    out->slow_dropped = atomic_load(&hub->slow_dropped);
}

/* ---- the I/O thread ----------------------------------------------------------------- */

static int64_t now_us(void)
{
    return (int64_t)lws_now_usecs();
}

static void flush_marked(gw_ws_hub *hub);

static void wake_writer(gw_ws_conn *c)
{
    if (c->wsi)
        lws_callback_on_writable(c->wsi);
}

/* I/O thread, while commands run: the connection has new messages; flush_marked() writes
 * them once the batch of commands is done, without waiting for a poll round to report the
 * socket writable. */
static void mark_for_flush(gw_ws_hub *hub, gw_ws_conn *c)
{
    if (c->flush_slot)
        return;
    if (hub->nflush == hub->flush_cap) {
        size_t cap = hub->flush_cap ? hub->flush_cap * 2 : 64;
        gw_ws_conn **flush = realloc(hub->flush, cap * sizeof(*flush));
        if (!flush) {
            wake_writer(c);
            return;
        }
        hub->flush = flush;
        hub->flush_cap = cap;
    }
    hub->flush[hub->nflush++] = c;
    c->flush_slot = (uint32_t)hub->nflush;
}

/* Asks for a close frame with code once what is queued has been written. `now`: close the
 * TCP connection right after it instead of waiting for the peer's close frame (protocol
 * errors, a slow consumer). */
static void request_close(gw_ws_conn *c, int code, const char *reason, int now)
{
    if (now)
        c->close_now = 1;
    if (c->close_code)
        return;
    c->close_code = (uint16_t)code;
    char *buf = reason_buffer(c, 0);
    if (buf)
        snprintf(buf, sizeof(c->reasons->ours), "%s", reason);
    wake_writer(c);
}

/* I/O thread: publishes the queue's size to Python and wakes a waiting sender once the
 * backlog is back under the high-water mark. */
static void update_backlog(gw_ws_hub *hub, gw_ws_conn *c)
{
    gw_ws_handle *h = c->h;
    atomic_store(&h->queued, ps_queue_footprint(c->queue));
    if (atomic_load(&h->want_drain) && backlog_of(h) <= hub->cfg.high_water) {
        atomic_store(&h->want_drain, 0);
        gw_ws_event *ev = new_event(GW_WS_DRAINED, h);
        if (ev)
            post_event(hub, ev);
    }
}

static void slow_consumer(gw_ws_hub *hub, gw_ws_conn *c)
{
    atomic_fetch_add(&hub->slow_closed, 1);
    gw_metrics_ws_slow_closed(c->metrics);
    ps_queue_clear(c->queue);
    atomic_store(&c->h->queued, 0);
    request_close(c, 1008, "send queue over its limit", 1);
}

/* The bytes c gets for message f: its shared compressed variant when c negotiated
 * permessage-deflate and f is at least the endpoint's threshold, else f itself. The
 * variant is made by the first subscriber that needs it and found by the others. */
static ps_frame *outgoing(const gw_ws_conn *c, ps_frame *f)
{
    unsigned bits = gw_wsp_server_window(&c->parser);
    if (!bits || ps_frame_payload_len(f) < c->h->route->ws.compress_threshold)
        return f;
    return ps_frame_deflated(f, bits);
}

/* Queues frame for c. The send queue is made on the first frame: a connection nothing is
 * sent to (an idle subscriber) holds none. Returns what ps_queue_push() returns, or
 * -ENOMEM when the queue cannot be made (treated like a failed push). */
/* As queue_frame(); owned: the queue keeps one of the references run_publish() took for
 * the fan-out (ps_queue_push_owned()) instead of taking its own. */
static int queue_frame_as(gw_ws_hub *hub, gw_ws_conn *c, ps_frame *frame, int owned)
{
    if (!c->queue && !(c->queue = ps_queue_new(hub->cfg.high_water, hub->cfg.send_limit)))
        return -ENOMEM;
    return owned ? ps_queue_push_owned(c->queue, frame) : ps_queue_push(c->queue, frame);
}

static int queue_frame(gw_ws_hub *hub, gw_ws_conn *c, ps_frame *frame)
{
    return queue_frame_as(hub, c, frame, 0);
}

/* The moment timeout_ms from now, for pthread_cond_timedwait(). */
static struct timespec deadline_in(unsigned timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

/* I/O thread, in the middle of the held fan-out: stops until released (or 10 s). */
static void hold_here(gw_ws_hub *hub)
{
    struct timespec until = deadline_in(10000);
    pthread_mutex_lock(&hub->hold.lock);
    hub->hold.held = 1;
    pthread_cond_broadcast(&hub->hold.cond);
    while (!hub->hold.released &&
           pthread_cond_timedwait(&hub->hold.cond, &hub->hold.lock, &until) == 0) {
    }
    hub->hold.held = 0;
    pthread_mutex_unlock(&hub->hold.lock);
}

/* Topic delivery (I/O thread, no lock held): queue the shared frame for this
 * subscriber, or apply the endpoint's policy when its queue is full. */
static int deliver(void *ctx, ps_subscriber *sub, ps_frame *frame)
{
    gw_ws_hub *hub = ctx;
    gw_ws_conn *c = ps_subscriber_user(sub);
    if (!c || c->close_code)
        return -1;
    /* A deflate subscriber's variant is another frame: the references prepaid for the
     * fan-out are the plain frame's. */
    ps_frame *out = outgoing(c, frame);
    int owned = out == hub->prepaid && hub->prepaid_left > 0;
    int rc = queue_frame_as(hub, c, out, owned);
    if (rc == PS_SEND_OK || rc == PS_SEND_BACKPRESSURE) {
        hub->prepaid_left -= (size_t)owned;
        /* h->queued is brought up to date by flush_marked(), once per connection: stored
         * here, its fence and the handle's cache line cost more than the push itself. */
        mark_for_flush(hub, c);
        gw_metrics_ws_delivered(c->metrics);
        if (hub->hold.counting && ++hub->hold.delivered == hub->hold.after)
            hold_here(hub);
        return 0;
    }
    if (c->h->route->ws.policy == GW_WS_POLICY_DROP) {
        atomic_fetch_add(&hub->slow_dropped, 1);
        gw_metrics_ws_dropped(c->metrics);
        return -1;
    }
    slow_consumer(hub, c);
    return -1;
}

static int track_conn(gw_ws_hub *hub, gw_ws_conn *c)
{
    if (hub->nconns == hub->conns_cap) {
        size_t cap = hub->conns_cap ? hub->conns_cap * 2 : 64;
        gw_ws_conn **conns = realloc(hub->conns, cap * sizeof(*conns));
        if (!conns)
            return -ENOMEM;
        hub->conns = conns;
        hub->conns_cap = cap;
    }
    c->conns_index = (uint32_t)hub->nconns;
    hub->conns[hub->nconns++] = c;
    return 0;
}

/* O(1), so that closing 10,000 connections at once is not quadratic. */
static void untrack_conn(gw_ws_hub *hub, gw_ws_conn *c)
{
    size_t i = c->conns_index;
    if (i >= hub->nconns || hub->conns[i] != c)
        return; /* never tracked (adoption failed) */
    hub->conns[i] = hub->conns[--hub->nconns];
    hub->conns[i]->conns_index = (uint32_t)i;
}

/* The connection is gone (or never completed its upgrade): tells Python with the code it
 * ended with, and frees the I/O side. */
static void conn_gone(gw_ws_hub *hub, gw_ws_conn *c)
{
    gw_ws_handle *h = c->h;
    ps_subscriber_free(h->sub);
    h->sub = NULL;
    /* Counts drop now; commands about h still queued find it gone. */
    pthread_mutex_lock(&hub->cmd_lock);
    ps_ledger_leave_all(hub->ledger, &h->ledger);
    h->in_ledger = 0;
    pthread_mutex_unlock(&hub->cmd_lock);
    atomic_store(&h->gone, 1);
    h->io = NULL;
    if (c->flush_slot)
        hub->flush[c->flush_slot - 1] = NULL;
    untrack_conn(hub, c);
    atomic_fetch_sub(&hub->open_count, 1);
    if (c->open) /* with the code on_close gets, below */
        gw_metrics_ws_closed(gw__server_endpoint(hub->srv, h->route),
                             c->peer_closed  ? c->peer_code
                             : c->close_sent ? c->close_code : 1006);

    gw_ws_event *ev = new_event(GW_WS_CLOSE, h);
    if (ev) {
        /* The peer's code when it sent a close frame, ours when we sent one, else 1006. */
        if (c->peer_closed) {
            ev->code = c->peer_code;
            snprintf(ev->reason, sizeof(ev->reason), "%s", peer_reason(c));
        } else if (c->close_sent || c->refusal) {
            ev->code = c->close_code;
            snprintf(ev->reason, sizeof(ev->reason), "%s", our_reason(c));
        } else {
            ev->code = 1006;
        }
        post_event(hub, ev);
    }
    if (c->access_what) {
        /* docs/cli.md: "IP GET /path close CODE µs", the code as on_close gets it. */
        int code = c->peer_closed ? c->peer_code
                   : (c->close_sent || c->refusal) ? c->close_code : 1006;
        char line[GW_LWSLOG_LINE];
        snprintf(line, sizeof(line), "%s close %d %lld", c->access_what, code,
                 (long long)(now_us() - c->opened_us));
        gw_lwslog_emit(GW_LOG_ACCESS, line);
        free(c->access_what);
    }
    gw_wsp_free(&c->parser);
    ps_queue_free(c->queue);
    gw_response_free(c->handshake_out);
    gw_response_free(c->refusal);
    free(c->reasons);
    free(c);
    gw_ws_handle_unref(h);
}

/* Once a second: pings the connections silent for ping_interval, drops those whose ping
 * has gone unanswered (by a pong or anything else) for ping_timeout, and trims empty send
 * queues. */
static void ping_sweep(lws_sorted_usec_list_t *sul)
{
    gw_ws_hub *hub = lws_container_of(sul, gw_ws_hub, ping_timer);
    int64_t now = now_us();
    int64_t interval = (int64_t)hub->cfg.ping_interval * 1000000;
    int64_t timeout = (int64_t)hub->cfg.ping_timeout * 1000000;
    for (size_t i = 0; i < hub->nconns; i++) {
        gw_ws_conn *c = hub->conns[i];
        /* An emptied send queue keeps its slots for the next round of messages; one this
         * sweep finds empty gives them back, so a connection idle for a second holds none
         * (with pings off they stay until it closes, bounded by its send limit). */
        ps_queue_trim(c->queue);
        if (!c->open || c->close_code)
            continue;
        if (c->ping_out) {
            if (now - c->ping_sent_us >= timeout)
                /* No answer: the peer is gone; drop it (Python sees 1006). */
                lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
        } else if (now - c->last_rx_us >= interval) {
            ps_frame *ping = ps_frame_new(PS_OP_PING, NULL, 0);
            if (ping && queue_frame(hub, c, ping) != PS_SEND_DROPPED) {
                c->ping_out = 1;
                c->ping_sent_us = now;
                wake_writer(c);
            }
            ps_frame_unref(ping);
        }
    }
    if (gw__server_context(hub->srv))
        lws_sul_schedule(gw__server_context(hub->srv), 0, &hub->ping_timer, ping_sweep, LWS_US_PER_SEC);
}

/* The upgrade is accepted: the 101 goes out first, then whatever is queued. */
static void open_conn(gw_ws_hub *hub, gw_ws_conn *c)
{
    c->accepted = 1;
    c->open = 1;
    c->last_rx_us = now_us();
    gw_metrics_ws_opened(c->metrics);
    gw_metrics_observe(gw__server_metrics(hub->srv), 101, c->last_rx_us - c->opened_us);
    if (hub->cfg.ping_interval && lws_dll2_is_detached(&hub->ping_timer.list))
        lws_sul_schedule(gw__server_context(hub->srv), 0, &hub->ping_timer, ping_sweep, LWS_US_PER_SEC);
    gw_ws_event *ev = new_event(GW_WS_OPEN, c->h);
    if (ev)
        post_event(hub, ev);
    else
        request_close(c, 1011, "out of memory", 1);
    wake_writer(c);
}

static void run_count_everywhere(gw_ws_hub *hub, gw_ws_cmd *cmd);
static void run_subscribe_since(gw_ws_hub *hub, gw_ws_cmd *cmd);
static void run_redis_history(gw_ws_hub *hub, gw_ws_cmd *cmd);
static void run_recovered(gw_ws_hub *hub, gw_ws_cmd *cmd);
static void merge_interest(gw_ws_hub *hub, const char *topic, size_t len, bool alive);

/* Whether this publish is the one gw_ws_test_hold_fanout() waits for; if so its fan-out
 * counts deliveries (see deliver()). */
static int hold_begins(gw_ws_hub *hub, const gw_ws_cmd *cmd)
{
    if (cmd->topic_len != hub->hold.len || memcmp(cmd->topic, hub->hold.topic, cmd->topic_len))
        return 0;
    atomic_store(&hub->hold.armed, 0);
    hub->hold.counting = 1;
    hub->hold.delivered = 0;
    return 1;
}

static void hold_ends(gw_ws_hub *hub, int reached)
{
    hub->hold.counting = 0;
    pthread_mutex_lock(&hub->hold.lock);
    hub->hold.done = 1;
    hub->hold.in_use = 0;
    hub->hold.reached = reached < 0 ? 0 : (size_t)reached;
    pthread_cond_broadcast(&hub->hold.cond);
    pthread_mutex_unlock(&hub->hold.lock);
}

/*
 * The fan-out of a publish command. The references its subscribers' queues keep are taken
 * in one atomic addition beforehand and handed out by deliver(): taken one by one, each is
 * a locked instruction, which waits for the fan-out's stores to cold cache lines before it
 * (4% of the I/O thread at 10,000 subscribers). The command's own reference outlives the
 * fan-out, so the frame cannot be freed while some of them are still unused.
 */
static void run_publish(gw_ws_hub *hub, gw_ws_cmd *cmd)
{
    int held = atomic_load_explicit(&hub->hold.armed, memory_order_acquire) &&
               hold_begins(hub, cmd);
    size_t n = ps_topics_subscriber_count(hub->topics, cmd->topic, cmd->topic_len);
    if (n > 1) {
        hub->prepaid = ps_frame_ref_many(cmd->frame, n);
        hub->prepaid_left = n;
    }
    int reached = ps_bus_publish_frame(hub->bus, cmd->topic, cmd->topic_len, cmd->frame,
                                       cmd->h ? cmd->h->sub : NULL);
    if (hub->prepaid) {
        ps_frame_unref_many(hub->prepaid, hub->prepaid_left);
        hub->prepaid = NULL;
        hub->prepaid_left = 0;
    }
    if (reached < 0)
        lwsl_warn("gateway: publish to a topic failed\n");
    if (held)
        hold_ends(hub, reached);
}

/* A subscription that did not happen after all: hub's ledger (the connection's own shard's)
 * forgets it, unless the connection has left the ledger already. */
static void ledger_forget(gw_ws_hub *hub, gw_ws_handle *h, const char *topic, size_t len)
{
    pthread_mutex_lock(&hub->cmd_lock);
    if (h->in_ledger)
        (void)ps_ledger_leave(hub->ledger, &h->ledger, topic, len);
    pthread_mutex_unlock(&hub->cmd_lock);
}

/* Whether the connection still wants topic (it has not unsubscribed or left meanwhile). */
static int ledger_wants(gw_ws_hub *hub, gw_ws_handle *h, const char *topic, size_t len)
{
    pthread_mutex_lock(&hub->cmd_lock);
    int wanted = h->in_ledger && ps_ledger_is_member(hub->ledger, &h->ledger, topic, len);
    pthread_mutex_unlock(&hub->cmd_lock);
    return wanted;
}

/* The registry catches up with a subscribe the ledger already has. Without memory for it
 * the two would disagree (counted, never delivered to): the ledger forgets it and the
 * connection ends with 1011, as an out-of-memory upgrade does. */
static void run_subscribe(gw_ws_hub *hub, gw_ws_cmd *cmd)
{
    gw_ws_handle *h = cmd->h;
    if (!h->sub || ps_topics_subscribe(h->sub, cmd->topic, cmd->topic_len) >= 0)
        return; /* gone meanwhile (its ledger entry went with it), or done */
    ledger_forget(hub, h, cmd->topic, cmd->topic_len);
    lwsl_err("gateway: out of memory subscribing a connection; closing it\n");
    if (h->io)
        request_close(h->io, 1011, "out of memory", 1);
}

static void run_command(gw_ws_hub *hub, gw_ws_cmd *cmd)
{
    gw_ws_conn *c = cmd->h ? cmd->h->io : NULL;
    switch (cmd->type) {
    case CMD_SEND:
        atomic_fetch_sub(&cmd->h->cmd_bytes, ps_frame_wire_len(cmd->frame));
        if (!c || c->close_code)
            break;
        /* A direct send is already paced by its sender awaiting the high-water mark (so
         * one message bigger than the limit goes into a queue under the mark): refused,
         * it comes from a sender that does not wait, and the connection is closed. */
        if (queue_frame(hub, c, outgoing(c, cmd->frame)) == PS_SEND_DROPPED) {
            slow_consumer(hub, c);
            break;
        }
        atomic_store(&cmd->h->queued, ps_queue_footprint(c->queue));
        mark_for_flush(hub, c);
        gw_metrics_ws_sent(c->metrics);
        break;
    case CMD_CLOSE:
        if (c)
            request_close(c, cmd->code, cmd->reason, 0);
        break;
    case CMD_PUBLISH:
        run_publish(hub, cmd);
        break;
    case CMD_SUBSCRIBE:
        run_subscribe(hub, cmd);
        break;
    case CMD_UNSUBSCRIBE:
        if (cmd->h->sub)
            (void)ps_topics_unsubscribe(cmd->h->sub, cmd->topic, cmd->topic_len);
        break;
    case CMD_RESUME:
        if (c && c->wsi && c->paused && atomic_load(&cmd->h->inbox) <= hub->cfg.inbox_limit / 2) {
            c->paused = 0;
            lws_rx_flow_control(c->wsi, 1);
        }
        break;
    case CMD_CLOSE_ALL:
        for (size_t i = 0; i < hub->nconns; i++)
            request_close(hub->conns[i], cmd->code, cmd->reason, 0);
        break;
    case CMD_ACCEPT:
        if (c && !c->accepted && !c->refusal)
            open_conn(hub, c);
        break;
    case CMD_REFUSE:
        if (c && !c->accepted && !c->refusal) {
            c->refusal = cmd->topic;
            c->refusal_len = (uint32_t)cmd->topic_len;
            gw_metrics_observe(gw__server_metrics(hub->srv),
                               gw_metrics_status_of(c->refusal, c->refusal_len),
                               now_us() - c->opened_us);
            cmd->topic = NULL;
            c->close_code = 1008;
            char *buf = reason_buffer(c, 0);
            if (buf)
                snprintf(buf, sizeof(c->reasons->ours), "upgrade refused");
            wake_writer(c);
        }
        break;
    case CMD_COUNT_EVERYWHERE:
        run_count_everywhere(hub, cmd);
        break;
    case CMD_SUBSCRIBE_SINCE:
        run_subscribe_since(hub, cmd);
        break;
    case CMD_DELIVER_LOCAL:
        (void)ps_topics_publish(hub->topics, cmd->topic, cmd->topic_len, cmd->frame, NULL);
        break;
    case CMD_REDIS_HISTORY:
        run_redis_history(hub, cmd);
        break;
    case CMD_INTEREST:
        merge_interest(hub, cmd->topic, cmd->topic_len, cmd->code != 0);
        break;
    case CMD_RECOVERED:
        run_recovered(hub, cmd);
        break;
    case CMD_UNPIN:
        if (ps_bus_is_redis(hub->bus))
            ps_bus_redis_unpin(hub->bus, cmd->topic, cmd->topic_len);
        break;
    }
}

void gw_ws_run_commands(gw_server *srv)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    pthread_mutex_lock(&hub->cmd_lock);
    gw_ws_cmd *c = hub->cmd_head;
    hub->cmd_head = hub->cmd_tail = NULL;
    pthread_mutex_unlock(&hub->cmd_lock);
    while (c) {
        gw_ws_cmd *next = c->next;
        run_command(hub, c);
        cmd_free(c);
        c = next;
    }
    flush_marked(hub);
}

/* Whether origin (len bytes) is in the route's allow-list. */
static int origin_allowed(const gw_route *route, const char *origin, size_t len)
{
    const char *o = route->ws.origins;
    if (!o)
        return 1;
    for (; *o; o += strlen(o) + 1)
        if (strlen(o) == len && !strncasecmp(o, origin, len))
            return 1;
    return 0;
}

static const gw_wsp_callbacks frame_callbacks;

/* The value of header name (lower-case) in the handshake, copied into out (cap bytes,
 * NUL-terminated); returns its length, or -1 when absent or too long. */
static int header_copy(const gw_request *req, const char *name, char *out, size_t cap)
{
    size_t len;
    const char *v = gw_request_header(req, name, strlen(name), &len);
    if (!v || len >= cap)
        return -1;
    memcpy(out, v, len);
    out[len] = '\0';
    return (int)len;
}

int gw__ws_upgrade(gw_server *srv, struct lws *wsi, gw_request *req, const char *rest,
                   size_t rest_len, const char **extra, const char **body,
                   const char *access_what)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    char buf[256];
    *extra = NULL;
    int status = 0;
    if (req->method != GW_METHOD_GET) {
        status = 400, *body = "WebSocket handshakes use GET";
        goto refuse;
    }
    if (header_copy(req, "sec-websocket-version", buf, sizeof(buf)) < 0 || strcmp(buf, "13")) {
        status = 426, *body = "Unsupported WebSocket version";
        *extra = "sec-websocket-version: 13\r\n";
        goto refuse;
    }
    char accept[29];
    int n = header_copy(req, "sec-websocket-key", buf, sizeof(buf));
    if (n <= 0 || gw_wsp_accept_key(buf, (size_t)n, accept)) {
        status = 400, *body = "Invalid Sec-WebSocket-Key";
        goto refuse;
    }
    if (gw__server_draining(srv)) {
        status = 503, *body = "Service Unavailable";
        goto refuse;
    }
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int nparams = 0;
    gw_route *route = gw_router_match(gw__server_router(srv), GW_METHOD_WS, req->buf + req->path_off,
                                      req->path_len, params, &nparams, NULL);
    if (!route) {
        status = 404, *body = "Not Found";
        goto refuse;
    }
    if (route->ws.origins) {
        char origin[512];
        int olen = header_copy(req, "origin", origin, sizeof(origin));
        if (olen <= 0 || !origin_allowed(route, origin, (size_t)olen)) {
            status = 403, *body = "Origin not allowed";
            goto refuse;
        }
    }
    if (atomic_load(&hub->open_count) >= hub->cfg.max_connections) {
        status = 503, *body = "Too many connections";
        goto refuse;
    }
    int deflate = 0;
    gw_wsp_deflate_params deflate_terms;
    if (route->ws.compress) {
        size_t elen;
        const char *ext = gw_request_header(req, "sec-websocket-extensions", 24, &elen);
        deflate = ext && gw_wsp_parse_deflate_offer(ext, elen, &deflate_terms);
    }
    /* The path parameters, copied into the request (they point into its path). */
    size_t need = 0;
    for (int i = 0; i < nparams; i++)
        need += params[i].name_len + params[i].value_len + 2;
    if (gw_request_reserve(req, need)) {
        status = 503, *body = "Service Unavailable";
        goto refuse;
    }
    req->param_at = req->npairs;
    for (int i = 0; i < nparams; i++) {
        if (gw_request_add_pair(req, params[i].name, params[i].name_len, params[i].value,
                                params[i].value_len)) {
            status = 503, *body = "Service Unavailable";
            goto refuse;
        }
        req->nparams++;
    }
    req->route = route;
    /* The handshake stays with the connection for Python (headers, query, parameters),
     * packed into a block of its own; the request goes back to its pool at the end. */
    gw_packed_request *kept = gw_request_pack(req);

    gw_ws_conn *c = kept ? calloc(1, sizeof(*c)) : NULL;
    gw_ws_handle *h = c ? calloc(1, sizeof(*h)) : NULL;
    char *answer = h ? gw_response_alloc(HANDSHAKE_ANSWER_MAX) : NULL;
    if (!c || !h || !answer || track_conn(hub, c)) {
        gw_response_free(answer);
        free(h);
        free(c);
        free(kept);
        status = 503, *body = "Service Unavailable";
        goto refuse;
    }
    c->tag = GW_TAG_WS;
    c->wsi = wsi;
    c->last_rx_us = now_us();
    c->opened_us = c->last_rx_us;
    /* Without memory for it, the connection goes on unlogged rather than refused. */
    c->access_what = access_what ? strdup(access_what) : NULL;
    char extensions[GW_WSP_DEFLATE_RESPONSE_MAX] = "";
    if (deflate)
        gw_wsp_deflate_response(&deflate_terms, extensions);
    c->handshake_len = (uint32_t)snprintf(
        answer, HANDSHAKE_ANSWER_MAX,
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        "sec-websocket-accept: %s\r\n%s%s%s\r\n",
        accept, deflate ? "sec-websocket-extensions: " : "", extensions, deflate ? "\r\n" : "");
    c->handshake_out = answer;
    gw_wsp_init_deflate(&c->parser, hub->cfg.max_message, deflate ? &deflate_terms : NULL);
    c->h = h;
    c->metrics = gw__server_endpoint(srv, route);
    c->peer_code = 1005;
    atomic_init(&h->refs, 1); /* the I/O side's reference, dropped in conn_gone */
    h->id = (hub->next_id += hub->id_step);
    h->route = route;
    h->handshake = kept;
    h->io = c;
    lws_set_opaque_user_data(wsi, c);

    char route_topic[64];
    int tl = snprintf(route_topic, sizeof(route_topic), GW_WS_ROUTE_TOPIC_FMT,
                      (const void *)route);
    h->sub = ps_subscriber_new(hub->topics, h->id, c);
    int rc = h->sub ? ps_topics_subscribe(h->sub, route_topic, (size_t)tl) : -ENOMEM;
    if (rc >= 0) {
        pthread_mutex_lock(&hub->cmd_lock);
        h->in_ledger = 1;
        rc = ps_ledger_join(hub->ledger, &h->ledger, route_topic, (size_t)tl);
        pthread_mutex_unlock(&hub->cmd_lock);
    }
    atomic_fetch_add(&hub->open_count, 1);
    if (rc < 0) {
        request_close(c, 1011, "out of memory", 1);
    } else if (route->ws.precheck) {
        /* Python decides (on_connect) while the client waits for its answer. */
        gw_ws_event *ev = new_event(GW_WS_HANDSHAKE, h);
        if (ev)
            post_event(hub, ev);
        else
            request_close(c, 1011, "out of memory", 1);
    } else {
        open_conn(hub, c);
    }
    /* Frames a client sent right behind its handshake, without waiting for the 101. */
    if (rest_len && !c->close_code) {
        gw_metrics_ws_bytes_in(gw__server_endpoint(srv, route), rest_len);
        const char *why = "";
        int frc = gw_wsp_feed(&c->parser, (const unsigned char *)rest, rest_len, &frame_callbacks, c, &why);
        if (frc > 0)
            request_close(c, frc, why, 1);
    }
    gw_request_release(req);
    return 0;
refuse:
    gw_request_release(req);
    return status;
}

/* ---- frames from the peer ----------------------------------------------------------- */

static int on_frame_message(void *ctx, int binary, unsigned char *data, size_t len)
{
    gw_ws_conn *c = ctx;
    gw_ws_hub *hub = gw__server_hub(lws_context_user(lws_get_context(c->wsi)));
    if (c->close_code) {
        free(data);
        return 0;
    }
    gw_metrics_ws_received(c->metrics);
    gw_ws_event *ev = new_event(GW_WS_MESSAGE, c->h);
    if (!ev) {
        free(data);
        return -1;
    }
    ev->data = data;
    ev->len = len;
    ev->binary = binary;
    if (atomic_fetch_add(&c->h->inbox, 1) + 1 >= hub->cfg.inbox_limit && !c->paused) {
        c->paused = 1;
        lws_rx_flow_control(c->wsi, 0);
    }
    post_event(hub, ev);
    return 0;
}

static int on_frame_ping(void *ctx, const unsigned char *data, size_t len)
{
    gw_ws_conn *c = ctx;
    if (c->close_code)
        return 0;
    ps_frame *pong = ps_frame_new(PS_OP_PONG, data, len);
    if (!pong)
        return -1;
    gw_ws_hub *hub = gw__server_hub(lws_context_user(lws_get_context(c->wsi)));
    if (queue_frame(hub, c, pong) != PS_SEND_DROPPED)
        wake_writer(c);
    ps_frame_unref(pong);
    return 0;
}

static int on_frame_pong(void *ctx, const unsigned char *data, size_t len)
{
    gw_ws_conn *c = ctx;
    (void)data;
    (void)len;
    c->ping_out = 0;
    return 0;
}

static int on_frame_close(void *ctx, int code, const char *reason, size_t reason_len)
{
    gw_ws_conn *c = ctx;
    c->peer_closed = 1;
    c->peer_code = (uint16_t)code;
    char *buf = reason_buffer(c, 1);
    if (buf) {
        size_t n = reason_len < sizeof(c->reasons->peer) - 1 ? reason_len : sizeof(c->reasons->peer) - 1;
        memcpy(buf, reason, n);
        buf[n] = '\0';
    }
    if (c->close_sent)
        return 1; /* the handshake is complete: close the TCP connection */
    /* Echo it (RFC 6455 5.5.1), after what is queued, then close. */
    request_close(c, code == 1005 ? 1000 : code, "", 1);
    return 0;
}

static const gw_wsp_callbacks frame_callbacks = {
    on_frame_message, on_frame_ping, on_frame_pong, on_frame_close,
};

/* Writes what is queued (at least one frame): one frame straight from its shared buffer,
 * or several small ones copied into one write. Asks for WRITEABLE while more remains.
 * Returns -1 when the connection must close. */
static int write_queued(gw_ws_hub *hub, gw_ws_conn *c, struct lws *wsi)
{
    size_t off;
    ps_frame *f = ps_queue_peek(c->queue, &off);
    size_t written = 0;
    const unsigned char *wire = ps_frame_wire(f) + off;
    size_t wlen = ps_frame_wire_len(f) - off;
    if (wlen >= GW_WS_COALESCE || ps_queue_count(c->queue) == 1) {
        /* One frame: written straight from the shared buffer, no copy. */
        if (lws_write(wsi, (unsigned char *)wire, wlen, LWS_WRITE_RAW) < 0)
            return -1;
        gw_metrics_ws_bytes_out(c->metrics, wlen);
        if (ps_queue_consume(c->queue, wlen) < 0)
            return -1;
    } else {
        /* Several small frames: one write instead of one per frame. */
        static __thread unsigned char scratch[LWS_PRE + GW_WS_COALESCE];
        unsigned char *p = scratch + LWS_PRE;
        while ((f = ps_queue_peek(c->queue, &off))) {
            wlen = ps_frame_wire_len(f) - off;
            if (written + wlen > GW_WS_COALESCE)
                break;
            memcpy(p + written, ps_frame_wire(f) + off, wlen);
            written += wlen;
            if (ps_queue_consume(c->queue, wlen) < 0)
                return -1;
        }
        if (lws_write(wsi, p, written, LWS_WRITE_RAW) < 0)
            return -1;
        gw_metrics_ws_bytes_out(c->metrics, written);
    }
    update_backlog(hub, c);
    if (ps_queue_count(c->queue) || c->close_code)
        lws_callback_on_writable(wsi);
    return 0;
}

/* Whether messages can be written to c at once: its 101 is out, no close is under way, and
 * nothing of an earlier write is still waiting in lws. */
static int writable_now(const gw_ws_conn *c)
{
    return c->wsi && c->open && !c->handshake_out && !c->refusal && !c->close_code &&
           ps_queue_count(c->queue) && !lws_partial_buffered(c->wsi);
}

/* I/O thread, after a batch of commands: writes the messages they queued. Writing here
 * instead of asking lws for WRITEABLE saves, per connection and message, turning POLLOUT
 * on and off and a trip through poll(). What the socket does not take waits for WRITEABLE
 * as before. */
static void flush_marked(gw_ws_hub *hub)
{
    for (size_t i = 0; i < hub->nflush; i++) {
        gw_ws_conn *c = hub->flush[i];
        if (!c)
            continue; /* gone meanwhile */
        c->flush_slot = 0;
        if (!writable_now(c)) {
            atomic_store(&c->h->queued, ps_queue_footprint(c->queue));
            wake_writer(c);
            continue;
        }
        /* Outside its own callback a failed write cannot close the connection: ask lws. */
        if (write_queued(hub, c, c->wsi) < 0)
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    }
    hub->nflush = 0;
}

static int raw_writeable(gw_ws_hub *hub, gw_ws_conn *c, struct lws *wsi)
{
    if (c->refusal) {
        /* Python refused the upgrade: its HTTP answer, then close. */
        lws_write(wsi, (unsigned char *)c->refusal, c->refusal_len, LWS_WRITE_RAW);
        return -1;
    }
    if (!c->open)
        return 0; /* nothing goes out before the 101 */
    if (c->handshake_out) {
        int n = lws_write(wsi, (unsigned char *)c->handshake_out, c->handshake_len, LWS_WRITE_RAW);
        gw_response_free(c->handshake_out);
        c->handshake_out = NULL;
        if (n < 0)
            return -1;
        if (ps_queue_count(c->queue) || c->close_code)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (!ps_queue_count(c->queue)) {
        if (!c->close_code || c->close_sent)
            return 0;
        /* A close goes out after what was queued before it. */
        unsigned char frame[LWS_PRE + 2 + 125];
        size_t plen = gw_wsp_close_payload(frame + LWS_PRE + 2, c->close_code, our_reason(c));
        size_t hlen = gw_wsp_header(frame + LWS_PRE, PS_OP_CLOSE, plen, 0);
        if (hlen != 2)
            return -1;
        c->close_sent = 1;
        if (lws_write(wsi, frame + LWS_PRE, 2 + plen, LWS_WRITE_RAW) < 0)
            return -1;
        gw_metrics_ws_bytes_out(c->metrics, 2 + plen);
        if (c->close_now || c->peer_closed)
            return -1;
        /* Wait a little for the peer's close frame, then drop the connection. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, 5);
        return 0;
    }
    return write_queued(hub, c, wsi);
}

int gw_ws_raw_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    (void)user;
    struct lws_context *ctx = lws_get_context(wsi);
    gw_server *srv = ctx ? lws_context_user(ctx) : NULL;
    gw_ws_conn *c = lws_get_opaque_user_data(wsi);
    if (!srv || (!c && reason != LWS_CALLBACK_EVENT_WAIT_CANCELLED))
        return 0;
    gw_ws_hub *hub = gw__server_hub(srv);

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        c->wsi = wsi;
        c->last_rx_us = now_us();
        return track_conn(hub, c) ? -1 : 0;
    case LWS_CALLBACK_RAW_RX: {
        if (c->close_now || c->peer_closed)
            return 0; /* nothing more is read once the connection is ending */
        c->last_rx_us = now_us();
        c->ping_out = 0; /* anything from the peer shows it is alive */
        gw_metrics_ws_bytes_in(c->metrics, len);
        const char *why = "";
        hub->ev_batching = 1;
        int rc = gw_wsp_feed(&c->parser, in, len, &frame_callbacks, c, &why);
        end_event_batch(hub);
        if (rc > 0)
            request_close(c, rc, why, 1);
        else if (rc < 0 && c->close_sent)
            return -1;
        return 0;
    }
    case LWS_CALLBACK_RAW_WRITEABLE:
        return raw_writeable(hub, c, wsi);
    case LWS_CALLBACK_RAW_CLOSE:
        lws_set_opaque_user_data(wsi, NULL);
        conn_gone(hub, c);
        return 0;
    default:
        return 0;
    }
}

/* ---- setup ------------------------------------------------------------------------- */

gw_ws_hub *gw_ws_hub_new(gw_server *srv)
{
    gw_ws_hub *hub = calloc(1, sizeof(*hub));
    if (!hub)
        return NULL;
    hub->srv = srv;
    hub->id_step = 1;
    hub->topics = ps_topics_new(deliver, hub);
    hub->ledger = hub->topics ? ps_ledger_new() : NULL;
    hub->bus = hub->ledger ? ps_bus_local_new(hub->topics) : NULL;
    hub->presence = hub->bus ? gw_presence_new(srv) : NULL;
    if (!hub->presence) {
        ps_bus_close(hub->bus);
        ps_ledger_free(hub->ledger);
        ps_topics_free(hub->topics);
        free(hub);
        return NULL;
    }
    pthread_mutex_init(&hub->bus_lock, NULL);
    pthread_mutex_init(&hub->hold.lock, NULL);
    pthread_cond_init(&hub->hold.cond, NULL);
    pthread_mutex_init(&hub->cmd_lock, NULL);
    pthread_mutex_init(&hub->ev_lock, NULL);
    pthread_mutex_init(&hub->hist_lock, NULL);
    gw_ws_config defaults = {
        .max_message = 1000000,
        .high_water = 64 * 1024,
        .send_limit = 1024 * 1024,
        .max_connections = 100000,
        .ping_interval = 30,
        .ping_timeout = 60,
        .inbox_limit = 256,
    };
    gw_ws_configure(hub, &defaults);
    return hub;
}

void gw_ws_configure(gw_ws_hub *hub, const gw_ws_config *cfg)
{
    hub->cfg = *cfg;
    if (hub->cfg.inbox_limit < 2)
        hub->cfg.inbox_limit = 2;
}

void gw_ws_hub_free(gw_ws_hub *hub)
{
    if (!hub)
        return;
    gw_ws_cmd *c = hub->cmd_head;
    while (c) {
        gw_ws_cmd *next = c->next;
        cmd_free(c);
        c = next;
    }
    gw_ws_event *ev = hub->ev_head;
    while (ev) {
        gw_ws_event *next = ev->next;
        gw_ws_event_free(ev);
        ev = next;
    }
    free(hub->conns);
    free(hub->flush);
    free(hub->redis_cfg);
    ps_bus_close(hub->bus);
    ps_tally_free(hub->interest);
    gw_presence_free(hub->presence);
    ps_topics_free(hub->topics);
    ps_ledger_free(hub->ledger);
    pthread_mutex_destroy(&hub->bus_lock);
    pthread_mutex_destroy(&hub->hold.lock);
    pthread_cond_destroy(&hub->hold.cond);
    free(hub->hold.topic);
    pthread_mutex_destroy(&hub->cmd_lock);
    pthread_mutex_destroy(&hub->ev_lock);
    ps_history_free(hub->history);
    pthread_mutex_destroy(&hub->hist_lock);
    free(hub);
}

/* ---- the siblings bus (robyn --processes N) ------------------------------------------- */

static void siblings_deliver(void *ctx, const char *topic, size_t len, ps_frame *frame);
static size_t siblings_count(void *ctx, const char *topic, size_t len);
static void forward_to_shards(gw_ws_hub *hub, const char *topic, size_t len, ps_frame *frame);

int gw_ws_use_siblings(gw_server *srv, const char *group, unsigned slot, unsigned count,
                       size_t queue_limit, char *err, size_t errlen)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    if (hub->siblings) {
        snprintf(err, errlen, "this server already has its sibling processes");
        return -EALREADY;
    }
    ps_siblings_config cfg = {
        .group = group,
        .slot = slot,
        .count = count,
        .queue_limit = queue_limit,
        /* Nothing a sibling sends can be larger than what it may queue. */
        .max_message = queue_limit,
        .deliver = siblings_deliver,
        .count_here = siblings_count,
        .deliver_ctx = hub,
    };
    gw_presence_siblings_config(hub->presence, &cfg);
    ps_presence_set_rank(gw_presence_table(hub->presence), slot);
    ps_bus *bus = ps_bus_siblings_new(hub->topics, &cfg, err, errlen);
    if (!bus)
        return -errno;
    gw_presence_use_bus(hub->presence, bus);
    pthread_mutex_lock(&hub->bus_lock);
    ps_bus_close(hub->bus);
    hub->bus = bus;
    hub->siblings = bus;
    atomic_store(&hub->bus_remote, 1);
    pthread_mutex_unlock(&hub->bus_lock);
    return 0;
}

/* ---- the bus beyond this process (docs/redis.md) ------------------------------------------ */

int gw_ws_set_pubsub(gw_server *srv, const ps_redis_config *cfg)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    ps_redis_config *copy = NULL;
    if (cfg) {
        copy = malloc(sizeof(*copy));
        if (!copy)
            return -ENOMEM;
        *copy = *cfg;
    }
    free(hub->redis_cfg);
    hub->redis_cfg = copy;
    return 0;
}

/* Shard 0's I/O thread: the process's first birth or last death of a topic, over every
 * shard's registry, for the Redis bus. */
static void tally_says(void *ctx, const char *topic, size_t len, bool alive)
{
    gw_ws_hub *hub = ctx;
    ps_bus_on_interest(hub->bus, topic, len, alive);
}

/* Shard 0's I/O thread: one shard's registry has (alive) or no longer has the topic. */
static void merge_interest(gw_ws_hub *hub, const char *topic, size_t len, bool alive)
{
    if (hub->interest && ps_tally_change(hub->interest, topic, len, alive) == -ENOMEM)
        lwsl_err("gateway: out of memory: a topic cannot be subscribed on Redis\n");
}

/* Shard 0's registry, with --workers M: its topics join the other shards' in the tally. */
static void interest_here(void *ctx, const char *topic, size_t len, bool alive)
{
    merge_interest(ctx, topic, len, alive);
}

/* Another shard's registry, with the Redis bus on shard 0: each birth and death goes to
 * shard 0's FIFO, so that shard 0 applies one shard's in the order they happened. */
static void interest_to_shard0(void *ctx, const char *topic, size_t len, bool alive)
{
    gw_ws_hub *hub = ctx;
    gw_ws_cmd *c = new_topic_command(CMD_INTEREST, NULL, topic, len);
    if (!c) {
        lwsl_err("gateway: out of memory: a topic's interest cannot reach the Redis bus\n");
        return;
    }
    c->code = alive;
    post_command(gw__server_hub(gw__server_shard(hub->srv, 0)), c);
}

/* The one place the hub picks its bus: with a Redis URL configured, the Redis bus (every
 * process talks to Redis itself); otherwise it keeps the in-process bus it was made with.
 * With --workers M only shard 0 has the bus; the other shards tell it their registries'
 * topics (interest_to_shard0), from before their I/O threads run, so none is missed. */
int gw__ws_start_bus(gw_server *srv)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    gw_ws_hub *hub0 = gw__server_hub(gw__server_shard(srv, 0));
    if (hub != hub0) {
        if (hub0->redis_cfg)
            ps_topics_set_interest(hub->topics, interest_to_shard0, hub);
        return 0;
    }
    if (!hub->redis_cfg)
        return 0;
    ps_tally *tally = NULL;
    if (gw__server_nshards(srv) > 1 && !(tally = ps_tally_new(tally_says, hub)))
        return -ENOMEM;
    gw_redis_host *host = NULL;
    ps_bus *bus = gw__redis_bus_new(srv, hub->topics, hub->redis_cfg, &host);
    if (!bus) {
        ps_tally_free(tally);
        return -ENOMEM;
    }
    pthread_mutex_lock(&hub->bus_lock);
    ps_bus_close(hub->bus);
    hub->bus = bus;
    hub->siblings = NULL; /* Redis also carries what the siblings bus would have */
    hub->redis_host = host;
    hub->interest = tally;
    /* Topics are born and die on the I/O thread (run_subscribe, conn_gone): the bus hears
     * of them there, in the order of the publishes around them. */
    if (tally)
        ps_topics_set_interest(hub->topics, interest_here, hub);
    else
        ps_topics_set_interest(hub->topics, ps_bus_on_interest, bus);
    atomic_store(&hub->bus_remote, 1);
    pthread_mutex_unlock(&hub->bus_lock);
    gw_presence_use_bus(hub->presence, bus);
    return 0;
}

static void history_start(gw_ws_hub *hub);

void gw_ws_start(gw_server *srv)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    history_start(hub);
    gw_presence_start(hub->presence);
    if (!hub->siblings)
        return;
    /* lws closes what it watches when the context goes: give it a duplicate, so that the
     * bus keeps owning its own descriptor. */
    lws_sock_file_fd_type fd;
    fd.filefd = dup(ps_bus_siblings_fd(hub->siblings));
    struct lws_vhost *vh = lws_get_vhost_by_name(gw__server_context(srv), "default");
    hub->siblings_wsi = fd.filefd >= 0 && vh ? lws_adopt_descriptor_vhost(
        vh, LWS_ADOPT_RAW_FILE_DESC, fd, GW_SIBLINGS_PROTOCOL, NULL) : NULL;
    if (!hub->siblings_wsi) {
        if (fd.filefd >= 0)
            close(fd.filefd);
        lwsl_err("gateway: cannot watch the siblings bus; publishes stay in this process\n");
    }
}

int gw_ws_siblings_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                            void *in, size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    struct lws_context *ctx = lws_get_context(wsi);
    gw_server *srv = ctx ? lws_context_user(ctx) : NULL;
    if (!srv)
        return 0;
    gw_ws_hub *hub = gw__server_hub(srv);
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* Sent once to every protocol: this one sends the presence deltas queued. */
        gw_presence_service(hub->presence);
        return 0;
    case LWS_CALLBACK_RAW_RX_FILE:
        if (wsi != hub->siblings_wsi)
            return 0;
        /* Deliveries from siblings go into the registry, which is this thread's; what they
         * queue is written out below, as a command round's. */
        ps_bus_siblings_service(hub->siblings);
        flush_marked(hub);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (wsi == hub->siblings_wsi)
            hub->siblings_wsi = NULL;
        return 0;
    default:
        return 0;
    }
}

/* A Python thread waiting for a machine-wide count; shared with the I/O thread. */
struct gw_count_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs; /* under lock */
    int done;
    uint64_t remote;
    unsigned answered;
};

static void count_wait_unref(struct gw_count_wait *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    int last = --w->refs == 0;
    pthread_mutex_unlock(&w->lock);
    if (last) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
    }
}

/* The bus's answer: wakes the waiting thread and drops the bus's reference. */
static void count_done(void *arg, uint64_t remote, unsigned answered)
{
    struct gw_count_wait *w = arg;
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    w->remote = remote;
    w->answered = answered;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    count_wait_unref(w);
}

static void run_count_everywhere(gw_ws_hub *hub, gw_ws_cmd *cmd)
{
    struct gw_count_wait *w = cmd->wait;
    pthread_mutex_lock(&w->lock);
    w->refs++; /* the bus's, until count_done */
    pthread_mutex_unlock(&w->lock);
    int rc = ps_bus_siblings_count(hub->siblings, cmd->topic, cmd->topic_len, count_done, w);
    if (rc)
        count_done(w, 0, 0);
}

long gw_ws_subscribers_everywhere(gw_server *srv, const char *topic, size_t len,
                                  unsigned timeout_ms, unsigned *answered)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    size_t local = gw_ws_subscribers(srv, topic, len);
    *answered = 0;
    if (!hub->siblings || !hub->siblings_wsi)
        return (long)local;
    struct gw_count_wait *w = calloc(1, sizeof(*w));
    char *name = w ? malloc(len + 1) : NULL;
    gw_ws_cmd *c = name ? new_command(CMD_COUNT_EVERYWHERE, NULL) : NULL;
    if (!c) {
        free(name);
        free(w);
        return -ENOMEM;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->refs = 2; /* ours and the command's */
    memcpy(name, topic, len);
    name[len] = '\0';
    c->topic = name;
    c->topic_len = len;
    c->wait = w;
    post_command(hub, c);
    struct timespec until = deadline_in(timeout_ms);
    long total = (long)local;
    pthread_mutex_lock(&w->lock);
    while (!w->done && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0) {
    }
    if (w->done) {
        total += (long)w->remote;
        *answered = w->answered;
    }
    pthread_mutex_unlock(&w->lock);
    count_wait_unref(w);
    return total;
}

static void redis_recoveries_cancel(gw_ws_hub *hub);

void gw__ws_stop_bus(gw_server *srv)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    gw_presence_stop(hub->presence);
    if (hub != gw__server_hub(gw__server_shard(srv, 0))) {
        /* The connections this shard closes from now on (its context goes next) die
         * with the server: shard 0, stopped after it, has nothing to unsubscribe. */
        ps_topics_set_interest(hub->topics, NULL, NULL);
        return;
    }
    if (!hub->redis_host)
        return;
    gw_presence_use_bus(hub->presence, NULL);
    redis_recoveries_cancel(hub);
    ps_bus *local = ps_bus_local_new(hub->topics);
    pthread_mutex_lock(&hub->bus_lock);
    ps_topics_set_interest(hub->topics, NULL, NULL);
    atomic_store(&hub->bus_remote, 0);
    ps_bus_close(hub->bus);
    hub->bus = local; /* NULL when out of memory: gw_ws_hub_free copes */
    ps_tally_free(hub->interest);
    hub->interest = NULL; /* the other shards' CMD_INTEREST still queued find none */
    pthread_mutex_unlock(&hub->bus_lock);
    gw__redis_host_free(hub->redis_host);
    hub->redis_host = NULL;
}

gw_presence *gw_presence_of(gw_server *srv)
{
    return gw__server_hub(srv)->presence;
}

ps_bus *gw__ws_bus(gw_server *srv)
{
    return gw__server_hub(srv)->bus;
}

size_t gw__ws_deliver_remote(gw_server *srv, const char *topic, size_t len, ps_frame *frame)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    size_t n = ps_topics_publish(hub->topics, topic, len, frame, NULL);
    /* The one frame goes on to the other shards, in the order Redis delivered it. */
    if (gw__server_nshards(srv) > 1)
        forward_to_shards(hub, topic, len, frame);
    return n;
}

void gw__ws_flush(gw_server *srv)
{
    flush_marked(gw__server_hub(srv));
}

int gw_ws_pubsub_stats(gw_server *srv, ps_redis_stats *out)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    int rc = 0;
    pthread_mutex_lock(&hub->bus_lock);
    if (ps_bus_is_redis(hub->bus)) {
        ps_bus_redis_stats(hub->bus, out);
        rc = 1;
    }
    pthread_mutex_unlock(&hub->bus_lock);
    return rc;
}

/* ---- topics with history (pubsub/history.h, docs/realtime.md) ------------------------- */

_Static_assert(sizeof(((gw_ws_position *)0)->epoch) >= PS_HISTORY_EPOCH_MAX, "epoch names fit");

/* The clock of ttls: monotonic, read on Python threads and on the I/O thread alike. */
static int64_t history_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Forks seen by this process (pthread_atfork), so that a --processes worker, forked after
 * app.topic() made the registry, names its own epochs instead of its parent's. */
static atomic_uint forks_seen;
static pthread_once_t forks_counted = PTHREAD_ONCE_INIT;

static void count_fork(void)
{
    atomic_fetch_add(&forks_seen, 1);
}

static void count_forks(void)
{
    (void)pthread_atfork(NULL, NULL, count_fork);
}

/* A random token for epoch names (10 hex digits), so that a restarted process or a sibling
 * never hands out an epoch a client may still hold. */
static void random_node(char node[11])
{
    unsigned char r[5];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        uint64_t t = (uint64_t)history_now_ms() ^ ((uint64_t)getpid() << 20);
        memcpy(r, &t, sizeof(r));
    }
    snprintf(node, 11, "%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4]);
}

int gw_ws_history_pattern(gw_server *srv, const char *glob, size_t capacity, int64_t ttl_ms)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    int rc = 0;
    pthread_mutex_lock(&hub->hist_lock);
    if (!hub->history) {
        pthread_once(&forks_counted, count_forks);
        char node[11];
        random_node(node);
        hub->history = ps_history_new(node);
        hub->history_forks = atomic_load(&forks_seen);
        if (!hub->history)
            rc = -ENOMEM;
    }
    if (!rc)
        rc = ps_history_add_pattern(hub->history, glob, capacity, ttl_ms);
    pthread_mutex_unlock(&hub->hist_lock);
    return rc;
}

/* The state of topic, hist_lock held: NULL with *rc -ENOENT (no pattern, or no state and
 * !create) or -ENOMEM. */
static ps_history_topic *history_topic(gw_ws_hub *hub, const char *topic, size_t len,
                                       int64_t now, bool create, int *rc)
{
    unsigned forks = atomic_load(&forks_seen);
    if (hub->history_forks != forks) {
        /* A new process: what it inherited is its parent's history, under its parent's
         * epochs, which a client may hold for the parent or for a sibling. */
        char node[11];
        random_node(node);
        (void)ps_history_reset(hub->history, node);
        hub->history_forks = forks;
    }
    errno = 0;
    ps_history_topic *t = ps_history_topic_get(hub->history, topic, len, now, create);
    if (!t)
        *rc = errno == ENOMEM ? -ENOMEM : -ENOENT;
    return t;
}

static void position_of(const ps_history_topic *t, gw_ws_position *out)
{
    snprintf(out->epoch, sizeof(out->epoch), "%s", ps_history_topic_epoch(t));
    out->offset = ps_history_topic_last(t);
}

static long publish_to_shard(gw_ws_hub *hub, const char *topic, size_t len, ps_frame *f,
                             gw_ws_handle *exclude, cmd_type type);

/* The hub that keeps the process's history: shard 0's, whichever shard srv is (with
 * --workers M every shard's connections replay from it and publish through it). */
static gw_ws_hub *history_hub(gw_server *srv)
{
    return gw__server_hub(gw__server_shard(srv, 0));
}

/* Numbers, keeps and posts (as a `type` command: CMD_PUBLISH, or CMD_DELIVER_LOCAL for
 * what came from a sibling) a message on a topic with history, to every shard. */
static int publish_history(gw_ws_hub *hub, cmd_type type, const char *topic, size_t len,
                           const char *rest, size_t rest_len, gw_ws_handle *exclude,
                           gw_ws_position *out)
{
    gw_ws_cmd *c = new_topic_command(type, exclude, topic, len);
    if (!c)
        return -ENOMEM;
    int rc = 0;
    int64_t now = history_now_ms();
    pthread_mutex_lock(&hub->hist_lock);
    ps_history_topic *t = history_topic(hub, topic, len, now, true, &rc);
    if (t) {
        /* The envelope's head is written here, where the offset is known; the rest
         * ("topic":...,"data":...}) comes from Python, JSON already. */
        char head[96];
        int hl = snprintf(head, sizeof(head), "{\"epoch\":\"%s\",\"offset\":%llu,",
                          ps_history_topic_epoch(t),
                          (unsigned long long)ps_history_topic_last(t) + 1);
        unsigned char *payload;
        c->frame = ps_frame_alloc(PS_OP_TEXT, (size_t)hl + rest_len, &payload);
        if (c->frame) {
            memcpy(payload, head, (size_t)hl);
            memcpy(payload + hl, rest, rest_len);
        }
        if (!c->frame || !ps_history_topic_push(t, c->frame, now))
            rc = -ENOMEM;
    }
    int was_empty = 0;
    if (rc == 0) {
        position_of(t, out);
        /* Queued under the lock: every shard's FIFO sees the messages of a topic in offset
         * order, which is what makes a replay's seam exact (run_subscribe_since). Counted
         * as it is queued, as gw_ws_publish() counts. With --workers M this hub (shard 0)
         * keeps the process's one history, and the same numbered frame goes to the other
         * shards' FIFOs while the lock is held; the handle left out is in one shard only. */
        unsigned m = gw__server_nshards(hub->srv);
        gw_ws_handle *exclude0 = m > 1 && exclude && exclude->id % m != 0 ? NULL : exclude;
        pthread_mutex_lock(&hub->cmd_lock);
        out->reached = (long)publish_count_locked(hub, topic, len, exclude0);
        was_empty = append_command_locked(hub, c);
        pthread_mutex_unlock(&hub->cmd_lock);
        for (unsigned k = 1; k < m; k++) {
            long n = publish_to_shard(gw__server_hub(gw__server_shard(hub->srv, k)), topic, len,
                                      c->frame, exclude && exclude->id % m == k ? exclude : NULL,
                                      type);
            if (n < 0)
                lwsl_err("gateway: out of memory handing a numbered message to shard %u\n", k);
            else
                out->reached += n;
        }
    }
    pthread_mutex_unlock(&hub->hist_lock);
    if (rc)
        cmd_free(c);
    else if (was_empty)
        wake_for_commands(hub);
    return rc;
}

static int redis_publish_history(gw_ws_hub *hub, const char *topic, size_t len,
                                 const char *rest, size_t rest_len, gw_ws_handle *exclude,
                                 gw_ws_position *out);
static int redis_subscribe_since(gw_ws_hub *hub, gw_ws_hub *home, gw_ws_handle *h,
                                 const char *topic, size_t len, const char *epoch,
                                 uint64_t since, size_t last, gw_ws_position *out);
static int redis_history_read(gw_ws_hub *hub, const char *topic, size_t len, const char *epoch,
                              uint64_t since, size_t limit, gw_ws_history *out);

int gw_ws_publish_history(gw_server *srv, const char *topic, size_t len, const char *rest,
                          size_t rest_len, gw_ws_handle *exclude, gw_ws_position *out)
{
    gw_ws_hub *hub = history_hub(srv);
    memset(out, 0, sizeof(*out));
    if (!hub->history)
        return -ENOENT;
    if (hub->redis_cfg)
        return redis_publish_history(hub, topic, len, rest, rest_len, exclude, out);
    return publish_history(hub, CMD_PUBLISH, topic, len, rest, rest_len, exclude, out);
}

/* What follows the head {"epoch":"...","offset":N, of an envelope made by
 * publish_history() (in another process): its "topic":...,"data":...} part, or NULL when
 * payload is not such an envelope. */
static const char *envelope_rest(const char *payload, size_t n, size_t *rest_len)
{
    static const char start[] = "{\"epoch\":\"", middle[] = "\",\"offset\":";
    size_t i = sizeof(start) - 1;
    if (n < i || memcmp(payload, start, i))
        return NULL;
    while (i < n && payload[i] != '"')
        i++;
    if (n - i < sizeof(middle) - 1 || memcmp(payload + i, middle, sizeof(middle) - 1))
        return NULL;
    i += sizeof(middle) - 1;
    size_t digits = i;
    while (i < n && payload[i] >= '0' && payload[i] <= '9')
        i++;
    if (i == digits || i >= n || payload[i] != ',')
        return NULL;
    *rest_len = n - i - 1;
    return payload + i + 1;
}

/* The siblings bus's delivery (I/O thread). A message on a topic with
 * history is numbered by this process as if published here (history is per process:
 * docs/realtime.md), its envelope's head replaced, and goes through the command FIFO like
 * a local publish, so that a replay's seam stays exact; anything else is delivered now. */
static void siblings_deliver(void *ctx, const char *topic, size_t len, ps_frame *frame)
{
    gw_ws_hub *hub = ctx;
    size_t rest_len;
    const char *rest = hub->history && ps_history_match(hub->history, topic, len) >= 0
                           ? envelope_rest((const char *)ps_frame_payload(frame),
                                           ps_frame_payload_len(frame), &rest_len)
                           : NULL;
    gw_ws_position pos;
    if (rest && publish_history(hub, CMD_DELIVER_LOCAL, topic, len, rest, rest_len, NULL,
                                &pos) == 0)
        return; /* numbered here, and queued to every shard */
    (void)ps_topics_publish(hub->topics, topic, len, frame, NULL);
    if (gw__server_nshards(hub->srv) > 1)
        forward_to_shards(hub, topic, len, frame);
}

int gw_ws_subscribe_since(gw_server *srv, gw_ws_handle *h, const char *topic, size_t len,
                          const char *epoch, uint64_t since, size_t last, gw_ws_position *out)
{
    gw_ws_hub *hub = history_hub(srv);    /* the history (shard 0's) */
    gw_ws_hub *home = gw__server_hub(srv); /* the connection's shard */
    memset(out, 0, sizeof(*out));
    if (atomic_load(&h->gone))
        return -ENOTCONN;
    if (!hub->history || ps_history_match(hub->history, topic, len) < 0)
        return -ENOENT;
    if (hub->redis_cfg)
        return redis_subscribe_since(hub, home, h, topic, len, epoch, since, last, out);
    gw_ws_cmd *c = new_topic_command(CMD_SUBSCRIBE_SINCE, h, topic, len);
    if (!c)
        return -ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&hub->hist_lock);
    /* Made if need be, so that even a topic nothing was published to yet has an epoch
     * the client can come back with. */
    ps_history_topic *t = history_topic(hub, topic, len, history_now_ms(), true, &rc);
    if (t) {
        position_of(t, out);
        size_t count = ps_history_topic_count(t);
        long first = epoch ? ps_history_topic_after(t, epoch, since)
                           : (long)(count > last ? count - last : 0);
        if (first < 0) {
            rc = -ESTALE;
        } else if ((size_t)first < count) {
            c->replay = malloc((count - (size_t)first) * sizeof(*c->replay));
            if (!c->replay)
                rc = -ENOMEM;
            for (size_t i = (size_t)first; c->replay && i < count; i++)
                c->replay[c->nreplay++] = ps_frame_ref(ps_history_topic_at(t, i)->frame);
        }
    }
    int was_empty = 0;
    if (rc == 0) {
        out->replayed = c->nreplay;
        /* The snapshot holds every message whose publish command is already queued (to
         * every shard: publish_history() queues under the same lock), and this command
         * follows those in the connection's shard: the live ones after it reach the
         * subscriber once it has joined, so the replay meets them with no gap and no
         * duplicate. The ledger changes with the queueing, as for a plain subscribe
         * (post_subscription). */
        pthread_mutex_lock(&home->cmd_lock);
        int joined = !h->in_ledger ? -ENOTCONN
                                   : ps_ledger_join(home->ledger, &h->ledger, topic, len);
        if (joined == 1)
            was_empty = append_command_locked(home, c);
        pthread_mutex_unlock(&home->cmd_lock);
        rc = joined == 1 ? 0 : joined == 0 ? -EALREADY : joined;
    }
    pthread_mutex_unlock(&hub->hist_lock);
    if (rc)
        cmd_free(c);
    else if (was_empty)
        wake_for_commands(home);
    return rc;
}

/* I/O thread: join the topic (as run_subscribe() does), then queue the replay; nothing
 * can be published to the connection in between, since both happen in this one command. */
static void run_subscribe_since(gw_ws_hub *hub, gw_ws_cmd *cmd)
{
    run_subscribe(hub, cmd);
    gw_ws_conn *c = cmd->h->io;
    for (size_t i = 0; c && cmd->h->sub && i < cmd->nreplay && !c->close_code; i++)
        (void)deliver(hub, cmd->h->sub, cmd->replay[i]);
}

int gw_ws_history_read(gw_server *srv, const char *topic, size_t len, const char *epoch,
                       uint64_t since, size_t limit, gw_ws_history *out)
{
    gw_ws_hub *hub = history_hub(srv);
    memset(out, 0, sizeof(*out));
    if (!hub->history || ps_history_match(hub->history, topic, len) < 0)
        return -ENOENT;
    if (hub->redis_cfg)
        return redis_history_read(hub, topic, len, epoch, since, limit, out);
    int rc = 0;
    pthread_mutex_lock(&hub->hist_lock);
    ps_history_topic *t = history_topic(hub, topic, len, history_now_ms(), false, &rc);
    if (!t) {
        pthread_mutex_unlock(&hub->hist_lock);
        /* Nothing published and nobody subscribed with history yet: no epoch either,
         * and a client's epoch cannot be this topic's. */
        return rc == -ENOENT && epoch ? -ESTALE : rc == -ENOENT ? 0 : rc;
    }
    position_of(t, &out->pos);
    size_t count = ps_history_topic_count(t);
    long first = epoch ? ps_history_topic_after(t, epoch, since)
                       : (long)(limit && count > limit ? count - limit : 0);
    if (first < 0) {
        rc = -ESTALE;
    } else {
        size_t n = count - (size_t)first;
        if (epoch && limit && n > limit)
            n = limit;
        out->entries = n ? malloc(n * sizeof(*out->entries)) : NULL;
        if (n && !out->entries)
            rc = -ENOMEM;
        for (size_t i = 0; out->entries && i < n; i++) {
            const ps_history_entry *e = ps_history_topic_at(t, (size_t)first + i);
            out->entries[i].offset = e->offset;
            out->entries[i].frame = ps_frame_ref(e->frame);
            out->n++;
        }
    }
    pthread_mutex_unlock(&hub->hist_lock);
    return rc;
}

void gw_ws_history_free(gw_ws_history *hist)
{
    for (size_t i = 0; i < hist->n; i++)
        ps_frame_unref(hist->entries[i].frame);
    free(hist->entries);
    hist->entries = NULL;
    hist->n = 0;
}

/* Once a second on the I/O thread: what outlived its ttl goes even from topics nobody
 * publishes to or reads any more. */
static void history_sweep(lws_sorted_usec_list_t *sul)
{
    gw_ws_hub *hub = lws_container_of(sul, gw_ws_hub, history_timer);
    pthread_mutex_lock(&hub->hist_lock);
    ps_history_expire(hub->history, history_now_ms());
    pthread_mutex_unlock(&hub->hist_lock);
    if (gw__server_context(hub->srv))
        lws_sul_schedule(gw__server_context(hub->srv), 0, &hub->history_timer, history_sweep,
                         LWS_US_PER_SEC);
}

static void history_start(gw_ws_hub *hub)
{
    if (hub->history && gw__server_context(hub->srv))
        lws_sul_schedule(gw__server_context(hub->srv), 0, &hub->history_timer, history_sweep,
                         LWS_US_PER_SEC);
}

/* ---- the fan-out hold, for tests (ws.h) ------------------------------------------------ */

int gw_ws_test_hold_fanout(gw_server *srv, const char *topic, size_t len, size_t after)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    if (after == 0)
        return -EINVAL;
    char *name = malloc(len + 1);
    if (!name)
        return -ENOMEM;
    memcpy(name, topic, len);
    name[len] = '\0';
    pthread_mutex_lock(&hub->hold.lock);
    if (hub->hold.in_use) {
        pthread_mutex_unlock(&hub->hold.lock);
        free(name);
        return -EBUSY;
    }
    /* The I/O thread reads topic only after seeing armed set (release/acquire), and no
     * earlier hold is in progress (in_use). */
    free(hub->hold.topic);
    hub->hold.topic = name;
    hub->hold.len = len;
    hub->hold.after = after;
    hub->hold.released = hub->hold.done = 0;
    hub->hold.reached = 0;
    hub->hold.in_use = 1;
    atomic_store_explicit(&hub->hold.armed, 1, memory_order_release);
    pthread_mutex_unlock(&hub->hold.lock);
    return 0;
}

int gw_ws_test_wait_held(gw_server *srv, unsigned timeout_ms, size_t *delivered)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    struct timespec until = deadline_in(timeout_ms);
    pthread_mutex_lock(&hub->hold.lock);
    while (!hub->hold.held &&
           pthread_cond_timedwait(&hub->hold.cond, &hub->hold.lock, &until) == 0) {
    }
    int held = hub->hold.held;
    /* Written by the I/O thread before it took the lock to stop, and not since. */
    *delivered = held ? hub->hold.delivered : 0;
    pthread_mutex_unlock(&hub->hold.lock);
    return held;
}

int gw_ws_test_release(gw_server *srv)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    pthread_mutex_lock(&hub->hold.lock);
    int was_held = hub->hold.held;
    hub->hold.released = 1;
    pthread_cond_broadcast(&hub->hold.cond);
    pthread_mutex_unlock(&hub->hold.lock);
    return was_held;
}

int gw_ws_test_hold_result(gw_server *srv, size_t *reached)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    pthread_mutex_lock(&hub->hold.lock);
    int done = hub->hold.done;
    *reached = done ? hub->hold.reached : 0;
    pthread_mutex_unlock(&hub->hold.lock);
    return done;
}

/* ---- for the metrics scrape (metrics.h) ------------------------------------------------------ */

void gw_ws_each_open(gw_server *srv, void (*fn)(const gw_route *route, size_t queued, void *arg),
                     void *arg)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    for (size_t i = 0; i < hub->nconns; i++)
        if (hub->conns[i]->open)
            fn(hub->conns[i]->h->route, ps_queue_bytes(hub->conns[i]->queue), arg);
}

void gw_ws_bus_state(gw_server *srv, gw_metrics_bus *out)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    memset(out, 0, sizeof(*out));
    out->name = "local";
    out->connected = 1;
    /* The I/O thread reads the bus without bus_lock: it changes only while this thread
     * does not run. */
    if (ps_bus_is_redis(hub->bus)) {
        ps_redis_stats st;
        ps_bus_redis_stats(hub->bus, &st);
        out->name = "redis";
        out->connected = st.connected;
        out->buffered = st.buffered;
        out->lost = st.dropped;
        out->published = st.published;
        out->received = st.received;
        out->outages = st.outages;
        out->gaps = st.gaps;
    } else if (hub->siblings) {
        ps_siblings_stats st;
        ps_bus_siblings_stats(hub->siblings, &st);
        out->name = "siblings";
        out->connected = st.connected == st.peers;
        out->lost = st.too_large;
        out->published = st.sent;
        out->received = st.received;
        out->siblings = st.peers;
        out->siblings_connected = st.connected;
        out->cut_off = st.cut_off;
    }
}

/* ---- I/O shards (--workers M; docs/architecture.md, "I/O shards") ------------------- */

void gw_ws_number_ids(gw_ws_hub *hub, unsigned first, unsigned step)
{
    hub->next_id = first;
    hub->id_step = step;
}

/* Queues frame to hub as a publish when its ledger has subscribers for the topic (the
 * handle's ledger entry left out when it is this hub's). Returns the count, or -ENOMEM. */
static long publish_to_shard(gw_ws_hub *hub, const char *topic, size_t len, ps_frame *f,
                             gw_ws_handle *exclude, cmd_type type)
{
    gw_ws_cmd *c = new_topic_command(type, exclude, topic, len);
    if (!c)
        return -ENOMEM;
    c->frame = ps_frame_ref(f);
    pthread_mutex_lock(&hub->cmd_lock);
    size_t n = publish_count_locked(hub, topic, len, exclude);
    int queued = n || atomic_load(&hub->bus_remote);
    int was_empty = queued ? append_command_locked(hub, c) : 0;
    pthread_mutex_unlock(&hub->cmd_lock);
    if (!queued)
        cmd_free(c);
    else if (was_empty)
        wake_for_commands(hub);
    return (long)n;
}

long gw_ws_publish_all(gw_server *srv, const char *topic, size_t len, unsigned opcode,
                       const void *data, size_t dlen, gw_ws_handle *exclude,
                       gw_server *exclude_shard)
{
    unsigned m = gw__server_nshards(srv);
    if (m <= 1)
        return gw_ws_publish(srv, topic, len, opcode, data, dlen, exclude);
    gw_metrics_published(gw__server_metrics(srv));
    /* One frame for every shard (its count and its variants are atomic), queued to each
     * shard in turn: each shard's FIFO holds one publisher's messages in its order. Shard
     * 0's bus carries it to the other processes; the others' buses are local. */
    ps_frame *f = ps_frame_new(opcode, data, dlen);
    if (!f)
        return -ENOMEM;
    long total = 0;
    for (unsigned k = 0; k < m; k++) {
        gw_server *shard = gw__server_shard(srv, k);
        long n = publish_to_shard(gw__server_hub(shard), topic, len, f,
                                  shard == exclude_shard ? exclude : NULL, CMD_PUBLISH);
        if (n < 0) {
            total = n;
            break;
        }
        total += n;
    }
    ps_frame_unref(f);
    return total;
}

size_t gw_ws_subscribers_all(gw_server *srv, const char *topic, size_t len)
{
    size_t n = 0;
    for (unsigned k = 0, m = gw__server_nshards(srv); k < m; k++)
        n += gw_ws_subscribers(gw__server_shard(srv, k), topic, len);
    return n;
}

/* Shard 0's I/O thread: a message of another process (a sibling's, or one from Redis),
 * delivered here, goes on to the other shards' subscribers through their FIFOs, in the
 * order it came; only to shards whose ledger has subscribers of the topic. */
static void forward_to_shards(gw_ws_hub *hub, const char *topic, size_t len, ps_frame *frame)
{
    for (unsigned k = 1, m = gw__server_nshards(hub->srv); k < m; k++)
        if (publish_to_shard(gw__server_hub(gw__server_shard(hub->srv, k)), topic, len, frame,
                             NULL, CMD_DELIVER_LOCAL) < 0)
            lwsl_err("gateway: out of memory handing another process's message to shard %u\n",
                     k);
}

/* Shard 0's I/O thread: a sibling's QUERY for this process's subscribers. Shard 0's own from
 * its registry (what the I/O thread applied, as before), the others' from their ledgers
 * (their registries belong to their threads). */
static size_t siblings_count(void *ctx, const char *topic, size_t len)
{
    gw_ws_hub *hub = ctx;
    size_t n = ps_topics_subscriber_count(hub->topics, topic, len);
    for (unsigned k = 1, m = gw__server_nshards(hub->srv); k < m; k++)
        n += gw_ws_subscribers(gw__server_shard(hub->srv, k), topic, len);
    return n;
}

struct distinct_topics {
    gw_ws_hub **hubs; /* the shards before the one being walked */
    unsigned before;
    size_t n;
};

static void count_if_new(void *ctx, const char *topic, size_t len)
{
    struct distinct_topics *d = ctx;
    for (unsigned j = 0; j < d->before; j++)
        if (ps_ledger_count(d->hubs[j]->ledger, topic, len))
            return;
    d->n++;
}

size_t gw_ws_topics_all(gw_server *srv)
{
    unsigned m = gw__server_nshards(srv);
    gw_ws_hub *hubs[GW_MAX_SHARDS];
    for (unsigned k = 0; k < m; k++)
        hubs[k] = gw__server_hub(gw__server_shard(srv, k));
    /* Every ledger at once, taken in shard order (no other path holds two). */
    for (unsigned k = 0; k < m; k++)
        pthread_mutex_lock(&hubs[k]->cmd_lock);
    struct distinct_topics d = {hubs, 0, 0};
    for (unsigned k = 0; k < m; k++) {
        d.before = k;
        ps_ledger_each(hubs[k]->ledger, count_if_new, &d);
    }
    for (unsigned k = m; k-- > 0;)
        pthread_mutex_unlock(&hubs[k]->cmd_lock);
    return d.n;
}

/* ---- topics with history kept in Redis (pubsub/redis_history.h, docs/redis.md) ---------
 *
 * With the Redis bus, Redis numbers and keeps the messages of topics with history; this
 * process only asks. Python's publishes, subscribes with recovery and reads become one
 * command each (CMD_REDIS_HISTORY) for the I/O thread, which owns the hiredis connections.
 * A publish is fire-and-forget (Python cannot wait for Redis' number); a subscribe and a
 * read wait, with the GIL released, for the I/O thread's answer (struct gw_redis_req).
 *
 * A subscribe with recovery (struct gw_recovery), on the I/O thread:
 *   1. pin the topic's channel and wait for its SUBSCRIBE to be confirmed: from then on
 *      every message Redis numbers reaches this process;
 *   2. hold, for this connection, every message of the topic arriving meanwhile;
 *   3. read the range from the stream (one script run, after the confirmation, so every
 *      message is in the range, or held, or both);
 *   4. in one go: queue the range, then the held messages after the range's last offset;
 *   5. join the topic once the channel has caught up with the range, and unpin. The read's
 *      answer and the channel come on two connections, so messages of the range may still
 *      be on their way on the channel when the range is in: until one at or past the
 *      range's last offset arrives, the connection "settles" (the channel's messages after
 *      the range go to it directly, those of the range are skipped), then joins. Nothing
 *      reaches the connection twice, and nothing is missed.
 */

/* How long Python waits for the I/O thread's answer from Redis. */
#define GW_REDIS_HISTORY_TIMEOUT_MS 5000
/* Live messages held for one recovery while its read is in flight; past it the recovery
 * fails (-ENOBUFS) and the connection is closed with 1013, try again later. */
#define GW_RECOVERY_HELD_MAX 10000

enum { RQ_PUBLISH, RQ_RECOVER, RQ_READ };

struct gw_redis_req {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs; /* under lock */
    int kind;
    size_t capacity; /* the topic's pattern */
    int64_t ttl_ms;
    ps_rh_query q;
    char epoch[PS_RH_EPOCH_MAX]; /* q.epoch points here */
    /* The answer, under lock: written once, unless the waiter gave up first. */
    int done, abandoned, rc;
    gw_ws_position pos;
    gw_ws_history hist;
};

struct gw_held_msg {
    ps_frame *frame;
    uint64_t offset;
    char epoch[PS_RH_EPOCH_MAX];
};

struct gw_recovery {
    struct gw_recovery *next;
    gw_ws_hub *hub;  /* shard 0's: the bus, the recovery's thread */
    gw_ws_hub *home; /* the connection's shard's: its ledger, its registry */
    gw_ws_handle *h;
    /* Another shard's connection: the frames and the join of this step, posted to home's
     * FIFO as one CMD_RECOVERED at the step's end (recovery_post), NULL until needed. */
    gw_ws_cmd *out;
    char *topic;
    size_t len;
    struct gw_redis_req *req;
    int pinned, reading, overflow;
    struct gw_held_msg *held;
    size_t nheld, held_cap;
    /* Step 5: answered and replayed, waiting for the channel to pass the range's last. */
    int settling;
    uint64_t settle_last;
    char settle_epoch[PS_RH_EPOCH_MAX];
};

/* The hub of the shard h lives on (its id names it: id % M). */
static gw_ws_hub *home_of(gw_ws_hub *hub, const gw_ws_handle *h)
{
    unsigned m = gw__server_nshards(hub->srv);
    return gw__server_hub(gw__server_shard(hub->srv, m > 1 ? (unsigned)(h->id % m) : 0));
}

static struct gw_redis_req *redis_req_new(int kind)
{
    struct gw_redis_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->refs = 1;
    r->kind = kind;
    return r;
}

static struct gw_redis_req *redis_req_ref(struct gw_redis_req *r)
{
    pthread_mutex_lock(&r->lock);
    r->refs++;
    pthread_mutex_unlock(&r->lock);
    return r;
}

static void redis_req_unref(struct gw_redis_req *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&r->lock);
    if (last) {
        gw_ws_history_free(&r->hist);
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        free(r);
    }
}

/* The pattern of topic (hist_lock taken here): its capacity and ttl. -ENOENT for none. */
static int redis_limits(gw_ws_hub *hub, const char *topic, size_t len, size_t *capacity,
                        int64_t *ttl_ms)
{
    pthread_mutex_lock(&hub->hist_lock);
    int i = ps_history_match(hub->history, topic, len);
    int rc = i < 0 ? -ENOENT : ps_history_pattern_limits(hub->history, i, capacity, ttl_ms);
    pthread_mutex_unlock(&hub->hist_lock);
    return rc;
}

/* Python thread: waits for the I/O thread's answer. 1 when it came; 0 when the wait timed
 * out, and then the request is abandoned: the I/O thread drops its answer. */
static int redis_req_wait(struct gw_redis_req *r)
{
    struct timespec until = deadline_in(GW_REDIS_HISTORY_TIMEOUT_MS);
    pthread_mutex_lock(&r->lock);
    while (!r->done && pthread_cond_timedwait(&r->cond, &r->lock, &until) == 0) {
    }
    int done = r->done;
    if (!done)
        r->abandoned = 1;
    pthread_mutex_unlock(&r->lock);
    return done;
}

static int redis_publish_history(gw_ws_hub *hub, const char *topic, size_t len,
                                 const char *rest, size_t rest_len, gw_ws_handle *exclude,
                                 gw_ws_position *out)
{
    /* Every node delivers what Redis sends back, this one included, and that message says
     * nothing of who sent it: the sender cannot be left out. */
    if (exclude)
        return -EXDEV;
    struct gw_redis_req *r = redis_req_new(RQ_PUBLISH);
    gw_ws_cmd *c = r ? new_topic_command(CMD_REDIS_HISTORY, NULL, topic, len) : NULL;
    if (c)
        c->frame = ps_frame_new(PS_OP_TEXT, rest, rest_len);
    if (!c || !c->frame || redis_limits(hub, topic, len, &r->capacity, &r->ttl_ms)) {
        if (c)
            cmd_free(c);
        redis_req_unref(r);
        return -ENOMEM;
    }
    c->req = r;
    /* The subscribers of every shard: each gets what Redis numbers from shard 0. */
    for (unsigned k = 1, m = gw__server_nshards(hub->srv); k < m; k++)
        out->reached += (long)gw_ws_subscribers(gw__server_shard(hub->srv, k), topic, len);
    pthread_mutex_lock(&hub->cmd_lock);
    out->reached += (long)publish_count_locked(hub, topic, len, NULL);
    int was_empty = append_command_locked(hub, c);
    pthread_mutex_unlock(&hub->cmd_lock);
    if (was_empty)
        wake_for_commands(hub);
    return 0; /* epoch "" and offset 0: Redis numbers it later */
}

/* hub is shard 0's (it owns the Redis connections and runs the recovery), home the
 * connection's shard's (its ledger and registry): the same hub with one shard. */
static int redis_subscribe_since(gw_ws_hub *hub, gw_ws_hub *home, gw_ws_handle *h,
                                 const char *topic, size_t len, const char *epoch,
                                 uint64_t since, size_t last, gw_ws_position *out)
{
    struct gw_redis_req *r = redis_req_new(RQ_RECOVER);
    gw_ws_cmd *c = r ? new_topic_command(CMD_REDIS_HISTORY, h, topic, len) : NULL;
    if (!c || redis_limits(hub, topic, len, &r->capacity, &r->ttl_ms)) {
        if (c)
            cmd_free(c);
        redis_req_unref(r);
        return -ENOMEM;
    }
    r->q.create = 1;
    r->q.mode = epoch ? 's' : 'l';
    if (epoch) {
        snprintf(r->epoch, sizeof(r->epoch), "%s", epoch);
        r->q.epoch = r->epoch;
    }
    r->q.since = since;
    r->q.limit = epoch ? 0 : last;
    r->q.ttl_ms = r->ttl_ms;
    c->req = redis_req_ref(r);
    /* The ledger changes with the queueing, as for a plain subscribe; the I/O thread (or
     * this thread, when it gives up waiting) takes the entry back if the subscribe fails.
     * The connection's own shard's ledger: with --workers M that shard forwards shard 0's
     * messages of the topic only while its ledger has subscribers of it. */
    pthread_mutex_lock(&home->cmd_lock);
    int joined = !h->in_ledger ? -ENOTCONN : ps_ledger_join(home->ledger, &h->ledger, topic, len);
    pthread_mutex_unlock(&home->cmd_lock);
    if (joined == 1) {
        pthread_mutex_lock(&hub->cmd_lock);
        (void)append_command_locked(hub, c);
        pthread_mutex_unlock(&hub->cmd_lock);
    }
    if (joined != 1) {
        cmd_free(c);
        redis_req_unref(r);
        return joined == 0 ? -EALREADY : joined;
    }
    /* Woken now, not at the end of the loop thread's pass (gw_ws_defer_wakes): this
     * thread waits for the answer. */
    gw__wake_io(hub->srv);
    int rc;
    if (redis_req_wait(r)) {
        rc = r->rc;
        *out = r->pos;
    } else {
        rc = -ETIMEDOUT;
        ledger_forget(home, h, topic, len);
    }
    redis_req_unref(r);
    return rc;
}

static int redis_history_read(gw_ws_hub *hub, const char *topic, size_t len, const char *epoch,
                              uint64_t since, size_t limit, gw_ws_history *out)
{
    struct gw_redis_req *r = redis_req_new(RQ_READ);
    gw_ws_cmd *c = r ? new_topic_command(CMD_REDIS_HISTORY, NULL, topic, len) : NULL;
    if (!c || redis_limits(hub, topic, len, &r->capacity, &r->ttl_ms)) {
        if (c)
            cmd_free(c);
        redis_req_unref(r);
        return -ENOMEM;
    }
    r->q.mode = epoch ? 's' : limit ? 'l' : 'a';
    if (epoch) {
        snprintf(r->epoch, sizeof(r->epoch), "%s", epoch);
        r->q.epoch = r->epoch;
    }
    r->q.since = since;
    r->q.limit = limit;
    r->q.ttl_ms = r->ttl_ms;
    c->req = redis_req_ref(r);
    pthread_mutex_lock(&hub->cmd_lock);
    (void)append_command_locked(hub, c);
    pthread_mutex_unlock(&hub->cmd_lock);
    gw__wake_io(hub->srv); /* now: this thread waits for the answer */
    int rc = -ETIMEDOUT;
    if (redis_req_wait(r)) {
        rc = r->rc;
        out->pos = r->pos;
        /* The entries move to the caller (the I/O thread is done with them). */
        pthread_mutex_lock(&r->lock);
        out->n = r->hist.n;
        out->entries = r->hist.entries;
        r->hist.n = 0;
        r->hist.entries = NULL;
        pthread_mutex_unlock(&r->lock);
    }
    redis_req_unref(r);
    return rc;
}

/* I/O thread: the answer of a request, unless its waiter gave up. */
static void redis_req_answer(struct gw_redis_req *r, int rc, const ps_rh_result *res)
{
    pthread_mutex_lock(&r->lock);
    if (!r->abandoned && !r->done) {
        r->rc = rc;
        if (res)
            snprintf(r->pos.epoch, sizeof(r->pos.epoch), "%s", res->epoch);
        r->pos.offset = res ? res->last : 0;
        r->done = 1;
        pthread_cond_signal(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
}

/* Redis' answer to app.history(): copies of its messages, as frames. */
static void redis_read_done(void *arg, int rc, const ps_rh_result *res)
{
    struct gw_redis_req *r = arg;
    if (rc == 0 && res->status == PS_RH_NONE)
        rc = r->q.epoch ? -ESTALE : 0; /* no epoch yet: no client can hold one of it */
    else if (rc == 0 && res->status == PS_RH_GONE)
        rc = -ESTALE;
    if (rc == 0 && res->n) {
        gw_ws_history hist = {.n = 0, .entries = malloc(res->n * sizeof(*hist.entries))};
        for (size_t i = 0; hist.entries && i < res->n; i++) {
            ps_frame *f = ps_frame_new(PS_OP_TEXT, res->entries[i].data, res->entries[i].len);
            if (!f)
                break;
            hist.entries[hist.n].offset = res->entries[i].offset;
            hist.entries[hist.n++].frame = f;
        }
        if (hist.n < res->n) {
            gw_ws_history_free(&hist);
            rc = -ENOMEM;
        } else {
            pthread_mutex_lock(&r->lock);
            r->hist = hist;
            pthread_mutex_unlock(&r->lock);
        }
    }
    redis_req_answer(r, rc == -ECONNRESET || rc == -ECANCELED ? -EHOSTDOWN : rc, res);
    redis_req_unref(r);
}

/*
 * What a recovery does to its connection, which lives on home's I/O thread. With one shard
 * (or a connection of shard 0) it is done here and now; for another shard's connection it
 * is gathered into one CMD_RECOVERED for that shard's FIFO, posted at the end of the step
 * (recovery_post), so that it lands between the messages shard 0 forwarded to that shard
 * before the step (which the connection, not yet in the registry, does not get from
 * there: they are in its replay) and those it forwards after (which reach it once joined).
 */
static int recovery_here(const struct gw_recovery *rec)
{
    return rec->home == rec->hub;
}

/* Whether the connection is still there to recover. */
static int recovery_conn_alive(const struct gw_recovery *rec)
{
    if (recovery_here(rec))
        return rec->h->sub && rec->h->io;
    return !atomic_load(&rec->h->gone);
}

/* The step's command for another shard, made on first use; NULL when out of memory. */
static gw_ws_cmd *recovery_out(struct gw_recovery *rec)
{
    if (!rec->out)
        rec->out = new_topic_command(CMD_RECOVERED, rec->h, rec->topic, rec->len);
    return rec->out;
}

/* Hands frame (borrowed) to the connection, after whatever this step gave it before. */
static void recovery_give(struct gw_recovery *rec, ps_frame *frame)
{
    gw_ws_handle *h = rec->h;
    if (recovery_here(rec)) {
        if (h->sub && h->io)
            (void)deliver(rec->hub, h->sub, frame);
        return;
    }
    gw_ws_cmd *c = recovery_out(rec);
    /* The array doubles from 8 when full, so a replay of n frames costs log n reallocs:
     * it is full exactly when nreplay is 0 or a power of two of 8 or more. */
    size_t n = c ? c->nreplay : 0;
    if (c && (n == 0 || (n >= 8 && !(n & (n - 1))))) {
        ps_frame **grown = n <= SIZE_MAX / 2 / sizeof(*grown)
                               ? realloc(c->replay, (n ? 2 * n : 8) * sizeof(*grown)) : NULL;
        if (grown)
            c->replay = grown;
        else
            c = NULL;
    }
    if (!c) {
        lwsl_err("gateway: out of memory handing a recovery to its shard; closing it\n");
        (void)gw_ws_close(rec->home->srv, h, 1011, "out of memory");
        return;
    }
    c->replay[c->nreplay++] = ps_frame_ref(frame);
}

/* A recovered connection joins the topic in its shard's registry (there and then: it is
 * that shard's I/O thread). Returns 0 (or the connection is gone), or -ENOMEM: it is being
 * closed with 1011. */
static int registry_join(gw_ws_handle *h, const char *topic, size_t len)
{
    if (!h->sub || !h->io || ps_topics_subscribe(h->sub, topic, len) >= 0)
        return 0;
    lwsl_err("gateway: out of memory subscribing a connection; closing it\n");
    request_close(h->io, 1011, "out of memory", 1);
    return -ENOMEM;
}

/* Joins the connection to the topic; then (unpin) lets go of the channel's pin, only once
 * its shard's registry holds the topic, so that the channel stays subscribed throughout.
 * Returns 0, or -ENOMEM (the connection is being closed with 1011). */
static int recovery_join(struct gw_recovery *rec, int unpin)
{
    gw_ws_handle *h = rec->h;
    if (!recovery_here(rec)) {
        gw_ws_cmd *c = recovery_out(rec);
        if (!c) {
            lwsl_err("gateway: out of memory handing a recovery to its shard; closing it\n");
            (void)gw_ws_close(rec->home->srv, h, 1011, "out of memory");
            if (unpin)
                ps_bus_redis_unpin(rec->hub->bus, rec->topic, rec->len);
            return -ENOMEM;
        }
        c->code |= RECOVERED_JOIN | (unpin ? RECOVERED_UNPIN : 0);
        return 0;
    }
    int rc = registry_join(h, rec->topic, rec->len);
    if (unpin)
        ps_bus_redis_unpin(rec->hub->bus, rec->topic, rec->len);
    return rc;
}

/* Closes the connection with code (a recovery that cannot go on). */
static void recovery_close(struct gw_recovery *rec, int code, const char *reason)
{
    if (recovery_here(rec)) {
        if (rec->h->io)
            request_close(rec->h->io, code, reason, 0);
    } else {
        (void)gw_ws_close(rec->home->srv, rec->h, code, reason);
    }
}

/* The end of a step: what it gathered for another shard goes to that shard's FIFO. */
static void recovery_post(struct gw_recovery *rec)
{
    if (rec->out) {
        post_command(rec->home, rec->out);
        rec->out = NULL;
    }
}

/* The connection's shard's I/O thread: what shard 0's recovery gathered for it. */
static void run_recovered(gw_ws_hub *hub, gw_ws_cmd *cmd)
{
    gw_ws_handle *h = cmd->h;
    for (size_t i = 0; i < cmd->nreplay && h->sub && h->io && !h->io->close_code; i++)
        (void)deliver(hub, h->sub, cmd->replay[i]);
    if (cmd->code & RECOVERED_JOIN) {
        /* Unless it left meanwhile (the ledger says, as recovery_settled() asks). */
        if (ledger_wants(hub, h, cmd->topic, cmd->topic_len))
            (void)registry_join(h, cmd->topic, cmd->topic_len);
    }
    if (cmd->code & RECOVERED_UNPIN) {
        /* After the join: its interest is ahead of the unpin in shard 0's FIFO. */
        gw_ws_cmd *c = new_topic_command(CMD_UNPIN, NULL, cmd->topic, cmd->topic_len);
        if (c)
            post_command(gw__server_hub(gw__server_shard(hub->srv, 0)), c);
        else
            lwsl_err("gateway: out of memory: a channel stays subscribed on Redis\n");
    }
}

/* Queues the recovery's range, then its held messages after it (the connection has just
 * joined the topic). Returns how many of the range were queued. */
static size_t recovery_replay(struct gw_recovery *rec, const ps_rh_result *res)
{
    size_t replayed = 0;
    for (size_t i = 0; i < res->n && recovery_conn_alive(rec); i++) {
        ps_frame *f = ps_frame_new(PS_OP_TEXT, res->entries[i].data, res->entries[i].len);
        if (!f) {
            recovery_close(rec, 1011, "out of memory");
            return replayed;
        }
        recovery_give(rec, f);
        ps_frame_unref(f);
        replayed++;
    }
    for (size_t i = 0; i < rec->nheld && recovery_conn_alive(rec); i++) {
        const struct gw_held_msg *m = &rec->held[i];
        if (m->offset > res->last && !strcmp(m->epoch, res->epoch))
            recovery_give(rec, m->frame);
    }
    return replayed;
}

/* Whether the channel has passed the range: a message of its epoch at or after its last
 * offset was held (a channel is in order, so every earlier one came before it). */
static int recovery_caught_up(const struct gw_recovery *rec, const ps_rh_result *res)
{
    for (size_t i = 0; i < rec->nheld; i++)
        if (rec->held[i].offset >= res->last && !strcmp(rec->held[i].epoch, res->epoch))
            return 1;
    return 0;
}

/* Ends a settling recovery (step 5): the connection joins the topic, unless it left it
 * meanwhile (the ledger says) or `join` is 0 (the server stops); then unpin and free. */
static void recovery_settled(struct gw_recovery *rec, int join)
{
    gw_ws_hub *hub = rec->hub;
    for (struct gw_recovery **pp = &hub->recoveries; *pp; pp = &(*pp)->next)
        if (*pp == rec) {
            *pp = rec->next;
            break;
        }
    gw_ws_handle *h = rec->h;
    gw_ws_hub *home = rec->home;
    int wanted = ledger_wants(home, h, rec->topic, rec->len);
    if (join && (wanted || !recovery_here(rec)))
        /* Another shard asks its ledger itself, when it runs the join. */
        (void)recovery_join(rec, 1);
    else if (join)
        ps_bus_redis_unpin(hub->bus, rec->topic, rec->len);
    recovery_post(rec);
    free(rec->topic);
    gw_ws_handle_unref(rec->h);
    free(rec);
}

/* Ends a recovery: answers its waiter, and on success joins the topic and replays. */
static void recovery_end(struct gw_recovery *rec, int rc, const ps_rh_result *res)
{

    gw_ws_hub *hub = rec->hub;
    for (struct gw_recovery **pp = &hub->recoveries; *pp; pp = &(*pp)->next)
        if (*pp == rec) {
            *pp = rec->next;
            break;
        }
    gw_ws_handle *h = rec->h;
    gw_ws_hub *home = rec->home;
    struct gw_redis_req *r = rec->req;
    if (rc == 0 && res && res->status != PS_RH_OK)
        rc = -ESTALE;
    if (rc == 0 && rec->overflow)
        rc = -ENOBUFS;
    int settle = 0, unpinned = 0;
    pthread_mutex_lock(&r->lock);
    if (!r->abandoned) {
        size_t replayed = 0;
        if (rc == 0 && !recovery_conn_alive(rec))
            rc = -ENOTCONN;
        if (rc == 0)
            settle = !recovery_caught_up(rec, res);
        /* Joined here, the pin goes once the join is done: at once on this shard, after
         * the join on another (recovery_join). */
        if (rc == 0 && !settle) {
            unpinned = 1;
            if (recovery_join(rec, rec->pinned))
                rc = -ENOMEM;
        }
        if (rc == 0)
            replayed = recovery_replay(rec, res);
        if (rc != 0) {
            /* Not subscribed after all: the ledger forgets it too. */
            ledger_forget(home, h, rec->topic, rec->len);
        }
        if (rc == -ENOBUFS)
            recovery_close(rec, 1013, "live messages outran the history read");
        /* Before the answer: the connection's shard has its replay ahead of whatever the
         * handler sends once subscribe() returns. */
        recovery_post(rec);
        r->rc = rc == -ECONNRESET || rc == -ECANCELED ? -EHOSTDOWN : rc;
        if (res)
            snprintf(r->pos.epoch, sizeof(r->pos.epoch), "%s", res->epoch);
        r->pos.offset = res ? res->last : 0;
        r->pos.replayed = replayed;
        r->done = 1;
        pthread_cond_signal(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    if (settle && rc == 0) {
        /* Step 5: kept (and pinned) until the channel passes the range's last. */
        for (size_t i = 0; i < rec->nheld; i++)
            ps_frame_unref(rec->held[i].frame);
        free(rec->held);
        rec->held = NULL;
        rec->nheld = rec->held_cap = 0;
        rec->settling = 1;
        rec->settle_last = res->last;
        snprintf(rec->settle_epoch, sizeof(rec->settle_epoch), "%s", res->epoch);
        rec->req = NULL;
        redis_req_unref(r);
        rec->next = hub->recoveries;
        hub->recoveries = rec;
        return;
    }
    /* After the join: the channel stays subscribed throughout. Not while the bus closes. */
    if (rec->pinned && !unpinned && rc != -ECANCELED)
        ps_bus_redis_unpin(hub->bus, rec->topic, rec->len);
    for (size_t i = 0; i < rec->nheld; i++)
        ps_frame_unref(rec->held[i].frame);
    free(rec->held);
    free(rec->topic);
    gw_ws_handle_unref(rec->h);
    redis_req_unref(rec->req);
    free(rec);
}

static void recovery_read_done(void *arg, int rc, const ps_rh_result *res)
{
    struct gw_recovery *rec = arg;
    rec->reading = 0;
    recovery_end(rec, rc, res);
}

static void recovery_read(struct gw_recovery *rec)
{
    rec->reading = 1;
    int rc = ps_bus_redis_read_history(rec->hub->bus, rec->topic, rec->len, &rec->req->q,
                                       recovery_read_done, rec);
    if (rc) {
        rec->reading = 0;
        recovery_end(rec, rc == -ENOTCONN ? -EHOSTDOWN : rc, NULL);
    }
}

static void recovery_start(gw_ws_hub *hub, gw_ws_cmd *cmd)
{

    ps_redis_stats st;
    ps_bus_redis_stats(hub->bus, &st);
    struct gw_recovery *rec = calloc(1, sizeof(*rec));
    gw_ws_hub *home = home_of(hub, cmd->h);
    if (!rec) {
        ledger_forget(home, cmd->h, cmd->topic, cmd->topic_len);
        redis_req_answer(cmd->req, -ENOMEM, NULL);
        return;
    }
    rec->hub = hub;
    rec->home = home;
    rec->h = gw_ws_handle_ref(cmd->h);
    rec->topic = cmd->topic;
    rec->len = cmd->topic_len;
    cmd->topic = NULL;
    rec->req = redis_req_ref(cmd->req);
    rec->next = hub->recoveries;
    hub->recoveries = rec;
    if (!st.connected) {
        /* History cannot be read without Redis: said at once, not after a timeout. */
        recovery_end(rec, -EHOSTDOWN, NULL);
        return;
    }
    int pinned = ps_bus_redis_pin(hub->bus, rec->topic, rec->len);
    if (pinned < 0) {
        recovery_end(rec, -ENOMEM, NULL);
        return;
    }
    rec->pinned = 1;
    if (pinned == 1)
        recovery_read(rec);
}

static void run_redis_history(gw_ws_hub *hub, gw_ws_cmd *cmd)
{
    struct gw_redis_req *r = cmd->req;
    if (!ps_bus_is_redis(hub->bus)) {
        /* The bus has stopped (the server is stopping). */
        if (r->kind == RQ_RECOVER) {
            gw_ws_hub *home = home_of(hub, cmd->h);
            ledger_forget(home, cmd->h, cmd->topic, cmd->topic_len);
        }
        if (r->kind != RQ_PUBLISH)
            redis_req_answer(r, -EHOSTDOWN, NULL);
        return;
    }
    switch (r->kind) {
    case RQ_PUBLISH:
        (void)ps_bus_redis_publish_history(hub->bus, cmd->topic, cmd->topic_len,
                                           (const char *)ps_frame_payload(cmd->frame),
                                           ps_frame_payload_len(cmd->frame), r->capacity,
                                           r->ttl_ms);
        break;
    case RQ_READ: {
        int rc = ps_bus_redis_read_history(hub->bus, cmd->topic, cmd->topic_len, &r->q,
                                           redis_read_done, redis_req_ref(r));
        if (rc) {
            redis_req_unref(r);
            redis_req_answer(r, rc == -ENOTCONN ? -EHOSTDOWN : rc, NULL);
        }
        break;
    }
    case RQ_RECOVER:
        recovery_start(hub, cmd);
        break;
    }
}

/* I/O thread: a message Redis numbered, from the topic's channel. */
void gw__ws_deliver_history(gw_server *srv, const char *topic, size_t len, const char *epoch,
                            size_t epoch_len, uint64_t offset, ps_frame *frame)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    /* The subscribers' references in one go, as run_publish() takes them. */
    size_t n = ps_topics_subscriber_count(hub->topics, topic, len);
    if (n > 1) {
        hub->prepaid = ps_frame_ref_many(frame, n);
        hub->prepaid_left = n;
    }
    (void)ps_topics_publish(hub->topics, topic, len, frame, NULL);
    if (hub->prepaid) {
        ps_frame_unref_many(hub->prepaid, hub->prepaid_left);
        hub->prepaid = NULL;
        hub->prepaid_left = 0;
    }
    /* To the other shards first: a recovery below that hands this message to a connection
     * of another shard does so after it (see recovery_here()). */
    if (gw__server_nshards(srv) > 1)
        forward_to_shards(hub, topic, len, frame);
    for (struct gw_recovery *rec = hub->recoveries, *next; rec; rec = next) {
        next = rec->next; /* a settling one may end */
        if (rec->len != len || memcmp(rec->topic, topic, len) || rec->overflow)
            continue;
        if (rec->settling) {
            int same_epoch = strlen(rec->settle_epoch) == epoch_len &&
                             !memcmp(rec->settle_epoch, epoch, epoch_len);
            if (same_epoch && offset < rec->settle_last)
                continue; /* in the range: the connection has it */
            if (!same_epoch || offset > rec->settle_last)
                recovery_give(rec, frame);
            recovery_settled(rec, 1);
            continue;
        }
        if (rec->nheld == rec->held_cap) {
            size_t cap = rec->held_cap ? rec->held_cap * 2 : 16;
            struct gw_held_msg *held = cap <= GW_RECOVERY_HELD_MAX
                                           ? realloc(rec->held, cap * sizeof(*held)) : NULL;
            if (!held) {
                /* Decided when the read answers: the recovery fails then. */
                rec->overflow = 1;
                continue;
            }
            rec->held = held;
            rec->held_cap = cap;
        }
        struct gw_held_msg *m = &rec->held[rec->nheld++];
        m->frame = ps_frame_ref(frame);
        m->offset = offset;
        memcpy(m->epoch, epoch, epoch_len); /* epoch_len < PS_RH_EPOCH_MAX: ps_rh_head_parse */
        m->epoch[epoch_len] = '\0';
    }
}

/* I/O thread: a channel's SUBSCRIBE was confirmed; the recoveries waiting for it read. */
void gw__ws_redis_channel_ready(gw_server *srv, const char *topic, size_t len)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    struct gw_recovery *rec = hub->recoveries, *next;
    for (; rec; rec = next) {
        next = rec->next; /* recovery_read may end rec */
        if (rec->pinned && !rec->reading && !rec->settling && rec->len == len &&
            !memcmp(rec->topic, topic, len))
            recovery_read(rec);
    }
}

/* I/O thread: Redis is gone; recoveries waiting for a channel end now (those reading get
 * their read's failure from hiredis). */
void gw__ws_redis_down(gw_server *srv)
{
    gw_ws_hub *hub = gw__server_hub(srv);
    struct gw_recovery *rec = hub->recoveries, *next;
    for (; rec; rec = next) {
        next = rec->next;
        if (rec->settling)
            recovery_settled(rec, 1); /* what the channel still owed it is lost with Redis */
        else if (!rec->reading)
            recovery_end(rec, -EHOSTDOWN, NULL);
    }
}

static void redis_recoveries_cancel(gw_ws_hub *hub)
{
    struct gw_recovery *rec = hub->recoveries, *next;
    for (; rec; rec = next) {
        next = rec->next;
        if (rec->settling)
            recovery_settled(rec, 0);
        else if (!rec->reading)
            recovery_end(rec, -ECANCELED, NULL);
    }
}
