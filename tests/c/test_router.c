/*
 * Unit tests for gateway/router.{c,h}. Each test gets a fresh router from setup() and
 * teardown() frees it, and frees every buffer it makes, so ASan and valgrind stay quiet.
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

#include "router.h"

#define H(i) ((void *)(uintptr_t)(i))
#define BIT(m) (1u << (m))

static int setup(void **state)
{
    gw_router *r = gw_router_new();
    if (r == NULL)
        return -1;
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    gw_router_free(*state);
    return 0;
}

static void add_ok(gw_router *r, int method, const char *pattern, void *handler)
{
    char err[256] = "unset";
    int rc = gw_router_add(r, method, pattern, handler, err, sizeof(err));
    if (rc != 0)
        fail_msg("adding '%s' failed with %d: %s", pattern, rc, err);
    assert_string_equal(err, "");
}

/* Adds a route that must fail with rc and exactly the message want, leaving the count alone. */
static void add_fails(gw_router *r, int method, const char *pattern, int rc, const char *want)
{
    char err[512];
    size_t before = gw_router_count(r, -1);
    memset(err, 'x', sizeof(err));
    assert_int_equal(gw_router_add(r, method, pattern, H(0xbad), err, sizeof(err)), rc);
    assert_string_equal(err, want);
    assert_int_equal(gw_router_count(r, -1), before);
}

/* Matches a NUL-terminated path. */
static void *match(const gw_router *r, int method, const char *path, gw_param *params,
                   int *nparams)
{
    return gw_router_match(r, method, path, strlen(path), params, nparams, NULL);
}

static void assert_param(const gw_param *p, const char *name, const char *value)
{
    assert_int_equal(p->name_len, strlen(name));
    assert_memory_equal(p->name, name, p->name_len);
    assert_int_equal(p->value_len, strlen(value));
    if (p->value_len > 0)
        assert_memory_equal(p->value, value, p->value_len);
}

/* Asserts that every parameter value lies inside path[0..len). */
static void assert_params_in(const gw_param *params, int n, const char *path, size_t len)
{
    for (int i = 0; i < n; i++) {
        assert_true(params[i].value >= path);
        assert_true(params[i].value + params[i].value_len <= path + len);
    }
}

/* ---- methods and counting -------------------------------------------------------------- */

static void test_method_names(void **state)
{
    (void)state;
    assert_int_equal(gw_method_from_name("GET", 3), GW_METHOD_GET);
    assert_int_equal(gw_method_from_name("get", 3), GW_METHOD_GET);
    assert_int_equal(gw_method_from_name("pOsT", 4), GW_METHOD_POST);
    assert_int_equal(gw_method_from_name("PUT", 3), GW_METHOD_PUT);
    assert_int_equal(gw_method_from_name("delete", 6), GW_METHOD_DELETE);
    assert_int_equal(gw_method_from_name("PATCH", 5), GW_METHOD_PATCH);
    assert_int_equal(gw_method_from_name("HEAD", 4), GW_METHOD_HEAD);
    assert_int_equal(gw_method_from_name("options", 7), GW_METHOD_OPTIONS);
    assert_int_equal(gw_method_from_name("CONNECT", 7), GW_METHOD_CONNECT);
    assert_int_equal(gw_method_from_name("trace", 5), GW_METHOD_TRACE);
    /* The length decides, not a NUL: "GETX" cut to 3 is GET. */
    assert_int_equal(gw_method_from_name("GETX", 3), GW_METHOD_GET);
    assert_int_equal(gw_method_from_name("GETX", 4), -1);
    assert_int_equal(gw_method_from_name("GE", 2), -1);
    assert_int_equal(gw_method_from_name("WS", 2), -1);
    assert_int_equal(gw_method_from_name("ws", 2), -1);
    assert_int_equal(gw_method_from_name("PROPFIND", 8), -1);
    assert_int_equal(gw_method_from_name("", 0), -1);
    assert_int_equal(gw_method_from_name(NULL, 3), -1);
    assert_int_equal(gw_method_from_name("G\0T", 3), -1);

    for (int m = 0; m < GW_METHOD_COUNT; m++) {
        const char *name = gw_method_name(m);
        assert_non_null(name);
        if (m != GW_METHOD_WS)
            assert_int_equal(gw_method_from_name(name, strlen(name)), m);
    }
    assert_string_equal(gw_method_name(GW_METHOD_GET), "GET");
    assert_string_equal(gw_method_name(GW_METHOD_OPTIONS), "OPTIONS");
    assert_string_equal(gw_method_name(GW_METHOD_WS), "WS");
    assert_null(gw_method_name(-1));
    assert_null(gw_method_name(GW_METHOD_COUNT));
}

static void test_empty_router(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = 42;
    unsigned allowed = 42;
    assert_int_equal(gw_router_count(r, -1), 0);
    assert_null(gw_router_match(r, GW_METHOD_GET, "/", 1, params, &n, &allowed));
    assert_int_equal(n, 0);
    assert_int_equal(allowed, 0);
    assert_null(gw_router_match(NULL, GW_METHOD_GET, "/", 1, params, &n, &allowed));
    assert_int_equal(gw_router_count(NULL, -1), 0);
    gw_router_free(NULL);
}

static void test_count(void **state)
{
    gw_router *r = *state;
    add_ok(r, GW_METHOD_GET, "/a", H(1));
    add_ok(r, GW_METHOD_GET, "/b", H(2));
    add_ok(r, GW_METHOD_POST, "/a", H(3));
    add_ok(r, GW_METHOD_WS, "/ws", H(4));
    assert_int_equal(gw_router_count(r, GW_METHOD_GET), 2);
    assert_int_equal(gw_router_count(r, GW_METHOD_POST), 1);
    assert_int_equal(gw_router_count(r, GW_METHOD_WS), 1);
    assert_int_equal(gw_router_count(r, GW_METHOD_PUT), 0);
    assert_int_equal(gw_router_count(r, -1), 4);
    assert_int_equal(gw_router_count(r, -2), 0);
    assert_int_equal(gw_router_count(r, GW_METHOD_COUNT), 0);
}

/* ---- matching -------------------------------------------------------------------------- */

static void test_static_routes(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    add_ok(r, GW_METHOD_GET, "/users", H(1));
    add_ok(r, GW_METHOD_GET, "/users/me", H(2));
    add_ok(r, GW_METHOD_GET, "/users/me/settings", H(3));
    add_ok(r, GW_METHOD_POST, "/users", H(4));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/users", params, &n), H(1));
    assert_int_equal(n, 0);
    assert_ptr_equal(match(r, GW_METHOD_GET, "/users/me", params, &n), H(2));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/users/me/settings", params, &n), H(3));
    assert_ptr_equal(match(r, GW_METHOD_POST, "/users", params, &n), H(4));
    assert_null(match(r, GW_METHOD_GET, "/users/you", params, &n));
    assert_null(match(r, GW_METHOD_GET, "/user", params, &n));
    assert_null(match(r, GW_METHOD_GET, "/usersx", params, &n));
    assert_null(match(r, GW_METHOD_GET, "/Users", params, &n)); /* case-sensitive */
    assert_null(match(r, GW_METHOD_GET, "/users/me/settings/x", params, &n));
    assert_null(match(r, GW_METHOD_PUT, "/users", params, &n));
    assert_null(match(r, GW_METHOD_GET, "/", params, &n));
    assert_int_equal(n, 0);
}

/* Many static siblings inserted out of order, some prefixes of others, all found. */
static void test_static_siblings_sorted(void **state)
{
    gw_router *r = *state;
    static const char *const labels[] = {"m", "a", "z", "b", "ab", "a b", "aa", "abc", "A",
                                         "0", "~", "a%20b", "ba", "mm", "m-m", "zz"};
    size_t count = sizeof(labels) / sizeof(labels[0]);
    char pattern[32];
    for (size_t i = 0; i < count; i++) {
        snprintf(pattern, sizeof(pattern), "/%s", labels[i]);
        add_ok(r, GW_METHOD_GET, pattern, H(i + 1));
    }
    for (size_t i = 0; i < count; i++) {
        snprintf(pattern, sizeof(pattern), "/%s", labels[i]);
        assert_ptr_equal(match(r, GW_METHOD_GET, pattern, NULL, NULL), H(i + 1));
    }
    assert_null(match(r, GW_METHOD_GET, "/abcd", NULL, NULL));
    assert_null(match(r, GW_METHOD_GET, "/c", NULL, NULL));
    assert_null(match(r, GW_METHOD_GET, "/a%2", NULL, NULL));
}

static void test_root_route(void **state)
{
    gw_router *r = *state;
    int n = -1;
    add_ok(r, GW_METHOD_GET, "/", H(1));
    add_ok(r, GW_METHOD_GET, "/a", H(2));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/", NULL, &n), H(1));
    assert_int_equal(n, 0);
    assert_ptr_equal(match(r, GW_METHOD_GET, "", NULL, NULL), H(1));
    assert_ptr_equal(match(r, GW_METHOD_GET, "//", NULL, NULL), H(1));
    assert_ptr_equal(gw_router_match(r, GW_METHOD_GET, NULL, 0, NULL, NULL, NULL), H(1));
    assert_null(gw_router_match(r, GW_METHOD_GET, NULL, 5, NULL, NULL, NULL));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a", NULL, NULL), H(2));
    assert_null(match(r, GW_METHOD_POST, "/", NULL, NULL));
    /* The root written as "" is the same route. */
    add_fails(r, GW_METHOD_GET, "", -EEXIST, "Route '' duplicates '/' for GET");
    add_ok(r, GW_METHOD_POST, "", H(3));
    assert_ptr_equal(match(r, GW_METHOD_POST, "/", NULL, NULL), H(3));
}

static void test_trailing_slash_normalised(void **state)
{
    gw_router *r = *state;
    add_ok(r, GW_METHOD_GET, "/users/", H(1));
    add_ok(r, GW_METHOD_GET, "items", H(2));
    add_ok(r, GW_METHOD_GET, "/a/b/", H(3));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/users", NULL, NULL), H(1));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/users/", NULL, NULL), H(1));
    assert_ptr_equal(match(r, GW_METHOD_GET, "users", NULL, NULL), H(1));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/items", NULL, NULL), H(2));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/items/", NULL, NULL), H(2));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a/b", NULL, NULL), H(3));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a/b/", NULL, NULL), H(3));
    assert_null(match(r, GW_METHOD_GET, "/a", NULL, NULL));
    add_fails(r, GW_METHOD_GET, "/users", -EEXIST, "Route '/users' duplicates '/users/' for GET");
    add_fails(r, GW_METHOD_GET, "users", -EEXIST, "Route 'users' duplicates '/users/' for GET");
    add_fails(r, GW_METHOD_GET, "/items/", -EEXIST, "Route '/items/' duplicates 'items' for GET");
}

static void test_params(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    add_ok(r, GW_METHOD_GET, "/users/:id", H(1));
    add_ok(r, GW_METHOD_GET, "/users/:id/posts/:post", H(2));
    add_ok(r, GW_METHOD_GET, "/:lang/docs", H(3));

    const char *path = "/users/42";
    assert_ptr_equal(match(r, GW_METHOD_GET, path, params, &n), H(1));
    assert_int_equal(n, 1);
    assert_param(&params[0], "id", "42");
    assert_ptr_equal(params[0].value, path + 7);

    path = "/users/42/posts/hello-world";
    assert_ptr_equal(match(r, GW_METHOD_GET, path, params, &n), H(2));
    assert_int_equal(n, 2);
    assert_param(&params[0], "id", "42");
    assert_param(&params[1], "post", "hello-world");
    assert_ptr_equal(params[1].value, path + 16);

    assert_ptr_equal(match(r, GW_METHOD_GET, "/en/docs/", params, &n), H(3));
    assert_int_equal(n, 1);
    assert_param(&params[0], "lang", "en");

    assert_null(match(r, GW_METHOD_GET, "/users", params, &n));
    assert_int_equal(n, 0);
    assert_null(match(r, GW_METHOD_GET, "/users/42/posts", params, &n));
    assert_null(match(r, GW_METHOD_GET, "/users/42/x/y", params, &n));
    assert_null(match(r, GW_METHOD_GET, "/en/doc", params, &n));
    assert_int_equal(n, 0);
}

/* params points into the path, never into a copy; names survive the caller's pattern. */
static void test_params_point_into_path(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = 0;
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "/a/:first/b/:second/*rest");
    add_ok(r, GW_METHOD_GET, pattern, H(1));
    memset(pattern, '!', sizeof(pattern)); /* the router keeps its own copy */

    char path[] = "/a/one/b/two/x/y/z";
    assert_ptr_equal(gw_router_match(r, GW_METHOD_GET, path, strlen(path), params, &n, NULL),
                     H(1));
    assert_int_equal(n, 3);
    assert_param(&params[0], "first", "one");
    assert_param(&params[1], "second", "two");
    assert_param(&params[2], "rest", "x/y/z");
    assert_ptr_equal(params[0].value, path + 3);
    assert_ptr_equal(params[1].value, path + 9);
    assert_ptr_equal(params[2].value, path + 13);
    assert_params_in(params, n, path, strlen(path));
    /* Changing the buffer changes what the params see: nothing was copied. */
    path[3] = 'O';
    assert_memory_equal(params[0].value, "One", 3);
}

static void test_catchall(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    add_ok(r, GW_METHOD_GET, "/static/*path", H(1));

    const char *path = "/static/css/site/main.css";
    assert_ptr_equal(match(r, GW_METHOD_GET, path, params, &n), H(1));
    assert_int_equal(n, 1);
    assert_param(&params[0], "path", "css/site/main.css");
    assert_ptr_equal(params[0].value, path + 8);

    assert_ptr_equal(match(r, GW_METHOD_GET, "/static/a", params, &n), H(1));
    assert_param(&params[0], "path", "a");
    /* A trailing slash is not part of the value. */
    assert_ptr_equal(match(r, GW_METHOD_GET, "/static/a/b/", params, &n), H(1));
    assert_param(&params[0], "path", "a/b");
    /* The rest may be empty; the value then points at the end of the path. */
    path = "/static";
    assert_ptr_equal(match(r, GW_METHOD_GET, path, params, &n), H(1));
    assert_int_equal(n, 1);
    assert_param(&params[0], "path", "");
    assert_ptr_equal(params[0].value, path + 7);
    path = "/static/";
    assert_ptr_equal(match(r, GW_METHOD_GET, path, params, &n), H(1));
    assert_param(&params[0], "path", "");
    assert_ptr_equal(params[0].value, path + 8);

    assert_null(match(r, GW_METHOD_GET, "/staticx/a", params, &n));
    assert_null(match(r, GW_METHOD_GET, "/", params, &n));
}

static void test_catchall_at_root(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    add_ok(r, GW_METHOD_GET, "/*any", H(1));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/", params, &n), H(1));
    assert_int_equal(n, 1);
    assert_param(&params[0], "any", "");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a/b/c", params, &n), H(1));
    assert_param(&params[0], "any", "a/b/c");
    /* A root route beats the catch-all's empty rest. */
    add_ok(r, GW_METHOD_GET, "/", H(2));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/", params, &n), H(2));
    assert_int_equal(n, 0);
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a", params, &n), H(1));
}

static void test_precedence(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    /* Added in the reverse of precedence order: the order of adding must not matter. */
    add_ok(r, GW_METHOD_GET, "/a/*rest", H(3));
    add_ok(r, GW_METHOD_GET, "/a/:x", H(2));
    add_ok(r, GW_METHOD_GET, "/a/b", H(1));

    assert_ptr_equal(match(r, GW_METHOD_GET, "/a/b", params, &n), H(1));
    assert_int_equal(n, 0);
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a/c", params, &n), H(2));
    assert_int_equal(n, 1);
    assert_param(&params[0], "x", "c");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a/b/c", params, &n), H(3));
    assert_int_equal(n, 1);
    assert_param(&params[0], "rest", "b/c");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a/c/d", params, &n), H(3));
    assert_param(&params[0], "rest", "c/d");
    /* Nothing left: the catch-all matches empty, unless the route "/a" exists. */
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a", params, &n), H(3));
    assert_param(&params[0], "rest", "");
    add_ok(r, GW_METHOD_GET, "/a", H(4));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a", params, &n), H(4));
    assert_int_equal(n, 0);
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a/", params, &n), H(4));
}

static void test_backtracking(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    /* The case: "/a/b" exists without a child "c". */
    add_ok(r, GW_METHOD_GET, "/a/b", H(1));
    add_ok(r, GW_METHOD_GET, "/a/:x/c", H(2));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a/b/c", params, &n), H(2));
    assert_int_equal(n, 1);
    assert_param(&params[0], "x", "b");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a/b", params, &n), H(1));
    assert_int_equal(n, 0);
    assert_null(match(r, GW_METHOD_GET, "/a/b/d", params, &n));
    assert_int_equal(n, 0);

    /* From a parameter branch back to a sibling parameter one level up: only the
     * parameters of the route that matched are reported. */
    add_ok(r, GW_METHOD_GET, "/k/:b/y", H(3));
    add_ok(r, GW_METHOD_GET, "/:first/:second/x", H(4));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/k/q/x", params, &n), H(4));
    assert_int_equal(n, 2);
    assert_param(&params[0], "first", "k");
    assert_param(&params[1], "second", "q");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/k/q/y", params, &n), H(3));
    assert_int_equal(n, 1);
    assert_param(&params[0], "b", "q");

    /* Two levels of static and parameter dead ends, then a catch-all near the root. */
    add_ok(r, GW_METHOD_GET, "/p/s/t/u", H(5));
    add_ok(r, GW_METHOD_GET, "/p/:id/t/v", H(6));
    add_ok(r, GW_METHOD_GET, "/p/*rest", H(7));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/p/s/t/u", params, &n), H(5));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/p/s/t/v", params, &n), H(6));
    assert_int_equal(n, 1);
    assert_param(&params[0], "id", "s");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/p/s/t/w", params, &n), H(7));
    assert_int_equal(n, 1);
    assert_param(&params[0], "rest", "s/t/w");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/p/s/t/u/more", params, &n), H(7));
    assert_param(&params[0], "rest", "s/t/u/more");
}

/* ---- 405 ------------------------------------------------------------------------------- */

static void test_allowed_bitmask(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    unsigned allowed = 0xdead;
    add_ok(r, GW_METHOD_GET, "/a", H(1));
    add_ok(r, GW_METHOD_POST, "/a", H(2));
    add_ok(r, GW_METHOD_WS, "/a", H(3));
    add_ok(r, GW_METHOD_PUT, "/b/:x", H(4));
    add_ok(r, GW_METHOD_DELETE, "/*all", H(5));
    add_ok(r, GW_METHOD_WS, "/only-ws", H(6));

    /* A hit: allowed is 0. */
    assert_ptr_equal(gw_router_match(r, GW_METHOD_GET, "/a", 2, params, &n, &allowed), H(1));
    assert_int_equal(allowed, 0);
    /* A miss for this method: the others that match, never WS. */
    assert_null(gw_router_match(r, GW_METHOD_PATCH, "/a", 2, params, &n, &allowed));
    assert_int_equal(n, 0);
    assert_int_equal(allowed, BIT(GW_METHOD_GET) | BIT(GW_METHOD_POST) | BIT(GW_METHOD_DELETE));
    assert_null(gw_router_match(r, GW_METHOD_GET, "/b/1", 4, params, &n, &allowed));
    assert_int_equal(allowed, BIT(GW_METHOD_PUT) | BIT(GW_METHOD_DELETE));
    assert_null(gw_router_match(r, GW_METHOD_WS, "/b/1", 4, params, &n, &allowed));
    assert_int_equal(allowed, BIT(GW_METHOD_PUT) | BIT(GW_METHOD_DELETE));
    /* Only a WebSocket route there: a plain GET is a 404 apart from the catch-all. */
    assert_null(gw_router_match(r, GW_METHOD_GET, "/only-ws", 8, params, &n, &allowed));
    assert_int_equal(allowed, BIT(GW_METHOD_DELETE));
    /* An unknown method (-1) or one out of range never matches but gets the mask. */
    assert_null(gw_router_match(r, -1, "/a", 2, params, &n, &allowed));
    assert_int_equal(allowed, BIT(GW_METHOD_GET) | BIT(GW_METHOD_POST) | BIT(GW_METHOD_DELETE));
    assert_null(gw_router_match(r, 99, "/b/2", 4, params, &n, &allowed));
    assert_int_equal(allowed, BIT(GW_METHOD_PUT) | BIT(GW_METHOD_DELETE));
    /* DELETE's catch-all matches everything, so take it away for a real 404. */
    gw_router *r2 = gw_router_new();
    assert_non_null(r2);
    add_ok(r2, GW_METHOD_GET, "/a", H(1));
    assert_null(gw_router_match(r2, GW_METHOD_GET, "/zzz", 4, params, &n, &allowed));
    assert_int_equal(allowed, 0);
    assert_null(gw_router_match(r2, GW_METHOD_POST, "/a/", 3, NULL, NULL, &allowed));
    assert_int_equal(allowed, BIT(GW_METHOD_GET));
    gw_router_free(r2);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void test_malformed_patterns(void **state)
{
    gw_router *r = *state;
    static const struct {
        const char *pattern, *message;
    } cases[] = {
        {"/a//b", "Malformed route pattern '/a//b': empty segment"},
        {"//", "Malformed route pattern '//': empty segment"},
        {"///", "Malformed route pattern '///': empty segment"},
        {"//a", "Malformed route pattern '//a': empty segment"},
        {"/a//", "Malformed route pattern '/a//': empty segment"},
        {"a//b/", "Malformed route pattern 'a//b/': empty segment"},
        {"/a/:", "Malformed route pattern '/a/:': empty parameter name"},
        {"/a/:/b", "Malformed route pattern '/a/:/b': empty parameter name"},
        {"/:", "Malformed route pattern '/:': empty parameter name"},
        {"/a/*", "Malformed route pattern '/a/*': empty catch-all name"},
        {"/*/", "Malformed route pattern '/*/': empty catch-all name"},
        {"/a/*rest/b", "Malformed route pattern '/a/*rest/b': catch-all '*rest' is not the "
                       "last segment"},
        {"/*a/*b", "Malformed route pattern '/*a/*b': catch-all '*a' is not the last segment"},
        {"/a/b:c", "Malformed route pattern '/a/b:c': ':' inside segment 'b:c'"},
        {"/a/b:", "Malformed route pattern '/a/b:': ':' inside segment 'b:'"},
        {"/a/:id:x", "Malformed route pattern '/a/:id:x': ':' inside segment ':id:x'"},
        {"/a/::id", "Malformed route pattern '/a/::id': ':' inside segment '::id'"},
        {"/a/b*", "Malformed route pattern '/a/b*': '*' inside segment 'b*'"},
        {"/a/:i*d", "Malformed route pattern '/a/:i*d': '*' inside segment ':i*d'"},
        {"/*a*", "Malformed route pattern '/*a*': '*' inside segment '*a*'"},
        {"/*a:b", "Malformed route pattern '/*a:b': ':' inside segment '*a:b'"},
        {"/a/:id/b/:id", "Malformed route pattern '/a/:id/b/:id': parameter 'id' repeated"},
        {"/:id/*id", "Malformed route pattern '/:id/*id': parameter 'id' repeated"},
        {"/a\nb", "Malformed route pattern '/a\\x0ab': byte 0x0a at offset 2 is not printable "
                  "ASCII"},
        {"/a\tb", "Malformed route pattern '/a\\x09b': byte 0x09 at offset 2 is not printable "
                  "ASCII"},
        {"/caf\xc3\xa9", "Malformed route pattern '/caf\\xc3\\xa9': byte 0xc3 at offset 4 is "
                         "not printable ASCII"},
        {"/a\\\x7f", "Malformed route pattern '/a\\x5c\\x7f': byte 0x7f at offset 3 is not "
                     "printable ASCII"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int m = 0; m < GW_METHOD_COUNT; m += GW_METHOD_WS) /* GET and WS */
            add_fails(r, m, cases[i].pattern, -EINVAL, cases[i].message);
    }
    assert_int_equal(gw_router_count(r, -1), 0);
    /* The same patterns without the fault are fine. */
    add_ok(r, GW_METHOD_GET, "/a/b", H(1));
    add_ok(r, GW_METHOD_GET, "/a/:id/b/:id2", H(2));
    add_ok(r, GW_METHOD_GET, "/a/*rest", H(3));
    add_ok(r, GW_METHOD_GET, "/a b/100%/~x", H(4));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a b/100%/~x", NULL, NULL), H(4));
}

static void test_too_many_params(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    char pattern[256], path[256], name[8], value[8];
    size_t pl = 0, ql = 0;
    for (int i = 0; i < GW_ROUTER_MAX_PARAMS; i++) {
        pl += (size_t)snprintf(pattern + pl, sizeof(pattern) - pl, "/:p%d", i);
        ql += (size_t)snprintf(path + ql, sizeof(path) - ql, "/v%d", i);
    }
    add_ok(r, GW_METHOD_GET, pattern, H(1));
    assert_ptr_equal(match(r, GW_METHOD_GET, path, params, &n), H(1));
    assert_int_equal(n, GW_ROUTER_MAX_PARAMS);
    for (int i = 0; i < GW_ROUTER_MAX_PARAMS; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        assert_param(&params[i], name, value);
    }

    /* Fifteen parameters and a catch-all make sixteen: fine. */
    add_ok(r, GW_METHOD_POST,
           "/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j/:k/:l/:m/:n/:o/*rest", H(2));
    assert_ptr_equal(match(r, GW_METHOD_POST, "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/x/y",
                           params, &n), H(2));
    assert_int_equal(n, 16);
    assert_param(&params[15], "rest", "x/y");

    char want[512];
    snprintf(pattern + pl, sizeof(pattern) - pl, "/:p16");
    snprintf(want, sizeof(want), "Malformed route pattern '%s': more than 16 parameters",
             pattern);
    add_fails(r, GW_METHOD_PUT, pattern, -EINVAL, want);
    snprintf(pattern + pl, sizeof(pattern) - pl, "/*p16");
    snprintf(want, sizeof(want), "Malformed route pattern '%s': more than 16 parameters",
             pattern);
    add_fails(r, GW_METHOD_PUT, pattern, -EINVAL, want);
}

static void test_pattern_length(void **state)
{
    gw_router *r = *state;
    /* Exactly GW_ROUTER_MAX_PATTERN bytes: "/a/a/.../a", 1024 segments deep. */
    char *pattern = malloc(GW_ROUTER_MAX_PATTERN + 2);
    assert_non_null(pattern);
    for (size_t i = 0; i < GW_ROUTER_MAX_PATTERN; i++)
        pattern[i] = i % 2 == 0 ? '/' : 'a';
    pattern[GW_ROUTER_MAX_PATTERN] = '\0';
    add_ok(r, GW_METHOD_GET, pattern, H(1));
    assert_ptr_equal(match(r, GW_METHOD_GET, pattern, NULL, NULL), H(1));
    pattern[GW_ROUTER_MAX_PATTERN - 2] = '\0'; /* one segment short */
    assert_null(match(r, GW_METHOD_GET, pattern, NULL, NULL));
    pattern[GW_ROUTER_MAX_PATTERN - 2] = '/';

    /* One byte more is malformed; the message shows the start, cut short. */
    pattern[GW_ROUTER_MAX_PATTERN] = 'b';
    pattern[GW_ROUTER_MAX_PATTERN + 1] = '\0';
    char want[256];
    snprintf(want, sizeof(want),
             "Malformed route pattern '%.68s...': longer than 2048 bytes", pattern);
    add_fails(r, GW_METHOD_GET, pattern, -EINVAL, want);
    free(pattern);

    /* A huge pattern with a non-printable byte early: too long wins, and is escaped. */
    size_t big = 100000;
    pattern = malloc(big + 1);
    assert_non_null(pattern);
    memset(pattern, 'x', big);
    pattern[0] = '/';
    pattern[2] = '\n';
    pattern[big] = '\0';
    snprintf(want, sizeof(want), "Malformed route pattern '/x\\x0a%.62s...': longer than 2048 "
             "bytes", pattern + 3);
    add_fails(r, GW_METHOD_GET, pattern, -EINVAL, want);
    free(pattern);
    assert_int_equal(gw_router_count(r, -1), 1);
}

static void test_invalid_arguments(void **state)
{
    gw_router *r = *state;
    char err[128];
    add_fails(r, GW_METHOD_GET, NULL, -EINVAL, "Route pattern is NULL");
    add_fails(r, GW_METHOD_COUNT, "/a", -EINVAL, "Route '/a': invalid method 10");
    add_fails(r, -1, "/a", -EINVAL, "Route '/a': invalid method -1");
    assert_int_equal(gw_router_add(r, GW_METHOD_GET, "/a", NULL, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "Route '/a' for GET: handler is NULL");
    assert_int_equal(gw_router_add(NULL, GW_METHOD_GET, "/a", H(1), err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "Router is NULL");
    assert_int_equal(gw_router_count(r, -1), 0);
}

static void test_error_buffer(void **state)
{
    gw_router *r = *state;
    char err[16];
    /* Truncated, always terminated. */
    memset(err, 'x', sizeof(err));
    assert_int_equal(gw_router_add(r, GW_METHOD_GET, "/a//b", H(1), err, 10), -EINVAL);
    assert_string_equal(err, "Malformed");
    /* err may be NULL, errlen may be 0 (then err is not touched). */
    assert_int_equal(gw_router_add(r, GW_METHOD_GET, "/a//b", H(1), NULL, 0), -EINVAL);
    memcpy(err, "untouched", 10);
    assert_int_equal(gw_router_add(r, GW_METHOD_GET, "/a//b", H(1), err, 0), -EINVAL);
    assert_string_equal(err, "untouched");
    assert_int_equal(gw_router_add(r, GW_METHOD_GET, "/a", H(1), NULL, 0), 0);
    assert_int_equal(gw_router_add(r, GW_METHOD_GET, "/a", H(1), NULL, 0), -EEXIST);
    /* On success err is set to "". */
    memcpy(err, "stale", 6);
    assert_int_equal(gw_router_add(r, GW_METHOD_GET, "/b", H(2), err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

static void test_duplicates(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    add_ok(r, GW_METHOD_GET, "/users", H(1));
    add_ok(r, GW_METHOD_GET, "/u/:id", H(2));
    add_ok(r, GW_METHOD_GET, "/f/*rest", H(3));
    add_ok(r, GW_METHOD_GET, "/", H(4));
    add_fails(r, GW_METHOD_GET, "/users", -EEXIST, "Route '/users' already exists for GET");
    add_fails(r, GW_METHOD_GET, "/users/", -EEXIST, "Route '/users/' duplicates '/users' for GET");
    add_fails(r, GW_METHOD_GET, "users", -EEXIST, "Route 'users' duplicates '/users' for GET");
    add_fails(r, GW_METHOD_GET, "/u/:id", -EEXIST, "Route '/u/:id' already exists for GET");
    add_fails(r, GW_METHOD_GET, "/u/:id/", -EEXIST, "Route '/u/:id/' duplicates '/u/:id' for GET");
    add_fails(r, GW_METHOD_GET, "/f/*rest", -EEXIST, "Route '/f/*rest' already exists for GET");
    add_fails(r, GW_METHOD_GET, "/", -EEXIST, "Route '/' already exists for GET");
    /* Other methods are other tables. */
    add_ok(r, GW_METHOD_POST, "/users", H(5));
    add_ok(r, GW_METHOD_WS, "/users", H(6));
    add_fails(r, GW_METHOD_WS, "/users/", -EEXIST, "Route '/users/' duplicates '/users' for WS");
    add_fails(r, GW_METHOD_POST, "/users", -EEXIST, "Route '/users' already exists for POST");

    /* Unchanged: the first handlers still answer. */
    assert_int_equal(gw_router_count(r, GW_METHOD_GET), 4);
    assert_ptr_equal(match(r, GW_METHOD_GET, "/users", params, &n), H(1));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/u/7", params, &n), H(2));
    assert_param(&params[0], "id", "7");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/f/x/y", params, &n), H(3));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/", params, &n), H(4));
}

static void test_conflicts(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    add_ok(r, GW_METHOD_GET, "/u/:id", H(1));
    add_fails(r, GW_METHOD_GET, "/u/:name", -EEXIST,
              "Route '/u/:name' conflicts with '/u/:id' for GET");
    /* The conflict is found before anything of the new route is built. */
    add_fails(r, GW_METHOD_GET, "/u/:name/posts/:post", -EEXIST,
              "Route '/u/:name/posts/:post' conflicts with '/u/:id' for GET");
    assert_null(match(r, GW_METHOD_GET, "/u/1/posts/2", params, &n));

    /* The message names the route that introduced the other name. */
    add_ok(r, GW_METHOD_GET, "/g/:gid/members", H(2));
    add_ok(r, GW_METHOD_GET, "/g/:gid", H(3));
    add_fails(r, GW_METHOD_GET, "/g/:group", -EEXIST,
              "Route '/g/:group' conflicts with '/g/:gid/members' for GET");

    /* Catch-alls of different names at one place conflict too. */
    add_ok(r, GW_METHOD_GET, "/f/*path", H(4));
    add_fails(r, GW_METHOD_GET, "/f/*rest", -EEXIST,
              "Route '/f/*rest' conflicts with '/f/*path' for GET");

    /* A static, a parameter and a catch-all side by side do not conflict, nor does the same
     * name in another method, nor a parameter and a catch-all of the same name. */
    add_ok(r, GW_METHOD_GET, "/u/me", H(5));
    add_ok(r, GW_METHOD_GET, "/u/*id", H(6));
    add_ok(r, GW_METHOD_POST, "/u/:name", H(7));
    add_ok(r, GW_METHOD_GET, "/f/:file", H(8));

    assert_int_equal(gw_router_count(r, -1), 8);
    assert_ptr_equal(match(r, GW_METHOD_GET, "/u/42", params, &n), H(1));
    assert_param(&params[0], "id", "42");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/u/me", params, &n), H(5));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/u/a/b", params, &n), H(6));
    assert_param(&params[0], "id", "a/b");
    assert_ptr_equal(match(r, GW_METHOD_POST, "/u/42", params, &n), H(7));
    assert_param(&params[0], "name", "42");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/g/1/members", params, &n), H(2));
    assert_param(&params[0], "gid", "1");
}

/* ---- adversarial paths ----------------------------------------------------------------- */

static void test_empty_segments(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    add_ok(r, GW_METHOD_GET, "/u/:id", H(1));
    add_ok(r, GW_METHOD_GET, "/a/b", H(2));
    add_ok(r, GW_METHOD_GET, "/f/*rest", H(3));

    /* Repeated slashes are one separator. */
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a//b", params, &n), H(2));
    assert_ptr_equal(match(r, GW_METHOD_GET, "//a/b//", params, &n), H(2));
    assert_ptr_equal(match(r, GW_METHOD_GET, "///a///b///", params, &n), H(2));
    /* A parameter never matches an empty segment. */
    assert_null(match(r, GW_METHOD_GET, "/u//", params, &n));
    assert_int_equal(n, 0);
    assert_null(match(r, GW_METHOD_GET, "/u/", params, &n));
    const char *path = "/u//5";
    assert_ptr_equal(match(r, GW_METHOD_GET, path, params, &n), H(1));
    assert_param(&params[0], "id", "5");
    assert_ptr_equal(params[0].value, path + 4);
    assert_ptr_equal(match(r, GW_METHOD_GET, "//u///5//", params, &n), H(1));
    assert_param(&params[0], "id", "5");
    /* A catch-all skips the slashes in front and behind, keeps the inner ones. */
    path = "/f//a//b//";
    assert_ptr_equal(match(r, GW_METHOD_GET, path, params, &n), H(3));
    assert_param(&params[0], "rest", "a//b");
    assert_ptr_equal(params[0].value, path + 4);
    path = "/f///";
    assert_ptr_equal(match(r, GW_METHOD_GET, path, params, &n), H(3));
    assert_param(&params[0], "rest", "");
    assert_ptr_equal(params[0].value, path + 5);
}

static void test_percent_space_and_binary_bytes(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    add_ok(r, GW_METHOD_GET, "/files/:name", H(1));
    add_ok(r, GW_METHOD_GET, "/a%20b", H(2));
    add_ok(r, GW_METHOD_GET, "/a b", H(3));
    add_ok(r, GW_METHOD_GET, "/100%", H(4));
    add_ok(r, GW_METHOD_GET, "/a", H(5));

    /* Decoded paths: '%' and spaces are plain bytes. */
    assert_ptr_equal(match(r, GW_METHOD_GET, "/files/100% done", params, &n), H(1));
    assert_param(&params[0], "name", "100% done");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/files/%2F%00", params, &n), H(1));
    assert_param(&params[0], "name", "%2F%00");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a%20b", params, &n), H(2));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/a b", params, &n), H(3));
    assert_ptr_equal(match(r, GW_METHOD_GET, "/100%", params, &n), H(4));
    assert_null(match(r, GW_METHOD_GET, "/100", params, &n));
    assert_null(match(r, GW_METHOD_GET, "/%", params, &n));

    /* Non-ASCII bytes. */
    const char *path = "/files/caf\xc3\xa9";
    assert_ptr_equal(match(r, GW_METHOD_GET, path, params, &n), H(1));
    assert_param(&params[0], "name", "caf\xc3\xa9");
    assert_ptr_equal(match(r, GW_METHOD_GET, "/files/\xff\xfe\x80\x01", params, &n), H(1));
    assert_param(&params[0], "name", "\xff\xfe\x80\x01");
    assert_null(match(r, GW_METHOD_GET, "/\xff", params, &n));

    /* Bytes are compared by length, so even a NUL is just a byte. */
    static const char nul_path[] = "/files/a\0b";
    assert_ptr_equal(gw_router_match(r, GW_METHOD_GET, nul_path, sizeof(nul_path) - 1, params,
                                     &n, NULL), H(1));
    assert_int_equal(params[0].value_len, 3);
    assert_memory_equal(params[0].value, "a\0b", 3);
    assert_null(gw_router_match(r, GW_METHOD_GET, "/a\0", 3, params, &n, NULL));
    /* A path not starting with '/' still matches by its segments. */
    assert_ptr_equal(match(r, GW_METHOD_GET, "a", params, &n), H(5));
    /* Only path_len bytes are read: "/ab" cut to 2 is "/a". */
    assert_ptr_equal(gw_router_match(r, GW_METHOD_GET, "/ab", 2, params, &n, NULL), H(5));
}

static void test_very_long_paths(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    add_ok(r, GW_METHOD_GET, "/f/:name", H(1));
    add_ok(r, GW_METHOD_GET, "/a/a/:x", H(2));
    add_ok(r, GW_METHOD_POST, "/*rest", H(3));
    add_ok(r, GW_METHOD_PUT, "/a/*rest", H(4));

    const size_t len = 64 * 1024;
    char *path = malloc(len);
    assert_non_null(path);

    /* One 64 KiB segment after "/f/". */
    memcpy(path, "/f/", 3);
    memset(path + 3, 'x', len - 3);
    assert_ptr_equal(gw_router_match(r, GW_METHOD_GET, path, len, params, &n, NULL), H(1));
    assert_int_equal(n, 1);
    assert_ptr_equal(params[0].value, path + 3);
    assert_int_equal(params[0].value_len, len - 3);
    assert_ptr_equal(gw_router_match(r, GW_METHOD_POST, path, len, params, &n, NULL), H(3));
    assert_int_equal(params[0].value_len, len - 1);

    /* 32,768 segments "/a/a/a...": deeper than any route, no recursion blow-up. */
    for (size_t i = 0; i < len; i++)
        path[i] = i % 2 == 0 ? '/' : 'a';
    unsigned allowed = 0;
    assert_null(gw_router_match(r, GW_METHOD_GET, path, len, params, &n, &allowed));
    assert_int_equal(allowed, BIT(GW_METHOD_POST) | BIT(GW_METHOD_PUT));
    assert_ptr_equal(gw_router_match(r, GW_METHOD_PUT, path, len, params, &n, NULL), H(4));
    assert_ptr_equal(params[0].value, path + 3);
    assert_int_equal(params[0].value_len, len - 3);
    assert_params_in(params, n, path, len);

    /* The same against a route 1024 segments deep. */
    gw_router *deep = gw_router_new();
    assert_non_null(deep);
    char *pattern = malloc(GW_ROUTER_MAX_PATTERN + 1);
    assert_non_null(pattern);
    memcpy(pattern, path, GW_ROUTER_MAX_PATTERN);
    pattern[GW_ROUTER_MAX_PATTERN] = '\0';
    add_ok(deep, GW_METHOD_GET, pattern, H(5));
    assert_null(gw_router_match(deep, GW_METHOD_GET, path, len, params, &n, NULL));
    assert_ptr_equal(gw_router_match(deep, GW_METHOD_GET, path, GW_ROUTER_MAX_PATTERN, params,
                                     &n, NULL), H(5));
    free(pattern);
    gw_router_free(deep);
    free(path);
}

static void test_ten_thousand_slashes(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    const size_t len = 10000;
    char *path = malloc(len);
    assert_non_null(path);
    memset(path, '/', len);

    add_ok(r, GW_METHOD_GET, "/:x", H(1));
    add_ok(r, GW_METHOD_POST, "/*rest", H(2));
    assert_null(gw_router_match(r, GW_METHOD_GET, path, len, params, &n, NULL));
    assert_ptr_equal(gw_router_match(r, GW_METHOD_POST, path, len, params, &n, NULL), H(2));
    assert_int_equal(n, 1);
    assert_int_equal(params[0].value_len, 0);
    assert_ptr_equal(params[0].value, path + len);
    add_ok(r, GW_METHOD_GET, "/", H(3));
    assert_ptr_equal(gw_router_match(r, GW_METHOD_GET, path, len, params, &n, NULL), H(3));
    assert_int_equal(n, 0);
    free(path);
}

/* ---- scale ----------------------------------------------------------------------------- */

static void test_thousand_routes(void **state)
{
    gw_router *r = *state;
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int n = -1;
    char buf[128];
    enum { N = 1000 };

    /* Added in a scrambled order so that sorted insertion is exercised. */
    for (int k = 0; k < N; k++) {
        int i = (k * 7919) % N;
        snprintf(buf, sizeof(buf), "/api/v%d/res%d/:id", i % 7, i);
        add_ok(r, GW_METHOD_GET, buf, H(i + 1));
        snprintf(buf, sizeof(buf), "/static/%d", i);
        add_ok(r, GW_METHOD_GET, buf, H(N + i + 1));
        snprintf(buf, sizeof(buf), "/r%d/*path", i);
        add_ok(r, GW_METHOD_POST, buf, H(2 * N + i + 1));
    }
    assert_int_equal(gw_router_count(r, GW_METHOD_GET), 2 * N);
    assert_int_equal(gw_router_count(r, GW_METHOD_POST), N);
    assert_int_equal(gw_router_count(r, -1), 3 * N);

    char want[32];
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof(buf), "/api/v%d/res%d/item-%d", i % 7, i, i);
        snprintf(want, sizeof(want), "item-%d", i);
        assert_ptr_equal(match(r, GW_METHOD_GET, buf, params, &n), H(i + 1));
        assert_int_equal(n, 1);
        assert_param(&params[0], "id", want);
        assert_params_in(params, n, buf, strlen(buf));

        snprintf(buf, sizeof(buf), "/static/%d", i);
        assert_ptr_equal(match(r, GW_METHOD_GET, buf, params, &n), H(N + i + 1));
        assert_int_equal(n, 0);

        snprintf(buf, sizeof(buf), "/r%d/a/%d/", i, i);
        snprintf(want, sizeof(want), "a/%d", i);
        assert_ptr_equal(match(r, GW_METHOD_POST, buf, params, &n), H(2 * N + i + 1));
        assert_param(&params[0], "path", want);

        /* Wrong version: no match. */
        snprintf(buf, sizeof(buf), "/api/v%d/res%d/x", (i + 1) % 7, i);
        assert_null(match(r, GW_METHOD_GET, buf, params, &n));
    }
    assert_null(match(r, GW_METHOD_GET, "/static/1000", params, &n));
    assert_null(match(r, GW_METHOD_GET, "/static/", params, &n));
    assert_null(match(r, GW_METHOD_POST, "/r1000/x", params, &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_method_names),
        T(test_empty_router),
        T(test_count),
        T(test_static_routes),
        T(test_static_siblings_sorted),
        T(test_root_route),
        T(test_trailing_slash_normalised),
        T(test_params),
        T(test_params_point_into_path),
        T(test_catchall),
        T(test_catchall_at_root),
        T(test_precedence),
        T(test_backtracking),
        T(test_allowed_bitmask),
        T(test_malformed_patterns),
        T(test_too_many_params),
        T(test_pattern_length),
        T(test_invalid_arguments),
        T(test_error_buffer),
        T(test_duplicates),
        T(test_conflicts),
        T(test_empty_segments),
        T(test_percent_space_and_binary_bytes),
        T(test_very_long_paths),
        T(test_ten_thousand_slashes),
        T(test_thousand_routes),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
