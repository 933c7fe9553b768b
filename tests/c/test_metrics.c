/*
 * test_metrics.c: unit tests of gateway/metrics.c, the counters and their Prometheus
 * text exposition: exact lines for every family, the histogram's buckets at their
 * edges, label escaping, the close-code table's overflow, the families of each bus,
 * and gw_server_enable_metrics()'s refusals.
 *
 * Every test frees everything it made, so ASan and valgrind stay quiet.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static char *render(const gw_metrics *m, const gw_metrics_view *v)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(gw_metrics_render(m, v, &out, &len), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), len); /* NUL-terminated and no NUL inside */
    return out;
}

static gw_metrics_view local_view(void)
{
    gw_metrics_view v;
    memset(&v, 0, sizeof(v));
    v.bus.name = "local";
    v.bus.connected = 1;
    return v;
}

/* text contains block as consecutive whole lines. */
static void assert_lines(const char *text, const char *block)
{
    const char *at = strstr(text, block);
    if (!at) {
        fprintf(stderr, "missing:\n%s\nin:\n%s", block, text);
        fail();
    }
    assert_true(at == text || at[-1] == '\n');
    assert_int_equal(block[strlen(block) - 1], '\n');
}

/* Every sample's family has HELP then TYPE before it, each family once. */
static void assert_well_formed(const char *text)
{
    char family[128] = "";
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        assert_non_null(end); /* the last line ends with a newline too */
        if (!strncmp(line, "# HELP ", 7)) {
            int n = (int)strcspn(line + 7, " ");
            snprintf(family, sizeof(family), "%.*s", n, line + 7);
            char type_prefix[160];
            snprintf(type_prefix, sizeof(type_prefix), "# TYPE %s ", family);
            assert_memory_equal(end + 1, type_prefix, strlen(type_prefix));
            /* Not seen before. */
            char help[160];
            snprintf(help, sizeof(help), "# HELP %s ", family);
            assert_true(strstr(text, help) == line);
        } else if (strncmp(line, "# TYPE ", 7)) {
            size_t n = strlen(family);
            assert_true(n > 0);
            assert_memory_equal(line, family, n);
            /* The family's name, then one of the histogram's suffixes, '{' or ' '. */
            const char *rest = line + n;
            assert_true(*rest == '{' || *rest == ' ' || !strncmp(rest, "_bucket{", 8) ||
                        !strncmp(rest, "_sum", 4) || !strncmp(rest, "_count", 6));
        }
        line = end + 1;
    }
}

static void test_empty_server(void **state)
{
    (void)state;
    gw_metrics *m = gw_metrics_new(-1);
    gw_metrics_view v = local_view();
    char *text = render(m, &v);
    assert_well_formed(text);
    assert_lines(text,
                 "# HELP robyn_http_open_connections HTTP connections open now.\n"
                 "# TYPE robyn_http_open_connections gauge\n"
                 "robyn_http_open_connections 0\n");
    assert_lines(text,
                 "# TYPE robyn_http_responses_total counter\n"
                 "robyn_http_responses_total{status_class=\"1xx\"} 0\n"
                 "robyn_http_responses_total{status_class=\"2xx\"} 0\n"
                 "robyn_http_responses_total{status_class=\"3xx\"} 0\n"
                 "robyn_http_responses_total{status_class=\"4xx\"} 0\n"
                 "robyn_http_responses_total{status_class=\"5xx\"} 0\n");
    assert_lines(text,
                 "robyn_http_request_duration_seconds_bucket{le=\"+Inf\"} 0\n"
                 "robyn_http_request_duration_seconds_sum 0.000000\n"
                 "robyn_http_request_duration_seconds_count 0\n");
    /* No endpoint: the WebSocket families are there, with no samples. */
    assert_lines(text,
                 "# TYPE robyn_ws_open_connections gauge\n"
                 "# HELP robyn_ws_connections_total WebSocket upgrades accepted, by endpoint.\n");
    assert_lines(text,
                 "# TYPE robyn_pubsub_bus_info gauge\n"
                 "robyn_pubsub_bus_info{bus=\"local\"} 1\n");
    assert_lines(text, "robyn_pubsub_connected 1\n");
    assert_lines(text,
                 "# TYPE robyn_pubsub_publishes_total counter\n"
                 "robyn_pubsub_publishes_total 0\n");
    assert_null(strstr(text, "worker="));
    assert_null(strstr(text, "robyn_pubsub_outages_total"));
    assert_null(strstr(text, "robyn_pubsub_siblings"));
    free(text);
    gw_metrics_free(m);
}

static void test_statuses_and_histogram(void **state)
{
    (void)state;
    gw_metrics *m = gw_metrics_new(-1);
    /* Each bucket's bound is inclusive (le): 100 µs is in 0.0001, 101 in 0.00025. */
    const int64_t us[] = {0, 100, 101, 2500, 10000000, 10000001};
    const int status[] = {200, 404, 101, 302, 503, 200};
    for (size_t i = 0; i < 6; i++)
        gw_metrics_observe(m, status[i], us[i]);
    /* Answers to bytes that made no request: counted by class, not observed. */
    gw_metrics_observe(m, 400, -1);
    gw_metrics_observe(m, 408, -1);
    /* Statuses outside 100..599 have no class. */
    gw_metrics_observe(m, 99, -1);
    gw_metrics_observe(m, 600, -1);
    gw_metrics_view v = local_view();
    v.http_connections = 7;
    m->http_connections_total = 42;
    char *text = render(m, &v);
    assert_well_formed(text);
    assert_lines(text, "robyn_http_open_connections 7\n");
    assert_lines(text, "robyn_http_connections_total 42\n");
    assert_lines(text,
                 "robyn_http_responses_total{status_class=\"1xx\"} 1\n"
                 "robyn_http_responses_total{status_class=\"2xx\"} 2\n"
                 "robyn_http_responses_total{status_class=\"3xx\"} 1\n"
                 "robyn_http_responses_total{status_class=\"4xx\"} 3\n"
                 "robyn_http_responses_total{status_class=\"5xx\"} 1\n");
    assert_lines(text,
                 "# HELP robyn_http_request_duration_seconds From a request's last bytes read "
                 "to its answer written or queued for the socket.\n"
                 "# TYPE robyn_http_request_duration_seconds histogram\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.0001\"} 2\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.00025\"} 3\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.0005\"} 3\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.001\"} 3\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.0025\"} 4\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.005\"} 4\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.01\"} 4\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.025\"} 4\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.05\"} 4\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.1\"} 4\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.25\"} 4\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"0.5\"} 4\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"1\"} 4\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"2.5\"} 4\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"5\"} 4\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"10\"} 5\n"
                 "robyn_http_request_duration_seconds_bucket{le=\"+Inf\"} 6\n"
                 "robyn_http_request_duration_seconds_sum 20.002702\n"
                 "robyn_http_request_duration_seconds_count 6\n");
    free(text);
    gw_metrics_free(m);
}

static void test_endpoints_worker_and_escaping(void **state)
{
    (void)state;
    gw_metrics *m = gw_metrics_new(3);
    gw_metrics_endpoint echo_counters, odd_counters;
    memset(&echo_counters, 0, sizeof(echo_counters));
    memset(&odd_counters, 0, sizeof(odd_counters));
    gw_route echo = {.method = GW_METHOD_WS, .pattern = "/echo", .metrics = &echo_counters};
    gw_route odd = {.method = GW_METHOD_WS, .pattern = "/q\"x\\y", .metrics = &odd_counters};

    gw_metrics_ws_opened(echo.metrics);
    gw_metrics_ws_opened(echo.metrics);
    for (int i = 0; i < 3; i++)
        gw_metrics_ws_received(echo.metrics);
    gw_metrics_ws_sent(echo.metrics);
    gw_metrics_ws_delivered(echo.metrics);
    gw_metrics_ws_delivered(echo.metrics);
    gw_metrics_ws_dropped(echo.metrics);
    gw_metrics_ws_slow_closed(echo.metrics);
    gw_metrics_ws_bytes_in(echo.metrics, 24);
    gw_metrics_ws_bytes_out(echo.metrics, 12);
    gw_metrics_ws_bytes_out(echo.metrics, 4);
    gw_metrics_ws_closed(echo.metrics, 1000);
    gw_metrics_ws_closed(echo.metrics, 1008);
    gw_metrics_ws_closed(echo.metrics, 1000);
    /* Seventeen distinct codes: the table keeps sixteen, the rest is "other". */
    for (int code = 4000; code < 4017; code++)
        gw_metrics_ws_closed(odd.metrics, code);
    gw_metrics_ws_closed(odd.metrics, 4016);
    gw_metrics_ws_closed(odd.metrics, 4015);
    echo_counters.open = 1;
    echo_counters.queued_bytes = 300;
    /* The NULL counters of an endpoint without metrics are ignored. */
    gw_metrics_ws_received(NULL);
    gw_metrics_ws_closed(NULL, 1000);
    gw_metrics_observe(NULL, 200, 5);
    gw_metrics_published(NULL);
    gw_metrics_observe(m, 200, 1500000);
    gw_metrics_published(m);
    gw_metrics_published(m);

    const gw_route *endpoints[] = {&echo, &odd};
    gw_metrics_view v = local_view();
    v.endpoints = endpoints;
    v.nendpoints = 2;
    char *text = render(m, &v);
    assert_well_formed(text);
    assert_lines(text, "robyn_http_open_connections{worker=\"3\"} 0\n");
    assert_lines(text, "robyn_http_responses_total{worker=\"3\",status_class=\"2xx\"} 1\n");
    assert_lines(text,
                 "robyn_http_request_duration_seconds_bucket{worker=\"3\",le=\"1\"} 0\n"
                 "robyn_http_request_duration_seconds_bucket{worker=\"3\",le=\"2.5\"} 1\n");
    assert_lines(text,
                 "robyn_http_request_duration_seconds_sum{worker=\"3\"} 1.500000\n"
                 "robyn_http_request_duration_seconds_count{worker=\"3\"} 1\n");
    assert_lines(text,
                 "robyn_ws_open_connections{worker=\"3\",endpoint=\"/echo\"} 1\n"
                 "robyn_ws_open_connections{worker=\"3\",endpoint=\"/q\\\"x\\\\y\"} 0\n");
    assert_lines(text, "robyn_ws_connections_total{worker=\"3\",endpoint=\"/echo\"} 2\n");
    assert_lines(text, "robyn_ws_messages_received_total{worker=\"3\",endpoint=\"/echo\"} 3\n");
    assert_lines(text, "robyn_ws_messages_sent_total{worker=\"3\",endpoint=\"/echo\"} 3\n");
    assert_lines(text, "robyn_ws_deliveries_total{worker=\"3\",endpoint=\"/echo\"} 2\n");
    assert_lines(text, "robyn_ws_dropped_messages_total{worker=\"3\",endpoint=\"/echo\"} 1\n");
    assert_lines(text, "robyn_ws_slow_consumer_closes_total{worker=\"3\",endpoint=\"/echo\"} 1\n");
    assert_lines(text, "robyn_ws_received_bytes_total{worker=\"3\",endpoint=\"/echo\"} 24\n");
    assert_lines(text, "robyn_ws_sent_bytes_total{worker=\"3\",endpoint=\"/echo\"} 16\n");
    assert_lines(text, "robyn_ws_queued_bytes{worker=\"3\",endpoint=\"/echo\"} 300\n");
    assert_lines(text,
                 "robyn_ws_closes_total{worker=\"3\",endpoint=\"/echo\",code=\"1000\"} 2\n"
                 "robyn_ws_closes_total{worker=\"3\",endpoint=\"/echo\",code=\"1008\"} 1\n"
                 "robyn_ws_closes_total{worker=\"3\",endpoint=\"/q\\\"x\\\\y\",code=\"4000\"} 1\n");
    assert_lines(text,
                 "robyn_ws_closes_total{worker=\"3\",endpoint=\"/q\\\"x\\\\y\",code=\"4015\"} 2\n"
                 "robyn_ws_closes_total{worker=\"3\",endpoint=\"/q\\\"x\\\\y\",code=\"other\"} 2\n"
                 "# HELP robyn_pubsub_publishes_total Publishes made in this process "
                 "(app.publish, websocket.publish, broadcast).\n");
    assert_null(strstr(text, "code=\"4016\""));
    assert_lines(text, "robyn_pubsub_bus_info{worker=\"3\",bus=\"local\"} 1\n");
    assert_lines(text, "robyn_pubsub_publishes_total{worker=\"3\"} 2\n");
    free(text);
    gw_metrics_free(m);
}

static void test_buses(void **state)
{
    (void)state;
    gw_metrics *m = gw_metrics_new(-1);
    gw_metrics_view v = local_view();
    v.bus = (gw_metrics_bus){.name = "redis", .connected = 0, .buffered = 5, .lost = 2,
                             .published = 11, .received = 13, .outages = 3, .gaps = 1};
    char *text = render(m, &v);
    assert_well_formed(text);
    assert_lines(text,
                 "robyn_pubsub_bus_info{bus=\"redis\"} 1\n"
                 "# HELP robyn_pubsub_connected 1 when the bus reaches everywhere it should "
                 "(always 1 for the local bus).\n"
                 "# TYPE robyn_pubsub_connected gauge\n"
                 "robyn_pubsub_connected 0\n");
    assert_lines(text, "robyn_pubsub_buffered_publishes 5\n");
    assert_lines(text, "robyn_pubsub_lost_publishes_total 2\n");
    assert_lines(text, "robyn_pubsub_published_total 11\n");
    assert_lines(text, "robyn_pubsub_received_total 13\n");
    assert_lines(text,
                 "# TYPE robyn_pubsub_outages_total counter\n"
                 "robyn_pubsub_outages_total 3\n");
    assert_lines(text, "robyn_pubsub_gaps_total 1\n");
    assert_null(strstr(text, "robyn_pubsub_siblings"));
    free(text);

    v.bus = (gw_metrics_bus){.name = "siblings", .connected = 1, .lost = 1, .published = 8,
                             .received = 4, .siblings = 3, .siblings_connected = 3,
                             .cut_off = 2};
    text = render(m, &v);
    assert_well_formed(text);
    assert_lines(text, "robyn_pubsub_bus_info{bus=\"siblings\"} 1\n");
    assert_lines(text, "robyn_pubsub_connected 1\n");
    assert_lines(text,
                 "# TYPE robyn_pubsub_siblings gauge\n"
                 "robyn_pubsub_siblings 3\n");
    assert_lines(text, "robyn_pubsub_siblings_connected 3\n");
    assert_lines(text,
                 "# TYPE robyn_pubsub_siblings_cut_off_total counter\n"
                 "robyn_pubsub_siblings_cut_off_total 2\n");
    assert_null(strstr(text, "robyn_pubsub_outages_total"));
    free(text);
    gw_metrics_free(m);
}

/* An exposition larger than the first buffer: many endpoints with long patterns. */
static void test_growth(void **state)
{
    (void)state;
    gw_metrics *m = gw_metrics_new(-1);
    enum { N = 40 };
    gw_metrics_endpoint counters[N];
    gw_route routes[N];
    const gw_route *endpoints[N];
    char patterns[N][300];
    memset(counters, 0, sizeof(counters));
    memset(routes, 0, sizeof(routes));
    for (int i = 0; i < N; i++) {
        snprintf(patterns[i], sizeof(patterns[i]), "/%0250d", i);
        routes[i].method = GW_METHOD_WS;
        routes[i].pattern = patterns[i];
        routes[i].metrics = &counters[i];
        counters[i].messages_received = (uint64_t)i;
        endpoints[i] = &routes[i];
    }
    gw_metrics_view v = local_view();
    v.endpoints = endpoints;
    v.nendpoints = N;
    char *text = render(m, &v);
    assert_well_formed(text);
    assert_true(strlen(text) > 10 * N * 250);
    char line[400];
    snprintf(line, sizeof(line), "robyn_ws_messages_received_total{endpoint=\"/%0250d\"} 39\n", 39);
    assert_lines(text, line);
    free(text);
    gw_metrics_free(m);
}

static void test_status_of(void **state)
{
    (void)state;
    assert_int_equal(gw_metrics_status_of("HTTP/1.1 403 Forbidden\r\n", 24), 403);
    assert_int_equal(gw_metrics_status_of("HTTP/1.0 200 OK\r\n", 17), 200);
    assert_int_equal(gw_metrics_status_of("HTTP/1.1 20", 11), 0);
    assert_int_equal(gw_metrics_status_of("HTTP/2.0 200 OK\r\n", 17), 0);
    assert_int_equal(gw_metrics_status_of("HTTP/1.1 2x0 OK\r\n", 17), 0);
}

static int handler_token;

static void test_enable_refusals(void **state)
{
    (void)state;
    gw_server *srv = gw_server_new();
    assert_non_null(srv);
    char err[256];
    int code = 0;
    assert_non_null(gw_server_add_route(srv, GW_METHOD_POST, "/metrics/", GW_ROUTE_SYNC,
                                        &handler_token, err, sizeof(err), &code));
    assert_non_null(gw_server_add_route(srv, GW_METHOD_WS, "/live", GW_ROUTE_ASYNC,
                                        &handler_token, err, sizeof(err), &code));

    code = 0;
    assert_null(gw_server_enable_metrics(srv, "/metrics", -1, &handler_token, err, sizeof(err),
                                         &code));
    assert_int_equal(code, -EEXIST);
    assert_string_equal(err, "the metrics path '/metrics' is already the route POST /metrics/");

    code = 0;
    assert_null(gw_server_enable_metrics(srv, "live", -1, &handler_token, err, sizeof(err), &code));
    assert_int_equal(code, -EEXIST);
    assert_string_equal(err, "the metrics path 'live' is already the route WS /live");

    code = 0;
    assert_null(gw_server_enable_metrics(srv, "/m/:name", -1, &handler_token, err, sizeof(err),
                                         &code));
    assert_int_equal(code, -EINVAL);
    assert_string_equal(err, "the metrics path '/m/:name' must be a fixed path, without parameters");

    code = 0;
    assert_null(gw_server_enable_metrics(srv, "/a//b", -1, &handler_token, err, sizeof(err), &code));
    assert_int_equal(code, -EINVAL);
    assert_string_equal(err, "Malformed route pattern '/a//b': empty segment");

    code = 0;
    gw_route *route = gw_server_enable_metrics(srv, "/stats", 0, &handler_token, err, sizeof(err),
                                               &code);
    assert_non_null(route);
    assert_int_equal(route->kind, GW_ROUTE_METRICS);
    assert_int_equal(route->method, GW_METHOD_GET);

    code = 0;
    assert_null(gw_server_enable_metrics(srv, "/other", -1, &handler_token, err, sizeof(err),
                                         &code));
    assert_int_equal(code, -EEXIST);
    assert_string_equal(err, "metrics are already served (at '/stats')");

    /* A route of the metrics path added afterwards conflicts in the router. */
    code = 0;
    assert_null(gw_server_add_route(srv, GW_METHOD_GET, "/stats", GW_ROUTE_SYNC, &handler_token,
                                    err, sizeof(err), &code));
    assert_int_equal(code, -EEXIST);
    gw_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_server),
        cmocka_unit_test(test_statuses_and_histogram),
        cmocka_unit_test(test_endpoints_worker_and_escaping),
        cmocka_unit_test(test_buses),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_status_of),
        cmocka_unit_test(test_enable_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
