/*
 * Unit tests for gateway/httpparse.{c,h} and gateway/request.{c,h}: the HTTP/1.1 parser
 * adapter over http-parser against docs/http.md (the status every malformed input gets),
 * target and query decoding, pipelining, byte splits, chunked bodies, limits, pausing,
 * upgrades and the request pool. Every request comes from a pool and goes back to it, and
 * every test frees its pool, so ASan and valgrind stay quiet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "httpparse.h"
#include "request.h"
#include "router.h"

/* A string literal and its length (NUL bytes inside count). */
#define S(lit) (lit), (sizeof(lit) - 1)

#define MAXREQ 64

/* ---- helpers: a growing text -------------------------------------------------------- */

typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void tx_put(text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2 + 64;
        char *d = realloc(t->s, cap);
        assert_non_null(d);
        t->s = d;
        t->cap = cap;
    }
    if (n)
        memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void tx_printf(text *t, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(tmp));
    tx_put(t, tmp, (size_t)n);
}

/* Bytes in quotes, controls and non-ASCII as \xNN. */
static void tx_quoted(text *t, const char *s, size_t n)
{
    tx_put(t, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            tx_printf(t, "\\x%02x", c);
        else
            tx_put(t, (const char *)&c, 1);
    }
    tx_put(t, "\"", 1);
}

static void tx_free(text *t)
{
    free(t->s);
    memset(t, 0, sizeof(*t));
}

/* ---- helpers: checking and describing a request ------------------------------------- */

/* A string of req: inside the filled part of its buffer and NUL-terminated. */
static void check_str(const gw_request *req, uint32_t off, size_t len)
{
    assert_true((size_t)off + len < req->buf_len);
    assert_int_equal(req->buf[off + len], '\0');
}

static void check_request(const gw_request *req, int complete)
{
    assert_non_null(req->buf);
    assert_true(req->buf_len <= req->buf_cap);
    check_str(req, req->target_off, req->target_len);
    check_str(req, req->path_off, req->path_len);
    if (req->host_len)
        check_str(req, req->host_off, req->host_len);
    assert_true(req->npairs <= req->pairs_cap);
    assert_true(req->header_at + req->nheaders <= req->npairs);
    for (uint32_t i = 0; i < req->npairs; i++) {
        check_str(req, req->pairs[i].name_off, req->pairs[i].name_len);
        check_str(req, req->pairs[i].value_off, req->pairs[i].value_len);
    }
    if (complete)
        check_str(req, req->body_off, req->body_len);
}

static const char *header(const gw_request *req, const char *name)
{
    size_t len;
    const char *v = gw_request_header(req, name, strlen(name), &len);
    if (v)
        assert_int_equal(strlen(v), len); /* none of the tests sends a NUL that stays */
    return v;
}

static const char *path(const gw_request *req)
{
    return gw_request_str(req, req->path_off);
}

static const char *body(const gw_request *req)
{
    return gw_request_str(req, req->body_off);
}

static void assert_query(const gw_request *req, uint32_t i, const char *name, const char *value)
{
    assert_true(i < req->nquery);
    const gw_pair *p = &req->pairs[req->query_at + i];
    assert_int_equal(p->name_len, strlen(name));
    assert_int_equal(p->value_len, strlen(value));
    assert_string_equal(gw_request_str(req, p->name_off), name);
    assert_string_equal(gw_request_str(req, p->value_off), value);
}

static void assert_header(const gw_request *req, uint32_t i, const char *name, const char *value)
{
    assert_true(i < req->nheaders);
    const gw_pair *p = &req->pairs[req->header_at + i];
    assert_int_equal(p->name_len, strlen(name));
    assert_int_equal(p->value_len, strlen(value));
    assert_string_equal(gw_request_str(req, p->name_off), name);
    assert_string_equal(gw_request_str(req, p->value_off), value);
}

/* Everything a request carries, as one line. */
static void describe(text *t, const gw_request *req)
{
    tx_printf(t, "m=%d v=%d ka=%d ex=%d up=%d refuse=%d target=", req->method, req->version,
              req->keep_alive, req->expect_continue, req->upgrade, req->refuse);
    tx_quoted(t, req->buf + req->target_off, req->target_len);
    tx_printf(t, " path=");
    tx_quoted(t, req->buf + req->path_off, req->path_len);
    tx_printf(t, " host=");
    tx_quoted(t, req->buf + req->host_off, req->host_len);
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const gw_pair *p = &req->pairs[req->header_at + i];
        tx_printf(t, " h:");
        tx_quoted(t, req->buf + p->name_off, p->name_len);
        tx_put(t, "=", 1);
        tx_quoted(t, req->buf + p->value_off, p->value_len);
    }
    for (uint32_t i = 0; i < req->nquery; i++) {
        const gw_pair *p = &req->pairs[req->query_at + i];
        tx_printf(t, " q:");
        tx_quoted(t, req->buf + p->name_off, p->name_len);
        tx_put(t, "=", 1);
        tx_quoted(t, req->buf + p->value_off, p->value_len);
    }
    tx_printf(t, " body=");
    tx_quoted(t, req->buf + req->body_off, req->body_len);
    tx_put(t, "\n", 1);
}

/* ---- helpers: a parser with recording callbacks ------------------------------------- */

typedef struct rig {
    gw_pool pool;
    gw_hp hp;
    gw_hp_limits lim;
    gw_request *got[MAXREQ]; /* what on_request handed over, kept until teardown */
    int ngot;
    int nnew;
    int nheads;
    int head_rc[MAXREQ];  /* on_head's answer for the n-th head (0-based) */
    int req_rc[MAXREQ];   /* on_request's answer for the n-th request */
    int fail_new_at;      /* new_request returns NULL for this call (1-based); 0: never */
    size_t head_nheaders[MAXREQ];
    int head_refuse[MAXREQ];
} rig;

static gw_request *rig_new_request(void *ctx)
{
    rig *r = ctx;
    if (++r->nnew == r->fail_new_at)
        return NULL;
    return gw_pool_take(&r->pool);
}

static int rig_on_head(void *ctx, gw_request *req)
{
    rig *r = ctx;
    check_request(req, 0);
    int i = r->nheads++;
    if (i >= MAXREQ)
        return GW_HP_BODY_KEEP;
    r->head_nheaders[i] = req->nheaders;
    r->head_refuse[i] = req->refuse;
    return r->head_rc[i];
}

static int rig_on_request(void *ctx, gw_request *req)
{
    rig *r = ctx;
    check_request(req, 1);
    assert_true(r->ngot < MAXREQ);
    r->got[r->ngot] = req;
    return r->req_rc[r->ngot++];
}

static const gw_hp_callbacks RIG_CB = {rig_new_request, rig_on_head, rig_on_request};

static const gw_hp_limits DEFAULT_LIMITS = {16384, 100, 8192, 1000000};

static void rig_init(rig *r)
{
    memset(r, 0, sizeof(*r));
    r->lim = DEFAULT_LIMITS;
    gw_hp_init(&r->hp, &r->lim, &RIG_CB, r);
}

static void rig_free(rig *r)
{
    gw_hp_reset(&r->hp);
    for (int i = 0; i < r->ngot; i++)
        gw_request_release(r->got[i]);
    r->ngot = 0;
    gw_pool_free(&r->pool);
}

static int setup(void **state)
{
    rig *r = malloc(sizeof(*r));
    if (!r)
        return -1;
    rig_init(r);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    rig *r = *state;
    rig_free(r);
    free(r);
    return 0;
}

static int feed(rig *r, const char *s, size_t len, size_t *consumed)
{
    size_t dummy;
    return gw_hp_feed(&r->hp, s, len, consumed ? consumed : &dummy);
}

/* Feeds s whole and expects every byte parsed. */
static void feed_ok(rig *r, const char *s, size_t len)
{
    size_t used = 12345;
    int rc = feed(r, s, len, &used);
    if (rc != GW_HP_OK)
        fail_msg("feed returned %d (status %d, %s)", rc, r->hp.error_status,
                 r->hp.error_reason ? r->hp.error_reason : "-");
    assert_int_equal(used, len);
}

/*
 * Runs input through a fresh parser, cut into feeds: pieces of step bytes (0: one feed),
 * or, with cut <= len, two feeds cut there. A pause is resumed at once. Returns the
 * transcript: every request described, then how it ended ("OK", "ERROR 431", ...).
 */
static char *transcript(const gw_hp_limits *lim, const char *s, size_t len, size_t step,
                        size_t cut)
{
    rig *r = malloc(sizeof(*r));
    assert_non_null(r);
    rig_init(r);
    if (lim)
        r->lim = *lim;
    text t = {0};
    size_t at = 0;
    int rc = GW_HP_OK;
    while (at < len) {
        size_t n = len - at;
        if (cut <= len)
            n = at < cut ? cut - at : len - at;
        else if (step && step < n)
            n = step;
        size_t used = 0;
        rc = feed(r, s + at, n, &used);
        assert_true(used <= n);
        at += used;
        if (rc == GW_HP_PAUSED)
            gw_hp_resume(&r->hp);
        else if (rc != GW_HP_OK)
            break;
        else
            assert_int_equal(used, n);
    }
    for (int i = 0; i < r->ngot; i++)
        describe(&t, r->got[i]);
    if (rc == GW_HP_ERROR)
        tx_printf(&t, "ERROR %d\n", r->hp.error_status);
    else if (rc == GW_HP_UPGRADE)
        tx_printf(&t, "UPGRADE at %zu\n", at);
    else if (rc == GW_HP_STOPPED)
        tx_printf(&t, "STOPPED\n");
    else
        tx_printf(&t, "OK busy=%d\n", gw_hp_busy(&r->hp));
    rig_free(r);
    free(r);
    return t.s;
}

/* The transcript of input fed whole equals the one fed byte by byte, and the one of every
 * cut into two feeds. Returns the whole-feed transcript. */
static char *same_for_every_split(const gw_hp_limits *lim, const char *s, size_t len)
{
    char *whole = transcript(lim, s, len, 0, SIZE_MAX);
    char *bytes = transcript(lim, s, len, 1, SIZE_MAX);
    assert_string_equal(bytes, whole);
    free(bytes);
    for (size_t cut = 0; cut <= len; cut++) {
        char *two = transcript(lim, s, len, 0, cut);
        if (strcmp(two, whole))
            fail_msg("cut at %zu:\n%s\nwhole:\n%s", cut, two, whole);
        free(two);
    }
    return whole;
}

/* The input gets GW_HP_ERROR with status, fed whole, byte by byte or cut anywhere, and no
 * request is handed over. */
static void expect_error_lim(const gw_hp_limits *lim, const char *s, size_t len, int status)
{
    char want[32];
    snprintf(want, sizeof(want), "ERROR %d\n", status);
    char *got = same_for_every_split(lim, s, len);
    assert_string_equal(got, want);
    free(got);
}

static void expect_error(const char *s, size_t len, int status)
{
    expect_error_lim(NULL, s, len, status);
}

/* ---- percent-decoding and the request buffer ---------------------------------------- */

static void test_percent_decode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(gw_hp_percent_decode(S("a%20b+c"), out, 0), 5);
    assert_memory_equal(out, "a b+c", 5);
    assert_int_equal(gw_hp_percent_decode(S("a%20b+c"), out, 1), 5);
    assert_memory_equal(out, "a b c", 5);
    assert_int_equal(gw_hp_percent_decode(S("%41%62%7e%7E"), out, 0), 4);
    assert_memory_equal(out, "Ab~~", 4);
    assert_int_equal(gw_hp_percent_decode(S("%2f%2B"), out, 1), 2);
    assert_memory_equal(out, "/+", 2);
    assert_int_equal(gw_hp_percent_decode(S(""), out, 0), 0);
    assert_int_equal(gw_hp_percent_decode(S("%"), out, 0), -1);
    assert_int_equal(gw_hp_percent_decode(S("%2"), out, 0), -1);
    assert_int_equal(gw_hp_percent_decode(S("ab%2"), out, 0), -1);
    assert_int_equal(gw_hp_percent_decode(S("%zz"), out, 0), -1);
    assert_int_equal(gw_hp_percent_decode(S("%2g"), out, 0), -1);
    assert_int_equal(gw_hp_percent_decode(S("%00"), out, 0), -2);
    assert_int_equal(gw_hp_percent_decode(S("a\0b"), out, 0), -2);
    assert_int_equal(gw_hp_percent_decode(S("%ff%80"), out, 0), 2);
    assert_memory_equal(out, "\xff\x80", 2);
    /* In place, as the adapter may use it. */
    char in[] = "x%41%42y";
    assert_int_equal(gw_hp_percent_decode(in, 8, in, 0), 4);
    assert_memory_equal(in, "xABy", 4);
}

static void test_request_buffer_and_pool(void **state)
{
    (void)state;
    gw_pool pool = {0};
    gw_request *a = gw_pool_take(&pool);
    assert_non_null(a);
    assert_ptr_equal(a->pool, &pool);
    assert_int_equal(gw_request_append(a, "abc", 3), 0);
    assert_int_equal(gw_request_append(a, "", 0), 4);
    assert_int_equal(a->buf_len, 5);
    assert_string_equal(a->buf, "abc");
    assert_int_equal(gw_request_add_pair(a, "name", 4, "value", 5), 0);
    a->nheaders = 1;
    size_t len = 0;
    assert_string_equal(gw_request_header(a, "name", 4, &len), "value");
    assert_int_equal(len, 5);
    assert_null(gw_request_header(a, "nam", 3, &len));
    /* Growing keeps what is there. */
    assert_int_equal(gw_request_reserve(a, 100000), 0);
    assert_true(a->buf_cap >= a->buf_len + 100000);
    assert_string_equal(a->buf, "abc");
    /* A string of the buffer itself can be appended, also when that moves the buffer. */
    size_t cap0 = a->buf_cap;
    while (a->buf_len + 4 <= a->buf_cap)
        assert_true(gw_request_append(a, "abc", 3) >= 0);
    int64_t self = gw_request_append(a, a->buf, 3); /* does not fit: the buffer grows */
    assert_true(self > 0);
    assert_true(a->buf_cap > cap0);
    assert_string_equal(a->buf + self, "abc");
    /* A size no buffer can have is refused, not wrapped. */
    assert_int_not_equal(gw_request_reserve(a, SIZE_MAX), 0);
    assert_int_not_equal(gw_request_reserve(a, SIZE_MAX - a->buf_len + 1), 0);
    assert_int_not_equal(gw_request_reserve(a, (size_t)1 << 63), 0);
    assert_int_not_equal(gw_request_reserve(a, (size_t)UINT32_MAX + 1), 0);
    gw_request_release(a); /* a large buffer is not kept */

    gw_request *b = gw_pool_take(&pool);
    assert_ptr_equal(b, a); /* recycled */
    assert_int_equal(b->buf_len, 0);
    assert_int_equal(b->npairs, 0);
    assert_int_equal(b->nheaders, 0);
    assert_ptr_equal(b->pool, &pool);
    assert_int_equal(gw_request_append(b, "x", 1), 0);
    size_t cap = b->buf_cap;
    char *buf = b->buf;
    gw_request_release(b);
    gw_request *c = gw_pool_take(&pool);
    assert_ptr_equal(c, b);
    assert_ptr_equal(c->buf, buf); /* a small buffer is kept */
    assert_int_equal(c->buf_cap, cap);
    gw_request *d = gw_pool_take(&pool);
    assert_ptr_not_equal(d, c);
    gw_request_release(c);
    gw_request_release(d);
    gw_request_release(NULL);
    gw_pool_free(&pool);
    gw_pool_free(&pool); /* twice is fine */
}

/* ---- well-formed requests ----------------------------------------------------------- */

static void test_simple_get(void **state)
{
    rig *r = *state;
    feed_ok(r, S("GET /hello HTTP/1.1\r\nHost: example.com\r\n\r\n"));
    assert_int_equal(r->ngot, 1);
    assert_int_equal(r->nheads, 1);
    gw_request *req = r->got[0];
    assert_int_equal(req->method, GW_METHOD_GET);
    assert_int_equal(req->version, 11);
    assert_int_equal(req->keep_alive, 1);
    assert_int_equal(req->expect_continue, 0);
    assert_int_equal(req->upgrade, 0);
    assert_int_equal(req->refuse, 0);
    assert_string_equal(gw_request_str(req, req->target_off), "/hello");
    assert_int_equal(req->target_len, 6);
    assert_string_equal(path(req), "/hello");
    assert_int_equal(req->path_len, 6);
    assert_int_equal(req->host_len, 11);
    assert_string_equal(gw_request_str(req, req->host_off), "example.com");
    assert_int_equal(req->nheaders, 1);
    assert_header(req, 0, "host", "example.com");
    assert_int_equal(req->nquery, 0);
    assert_int_equal(req->body_len, 0);
    assert_string_equal(body(req), "");
    assert_false(gw_hp_busy(&r->hp));
}

static void test_versions_and_keep_alive(void **state)
{
    rig *r = *state;
    feed_ok(r, S("GET / HTTP/1.0\r\n\r\n"
                 "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                 "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"
                 "HEAD / HTTP/1.1\r\n\r\n"
                 "OPTIONS * HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 5);
    assert_int_equal(r->got[0]->version, 10);
    assert_int_equal(r->got[0]->keep_alive, 0);
    assert_int_equal(r->got[1]->version, 10);
    assert_int_equal(r->got[1]->keep_alive, 1);
    assert_int_equal(r->got[2]->version, 11);
    assert_int_equal(r->got[2]->keep_alive, 0);
    assert_int_equal(r->got[3]->method, GW_METHOD_HEAD);
    assert_int_equal(r->got[4]->method, GW_METHOD_OPTIONS);
    assert_string_equal(path(r->got[4]), "*");
    assert_int_equal(r->got[0]->host_len, 0);
}

static void test_methods(void **state)
{
    rig *r = *state;
    feed_ok(r, S("GET / HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\n\r\nPUT / HTTP/1.1\r\n\r\n"
                 "DELETE / HTTP/1.1\r\n\r\nPATCH / HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\n\r\n"
                 "OPTIONS / HTTP/1.1\r\n\r\nTRACE / HTTP/1.1\r\n\r\n"
                 "PURGE /x HTTP/1.1\r\n\r\nMKCOL / HTTP/1.1\r\n\r\nLINK / HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 11);
    static const int want[] = {GW_METHOD_GET, GW_METHOD_POST, GW_METHOD_PUT, GW_METHOD_DELETE,
                               GW_METHOD_PATCH, GW_METHOD_HEAD, GW_METHOD_OPTIONS,
                               GW_METHOD_TRACE, -1, -1, -1};
    for (int i = 0; i < 11; i++)
        assert_int_equal(r->got[i]->method, want[i]);
    /* PURGE is a whole request otherwise: the connection answers 501 or 405. */
    assert_string_equal(path(r->got[8]), "/x");
    assert_int_equal(r->got[8]->refuse, 0);
    assert_int_equal(r->got[8]->keep_alive, 1);
}

static void test_headers(void **state)
{
    rig *r = *state;
    feed_ok(r, S("GET / HTTP/1.1\r\n"
                 "X-Foo: a  \r\n"
                 "Content-TYPE:text/plain\r\n"
                 "x-foo:   b c \t \r\n"
                 "Empty:\r\n"
                 "Blank:    \r\n"
                 "X-FOO: \tlast\r\n"
                 "Host: h\r\n"
                 "\r\n"));
    assert_int_equal(r->ngot, 1);
    gw_request *req = r->got[0];
    assert_int_equal(req->nheaders, 7);
    assert_header(req, 0, "x-foo", "a");
    assert_header(req, 1, "content-type", "text/plain");
    assert_header(req, 2, "x-foo", "b c");
    assert_header(req, 3, "empty", "");
    assert_header(req, 4, "blank", "");
    assert_header(req, 5, "x-foo", "last");
    assert_header(req, 6, "host", "h");
    assert_string_equal(header(req, "x-foo"), "a"); /* the first of the repeats */
    assert_string_equal(header(req, "content-type"), "text/plain");
    assert_null(header(req, "Content-Type")); /* names are stored lower-case */
    assert_null(header(req, "x-fo"));
    /* Bytes of 0x80 and above are allowed in values. */
    feed_ok(r, S("GET / HTTP/1.1\r\nX-U: caf\xc3\xa9\r\n\r\n"));
    assert_int_equal(r->ngot, 2);
    assert_string_equal(header(r->got[1], "x-u"), "caf\xc3\xa9");
}

static void test_query_decoding(void **state)
{
    rig *r = *state;
    feed_ok(r, S("GET /s?q=a+b%20c&amp=%26&x=1%2&%zz=v&flag&&=v2&e=&k=a=b#frag HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 1);
    gw_request *req = r->got[0];
    assert_int_equal(req->refuse, 0);
    assert_string_equal(path(req), "/s");
    assert_int_equal(req->nquery, 8);
    assert_query(req, 0, "q", "a b c");
    assert_query(req, 1, "amp", "&");
    assert_query(req, 2, "x", "1%2");  /* a stray '%' is kept as sent */
    assert_query(req, 3, "%zz", "v");
    assert_query(req, 4, "flag", "");
    assert_query(req, 5, "", "v2");
    assert_query(req, 6, "e", "");
    assert_query(req, 7, "k", "a=b");
    assert_int_equal(req->query_at, req->nheaders);
}

/* Compares two sets of pairs exactly, lengths and bytes. */
static void assert_same_pairs(const gw_request *a, uint32_t a_at, const gw_request *b,
                              uint32_t b_at, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const gw_pair *p = &a->pairs[a_at + i], *q = &b->pairs[b_at + i];
        assert_int_equal(p->name_len, q->name_len);
        assert_int_equal(p->value_len, q->value_len);
        assert_memory_equal(a->buf + p->name_off, b->buf + q->name_off, p->name_len);
        assert_memory_equal(a->buf + p->value_off, b->buf + q->value_off, p->value_len);
        assert_int_equal(b->buf[q->name_off + q->name_len], '\0');
        assert_int_equal(b->buf[q->value_off + q->value_len], '\0');
    }
}

/* What a WebSocket connection keeps of its handshake (gw_request_pack) unpacks to the same
 * method, path, host, address, body, headers, query pairs (an escaped one and a 200-byte
 * value, whose length takes two bytes, included) and path parameters. */
static void test_request_pack_round_trip(void **state)
{
    rig *r = *state;
    char long_value[201];
    memset(long_value, 'v', 200);
    long_value[200] = '\0';
    char in[1024];
    int n = snprintf(in, sizeof(in),
                     "GET /room/l%%C3%%A9bby?q=a%%26b&long=%s&empty= HTTP/1.1\r\n"
                     "Host: example.test\r\nUpgrade: websocket\r\nX-Repeat: 1\r\n"
                     "X-Repeat: 2\r\n\r\n", long_value);
    assert_true(n > 0 && (size_t)n < sizeof(in));
    feed_ok(r, in, (size_t)n);
    assert_int_equal(r->ngot, 1);
    gw_request *req = r->got[0];
    assert_int_equal(req->refuse, 0);
    assert_int_equal(req->nheaders, 4);
    assert_int_equal(req->nquery, 3);
    strcpy(req->ip, "2001:db8::1");
    req->param_at = req->npairs;
    assert_int_equal(gw_request_add_pair(req, "name", 4, "l\xc3\xa9" "bby", 6), 0);
    req->nparams = 1;
    req->route = (const struct gw_route *)&r->pool; /* any address: it is only carried */

    gw_packed_request *packed = gw_request_pack(req);
    assert_non_null(packed);
    assert_ptr_equal(gw_packed_request_route(packed), req->route);
    gw_request *copy = gw_request_unpack(packed);
    free(packed);
    assert_non_null(copy);
    assert_null(copy->pool);
    assert_null(copy->pending);
    assert_int_equal(copy->method, GW_METHOD_GET);
    assert_int_equal(copy->version, 11);
    assert_int_equal(copy->keep_alive, req->keep_alive);
    assert_string_equal(path(copy), "/room/l\xc3\xa9" "bby");
    assert_int_equal(copy->path_len, req->path_len);
    assert_int_equal(copy->host_len, strlen("example.test"));
    assert_string_equal(gw_request_str(copy, copy->host_off), "example.test");
    assert_string_equal(copy->ip, "2001:db8::1");
    assert_int_equal(copy->body_len, 0);
    assert_int_equal(copy->nheaders, 4);
    assert_int_equal(copy->nquery, 3);
    assert_int_equal(copy->nparams, 1);
    assert_int_equal(copy->npairs, 8);
    assert_same_pairs(req, req->header_at, copy, copy->header_at, 4);
    assert_same_pairs(req, req->query_at, copy, copy->query_at, 3);
    assert_same_pairs(req, req->param_at, copy, copy->param_at, 1);
    assert_int_equal(copy->pairs[copy->query_at].value_len, 3); /* "a&b" */
    assert_int_equal(copy->pairs[copy->query_at + 1].value_len, 200);
    assert_string_equal(header(copy, "x-repeat"), "1");
    gw_request_release(copy); /* no pool: freed (valgrind and ASan check it) */
}

/* A stray '%' in one part of a pair keeps that part as sent; the other is decoded, and
 * neither is damaged by the decoding of the other. */
static void test_query_stray_percent_keeps_part(void **state)
{
    rig *r = *state;
    feed_ok(r, S("GET /?a%20b%zz=1&n%41=%zz+x&p+q=%4 HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 1);
    gw_request *req = r->got[0];
    assert_int_equal(req->refuse, 0);
    assert_int_equal(req->nquery, 3);
    assert_query(req, 0, "a%20b%zz", "1");
    assert_query(req, 1, "nA", "%zz+x");
    assert_query(req, 2, "p q", "%4");
}

static void test_query_long_piece(void **state)
{
    rig *r = *state;
    /* Pieces longer than the adapter's stack scratch go through the heap. */
    text t = {0};
    tx_printf(&t, "GET /q?k=");
    for (int i = 0; i < 1500; i++)
        tx_put(&t, "%41", 3);
    tx_printf(&t, "&k2=");
    for (int i = 0; i < 1100; i++)
        tx_put(&t, "%zz", i == 3 ? 3 : 1);
    tx_printf(&t, " HTTP/1.1\r\n\r\n");
    feed_ok(r, t.s, t.len);
    assert_int_equal(r->ngot, 1);
    gw_request *req = r->got[0];
    assert_int_equal(req->nquery, 2);
    const gw_pair *p = &req->pairs[req->query_at];
    assert_int_equal(p->value_len, 1500);
    for (int i = 0; i < 1500; i++)
        assert_int_equal(req->buf[p->value_off + (uint32_t)i], 'A');
    p++;
    assert_int_equal(p->value_len, 1102);
    assert_memory_equal(req->buf + p->value_off, "%%%%zz%%%", 9);
    tx_free(&t);
}

static void test_path_decoding(void **state)
{
    rig *r = *state;
    feed_ok(r, S("GET /a%20b/c+d/%41%2fx HTTP/1.1\r\n\r\n"
                 "GET /caf%C3%A9?x=1 HTTP/1.1\r\n\r\n"
                 "GET /bad%2 HTTP/1.1\r\n\r\n"
                 "GET /bad%zz/x HTTP/1.1\r\n\r\n"
                 "GET /nul%00x HTTP/1.1\r\n\r\n"
                 "GET /ok?a=%00 HTTP/1.1\r\n\r\n"
                 "GET /ok?%00=a HTTP/1.1\r\n\r\n"
                 "GET /after HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 8);
    assert_string_equal(path(r->got[0]), "/a b/c+d/A/x");
    assert_int_equal(r->got[0]->refuse, 0);
    assert_string_equal(path(r->got[1]), "/caf\xc3\xa9");
    assert_int_equal(r->got[1]->refuse, 0);
    for (int i = 2; i <= 6; i++) {
        assert_int_equal(r->got[i]->refuse, 400);
        assert_int_equal(r->head_refuse[i], 400); /* on_head sees it already */
        assert_int_equal(r->got[i]->keep_alive, 1); /* answered and kept alive */
    }
    assert_int_equal(r->got[7]->refuse, 0);
    assert_string_equal(path(r->got[7]), "/after");
}

static void test_absolute_form(void **state)
{
    rig *r = *state;
    feed_ok(r, S("GET http://example.com:8080/x%20y?a=1&b=c+d HTTP/1.1\r\nHost: other\r\n\r\n"
                 "GET http://example.org HTTP/1.1\r\n\r\n"
                 "GET https://user@h.example/p?q HTTP/1.1\r\n\r\n"
                 "GET http://e.com?x=y HTTP/1.1\r\nHost: e.com\r\n\r\n"));
    assert_int_equal(r->ngot, 4);
    gw_request *req = r->got[0];
    assert_int_equal(req->refuse, 0);
    assert_string_equal(gw_request_str(req, req->target_off),
                        "http://example.com:8080/x%20y?a=1&b=c+d");
    assert_string_equal(gw_request_str(req, req->host_off), "example.com");
    assert_int_equal(req->host_len, 11);
    assert_string_equal(path(req), "/x y");
    assert_int_equal(req->nquery, 2);
    assert_query(req, 0, "a", "1");
    assert_query(req, 1, "b", "c d");
    assert_string_equal(header(req, "host"), "other"); /* the header is still there */

    req = r->got[1];
    assert_string_equal(gw_request_str(req, req->host_off), "example.org");
    assert_string_equal(path(req), "/");
    assert_int_equal(req->path_len, 1);
    assert_int_equal(req->nquery, 0);

    req = r->got[2];
    assert_string_equal(gw_request_str(req, req->host_off), "h.example");
    assert_string_equal(path(req), "/p");
    assert_int_equal(req->nquery, 1);
    assert_query(req, 0, "q", "");

    req = r->got[3];
    assert_string_equal(path(req), "/");
    assert_int_equal(req->nquery, 1);
    assert_query(req, 0, "x", "y");
}

static void test_connect(void **state)
{
    rig *r = *state;
    static const char in[] = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
                             "\x16\x03\x01 tunnel bytes";
    size_t head = strlen("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    size_t used = 0;
    assert_int_equal(feed(r, S(in), &used), GW_HP_UPGRADE);
    assert_int_equal(used, head);
    assert_int_equal(r->ngot, 1);
    gw_request *req = r->got[0];
    assert_int_equal(req->method, GW_METHOD_CONNECT);
    assert_int_equal(req->keep_alive, 0);
    assert_int_equal(req->refuse, 0);
    assert_string_equal(gw_request_str(req, req->target_off), "example.com:443");
    assert_string_equal(path(req), "example.com:443");
    assert_string_equal(gw_request_str(req, req->host_off), "example.com:443");
    assert_int_equal(req->nquery, 0);
    /* Fed byte by byte or cut anywhere it stops at the same place. */
    char *t = same_for_every_split(NULL, S(in));
    char want[32];
    snprintf(want, sizeof(want), "UPGRADE at %zu\n", head);
    assert_non_null(strstr(t, want));
    free(t);
}

static void test_connect_bad_authority(void **state)
{
    rig *r = *state;
    /* http-parser takes the authority; one its URL parser refuses is answered 400. */
    size_t used;
    int rc = feed(r, S("CONNECT example.com HTTP/1.1\r\n\r\n"), &used);
    if (rc == GW_HP_ERROR) {
        assert_int_equal(r->hp.error_status, 400);
    } else {
        assert_int_equal(rc, GW_HP_UPGRADE);
        assert_int_equal(r->ngot, 1);
        assert_int_equal(r->got[0]->refuse, 400);
    }
}

static void test_pipelined_posts(void **state)
{
    rig *r = *state;
    feed_ok(r, S("POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                 "POST /b?x=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
                 "POST /c HTTP/1.1\r\nContent-Length: 11\r\nX: y\r\n\r\nhello world"));
    assert_int_equal(r->ngot, 3);
    assert_int_equal(r->nheads, 3);
    assert_string_equal(path(r->got[0]), "/a");
    assert_string_equal(body(r->got[0]), "hello");
    assert_int_equal(r->got[0]->body_len, 5);
    assert_string_equal(path(r->got[1]), "/b");
    assert_int_equal(r->got[1]->body_len, 0);
    assert_string_equal(body(r->got[1]), "");
    assert_query(r->got[1], 0, "x", "1");
    assert_string_equal(path(r->got[2]), "/c");
    assert_string_equal(body(r->got[2]), "hello world");
    assert_int_equal(r->got[2]->body_len, 11);
    assert_string_equal(header(r->got[2], "x"), "y");
    for (int i = 0; i < 3; i++)
        assert_int_equal(r->got[i]->method, GW_METHOD_POST);
    assert_false(gw_hp_busy(&r->hp));
}

/* Everything the parser can be given, fed whole, byte by byte and cut at every point: the
 * same requests come out. */
static const char MIXED[] =
    "POST /a%20b?x=1&y=%26 HTTP/1.1\r\nHost: h\r\nX-Long: some value  \r\n"
    "Content-Length: 5\r\n\r\nhello"
    "\r\n" /* a stray line break between requests is allowed */
    "PUT /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;ext=1\r\nhello\r\n6;a=\"b\";c\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    "GET http://example.com/abs?q=a+b HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
    "GET /h2 HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    "DELETE /bad%00 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    "POST /h2body HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\nabc"
    "PURGE /cache HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"
    "GET /last HTTP/1.1\r\n";

static void test_byte_by_byte(void **state)
{
    rig *r = *state;
    char *whole = same_for_every_split(NULL, S(MIXED));
    /* And what it says: */
    feed_ok(r, S(MIXED));
    assert_int_equal(r->ngot, 7);
    assert_true(gw_hp_busy(&r->hp)); /* the last request has begun */
    assert_string_equal(body(r->got[0]), "hello");
    assert_string_equal(header(r->got[0], "x-long"), "some value");
    assert_string_equal(body(r->got[1]), "hello world");
    assert_null(header(r->got[1], "x-trailer"));
    assert_string_equal(path(r->got[2]), "/abs");
    assert_string_equal(path(r->got[3]), "/h2");
    assert_int_equal(r->got[3]->upgrade, 0);
    assert_int_equal(r->got[4]->refuse, 400);
    assert_string_equal(body(r->got[5]), "abc");
    assert_int_equal(r->got[6]->method, -1);
    assert_int_equal(r->got[6]->expect_continue, 1);
    assert_string_equal(path(r->got[5]), "/h2body");
    text t = {0};
    for (int i = 0; i < r->ngot; i++)
        describe(&t, r->got[i]);
    tx_printf(&t, "OK busy=1\n");
    assert_string_equal(whole, t.s);
    tx_free(&t);
    free(whole);
}

static void test_chunked(void **state)
{
    rig *r = *state;
    feed_ok(r, S("POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: h\r\n\r\n"
                 "5;name=value\r\nhello\r\n"
                 "1;a;b=\"q d\"\r\n \r\n"
                 "A\r\n0123456789\r\n"
                 "0;last=1\r\n"
                 "X-Trailer: t\r\nX-Other: u\r\n\r\n"
                 "POST /next HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
    assert_int_equal(r->ngot, 2);
    gw_request *req = r->got[0];
    assert_int_equal(req->body_len, 16);
    assert_string_equal(body(req), "hello 0123456789");
    /* Trailers are read and dropped. */
    assert_int_equal(req->nheaders, 2);
    assert_null(header(req, "x-trailer"));
    assert_string_equal(header(req, "transfer-encoding"), "chunked");
    assert_int_equal(r->got[1]->body_len, 0);
    assert_string_equal(path(r->got[1]), "/next");
}

static void test_chunked_bad_framing(void **state)
{
    (void)state;
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\nhello\r\n0\r\n\r\n"), 400);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"), 400);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "ffffffffffffffffff\r\n"), 400);
}

/* ---- limits ------------------------------------------------------------------------- */

static void test_body_limit_content_length(void **state)
{
    rig *r = *state;
    r->lim.max_body = 10;
    size_t used = 0;
    static const char head[] = "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
    /* Refused from the header alone: on_head never sees it, no body byte is read. */
    assert_int_equal(feed(r, S("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"), &used),
                     GW_HP_ERROR);
    assert_int_equal(r->hp.error_status, 413);
    assert_true(used <= sizeof(head) - 1);
    assert_int_equal(r->nheads, 0);
    assert_int_equal(r->ngot, 0);

    gw_hp_limits lim = DEFAULT_LIMITS;
    lim.max_body = 10;
    expect_error_lim(&lim, S("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"), 413);
    expect_error_lim(&lim, S("POST / HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n"), 413);
    /* Exactly the limit is fine. */
    char *t = same_for_every_split(&lim, S("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"));
    assert_non_null(strstr(t, "body=\"0123456789\""));
    free(t);
    /* A body that is not digits, or an overflowing one, is 400. */
    expect_error(S("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"), 400);
    expect_error(S("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
    expect_error(S("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 400);
}

static void test_body_limit_chunked(void **state)
{
    rig *r = *state;
    gw_hp_limits lim = DEFAULT_LIMITS;
    lim.max_body = 10;
    /* A chunk over the limit, before its data. */
    expect_error_lim(&lim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n"), 413);
    /* Chunks that add up past it. */
    expect_error_lim(&lim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "6\r\nhello \r\n6\r\n"), 413);
    /* Exactly the limit is fine. */
    char *t = same_for_every_split(&lim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                           "6\r\nhello \r\n4\r\nwxyz\r\n0\r\n\r\n"));
    assert_non_null(strstr(t, "body=\"hello wxyz\""));
    free(t);
    /* The limit counts dropped bodies too. */
    r->lim.max_body = 10;
    r->head_rc[0] = GW_HP_BODY_DROP;
    assert_int_equal(feed(r, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "6\r\nhello \r\n6\r\n"), NULL),
                     GW_HP_ERROR);
    assert_int_equal(r->hp.error_status, 413);
    assert_int_equal(r->ngot, 0);
}

static void test_head_limit(void **state)
{
    (void)state;
    gw_hp_limits lim = DEFAULT_LIMITS;
    lim.max_head = 100;
    text t = {0};
    tx_printf(&t, "GET / HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 100; i++)
        tx_put(&t, "v", 1);
    tx_printf(&t, "\r\n\r\n");
    expect_error_lim(&lim, t.s, t.len, 431);
    /* Many small lines add up. */
    t.len = 0;
    tx_printf(&t, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 20; i++)
        tx_printf(&t, "X-%d: v\r\n", i);
    tx_printf(&t, "\r\n");
    expect_error_lim(&lim, t.s, t.len, 431);
    /* Within it is fine: */
    t.len = 0;
    tx_printf(&t, "GET / HTTP/1.1\r\nX-1: 0123456789\r\nX-2: 0123456789\r\n\r\n");
    char *got = same_for_every_split(&lim, t.s, t.len);
    assert_non_null(strstr(got, "OK busy=0"));
    free(got);
    /* A long target alone passes the head limit too (when the URL limit allows it). */
    lim.max_url = 1000;
    t.len = 0;
    tx_printf(&t, "GET /");
    for (int i = 0; i < 150; i++)
        tx_put(&t, "a", 1);
    tx_printf(&t, " HTTP/1.1\r\n\r\n");
    expect_error_lim(&lim, t.s, t.len, 431);
    /* http-parser's own limit (80 KB) is 431 too. */
    lim = DEFAULT_LIMITS;
    lim.max_head = 1 << 20;
    t.len = 0;
    tx_printf(&t, "GET / HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 90000; i++)
        tx_put(&t, "v", 1);
    tx_printf(&t, "\r\n\r\n");
    char *one = transcript(&lim, t.s, t.len, 0, SIZE_MAX);
    assert_string_equal(one, "ERROR 431\n");
    free(one);
    tx_free(&t);
}

static void test_header_count_limit(void **state)
{
    (void)state;
    gw_hp_limits lim = DEFAULT_LIMITS;
    lim.max_headers = 3;
    expect_error_lim(&lim, S("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"), 431);
    char *t = same_for_every_split(&lim, S("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"));
    assert_non_null(strstr(t, "h:\"c\"=\"3\""));
    free(t);
    /* Trailers do not count as header lines of the request. */
    t = same_for_every_split(&lim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "0\r\nT1: 1\r\nT2: 2\r\nT3: 3\r\nT4: 4\r\n\r\n"));
    assert_non_null(strstr(t, "OK busy=0"));
    free(t);
}

static void test_url_limit(void **state)
{
    (void)state;
    gw_hp_limits lim = DEFAULT_LIMITS;
    lim.max_url = 20;
    expect_error_lim(&lim, S("GET /0123456789012345678901 HTTP/1.1\r\n\r\n"), 414);
    expect_error_lim(&lim, S("GET /0123456789?a=12345678901 HTTP/1.1\r\n\r\n"), 414);
    char *t = same_for_every_split(&lim, S("GET /012345678901234567 HTTP/1.1\r\n\r\n")); /* 20 */
    assert_non_null(strstr(t, "OK busy=0"));
    free(t);
}

/* ---- malformed requests (docs/http.md) ---------------------------------------------- */

static void test_obs_fold(void **state)
{
    (void)state;
    expect_error(S("GET / HTTP/1.1\r\nFoo: a\r\n b\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFoo: a\r\n\tb\r\n\r\n"), 400);
    /* A value that begins on the continuation line. */
    expect_error(S("GET / HTTP/1.1\r\nFoo:\r\n b\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFoo:   \r\n  b\r\n\r\n"), 400);
    /* A continuation line of white space only. */
    expect_error(S("GET / HTTP/1.1\r\nFoo: a\r\n  \r\n\r\n"), 400);
    /* Bare line feeds. */
    expect_error(S("GET / HTTP/1.1\nFoo: a\n b\n\n"), 400);
    expect_error(S("GET / HTTP/1.1\nFoo:\n b\n\n"), 400);
    /* Folded Content-Length */
    expect_error(S("POST / HTTP/1.1\r\nContent-Length: 1\r\n 2\r\n\r\n"), 400);
    /* Not folds: empty values, values with inner white space, bare line feeds. */
    char *t = same_for_every_split(NULL, S("GET / HTTP/1.1\r\nFoo:\r\nBar: b  c\r\nBaz:\r\n\r\n"));
    assert_non_null(strstr(t, "h:\"foo\"=\"\" h:\"bar\"=\"b  c\" h:\"baz\"=\"\""));
    free(t);
    t = same_for_every_split(NULL, S("GET / HTTP/1.1\nFoo: a\nBar:\n\n"));
    assert_non_null(strstr(t, "h:\"foo\"=\"a\" h:\"bar\"=\"\""));
    free(t);
}

static void test_control_characters(void **state)
{
    (void)state;
    expect_error(S("GET / HTTP/1.1\r\nFoo: a\0b\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFoo: \0\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFoo: \x01x\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFoo: x\x7f\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFoo: x\rx\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nF\0o: x\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nF\x01o: x\r\n\r\n"), 400);
    expect_error(S("GET /a\0b HTTP/1.1\r\n\r\n"), 400);
    expect_error(S("GET /a\x01 HTTP/1.1\r\n\r\n"), 400);
}

static void test_header_line_shape(void **state)
{
    (void)state;
    expect_error(S("GET / HTTP/1.1\r\nFoo bar\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFoo\r\n\r\n"), 400);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFoo\t: x\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\n Foo: x\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFo o: x\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\n: x\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFoo: x\r\r\n\r\n"), 400);
}

static void test_smuggling(void **state)
{
    (void)state;
    expect_error(S("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "0\r\n\r\n"), 400);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                   "0\r\n\r\n"), 400);
    expect_error(S("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), 400);
    expect_error(S("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"), 400);
    expect_error(S("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello"), 400);
    expect_error(S("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n"), 400);
}

static void test_transfer_codings(void **state)
{
    (void)state;
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 501);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 501);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: gzip,chunked\r\n\r\n0\r\n\r\n"), 501);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n"), 501);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"), 501);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n"), 501);
    /* The codings of repeated headers add up: the last one is not chunked. */
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
                   "0\r\n\r\n"), 501);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "0\r\n\r\n"), 501);
    /* chunked, in any case and with white space around it, is fine. */
    char *t = same_for_every_split(NULL, S("POST / HTTP/1.1\r\nTransfer-Encoding:  ChunKed \r\n\r\n"
                                           "1\r\nx\r\n0\r\n\r\n"));
    assert_non_null(strstr(t, "body=\"x\"\nOK busy=0"));
    free(t);
}

static void test_methods_and_versions_refused(void **state)
{
    (void)state;
    /* Bytes that are no request line: 400. */
    expect_error(S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400);
    expect_error(S("HTTP/1.1 200 OK\r\n\r\n"), 400);
    char *t = transcript(NULL, S("GET / HTTP/1.1\r\n\r\nhello world\r\n\r\n"), 0, SIZE_MAX);
    assert_non_null(strstr(t, "\nERROR 400\n"));
    free(t);
    expect_error(S("GET / HTTP/x.1\r\n\r\n"), 400);
    expect_error(S("GET / FOO/1.1\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1 x\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.10\r\n\r\n"), 400);
    expect_error(S("GET\r\n\r\n"), 400);
    /* Versions. */
    expect_error(S("GET / HTTP/2.0\r\n\r\n"), 505);
    expect_error(S("GET / HTTP/3.0\r\nHost: h\r\n\r\n"), 505);
    expect_error(S("GET / HTTP/0.9\r\n\r\n"), 505);
    expect_error(S("GET /\r\n\r\n"), 505);
}

/* ---- method tokens http-parser does not know ----------------------------------------- */

/* What a request with method token m and the rest of the line as sent looks like, fed
 * whole, byte by byte and cut anywhere (the transcript of each must be the same). */
static char *method_transcript(const char *s, size_t len)
{
    return same_for_every_split(NULL, s, len);
}

/* A token http-parser does not know is read as any request is: the router answers it 405
 * or 501 as it answers PURGE, and the connection goes on. */
static void test_unknown_method_token(void **state)
{
    rig *r = *state;
    static const char *tokens[] = {"BREW", "NONSTANDARD", "get", "GETX", "GE", "G", "M-SEARCHX",
                                   "1", "!#$%&'*+-.^_`|~", "0123456789abcdefABCDEF0123456789"};
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
        char in[128];
        int n = snprintf(in, sizeof(in), "%s /pot?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", tokens[i]);
        char *t = method_transcript(in, (size_t)n);
        assert_string_equal(t, "m=-1 v=11 ka=1 ex=0 up=0 refuse=0 target=\"/pot?x=1\" path=\"/pot\" "
                               "host=\"h\" h:\"host\"=\"h\" q:\"x\"=\"1\" body=\"\"\nOK busy=0\n");
        free(t);
    }
    feed_ok(r, S("BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n"));
    assert_int_equal(r->ngot, 1);
    assert_int_equal(r->got[0]->method, -1);
    assert_int_equal(r->got[0]->keep_alive, 1);
    assert_false(gw_hp_busy(&r->hp));
    /* HTTP/1.0 and Connection: close keep their meaning. */
    char *t = method_transcript(S("BREW / HTTP/1.0\r\n\r\n"));
    assert_non_null(strstr(t, "m=-1 v=10 ka=0 "));
    free(t);
    t = method_transcript(S("BREW / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    assert_non_null(strstr(t, "m=-1 v=11 ka=0 "));
    free(t);
}

/* Every token http-parser knows goes on being its method, cut anywhere. */
static void test_known_method_tokens_split(void **state)
{
    (void)state;
    static const struct {
        const char *token;
        int method;
    } known[] = {{"GET", GW_METHOD_GET}, {"POST", GW_METHOD_POST}, {"OPTIONS", GW_METHOD_OPTIONS},
                 {"TRACE", GW_METHOD_TRACE}, {"PURGE", -1}, {"M-SEARCH", -1},
                 {"UNSUBSCRIBE", -1}, {"MKACTIVITY", -1}};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        char in[128], want[64];
        int n = snprintf(in, sizeof(in), "\r\n%s /k HTTP/1.1\r\n\r\n", known[i].token);
        snprintf(want, sizeof(want), "m=%d v=11 ka=1 ", known[i].method);
        char *t = method_transcript(in, (size_t)n);
        assert_non_null(strstr(t, want));
        assert_non_null(strstr(t, "\nOK busy=0\n"));
        free(t);
    }
}

/* The body of such a request is framed by Content-Length or chunked as for any method:
 * what follows it is the next request. */
static void test_unknown_method_with_body(void **state)
{
    rig *r = *state;
    static const char in[] = "BREW /pot HTTP/1.1\r\nContent-Length: 35\r\n\r\n"
                             "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
                             "FROB /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
                             "GET /after HTTP/1.1\r\n\r\n";
    char *t = method_transcript(S(in));
    assert_non_null(strstr(t, "body=\"abc\"\n"));
    assert_non_null(strstr(t, "\nOK busy=0\n"));
    free(t);
    feed_ok(r, S(in));
    assert_int_equal(r->ngot, 3);
    assert_int_equal(r->got[0]->method, -1);
    assert_string_equal(body(r->got[0]), "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(r->got[1]->method, -1);
    assert_string_equal(path(r->got[1]), "/c");
    assert_string_equal(body(r->got[1]), "abc");
    assert_int_equal(r->got[2]->method, GW_METHOD_GET);
    assert_string_equal(path(r->got[2]), "/after");
    /* Its limits are those of any request. */
    gw_hp_limits lim = DEFAULT_LIMITS;
    lim.max_body = 4;
    expect_error_lim(&lim, S("BREW / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), 413);
    expect_error(S("BREW / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
                 400);
}

/* Behind and before known requests, with the empty lines http-parser allows between. */
static void test_unknown_method_pipelined(void **state)
{
    rig *r = *state;
    static const char in[] = "GET /1 HTTP/1.1\r\n\r\n"
                             "BREW /2 HTTP/1.1\r\n\r\n"
                             "\r\n\r\nPOST /3 HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"
                             "\r\nNONSTANDARD /4 HTTP/1.1\r\n\r\n"
                             "\n\nBREW /5 HTTP/1.1\r\n\r\n"
                             "GET /6 HTTP/1.1\r\n\r\n"
                             "BR";
    char *t = method_transcript(S(in));
    assert_non_null(strstr(t, "\nOK busy=1\n")); /* the last token has begun */
    free(t);
    feed_ok(r, S(in));
    assert_int_equal(r->ngot, 6);
    static const int want[] = {GW_METHOD_GET, -1, GW_METHOD_POST, -1, -1, GW_METHOD_GET};
    for (int i = 0; i < 6; i++) {
        char p[8];
        snprintf(p, sizeof(p), "/%d", i + 1);
        assert_int_equal(r->got[i]->method, want[i]);
        assert_string_equal(path(r->got[i]), p);
    }
    assert_true(gw_hp_busy(&r->hp));
    assert_false(gw_hp_in_body(&r->hp));
    /* The token goes on in the next feed. */
    feed_ok(r, S("EW /7 HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 7);
    assert_int_equal(r->got[6]->method, -1);
    assert_string_equal(path(r->got[6]), "/7");
    assert_false(gw_hp_busy(&r->hp));
    /* A known token cut short goes on too. */
    feed_ok(r, S("\r\nG"));
    assert_true(gw_hp_busy(&r->hp));
    feed_ok(r, S("E"));
    feed_ok(r, S("T /8 HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 8);
    assert_int_equal(r->got[7]->method, GW_METHOD_GET);
    assert_string_equal(path(r->got[7]), "/8");
    /* Empty lines alone begin nothing. */
    feed_ok(r, S("\r\n\r\n"));
    assert_false(gw_hp_busy(&r->hp));
    /* A token whose end looks like a known method's beginning is still one token (a
     * fuzz finding: the next feed was taken for a GET). */
    feed_ok(r, S("!#"));
    feed_ok(r, S("GET /9 HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 9);
    assert_int_equal(r->got[8]->method, -1);
    assert_string_equal(path(r->got[8]), "/9");
    char *t2 = method_transcript(S("GET / HTTP/1.1\r\n\r\nXPOST /a HTTP/1.1\r\n\r\n"
                                   "!#GET /b HTTP/1.1\r\n\r\nOPTIONSX * HTTP/1.1\r\n\r\n"));
    assert_non_null(strstr(t2, "m=-1 v=11 ka=1 ex=0 up=0 refuse=0 target=\"/a\""));
    assert_non_null(strstr(t2, "m=-1 v=11 ka=1 ex=0 up=0 refuse=0 target=\"/b\""));
    assert_non_null(strstr(t2, "m=-1 v=11 ka=1 ex=0 up=0 refuse=0 target=\"*\""));
    free(t2);
}

/* A token longer than GW_HP_METHOD_MAX: 501, decided at its first byte too many. */
static void test_method_token_too_long(void **state)
{
    rig *r = *state;
    char in[128];
    memset(in, 'A', GW_HP_METHOD_MAX + 1);
    memcpy(in + GW_HP_METHOD_MAX + 1, " / HTTP/1.1\r\n\r\n", 16);
    expect_error(in, GW_HP_METHOD_MAX + 17, 501);
    expect_error(in, GW_HP_METHOD_MAX + 1, 501); /* whatever follows */
    char *t = method_transcript(in, GW_HP_METHOD_MAX); /* not too long yet */
    assert_string_equal(t, "OK busy=1\n");
    free(t);
    in[GW_HP_METHOD_MAX] = ' '; /* 32 bytes: a token like any other */
    t = method_transcript(in, GW_HP_METHOD_MAX + 17);
    assert_non_null(strstr(t, "m=-1 v=11 ka=1 "));
    free(t);
    /* Behind a request, and cut across feeds. */
    static const char behind[] = "GET / HTTP/1.1\r\n\r\n"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ / HTTP/1.1\r\n\r\n";
    t = method_transcript(S(behind));
    assert_non_null(strstr(t, "\nERROR 501\n"));
    free(t);
    size_t used;
    feed_ok(r, S("ABCDEFGHIJKLMNOPQRST"));
    assert_int_equal(feed(r, S("UVWXYZABCDEFGHIJ / HTTP/1.1\r\n\r\n"), &used), GW_HP_ERROR);
    assert_int_equal(r->hp.error_status, 501);
    assert_int_equal(r->ngot, 0);
}

/* A line that does not begin with a token and a single space is no request line: 400. */
static void test_method_not_a_token(void **state)
{
    (void)state;
    expect_error(S("BR@W / HTTP/1.1\r\n\r\n"), 400);
    expect_error(S("BREW\t/ HTTP/1.1\r\n\r\n"), 400);
    expect_error(S("BREW\r\n\r\n"), 400);
    expect_error(S("GET\t/ HTTP/1.1\r\n\r\n"), 400);
    expect_error(S(" GET / HTTP/1.1\r\n\r\n"), 400);
    expect_error(S("/ HTTP/1.1\r\n\r\n"), 400);
    expect_error(S("\xc3\xa9 / HTTP/1.1\r\n\r\n"), 400);
    expect_error(S("B\x00REW / HTTP/1.1\r\n\r\n"), 400);
    expect_error(S("BREW(x) / HTTP/1.1\r\n\r\n"), 400);
    char *t = method_transcript(S("GET / HTTP/1.1\r\n\r\nBREW\"x / HTTP/1.1\r\n\r\n"));
    assert_non_null(strstr(t, "\nERROR 400\n"));
    free(t);
    /* A token and a space but no request line after it: 400 as for any method. */
    expect_error(S("BREW world\r\n\r\n"), 400);
    expect_error(S("BREW / FOO/1.1\r\n\r\n"), 400);
    expect_error(S("BREW / HTTP/2.0\r\n\r\n"), 505);
}

/* Out of memory for the request of an unknown token: 503, as for any. */
static void test_unknown_method_out_of_memory(void **state)
{
    rig *r = *state;
    r->fail_new_at = 2;
    size_t used;
    feed_ok(r, S("BREW /1 HTTP/1.1\r\n\r\nBR"));
    assert_int_equal(feed(r, S("EW /2 HTTP/1.1\r\n\r\n"), &used), GW_HP_ERROR);
    assert_int_equal(r->hp.error_status, 503);
    assert_int_equal(r->ngot, 1);
}

/* A pause after a request leaves the next token for after gw_hp_resume(); a reset drops
 * a token cut short. */
static void test_unknown_method_pause_and_reset(void **state)
{
    rig *r = *state;
    static const char in[] = "BREW /1 HTTP/1.1\r\n\r\nBREW /2 HTTP/1.1\r\n\r\n";
    r->req_rc[0] = 1;
    size_t used = 0;
    assert_int_equal(feed(r, S(in), &used), GW_HP_PAUSED);
    assert_int_equal(used, strlen("BREW /1 HTTP/1.1\r\n\r\n"));
    size_t again = 99;
    assert_int_equal(feed(r, in + used, sizeof(in) - 1 - used, &again), GW_HP_PAUSED);
    assert_int_equal(again, 0);
    gw_hp_resume(&r->hp);
    feed_ok(r, in + used, sizeof(in) - 1 - used);
    assert_int_equal(r->ngot, 2);
    assert_string_equal(path(r->got[1]), "/2");
    feed_ok(r, S("BRE"));
    assert_true(gw_hp_busy(&r->hp));
    gw_hp_reset(&r->hp);
    assert_false(gw_hp_busy(&r->hp));
    feed_ok(r, S("GET /3 HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 3);
    assert_int_equal(r->got[2]->method, GW_METHOD_GET);
    /* Behind a request that closes the connection (the connection stops reading there; the
     * parser, as Debian builds http-parser, goes on). */
    char *t = method_transcript(S("GET / HTTP/1.0\r\n\r\nBREW / HTTP/1.1\r\n\r\n"));
    assert_non_null(strstr(t, "\nm=-1 v=11 ka=1 "));
    assert_non_null(strstr(t, "\nOK busy=0\n"));
    free(t);
}

/* http-parser is built non-strict on Debian: it takes any byte for the "TTP/" of the
 * version, for the line feed of a CR LF at the end of the head, after an empty header
 * value and in chunked framing, and anything but CR in a chunk extension. The adapter
 * refuses each of them (docs/http.md: 400, malformed framing). */
static void test_lax_framing_refused(void **state)
{
    (void)state;
    expect_error(S("GET / HXXP/1.1\r\n\r\n"), 400);
    expect_error(S("GET / HTTX/1.1\r\nHost: h\r\n\r\n"), 400);
    expect_error(S("GET / HTTP 1.1\r\n\r\n"), 400);
    expect_error(S("GET http://h/ HTTP\x001.1\r\n\r\n"), 400);
    expect_error(S("CONNECT h:1 HTTQ/1.1\r\n\r\n"), 400);
    /* The end of the head. */
    expect_error(S("GET / HTTP/1.1\r\nFoo: a\r\n\rXGET / HTTP/1.1\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\n\rX"), 400);
    expect_error(S("POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\r"), 400);
    /* After an empty value. */
    expect_error(S("GET / HTTP/1.1\r\nFoo:\rXBar: b\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFoo:\r\r\n\r\n"), 400);
    expect_error(S("GET / HTTP/1.1\r\nFoo:  \rX bar\r\n\r\n"), 400);
    /* fuzz: crash-963709b2. The byte taken for the LF may be a colon, which a check of the
     * bytes before the value took for the header's own ("Foo:\r: bar" read as
     * "Foo: bar"); and http-parser begins a header line after it that no line feed
     * announces (here one past max_headers, malformed too). Every CR of a head is followed
     * by LF now. */
    expect_error(S("GET / HTTP/1.1\r\nFoo:\r: bar\r\n\r\n"), 400);
    gw_hp_limits four = DEFAULT_LIMITS;
    four.max_headers = 4;
    four.max_head = 200;
    expect_error_lim(&four, S("POST /\nA:\nB:\x8f\nA:\r\nB:\r:10\r0g"), 400);
    /* Chunked framing. */
    static const char te[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    static const char *bad[] = {
        "5\r\nhelloXX0\r\n\r\n",
        "5\r\nhello\rX0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello0\r\n\r\n",
        "5\rXhello\r\n0\r\n\r\n",
        "5;a\nb\r\nhello\r\n0\r\n\r\n",
        "5;a\x01\r\nhello\r\n0\r\n\r\n",
        "0\rX\r\n",
        "0;x\n\r\n\r\n",
        "0\r\n\rX",
        "0\r\nX-T:\rY\r\n\r\n",
        "0\r\nX-T: a\r\n\rXGET / HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        text t = {0};
        tx_put(&t, te, sizeof(te) - 1);
        tx_put(&t, bad[i], strlen(bad[i]));
        expect_error(t.s, t.len, 400);
        tx_free(&t);
    }
    /* A chunked body with a NUL in an extension. */
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;\0\r\nx\r\n0\r\n\r\n"), 400);
}

/* What is allowed: bare line feeds in the head and the trailers, spaces and extensions in
 * chunk lines, leading zeros, upper-case hex. */
static void test_framing_allowed(void **state)
{
    (void)state;
    char *t = same_for_every_split(NULL, S("GET /a HTTP/1.1\nHost: h\nX: y\n\n"
                                           "GET /b  HTTP/1.1\r\n\r\n"
                                           "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                           "005 ;  a=b\r\nhello\r\nA\r\n0123456789\r\n0000\r\n"
                                           "X: y\nZ: w\r\n\n"
                                           "POST /d HTTP/1.1\nTransfer-Encoding: chunked\n\n"
                                           "1\r\nx\r\n0\r\n\n"
                                           "GET /e HTTP/1.1\r\n\n"));
    assert_non_null(strstr(t, "path=\"/a\""));
    assert_non_null(strstr(t, "path=\"/b\""));
    assert_non_null(strstr(t, "body=\"hello0123456789\""));
    assert_non_null(strstr(t, "body=\"x\""));
    assert_non_null(strstr(t, "path=\"/e\""));
    assert_non_null(strstr(t, "\nOK busy=0\n"));
    free(t);
}

static void test_expect(void **state)
{
    rig *r = *state;
    feed_ok(r, S("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"
                 "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 0\r\n\r\n"
                 "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"));
    assert_int_equal(r->ngot, 3);
    assert_int_equal(r->got[0]->expect_continue, 1);
    assert_string_equal(body(r->got[0]), "ok");
    assert_int_equal(r->got[1]->expect_continue, 1);
    assert_int_equal(r->got[2]->expect_continue, 0); /* HTTP/1.0 has no 100 Continue */
    expect_error(S("POST / HTTP/1.1\r\nExpect: something-else\r\nContent-Length: 0\r\n\r\n"), 417);
    expect_error(S("POST / HTTP/1.1\r\nExpect: 100-continue, x\r\n\r\n"), 417);
    /* Over the body limit: 413 before the 100 Continue. */
    gw_hp_limits lim = DEFAULT_LIMITS;
    lim.max_body = 1;
    expect_error_lim(&lim, S("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"),
                     413);
}

static void test_upgrade_websocket(void **state)
{
    rig *r = *state;
    static const char head[] = "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n";
    char in[512];
    memcpy(in, head, sizeof(head) - 1);
    memcpy(in + sizeof(head) - 1, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    size_t len = sizeof(head) - 1 + 11;
    r->head_rc[0] = GW_HP_BODY_DROP;
    size_t used = 0;
    assert_int_equal(feed(r, in, len, &used), GW_HP_UPGRADE);
    assert_int_equal(used, sizeof(head) - 1);
    assert_int_equal(r->ngot, 1);
    assert_int_equal(r->got[0]->upgrade, 1);
    assert_string_equal(path(r->got[0]), "/chat");
    assert_string_equal(header(r->got[0], "sec-websocket-version"), "13");
    assert_false(gw_hp_busy(&r->hp));
    /* The same cut anywhere. */
    char *t = same_for_every_split(NULL, in, len);
    char want[32];
    snprintf(want, sizeof(want), "UPGRADE at %zu\n", sizeof(head) - 1);
    assert_non_null(strstr(t, want));
    free(t);
}

/* A WebSocket handshake with a body: the upgrade comes after the body, whatever the cut. */
static void test_upgrade_with_body(void **state)
{
    (void)state;
    static const char in[] = "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                             "Content-Length: 4\r\n\r\nbodyFRAMES";
    char *t = same_for_every_split(NULL, S(in));
    char want[32];
    snprintf(want, sizeof(want), "UPGRADE at %zu\n", sizeof(in) - 1 - 6);
    assert_non_null(strstr(t, want));
    assert_non_null(strstr(t, "up=1"));
    free(t);
}

static void test_upgrade_h2c_ignored(void **state)
{
    rig *r = *state;
    feed_ok(r, S("GET /a HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
                 "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
                 "GET /c HTTP/1.1\r\nUpgrade: websocket\r\n\r\n" /* no Connection: upgrade */
                 "GET /d HTTP/1.1\r\n"));
    assert_int_equal(r->ngot, 3);
    assert_int_equal(r->got[0]->upgrade, 0);
    assert_string_equal(path(r->got[0]), "/a");
    assert_string_equal(path(r->got[1]), "/b");
    assert_string_equal(path(r->got[2]), "/c");
    assert_int_equal(r->got[2]->upgrade, 0);
    assert_true(gw_hp_busy(&r->hp));
    feed_ok(r, S("\r\n"));
    assert_int_equal(r->ngot, 4);
    assert_string_equal(path(r->got[3]), "/d");
}

/* An h2c request with a body that arrives in pieces: the body is still its body. */
static void test_upgrade_h2c_body_split(void **state)
{
    rig *r = *state;
    feed_ok(r, S("POST /a HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
                 "Content-Length: 11\r\n\r\nhello"));
    assert_int_equal(r->ngot, 0);
    assert_true(gw_hp_in_body(&r->hp));
    feed_ok(r, S(" worl"));
    feed_ok(r, S("dGET /b HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 2);
    assert_string_equal(body(r->got[0]), "hello world");
    assert_string_equal(path(r->got[1]), "/b");
}

/* A pause right after an ignored upgrade: what follows is still parsed as HTTP, and a
 * request that then arrives in pieces is not lost. */
static void test_upgrade_h2c_then_pause(void **state)
{
    rig *r = *state;
    static const char first[] = "GET /a HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n";
    r->req_rc[0] = 1;
    size_t used = 0;
    assert_int_equal(feed(r, S("GET /a HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n"
                               "GET /b HT"), &used),
                     GW_HP_PAUSED);
    assert_int_equal(used, sizeof(first) - 1);
    assert_int_equal(r->ngot, 1);
    gw_hp_resume(&r->hp);
    feed_ok(r, S("GET /b HT"));
    assert_true(gw_hp_busy(&r->hp));
    feed_ok(r, S("TP/1.1\r\nHost: h\r\n"));
    feed_ok(r, S("\r\n"));
    assert_int_equal(r->ngot, 2);
    assert_string_equal(path(r->got[1]), "/b");
    assert_string_equal(header(r->got[1], "host"), "h");
}

/* A pause asked for by the handshake's on_request does not hide the upgrade. */
static void test_upgrade_websocket_pause(void **state)
{
    rig *r = *state;
    static const char head[] = "GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
    r->req_rc[0] = 1;
    size_t used = 0;
    assert_int_equal(feed(r, S("GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
                               "\r\n\x81\x80"), &used),
                     GW_HP_UPGRADE);
    assert_int_equal(used, sizeof(head) - 1);
    assert_int_equal(r->ngot, 1);
}

static void test_pause_resume(void **state)
{
    rig *r = *state;
    static const char in[] = "POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\none"
                             "GET /2 HTTP/1.1\r\n\r\n"
                             "GET /3 HTTP/1.1\r\n\r\n";
    size_t first = strlen("POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\none");
    r->req_rc[0] = 1;
    r->req_rc[1] = 1;
    size_t used = 0;
    assert_int_equal(feed(r, S(in), &used), GW_HP_PAUSED);
    assert_int_equal(used, first);
    assert_int_equal(r->ngot, 1);
    assert_false(gw_hp_busy(&r->hp));
    /* Paused, it takes nothing. */
    size_t again = 99;
    assert_int_equal(feed(r, in + used, sizeof(in) - 1 - used, &again), GW_HP_PAUSED);
    assert_int_equal(again, 0);
    assert_int_equal(r->ngot, 1);
    gw_hp_resume(&r->hp);
    size_t used2 = 0;
    assert_int_equal(feed(r, in + used, sizeof(in) - 1 - used, &used2), GW_HP_PAUSED);
    assert_int_equal(used2, strlen("GET /2 HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 2);
    gw_hp_resume(&r->hp);
    feed_ok(r, in + used + used2, sizeof(in) - 1 - used - used2);
    assert_int_equal(r->ngot, 3);
    assert_string_equal(body(r->got[0]), "one");
    assert_string_equal(path(r->got[1]), "/2");
    assert_string_equal(path(r->got[2]), "/3");
    /* A pause on the last request of a feed. */
    r->req_rc[3] = 1;
    assert_int_equal(feed(r, S("GET /4 HTTP/1.1\r\n\r\n"), &used), GW_HP_PAUSED);
    assert_int_equal(used, strlen("GET /4 HTTP/1.1\r\n\r\n"));
    gw_hp_resume(&r->hp);
    feed_ok(r, S("GET /5 HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 5);
}

static void test_body_drop(void **state)
{
    rig *r = *state;
    r->head_rc[0] = GW_HP_BODY_DROP;
    r->head_rc[1] = GW_HP_BODY_DROP;
    feed_ok(r, S("POST /drop HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"
                 "POST /chunks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                 "POST /keep HTTP/1.1\r\nContent-Length: 4\r\n\r\nkept"));
    assert_int_equal(r->ngot, 3);
    assert_int_equal(r->got[0]->body_len, 0);
    assert_string_equal(body(r->got[0]), "");
    assert_int_equal(r->got[1]->body_len, 0);
    assert_string_equal(body(r->got[1]), "");
    assert_string_equal(path(r->got[2]), "/keep");
    assert_string_equal(body(r->got[2]), "kept");
}

static void test_callbacks_stop(void **state)
{
    rig *r = *state;
    r->head_rc[0] = -1;
    size_t used;
    assert_int_equal(feed(r, S("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n"),
                          &used),
                     GW_HP_STOPPED);
    assert_int_equal(r->nheads, 1);
    assert_int_equal(r->ngot, 0);
    /* The request was released by the parser (the pool's leak check is valgrind's). */
    assert_null(r->hp.req);
    assert_false(gw_hp_busy(&r->hp));

    rig s;
    rig_init(&s);
    s.req_rc[1] = -1;
    assert_int_equal(feed(&s, S("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"),
                          &used),
                     GW_HP_STOPPED);
    assert_int_equal(s.ngot, 2);
    rig_free(&s);
}

static void test_out_of_memory(void **state)
{
    rig *r = *state;
    r->fail_new_at = 2;
    size_t used;
    assert_int_equal(feed(r, S("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"), &used), GW_HP_ERROR);
    assert_int_equal(r->hp.error_status, 503);
    assert_int_equal(r->ngot, 1);
}

static void test_reset(void **state)
{
    rig *r = *state;
    feed_ok(r, S("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nhalf"));
    assert_true(gw_hp_in_body(&r->hp));
    gw_hp_reset(&r->hp); /* a timeout: the request in progress goes */
    assert_false(gw_hp_busy(&r->hp));
    assert_null(r->hp.req);
    feed_ok(r, S("GET /again HTTP/1.1\r\n\r\n"));
    assert_int_equal(r->ngot, 1);
    assert_string_equal(path(r->got[0]), "/again");
    /* After an error, reset makes the parser usable again. */
    assert_int_equal(feed(r, S("GET / HTTP/1.1\r\nFoo bar\r\n\r\n"), NULL), GW_HP_ERROR);
    gw_hp_reset(&r->hp);
    assert_int_equal(r->hp.error_status, 0);
    feed_ok(r, S("GET /more HTTP/1.1\r\nFoo: a\r\n\r\n"));
    assert_int_equal(r->ngot, 2);
}

/* Many requests through one parser and pool: the buffers are recycled, and every string
 * is still in place. */
static void test_many_requests_recycled(void **state)
{
    rig *r = *state;
    text t = {0};
    for (int i = 0; i < 40; i++)
        tx_printf(&t, "POST /r%d?i=%d HTTP/1.1\r\nX-I: %d\r\nContent-Length: %d\r\n\r\n%.*s", i, i, i,
                  i % 7, i % 7, "abcdefg");
    for (int round = 0; round < 3; round++) {
        feed_ok(r, t.s, t.len);
        assert_int_equal(r->ngot, 40);
        for (int i = 0; i < 40; i++) {
            char want[16];
            snprintf(want, sizeof(want), "/r%d", i);
            assert_string_equal(path(r->got[i]), want);
            assert_int_equal(r->got[i]->body_len, (size_t)(i % 7));
            gw_request_release(r->got[i]);
        }
        r->ngot = 0;
        memset(r->req_rc, 0, sizeof(r->req_rc));
    }
    tx_free(&t);
}

/*
 * Regression: a request whose strings fill its buffer to the last byte and that has no
 * body. The body's terminating NUL was written without room being made for it: one byte
 * past the buffer (ASan: heap-buffer-overflow in on_message_complete; the seed
 * fuzz/corpus/http/body-nul-fits hits it too).
 */
static void test_body_nul_fits(void **state)
{
    rig *r = *state;
    /* The buffer starts at 512 bytes; try every query length around it. */
    for (int n = 150; n < 600; n++) {
        text t = {0};
        tx_printf(&t, "GET /?a=");
        for (int i = 0; i < n; i++)
            tx_put(&t, "b", 1);
        tx_printf(&t, " HTTP/1.1\r\n\r\n");
        feed_ok(r, t.s, t.len);
        tx_free(&t);
        assert_int_equal(r->ngot, 1);
        assert_int_equal(r->got[0]->nquery, 1);
        assert_int_equal(r->got[0]->body_len, 0);
        gw_request_release(r->got[0]);
        r->ngot = 0;
    }
}

/*
 * Regressions found by fuzz/fuzz_http.c: the status must not depend on how the bytes were
 * cut into feeds. http-parser reports a string only at its end or at the end of the bytes
 * it was given, and finds its own errors first: a request over a limit and malformed
 * further on was 400 in one feed and 414 or 431 in small ones. The first in the stream
 * decides now.
 */
static void test_limit_before_malformed_byte(void **state)
{
    (void)state;
    gw_hp_limits lim = DEFAULT_LIMITS;
    lim.max_url = 24;
    /* fuzz: crash-11e417ae, a target past the limit with a control byte after it */
    text t = {0};
    tx_printf(&t, "POST /01");
    for (int i = 0; i < 80; i++)
        tx_put(&t, "\xff", 1);
    tx_put(&t, "2345678\x19 HTTP/1.1\r\n\r\n", 22);
    expect_error_lim(&lim, t.s, t.len, 414);
    /* The malformed byte first: 400. */
    expect_error_lim(&lim, S("GET /0123\x19" "456789012345678901234567890 HTTP/1.1\r\n\r\n"), 400);
    tx_free(&t);

    /* fuzz: crash-d47b8c09, a header line past max_headers that is malformed ("1 7" and
     * no colon): the count is passed at its first byte. */
    lim = DEFAULT_LIMITS;
    lim.max_headers = 4;
    lim.max_head = 200;
    expect_error_lim(&lim, S("POST /0123456789 HTTP/1.2\r\nA: 1\r\nB: 2\r\nC: 3\r\n"
                             "Content-Length:0\r\n1 7\n\r123456789abcdefg"), 431);
    expect_error_lim(&lim, S("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE\x01: 5\r\n\r\n"), 431);
    expect_error_lim(&lim, S("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD\x01: 4\r\nE: 5\r\n\r\n"), 400);

    /* A header value past max_head with a control character after the limit (431) or
     * before it (400); a name likewise with white space. */
    lim = DEFAULT_LIMITS;
    lim.max_head = 64;
    t.len = 0;
    tx_printf(&t, "GET / HTTP/1.1\r\nX-Long: ");
    for (int i = 0; i < 70; i++)
        tx_put(&t, "v", 1);
    tx_printf(&t, "\x01\r\n\r\n");
    expect_error_lim(&lim, t.s, t.len, 431);
    t.len = 0;
    tx_printf(&t, "GET / HTTP/1.1\r\nX-Long: vv\x01");
    for (int i = 0; i < 70; i++)
        tx_put(&t, "v", 1);
    tx_printf(&t, "\r\n\r\n");
    expect_error_lim(&lim, t.s, t.len, 400);
    t.len = 0;
    tx_printf(&t, "GET / HTTP/1.1\r\nX-");
    for (int i = 0; i < 70; i++)
        tx_put(&t, "n", 1);
    tx_printf(&t, " x: v\r\n\r\n");
    expect_error_lim(&lim, t.s, t.len, 431);
    t.len = 0;
    tx_printf(&t, "GET / HTTP/1.1\r\nX- ");
    for (int i = 0; i < 70; i++)
        tx_put(&t, "n", 1);
    tx_printf(&t, ": v\r\n\r\n");
    expect_error_lim(&lim, t.s, t.len, 400);
    /* http-parser's own error in a long name (a byte that is no token char). */
    t.len = 0;
    tx_printf(&t, "GET / HTTP/1.1\r\nX-");
    for (int i = 0; i < 70; i++)
        tx_put(&t, "n", 1);
    tx_printf(&t, "\"x: v\r\n\r\n");
    expect_error_lim(&lim, t.s, t.len, 431);
    tx_free(&t);
}

/* fuzz: crash-ac042bb9. http-parser 2.9.4 takes any byte from 0x80 up for the hex digit 0
 * in a chunk size (its unhex[] table spells out 128 of 256 entries): "1\xff" was a chunk
 * of 16 bytes, "\xff\xff" "89" one of 0x89. A proxy stops at the byte; so must we. */
static void test_chunk_size_high_bytes(void **state)
{
    (void)state;
    expect_error(S("POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5;name=value\r\nhello\r\n\xff\xff\xff\xc3\xff" "89\r\n0;last=1\r\n\r\n"), 400);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "1\xff\r\n0123456789abcdef\r\n0\r\n\r\n"), 400);
    expect_error(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "\x80\r\n\r\n"), 400);
    /* In an extension such bytes are fine. */
    char *t = same_for_every_split(NULL, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                           "1;n=\xff\r\nx\r\n0\r\n\r\n"));
    assert_non_null(strstr(t, "body=\"x\"\nOK busy=0"));
    free(t);
}

/*
 * fuzz: crash-1aba8de0, heap-use-after-free. The host of an absolute-form target is copied
 * from the target, which is in the buffer the copy grows: realloc() freed the target before
 * memcpy() read it. Every target length around the buffer's sizes (512, 1024 ...).
 */
static void test_absolute_form_host_copy_grows_buffer(void **state)
{
    rig *r = *state;
    for (int n = 400; n < 1100; n += 3) {
        text t = {0};
        tx_printf(&t, "GET http://example.com:8080/");
        for (int i = 0; i < n; i++)
            tx_put(&t, "p", 1);
        tx_printf(&t, "?a=1 HTTP/1.1\r\nHost: other\r\n\r\n");
        feed_ok(r, t.s, t.len);
        tx_free(&t);
        assert_int_equal(r->ngot, 1);
        gw_request *req = r->got[0];
        assert_string_equal(gw_request_str(req, req->host_off), "example.com");
        assert_int_equal(req->path_len, (uint32_t)n + 1);
        assert_query(req, 0, "a", "1");
        gw_request_release(req);
        r->ngot = 0;
    }
    /* And the input the fuzzer found, whole and cut. */
    static const char found[] =
        "GET http://example/org1%2f80/hnked??a=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        "+bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        " HTTP/1.1\r\nHost: other\r\n\r\n";
    char *t = same_for_every_split(NULL, S(found));
    assert_non_null(strstr(t, "host=\"example\""));
    free(t);
}

/* fuzz: crash-441b23e3. A Transfer-Encoding trailer: Debian's http-parser clears its
 * "chunked" flag for it, in the middle of the chunked body; the adapter keeps what the
 * head said. The body and the next request are unaffected. */
static void test_transfer_encoding_trailer(void **state)
{
    (void)state;
    char *t = same_for_every_split(NULL, S("POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                           "5;name=vue\r\nhello\r\n0;1\r\n"
                                           "Transfer-Encoding: gzip\r\nContent-Length: 7\r\n\r\n"
                                           "GET /next HTTP/1.1\r\n\r\n"));
    assert_non_null(strstr(t, "body=\"hello\""));
    assert_non_null(strstr(t, "path=\"/next\""));
    assert_non_null(strstr(t, "\nOK busy=0\n"));
    free(t);
    /* The input the fuzzer found: a trailer section ended by CR LF LF, then bytes that
     * are no request. */
    t = same_for_every_split(NULL, S("POST /uc\x97unkedp HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "5;name=vue\r\nhello\r\n0;1\r\nXContent-Length: ET /up HTTP/1.1\r\n"
                                     "Transfer-Encoding: c\xe8unked\r\n\n.1\r\n\r\n"));
    assert_non_null(strstr(t, "body=\"hello\"\nERROR 400\n"));
    free(t);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_percent_decode),
        T(test_request_buffer_and_pool),
        T(test_simple_get),
        T(test_versions_and_keep_alive),
        T(test_methods),
        T(test_headers),
        T(test_query_decoding),
        T(test_request_pack_round_trip),
        T(test_query_stray_percent_keeps_part),
        T(test_query_long_piece),
        T(test_path_decoding),
        T(test_absolute_form),
        T(test_connect),
        T(test_connect_bad_authority),
        T(test_pipelined_posts),
        T(test_byte_by_byte),
        T(test_chunked),
        T(test_chunked_bad_framing),
        T(test_body_limit_content_length),
        T(test_body_limit_chunked),
        T(test_head_limit),
        T(test_header_count_limit),
        T(test_url_limit),
        T(test_obs_fold),
        T(test_control_characters),
        T(test_header_line_shape),
        T(test_smuggling),
        T(test_transfer_codings),
        T(test_methods_and_versions_refused),
        T(test_unknown_method_token),
        T(test_known_method_tokens_split),
        T(test_unknown_method_with_body),
        T(test_unknown_method_pipelined),
        T(test_method_token_too_long),
        T(test_method_not_a_token),
        T(test_unknown_method_out_of_memory),
        T(test_unknown_method_pause_and_reset),
        T(test_lax_framing_refused),
        T(test_framing_allowed),
        T(test_expect),
        T(test_upgrade_websocket),
        T(test_upgrade_with_body),
        T(test_upgrade_h2c_ignored),
        T(test_upgrade_h2c_body_split),
        T(test_upgrade_h2c_then_pause),
        T(test_upgrade_websocket_pause),
        T(test_pause_resume),
        T(test_body_drop),
        T(test_callbacks_stop),
        T(test_out_of_memory),
        T(test_reset),
        T(test_many_requests_recycled),
        T(test_body_nul_fits),
        T(test_limit_before_malformed_byte),
        T(test_chunk_size_high_bytes),
        T(test_absolute_form_host_copy_grows_buffer),
        T(test_transfer_encoding_trailer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
