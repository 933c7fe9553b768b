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
        m->responses[status / 100 - 1]++;
    if (us < 0)
        return;
    size_t i = 0;
    while (i < GW_METRICS_BUCKETS && (uint64_t)us > gw_metrics_bucket_us[i])
        i++;
    m->latency_buckets[i]++;
    m->latency_count++;
    m->latency_sum_us += (uint64_t)us;
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
        if (e->closes[i].code == code) {
            e->closes[i].count++;
            return;
        }
        if (!e->closes[i].code) {
            e->closes[i].code = code;
            e->closes[i].count = 1;
            return;
        }
    }
    e->closes_other++;
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
        uint64_t value;
        memcpy(&value, (const char *)r->metrics + offset, sizeof(value));
        endpoint_sample(b, m, name, r, NULL, value);
    }
}

static void render_http(mbuf *b, const gw_metrics *m, const gw_metrics_view *v)
{
    family(b, "robyn_http_open_connections", "gauge", "HTTP connections open now.");
    sample(b, m, "robyn_http_open_connections", NULL, v->http_connections);
    family(b, "robyn_http_connections_total", "counter",
           "Connections accepted (each starts as HTTP; WebSocket ones are upgraded).");
    sample(b, m, "robyn_http_connections_total", NULL, m->http_connections_total);

    family(b, "robyn_http_responses_total", "counter",
           "Final answers to HTTP requests, by status class (101 for WebSocket upgrades).");
    for (int i = 0; i < 5; i++) {
        char label[32];
        snprintf(label, sizeof(label), "status_class=\"%s\"", status_classes[i]);
        sample(b, m, "robyn_http_responses_total", label, m->responses[i]);
    }

    family(b, "robyn_http_request_duration_seconds", "histogram",
           "From a request's last bytes read to its answer written or queued for the socket.");
    uint64_t cumulative = 0;
    for (int i = 0; i <= GW_METRICS_BUCKETS; i++) {
        char label[32];
        cumulative += m->latency_buckets[i];
        snprintf(label, sizeof(label), "le=\"%s\"", i < GW_METRICS_BUCKETS ? bucket_le[i] : "+Inf");
        sample(b, m, "robyn_http_request_duration_seconds_bucket", label, cumulative);
    }
    int any = m->labels[0] != 0;
    put(b, "robyn_http_request_duration_seconds_sum%s%s%s %llu.%06llu\n", any ? "{" : "",
        m->labels, any ? "}" : "", (unsigned long long)(m->latency_sum_us / 1000000),
        (unsigned long long)(m->latency_sum_us % 1000000));
    sample(b, m, "robyn_http_request_duration_seconds_count", NULL, m->latency_count);
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
        for (size_t j = 0; j < GW_METRICS_CLOSE_CODES && e->closes[j].code; j++) {
            char label[32];
            snprintf(label, sizeof(label), "code=\"%d\"", e->closes[j].code);
            endpoint_sample(b, m, "robyn_ws_closes_total", r, label, e->closes[j].count);
        }
        if (e->closes_other)
            endpoint_sample(b, m, "robyn_ws_closes_total", r, "code=\"other\"", e->closes_other);
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
        route->metrics->open++;
        route->metrics->queued_bytes += queued;
    }
}

char *gw__metrics_answer(gw_server *srv, int head_only, int keep_alive_header,
                         int close_header, size_t *len)
{
    const gw_route **endpoints = calloc(srv->routes.len ? srv->routes.len : 1, sizeof(*endpoints));
    if (!endpoints)
        return NULL;
    gw_metrics_view view = {.http_connections = srv->n_http_conns};
    for (size_t i = 0; i < srv->routes.len; i++) {
        gw_route *r = srv->routes.items[i];
        if (r->method == GW_METHOD_WS && r->metrics) {
            r->metrics->open = r->metrics->queued_bytes = 0;
            endpoints[view.nendpoints++] = r;
        }
    }
    view.endpoints = endpoints;
    gw_ws_each_open(srv, count_open, NULL);
    gw_ws_bus_state(srv, &view.bus);
    char *body = NULL;
    size_t body_len = 0;
    int rc = gw_metrics_render(srv->metrics, &view, &body, &body_len);
    free(endpoints);
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
