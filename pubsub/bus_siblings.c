/*
 * bus_siblings.c: the bus between the processes of one machine (see bus.h).
 *
 * Wire format, on every connection, both ways:
 *
 *     u32 length (of what follows)  u8 type  body
 *
 *   HELLO    u32 magic "RSB1", u32 slot, u32 pid   first, from the connecting side
 *   PUBLISH  u8 opcode, u32 topic length, topic, payload (the rest)
 *   QUERY    u32 query id, topic (the rest)
 *   ANSWER   u32 query id, u64 subscribers
 *   PRESENCE a presence message (pubsub/presence.h), the rest: opaque to the bus
 *
 * Integers are little-endian. A connection carries PUBLISH and QUERY from the
 * side that connected and ANSWER back, so each process writes its publishes on
 * the connections it made itself, one stream per receiver. PRESENCE travels like PUBLISH,
 * on the connections their sender made, and is handed to ps_siblings_config.presence_in
 * with the sender's slot; the origin that callback names is kept on the connection, and
 * when that connection closes it is given to presence_link (so a killed sibling's members
 * go at once, without waiting for their expiry).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bus.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SIB_MAGIC 0x31425352u /* "RSB1" read as little-endian bytes */
#define SIB_LEN_BYTES 4
#define SIB_PUBLISH_FIXED (1 + 1 + 4) /* type, opcode, topic length */
#define SIB_READ_BUDGET (256u * 1024u) /* bytes read from one socket per service */
#define SIB_IOV_MAX 64
#define SIB_RETRY_FIRST_MS 50
#define SIB_RETRY_MAX_MS 1000
#define SIB_TICK_MS 50
#define SIB_QUERY_MS 1000

enum sib_type { SIB_HELLO = 1, SIB_PUBLISH = 2, SIB_QUERY = 3, SIB_ANSWER = 4, SIB_PRESENCE = 5 };

/* ---- framing: pure functions over bytes ----------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* One decoded message; pointers borrow the buffer it was decoded from. */
typedef struct sib_view {
    int type;
    uint32_t slot, pid;           /* HELLO */
    unsigned opcode;              /* PUBLISH */
    const char *topic;            /* PUBLISH, QUERY */
    size_t topic_len;
    const unsigned char *payload; /* PUBLISH, PRESENCE */
    size_t payload_len;
    uint32_t qid;                 /* QUERY, ANSWER */
    uint64_t count;               /* ANSWER */
} sib_view;

/*
 * Decodes the message at the start of buf (avail bytes). Returns the bytes it
 * takes (> 0) with *out filled, 0 if it is not all there yet, -EMSGSIZE if its
 * length is over max_body, -EPROTO if it is malformed (unknown type, a body too
 * short for its type, a bad HELLO magic, a PUBLISH opcode that is neither text
 * nor binary).
 */
static long sib_decode(const unsigned char *buf, size_t avail, size_t max_body, sib_view *out)
{
    if (avail < SIB_LEN_BYTES)
        return 0;
    uint32_t len = get32(buf);
    if (len < 1)
        return -EPROTO;
    if (len > max_body)
        return -EMSGSIZE;
    if (avail - SIB_LEN_BYTES < len)
        return 0;
    const unsigned char *b = buf + SIB_LEN_BYTES + 1;
    size_t blen = len - 1;
    memset(out, 0, sizeof(*out));
    out->type = buf[SIB_LEN_BYTES];
    switch (out->type) {
    case SIB_HELLO:
        if (blen != 12 || get32(b) != SIB_MAGIC)
            return -EPROTO;
        out->slot = get32(b + 4);
        out->pid = get32(b + 8);
        break;
    case SIB_PUBLISH: {
        if (blen < 5)
            return -EPROTO;
        out->opcode = b[0];
        uint32_t tl = get32(b + 1);
        if (out->opcode != PS_OP_TEXT && out->opcode != PS_OP_BINARY)
            return -EPROTO;
        if (tl > blen - 5)
            return -EPROTO;
        out->topic = (const char *)b + 5;
        out->topic_len = tl;
        out->payload = b + 5 + tl;
        out->payload_len = blen - 5 - tl;
        break;
    }
    case SIB_QUERY:
        if (blen < 4)
            return -EPROTO;
        out->qid = get32(b);
        out->topic = (const char *)b + 4;
        out->topic_len = blen - 4;
        break;
    case SIB_ANSWER:
        if (blen != 12)
            return -EPROTO;
        out->qid = get32(b);
        out->count = get64(b + 4);
        break;
    case SIB_PRESENCE:
        /* The presence table checks what is inside (ps_presence_receive). */
        out->payload = b;
        out->payload_len = blen;
        break;
    default:
        return -EPROTO;
    }
    return (long)(SIB_LEN_BYTES + len);
}

/*
 * A message on its way to siblings: head bytes (length, type and the fixed
 * part of the body, the topic included) and, for a PUBLISH, a reference to the
 * frame whose payload follows on the wire. One message is shared by the queues
 * of every sibling it goes to; the bus is single-threaded, so the count is
 * plain.
 */
typedef struct sib_msg {
    size_t refs;
    ps_frame *frame;
    size_t head_len;
    unsigned char head[];
} sib_msg;

static size_t sib_msg_len(const sib_msg *m)
{
    return m->head_len + (m->frame ? ps_frame_payload_len(m->frame) : 0);
}

static void sib_msg_unref(sib_msg *m)
{
    if (m && --m->refs == 0) {
        ps_frame_unref(m->frame);
        free(m);
    }
}

static sib_msg *sib_msg_alloc(size_t head_len)
{
    sib_msg *m = malloc(sizeof(*m) + head_len);
    if (m) {
        m->refs = 1;
        m->frame = NULL;
        m->head_len = head_len;
    }
    return m;
}

/* A PUBLISH of frame's payload on topic, or NULL (ENOMEM, or EMSGSIZE past 4 GiB). */
static sib_msg *sib_encode_publish(const char *topic, size_t len, ps_frame *frame)
{
    size_t body = SIB_PUBLISH_FIXED + len + ps_frame_payload_len(frame);
    if (len > UINT32_MAX || body > UINT32_MAX) {
        errno = EMSGSIZE;
        return NULL;
    }
    sib_msg *m = sib_msg_alloc(SIB_LEN_BYTES + SIB_PUBLISH_FIXED + len);
    if (!m)
        return NULL;
    put32(m->head, (uint32_t)body);
    m->head[4] = SIB_PUBLISH;
    m->head[5] = (unsigned char)ps_frame_opcode(frame);
    put32(m->head + 6, (uint32_t)len);
    memcpy(m->head + 10, topic, len);
    m->frame = ps_frame_ref(frame);
    return m;
}

static sib_msg *sib_encode_hello(uint32_t slot, uint32_t pid)
{
    sib_msg *m = sib_msg_alloc(SIB_LEN_BYTES + 13);
    if (m) {
        put32(m->head, 13);
        m->head[4] = SIB_HELLO;
        put32(m->head + 5, SIB_MAGIC);
        put32(m->head + 9, slot);
        put32(m->head + 13, pid);
    }
    return m;
}

static sib_msg *sib_encode_query(uint32_t qid, const char *topic, size_t len)
{
    if (len > UINT32_MAX - 5) {
        errno = EMSGSIZE;
        return NULL;
    }
    sib_msg *m = sib_msg_alloc(SIB_LEN_BYTES + 5 + len);
    if (m) {
        put32(m->head, (uint32_t)(5 + len));
        m->head[4] = SIB_QUERY;
        put32(m->head + 5, qid);
        memcpy(m->head + 9, topic, len);
    }
    return m;
}

static sib_msg *sib_encode_answer(uint32_t qid, uint64_t count)
{
    sib_msg *m = sib_msg_alloc(SIB_LEN_BYTES + 13);
    if (m) {
        put32(m->head, 13);
        m->head[4] = SIB_ANSWER;
        put32(m->head + 5, qid);
        put64(m->head + 9, count);
    }
    return m;
}

/* ---- a connection's bounded output queue ------------------------------------------------ */

/*
 * A FIFO of message references charged their wire length. A push that would
 * take the unsent bytes past limit is refused and changes nothing, so the bytes
 * held for one sibling never exceed limit however long it stalls.
 */
typedef struct sib_queue {
    sib_msg **items;
    size_t head, count, cap;
    size_t offset; /* bytes of the head message already written */
    size_t bytes;  /* unsent bytes, the head's written part excluded */
    size_t limit;
} sib_queue;

/* Returns 0, -ENOBUFS (over the limit: nothing queued), -ENOMEM. Takes a reference. */
static int sib_queue_push(sib_queue *q, sib_msg *m)
{
    size_t len = sib_msg_len(m);
    if (len > q->limit || q->bytes > q->limit - len)
        return -ENOBUFS;
    if (q->count == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        sib_msg **items = malloc(cap * sizeof(*items));
        if (!items)
            return -ENOMEM;
        for (size_t i = 0; i < q->count; i++)
            items[i] = q->items[(q->head + i) % q->cap];
        free(q->items);
        q->items = items;
        q->head = 0;
        q->cap = cap;
    }
    m->refs++;
    q->items[(q->head + q->count) % q->cap] = m;
    q->count++;
    q->bytes += len;
    return 0;
}

/* Fills iov (at most n entries) with the unsent bytes, oldest first; returns how many. */
static int sib_queue_iov(const sib_queue *q, struct iovec *iov, int n)
{
    int k = 0;
    size_t skip = q->offset;
    for (size_t i = 0; i < q->count && k + 2 <= n; i++) {
        sib_msg *m = q->items[(q->head + i) % q->cap];
        const unsigned char *parts[2] = {m->head, m->frame ? ps_frame_payload(m->frame) : NULL};
        size_t lens[2] = {m->head_len, m->frame ? ps_frame_payload_len(m->frame) : 0};
        for (int p = 0; p < 2; p++) {
            if (skip >= lens[p]) {
                skip -= lens[p];
                continue;
            }
            iov[k].iov_base = (void *)(parts[p] + skip);
            iov[k].iov_len = lens[p] - skip;
            skip = 0;
            k++;
        }
    }
    return k;
}

/* Records that n bytes went out: finished messages are released. */
static void sib_queue_consume(sib_queue *q, size_t n)
{
    q->bytes -= n;
    while (q->count) {
        sib_msg *m = q->items[q->head];
        size_t left = sib_msg_len(m) - q->offset;
        if (n < left) {
            q->offset += n;
            return;
        }
        n -= left;
        q->offset = 0;
        q->head = (q->head + 1) % q->cap;
        q->count--;
        sib_msg_unref(m);
    }
}

static void sib_queue_clear(sib_queue *q)
{
    while (q->count) {
        sib_msg_unref(q->items[q->head]);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    free(q->items);
    q->items = NULL;
    q->head = q->cap = q->offset = q->bytes = 0;
}

/* ---- the bus ----------------------------------------------------------------------------- */

typedef struct sib_conn {
    int fd;
    int outgoing;     /* we connected: it carries our publishes */
    unsigned slot;    /* the peer's slot (known at once when outgoing, from HELLO if not) */
    uint32_t pid;     /* the peer's pid, from HELLO (0 until then) */
    uint64_t presence_origin; /* incoming: the presence origin heard on it (0: none) */
    int writing;      /* EPOLLOUT is armed */
    unsigned char *rbuf;
    size_t rlen, rcap;
    sib_queue q;
    struct sib_conn *next; /* the bus's list of incoming connections */
} sib_conn;

typedef struct sib_query {
    struct sib_query *next;
    uint32_t qid;
    ps_siblings_count_fn done;
    void *arg;
    uint64_t remote;
    unsigned answered, pending;
    unsigned char *waiting; /* per slot: an answer is awaited from it */
    uint64_t deadline_ms;
} sib_query;

struct bus_siblings {
    ps_bus base; /* first: a ps_bus * is a struct bus_siblings * */
    ps_topics *topics;
    ps_siblings_config cfg;
    char group[65];
    int epfd, listen_fd, timer_fd;
    int timer_armed;
    sib_conn **out;        /* per slot: our connection to it, or NULL */
    uint64_t *retry_at_ms; /* per slot: when to try connecting again */
    unsigned *retry_ms;    /* per slot: the current back-off */
    sib_conn *in;          /* incoming connections */
    sib_query *queries;
    uint32_t next_qid;
    int too_large_logged;
    int closing; /* the bus is being closed: links closing now are no deaths */
    ps_siblings_stats stats;
};

static const ps_bus_ops siblings_ops;

/* Markers for the epoll entries that are not connections. */
static char mark_listen, mark_timer;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The abstract socket address of slot. Returns its length. */
static socklen_t slot_address(const struct bus_siblings *b, unsigned slot, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "robyn-siblings/%s/%u",
                     b->group, slot);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static const char *peer_name(const sib_conn *c, char *buf, size_t cap)
{
    if (c->pid)
        snprintf(buf, cap, "process %u (pid %u)", c->slot, c->pid);
    else if (c->outgoing)
        snprintf(buf, cap, "process %u", c->slot);
    else
        snprintf(buf, cap, "an unidentified sibling");
    return buf;
}

static void arm_timer(struct bus_siblings *b, int on)
{
    if (on == b->timer_armed)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (on) {
        its.it_value.tv_nsec = SIB_TICK_MS * 1000000L;
        its.it_interval = its.it_value;
    }
    timerfd_settime(b->timer_fd, 0, &its, NULL);
    b->timer_armed = on;
}

/* Whether anything waits on the clock: a slot to reconnect, a count to expire. */
static void update_timer(struct bus_siblings *b)
{
    int need = b->queries != NULL;
    for (unsigned s = 0; !need && s < b->cfg.count; s++)
        need = s != b->cfg.slot && b->out[s] == NULL;
    arm_timer(b, need);
}

static void set_writing(struct bus_siblings *b, sib_conn *c, int on)
{
    if (c->writing == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->writing = on;
}

/* A count no longer waits for slot (its connection went away). */
static void forget_slot_in_queries(struct bus_siblings *b, unsigned slot);

static void conn_close(struct bus_siblings *b, sib_conn *c)
{
    epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    sib_queue_clear(&c->q);
    free(c->rbuf);
    if (c->outgoing) {
        b->out[c->slot] = NULL;
        b->stats.connected--;
        b->retry_ms[c->slot] = SIB_RETRY_FIRST_MS;
        b->retry_at_ms[c->slot] = now_ms() + SIB_RETRY_FIRST_MS;
        forget_slot_in_queries(b, c->slot);
    } else {
        for (sib_conn **p = &b->in; *p; p = &(*p)->next)
            if (*p == c) {
                *p = c->next;
                break;
            }
        b->stats.accepted--;
        if (c->pid && b->cfg.presence_link && !b->closing)
            b->cfg.presence_link(b->cfg.presence_ctx, c->slot, 0, c->presence_origin);
    }
    free(c);
    update_timer(b);
}

static sib_conn *conn_new(struct bus_siblings *b, int fd, int outgoing, unsigned slot)
{
    sib_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->outgoing = outgoing;
    c->slot = slot;
    c->q.limit = b->cfg.queue_limit;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev)) {
        free(c);
        return NULL;
    }
    return c;
}

/* Writes what c's queue holds until it is empty or the socket is full. Returns 0, or -1
 * after closing c (the peer is gone). */
static int conn_flush(struct bus_siblings *b, sib_conn *c)
{
    while (c->q.count) {
        struct iovec iov[SIB_IOV_MAX];
        int n = sib_queue_iov(&c->q, iov, SIB_IOV_MAX);
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_writing(b, c, 1);
                return 0;
            }
            conn_close(b, c);
            return -1;
        }
        sib_queue_consume(&c->q, (size_t)w);
    }
    set_writing(b, c, 0);
    return 0;
}

/*
 * Queues m for c and asks for a write. Returns 0, or -1 when c's queue is full: the
 * sibling is not reading, which is logged and counted, and the caller must close c as
 * soon as it no longer uses it (it is not closed here, so that a caller reading from c
 * keeps a valid connection).
 */
static int conn_send(struct bus_siblings *b, sib_conn *c, sib_msg *m)
{
    int rc = sib_queue_push(&c->q, m);
    if (rc == -ENOBUFS) {
        char name[64];
        fprintf(stderr, "robyn: siblings: %s is not reading; cut off with %zu bytes queued "
                        "(ROBYN_SIBLINGS_QUEUE_LIMIT); it reconnects when it reads again\n",
                peer_name(c, name, sizeof(name)), c->q.bytes);
        b->stats.cut_off++;
        return -1;
    }
    if (rc < 0) {
        fprintf(stderr, "robyn: siblings: out of memory queueing a message\n");
        return 0;
    }
    /* Written at the next service: every message of this round goes in one writev. */
    set_writing(b, c, 1);
    return 0;
}

static void try_connect(struct bus_siblings *b, unsigned slot)
{
    struct sockaddr_un sa;
    socklen_t sl = slot_address(b, slot, &sa);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    /* A Unix stream connect completes at once or fails (no listener yet, backlog full):
     * either way there is no connection in progress to follow. */
    if (connect(fd, (struct sockaddr *)&sa, sl) < 0) {
        close(fd);
        unsigned next = b->retry_ms[slot] * 2;
        b->retry_ms[slot] = next > SIB_RETRY_MAX_MS ? SIB_RETRY_MAX_MS : next;
        b->retry_at_ms[slot] = now_ms() + b->retry_ms[slot];
        return;
    }
    sib_conn *c = conn_new(b, fd, 1, slot);
    sib_msg *hello = c ? sib_encode_hello(b->cfg.slot, (uint32_t)getpid()) : NULL;
    if (!hello) {
        if (c) {
            epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL);
            free(c);
        }
        close(fd);
        b->retry_at_ms[slot] = now_ms() + SIB_RETRY_MAX_MS;
        return;
    }
    b->out[slot] = c;
    b->stats.connected++;
    b->retry_ms[slot] = SIB_RETRY_FIRST_MS;
    int cut = conn_send(b, c, hello);
    sib_msg_unref(hello);
    if (cut) {
        conn_close(b, c);
        return;
    }
    /* Last: the callback may send on c, and even close it. */
    if (b->cfg.presence_link && !b->closing)
        b->cfg.presence_link(b->cfg.presence_ctx, slot, 1, 0);
}

static void accept_all(struct bus_siblings *b)
{
    for (;;) {
        int fd = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct ucred cred;
        socklen_t cl = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) || cred.uid != geteuid()) {
            /* Abstract sockets have no file permissions: the uid is the boundary. */
            fprintf(stderr, "robyn: siblings: refused a connection from another user\n");
            close(fd);
            continue;
        }
        sib_conn *c = conn_new(b, fd, 0, 0);
        if (!c) {
            close(fd);
            continue;
        }
        c->next = b->in;
        b->in = c;
        b->stats.accepted++;
    }
}

static void finish_query(struct bus_siblings *b, sib_query *q)
{
    for (sib_query **p = &b->queries; *p; p = &(*p)->next)
        if (*p == q) {
            *p = q->next;
            break;
        }
    ps_siblings_count_fn done = q->done;
    void *arg = q->arg;
    uint64_t remote = q->remote;
    unsigned answered = q->answered;
    free(q->waiting);
    free(q);
    done(arg, remote, answered);
}

static void forget_slot_in_queries(struct bus_siblings *b, unsigned slot)
{
    sib_query *q = b->queries;
    while (q) {
        sib_query *next = q->next;
        if (q->waiting[slot]) {
            q->waiting[slot] = 0;
            if (--q->pending == 0)
                finish_query(b, q);
        }
        q = next;
    }
}

/* Acts on one message from c. Returns 0, or -1 when c must be closed. */
static int handle(struct bus_siblings *b, sib_conn *c, const sib_view *v)
{
    char name[64];
    switch (v->type) {
    case SIB_HELLO:
        if (v->slot >= b->cfg.count || v->slot == b->cfg.slot) {
            fprintf(stderr, "robyn: siblings: a peer says it is process %u of %u; dropped\n",
                    v->slot, b->cfg.count);
            return -1;
        }
        c->slot = v->slot;
        c->pid = v->pid;
        /* The peer is up: connect back now rather than at the next retry. */
        if (!b->out[v->slot])
            try_connect(b, v->slot);
        return 0;
    case SIB_PUBLISH: {
        ps_frame *f = ps_frame_new(v->opcode, v->payload, v->payload_len);
        if (!f) {
            fprintf(stderr, "robyn: siblings: out of memory for a message from %s\n",
                    peer_name(c, name, sizeof(name)));
            return 0;
        }
        if (b->cfg.deliver)
            b->cfg.deliver(b->cfg.deliver_ctx, v->topic, v->topic_len, f);
        else
            (void)ps_topics_publish(b->topics, v->topic, v->topic_len, f, NULL);
        ps_frame_unref(f);
        b->stats.received++;
        return 0;
    }
    case SIB_QUERY: {
        size_t n = b->cfg.count_here ? b->cfg.count_here(b->cfg.deliver_ctx, v->topic, v->topic_len)
                                : ps_topics_subscriber_count(b->topics, v->topic, v->topic_len);
        sib_msg *m = sib_encode_answer(v->qid, n);
        int rc = m ? conn_send(b, c, m) : 0;
        sib_msg_unref(m);
        return rc;
    }
    case SIB_PRESENCE:
        /* Only from a sibling that said who it is, on a connection it made. */
        if (c->outgoing || !c->pid)
            return 0;
        if (b->cfg.presence_in) {
            uint64_t origin = b->cfg.presence_in(b->cfg.presence_ctx, c->slot, v->payload,
                                                 v->payload_len);
            if (origin)
                c->presence_origin = origin;
        }
        return 0;
    case SIB_ANSWER:
        if (!c->outgoing)
            return 0;
        for (sib_query *q = b->queries; q; q = q->next) {
            if (q->qid != v->qid)
                continue;
            if (q->waiting[c->slot]) {
                q->waiting[c->slot] = 0;
                q->remote += v->count;
                q->answered++;
                if (--q->pending == 0)
                    finish_query(b, q);
            }
            break;
        }
        return 0;
    }
    return 0;
}

/* Reads what c has (up to a budget) and acts on every whole message. */
static void conn_read(struct bus_siblings *b, sib_conn *c)
{
    char name[64];
    size_t budget = SIB_READ_BUDGET;
    size_t max_total = SIB_LEN_BYTES + b->cfg.max_message;
    while (budget) {
        if (c->rcap - c->rlen < 4096) {
            size_t cap = c->rcap ? c->rcap * 2 : 16384;
            if (cap > max_total + 4096)
                cap = max_total + 4096;
            if (cap <= c->rcap) {
                conn_close(b, c); /* cannot happen: a message over the limit fails decode */
                return;
            }
            unsigned char *nb = realloc(c->rbuf, cap);
            if (!nb) {
                conn_close(b, c);
                return;
            }
            c->rbuf = nb;
            c->rcap = cap;
        }
        size_t room = c->rcap - c->rlen;
        ssize_t n = read(c->fd, c->rbuf + c->rlen, room < budget ? room : budget);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_close(b, c); /* the sibling went away (or a read error) */
            return;
        }
        c->rlen += (size_t)n;
        budget -= (size_t)n;
        size_t off = 0;
        for (;;) {
            sib_view v;
            long used = sib_decode(c->rbuf + off, c->rlen - off, b->cfg.max_message, &v);
            if (used == 0)
                break;
            if (used < 0) {
                fprintf(stderr, "robyn: siblings: %s sent %s; disconnected\n",
                        peer_name(c, name, sizeof(name)),
                        used == -EMSGSIZE ? "a message over the size limit" : "malformed data");
                conn_close(b, c);
                return;
            }
            off += (size_t)used;
            if (handle(b, c, &v)) {
                conn_close(b, c);
                return;
            }
        }
        if (off) {
            memmove(c->rbuf, c->rbuf + off, c->rlen - off);
            c->rlen -= off;
        }
    }
}

static void on_tick(struct bus_siblings *b)
{
    uint64_t expirations;
    while (read(b->timer_fd, &expirations, sizeof(expirations)) > 0) {
    }
    uint64_t now = now_ms();
    for (unsigned s = 0; s < b->cfg.count; s++)
        if (s != b->cfg.slot && !b->out[s] && now >= b->retry_at_ms[s])
            try_connect(b, s);
    sib_query *q = b->queries;
    while (q) {
        sib_query *next = q->next;
        if (now >= q->deadline_ms)
            finish_query(b, q);
        q = next;
    }
    update_timer(b);
}

void ps_bus_siblings_service(ps_bus *bus)
{
    struct bus_siblings *b = (struct bus_siblings *)bus;
    struct epoll_event evs[64];
    int n = epoll_wait(b->epfd, evs, 64, 0);
    int tick = 0;
    /* Events first, then the writes they and earlier publishes queued. A connection closed
     * while handling one event may still be named by a later one in this batch, so closes
     * are only acted on through the event of their own fd, and reads come before any
     * write that could close. */
    for (int i = 0; i < n; i++) {
        void *p = evs[i].data.ptr;
        if (p == &mark_listen)
            accept_all(b);
        else if (p == &mark_timer)
            tick = 1;
    }
    for (int i = 0; i < n; i++) {
        void *p = evs[i].data.ptr;
        if (p == &mark_listen || p == &mark_timer)
            continue;
        /* Still alive? (an earlier event of this batch may have closed it) */
        sib_conn *c = p;
        int alive = 0;
        for (unsigned s = 0; !alive && s < b->cfg.count; s++)
            alive = b->out[s] == c;
        for (sib_conn *in = b->in; !alive && in; in = in->next)
            alive = in == c;
        if (!alive)
            continue;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            conn_read(b, c);
    }
    /* Flush every connection with something queued: the messages of the whole round go
     * out together. */
    for (unsigned s = 0; s < b->cfg.count; s++)
        if (b->out[s] && b->out[s]->q.count)
            (void)conn_flush(b, b->out[s]);
    sib_conn *c = b->in;
    while (c) {
        sib_conn *next = c->next;
        if (c->q.count)
            (void)conn_flush(b, c);
        c = next;
    }
    if (tick)
        on_tick(b);
}

static int siblings_publish(ps_bus *bus, const char *topic, size_t len, ps_frame *frame,
                            const ps_subscriber *exclude)
{
    struct bus_siblings *b = (struct bus_siblings *)bus;
    size_t local = ps_topics_publish(b->topics, topic, len, frame, exclude);
    sib_msg *m = NULL;
    for (unsigned s = 0; s < b->cfg.count; s++) {
        sib_conn *c = b->out[s];
        if (!c)
            continue;
        if (!m) {
            m = sib_encode_publish(topic, len, frame);
            if (!m)
                break;
            if (sib_msg_len(m) > b->cfg.queue_limit) {
                b->stats.too_large++;
                if (!b->too_large_logged)
                    fprintf(stderr, "robyn: siblings: a message of %zu bytes is larger than "
                                    "the queue limit (%zu); delivered in this process only\n",
                            sib_msg_len(m), b->cfg.queue_limit);
                b->too_large_logged = 1;
                break;
            }
        }
        if (conn_send(b, c, m))
            conn_close(b, c);
        else
            b->stats.sent++;
    }
    sib_msg_unref(m);
    return local > INT_MAX ? INT_MAX : (int)local;
}

int ps_bus_siblings_count(ps_bus *bus, const char *topic, size_t len,
                          ps_siblings_count_fn done, void *arg)
{
    struct bus_siblings *b = (struct bus_siblings *)bus;
    sib_query *q = calloc(1, sizeof(*q));
    unsigned char *waiting = q ? calloc(b->cfg.count, 1) : NULL;
    sib_msg *m = waiting ? sib_encode_query(b->next_qid, topic, len) : NULL;
    if (!m) {
        free(waiting);
        free(q);
        return -ENOMEM;
    }
    q->qid = b->next_qid++;
    q->done = done;
    q->arg = arg;
    q->waiting = waiting;
    q->deadline_ms = now_ms() + SIB_QUERY_MS;
    q->next = b->queries;
    b->queries = q;
    for (unsigned s = 0; s < b->cfg.count; s++) {
        sib_conn *c = b->out[s];
        if (!c)
            continue;
        if (conn_send(b, c, m)) {
            conn_close(b, c);
            continue;
        }
        q->waiting[s] = 1;
        q->pending++;
    }
    sib_msg_unref(m);
    if (q->pending == 0)
        finish_query(b, q);
    update_timer(b);
    return 0;
}

int ps_bus_siblings_fd(ps_bus *bus)
{
    return ((struct bus_siblings *)bus)->epfd;
}

void ps_bus_siblings_stats(ps_bus *bus, ps_siblings_stats *out)
{
    *out = ((struct bus_siblings *)bus)->stats;
}

int ps_bus_siblings_presence_send(ps_bus *bus, unsigned slot, const void *msg, size_t len)
{
    struct bus_siblings *b = (struct bus_siblings *)bus;
    if (len > UINT32_MAX - 1 || 1 + len > b->cfg.max_message) {
        errno = EMSGSIZE;
        return -EMSGSIZE;
    }
    sib_msg *m = sib_msg_alloc(SIB_LEN_BYTES + 1 + len);
    if (!m)
        return -ENOMEM;
    put32(m->head, (uint32_t)(1 + len));
    m->head[4] = SIB_PRESENCE;
    memcpy(m->head + 5, msg, len);
    int sent = 0;
    for (unsigned s = 0; s < b->cfg.count; s++) {
        sib_conn *c = b->out[s];
        if (!c || (slot != PS_SIBLINGS_ALL && s != slot))
            continue;
        if (conn_send(b, c, m))
            conn_close(b, c);
        else
            sent++;
    }
    sib_msg_unref(m);
    return sent;
}

int ps_bus_is_siblings(const ps_bus *bus)
{
    return bus != NULL && bus->ops == &siblings_ops;
}

static void siblings_close(ps_bus *bus)
{
    struct bus_siblings *b = (struct bus_siblings *)bus;
    b->closing = 1;
    while (b->queries)
        finish_query(b, b->queries);
    for (unsigned s = 0; s < b->cfg.count; s++)
        if (b->out[s])
            conn_close(b, b->out[s]);
    while (b->in)
        conn_close(b, b->in);
    while (b->queries) /* closing connections finishes nothing new, but be sure */
        finish_query(b, b->queries);
    close(b->listen_fd);
    close(b->timer_fd);
    close(b->epfd);
    free(b->out);
    free(b->retry_at_ms);
    free(b->retry_ms);
    free(b);
}

static const ps_bus_ops siblings_ops = {
    .name = "siblings",
    .publish = siblings_publish,
    .subscribe_interest = NULL,
    .unsubscribe_interest = NULL,
    .close = siblings_close,
};

ps_bus *ps_bus_siblings_new(ps_topics *topics, const ps_siblings_config *cfg, char *err,
                            size_t errlen)
{
    if (!cfg->group || !cfg->group[0] || strlen(cfg->group) > 64 || cfg->count < 2 ||
        cfg->count > PS_SIBLINGS_MAX || cfg->slot >= cfg->count || cfg->queue_limit < 1024 ||
        cfg->max_message < 64) {
        snprintf(err, errlen, "bad siblings configuration (group of 1-64 bytes, 2-%d "
                              "processes, slot below count, limits of at least 1 KiB)",
                 PS_SIBLINGS_MAX);
        errno = EINVAL;
        return NULL;
    }
    struct bus_siblings *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    b->base.ops = &siblings_ops;
    b->topics = topics;
    b->cfg = *cfg;
    snprintf(b->group, sizeof(b->group), "%s", cfg->group);
    b->cfg.group = b->group;
    b->stats.peers = cfg->count - 1;
    b->epfd = b->listen_fd = b->timer_fd = -1;
    b->out = calloc(cfg->count, sizeof(*b->out));
    b->retry_at_ms = calloc(cfg->count, sizeof(*b->retry_at_ms));
    b->retry_ms = calloc(cfg->count, sizeof(*b->retry_ms));
    int e = ENOMEM;
    if (!b->out || !b->retry_at_ms || !b->retry_ms) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (unsigned s = 0; s < cfg->count; s++)
        b->retry_ms[s] = SIB_RETRY_FIRST_MS;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    b->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (b->epfd < 0 || b->timer_fd < 0 || b->listen_fd < 0) {
        e = errno;
        snprintf(err, errlen, "cannot create the siblings' sockets: %s", strerror(e));
        goto fail;
    }
    struct sockaddr_un sa;
    socklen_t sl = slot_address(b, cfg->slot, &sa);
    if (bind(b->listen_fd, (struct sockaddr *)&sa, sl) || listen(b->listen_fd, 64)) {
        e = errno;
        snprintf(err, errlen, "cannot listen for sibling processes as process %u of group "
                              "'%s': %s", cfg->slot, b->group, strerror(e));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &mark_listen};
    struct epoll_event tv = {.events = EPOLLIN, .data.ptr = &mark_timer};
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->listen_fd, &ev) ||
        epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->timer_fd, &tv)) {
        e = errno;
        snprintf(err, errlen, "epoll: %s", strerror(e));
        goto fail;
    }
    /* Connect to whoever is up already; the timer retries the others. */
    for (unsigned s = 0; s < cfg->count; s++)
        if (s != cfg->slot)
            try_connect(b, s);
    update_timer(b);
    return &b->base;
fail:
    if (b->listen_fd >= 0)
        close(b->listen_fd);
    if (b->timer_fd >= 0)
        close(b->timer_fd);
    if (b->epfd >= 0)
        close(b->epfd);
    free(b->out);
    free(b->retry_at_ms);
    free(b->retry_ms);
    free(b);
    errno = e;
    return NULL;
}
