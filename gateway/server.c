/*
 * The HTTP server on libwebsockets. See server.h for the threads and queues.
 */
#include "server.h"
#include "http.h"
#include "internal.h"
#include "lwslog.h"
#include "redis_lws.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <ev.h>
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


int gw_route_set_ws_options(gw_route *route, int policy, int compress,
                            size_t compress_threshold, int precheck, const char *origins,
                            size_t origins_len)
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
    route->ws.compress_threshold = compress_threshold;
    route->ws.precheck = precheck;
    return 0;
}

gw_ws_hub *gw__server_hub(gw_server *srv)
{
    return srv->ws;
}

const gw_router *gw__server_router(const gw_server *srv)
{
    return srv->router;
}

struct lws_context *gw__server_context(gw_server *srv)
{
    return srv->context;
}

struct gw_metrics *gw__server_metrics(gw_server *srv)
{
    return srv->metrics;
}

int gw__server_draining(gw_server *srv)
{
    return atomic_load(&srv->draining);
}

void gw_server_configure_ws(gw_server *srv, const gw_ws_config *cfg)
{
    srv->ws_cfg = *cfg; /* for the shards gw_server_start makes */
    srv->ws_configured = 1;
    gw_ws_configure(srv->ws, cfg);
}

unsigned gw__server_nshards(const gw_server *srv)
{
    return gw__queue_owner((gw_server *)srv)->nshards;
}

gw_server *gw__server_shard(gw_server *srv, unsigned k)
{
    gw_server *owner = gw__queue_owner(srv);
    return owner->shards ? owner->shards[k] : owner;
}

unsigned gw__server_shard_index(const gw_server *srv)
{
    return srv->shard_index;
}

int gw_server_set_shards(gw_server *srv, unsigned count)
{
    if (srv->io_started || srv->primary)
        return -EALREADY;
    if (count < 1 || count > GW_MAX_SHARDS)
        return -EINVAL;
    srv->nshards = count;
    return 0;
}

unsigned gw_server_shard_count(const gw_server *srv)
{
    return srv->nshards;
}

gw_server *gw_server_shard(gw_server *srv, unsigned k)
{
    if (k >= srv->nshards)
        return NULL;
    return srv->shards ? srv->shards[k] : srv;
}

struct gw_metrics_endpoint *gw__server_endpoint(gw_server *srv, const gw_route *route)
{
    if (!srv->primary)
        return route->metrics;
    return srv->endpoints && route->method == GW_METHOD_WS ? &srv->endpoints[route->index]
                                                           : NULL;
}

size_t gw_server_accepted(const gw_server *srv)
{
    return atomic_load_explicit(&srv->accepted, memory_order_relaxed);
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
    pthread_mutex_init(&srv->bus_snapshot_lock, NULL);
    srv->listen_fd = -1;
    srv->nshards = 1;
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
    route->index = rl->len;
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

gw_route *gw_server_set_fallback(gw_server *srv, int kind, void *handler, int *code)
{
    gw_route_list *rl = &srv->routes;
    if (srv->fallback) {
        *code = -EEXIST;
        return NULL;
    }
    *code = -ENOMEM;
    if (rl->len == rl->cap) {
        size_t cap = rl->cap ? rl->cap * 2 : 16;
        gw_route **items = realloc(rl->items, cap * sizeof(*items));
        if (!items)
            return NULL;
        rl->items = items;
        rl->cap = cap;
    }
    gw_route *route = calloc(1, sizeof(*route));
    if (!route)
        return NULL;
    route->pattern = strdup("*");
    if (!route->pattern) {
        free(route);
        return NULL;
    }
    route->kind = kind;
    route->method = -1;
    route->handler = handler;
    route->index = rl->len;
    rl->items[rl->len++] = route;
    srv->fallback = route;
    *code = 0;
    return route;
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

long gw_server_match(const gw_server *srv, int method, const char *path, size_t path_len,
                     gw_param *params, int *nparams, unsigned *allowed)
{
    *allowed = 0;
    *nparams = 0;
    if (method < 0 || method >= GW_METHOD_WS)
        return -1;
    /* The same order as the I/O thread's routing (http.c, route_request): the method's
     * routes, then GET's for HEAD; on a miss, the methods that would take the path. */
    gw_route *route = gw_router_match(srv->router, method, path, path_len, params, nparams,
                                      allowed);
    if (!route && method == GW_METHOD_HEAD)
        route = gw_router_match(srv->router, GW_METHOD_GET, path, path_len, params, nparams,
                                NULL);
    if (!route) {
        if (*allowed & (1u << GW_METHOD_GET))
            *allowed |= 1u << GW_METHOD_HEAD;
        return -1;
    }
    *allowed = 0;
    for (size_t i = 0; i < srv->routes.len; i++)
        if (srv->routes.items[i] == route)
            return (long)i;
    return -1;
}

void gw_server_each_route(gw_server *srv, void (*fn)(gw_route *route, void *arg), void *arg)
{
    for (size_t i = 0; i < srv->routes.len; i++)
        fn(srv->routes.items[i], arg);
}

/* ---- lifecycle -------------------------------------------------------------------- */

static void free_loop(gw_server *srv);

/* Before the I/O thread waits for events: what the round just served goes to Python in one
 * hand-off (handoff.c), and a stop asked for ends the loop. */
static void before_wait(struct ev_loop *loop, ev_prepare *w, int revents)
{
    gw_server *srv = w->data;
    (void)revents;
    gw__flush_round(srv);
    if (atomic_load(&srv->stopping))
        ev_break(loop, EVBREAK_ALL);
}

static void *io_main(void *arg)
{
    gw_server *srv = arg;
    char name[16] = "robyn-io"; /* what top -H and gdb show */
    if (srv->shard_index)
        snprintf(name, sizeof(name), "robyn-io%u", srv->shard_index % GW_MAX_SHARDS);
    pthread_setname_np(pthread_self(), name);
    if (srv->loop) {
        /* lws' watchers are in this loop (its foreign loop); lws_cancel_service() wakes it. */
        while (!atomic_load(&srv->stopping))
            ev_run(srv->loop, 0);
        return NULL;
    }
    while (!atomic_load(&srv->stopping)) {
        int rc = lws_service(srv->context, 0);
        gw__flush_round(srv);
        if (rc < 0)
            break;
    }
    return NULL;
}

/* Why lws' libev plugin cannot serve this process, or NULL. The plugin (Debian's
 * libwebsockets-evlib-ev) links the system's libwebsockets and libev by soname, so it works
 * only beside those very libraries: a wheel bundles renamed copies (auditwheel's
 * libwebsockets-<hash>.so.N), and the plugin would load a second libwebsockets next to them. */
static const char *libev_plugin_unusable(void)
{
    Dl_info lws, ev;
    if (!dladdr((void *)lws_create_context, &lws) || !lws.dli_fname ||
        !dladdr((void *)ev_loop_new, &ev) || !ev.dli_fname)
        return "cannot tell which libwebsockets and libev this process runs";
    const char *l = strrchr(lws.dli_fname, '/'), *e = strrchr(ev.dli_fname, '/');
    l = l ? l + 1 : lws.dli_fname;
    e = e ? e + 1 : ev.dli_fname;
    if (strncmp(l, "libwebsockets.so.", 17) || strncmp(e, "libev.so.", 9))
        return "this build carries its own copy of libwebsockets (a wheel), which libwebsockets' "
               "libev plugin cannot share";
    return NULL;
}

/* The I/O thread's epoll loop (libev, lent to lws as its foreign loop), unless
 * ROBYN_EVENT_LOOP=poll asks for lws' own poll() loop, which walks every descriptor at every
 * wake-up: O(connections). Unset, epoll where lws' libev plugin can serve, else poll with
 * the reason kept for the start log; ROBYN_EVENT_LOOP=epoll makes that an error. */
static int make_loop(gw_server *srv, char *err, size_t errlen)
{
    const char *want = getenv("ROBYN_EVENT_LOOP");
    srv->poll_reason = NULL;
    if (want && !strcmp(want, "poll"))
        return 0;
    if (want && *want && strcmp(want, "epoll")) {
        snprintf(err, errlen, "ROBYN_EVENT_LOOP=%s: the event loops are epoll (the default) and "
                 "poll", want);
        return -EINVAL;
    }
    srv->epoll_required = want && *want;
    const char *unusable = libev_plugin_unusable();
    if (unusable) {
        if (srv->epoll_required) {
            snprintf(err, errlen, "ROBYN_EVENT_LOOP=epoll: %s; ROBYN_EVENT_LOOP=poll serves "
                     "with poll()", unusable);
            return -ENOTSUP;
        }
        srv->poll_reason = unusable;
        return 0;
    }
    srv->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    srv->before_wait = malloc(sizeof(*srv->before_wait));
    if (!srv->loop || !srv->before_wait) {
        snprintf(err, errlen, "cannot make the I/O thread's epoll loop");
        free_loop(srv);
        return -ENOMEM;
    }
    ev_prepare_init(srv->before_wait, before_wait);
    srv->before_wait->data = srv;
    ev_prepare_start(srv->loop, srv->before_wait);
    srv->foreign_loops[0] = srv->loop;
    return 0;
}

/* The context, on the loop make_loop() chose; when lws cannot load its libev plugin (the
 * package libwebsockets-evlib-ev missing) and epoll was not required, on poll(). */
static struct lws_context *create_context(gw_server *srv, struct lws_context_creation_info *info)
{
    if (!srv->loop)
        return lws_create_context(info);
    info->options |= LWS_SERVER_OPTION_LIBEV;
    info->foreign_loops = srv->foreign_loops;
    struct lws_context *ctx = lws_create_context(info);
    if (ctx || srv->epoll_required)
        return ctx;
    free_loop(srv);
    info->options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
    info->foreign_loops = NULL;
    srv->poll_reason = "libwebsockets could not load its libev plugin (Debian's "
                       "libwebsockets-evlib-ev)";
    return lws_create_context(info);
}

const char *gw_server_event_loop(const gw_server *srv, const char **poll_reason)
{
    if (poll_reason)
        *poll_reason = srv->poll_reason;
    return srv->loop ? "epoll" : "poll";
}

static void free_loop(gw_server *srv)
{
    if (srv->loop && srv->before_wait)
        ev_prepare_stop(srv->loop, srv->before_wait);
    free(srv->before_wait);
    srv->before_wait = NULL;
    if (srv->loop)
        ev_loop_destroy(srv->loop);
    srv->loop = NULL;
}

static const struct lws_protocols protocols[] = {
    {GW_CONN_PROTOCOL, gw_conn_callback, 0, 0, 0, NULL, 0},
    {GW_LISTEN_PROTOCOL, gw__listen_callback, 0, 0, 0, NULL, 0},
    {GW_SIBLINGS_PROTOCOL, gw_ws_siblings_callback, 0, 0, 0, NULL, 0},
    {GW_REDIS_PROTOCOL, gw__redis_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Opens srv's listening socket and context and starts its I/O thread. */
static int start_shard(gw_server *srv, char *err, size_t errlen)
{
    const gw_config *cfg = &srv->cfg;
    int fd = gw__listen_open(srv->host, cfg->port, cfg->reuse_port, err, errlen);
    if (fd < 0)
        return fd;
    srv->listen_fd = fd;

    /* lws' lines go to Python's logging (gateway/lwslog.c), at the levels it asked for. */
    gw_lwslog_set_mask(gw_lwslog_mask());
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
    int rc = make_loop(srv, err, errlen);
    if (rc) {
        close(srv->listen_fd);
        srv->listen_fd = -1;
        return rc;
    }
    srv->context = create_context(srv, &info);
    srv->vhost = srv->context ? lws_get_vhost_by_name(srv->context, "default") : NULL;
    if (!srv->vhost || gw__listen_adopt(srv)) {
        snprintf(err, errlen, "cannot serve on %s:%d (libwebsockets refused; see its log)",
                 srv->host, cfg->port);
        if (srv->context)
            lws_context_destroy(srv->context);
        srv->context = NULL;
        free_loop(srv);
        if (srv->listen_fd >= 0 && !srv->listen_wsi)
            close(srv->listen_fd);
        srv->listen_fd = -1;
        return -EIO;
    }
    srv->port = cfg->port;
    if (gw__metrics_prepare(srv) || gw__ws_start_bus(srv)) {
        snprintf(err, errlen, "out of memory making the pub/sub bus or the metrics");
        lws_context_destroy(srv->context);
        srv->context = NULL;
        free_loop(srv);
        srv->listen_fd = -1; /* closed with its wsi */
        return -ENOMEM;
    }
    gw_http_start_sweep(srv);
    gw_ws_start(srv);
    atomic_store(&srv->stopping, 0);
    if (pthread_create(&srv->io_thread, NULL, io_main, srv)) {
        snprintf(err, errlen, "cannot start the I/O thread");
        gw__ws_stop_bus(srv);
        lws_context_destroy(srv->context);
        srv->context = NULL;
        free_loop(srv);
        return -EAGAIN;
    }
    srv->io_started = 1;
    return 0;
}

/* Shard k of srv: a server of its own that borrows srv's routes, mounts and queues. */
static gw_server *new_shard(gw_server *srv, unsigned k)
{
    gw_server *s = gw_server_new();
    if (!s)
        return NULL;
    gw_router_free(s->router);
    s->router = srv->router;
    s->fallback = srv->fallback;
    s->statics = srv->statics;
    s->primary = srv;
    s->shard_index = k;
    s->cfg = srv->cfg;
    s->limits = srv->limits;
    memcpy(s->host, srv->host, sizeof(s->host));
    s->async_fd = srv->async_fd;
    if (srv->metrics) {
        /* Counters of its own (its thread writes them), summed with the others' on scrape. */
        s->metrics = gw_metrics_new(-1);
        s->endpoints = calloc(srv->routes.len ? srv->routes.len : 1, sizeof(*s->endpoints));
        if (!s->metrics || !s->endpoints) {
            gw_server_free(s);
            return NULL;
        }
        memcpy(s->metrics->labels, srv->metrics->labels, sizeof(s->metrics->labels));
        s->metrics_route = srv->metrics_route;
    }
    if (srv->ws_configured) {
        gw_ws_config share = srv->ws_cfg;
        share.max_connections = (share.max_connections + srv->nshards - 1) / srv->nshards;
        gw_ws_configure(s->ws, &share);
    }
    gw_ws_number_ids(s->ws, k, srv->nshards);
    return s;
}

/* Stops and frees what start made of the shards after shard 0 (any that started). */
static void free_shards(gw_server *srv)
{
    if (!srv->shards)
        return;
    for (unsigned k = 1; k < srv->nshards; k++)
        gw_server_free(srv->shards[k]);
    free(srv->shards);
    srv->shards = NULL;
}

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
    if (srv->nshards > 1) {
        /* Every shard binds the port: the kernel spreads connections between them. */
        srv->cfg.reuse_port = 1;
        /* The WebSocket limit is the process's: each shard takes its share, rounded up. */
        if (srv->ws_configured) {
            size_t max = srv->ws_cfg.max_connections;
            srv->ws_cfg.max_connections = (max + srv->nshards - 1) / srv->nshards;
            gw_ws_configure(srv->ws, &srv->ws_cfg);
            srv->ws_cfg.max_connections = max;
        }
    }
    /* lws reads RLIMIT_NOFILE at context creation: raise the soft limit to the hard one
     * so that tens of thousands of connections fit. */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max && rl.rlim_max <= 10000000) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    srv->async_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->async_fd < 0) {
        int e = errno;
        snprintf(err, errlen, "eventfd: %s", strerror(e));
        return -e;
    }
    /* The routes' counters before any shard serves: a scrape on another shard reads them. */
    int rc = gw__metrics_prepare(srv);
    if (rc)
        snprintf(err, errlen, "out of memory making the metrics");
    else if (srv->metrics && srv->nshards > 1)
        gw_ws_bus_state(srv, &srv->bus_snapshot); /* until shard 0's first sweep */
    if (!rc && srv->nshards > 1) {
        /* All made before any starts, so that no shard ever finds another missing. */
        srv->shards = calloc(srv->nshards, sizeof(*srv->shards));
        rc = srv->shards ? 0 : -ENOMEM;
        if (srv->shards) {
            srv->shards[0] = srv;
            /* Shard 0's ids too go up by M from 0, so that every id names its shard
             * (id % M), as the others' do (new_shard). */
            gw_ws_number_ids(srv->ws, 0, srv->nshards);
        }
        for (unsigned k = 1; !rc && k < srv->nshards; k++)
            if (!(srv->shards[k] = new_shard(srv, k)))
                rc = -ENOMEM;
        if (rc)
            snprintf(err, errlen, "out of memory making the I/O shards");
        /* Shard 0 last: it runs the bus to the other processes, whose messages it hands
         * to the others from its first round. */
        for (unsigned k = 1; !rc && k < srv->nshards; k++)
            rc = start_shard(srv->shards[k], err, errlen);
    }
    if (!rc)
        rc = start_shard(srv, err, errlen);
    if (rc) {
        for (unsigned k = 1; srv->shards && k < srv->nshards; k++)
            if (srv->shards[k])
                gw_server_stop(srv->shards[k]);
        free_shards(srv);
        close(srv->async_fd);
        srv->async_fd = -1;
    }
    return rc;
}

int gw_server_port(const gw_server *srv)
{
    return srv->io_started ? srv->port : 0;
}

void gw_server_drain(gw_server *srv)
{
    for (unsigned k = 0; k < srv->nshards; k++)
        atomic_store(&gw_server_shard(srv, k)->draining, 1);
}

size_t gw_server_in_flight(const gw_server *srv)
{
    size_t n = 0;
    for (unsigned k = 0; k < srv->nshards; k++)
        n += atomic_load(&gw_server_shard((gw_server *)srv, k)->in_flight);
    return n;
}

void gw_server_stop(gw_server *srv)
{
    pthread_mutex_lock(&srv->sync_lock);
    srv->sync_closed = 1;
    pthread_cond_broadcast(&srv->sync_cond);
    pthread_mutex_unlock(&srv->sync_lock);
    if (!srv->io_started)
        return;
    /* The other shards first: their requests wait in this one's queues. */
    for (unsigned k = 1; srv->shards && k < srv->nshards; k++)
        gw_server_stop(srv->shards[k]);
    atomic_store(&srv->stopping, 1);
    lws_cancel_service(srv->context);
    pthread_join(srv->io_thread, NULL);
    srv->io_started = 0;
    lws_sul_cancel(&srv->sync_timer);
    lws_sul_cancel(&srv->sweep_timer);
    lws_sul_cancel(&srv->accept_timer);
    gw__ws_stop_bus(srv);
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
    free_loop(srv);
    srv->listen_fd = -1; /* closed with its wsi */
    gw__discard_answers(srv);
}

void gw_server_free(gw_server *srv)
{
    if (!srv)
        return;
    gw_server_stop(srv);
    gw__discard_answers(srv);
    if (srv->primary) {
        /* Borrowed from shard 0, which frees them. */
        srv->router = NULL;
        srv->statics = NULL;
        srv->async_fd = -1;
    }
    each_request(srv->round_sync_head, gw__req_discard);
    each_request(srv->round_async_head, gw__req_discard);
    each_request(srv->sync_head, gw__req_discard);
    each_request(srv->async_head, gw__req_discard);
    srv->round_sync_head = srv->round_async_head = srv->sync_head = srv->async_head = NULL;
    if (srv->async_fd >= 0)
        close(srv->async_fd);
    for (size_t i = 0; i < srv->routes.len; i++) {
        gw_route *route = srv->routes.items[i];
        gw_response_free(route->const_response);
        free(route->ws.origins);
        free(route->metrics);
        free(route->pattern);
        free(route);
    }
    free(srv->routes.items);
    free(srv->flush);
    free(srv->endpoints);
    free_shards(srv);
    gw_router_free(srv->router);
    gw_static_set_free(srv->statics);
    gw_ws_hub_free(srv->ws);
    gw_metrics_free(srv->metrics);
    gw_pool_free(&srv->pool);
    pthread_mutex_destroy(&srv->sync_lock);
    pthread_cond_destroy(&srv->sync_cond);
    pthread_mutex_destroy(&srv->async_lock);
    pthread_mutex_destroy(&srv->answer_lock);
    pthread_mutex_destroy(&srv->stream_lock);
    pthread_cond_destroy(&srv->stream_cond);
    pthread_mutex_destroy(&srv->bus_snapshot_lock);
    free(srv);
}
