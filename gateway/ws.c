/*
 * WebSocket connections on the I/O thread, and the thread-safe calls that reach them.
 * See ws.h for the model.
 */
#include "ws.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "internal.h"
#include "queue.h"
#include "topics.h"

_Static_assert(PS_FRAME_HEADROOM >= LWS_PRE, "frames need LWS_PRE bytes in front");

/* Writes at most this many bytes of queued frames with one lws_write(). */
#define GW_WS_COALESCE (64u * 1024u)

/* The I/O thread's state for one WebSocket connection. */
typedef struct gw_ws_conn {
    struct lws *wsi;
    gw_ws_handle *h;
    ps_queue *queue;
    unsigned char *msg; /* the message being reassembled */
    size_t msg_len, msg_cap;
    int msg_binary;
    int in_message;
    int close_code; /* set: close with it at the next WRITEABLE */
    char close_reason[124];
    int peer_code; /* what the peer's close frame said */
    char peer_reason[124];
    int paused; /* reading stopped because Python's inbox is full */
} gw_ws_conn;

typedef enum { CMD_SEND, CMD_CLOSE, CMD_PUBLISH, CMD_RESUME, CMD_CLOSE_ALL } cmd_type;

typedef struct gw_ws_cmd {
    struct gw_ws_cmd *next;
    cmd_type type;
    gw_ws_handle *h; /* a reference, or NULL */
    ps_frame *frame; /* a reference, or NULL */
    int code;
    char *topic; /* PUBLISH: owned */
    size_t topic_len;
    char reason[124];
} gw_ws_cmd;

struct gw_ws_hub {
    gw_server *srv;
    gw_ws_config cfg;
    lws_retry_bo_t retry;

    pthread_mutex_t topics_lock; /* guards topics and every handle's sub */
    ps_topics *topics;
    ps_bus *bus;

    pthread_mutex_t cmd_lock;
    gw_ws_cmd *cmd_head, *cmd_tail;

    pthread_mutex_t ev_lock;
    gw_ws_event *ev_head, *ev_tail;

    /* I/O thread */
    uint64_t next_id;
    gw_ws_conn **conns; /* every open connection, for close_all */
    size_t nconns, conns_cap;
    gw_request *upgrading; /* the request confirmed by CONFIRM_UPGRADE, until ESTABLISHED */
    struct lws *upgrading_wsi;

    atomic_size_t slow_closed, slow_dropped, open_count;
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
    gw_request_free_unanswered(h->handshake);
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

static void post_event(gw_ws_hub *hub, gw_ws_event *ev)
{
    pthread_mutex_lock(&hub->ev_lock);
    int was_empty = hub->ev_head == NULL;
    ev->next = NULL;
    if (hub->ev_tail)
        hub->ev_tail->next = ev;
    else
        hub->ev_head = ev;
    hub->ev_tail = ev;
    pthread_mutex_unlock(&hub->ev_lock);
    if (was_empty)
        gw__wake_loop(hub->srv);
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
    gw_ws_hub *hub = srv->ws;
    pthread_mutex_lock(&hub->ev_lock);
    gw_ws_event *list = hub->ev_head;
    hub->ev_head = hub->ev_tail = NULL;
    pthread_mutex_unlock(&hub->ev_lock);
    return list;
}

/* ---- commands from other threads ---------------------------------------------------- */

static void cmd_free(gw_ws_cmd *c)
{
    gw_ws_handle_unref(c->h);
    ps_frame_unref(c->frame);
    free(c->topic);
    free(c);
}

static void post_command(gw_ws_hub *hub, gw_ws_cmd *c)
{
    pthread_mutex_lock(&hub->cmd_lock);
    int was_empty = hub->cmd_head == NULL;
    c->next = NULL;
    if (hub->cmd_tail)
        hub->cmd_tail->next = c;
    else
        hub->cmd_head = c;
    hub->cmd_tail = c;
    pthread_mutex_unlock(&hub->cmd_lock);
    if (was_empty) {
        pthread_mutex_lock(&hub->srv->answer_lock);
        if (hub->srv->context)
            lws_cancel_service(hub->srv->context);
        pthread_mutex_unlock(&hub->srv->answer_lock);
    }
}

int gw_ws_send(gw_server *srv, gw_ws_handle *h, unsigned opcode, const void *data, size_t len)
{
    if (atomic_load(&h->gone))
        return -ENOTCONN;
    gw_ws_cmd *c = calloc(1, sizeof(*c));
    ps_frame *f = c ? ps_frame_new(opcode, data, len) : NULL;
    if (!f) {
        free(c);
        return -ENOMEM;
    }
    c->type = CMD_SEND;
    c->h = gw_ws_handle_ref(h);
    c->frame = f;
    size_t pending = atomic_fetch_add(&h->cmd_bytes, ps_frame_wire_len(f)) +
                     ps_frame_wire_len(f) + atomic_load(&h->queued);
    post_command(srv->ws, c);
    return pending > srv->ws->cfg.high_water ? 1 : 0;
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
    if (atomic_load(&h->gone) || backlog_of(h) <= srv->ws->cfg.high_water) {
        atomic_store(&h->want_drain, 0);
        return 0;
    }
    return 1;
}

int gw_ws_close(gw_server *srv, gw_ws_handle *h, int code, const char *reason)
{
    if (atomic_load(&h->gone))
        return -ENOTCONN;
    gw_ws_cmd *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->type = CMD_CLOSE;
    c->h = gw_ws_handle_ref(h);
    c->code = code;
    snprintf(c->reason, sizeof(c->reason), "%s", reason ? reason : "");
    post_command(srv->ws, c);
    return 0;
}

void gw_ws_close_all(gw_server *srv)
{
    gw_ws_cmd *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->type = CMD_CLOSE_ALL;
    c->code = LWS_CLOSE_STATUS_GOINGAWAY;
    snprintf(c->reason, sizeof(c->reason), "server shutting down");
    post_command(srv->ws, c);
}

void gw_ws_consumed(gw_server *srv, gw_ws_handle *h, int n)
{
    int half = srv->ws->cfg.inbox_limit / 2;
    int left = atomic_fetch_sub(&h->inbox, n) - n;
    /* Reading pauses only at the limit, so a resume is needed at most when the inbox
     * crosses half of it; the I/O thread checks whether it had paused. */
    if (left <= half && left + n > half && !atomic_load(&h->gone)) {
        gw_ws_cmd *c = calloc(1, sizeof(*c));
        if (!c)
            return;
        c->type = CMD_RESUME;
        c->h = gw_ws_handle_ref(h);
        post_command(srv->ws, c);
    }
}

int gw_ws_subscribe(gw_server *srv, gw_ws_handle *h, const char *topic, size_t len)
{
    gw_ws_hub *hub = srv->ws;
    pthread_mutex_lock(&hub->topics_lock);
    int rc = h->sub ? ps_topics_subscribe(h->sub, topic, len) : -ENOTCONN;
    pthread_mutex_unlock(&hub->topics_lock);
    return rc;
}

int gw_ws_unsubscribe(gw_server *srv, gw_ws_handle *h, const char *topic, size_t len)
{
    gw_ws_hub *hub = srv->ws;
    pthread_mutex_lock(&hub->topics_lock);
    int rc = h->sub ? ps_topics_unsubscribe(h->sub, topic, len) : -ENOTCONN;
    pthread_mutex_unlock(&hub->topics_lock);
    return rc;
}

size_t gw_ws_subscribers(gw_server *srv, const char *topic, size_t len)
{
    gw_ws_hub *hub = srv->ws;
    pthread_mutex_lock(&hub->topics_lock);
    size_t n = ps_topics_subscriber_count(hub->topics, topic, len);
    pthread_mutex_unlock(&hub->topics_lock);
    return n;
}

long gw_ws_publish(gw_server *srv, const char *topic, size_t len, unsigned opcode,
                   const void *data, size_t dlen, gw_ws_handle *exclude)
{
    gw_ws_hub *hub = srv->ws;
    pthread_mutex_lock(&hub->topics_lock);
    size_t n = ps_topics_subscriber_count(hub->topics, topic, len);
    if (n && exclude && exclude->sub) {
        /* The sender only counts when it is subscribed itself. */
        for (size_t i = 0; i < ps_subscriber_topic_count(exclude->sub); i++) {
            size_t tl;
            const char *t = ps_subscriber_topic(exclude->sub, i, &tl);
            if (tl == len && !memcmp(t, topic, len)) {
                n--;
                break;
            }
        }
    }
    pthread_mutex_unlock(&hub->topics_lock);
    if (!n)
        return 0;
    gw_ws_cmd *c = calloc(1, sizeof(*c));
    char *name = c ? malloc(len + 1) : NULL;
    ps_frame *f = name ? ps_frame_new(opcode, data, dlen) : NULL;
    if (!f) {
        free(name);
        free(c);
        return -ENOMEM;
    }
    memcpy(name, topic, len);
    name[len] = '\0';
    c->type = CMD_PUBLISH;
    c->topic = name;
    c->topic_len = len;
    c->frame = f;
    c->h = exclude ? gw_ws_handle_ref(exclude) : NULL;
    post_command(hub, c);
    return (long)n;
}

void gw_ws_get_stats(gw_server *srv, gw_ws_stats *out)
{
    gw_ws_hub *hub = srv->ws;
    out->connections = atomic_load(&hub->open_count);
    pthread_mutex_lock(&hub->topics_lock);
    out->topics = ps_topics_count(hub->topics);
    pthread_mutex_unlock(&hub->topics_lock);
    out->slow_closed = atomic_load(&hub->slow_closed);
    out->slow_dropped = atomic_load(&hub->slow_dropped);
}

/* ---- the I/O thread ----------------------------------------------------------------- */

static void request_close(gw_ws_conn *c, int code, const char *reason)
{
    if (c->close_code)
        return;
    c->close_code = code;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
    lws_callback_on_writable(c->wsi);
}

/* I/O thread: publishes the queue's size to Python and wakes a waiting sender once the
 * backlog is back under the high-water mark. */
static void update_backlog(gw_ws_hub *hub, gw_ws_conn *c)
{
    gw_ws_handle *h = c->h;
    atomic_store(&h->queued, ps_queue_bytes(c->queue));
    if (atomic_load(&h->want_drain) && backlog_of(h) <= hub->cfg.high_water) {
        atomic_store(&h->want_drain, 0);
        gw_ws_event *ev = new_event(GW_WS_DRAINED, h);
        if (ev)
            post_event(hub, ev);
    }
}

/* Topic delivery (I/O thread, topics lock held): queue the shared frame for this
 * subscriber, or apply the endpoint's policy when its queue is full. */
static int deliver(void *ctx, ps_subscriber *sub, ps_frame *frame)
{
    gw_ws_hub *hub = ctx;
    gw_ws_conn *c = ps_subscriber_user(sub);
    if (!c || c->close_code)
        return -1;
    int rc = ps_queue_push(c->queue, frame);
    if (rc == PS_SEND_OK || rc == PS_SEND_BACKPRESSURE) {
        atomic_store(&c->h->queued, ps_queue_bytes(c->queue));
        lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (c->h->route->ws.policy == GW_WS_POLICY_DROP) {
        atomic_fetch_add(&hub->slow_dropped, 1);
        return -1;
    }
    atomic_fetch_add(&hub->slow_closed, 1);
    ps_queue_clear(c->queue);
    request_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue over its limit");
    return -1;
}

static void run_command(gw_ws_hub *hub, gw_ws_cmd *cmd)
{
    gw_ws_conn *c = cmd->h ? cmd->h->io : NULL;
    switch (cmd->type) {
    case CMD_SEND:
        atomic_fetch_sub(&cmd->h->cmd_bytes, ps_frame_wire_len(cmd->frame));
        if (!c || c->close_code)
            break;
        /* A direct send is already paced by its sender awaiting the high-water mark:
         * past the hard limit it is a sender that does not wait, and it is closed. */
        if (ps_queue_push(c->queue, cmd->frame) == PS_SEND_DROPPED) {
            atomic_fetch_add(&hub->slow_closed, 1);
            ps_queue_clear(c->queue);
            request_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue over its limit");
            break;
        }
        atomic_store(&cmd->h->queued, ps_queue_bytes(c->queue));
        lws_callback_on_writable(c->wsi);
        break;
    case CMD_CLOSE:
        if (c)
            request_close(c, cmd->code, cmd->reason);
        break;
    case CMD_PUBLISH:
        pthread_mutex_lock(&hub->topics_lock);
        if (ps_bus_publish_frame(hub->bus, cmd->topic, cmd->topic_len, cmd->frame,
                                 cmd->h ? cmd->h->sub : NULL) < 0)
            lwsl_warn("gateway: publish to a topic failed\n");
        pthread_mutex_unlock(&hub->topics_lock);
        break;
    case CMD_RESUME:
        if (c && c->paused && atomic_load(&cmd->h->inbox) <= hub->cfg.inbox_limit / 2) {
            c->paused = 0;
            lws_rx_flow_control(c->wsi, 1);
        }
        break;
    case CMD_CLOSE_ALL:
        for (size_t i = 0; i < hub->nconns; i++)
            request_close(hub->conns[i], cmd->code, cmd->reason);
        break;
    }
}

void gw_ws_run_commands(gw_server *srv)
{
    gw_ws_hub *hub = srv->ws;
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

int gw_ws_confirm_upgrade(gw_server *srv, struct lws *wsi)
{
    gw_ws_hub *hub = srv->ws;
    char path[2048];
    int plen = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);
    if (plen <= 0)
        return gw__send_plain(wsi, 400, "Bad Request", NULL, 0) < 0 ? -1 : 1;
    if (atomic_load(&srv->draining))
        return gw__send_plain(wsi, 503, "Service Unavailable", NULL, 0) < 0 ? -1 : 1;

    gw_param params[GW_ROUTER_MAX_PARAMS];
    int nparams = 0;
    gw_route *route =
        gw_router_match(srv->router, GW_METHOD_WS, path, (size_t)plen, params, &nparams, NULL);
    if (!route)
        return gw__send_plain(wsi, 404, "Not Found", NULL, 0) < 0 ? -1 : 1;
    if (route->ws.origins) {
        char origin[512];
        int olen = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
        if (olen <= 0 || !origin_allowed(route, origin, (size_t)olen))
            return gw__send_plain(wsi, 403, "Origin not allowed", NULL, 0) < 0 ? -1 : 1;
    }
    if (atomic_load(&hub->open_count) >= hub->cfg.max_connections)
        return gw__send_plain(wsi, 503, "Too many connections", NULL, 0) < 0 ? -1 : 1;

    gw_request *req = gw_request_new_copy(route, GW_METHOD_GET, path, (size_t)plen, params,
                                          nparams);
    if (!req)
        return -1;
    int rc = gw__copy_head(srv, req, wsi);
    if (rc) {
        gw_request_free_unanswered(req);
        if (rc == -E2BIG)
            return gw__send_plain(wsi, 431, "Request Header Fields Too Large", NULL, 0) < 0 ? -1 : 1;
        return -1;
    }
    lws_get_peer_simple(wsi, req->ip, sizeof(req->ip));
    if (!strncmp(req->ip, "::ffff:", 7))
        memmove(req->ip, req->ip + 7, strlen(req->ip + 7) + 1);
    gw_request_free_unanswered(hub->upgrading); /* an upgrade that never completed */
    hub->upgrading = req;
    hub->upgrading_wsi = wsi;
    return 0;
}

int gw_ws_extension_ok(gw_server *srv, struct lws *wsi)
{
    gw_ws_hub *hub = srv->ws;
    if (hub->upgrading_wsi == wsi && hub->upgrading && hub->upgrading->route->ws.compress)
        return 0;
    return 1;
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
    hub->conns[hub->nconns++] = c;
    return 0;
}

static void untrack_conn(gw_ws_hub *hub, gw_ws_conn *c)
{
    for (size_t i = hub->nconns; i-- > 0;) {
        if (hub->conns[i] == c) {
            hub->conns[i] = hub->conns[--hub->nconns];
            return;
        }
    }
}

int gw_ws_established(gw_server *srv, gw_conn *conn, struct lws *wsi)
{
    gw_ws_hub *hub = srv->ws;
    gw_request *req = hub->upgrading_wsi == wsi ? hub->upgrading : NULL;
    hub->upgrading = NULL;
    hub->upgrading_wsi = NULL;
    if (!req)
        return -1;
    gw_ws_conn *c = calloc(1, sizeof(*c));
    gw_ws_handle *h = c ? calloc(1, sizeof(*h)) : NULL;
    if (h)
        c->queue = ps_queue_new(hub->cfg.high_water, hub->cfg.send_limit);
    if (!c || !h || !c->queue || track_conn(hub, c)) {
        if (c)
            ps_queue_free(c->queue);
        free(h);
        free(c);
        gw_request_free_unanswered(req);
        return -1;
    }
    atomic_init(&h->refs, 1); /* the I/O thread's reference, dropped on close */
    h->id = ++hub->next_id;
    h->route = req->route;
    h->handshake = req;
    h->io = c;
    c->h = h;
    c->wsi = wsi;
    c->peer_code = LWS_CLOSE_STATUS_NO_STATUS;

    char route_topic[64];
    int tl = snprintf(route_topic, sizeof(route_topic), GW_WS_ROUTE_TOPIC_FMT,
                      (const void *)req->route);
    pthread_mutex_lock(&hub->topics_lock);
    h->sub = ps_subscriber_new(hub->topics, h->id, c);
    int rc = h->sub ? ps_topics_subscribe(h->sub, route_topic, (size_t)tl) : -ENOMEM;
    pthread_mutex_unlock(&hub->topics_lock);
    conn->ws = c;
    atomic_fetch_add(&hub->open_count, 1);
    if (rc < 0)
        return -1;
    gw_ws_event *ev = new_event(GW_WS_OPEN, h);
    if (!ev)
        return -1;
    post_event(hub, ev);
    return 0;
}

int gw_ws_receive(gw_server *srv, gw_conn *conn, struct lws *wsi, const void *in, size_t len)
{
    gw_ws_hub *hub = srv->ws;
    gw_ws_conn *c = conn->ws;
    if (!c || c->close_code)
        return 0;
    if (!c->in_message) {
        c->in_message = 1;
        c->msg_len = 0;
        c->msg_binary = lws_frame_is_binary(wsi);
    }
    /* Refuse as soon as the frame header announces too much, before buffering it. */
    size_t announced = c->msg_len + len + lws_remaining_packet_payload(wsi);
    if (announced > hub->cfg.max_message) {
        request_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
        free(c->msg);
        c->msg = NULL;
        c->msg_cap = 0;
        c->in_message = 0;
        return 0;
    }
    if (c->msg_len + len + 1 > c->msg_cap) {
        size_t cap = c->msg_cap ? c->msg_cap : 256;
        while (cap < c->msg_len + len + 1)
            cap *= 2;
        unsigned char *m = realloc(c->msg, cap);
        if (!m)
            return -1;
        c->msg = m;
        c->msg_cap = cap;
    }
    memcpy(c->msg + c->msg_len, in, len);
    c->msg_len += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
        return 0;

    c->in_message = 0;
    gw_ws_event *ev = new_event(GW_WS_MESSAGE, c->h);
    if (!ev)
        return -1;
    c->msg[c->msg_len] = '\0';
    ev->data = c->msg;
    ev->len = c->msg_len;
    ev->binary = c->msg_binary;
    c->msg = NULL;
    c->msg_cap = 0;
    c->msg_len = 0;
    if (atomic_fetch_add(&c->h->inbox, 1) + 1 >= hub->cfg.inbox_limit && !c->paused) {
        c->paused = 1;
        lws_rx_flow_control(wsi, 0);
    }
    post_event(hub, ev);
    return 0;
}

int gw_ws_writeable(gw_server *srv, gw_conn *conn, struct lws *wsi)
{
    gw_ws_hub *hub = srv->ws;
    gw_ws_conn *c = conn->ws;
    if (!c)
        return 0;
    size_t off;
    ps_frame *f = ps_queue_peek(c->queue, &off);
    if (!f) {
        /* A close goes out after what was queued before it (a slow consumer's queue
         * was cleared when its close was decided). */
        if (c->close_code) {
            lws_close_reason(wsi, (enum lws_close_status)c->close_code,
                             (unsigned char *)c->close_reason, strlen(c->close_reason));
            return -1;
        }
        return 0;
    }
    size_t written = 0;
    const unsigned char *wire = ps_frame_wire(f) + off;
    size_t wlen = ps_frame_wire_len(f) - off;
    if (wlen >= GW_WS_COALESCE || ps_queue_count(c->queue) == 1) {
        /* One frame: written straight from the shared buffer, no copy. */
        if (lws_write(wsi, (unsigned char *)wire, wlen, LWS_WRITE_RAW) < 0)
            return -1;
        if (ps_queue_consume(c->queue, wlen) < 0)
            return -1;
        written = wlen;
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
    }
    update_backlog(hub, c);
    if (ps_queue_count(c->queue) || c->close_code)
        lws_callback_on_writable(wsi);
    return 0;
}

void gw_ws_peer_closed(gw_conn *conn, const void *in, size_t len)
{
    gw_ws_conn *c = conn->ws;
    if (!c)
        return;
    const unsigned char *p = in;
    if (len >= 2) {
        c->peer_code = (p[0] << 8) | p[1];
        size_t rl = len - 2 < sizeof(c->peer_reason) - 1 ? len - 2 : sizeof(c->peer_reason) - 1;
        memcpy(c->peer_reason, p + 2, rl);
        c->peer_reason[rl] = '\0';
    }
}

void gw_ws_closed(gw_server *srv, gw_conn *conn)
{
    gw_ws_hub *hub = srv->ws;
    gw_ws_conn *c = conn->ws;
    if (!c)
        return;
    conn->ws = NULL;
    gw_ws_handle *h = c->h;
    pthread_mutex_lock(&hub->topics_lock);
    ps_subscriber_free(h->sub);
    h->sub = NULL;
    pthread_mutex_unlock(&hub->topics_lock);
    atomic_store(&h->gone, 1);
    h->io = NULL;
    untrack_conn(hub, c);
    atomic_fetch_sub(&hub->open_count, 1);

    gw_ws_event *ev = new_event(GW_WS_CLOSE, h);
    if (ev) {
        /* The code the connection ended with: the peer's when it sent one, ours when we
         * closed it, else 1006 (no close frame at all). */
        if (c->peer_code != LWS_CLOSE_STATUS_NO_STATUS) {
            ev->code = c->peer_code;
            snprintf(ev->reason, sizeof(ev->reason), "%s", c->peer_reason);
        } else if (c->close_code) {
            ev->code = c->close_code;
            snprintf(ev->reason, sizeof(ev->reason), "%s", c->close_reason);
        } else {
            ev->code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
        }
        post_event(hub, ev);
    }
    ps_queue_free(c->queue);
    free(c->msg);
    free(c);
    gw_ws_handle_unref(h);
}

/* ---- setup ------------------------------------------------------------------------- */

gw_ws_hub *gw_ws_hub_new(gw_server *srv)
{
    gw_ws_hub *hub = calloc(1, sizeof(*hub));
    if (!hub)
        return NULL;
    hub->srv = srv;
    hub->topics = ps_topics_new(deliver, hub);
    hub->bus = hub->topics ? ps_bus_local_new(hub->topics) : NULL;
    if (!hub->bus) {
        ps_topics_free(hub->topics);
        free(hub);
        return NULL;
    }
    pthread_mutex_init(&hub->topics_lock, NULL);
    pthread_mutex_init(&hub->cmd_lock, NULL);
    pthread_mutex_init(&hub->ev_lock, NULL);
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
    memset(&hub->retry, 0, sizeof(hub->retry));
    hub->retry.secs_since_valid_ping = (uint16_t)cfg->ping_interval;
    hub->retry.secs_since_valid_hangup =
        (uint16_t)(cfg->ping_interval ? cfg->ping_interval + cfg->ping_timeout : 0);
}

const lws_retry_bo_t *gw__ws_retry_policy(gw_ws_hub *hub)
{
    return hub->cfg.ping_interval ? &hub->retry : NULL;
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
    gw_request_free_unanswered(hub->upgrading);
    free(hub->conns);
    ps_bus_close(hub->bus);
    ps_topics_free(hub->topics);
    pthread_mutex_destroy(&hub->topics_lock);
    pthread_mutex_destroy(&hub->cmd_lock);
    pthread_mutex_destroy(&hub->ev_lock);
    free(hub);
}
