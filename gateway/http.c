/*
 * HTTP/1.1 connections. See http.h.
 */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "lwslog.h"

/* How long a closing connection reads and drops what the client still sends, so that
 * the client reads our answer rather than a reset. */
#define GW_LINGER_US (2 * 1000 * 1000)
/* The most of a static file sent in one pass over a connection, so that a fast reader of
 * a large file does not keep the I/O thread from the others. */
#define GW_FILE_PASS_MAX (1024u * 1024u)
/* Output not yet taken by the socket past which reading pauses (a client that pipelines
 * and does not read its answers). */
#define GW_OUT_PAUSE (1024u * 1024u)
#define GW_SWEEP_US (250 * 1000)

typedef struct gw_http_conn {
    int tag; /* GW_TAG_HTTP */
    struct lws *wsi;
    gw_server *srv;
    int fd;
    gw_hp hp;
    struct gw_http_conn *prev, *next; /* srv->http_conns */
    gw_pending *first, *last;         /* answers owed, in request order */
    unsigned outstanding;             /* of them, those Python still works on */
    gw_request *upgrade;              /* a WebSocket handshake just parsed */
    char *held;                       /* bytes read while parsing was paused */
    size_t held_len, held_cap;
    char *out;                        /* bytes to write, from out_off */
    size_t out_len, out_off, out_cap;
    int paused;     /* the parser paused: new bytes are held, reading stopped */
    int read_done;  /* no more requests are read: what arrives is dropped */
    int want_close; /* close once everything owed is written */
    int shut;       /* our side is shut: lingering until linger_until */
    int dead;       /* a write failed: lws is closing it */
    int in_rx;      /* inside our own RX callback (closing is by return value there) */
    int resuming;   /* parsing held bytes from flush(): no handover from there */
    size_t flush_slot; /* 1 + index in srv->flush while marked */
    gw_static_answer static_ans; /* a static answer, from its request's head to its end */
    int64_t head_since, last_rx, idle_since, linger_until;
    char ip[GW_PEER_ADDRESS_MAX];
} gw_http_conn;

static int64_t now_us(void)
{
    return (int64_t)lws_now_usecs();
}

/* ---- the access log (docs/cli.md) ------------------------------------------------------
 * One line per answer, "IP METHOD PATH STATUS BYTES µs", into the log ring that Python
 * drains from its event loop (gateway/lwslog.c): the I/O thread never takes the GIL. */

/* "IP METHOD /path" into out; in the path, what could break or fake a line (controls,
 * space, '"', '%', non-ASCII) is written %XX. Without a request (a head that could not be
 * parsed), "IP - -". */
static void access_describe(char *out, size_t cap, const char *ip, const gw_request *req)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *method = req ? gw_method_name(req->method) : NULL;
    int at = snprintf(out, cap, "%s %s ", ip, method ? method : "-");
    size_t n = at > 0 && (size_t)at < cap ? (size_t)at : 0;
    if (!req) {
        snprintf(out + n, cap - n, "-");
        return;
    }
    const unsigned char *path = (const unsigned char *)req->buf + req->path_off;
    for (uint32_t i = 0; i < req->path_len && n + 4 < cap; i++) {
        unsigned char ch = path[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '%') {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
}

static void access_line(const char *what, int status, size_t bytes, int64_t us)
{
    char line[GW_LWSLOG_LINE];
    snprintf(line, sizeof(line), "%s %d %zu %lld", what, status, bytes, (long long)us);
    gw_lwslog_emit(GW_LOG_ACCESS, line);
}

/* An answer C gave at once: no time spent on it worth counting. */
static void access_now(gw_http_conn *c, const gw_request *req, int status, size_t bytes)
{
    char what[sizeof(((gw_access *)0)->what)];
    access_describe(what, sizeof(what), c->ip, req);
    access_line(what, status, bytes, 0);
}

/* A final answer C gave to a request complete since `since` (metrics on). */
static void count_answer(gw_http_conn *c, int status, int64_t since)
{
    if (c->srv->metrics)
        gw_metrics_observe(c->srv->metrics, status, now_us() - since);
}

/* ---- the output buffer -------------------------------------------------------------- */

static int out_reserve(gw_http_conn *c, size_t more)
{
    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + more <= c->out_cap)
        return 0;
    if (c->out_off) { /* reclaim what went out before growing */
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_len + more <= c->out_cap)
            return 0;
    }
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + more)
        cap *= 2;
    char *out = realloc(c->out, cap);
    if (!out)
        return -ENOMEM;
    c->out = out;
    c->out_cap = cap;
    return 0;
}

static int out_put(gw_http_conn *c, const char *s, size_t n)
{
    if (out_reserve(c, n))
        return -ENOMEM;
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
    return 0;
}

static void kill_conn(gw_http_conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    /* Outside its own callback a connection cannot be closed by a return value. */
    if (!c->in_rx)
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

/* Writes from data straight to the socket; returns how much went, or -1 on an error
 * that ends the connection. */
static ssize_t send_some(gw_http_conn *c, const char *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(c->fd, data + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return -1;
    }
    return (ssize_t)done;
}

/* Appends bytes owed now (nothing ahead of them waits): written with the rest of the
 * output when the pass ends. */
static void owe_now(gw_http_conn *c, const char *data, size_t len)
{
    if (out_put(c, data, len))
        kill_conn(c);
}

/* ---- slots -------------------------------------------------------------------------- */

static gw_pending *slot_new(gw_http_conn *c)
{
    gw_pending *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->conn = c;
    p->srv = c->srv;
    atomic_init(&p->refs, 1); /* the slot's */
    p->own.p = p;
    if (c->last)
        c->last->next_slot = p;
    else
        c->first = p;
    c->last = p;
    return p;
}

/* An answer C has ready while earlier requests of the connection still wait for theirs:
 * it takes a slot of its own, ready at once. */
static void owe_later(gw_http_conn *c, const char *data, size_t len, int close_after)
{
    gw_pending *p = slot_new(c);
    char *copy = p ? gw_response_alloc(len) : NULL;
    if (!copy) {
        if (p) { /* unlink and give up on the connection */
            c->last = NULL;
            for (gw_pending *q = c->first; q && q != p; q = q->next_slot)
                c->last = q;
            if (c->last)
                c->last->next_slot = NULL;
            else
                c->first = NULL;
            free(p);
        }
        kill_conn(c);
        return;
    }
    memcpy(copy, data, len);
    p->own.data = copy;
    p->own.len = len;
    p->own.final = 1;
    p->ready_head = p->ready_tail = &p->own;
    p->done = 1;
    p->close_after = close_after;
}

/* Owes an answer C made itself, in request order; close_after ends reading. */
static void owe(gw_http_conn *c, const char *data, size_t len, int close_after)
{
    if (c->first)
        owe_later(c, data, len, close_after);
    else
        owe_now(c, data, len);
    if (close_after) {
        if (!c->first)
            c->want_close = 1;
        c->read_done = 1;
    }
}

/* Returns the bytes owed (0 when the answer could not be made: the connection dies). */
static size_t owe_plain(gw_http_conn *c, int status, const char *extra, int keep_alive,
                        int head_only)
{
    char buf[768];
    size_t n = gw__plain_answer(buf, sizeof(buf), status, extra, keep_alive, head_only);
    if (!n) {
        kill_conn(c);
        return 0;
    }
    owe(c, buf, n, !keep_alive);
    return n;
}

/* ---- writing -------------------------------------------------------------------------- */

static void free_part(gw_part *part)
{
    gw_response_free(part->data);
    part->data = NULL;
    if (part != &part->p->own)
        free(part);
}

/* Sends what the socket takes of the static file of the front slot p, straight from
 * disk, once nothing waits in the output ahead of it; marks p done at the file's end. */
static void send_file(gw_http_conn *c, gw_pending *p)
{
    gw_static_answer *f = p->file;
    if (c->out_off < c->out_len)
        return; /* its head is still in the output: flush() comes back once it is out */
    size_t sent_now = 0;
    while (f->file_left && sent_now < GW_FILE_PASS_MAX) {
        size_t want = f->file_left < 256u * 1024u ? f->file_left : 256u * 1024u;
        ssize_t n = sendfile(c->fd, f->file_fd, &f->file_off, want);
        if (n > 0) {
            f->file_left -= (size_t)n;
            sent_now += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* An error, or the file got shorter than the length announced: the connection
         * cannot be finished. */
        kill_conn(c);
        return;
    }
    if (f->file_left)
        return; /* the pass is over: flush() asks for WRITEABLE to go on */
    gw_static_answer_clear(f);
    free(f);
    p->file = NULL;
    p->done = 1;
    c->outstanding--;
}

/* Moves what the slots at the front have ready into the output, in order, and pops the
 * finished ones. */
static void gather(gw_http_conn *c)
{
    gw_pending *p;
    while ((p = c->first)) {
        gw_part *part;
        while ((part = p->ready_head)) {
            p->ready_head = part->next;
            if (!p->ready_head)
                p->ready_tail = NULL;
            if (part->len) {
                /* Nothing waits in the output: try the socket straight from the part. */
                size_t sent = 0;
                if (c->out_off == c->out_len && !c->dead) {
                    ssize_t n = send_some(c, part->data, part->len);
                    if (n < 0)
                        kill_conn(c);
                    else
                        sent = (size_t)n;
                }
                if (sent < part->len && !c->dead)
                    owe_now(c, part->data + sent, part->len - sent);
            }
            if (p->metrics_since && !p->metrics_status)
                p->metrics_status = gw_metrics_status_of(part->data, part->len);
            if (p->access) {
                if (!p->access->bytes)
                    p->access->status = gw_metrics_status_of(part->data, part->len);
                p->access->bytes += part->len;
            }
            if (part->counted)
                atomic_fetch_sub(&p->unsent, part->counted);
            if (part->abort)
                p->close_after = 1;
            free_part(part);
        }
        if (!p->done && p->file && !c->dead)
            send_file(c, p);
        if (!p->done)
            break; /* a stream or a file: later answers wait behind it */
        c->first = p->next_slot;
        if (!c->first)
            c->last = NULL;
        if (p->access)
            access_line(p->access->what, p->access->status, p->access->bytes,
                        now_us() - p->access->since);
        if (p->metrics_since)
            gw_metrics_observe(c->srv->metrics, p->metrics_status, now_us() - p->metrics_since);
        int close_after = p->close_after;
        p->conn = NULL;
        gw__pending_unref(p);
        if (close_after) {
            c->want_close = 1;
            c->read_done = 1;
            /* Nothing after a closing answer is sent. */
            while ((p = c->first)) {
                c->first = p->next_slot;
                p->conn = NULL;
                atomic_store(&p->gone, 1);
                gw__stream_writable(c->srv, p);
                gw__pending_unref(p);
            }
            c->last = NULL;
            break;
        }
    }
}

static int parse(gw_http_conn *c, const char *data, size_t len);

/* Writes what can be written; shuts or resumes the connection as its state says. */
static void flush(gw_http_conn *c)
{
    if (c->dead)
        return;
    gather(c);
    if (c->out_off < c->out_len && !c->dead) {
        ssize_t n = send_some(c, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0)
            kill_conn(c);
        else
            c->out_off += (size_t)n;
    }
    if (c->dead)
        return;
    size_t backlog = c->out_len - c->out_off;
    if (backlog || (c->first && c->first->file))
        lws_callback_on_writable(c->wsi);
    if (!backlog)
        c->out_off = c->out_len = 0;
    if (c->first && c->first->streaming) {
        atomic_store(&c->first->conn_backlog, backlog);
        gw__stream_writable(c->srv, c->first);
    }
    if (!backlog && !c->first && c->want_close && !c->shut) {
        shutdown(c->fd, SHUT_WR);
        c->shut = 1;
        c->read_done = 1;
        c->linger_until = now_us() + GW_LINGER_US;
        lws_rx_flow_control(c->wsi, 1);
        return;
    }
    if (!backlog && !c->first && !gw_hp_busy(&c->hp))
        c->idle_since = now_us();
    /* Parsing paused for the answers (or the output) to catch up: go on when they have. */
    if (c->paused && !c->read_done && c->outstanding < c->srv->cfg.max_pipeline &&
        backlog < GW_OUT_PAUSE) {
        c->paused = 0;
        gw_hp_resume(&c->hp);
        lws_rx_flow_control(c->wsi, 1);
        if (c->held_len) {
            /* parse() may hold a suffix of these bytes again: work on a copy. */
            char *held = c->held;
            size_t held_len = c->held_len;
            c->held = NULL;
            c->held_len = c->held_cap = 0;
            c->resuming = 1;
            if (parse(c, held, held_len) < 0)
                kill_conn(c);
            c->resuming = 0;
            free(held);
            flush(c);
        }
    }
}

/* ---- parsing -------------------------------------------------------------------------- */

static gw_request *new_request(void *ctx)
{
    gw_http_conn *c = ctx;
    return gw_pool_take(&c->srv->pool);
}

/* Static directories come before the routes, as in Robyn: a GET or HEAD that a mount
 * takes gets its answer built here, kept on the connection until the request's (dropped)
 * body is over. Returns 1 when the mount answers. */
static const gw_route static_route = {.kind = GW_ROUTE_STATIC, .method = GW_METHOD_GET};

static void raw_path(const gw_request *req, const char **path, size_t *len)
{
    const char *t = req->buf + req->target_off;
    size_t n = req->target_len, end = 0;
    while (end < n && t[end] != '?' && t[end] != '#')
        end++;
    *path = t;
    *len = end;
}

static int route_static(gw_http_conn *c, gw_request *req)
{
    const char *path = req->buf + req->path_off;
    const gw_static_mount *m = gw_static_find(c->srv->statics, path, req->path_len);
    if (!m)
        return 0;
    const char *raw;
    size_t raw_len;
    raw_path(req, &raw, &raw_len);
    gw_static_hit hit;
    if (gw_static_resolve(m, path, req->path_len, raw, raw_len, &hit) == GW_STATIC_PASS)
        return 0;
    gw_static_answer_clear(&c->static_ans);
    if (gw_static_answer_build(m, req, &hit, &c->static_ans)) {
        req->refuse = 503;
        req->keep_alive = 0;
        return 1;
    }
    req->route = &static_route;
    return 1;
}

/* Whether a GET of req's path would be answered 200 by a mount (for the 405 of other
 * methods there). */
static int static_would_serve(gw_server *srv, const gw_request *req)
{
    const char *path = req->buf + req->path_off;
    const gw_static_mount *m = gw_static_find(srv->statics, path, req->path_len);
    if (!m)
        return 0;
    const char *raw;
    size_t raw_len;
    raw_path(req, &raw, &raw_len);
    gw_static_hit hit;
    int v = gw_static_resolve(m, path, req->path_len, raw, raw_len, &hit);
    gw_static_hit_clear(&hit);
    return v == GW_STATIC_FILE || v == GW_STATIC_LISTING;
}

/* Owes the static answer kept on the connection: at once when it is whole, else in a
 * slot of its own that sends the file from disk as the socket drains. */
static void owe_static(gw_http_conn *c, int keep_alive)
{
    gw_static_answer *a = &c->static_ans;
    if (a->file_fd < 0) {
        owe(c, a->head, a->head_len, !keep_alive);
        gw_static_answer_clear(a);
        return;
    }
    gw_static_answer *file = malloc(sizeof(*file));
    char *head = file ? gw_response_alloc(a->head_len) : NULL;
    gw_pending *p = head ? slot_new(c) : NULL;
    if (!p) {
        gw_response_free(head);
        free(file);
        gw_static_answer_clear(a);
        kill_conn(c);
        return;
    }
    memcpy(head, a->head, a->head_len);
    p->own.data = head;
    p->own.len = a->head_len;
    p->ready_head = p->ready_tail = &p->own;
    p->close_after = !keep_alive;
    free(a->head);
    *file = *a;
    file->head = NULL;
    file->head_len = 0;
    a->head = NULL;
    a->file_fd = -1;
    a->file_left = 0;
    p->file = file;
    c->outstanding++; /* counted like a request Python works on, until the file is out */
    if (!keep_alive)
        c->read_done = 1;
}

/* Fills in the route of req, or req->refuse with the status that answers it. */
static void route_request(gw_http_conn *c, gw_request *req)
{
    gw_server *srv = c->srv;
    if (atomic_load(&srv->draining)) {
        req->refuse = 503;
        req->keep_alive = 0;
        return;
    }
    if (req->refuse)
        return;
    const char *path = req->buf + req->path_off;
    size_t plen = req->path_len;
    if (srv->statics && (req->method == GW_METHOD_GET || req->method == GW_METHOD_HEAD) &&
        route_static(c, req))
        return;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int nparams = 0;
    unsigned allowed = 0;
    gw_route *route = NULL;
    if (req->method >= 0)
        route = gw_router_match(srv->router, req->method, path, plen, params, &nparams, &allowed);
    if (!route && req->method == GW_METHOD_HEAD)
        route = gw_router_match(srv->router, GW_METHOD_GET, path, plen, params, &nparams, NULL);
    if (!route) {
        if (req->method < 0) {
            /* A method no route can have: which methods would this path take? */
            gw_param scratch[GW_ROUTER_MAX_PARAMS];
            int ns;
            for (int m = 0; m < GW_METHOD_WS; m++)
                if (gw_router_match(srv->router, m, path, plen, scratch, &ns, NULL))
                    allowed |= 1u << m;
        }
        if (allowed & (1u << GW_METHOD_GET))
            allowed |= 1u << GW_METHOD_HEAD; /* HEAD is served by every GET route */
        if (!allowed && srv->statics && req->method >= 0 && req->method != GW_METHOD_OPTIONS &&
            static_would_serve(srv, req))
            allowed = (1u << GW_METHOD_GET) | (1u << GW_METHOD_HEAD);
        if (srv->fallback && req->method >= 0) {
            /* The app's middleware sees what no route takes, and answers it. */
            req->route = srv->fallback;
            return;
        }
        req->refuse = allowed ? 405 : (req->method < 0 || req->method == GW_METHOD_CONNECT) ? 501 : 404;
        req->allowed = allowed;
        return;
    }
    req->route = route;
    /* Parameter values point into the path, in this buffer: room first, so that adding
     * them moves nothing. */
    size_t need = 0;
    for (int i = 0; i < nparams; i++)
        need += params[i].name_len + params[i].value_len + 2;
    if (gw_request_reserve(req, need)) {
        req->refuse = 503;
        req->keep_alive = 0;
        return;
    }
    req->param_at = req->npairs;
    for (int i = 0; i < nparams; i++) {
        if (gw_request_add_pair(req, params[i].name, params[i].name_len, params[i].value,
                                params[i].value_len)) {
            req->refuse = 503;
            req->keep_alive = 0;
            return;
        }
        req->nparams++;
    }
}

static void allow_header(unsigned allowed, char *out, size_t cap)
{
    size_t at = (size_t)snprintf(out, cap, "allow: ");
    int first = 1;
    for (int m = 0; m < GW_METHOD_WS && at < cap; m++) {
        if (!(allowed & (1u << m)))
            continue;
        at += (size_t)snprintf(out + at, cap - at, "%s%s", first ? "" : ", ", gw_method_name(m));
        first = 0;
    }
    if (at < cap)
        snprintf(out + at, cap - at, "\r\n");
}

static void refuse(gw_http_conn *c, gw_request *req, int64_t since)
{
    char allow[240] = "";
    if (req->refuse == 405)
        allow_header(req->allowed, allow, sizeof(allow) - 32);
    if (req->keep_alive && req->version == 10)
        strcat(allow, "connection: keep-alive\r\n");
    size_t n = owe_plain(c, req->refuse, allow, req->keep_alive, req->method == GW_METHOD_HEAD);
    count_answer(c, req->refuse, since);
    if (c->srv->cfg.access_log)
        access_now(c, req, req->refuse, n);
}

static int on_head(void *ctx, gw_request *req)
{
    gw_http_conn *c = ctx;
    if (req->upgrade)
        return GW_HP_BODY_DROP; /* routed when the handshake completes (on_request) */
    int64_t since = c->last_rx; /* when its last bytes arrived (metrics) */
    route_request(c, req);
    if (req->refuse && req->expect_continue) {
        /* The client waits for a go-ahead before its body: it gets the final answer
         * instead, and since its body would otherwise be read as the next request, the
         * connection closes after it. */
        req->keep_alive = 0;
        refuse(c, req, since); /* logged there */
        return -1;
    }
    if (req->expect_continue) {
        static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
        owe(c, go_on, sizeof(go_on) - 1, 0);
    }
    if (req->refuse || req->route->kind == GW_ROUTE_CONST ||
        req->route->kind == GW_ROUTE_STATIC || req->route->kind == GW_ROUTE_METRICS)
        return GW_HP_BODY_DROP;
    return GW_HP_BODY_KEEP;
}

static void dispatch(gw_http_conn *c, gw_request *req, int64_t since)
{
    gw_pending *p = slot_new(c);
    if (!p) {
        gw_request_release(req);
        kill_conn(c);
        return;
    }
    atomic_fetch_add(&p->refs, 1); /* the request's */
    p->close_after = !req->keep_alive;
    p->head_only = req->method == GW_METHOD_HEAD;
    p->chunked = req->version == 11;
    p->metrics_since = c->srv->metrics ? since : 0;
    if (c->srv->cfg.access_log && (p->access = malloc(sizeof(*p->access)))) {
        p->access->since = now_us();
        p->access->bytes = 0;
        p->access->status = 0;
        access_describe(p->access->what, sizeof(p->access->what), c->ip, req);
    }
    req->pending = p;
    c->outstanding++;
    memcpy(req->ip, c->ip, sizeof(req->ip));
    gw__dispatch(c->srv, req);
}

static int on_request(void *ctx, gw_request *req)
{
    gw_http_conn *c = ctx;
    if (req->upgrade) {
        c->upgrade = req; /* gw_hp_feed returns GW_HP_UPGRADE right after */
        return 0;
    }
    int keep_alive = req->keep_alive;
    int64_t since = c->last_rx; /* when its last bytes arrived (metrics) */
    if (req->refuse) {
        refuse(c, req, since);
        gw_request_release(req);
    } else if (req->route->kind == GW_ROUTE_STATIC) {
        const gw_static_answer *a = &c->static_ans;
        count_answer(c, gw_metrics_status_of(a->head, a->head_len), since);
        if (c->srv->cfg.access_log)
            access_now(c, req, gw_metrics_status_of(a->head, a->head_len),
                       a->head_len + (a->file_fd >= 0 ? a->file_left : 0));
        owe_static(c, keep_alive);
        gw_request_release(req);
    } else if (req->route->kind == GW_ROUTE_METRICS) {
        size_t n = 0;
        int status = 200;
        char *answer = gw__metrics_answer(c->srv, req->method == GW_METHOD_HEAD,
                                          keep_alive && req->version == 10, !keep_alive, &n);
        if (answer) {
            owe(c, answer, n, !keep_alive);
            gw_response_free(answer);
        } else { /* out of memory: the scrape is retried later */
            status = 503;
            keep_alive = 0;
            n = owe_plain(c, 503, NULL, 0, req->method == GW_METHOD_HEAD);
        }
        count_answer(c, status, since);
        if (c->srv->cfg.access_log)
            access_now(c, req, status, n);
        gw_request_release(req);
    } else if (req->route->kind == GW_ROUTE_CONST && req->route->const_response) {
        const gw_route *r = req->route;
        size_t n = req->method == GW_METHOD_HEAD ? r->const_head_len : r->const_len;
        const char *say = !keep_alive ? "connection: close\r\n\r\n"
                          : req->version == 10 ? "connection: keep-alive\r\n\r\n" : NULL;
        if (say && r->const_head_len >= 2) {
            /* The stored head ends with its blank line: the connection header goes in
             * before it. */
            owe(c, r->const_response, r->const_head_len - 2, 0);
            owe(c, say, strlen(say), 0);
            owe(c, r->const_response + r->const_head_len, n - r->const_head_len, !keep_alive);
        } else {
            owe(c, r->const_response, n, !keep_alive);
        }
        count_answer(c, gw_metrics_status_of(r->const_response, r->const_len), since);
        if (c->srv->cfg.access_log)
            access_now(c, req, gw_metrics_status_of(r->const_response, r->const_len),
                       say && r->const_head_len >= 2 ? n - 2 + strlen(say) : n);
        gw_request_release(req);
    } else {
        dispatch(c, req, since);
    }
    if (!keep_alive) {
        c->read_done = 1;
        return -1;
    }
    if (c->outstanding >= c->srv->cfg.max_pipeline ||
        c->out_len - c->out_off >= GW_OUT_PAUSE)
        return 1;
    return 0;
}

static const gw_hp_callbacks parser_callbacks = {new_request, on_head, on_request};

static int hold(gw_http_conn *c, const char *data, size_t len)
{
    if (c->held_len + len > c->held_cap) {
        size_t cap = c->held_cap ? c->held_cap : 4096;
        while (cap < c->held_len + len)
            cap *= 2;
        char *held = realloc(c->held, cap);
        if (!held)
            return -ENOMEM;
        c->held = held;
        c->held_cap = cap;
    }
    memcpy(c->held + c->held_len, data, len);
    c->held_len += len;
    return 0;
}

static void start_upgrade(gw_http_conn *c, const char *rest, size_t rest_len)
{
    gw_request *req = c->upgrade;
    c->upgrade = NULL;
    c->read_done = 1;
    int64_t since = c->last_rx; /* when its last bytes arrived (metrics) */
    if (c->first || c->out_off < c->out_len || c->resuming) {
        /* Earlier answers are still owed on this socket: a handshake cannot overtake
         * them, and nothing sane pipelines one behind requests. */
        size_t owed = owe_plain(c, 400, NULL, 0, 0);
        count_answer(c, 400, since);
        if (c->srv->cfg.access_log)
            access_now(c, req, 400, owed);
        gw_request_release(req);
        return;
    }
    const char *extra = NULL, *body = NULL;
    char what[sizeof(((gw_access *)0)->what)] = "";
    int logging = c->srv->cfg.access_log;
    if (logging) /* before the request goes to ws.c */
        access_describe(what, sizeof(what), c->ip, req);
    memcpy(req->ip, c->ip, sizeof(req->ip));
    int status = gw__ws_upgrade(c->srv, c->wsi, req, rest, rest_len, &extra, &body,
                                logging ? what : NULL);
    if (!status) {
        if (logging)
            access_line(what, 101, 0, 0);
        c->wsi = NULL; /* the socket is ws.c's now; this state goes */
        return;
    }
    char buf[768];
    size_t blen = strlen(body);
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     "content-length: %zu\r\n%sconnection: close\r\n\r\n%s",
                     status, gw_http_reason(status), blen, extra ? extra : "", body);
    if (n > 0 && (size_t)n < sizeof(buf)) {
        owe(c, buf, (size_t)n, 1);
        count_answer(c, status, since);
        if (logging)
            access_line(what, status, (size_t)n, 0);
    } else {
        kill_conn(c);
    }
}

/* Parses bytes; what cannot be parsed yet is held. Returns -1 when the connection must
 * close at once. */
static int parse(gw_http_conn *c, const char *data, size_t len)
{
    if (c->read_done)
        return 0;
    if (c->paused)
        return hold(c, data, len) ? -1 : 0;
    int was_busy = gw_hp_busy(&c->hp);
    size_t used = 0;
    int rc = gw_hp_feed(&c->hp, data, len, &used);
    switch (rc) {
    case GW_HP_PAUSED:
        c->paused = 1;
        lws_rx_flow_control(c->wsi, 0);
        if (used < len && hold(c, data + used, len - used))
            return -1;
        break;
    case GW_HP_UPGRADE:
        if (c->upgrade) {
            start_upgrade(c, data + used, len - used);
            if (!c->wsi)
                return 1; /* handed over */
        } else {
            c->read_done = 1; /* a CONNECT: its answer closes the connection */
        }
        break;
    case GW_HP_ERROR: {
        size_t owed = owe_plain(c, c->hp.error_status, NULL, 0, 0);
        gw_metrics_observe(c->srv->metrics, c->hp.error_status, -1);
        if (c->srv->cfg.access_log)
            access_now(c, NULL, c->hp.error_status, owed);
        c->read_done = 1;
        break;
    }
    case GW_HP_STOPPED:
        c->read_done = 1;
        break;
    default:
        break;
    }
    if (gw_hp_busy(&c->hp) && !gw_hp_in_body(&c->hp)) {
        if (!was_busy || !c->head_since)
            c->head_since = now_us();
    } else {
        c->head_since = 0;
    }
    return 0;
}

/* ---- the connection's life -------------------------------------------------------------- */

static gw_http_conn *conn_new(gw_server *srv, struct lws *wsi)
{
    gw_http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->tag = GW_TAG_HTTP;
    c->wsi = wsi;
    c->srv = srv;
    c->fd = lws_get_socket_fd(wsi);
    c->static_ans.file_fd = -1;
    gw_hp_init(&c->hp, &srv->limits, &parser_callbacks, c);
    c->idle_since = c->last_rx = now_us();
    lws_get_peer_simple(wsi, c->ip, sizeof(c->ip));
    if (!strncmp(c->ip, "::ffff:", 7))
        memmove(c->ip, c->ip + 7, strlen(c->ip + 7) + 1);
    c->next = srv->http_conns;
    if (c->next)
        c->next->prev = c;
    srv->http_conns = c;
    srv->n_http_conns++;
    gw_metrics_http_accepted(srv->metrics);
    return c;
}

/* Unlinks c from the server's lists; its slots are orphaned (their answers, when they
 * come, are dropped). */
static void conn_unlink(gw_http_conn *c)
{
    gw_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else if (srv->http_conns == c)
        srv->http_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    srv->n_http_conns--;
    if (c->flush_slot)
        srv->flush[c->flush_slot - 1] = NULL;
    gw_pending *p = c->first;
    while (p) {
        gw_pending *next = p->next_slot;
        gw_part *part = p->ready_head;
        while (part) {
            gw_part *pn = part->next;
            if (part->counted)
                atomic_fetch_sub(&p->unsent, part->counted);
            free_part(part);
            part = pn;
        }
        p->ready_head = p->ready_tail = NULL;
        p->conn = NULL;
        atomic_store(&p->gone, 1);
        gw__stream_writable(srv, p);
        gw__pending_unref(p);
        p = next;
    }
    c->first = c->last = NULL;
}

static void conn_free(gw_http_conn *c)
{
    conn_unlink(c);
    gw_hp_reset(&c->hp);
    gw_request_release(c->upgrade);
    gw_static_answer_clear(&c->static_ans);
    free(c->held);
    free(c->out);
    free(c);
}

/* The connection now belongs to ws.c: drop the HTTP state without touching the socket. */
static void conn_handed_over(gw_http_conn *c)
{
    conn_free(c);
}

int gw_conn_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    gw_server *srv = ctx ? lws_context_user(ctx) : NULL;
    int *tag = lws_get_opaque_user_data(wsi);
    if (tag && *tag == GW_TAG_WS)
        return gw_ws_raw_callback(wsi, reason, user, in, len);
    gw_http_conn *c = (gw_http_conn *)tag;

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        if (!srv)
            return -1;
        c = conn_new(srv, wsi);
        if (!c)
            return -1;
        lws_set_opaque_user_data(wsi, c);
        return 0;
    case LWS_CALLBACK_RAW_RX: {
        if (!c)
            return -1;
        c->last_rx = now_us();
        if (c->read_done)
            return c->dead ? -1 : 0; /* lingering, or closing: dropped */
        c->in_rx = 1;
        int rc = parse(c, in, len);
        if (rc > 0) {
            /* Handed over: the wsi's user data is ws.c's connection now. */
            conn_handed_over(c);
            return 0;
        }
        if (rc == 0)
            flush(c);
        c->in_rx = 0;
        return rc < 0 || c->dead ? -1 : 0;
    }
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (!c)
            return 0;
        c->in_rx = 1;
        flush(c);
        c->in_rx = 0;
        return c->dead ? -1 : 0;
    case LWS_CALLBACK_RAW_CLOSE:
        if (c) {
            lws_set_opaque_user_data(wsi, NULL);
            conn_free(c);
        }
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (srv) {
            gw_http_take_answers(srv);
            gw_ws_run_commands(srv);
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- answers from handler threads --------------------------------------------------------- */

static void mark_for_flush(gw_server *srv, gw_http_conn *c)
{
    if (c->flush_slot)
        return;
    if (srv->nflush == srv->flush_cap) {
        size_t cap = srv->flush_cap ? srv->flush_cap * 2 : 64;
        gw_http_conn **f = realloc(srv->flush, cap * sizeof(*f));
        if (!f) {
            flush(c);
            return;
        }
        srv->flush = f;
        srv->flush_cap = cap;
    }
    srv->flush[srv->nflush++] = c;
    c->flush_slot = srv->nflush;
}

void gw_http_take_answers(gw_server *srv)
{
    pthread_mutex_lock(&srv->answer_lock);
    gw_part *part = srv->answer_head;
    srv->answer_head = srv->answer_tail = NULL;
    pthread_mutex_unlock(&srv->answer_lock);
    while (part) {
        gw_part *next = part->next;
        gw_pending *p = part->p;
        int final = part->final;
        part->next = NULL;
        if (final)
            atomic_fetch_sub(&srv->in_flight, 1);
        gw_http_conn *c = p->conn;
        if (!c) {
            if (part->counted)
                atomic_fetch_sub(&p->unsent, part->counted);
            free_part(part);
        } else {
            if (p->ready_tail)
                p->ready_tail->next = part;
            else
                p->ready_head = part;
            p->ready_tail = part;
            if (final) {
                p->done = 1;
                c->outstanding--;
            }
            mark_for_flush(srv, c);
        }
        if (final)
            gw__pending_unref(p); /* the request's reference, handed over with it */
        part = next;
    }
    for (size_t i = 0; i < srv->nflush; i++) {
        gw_http_conn *c = srv->flush[i];
        if (!c)
            continue;
        c->flush_slot = 0;
        flush(c);
    }
    srv->nflush = 0;
}

/* ---- deadlines ------------------------------------------------------------------------------ */

static void sweep(lws_sorted_usec_list_t *sul)
{
    gw_server *srv = lws_container_of(sul, gw_server, sweep_timer);
    gw__metrics_sweep(srv);
    int64_t now = now_us();
    int64_t idle = (int64_t)srv->cfg.keepalive_timeout * 1000000;
    int64_t head = (int64_t)srv->cfg.header_timeout * 1000000;
    int64_t body = (int64_t)srv->cfg.body_timeout * 1000000;
    for (gw_http_conn *c = srv->http_conns; c; c = c->next) {
        if (c->dead)
            continue;
        if (c->shut) {
            if (now >= c->linger_until)
                kill_conn(c);
            continue;
        }
        int owed = c->first || c->out_off < c->out_len;
        if (c->read_done || c->paused)
            continue; /* writing what is owed; it closes or resumes after */
        if (gw_hp_in_body(&c->hp)) {
            if (body && now - c->last_rx >= body) {
                gw_hp_reset(&c->hp);
                size_t owed = owe_plain(c, 408, NULL, 0, 0);
                gw_metrics_observe(c->srv->metrics, 408, -1);
                if (c->srv->cfg.access_log)
                    access_now(c, NULL, 408, owed);
                flush(c);
            }
        } else if (gw_hp_busy(&c->hp)) {
            if (head && c->head_since && now - c->head_since >= head) {
                gw_hp_reset(&c->hp);
                size_t owed = owe_plain(c, 408, NULL, 0, 0);
                gw_metrics_observe(c->srv->metrics, 408, -1);
                if (c->srv->cfg.access_log)
                    access_now(c, NULL, 408, owed);
                flush(c);
            }
        } else if (!owed && idle && now - c->idle_since >= idle) {
            kill_conn(c);
        }
    }
    if (srv->context && !atomic_load(&srv->stopping))
        lws_sul_schedule(srv->context, 0, &srv->sweep_timer, sweep, GW_SWEEP_US);
}

void gw_http_start_sweep(gw_server *srv)
{
    lws_sul_schedule(srv->context, 0, &srv->sweep_timer, sweep, GW_SWEEP_US);
}

void gw_http_close_idle(gw_server *srv)
{
    for (gw_http_conn *c = srv->http_conns; c; c = c->next)
        if (!c->first && !gw_hp_busy(&c->hp) && c->out_off == c->out_len)
            kill_conn(c);
}
