/*
 * The HTTP server on libwebsockets. See server.h for the threads and queues.
 */
#include "server.h"
#include "http.h"
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ---------------------------------------------------------------- */

const char *gw_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 422: return "Unprocessable Entity";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

char *gw_response_alloc(size_t len)
{
    char *p = malloc(LWS_PRE + len + 1);
    return p ? p + LWS_PRE : NULL;
}

void gw_response_free(char *response)
{
    if (response)
        free(response - LWS_PRE);
}

char *gw_response_plain(int status, const char *body, const char *extra_headers, int keep_alive,
                        size_t *len)
{
    size_t body_len = strlen(body);
    const char *extra = extra_headers ? extra_headers : "";
    size_t cap = 160 + strlen(extra) + body_len;
    char *out = gw_response_alloc(cap);
    if (!out)
        return NULL;
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     "content-length: %zu\r\n%s%s\r\n%s",
                     status, gw_http_reason(status), body_len, extra,
                     keep_alive ? "" : "connection: close\r\n", body);
    if (n < 0 || (size_t)n >= cap) {
        gw_response_free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

/* Calls fn on every request of a list linked by next; fn may free it. */
static void each_request(gw_request *list, void (*fn)(gw_request *))
{
    while (list) {
        gw_request *next = list->next;
        fn(list);
        list = next;
    }
}

static void fifo_push(void **head, void **tail, void *item, size_t next_off)
{
    *(void **)((char *)item + next_off) = NULL;
    if (*tail)
        *(void **)((char *)*tail + next_off) = item;
    else
        *head = item;
    *tail = item;
}

int gw_route_set_ws_options(gw_route *route, int policy, int compress, int precheck,
                            const char *origins, size_t origins_len)
{
    char *copy = NULL;
    if (origins) {
        copy = malloc(origins_len + 2);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, origins, origins_len);
        copy[origins_len] = '\0';
        copy[origins_len + 1] = '\0';
    }
    free(route->ws.origins);
    route->ws.origins = copy;
    route->ws.policy = policy;
    route->ws.compress = compress;
    route->ws.precheck = precheck;
    return 0;
}

void gw_server_configure_ws(gw_server *srv, const gw_ws_config *cfg)
{
    gw_ws_configure(srv->ws, cfg);
}

/* ---- routes --------------------------------------------------------------------- */

gw_server *gw_server_new(void)
{
    gw_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->router = gw_router_new();
    if (!srv->router) {
        free(srv);
        return NULL;
    }
    srv->async_fd = -1;
    srv->ws = gw_ws_hub_new(srv);
    if (!srv->ws) {
        gw_router_free(srv->router);
        free(srv);
        return NULL;
    }
    pthread_mutex_init(&srv->sync_lock, NULL);
    pthread_cond_init(&srv->sync_cond, NULL);
    pthread_mutex_init(&srv->async_lock, NULL);
    pthread_mutex_init(&srv->answer_lock, NULL);
    pthread_mutex_init(&srv->stream_lock, NULL);
    pthread_cond_init(&srv->stream_cond, NULL);
    srv->listen_fd = -1;
    return srv;
}

gw_route *gw_server_add_route(gw_server *srv, int method, const char *pattern, int kind,
                              void *handler, char *err, size_t errlen, int *code)
{
    gw_route_list *rl = &srv->routes;
    *code = -ENOMEM;
    if (rl->len == rl->cap) {
        size_t cap = rl->cap ? rl->cap * 2 : 16;
        gw_route **items = realloc(rl->items, cap * sizeof(*items));
        if (!items)
            goto oom;
        rl->items = items;
        rl->cap = cap;
    }
    gw_route *route = calloc(1, sizeof(*route));
    if (!route)
        goto oom;
    route->pattern = strdup(pattern);
    if (!route->pattern) {
        free(route);
        goto oom;
    }
    route->kind = kind;
    route->method = method;
    route->handler = handler;
    int rc = gw_router_add(srv->router, method, pattern, route, err, errlen);
    if (rc) {
        free(route->pattern);
        free(route);
        *code = rc;
        return NULL;
    }
    rl->items[rl->len++] = route;
    *code = 0;
    return route;
oom:
    if (err && errlen)
        snprintf(err, errlen, "out of memory adding route '%s'", pattern);
    return NULL;
}

int gw_server_set_const(gw_server *srv, gw_route *route, const char *response, size_t len,
                        size_t head_len)
{
    (void)srv;
    char *copy = gw_response_alloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, response, len);
    gw_response_free(route->const_response);
    route->const_response = copy;
    route->const_len = len;
    route->const_head_len = head_len;
    return 0;
}

void gw_server_each_route(gw_server *srv, void (*fn)(gw_route *route, void *arg), void *arg)
{
    for (size_t i = 0; i < srv->routes.len; i++)
        fn(srv->routes.items[i], arg);
}

/* ---- hand-offs -------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sync_timer_fired(lws_sorted_usec_list_t *sul);

/*
 * I/O thread, sync_lock held, queue not empty. Wakes a worker when none is awake, or
 * when the awake ones have taken nothing for GW_SYNC_STALL_NS (they are blocked inside
 * handlers); otherwise arms a timer to look again, so queued requests never wait on a
 * blocked handler for longer than that.
 */
static void sync_kick_locked(gw_server *srv)
{
    int awake = srv->sync_awake + srv->sync_signalled;
    int stalled = awake > 0 && now_ns() - srv->sync_progress_ns > GW_SYNC_STALL_NS;
    if (srv->sync_idle > srv->sync_signalled && (awake == 0 || stalled)) {
        srv->sync_signalled++;
        srv->sync_progress_ns = now_ns();
        pthread_cond_signal(&srv->sync_cond);
    }
    if (!srv->sync_timer_armed && srv->context) {
        srv->sync_timer_armed = 1;
        lws_sul_schedule(srv->context, 0, &srv->sync_timer, sync_timer_fired,
                         GW_SYNC_STALL_NS / 1000);
    }
}

static void sync_timer_fired(lws_sorted_usec_list_t *sul)
{
    gw_server *srv = lws_container_of(sul, gw_server, sync_timer);
    srv->sync_timer_armed = 0;
    pthread_mutex_lock(&srv->sync_lock);
    if (srv->sync_head && !srv->sync_closed)
        sync_kick_locked(srv);
    pthread_mutex_unlock(&srv->sync_lock);
}

void gw__wake_loop(gw_server *srv)
{
    uint64_t one = 1;
    if (write(srv->async_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        lwsl_err("gateway: eventfd write failed: %s\n", strerror(errno));
}

void gw__dispatch(gw_server *srv, gw_request *req)
{
    atomic_fetch_add(&srv->in_flight, 1);
    /* Held back until the end of this service round (flush_round), so that everything
     * one poll() brought in reaches its queue under one lock and one wake-up. */
    if (req->route->kind == GW_ROUTE_ASYNC)
        fifo_push((void **)&srv->round_async_head, (void **)&srv->round_async_tail, req,
                  offsetof(gw_request, next));
    else
        fifo_push((void **)&srv->round_sync_head, (void **)&srv->round_sync_tail, req,
                  offsetof(gw_request, next));
}

/* I/O thread, after each lws_service() round: hands the round's requests over. */
static void flush_round(gw_server *srv)
{
    if (srv->round_async_head) {
        pthread_mutex_lock(&srv->async_lock);
        int was_empty = srv->async_head == NULL;
        if (srv->async_tail)
            srv->async_tail->next = srv->round_async_head;
        else
            srv->async_head = srv->round_async_head;
        srv->async_tail = srv->round_async_tail;
        pthread_mutex_unlock(&srv->async_lock);
        srv->round_async_head = srv->round_async_tail = NULL;
        if (was_empty)
            gw__wake_loop(srv);
    }
    if (srv->round_sync_head) {
        pthread_mutex_lock(&srv->sync_lock);
        if (srv->sync_tail)
            srv->sync_tail->next = srv->round_sync_head;
        else
            srv->sync_head = srv->round_sync_head;
        srv->sync_tail = srv->round_sync_tail;
        srv->round_sync_head = srv->round_sync_tail = NULL;
        sync_kick_locked(srv);
        pthread_mutex_unlock(&srv->sync_lock);
    }
}

/* sync_lock held: pops the oldest sync request for worker `worker`, or returns NULL. */
static gw_request *sync_pop_locked(gw_server *srv, int worker)
{
    gw_request *req = srv->sync_head;
    if (req) {
        srv->sync_head = req->next;
        if (!srv->sync_head)
            srv->sync_tail = NULL;
        req->next = NULL;
        srv->sync_progress_ns = now_ns();
        srv->sync_last_worker = worker;
    }
    return req;
}

/* sync_lock held: whether another awake worker is taking requests steadily, so that this
 * one adds nothing but GIL contention and should sleep. */
static int sync_others_draining(gw_server *srv, int worker)
{
    return srv->sync_awake > 1 && srv->sync_last_worker != worker &&
           now_ns() - srv->sync_progress_ns < GW_SYNC_STALL_NS;
}

gw_request *gw_server_try_next_sync(gw_server *srv, int worker)
{
    pthread_mutex_lock(&srv->sync_lock);
    gw_request *req = sync_others_draining(srv, worker) ? NULL : sync_pop_locked(srv, worker);
    pthread_mutex_unlock(&srv->sync_lock);
    return req;
}

gw_request *gw_server_next_sync(gw_server *srv, int worker)
{
    gw_request *req = NULL;
    pthread_mutex_lock(&srv->sync_lock);
    while (!srv->sync_closed) {
        if (srv->sync_head && !sync_others_draining(srv, worker)) {
            req = sync_pop_locked(srv, worker);
            break;
        }
        srv->sync_awake--;
        srv->sync_idle++;
        pthread_cond_wait(&srv->sync_cond, &srv->sync_lock);
        srv->sync_idle--;
        srv->sync_awake++;
        if (srv->sync_signalled > 0) {
            /* Woken on purpose (nobody awake, or the awake ones stalled): take work. */
            srv->sync_signalled--;
            if (srv->sync_head) {
                req = sync_pop_locked(srv, worker);
                break;
            }
        }
    }
    pthread_mutex_unlock(&srv->sync_lock);
    return req;
}

void gw_server_worker_started(gw_server *srv)
{
    pthread_mutex_lock(&srv->sync_lock);
    srv->sync_awake++;
    pthread_mutex_unlock(&srv->sync_lock);
}

int gw_server_async_fd(const gw_server *srv)
{
    return srv->async_fd;
}

void gw_server_reset_wake(gw_server *srv)
{
    uint64_t v;
    if (read(srv->async_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        lwsl_err("gateway: eventfd read failed: %s\n", strerror(errno));
}

gw_request *gw_server_take_async(gw_server *srv)
{
    pthread_mutex_lock(&srv->async_lock);
    gw_request *list = srv->async_head;
    srv->async_head = srv->async_tail = NULL;
    pthread_mutex_unlock(&srv->async_lock);
    return list;
}

/* ---- answers ----------------------------------------------------------------------- */

void gw__wake_io(gw_server *srv)
{
    pthread_mutex_lock(&srv->answer_lock);
    if (srv->context)
        lws_cancel_service(srv->context);
    pthread_mutex_unlock(&srv->answer_lock);
}

void gw__pending_unref(gw_pending *p)
{
    if (atomic_fetch_sub(&p->refs, 1) == 1)
        free(p);
}

/* Hands a part to the I/O thread (any thread). */
static void post_part(gw_server *srv, gw_part *part)
{
    part->next = NULL;
    pthread_mutex_lock(&srv->answer_lock);
    int was_empty = srv->answer_head == NULL;
    if (srv->answer_tail)
        srv->answer_tail->next = part;
    else
        srv->answer_head = part;
    srv->answer_tail = part;
    struct lws_context *ctx = srv->context;
    if (was_empty && ctx)
        lws_cancel_service(ctx);
    pthread_mutex_unlock(&srv->answer_lock);
}

int gw_server_respond(gw_server *srv, gw_request *req, char *response, size_t len)
{
    gw_pending *p = req->pending;
    if (!p || p->streaming) {
        gw_response_free(response);
        return -ENOTCONN;
    }
    req->pending = NULL;
    p->own.data = response;
    p->own.len = len;
    p->own.final = 1;
    post_part(srv, &p->own);
    return 0;
}

int gw_stream_start(gw_server *srv, gw_request *req, char *head, size_t len)
{
    gw_pending *p = req->pending;
    if (!p || p->streaming) {
        gw_response_free(head);
        return -ENOTCONN;
    }
    p->streaming = 1;
    p->own.data = head;
    p->own.len = len;
    p->own.final = 0;
    post_part(srv, &p->own);
    return 0;
}

int gw_stream_started(const gw_request *req)
{
    return req->pending && req->pending->streaming;
}

int gw_stream_chunked(const gw_request *req)
{
    return req->version == 11;
}

static size_t stream_backlog(gw_pending *p)
{
    return atomic_load(&p->unsent) + atomic_load(&p->conn_backlog);
}

int gw_stream_write(gw_server *srv, gw_request *req, const void *data, size_t len)
{
    gw_pending *p = req->pending;
    if (!p || !p->streaming || atomic_load(&p->gone))
        return -ENOTCONN;
    if (!len || p->head_only)
        return stream_backlog(p) > srv->cfg.stream_high_water;
    gw_part *part = calloc(1, sizeof(*part));
    char *buf = part ? gw_response_alloc(len + 32) : NULL;
    if (!buf) {
        free(part);
        return -ENOMEM;
    }
    size_t n = 0;
    if (p->chunked)
        n = (size_t)snprintf(buf, 24, "%zx\r\n", len);
    memcpy(buf + n, data, len);
    n += len;
    if (p->chunked) {
        memcpy(buf + n, "\r\n", 2);
        n += 2;
    }
    part->p = p;
    part->data = buf;
    part->len = n;
    part->counted = n;
    atomic_fetch_add(&p->unsent, n);
    post_part(srv, part);
    return stream_backlog(p) > srv->cfg.stream_high_water;
}

/* Posts the stream's final part; the request lets go of its pending. */
static int stream_finish(gw_server *srv, gw_request *req, int abort)
{
    gw_pending *p = req->pending;
    if (!p || !p->streaming)
        return -ENOTCONN;
    req->pending = NULL;
    gw_part *part;
    /* The end of a stream must reach its connection, or it would wait forever. */
    while (!(part = calloc(1, sizeof(*part))))
        usleep(1000);
    part->p = p;
    part->final = 1;
    if (abort || !p->chunked || p->head_only) {
        part->abort = abort || !p->chunked; /* close-delimited: the close ends it */
    } else {
        part->data = gw_response_alloc(5);
        if (part->data) {
            memcpy(part->data, "0\r\n\r\n", 5);
            part->len = 5;
        } else {
            part->abort = 1;
        }
    }
    post_part(srv, part);
    return 0;
}

int gw_stream_end(gw_server *srv, gw_request *req)
{
    return stream_finish(srv, req, 0);
}

int gw_stream_gone(const gw_request *req)
{
    return !req->pending || atomic_load(&req->pending->gone);
}

void gw__stream_writable(gw_server *srv, gw_pending *p)
{
    if (!atomic_load(&p->want_writable))
        return;
    if (!atomic_load(&p->gone) && stream_backlog(p) > srv->cfg.stream_high_water)
        return;
    atomic_store(&p->want_writable, 0);
    pthread_mutex_lock(&srv->stream_lock);
    pthread_cond_broadcast(&srv->stream_cond); /* a writer on a thread */
    int was_empty = 0, listed = 0;
    /* A writer on the loop is told through the list, once: a pending already on it (the
     * loop has not taken it yet) must not be linked twice. */
    if (atomic_exchange(&p->loop_wait, 0) && !p->listed) {
        was_empty = srv->writable_head == NULL;
        atomic_fetch_add(&p->refs, 1); /* the list's */
        p->listed = 1;
        p->next_writable = srv->writable_head;
        srv->writable_head = p;
        listed = 1;
    }
    pthread_mutex_unlock(&srv->stream_lock);
    if (listed && was_empty)
        gw__wake_loop(srv);
}

int gw_stream_wait(gw_server *srv, gw_request *req)
{
    gw_pending *p = req->pending;
    if (!p)
        return 0;
    pthread_mutex_lock(&srv->stream_lock);
    while (!atomic_load(&p->gone) && !atomic_load(&srv->stopping) &&
           stream_backlog(p) > srv->cfg.stream_high_water) {
        atomic_store(&p->want_writable, 1);
        /* Checked again after saying so: the I/O thread may have drained in between. */
        if (atomic_load(&p->gone) || stream_backlog(p) <= srv->cfg.stream_high_water)
            break;
        pthread_cond_wait(&srv->stream_cond, &srv->stream_lock);
    }
    pthread_mutex_unlock(&srv->stream_lock);
    return !atomic_load(&p->gone) && !atomic_load(&srv->stopping);
}

int gw_stream_want_writable(gw_server *srv, gw_request *req, void *waiter)
{
    gw_pending *p = req->pending;
    if (!p || atomic_load(&p->gone) || stream_backlog(p) <= srv->cfg.stream_high_water)
        return 0;
    p->waiter = waiter;
    atomic_store(&p->loop_wait, 1);
    atomic_store(&p->want_writable, 1);
    if (atomic_load(&p->gone) || stream_backlog(p) <= srv->cfg.stream_high_water) {
        /* Drained meanwhile: the I/O thread may or may not list it; either is fine, the
         * waiter is taken back here. */
        if (atomic_exchange(&p->want_writable, 0)) {
            atomic_store(&p->loop_wait, 0);
            p->waiter = NULL;
            return 0;
        }
    }
    return 1;
}

void *gw_stream_take_waiter(gw_request *req)
{
    gw_pending *p = req->pending;
    if (!p)
        return NULL;
    void *w = p->waiter;
    p->waiter = NULL;
    return w;
}

gw_pending *gw_server_take_writable(gw_server *srv)
{
    pthread_mutex_lock(&srv->stream_lock);
    gw_pending *list = srv->writable_head;
    srv->writable_head = NULL;
    for (gw_pending *p = list; p; p = p->next_writable)
        p->listed = 0;
    pthread_mutex_unlock(&srv->stream_lock);
    return list;
}

gw_pending *gw_pending_next_writable(gw_pending *p)
{
    return p->next_writable;
}

void *gw_pending_take_waiter(gw_pending *p)
{
    void *w = p->waiter;
    p->waiter = NULL;
    return w;
}

void gw_pending_release(gw_pending *p)
{
    gw__pending_unref(p);
}

void gw_request_free(gw_server *srv, gw_request *req)
{
    if (!req)
        return;
    gw_pending *p = req->pending;
    if (p && p->streaming) {
        (void)stream_finish(srv, req, 1);
    } else if (p) {
        size_t len;
        char *out = gw_response_plain(500, "Internal Server Error", NULL, 0, &len);
        if (out)
            (void)gw_server_respond(srv, req, out, len);
    }
    if (req->pending) {
        /* Out of memory even for a 500: let go of it; the connection gets a close. */
        gw_pending *left = req->pending;
        req->pending = NULL;
        left->own.data = NULL;
        left->own.len = 0;
        left->own.final = 1;
        left->own.abort = 1;
        post_part(srv, &left->own);
    }
    gw_request_release(req);
}

/* Frees a request that never reached Python, with its pending (the context is gone). */
static void req_discard(gw_request *req)
{
    if (req->pending) {
        gw_pending *p = req->pending;
        req->pending = NULL;
        p->conn = NULL;
        gw__pending_unref(p);
    }
    gw_request_release(req);
}

/* After the context is gone: frees every part still queued. */
static void discard_answers(gw_server *srv)
{
    pthread_mutex_lock(&srv->answer_lock);
    gw_part *part = srv->answer_head;
    srv->answer_head = srv->answer_tail = NULL;
    pthread_mutex_unlock(&srv->answer_lock);
    while (part) {
        gw_part *next = part->next;
        gw_pending *p = part->p;
        int final = part->final;
        if (final)
            atomic_fetch_sub(&srv->in_flight, 1);
        gw_response_free(part->data);
        if (part != &p->own)
            free(part);
        if (final)
            gw__pending_unref(p);
        part = next;
    }
    gw_pending *w = gw_server_take_writable(srv);
    while (w) {
        gw_pending *next = w->next_writable;
        gw__pending_unref(w);
        w = next;
    }
}

size_t gw__plain_answer(char *out, size_t cap, int status, const char *extra_headers,
                        int keep_alive, int head_only)
{
    const char *reason = gw_http_reason(status);
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     "content-length: %zu\r\n%s%s\r\n%s",
                     status, reason, strlen(reason), extra_headers ? extra_headers : "",
                     keep_alive ? "" : "connection: close\r\n", head_only ? "" : reason);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
/* ---- lifecycle -------------------------------------------------------------------- */

static void log_emit(int level, const char *line)
{
    fprintf(stderr, "gateway[lws %s]: %s", level == LLL_ERR ? "error" : "warning", line);
}

static void *io_main(void *arg)
{
    gw_server *srv = arg;
    pthread_setname_np(pthread_self(), "robyn-io"); /* what top -H and gdb show */
    while (!atomic_load(&srv->stopping)) {
        int rc = lws_service(srv->context, 0);
        flush_round(srv);
        if (rc < 0)
            break;
    }
    return NULL;
}

static const struct lws_protocols protocols[] = {
    {GW_CONN_PROTOCOL, gw_conn_callback, 0, 0, 0, NULL, 0},
    {GW_LISTEN_PROTOCOL, gw__listen_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int gw_server_start(gw_server *srv, const gw_config *cfg, char *err, size_t errlen)
{
    if (srv->io_started) {
        snprintf(err, errlen, "the server is already running");
        return -EALREADY;
    }
    srv->cfg = *cfg;
    if (!srv->cfg.max_pipeline)
        srv->cfg.max_pipeline = 64;
    srv->limits.max_head = cfg->max_header;
    srv->limits.max_headers = cfg->max_header_count ? cfg->max_header_count : 100;
    srv->limits.max_url = cfg->max_url ? cfg->max_url : 8192;
    srv->limits.max_body = cfg->max_body;
    snprintf(srv->host, sizeof(srv->host), "%s",
             !strcmp(cfg->host, "localhost") ? "127.0.0.1" : cfg->host);
    if (cfg->port <= 0 || cfg->port > 65535) {
        snprintf(err, errlen, "port %d is out of range (1-65535)", cfg->port);
        return -EINVAL;
    }
    /* lws reads RLIMIT_NOFILE at context creation: raise the soft limit to the hard one
     * so that tens of thousands of connections fit. */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max && rl.rlim_max <= 10000000) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int fd = gw__listen_open(srv->host, cfg->port, cfg->reuse_port, err, errlen);
    if (fd < 0)
        return fd;
    srv->listen_fd = fd;
    srv->async_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->async_fd < 0) {
        int e = errno;
        snprintf(err, errlen, "eventfd: %s", strerror(e));
        close(fd);
        srv->listen_fd = -1;
        return -e;
    }

    lws_set_log_level(LLL_ERR | LLL_WARN, log_emit);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protocols;
    info.user = srv;
    info.gid = -1;
    info.uid = -1;
    /* Reads of up to this much per service call: a pipelined burst in one go. */
    info.pt_serv_buf_size = 65536;
    info.timeout_secs = 10;
    srv->context = lws_create_context(&info);
    srv->vhost = srv->context ? lws_get_vhost_by_name(srv->context, "default") : NULL;
    if (!srv->vhost || gw__listen_adopt(srv)) {
        snprintf(err, errlen, "cannot serve on %s:%d (libwebsockets refused; see its log)",
                 srv->host, cfg->port);
        if (srv->context)
            lws_context_destroy(srv->context);
        srv->context = NULL;
        if (srv->listen_fd >= 0 && !srv->listen_wsi)
            close(srv->listen_fd);
        srv->listen_fd = -1;
        close(srv->async_fd);
        srv->async_fd = -1;
        return -EIO;
    }
    srv->port = cfg->port;
    gw_http_start_sweep(srv);
    atomic_store(&srv->stopping, 0);
    if (pthread_create(&srv->io_thread, NULL, io_main, srv)) {
        snprintf(err, errlen, "cannot start the I/O thread");
        lws_context_destroy(srv->context);
        srv->context = NULL;
        return -EAGAIN;
    }
    srv->io_started = 1;
    return 0;
}

int gw_server_port(const gw_server *srv)
{
    return srv->io_started ? srv->port : 0;
}

void gw_server_drain(gw_server *srv)
{
    atomic_store(&srv->draining, 1);
}

size_t gw_server_in_flight(const gw_server *srv)
{
    return atomic_load(&srv->in_flight);
}

void gw_server_stop(gw_server *srv)
{
    pthread_mutex_lock(&srv->sync_lock);
    srv->sync_closed = 1;
    pthread_cond_broadcast(&srv->sync_cond);
    pthread_mutex_unlock(&srv->sync_lock);
    if (!srv->io_started)
        return;
    atomic_store(&srv->stopping, 1);
    lws_cancel_service(srv->context);
    pthread_join(srv->io_thread, NULL);
    srv->io_started = 0;
    lws_sul_cancel(&srv->sync_timer);
    lws_sul_cancel(&srv->sweep_timer);
    lws_sul_cancel(&srv->accept_timer);
    srv->sync_timer_armed = 0;
    /* Wake stream writers blocked in gw_stream_wait(): the server is stopping. */
    pthread_mutex_lock(&srv->stream_lock);
    pthread_cond_broadcast(&srv->stream_cond);
    pthread_mutex_unlock(&srv->stream_lock);
    /* Destroying the context closes every connection (their slots are orphaned, so what
     * Python still holds is answered into nothing); parts that arrive later find no
     * context and are freed below. */
    pthread_mutex_lock(&srv->answer_lock);
    struct lws_context *ctx = srv->context;
    srv->context = NULL;
    pthread_mutex_unlock(&srv->answer_lock);
    lws_context_destroy(ctx);
    srv->listen_fd = -1; /* closed with its wsi */
    discard_answers(srv);
}

void gw_server_free(gw_server *srv)
{
    if (!srv)
        return;
    gw_server_stop(srv);
    discard_answers(srv);
    each_request(srv->round_sync_head, req_discard);
    each_request(srv->round_async_head, req_discard);
    each_request(srv->sync_head, req_discard);
    each_request(srv->async_head, req_discard);
    srv->round_sync_head = srv->round_async_head = srv->sync_head = srv->async_head = NULL;
    if (srv->async_fd >= 0)
        close(srv->async_fd);
    for (size_t i = 0; i < srv->routes.len; i++) {
        gw_route *route = srv->routes.items[i];
        gw_response_free(route->const_response);
        free(route->ws.origins);
        free(route->pattern);
        free(route);
    }
    free(srv->routes.items);
    free(srv->flush);
    gw_router_free(srv->router);
    gw_ws_hub_free(srv->ws);
    gw_pool_free(&srv->pool);
    pthread_mutex_destroy(&srv->sync_lock);
    pthread_cond_destroy(&srv->sync_cond);
    pthread_mutex_destroy(&srv->async_lock);
    pthread_mutex_destroy(&srv->answer_lock);
    pthread_mutex_destroy(&srv->stream_lock);
    pthread_cond_destroy(&srv->stream_cond);
    free(srv);
}
