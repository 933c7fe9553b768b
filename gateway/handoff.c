/*
 * The hand-off queues between the I/O thread and Python: the sync queue and its workers,
 * the async queue and its eventfd, and the round batching. See handoff.h.
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

static void fifo_push(void **head, void **tail, void *item, size_t next_off)
{
    *(void **)((char *)item + next_off) = NULL;
    if (*tail)
        *(void **)((char *)*tail + next_off) = item;
    else
        *head = item;
    *tail = item;
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
 * I/O thread of shard `io`, the sync_lock of its queue owner q held, queue not empty.
 * Wakes a worker when none is awake, or when the awake ones have taken nothing for
 * GW_SYNC_STALL_NS (they are blocked inside handlers); otherwise arms io's timer to look
 * again, so queued requests never wait on a blocked handler for longer than that. The
 * timer is the calling shard's: a context's timers belong to its own I/O thread.
 */
static void sync_kick_locked(gw_server *q, gw_server *io)
{
    int awake = q->sync_awake + q->sync_signalled;
    int stalled = awake > 0 && now_ns() - q->sync_progress_ns > GW_SYNC_STALL_NS;
    if (q->sync_idle > q->sync_signalled && (awake == 0 || stalled)) {
        q->sync_signalled++;
        q->sync_progress_ns = now_ns();
        pthread_cond_signal(&q->sync_cond);
    }
    if (!io->sync_timer_armed && io->context) {
        io->sync_timer_armed = 1;
        lws_sul_schedule(io->context, 0, &io->sync_timer, sync_timer_fired,
                         GW_SYNC_STALL_NS / 1000);
    }
}

static void sync_timer_fired(lws_sorted_usec_list_t *sul)
{
    gw_server *io = lws_container_of(sul, gw_server, sync_timer);
    gw_server *q = gw__queue_owner(io);
    io->sync_timer_armed = 0;
    pthread_mutex_lock(&q->sync_lock);
    if (q->sync_head && !q->sync_closed)
        sync_kick_locked(q, io);
    pthread_mutex_unlock(&q->sync_lock);
}

void gw__wake_loop(gw_server *srv)
{
    uint64_t one = 1;
    if (write(gw__queue_owner(srv)->async_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
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

/* I/O thread, after each lws_service() round: hands the round's requests over, to the
 * queues of shard 0 whichever shard took them (one loop and one sync pool per process). */
void gw__flush_round(gw_server *srv)
{
    gw_server *q = gw__queue_owner(srv);
    if (srv->round_async_head) {
        pthread_mutex_lock(&q->async_lock);
        int was_empty = q->async_head == NULL;
        if (q->async_tail)
            q->async_tail->next = srv->round_async_head;
        else
            q->async_head = srv->round_async_head;
        q->async_tail = srv->round_async_tail;
        pthread_mutex_unlock(&q->async_lock);
        srv->round_async_head = srv->round_async_tail = NULL;
        if (was_empty)
            gw__wake_loop(q);
    }
    if (srv->round_sync_head) {
        pthread_mutex_lock(&q->sync_lock);
        if (q->sync_tail)
            q->sync_tail->next = srv->round_sync_head;
        else
            q->sync_head = srv->round_sync_head;
        q->sync_tail = srv->round_sync_tail;
        srv->round_sync_head = srv->round_sync_tail = NULL;
        sync_kick_locked(q, srv);
        pthread_mutex_unlock(&q->sync_lock);
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

