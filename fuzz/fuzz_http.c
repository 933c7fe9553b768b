/*
 * libFuzzer target for the HTTP/1.1 parser adapter (gateway/httpparse.c) and request
 * assembly (gateway/request.c).
 *
 * Input: three control bytes, then the bytes of one connection.
 *   byte 0: how the stream is cut into feeds for the second run (see cut_next()).
 *   byte 1: the limits (see LLVMFuzzerTestOneInput), small enough to be hit.
 *   byte 2: what the callbacks do (B_*): drop bodies, pause after requests, stop, run out
 *           of memory.
 *
 * The stream is parsed twice: as one feed, and cut into many. Each feed is a heap copy of
 * exactly its bytes, so reading past it is an ASan error. Both runs must hand over the
 * same requests and end the same way (the adapter promises that the cut does not matter:
 * a method token cut across feeds too). Every request is checked on_head and on_request: each string inside the buffer
 * and NUL-terminated. After GW_HP_ERROR the status must be one the server may answer
 * with. Every request goes back to a pool that is freed at the end, so LeakSanitizer sees
 * a request the adapter loses.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpparse.h"
#include "request.h"
#include "router.h"
#include "fuzz_check.h"


/* ---- a transcript of what a run saw ---------------------------------------------------- */

typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void put(text *t, const void *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2 + 256;
        char *d = realloc(t->s, cap);
        CHECK(d);
        t->s = d;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void put_int(text *t, const char *label, long long v)
{
    char b[64];
    int n = snprintf(b, sizeof(b), " %s=%lld", label, v);
    put(t, b, (size_t)n);
}

static void put_str(text *t, const char *label, const char *s, size_t n)
{
    put_int(t, label, (long long)n);
    put(t, ":", 1);
    put(t, s, n);
}

/* ---- checks on a request ---------------------------------------------------------------- */

static void check_str(const gw_request *req, uint32_t off, size_t len)
{
    CHECK((size_t)off + len < req->buf_len); /* inside, with room for its NUL */
    CHECK(req->buf[off + len] == '\0');
}

static void check_request(const gw_request *req, int complete)
{
    CHECK(req->buf != NULL);
    CHECK(req->buf_len <= req->buf_cap);
    CHECK(req->method >= -1 && req->method < GW_METHOD_COUNT);
    CHECK(req->version == 10 || req->version == 11);
    CHECK(req->refuse == 0 || req->refuse == 400);
    CHECK(req->keep_alive == 0 || req->keep_alive == 1);
    check_str(req, req->target_off, req->target_len);
    CHECK(req->target_len > 0);
    check_str(req, req->path_off, req->path_len);
    if (req->host_len)
        check_str(req, req->host_off, req->host_len);
    CHECK(req->npairs <= req->pairs_cap);
    CHECK(req->header_at + req->nheaders <= req->npairs);
    CHECK(req->query_at + req->nquery <= req->npairs);
    for (uint32_t i = 0; i < req->npairs; i++) {
        check_str(req, req->pairs[i].name_off, req->pairs[i].name_len);
        check_str(req, req->pairs[i].value_off, req->pairs[i].value_len);
    }
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const gw_pair *p = &req->pairs[req->header_at + i];
        CHECK(p->name_len > 0);
        for (uint32_t k = 0; k < p->name_len; k++) {
            char c = req->buf[p->name_off + k];
            CHECK(!(c >= 'A' && c <= 'Z')); /* lower-cased */
            CHECK(c != ' ' && c != '\t' && c != ':');
        }
        for (uint32_t k = 0; k < p->value_len; k++) {
            unsigned char c = (unsigned char)req->buf[p->value_off + k];
            CHECK(c >= 0x20 || c == '\t');
            CHECK(c != 0x7f);
        }
        if (p->value_len) { /* trimmed */
            char last = req->buf[p->value_off + p->value_len - 1];
            CHECK(last != ' ' && last != '\t');
        }
    }
    if (!req->refuse)
        CHECK(memchr(req->buf + req->path_off, '\0', req->path_len) == NULL);
    if (complete)
        check_str(req, req->body_off, req->body_len);
}

static void describe(text *t, const gw_request *req)
{
    put(t, "req", 3);
    put_int(t, "m", req->method);
    put_int(t, "v", req->version);
    put_int(t, "ka", req->keep_alive);
    put_int(t, "ex", req->expect_continue);
    put_int(t, "up", req->upgrade);
    put_int(t, "refuse", req->refuse);
    put_str(t, "target", req->buf + req->target_off, req->target_len);
    put_str(t, "path", req->buf + req->path_off, req->path_len);
    put_str(t, "host", req->buf + req->host_off, req->host_len);
    for (uint32_t i = 0; i < req->npairs; i++) {
        const gw_pair *p = &req->pairs[i];
        put_str(t, i < req->query_at ? "h" : "q", req->buf + p->name_off, p->name_len);
        put_str(t, "", req->buf + p->value_off, p->value_len);
    }
    put_str(t, "body", req->buf + req->body_off, req->body_len);
    put(t, "\n", 1);
}

/* ---- the callbacks ---------------------------------------------------------------------- */

typedef struct run {
    gw_pool pool;
    gw_hp hp;
    text log;
    unsigned behaviour; /* bits 4-7 of the control byte */
    int nnew, nheads, nreqs;
    int oom;            /* new_request returned NULL */
} run;

enum {
    B_DROP = 1,  /* on_head drops the bodies of odd-numbered requests */
    B_PAUSE = 2, /* on_request pauses after every other request */
    B_STOP = 4,  /* on_head stops at the 4th request, on_request at the 6th */
    B_OOM = 8,   /* new_request fails for the 3rd request */
};

static gw_request *cb_new_request(void *ctx)
{
    run *r = ctx;
    r->nnew++;
    if ((r->behaviour & B_OOM) && r->nnew == 3) {
        r->oom = 1;
        return NULL;
    }
    gw_request *req = gw_pool_take(&r->pool);
    CHECK(req);
    return req;
}

static int cb_on_head(void *ctx, gw_request *req)
{
    run *r = ctx;
    check_request(req, 0);
    int n = r->nheads++;
    if ((r->behaviour & B_STOP) && n == 3) {
        put(&r->log, "stop-head\n", 10);
        return -1;
    }
    if ((r->behaviour & B_DROP) && (n & 1))
        return GW_HP_BODY_DROP;
    return GW_HP_BODY_KEEP;
}

static int cb_on_request(void *ctx, gw_request *req)
{
    run *r = ctx;
    check_request(req, 1);
    int n = r->nreqs++;
    if ((r->behaviour & B_DROP) && (n & 1))
        CHECK(req->body_len == 0);
    describe(&r->log, req);
    gw_request_release(req); /* back to the pool at once, as the server does */
    if ((r->behaviour & B_STOP) && n == 5) {
        put(&r->log, "stop-request\n", 13);
        return -1;
    }
    if ((r->behaviour & B_PAUSE) && !(n & 1))
        return 1;
    return 0;
}

static const gw_hp_callbacks CALLBACKS = {cb_new_request, cb_on_head, cb_on_request};

/* ---- cutting the stream ------------------------------------------------------------------- */

typedef struct cutter {
    unsigned pattern;
    uint32_t rng;
    const uint8_t *data;
    size_t len;
} cutter;

/* The length of the next feed starting at at (at least 1). */
static size_t cut_next(cutter *c, size_t at)
{
    size_t left = c->len - at;
    size_t n;
    switch (c->pattern & 7) {
    case 0: /* one byte at a time */
        n = 1;
        break;
    case 1: /* a fixed size, 2..33 */
        n = 2 + (c->pattern >> 3);
        break;
    case 2:
    case 3: /* sizes from a generator seeded by the control byte */
        c->rng = c->rng * 1103515245u + 12345u;
        n = 1 + ((c->rng >> 16) % (c->pattern & 1 ? 7u : 64u));
        break;
    case 4: /* up to and including each line feed */
    {
        const uint8_t *lf = memchr(c->data + at, '\n', left);
        n = lf ? (size_t)(lf - (c->data + at)) + 1 : left;
        break;
    }
    case 5: /* right before each CR and each LF */
    {
        n = 1;
        while (n < left && c->data[at + n] != '\r' && c->data[at + n] != '\n')
            n++;
        break;
    }
    case 6: /* two feeds, cut at a point the control byte picks */
        n = at == 0 ? (c->len * (c->pattern >> 3)) / 32 : left;
        if (n == 0)
            n = 1;
        break;
    default: /* one byte, then the rest, alternately */
        n = (at & 1) ? left : 1;
        break;
    }
    return n < left ? n : left;
}

/* ---- one run ------------------------------------------------------------------------------ */

static const int ALLOWED[] = {400, 408, 413, 414, 417, 431, 501, 505};

static int allowed_status(int s, int oom)
{
    for (size_t i = 0; i < sizeof(ALLOWED) / sizeof(ALLOWED[0]); i++)
        if (s == ALLOWED[i])
            return 1;
    return s == 503 && oom;
}

/* Feeds the stream (cut by c, or whole when c is NULL); returns the transcript. */
static text parse(const uint8_t *data, size_t len, const gw_hp_limits *lim, unsigned behaviour,
                   cutter *c)
{
    run *r = calloc(1, sizeof(*r));
    CHECK(r);
    r->behaviour = behaviour;
    gw_hp_init(&r->hp, lim, &CALLBACKS, r);
    size_t at = 0;
    size_t pending = 0; /* bytes of the current feed not consumed yet (after a pause) */
    char *piece = NULL;
    size_t piece_len = 0, piece_off = 0;
    int result = GW_HP_OK;
    int stuck = 0;
    while (at < len) {
        if (!pending) {
            size_t n = c ? cut_next(c, at) : len - at;
            free(piece);
            piece = malloc(n); /* exactly the feed: reading past it is an ASan error */
            CHECK(piece);
            memcpy(piece, data + at, n);
            piece_len = n;
            piece_off = 0;
            pending = n;
        }
        size_t used = (size_t)-1;
        int rc = gw_hp_feed(&r->hp, piece + piece_off, pending, &used);
        CHECK(used <= pending);
        CHECK(rc >= GW_HP_OK && rc <= GW_HP_STOPPED);
        at += used;
        piece_off += used;
        pending -= used;
        if (rc == GW_HP_OK) {
            CHECK(pending == 0);
            stuck = 0;
            continue;
        }
        if (rc == GW_HP_PAUSED) {
            /* Progress: a pause follows a request, so it cannot come twice in a row
             * without a byte parsed. */
            stuck = used ? 0 : stuck + 1;
            CHECK(stuck < 2);
            CHECK(!gw_hp_busy(&r->hp));
            gw_hp_resume(&r->hp);
            continue;
        }
        result = rc;
        break;
    }
    CHECK(piece_len >= piece_off);
    free(piece);

    text *t = &r->log;
    switch (result) {
    case GW_HP_OK:
        put(t, "OK", 2);
        put_int(t, "busy", gw_hp_busy(&r->hp));
        put_int(t, "in_body", gw_hp_in_body(&r->hp));
        break;
    case GW_HP_UPGRADE:
        put(t, "UPGRADE", 7);
        put_int(t, "at", (long long)at);
        CHECK(!gw_hp_busy(&r->hp));
        break;
    case GW_HP_STOPPED:
        put(t, "STOPPED", 7);
        break;
    case GW_HP_ERROR:
        if (!allowed_status(r->hp.error_status, r->oom)) {
            fprintf(stderr, "status %d (%s)\n", r->hp.error_status,
                    r->hp.error_reason ? r->hp.error_reason : "no reason");
            CHECK(!"an error status the server may not answer with");
        }
        CHECK(r->hp.error_reason != NULL);
        /* The adapter's own framing check and http-parser must agree on where things
         * are; "out of step" means they did not. */
        CHECK(strstr(r->hp.error_reason, "out of step") == NULL);
        /* The adapter reads every method token before http-parser does (a token it does
         * not know, it is shown as another): http-parser never refuses one. */
        CHECK(strcmp(r->hp.error_reason, "invalid HTTP method") != 0);
        put(t, "ERROR", 5);
        put_int(t, "status", r->hp.error_status);
        break;
    }
    put(t, "\n", 1);
    /* What is left (a request in progress, one held after an error) goes back. */
    gw_hp_reset(&r->hp);
    CHECK(!gw_hp_busy(&r->hp));
    gw_pool_free(&r->pool);
    text out = *t;
    free(r);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned cut = data[0], lims = data[1], behaviour = data[2];
    data += 3;
    size -= 3;

    /* bits 0-1: head bytes; 2: header lines; 3: target bytes; 4-5: body bytes. */
    static const size_t heads[4] = {64, 200, 1024, 16384};
    static const size_t bodies[4] = {0, 16, 100, 1000000};
    gw_hp_limits lim = {
        .max_head = heads[lims & 3],
        .max_headers = (lims & 4) ? 4 : 100,
        .max_url = (lims & 8) ? 24 : 8192,
        .max_body = bodies[(lims >> 4) & 3],
    };

    text whole = parse(data, size, &lim, behaviour, NULL);
    cutter c = {cut, cut * 2654435761u + 1, data, size};
    text cut_up = parse(data, size, &lim, behaviour, &c);
    /* Out of memory comes from the callbacks' count of requests: the same in both. */
    if (whole.len != cut_up.len || memcmp(whole.s, cut_up.s, whole.len)) {
        fprintf(stderr, "one feed:\n%.*s\ncut (pattern %u):\n%.*s\n", (int)whole.len, whole.s, cut,
                (int)cut_up.len, cut_up.s);
        CHECK(!"the cut into feeds changed the result");
    }
    free(whole.s);
    free(cut_up.s);
    return 0;
}
