/*
 * The server's counters and their Prometheus text exposition. See metrics.h.
 */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const uint32_t gw_metrics_bucket_us[GW_METRICS_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

/* The same bounds as the exposition writes them, in seconds: written out rather than
 * printed with %g so that they read as a client library would write them. */
static const char *const bucket_le[GW_METRICS_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};

static const char *const status_classes[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

gw_metrics *gw_metrics_new(int worker)
{
    gw_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    atomic_init(&m->publishes, 0);
    if (worker >= 0)
        snprintf(m->labels, sizeof(m->labels), "worker=\"%d\"", worker);
    return m;
}

void gw_metrics_free(gw_metrics *m)
{
    free(m);
}

void gw_metrics_observe(gw_metrics *m, int status, int64_t us)
{
    if (!m)
        return;
    if (status >= 100 && status <= 599)
        gw_count(&m->responses[status / 100 - 1], 1);
    if (us < 0)
        return;
    size_t i = 0;
    while (i < GW_METRICS_BUCKETS && (uint64_t)us > gw_metrics_bucket_us[i])
        i++;
    gw_count(&m->latency_buckets[i], 1);
    gw_count(&m->latency_count, 1);
    gw_count(&m->latency_sum_us, (uint64_t)us);
}

int gw_metrics_status_of(const char *data, size_t len)
{
    if (len < 12 || memcmp(data, "HTTP/1.", 7) || data[8] != ' ')
        return 0;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (data[i] < '0' || data[i] > '9')
            return 0;
        status = status * 10 + (data[i] - '0');
    }
    return status;
}

void gw_metrics_ws_closed(gw_metrics_endpoint *e, int code)
{
    if (!e)
        return;
    for (size_t i = 0; i < GW_METRICS_CLOSE_CODES; i++) {
        int here = atomic_load_explicit(&e->closes[i].code, memory_order_relaxed);
        if (here == code) {
            gw_count(&e->closes[i].count, 1);
            return;
        }
        if (!here) {
            /* The count first: a reader that sees the code sees its count (release). */
            gw_count(&e->closes[i].count, 1);
            atomic_store_explicit(&e->closes[i].code, code, memory_order_release);
            return;
        }
    }
    gw_count(&e->closes_other, 1);
}

/* ---- rendering ---------------------------------------------------------------------------- */

typedef struct mbuf {
    char *buf;
    size_t len, cap;
    int failed;
} mbuf;

static void put(mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(mbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *grown = realloc(b->buf, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->buf = grown;
        b->cap = cap;
    }
}

static void family(mbuf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A route pattern as a label value: patterns are printable ASCII, so of the three
 * characters the format escapes only '\\' and '"' can occur. */
static void put_endpoint(mbuf *b, const char *pattern)
{
    put(b, "endpoint=\"");
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\' || *p == '"')
            put(b, "\\%c", *p);
        else
            put(b, "%c", *p);
    }
    put(b, "\"");
}

/* name{worker,...} value: the labels in braces only when there are any. extra is a
 * label pair already formatted, or NULL. */
static void sample(mbuf *b, const gw_metrics *m, const char *name, const char *extra,
                   uint64_t value)
{
    int any = m->labels[0] || extra;
    put(b, "%s%s%s%s%s%s %llu\n", name, any ? "{" : "", m->labels,
        m->labels[0] && extra ? "," : "", extra ? extra : "", any ? "}" : "",
        (unsigned long long)value);
}

/* name{worker,endpoint="...",extra} value */
static void endpoint_sample(mbuf *b, const gw_metrics *m, const char *name,
                            const gw_route *route, const char *extra, uint64_t value)
{
    put(b, "%s{%s%s", name, m->labels, m->labels[0] ? "," : "");
    put_endpoint(b, route->pattern);
    put(b, "%s%s} %llu\n", extra ? "," : "", extra ? extra : "", (unsigned long long)value);
}

/* One counter or gauge family with a sample per endpoint. */
static void per_endpoint(mbuf *b, const gw_metrics *m, const gw_metrics_view *v,
                         const char *name, const char *type, const char *help,
                         size_t offset)
{
    family(b, name, type, help);
    for (size_t i = 0; i < v->nendpoints; i++) {
        const gw_route *r = v->endpoints[i];
        uint64_t value = gw_counted((const gw_counter *)((const char *)r->metrics + offset));
        endpoint_sample(b, m, name, r, NULL, value);
    }
}

static void render_http(mbuf *b, const gw_metrics *m, const gw_metrics_view *v)
{
    family(b, "robyn_http_open_connections", "gauge", "HTTP connections open now.");
    sample(b, m, "robyn_http_open_connections", NULL, v->http_connections);
    family(b, "robyn_http_connections_total", "counter",
           "Connections accepted (each starts as HTTP; WebSocket ones are upgraded).");
    sample(b, m, "robyn_http_connections_total", NULL, gw_counted(&m->http_connections_total));

    family(b, "robyn_http_responses_total", "counter",
           "Final answers to HTTP requests, by status class (101 for WebSocket upgrades).");
    for (int i = 0; i < 5; i++) {
        char label[32];
        snprintf(label, sizeof(label), "status_class=\"%s\"", status_classes[i]);
        sample(b, m, "robyn_http_responses_total", label, gw_counted(&m->responses[i]));
    }

    family(b, "robyn_http_request_duration_seconds", "histogram",
           "From a request's last bytes read to its answer written or queued for the socket.");
    uint64_t cumulative = 0;
    for (int i = 0; i <= GW_METRICS_BUCKETS; i++) {
        char label[32];
        cumulative += gw_counted(&m->latency_buckets[i]);
        snprintf(label, sizeof(label), "le=\"%s\"", i < GW_METRICS_BUCKETS ? bucket_le[i] : "+Inf");
        sample(b, m, "robyn_http_request_duration_seconds_bucket", label, cumulative);
    }
    int any = m->labels[0] != 0;
    uint64_t sum_us = gw_counted(&m->latency_sum_us);
    put(b, "robyn_http_request_duration_seconds_sum%s%s%s %llu.%06llu\n", any ? "{" : "",
        m->labels, any ? "}" : "", (unsigned long long)(sum_us / 1000000),
        (unsigned long long)(sum_us % 1000000));
    sample(b, m, "robyn_http_request_duration_seconds_count", NULL,
           gw_counted(&m->latency_count));
}

#define EP(field) offsetof(gw_metrics_endpoint, field)

static void render_ws(mbuf *b, const gw_metrics *m, const gw_metrics_view *v)
{
    per_endpoint(b, m, v, "robyn_ws_open_connections", "gauge",
                 "WebSocket connections open now (upgrade accepted), by endpoint.", EP(open));
    per_endpoint(b, m, v, "robyn_ws_connections_total", "counter",
                 "WebSocket upgrades accepted, by endpoint.", EP(connections_total));
    per_endpoint(b, m, v, "robyn_ws_messages_received_total", "counter",
                 "Whole WebSocket data messages received, by endpoint.", EP(messages_received));
    per_endpoint(b, m, v, "robyn_ws_messages_sent_total", "counter",
                 "WebSocket data messages queued to send (sends and deliveries), by endpoint.",
                 EP(messages_sent));
    per_endpoint(b, m, v, "robyn_ws_deliveries_total", "counter",
                 "Messages a publish or broadcast queued for a subscriber, by endpoint.",
                 EP(deliveries));
    per_endpoint(b, m, v, "robyn_ws_dropped_messages_total", "counter",
                 "Deliveries dropped for a subscriber over its send limit (policy drop).",
                 EP(dropped));
    per_endpoint(b, m, v, "robyn_ws_slow_consumer_closes_total", "counter",
                 "Connections closed with 1008 for a send queue over its limit.",
                 EP(slow_closes));
    per_endpoint(b, m, v, "robyn_ws_received_bytes_total", "counter",
                 "Bytes read from WebSocket connections after the handshake, by endpoint.",
                 EP(bytes_received));
    per_endpoint(b, m, v, "robyn_ws_sent_bytes_total", "counter",
                 "Bytes of WebSocket frames written, by endpoint.", EP(bytes_sent));
    per_endpoint(b, m, v, "robyn_ws_queued_bytes", "gauge",
                 "Bytes waiting in send queues now, by endpoint.", EP(queued_bytes));

    family(b, "robyn_ws_closes_total", "counter",
           "WebSocket connections ended, by endpoint and close code (as on_close sees it).");
    for (size_t i = 0; i < v->nendpoints; i++) {
        const gw_route *r = v->endpoints[i];
        const gw_metrics_endpoint *e = r->metrics;
        for (size_t j = 0; j < GW_METRICS_CLOSE_CODES; j++) {
            int code = atomic_load_explicit(&e->closes[j].code, memory_order_acquire);
            if (!code)
                break;
            char label[32];
            snprintf(label, sizeof(label), "code=\"%d\"", code);
            endpoint_sample(b, m, "robyn_ws_closes_total", r, label,
                            gw_counted(&e->closes[j].count));
        }
        if (gw_counted(&e->closes_other))
            endpoint_sample(b, m, "robyn_ws_closes_total", r, "code=\"other\"",
                            gw_counted(&e->closes_other));
    }
}

static void render_bus(mbuf *b, const gw_metrics *m, const gw_metrics_bus *bus)
{
    char label[32];
    snprintf(label, sizeof(label), "bus=\"%s\"", bus->name);
    family(b, "robyn_pubsub_publishes_total", "counter",
           "Publishes made in this process (app.publish, websocket.publish, broadcast).");
    sample(b, m, "robyn_pubsub_publishes_total", NULL,
           atomic_load_explicit(&m->publishes, memory_order_relaxed));
    family(b, "robyn_pubsub_bus_info", "gauge",
           "The bus publishes travel on: local, siblings (--processes) or redis.");
    sample(b, m, "robyn_pubsub_bus_info", label, 1);
    family(b, "robyn_pubsub_connected", "gauge",
           "1 when the bus reaches everywhere it should (always 1 for the local bus).");
    sample(b, m, "robyn_pubsub_connected", NULL, (uint64_t)bus->connected);
    family(b, "robyn_pubsub_buffered_publishes", "gauge",
           "Publishes held while the bus is disconnected (redis).");
    sample(b, m, "robyn_pubsub_buffered_publishes", NULL, bus->buffered);
    family(b, "robyn_pubsub_lost_publishes_total", "counter",
           "Publishes the bus could not carry: outage buffer full (redis), too large (siblings).");
    sample(b, m, "robyn_pubsub_lost_publishes_total", NULL, bus->lost);
    family(b, "robyn_pubsub_published_total", "counter",
           "Messages handed to the bus for other processes (siblings: one per sibling).");
    sample(b, m, "robyn_pubsub_published_total", NULL, bus->published);
    family(b, "robyn_pubsub_received_total", "counter",
           "Messages from other processes delivered here.");
    sample(b, m, "robyn_pubsub_received_total", NULL, bus->received);
    if (!strcmp(bus->name, "redis")) {
        family(b, "robyn_pubsub_outages_total", "counter",
               "Times the connection to Redis was lost or could not be made.");
        sample(b, m, "robyn_pubsub_outages_total", NULL, bus->outages);
        family(b, "robyn_pubsub_gaps_total", "counter",
               "Messages of other processes never received (sequence gaps).");
        sample(b, m, "robyn_pubsub_gaps_total", NULL, bus->gaps);
    } else if (!strcmp(bus->name, "siblings")) {
        family(b, "robyn_pubsub_siblings", "gauge", "The other processes of the mesh.");
        sample(b, m, "robyn_pubsub_siblings", NULL, bus->siblings);
        family(b, "robyn_pubsub_siblings_connected", "gauge",
               "Sibling processes this one has a connection to.");
        sample(b, m, "robyn_pubsub_siblings_connected", NULL, bus->siblings_connected);
        family(b, "robyn_pubsub_siblings_cut_off_total", "counter",
               "Siblings cut off for not reading what was queued for them.");
        sample(b, m, "robyn_pubsub_siblings_cut_off_total", NULL, bus->cut_off);
    }
}

int gw_metrics_render(const gw_metrics *m, const gw_metrics_view *view, char **out,
                      size_t *len)
{
    mbuf b = {malloc(8192), 0, 8192, 0};
    if (!b.buf)
        return -ENOMEM;
    render_http(&b, m, view);
    render_ws(&b, m, view);
    render_bus(&b, m, &view->bus);
    if (b.failed) {
        free(b.buf);
        return -ENOMEM;
    }
    *out = b.buf;
    *len = b.len;
    return 0;
}

/* ---- the server's side ------------------------------------------------------------------ */

/* Whether two route patterns name the same fixed path: the router ignores leading and
 * trailing slashes. */
static int same_path(const char *a, const char *b)
{
    while (*a == '/')
        a++;
    while (*b == '/')
        b++;
    size_t la = strlen(a), lb = strlen(b);
    while (la && a[la - 1] == '/')
        la--;
    while (lb && b[lb - 1] == '/')
        lb--;
    return la == lb && !memcmp(a, b, la);
}

gw_route *gw_server_enable_metrics(gw_server *srv, const char *path, int worker,
                                   void *handler, char *err, size_t errlen, int *code)
{
    if (srv->metrics) {
        snprintf(err, errlen, "metrics are already served (at '%s')", srv->metrics_route->pattern);
        *code = -EEXIST;
        return NULL;
    }
    if (strchr(path, ':') || strchr(path, '*')) {
        snprintf(err, errlen, "the metrics path '%s' must be a fixed path, without parameters",
                 path);
        *code = -EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < srv->routes.len; i++) {
        const gw_route *r = srv->routes.items[i];
        if (r != srv->fallback && same_path(r->pattern, path)) {
            snprintf(err, errlen, "the metrics path '%s' is already the route %s %s", path,
                     gw_method_name(r->method), r->pattern);
            *code = -EEXIST;
            return NULL;
        }
    }
    gw_metrics *m = gw_metrics_new(worker);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        *code = -ENOMEM;
        return NULL;
    }
    gw_route *route = gw_server_add_route(srv, GW_METHOD_GET, path, GW_ROUTE_METRICS, handler,
                                          err, errlen, code);
    if (!route) {
        gw_metrics_free(m);
        return NULL;
    }
    srv->metrics = m;
    srv->metrics_route = route;
    return route;
}

int gw__metrics_prepare(gw_server *srv)
{
    if (!srv->metrics)
        return 0;
    for (size_t i = 0; i < srv->routes.len; i++) {
        gw_route *r = srv->routes.items[i];
        if (r->method == GW_METHOD_WS && !r->metrics && !(r->metrics = calloc(1, sizeof(*r->metrics))))
            return -ENOMEM;
    }
    return 0;
}

/* Per open connection (gw_ws_each_open): its endpoint's gauges. */
static void count_open(const gw_route *route, size_t queued, void *arg)
{
    (void)arg;
    if (route->metrics) {
        gw_count(&route->metrics->open, 1);
        gw_count(&route->metrics->queued_bytes, queued);
    }
}

/* The sums of a walk over one shard's connections, by route index. */
typedef struct gauge_walk {
    uint64_t *open, *queued;
} gauge_walk;

static void count_open_by_index(const gw_route *route, size_t queued, void *arg)
{
    gauge_walk *w = arg;
    w->open[route->index]++;
    w->queued[route->index] += queued;
}

/* --workers M, the shard's own I/O thread: its gauges into its counters (open connections
 * and queued bytes per endpoint, open HTTP connections), where the scrapes other shards
 * answer read them; a walk is summed before it is stored, so a reader never sees half of
 * one. shard 0 also keeps its bus's figures for them. 0, or -ENOMEM. */
static int publish_gauges(gw_server *srv)
{
    gw_server *owner = gw__queue_owner(srv);
    size_t n = owner->routes.len ? owner->routes.len : 1;
    gauge_walk w = {calloc(n, sizeof(uint64_t)), calloc(n, sizeof(uint64_t))};
    if (!w.open || !w.queued) {
        free(w.open);
        free(w.queued);
        return -ENOMEM;
    }
    gw_ws_each_open(srv, count_open_by_index, &w);
    for (size_t i = 0; i < owner->routes.len; i++) {
        gw_metrics_endpoint *e = gw__server_endpoint(srv, owner->routes.items[i]);
        if (e) {
            atomic_store_explicit(&e->open, w.open[i], memory_order_relaxed);
            atomic_store_explicit(&e->queued_bytes, w.queued[i], memory_order_relaxed);
        }
    }
    free(w.open);
    free(w.queued);
    atomic_store_explicit(&srv->metrics->http_open, srv->n_http_conns, memory_order_relaxed);
    if (srv == owner) {
        gw_metrics_bus bus;
        gw_ws_bus_state(srv, &bus);
        pthread_mutex_lock(&srv->bus_snapshot_lock);
        srv->bus_snapshot = bus;
        pthread_mutex_unlock(&srv->bus_snapshot_lock);
    }
    return 0;
}

void gw__metrics_sweep(gw_server *srv)
{
    if (srv->metrics && gw__server_nshards(srv) > 1 && publish_gauges(srv))
        lwsl_warn("gateway: out of memory refreshing the metrics' gauges\n");
}

static void add_counter(gw_counter *to, const gw_counter *from)
{
    gw_count(to, gw_counted(from));
}

/* Adds an endpoint's counters into sum (a scrape's own copy, no other thread sees it). */
static void add_endpoint(gw_metrics_endpoint *sum, const gw_metrics_endpoint *e)
{
    add_counter(&sum->connections_total, &e->connections_total);
    add_counter(&sum->messages_received, &e->messages_received);
    add_counter(&sum->messages_sent, &e->messages_sent);
    add_counter(&sum->deliveries, &e->deliveries);
    add_counter(&sum->dropped, &e->dropped);
    add_counter(&sum->slow_closes, &e->slow_closes);
    add_counter(&sum->bytes_received, &e->bytes_received);
    add_counter(&sum->bytes_sent, &e->bytes_sent);
    add_counter(&sum->open, &e->open);
    add_counter(&sum->queued_bytes, &e->queued_bytes);
    add_counter(&sum->closes_other, &e->closes_other);
    for (size_t j = 0; j < GW_METRICS_CLOSE_CODES; j++) {
        int code = atomic_load_explicit(&e->closes[j].code, memory_order_acquire);
        if (!code)
            break;
        uint64_t count = gw_counted(&e->closes[j].count);
        size_t k = 0;
        while (k < GW_METRICS_CLOSE_CODES && sum->closes[k].code && sum->closes[k].code != code)
            k++;
        if (k == GW_METRICS_CLOSE_CODES) {
            gw_count(&sum->closes_other, count);
            continue;
        }
        sum->closes[k].code = code;
        gw_count(&sum->closes[k].count, count);
    }
}

/* The process's figures with --workers M: every shard's counters summed; the gauges of
 * this shard fresh, the others' as of their last sweep (250 ms at most). */
static int render_shards(gw_server *srv, char **body, size_t *body_len)
{
    gw_server *owner = gw__queue_owner(srv);
    unsigned m = owner->nshards;
    size_t n = owner->routes.len ? owner->routes.len : 1;
    gw_metrics *total = calloc(1, sizeof(*total));
    gw_route *routes = calloc(n, sizeof(*routes));
    gw_metrics_endpoint *sums = calloc(n, sizeof(*sums));
    const gw_route **endpoints = calloc(n, sizeof(*endpoints));
    int rc = -ENOMEM;
    if (!total || !routes || !sums || !endpoints || publish_gauges(srv))
        goto done;
    memcpy(total->labels, srv->metrics->labels, sizeof(total->labels));
    atomic_store(&total->publishes, atomic_load(&owner->metrics->publishes));
    gw_metrics_view view = {0};
    for (unsigned k = 0; k < m; k++) {
        const gw_metrics *sm = owner->shards[k]->metrics;
        add_counter(&total->http_connections_total, &sm->http_connections_total);
        for (int i = 0; i < 5; i++)
            add_counter(&total->responses[i], &sm->responses[i]);
        for (int i = 0; i <= GW_METRICS_BUCKETS; i++)
            add_counter(&total->latency_buckets[i], &sm->latency_buckets[i]);
        add_counter(&total->latency_count, &sm->latency_count);
        add_counter(&total->latency_sum_us, &sm->latency_sum_us);
        view.http_connections += gw_counted(&sm->http_open);
    }
    for (size_t i = 0; i < owner->routes.len; i++) {
        const gw_route *r = owner->routes.items[i];
        if (r->method != GW_METHOD_WS || !r->metrics)
            continue;
        routes[view.nendpoints] = *r;
        routes[view.nendpoints].metrics = &sums[view.nendpoints];
        for (unsigned k = 0; k < m; k++)
            add_endpoint(&sums[view.nendpoints], gw__server_endpoint(owner->shards[k], r));
        endpoints[view.nendpoints] = &routes[view.nendpoints];
        view.nendpoints++;
    }
    view.endpoints = endpoints;
    if (srv == owner) {
        gw_ws_bus_state(srv, &view.bus);
    } else {
        pthread_mutex_lock(&owner->bus_snapshot_lock);
        view.bus = owner->bus_snapshot;
        pthread_mutex_unlock(&owner->bus_snapshot_lock);
    }
    rc = gw_metrics_render(total, &view, body, body_len);
done:
    free(total);
    free(routes);
    free(sums);
    free(endpoints);
    return rc;
}

char *gw__metrics_answer(gw_server *srv, int head_only, int keep_alive_header,
                         int close_header, size_t *len)
{
    char *body = NULL;
    size_t body_len = 0;
    int rc;
    if (gw__server_nshards(srv) > 1) {
        rc = render_shards(srv, &body, &body_len);
    } else {
        const gw_route **endpoints =
            calloc(srv->routes.len ? srv->routes.len : 1, sizeof(*endpoints));
        if (!endpoints)
            return NULL;
        gw_metrics_view view = {.http_connections = srv->n_http_conns};
        for (size_t i = 0; i < srv->routes.len; i++) {
            gw_route *r = srv->routes.items[i];
            if (r->method == GW_METHOD_WS && r->metrics) {
                atomic_store_explicit(&r->metrics->open, 0, memory_order_relaxed);
                atomic_store_explicit(&r->metrics->queued_bytes, 0, memory_order_relaxed);
                endpoints[view.nendpoints++] = r;
            }
        }
        view.endpoints = endpoints;
        gw_ws_each_open(srv, count_open, NULL);
        gw_ws_bus_state(srv, &view.bus);
        rc = gw_metrics_render(srv->metrics, &view, &body, &body_len);
        free(endpoints);
    }
    if (rc)
        return NULL;
    char head[256];
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 200 OK\r\n"
                      "content-type: text/plain; version=0.0.4; charset=utf-8\r\n"
                      "content-length: %zu\r\n%s\r\n",
                      body_len,
                      close_header ? "connection: close\r\n"
                      : keep_alive_header ? "connection: keep-alive\r\n" : "");
    size_t total = (size_t)hn + (head_only ? 0 : body_len);
    char *answer = gw_response_alloc(total);
    if (answer) {
        memcpy(answer, head, (size_t)hn);
        if (!head_only)
            memcpy(answer + hn, body, body_len);
        *len = total;
    }
    free(body);
    return answer;
}
