/*
 * Answers on their way from the threads that run handlers to the I/O thread: whole
 * responses, streams, and the slots they fill. See answer.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

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
    if (atomic_fetch_sub(&p->refs, 1) == 1) {
        if (p->file) {
            gw_static_answer_clear(p->file);
            free(p->file);
        }
        free(p->access);
        free(p);
    }
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

gw_server *gw_request_shard(const gw_request *req)
{
    return req->pending ? req->pending->srv : NULL;
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
void gw__req_discard(gw_request *req)
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
void gw__discard_answers(gw_server *srv)
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
    /* Robyn's own bodies for these three; the reason phrase for the others. */
    const char *body = status == 404 ? "Not found"
                       : status == 405 ? "Method not allowed"
                       : status == 500 ? "Internal server error" : reason;
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     "content-length: %zu\r\n%s%s\r\n%s",
                     status, reason, strlen(body), extra_headers ? extra_headers : "",
                     keep_alive ? "" : "connection: close\r\n", head_only ? "" : body);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
