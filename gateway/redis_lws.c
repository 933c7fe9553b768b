/*
 * The Redis bus on the I/O thread's libwebsockets loop (see redis_lws.h).
 *
 * One watch per hiredis connection, shared by two owners: hiredis (until it calls the
 * adapter's cleanup) and lws (until LWS_CALLBACK_RAW_CLOSE_FILE). Whichever lets go last
 * frees it. lws watches a dup() of hiredis' socket, so closing is never a race over one
 * descriptor number: hiredis closes its own, lws closes its own.
 *
 * Reading is always on (hiredis only ever stops reading when it is done with the
 * connection); writing is asked for each time hiredis has bytes to send, which is what
 * lws_callback_on_writable() gives: one WRITEABLE callback per request.
 */
#include "redis_lws.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/async.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

struct gw_redis_host {
    gw_server *srv;
    ps_bus *bus;
    lws_sorted_usec_list_t timer;
};

typedef struct gw_redis_watch {
    gw_redis_host *host;
    redisAsyncContext *ac; /* NULL once hiredis has let go */
    struct lws *wsi;       /* NULL once lws has closed it */
} gw_redis_watch;

/* ---- hiredis' adapter hooks ------------------------------------------------------------- */

static void watch_nothing(void *privdata)
{
    (void)privdata;
}

static void watch_add_write(void *privdata)
{
    gw_redis_watch *w = privdata;
    if (w->wsi)
        lws_callback_on_writable(w->wsi);
}

static void watch_cleanup(void *privdata)
{
    gw_redis_watch *w = privdata;
    w->ac = NULL;
    if (w->wsi)
        lws_set_timeout(w->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
    else
        free(w);
}

static int host_attach(void *ctx, redisAsyncContext *ac)
{
    gw_redis_host *host = ctx;
    struct lws_context *context = gw__server_context(host->srv);
    struct lws_vhost *vh = context ? lws_get_vhost_by_name(context, "default") : NULL;
    gw_redis_watch *w = calloc(1, sizeof(*w));
    if (!w || !vh) {
        free(w);
        return -1;
    }
    int fd = fcntl(ac->c.fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        free(w);
        return -1;
    }
    lws_sock_file_fd_type desc;
    desc.filefd = fd;
    w->host = host;
    w->ac = ac;
    w->wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, desc, GW_REDIS_PROTOCOL,
                                        NULL);
    if (!w->wsi) {
        /* lws closes the descriptor it refused. */
        free(w);
        return -1;
    }
    lws_set_wsi_user(w->wsi, w);
    ac->ev.data = w;
    ac->ev.addRead = watch_nothing;
    ac->ev.delRead = watch_nothing;
    ac->ev.addWrite = watch_add_write;
    ac->ev.delWrite = watch_nothing;
    ac->ev.cleanup = watch_cleanup;
    return 0;
}

/* ---- the rest of the host ------------------------------------------------------------------ */

static void host_timer_fired(lws_sorted_usec_list_t *sul)
{
    gw_redis_host *host = lws_container_of(sul, gw_redis_host, timer);
    if (host->bus)
        ps_bus_redis_tick(host->bus);
}

static void host_schedule(void *ctx, int64_t usec)
{
    gw_redis_host *host = ctx;
    struct lws_context *context = gw__server_context(host->srv);
    if (!context)
        return;
    if (usec < 0)
        lws_sul_cancel(&host->timer);
    else
        lws_sul_schedule(context, 0, &host->timer, host_timer_fired, usec);
}

static void host_wake(void *ctx)
{
    gw_redis_host *host = ctx;
    gw__wake_io(host->srv);
}

static size_t host_deliver(void *ctx, const char *topic, size_t len, ps_frame *frame)
{
    gw_redis_host *host = ctx;
    return gw__ws_deliver_remote(host->srv, topic, len, frame);
}

static void host_deliver_history(void *ctx, const char *topic, size_t len, const char *epoch,
                                 size_t epoch_len, uint64_t offset, ps_frame *frame)
{
    gw_redis_host *host = ctx;
    gw__ws_deliver_history(host->srv, topic, len, epoch, epoch_len, offset, frame);
}

static void host_channel_ready(void *ctx, const char *topic, size_t len)
{
    gw_redis_host *host = ctx;
    gw__ws_redis_channel_ready(host->srv, topic, len);
}

static void host_down(void *ctx)
{
    gw_redis_host *host = ctx;
    gw__ws_redis_down(host->srv);
}

ps_bus *gw__redis_bus_new(gw_server *srv, ps_topics *topics, const ps_redis_config *cfg,
                          gw_redis_host **host_out)
{
    gw_redis_host *host = calloc(1, sizeof(*host));
    if (!host)
        return NULL;
    host->srv = srv;
    ps_redis_host h = {
        .ctx = host,
        .attach = host_attach,
        .schedule = host_schedule,
        .wake = host_wake,
        .deliver = host_deliver,
        .deliver_history = host_deliver_history,
        .channel_ready = host_channel_ready,
        .down = host_down,
    };
    host->bus = ps_bus_redis_new(topics, cfg, &h);
    if (!host->bus) {
        free(host);
        return NULL;
    }
    *host_out = host;
    return host->bus;
}

void gw__redis_host_free(gw_redis_host *host)
{
    if (!host)
        return;
    lws_sul_cancel(&host->timer);
    free(host);
}

/* ---- the descriptors' protocol ---------------------------------------------------------- */

int gw__redis_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    (void)in;
    (void)len;
    gw_redis_watch *w = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        /* Interest changes queued by other threads (sent once to every protocol). */
        struct lws_context *ctx = lws_get_context(wsi);
        gw_server *srv = ctx ? lws_context_user(ctx) : NULL;
        ps_bus *bus = srv ? gw__ws_bus(srv) : NULL;
        if (ps_bus_is_redis(bus))
            ps_bus_redis_service(bus);
        return 0;
    }
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!w || !w->ac)
            return -1;
        redisAsyncHandleRead(w->ac);
        gw__ws_flush(w->host->srv);
        return w->ac ? 0 : -1;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (!w || !w->ac)
            return -1;
        redisAsyncHandleWrite(w->ac);
        return w->ac ? 0 : -1;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (!w)
            return 0;
        w->wsi = NULL;
        if (w->ac) {
            /* lws dropped the descriptor (hang-up) while hiredis still holds the
             * connection: hiredis must let go too, which the bus sees as a lost
             * connection. Its cleanup frees the watch. */
            redisAsyncContext *ac = w->ac;
            redisAsyncFree(ac);
        } else {
            free(w);
        }
        return 0;
    default:
        return 0;
    }
}
