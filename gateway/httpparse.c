/*
 * The HTTP/1.1 parser adapter. See httpparse.h.
 *
 * http-parser reports the pieces of a request through callbacks whose data points into
 * the buffer being fed; a piece may be split across feeds. Each string is therefore
 * grown in place at the end of the request's buffer and terminated when the next kind
 * of piece begins.
 */
#include "httpparse.h"

#include <http_parser.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router.h"

_Static_assert(sizeof(http_parser) <= sizeof(((gw_hp *)0)->parser), "gw_hp has room for http_parser");

#define PARSER(hp) ((http_parser *)(void *)(hp)->parser.bytes)

/* Which string is growing at the end of the buffer. */
enum { GROW_NONE, GROW_URL, GROW_NAME, GROW_VALUE };

/* Per-feed state, reachable from the callbacks through parser.data. */
typedef struct feed {
    gw_hp *hp;
    const char *start; /* the buffer being fed */
    const char *end;
    char prev;         /* the byte before it (the last of the previous feed) */
    int paused;
} feed;


static int fail(gw_hp *hp, int status, const char *reason)
{
    if (!hp->error_status) {
        hp->error_status = status;
        hp->error_reason = reason;
    }
    return -1;
}

static int grow(gw_request *req, const char *at, size_t len)
{
    if (gw_request_reserve(req, len + 1))
        return -ENOMEM;
    memcpy(req->buf + req->buf_len, at, len);
    req->buf_len += len;
    return 0;
}

/* Ends the string growing since start: NUL-terminates it; returns its length. */
static uint32_t finish(gw_request *req, uint32_t start)
{
    uint32_t len = (uint32_t)(req->buf_len - start);
    req->buf[req->buf_len++] = '\0';
    return len;
}

static int hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long gw_hp_percent_decode(const char *s, size_t len, char *out, int plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int h = hex((unsigned char)s[i + 1]), l = hex((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h * 16 + l);
            if (!c)
                return -2;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (!c) {
            return -2;
        }
        out[o++] = c;
    }
    return (long)o;
}

static int method_of(unsigned m)
{
    switch (m) {
    case HTTP_GET: return GW_METHOD_GET;
    case HTTP_POST: return GW_METHOD_POST;
    case HTTP_PUT: return GW_METHOD_PUT;
    case HTTP_DELETE: return GW_METHOD_DELETE;
    case HTTP_PATCH: return GW_METHOD_PATCH;
    case HTTP_HEAD: return GW_METHOD_HEAD;
    case HTTP_OPTIONS: return GW_METHOD_OPTIONS;
    case HTTP_CONNECT: return GW_METHOD_CONNECT;
    case HTTP_TRACE: return GW_METHOD_TRACE;
    default: return -1;
    }
}

/* ---- callbacks ------------------------------------------------------------------- */

static gw_hp *hp_of(http_parser *p)
{
    return ((feed *)p->data)->hp;
}

static int on_message_begin(http_parser *p)
{
    gw_hp *hp = hp_of(p);
    gw_request *req = hp->cb->new_request(hp->ctx);
    if (!req)
        return fail(hp, 503, "out of memory");
    hp->req = req;
    hp->head_bytes = 0;
    hp->body_seen = 0;
    hp->in_body = 0;
    hp->drop_body = 0;
    hp->in_message = 1;
    hp->grow.what = GROW_NONE;
    return 0;
}

/* Ends the header whose value was growing: trims its trailing white space, adds the pair. */
static int end_header(gw_hp *hp)
{
    gw_request *req = hp->req;
    gw_hp_grow *g = &hp->grow;
    uint32_t len = (uint32_t)(req->buf_len - g->start);
    while (len && (req->buf[g->start + len - 1] == ' ' || req->buf[g->start + len - 1] == '\t'))
        len--;
    req->buf_len = g->start + len;
    finish(req, g->start);
    gw_pair *pair = gw_request_new_pair(req); /* its strings are in place already */
    if (!pair)
        return fail(hp, 503, "out of memory");
    pair->name_off = g->name_off;
    pair->name_len = g->name_len;
    pair->value_off = g->start;
    pair->value_len = len;
    req->nheaders++;
    g->what = GROW_NONE;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    gw_hp *hp = hp_of(p);
    gw_request *req = hp->req;
    gw_hp_grow *g = &hp->grow;
    if (g->what != GROW_URL) {
        g->what = GROW_URL;
        g->start = (uint32_t)req->buf_len;
    }
    hp->head_bytes += len;
    if (req->buf_len - g->start + len > hp->limits->max_url)
        return fail(hp, 414, "request target too long");
    return grow(req, at, len) ? fail(hp, 503, "out of memory") : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    gw_hp *hp = hp_of(p);
    if (hp->in_body)
        return 0; /* a trailer of a chunked body: read and dropped */
    gw_request *req = hp->req;
    gw_hp_grow *g = &hp->grow;
    if (g->what == GROW_URL) {
        req->target_off = g->start;
        req->target_len = finish(req, g->start);
        g->what = GROW_NONE;
    }
    if (g->what == GROW_VALUE && end_header(hp))
        return -1;
    if (g->what != GROW_NAME) {
        if (req->nheaders + 1 > hp->limits->max_headers)
            return fail(hp, 431, "too many header lines");
        g->what = GROW_NAME;
        g->start = (uint32_t)req->buf_len;
    }
    hp->head_bytes += len + 4; /* ": " and CRLF */
    if (hp->head_bytes > hp->limits->max_head)
        return fail(hp, 431, "request head too large");
    for (size_t i = 0; i < len; i++)
        if (at[i] == ' ' || at[i] == '\t') /* http-parser lets "Name :" through */
            return fail(hp, 400, "white space in a header name");
    if (grow(req, at, len))
        return fail(hp, 503, "out of memory");
    char *name = req->buf + req->buf_len - len;
    for (size_t i = 0; i < len; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            name[i] = (char)(name[i] + 32);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    feed *f = p->data;
    gw_hp *hp = f->hp;
    if (hp->in_body)
        return 0;
    gw_request *req = hp->req;
    gw_hp_grow *g = &hp->grow;
    if (g->what == GROW_NAME) {
        g->name_off = g->start;
        g->name_len = finish(req, g->start);
        g->what = GROW_VALUE;
        g->start = (uint32_t)req->buf_len;
    } else if (g->what == GROW_VALUE) {
        /* A second piece of one value: either the feed split it, or the value went on
         * on a line of its own (obs-fold), which http-parser accepts and RFC 9112 5.2
         * lets a server refuse. Only a fold puts a line feed right before the piece. */
        char before = at > f->start ? at[-1] : f->prev;
        if (before == '\n')
            return fail(hp, 400, "obsolete line folding");
    } else {
        return fail(hp, 400, "header value without a name");
    }
    hp->head_bytes += len;
    if (hp->head_bytes > hp->limits->max_head)
        return fail(hp, 431, "request head too large");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)at[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) /* RFC 9110 5.5: no controls */
            return fail(hp, 400, "control character in a header value");
    }
    return grow(req, at, len) ? fail(hp, 503, "out of memory") : 0;
}

/* Fills path, query and host from the target; sets req->refuse for a bad encoding. */
static int decode_target(gw_hp *hp, gw_request *req)
{
    const char *t = req->buf + req->target_off;
    size_t tlen = req->target_len;
    size_t path_from = 0, path_len = tlen;
    const char *query = NULL;
    size_t query_len = 0;
    if (req->method == GW_METHOD_CONNECT || (tlen && t[0] != '/' && t[0] != '*')) {
        struct http_parser_url u;
        http_parser_url_init(&u);
        int connect = req->method == GW_METHOD_CONNECT;
        if (http_parser_parse_url(t, tlen, connect, &u)) {
            req->refuse = 400;
            return 0;
        }
        if (connect) {
            path_from = 0; /* an authority: host:port, routed as it is */
        } else {
            if (u.field_set & (1 << UF_HOST)) {
                int64_t off = gw_request_append(req, t + u.field_data[UF_HOST].off,
                                                u.field_data[UF_HOST].len);
                if (off < 0)
                    return fail(hp, 503, "out of memory");
                t = req->buf + req->target_off; /* the buffer may have moved */
                req->host_off = (uint32_t)off;
                req->host_len = u.field_data[UF_HOST].len;
            }
            if (u.field_set & (1 << UF_PATH)) {
                path_from = u.field_data[UF_PATH].off;
                path_len = u.field_data[UF_PATH].len;
            } else {
                path_from = tlen;
                path_len = 0;
            }
            if (u.field_set & (1 << UF_QUERY)) {
                query = t + u.field_data[UF_QUERY].off;
                query_len = u.field_data[UF_QUERY].len;
            }
        }
    } else {
        const char *q = memchr(t, '?', tlen);
        const char *hash = memchr(t, '#', tlen);
        size_t end = hash ? (size_t)(hash - t) : tlen;
        if (q && (size_t)(q - t) < end) {
            path_len = (size_t)(q - t);
            query = q + 1;
            query_len = end - path_len - 1;
        } else {
            path_len = end;
        }
    }
    size_t qoff = query ? (size_t)(query - t) : 0;
    /* Decoding never grows a string: reserve the path's room once. */
    if (gw_request_reserve(req, path_len + 2 + (path_len ? 0 : 1)))
        return fail(hp, 503, "out of memory");
    t = req->buf + req->target_off;
    char *out = req->buf + req->buf_len;
    long n;
    if (path_len == 0) {
        out[0] = '/';
        n = 1;
    } else {
        n = gw_hp_percent_decode(t + path_from, path_len, out, 0);
    }
    if (n < 0) {
        req->refuse = 400;
        n = 0;
    }
    req->path_off = (uint32_t)req->buf_len;
    req->path_len = (uint32_t)n;
    req->buf_len += (size_t)n;
    req->buf[req->buf_len++] = '\0';

    req->query_at = req->npairs;
    if (!query)
        return 0;
    char piece[1024];
    size_t at = 0;
    while (at <= query_len) {
        t = req->buf + req->target_off;
        const char *s = t + qoff + at;
        const char *amp = memchr(s, '&', query_len - at);
        size_t plen = amp ? (size_t)(amp - s) : query_len - at;
        if (plen) {
            char *tmp = plen <= sizeof(piece) ? piece : NULL;
            char *heap = NULL;
            if (!tmp) {
                heap = malloc(plen);
                if (!heap)
                    return fail(hp, 503, "out of memory");
                tmp = heap;
            }
            memcpy(tmp, s, plen);
            const char *eq = memchr(tmp, '=', plen);
            size_t nlen = eq ? (size_t)(eq - tmp) : plen;
            size_t vlen = eq ? plen - nlen - 1 : 0;
            char *dn = tmp, *dv = eq ? (char *)eq + 1 : tmp + plen;
            long dnl = gw_hp_percent_decode(tmp, nlen, dn, 1);
            long dvl = gw_hp_percent_decode(eq ? eq + 1 : "", vlen, dv, 1);
            int rc = 0;
            if (dnl == -2 || dvl == -2) {
                req->refuse = 400;
            } else if (dnl >= 0 && dvl >= 0) {
                rc = gw_request_add_pair(req, dn, (size_t)dnl, dv, (size_t)dvl);
                if (!rc)
                    req->nquery++;
            } else {
                /* A stray '%' in a query is kept as it was sent, as browsers do. */
                rc = gw_request_add_pair(req, tmp, nlen, eq ? eq + 1 : "", vlen);
                if (!rc)
                    req->nquery++;
            }
            free(heap);
            if (rc)
                return fail(hp, 503, "out of memory");
        }
        if (!amp)
            break;
        at += plen + 1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    gw_hp *hp = hp_of(p);
    gw_request *req = hp->req;
    gw_hp_grow *g = &hp->grow;
    if (g->what == GROW_URL) {
        req->target_off = g->start;
        req->target_len = finish(req, g->start);
    } else if (g->what == GROW_VALUE) {
        if (end_header(hp))
            return -1;
    } else if (g->what == GROW_NAME) {
        return fail(hp, 400, "header name without a value");
    }
    g->what = GROW_NONE;
    if (!req->target_len)
        return fail(hp, 400, "empty request target");
    if (p->http_major != 1)
        return fail(hp, 505, "unsupported HTTP version");
    req->version = p->http_minor == 0 ? 10 : 11;
    req->method = method_of(p->method);
    req->keep_alive = http_should_keep_alive(p) && req->method != GW_METHOD_CONNECT;
    req->header_at = 0;

    size_t vlen;
    const char *te = gw_request_header(req, "transfer-encoding", 17, &vlen);
    if (te) {
        /* http-parser takes "chunked" last as chunked and refuses anything else in a
         * request; say which. */
        const char *last = te + vlen;
        while (last > te && last[-1] != ',' && last[-1] != ' ')
            last--;
        if ((size_t)(te + vlen - last) != 7 || strncasecmp(last, "chunked", 7))
            return fail(hp, 501, "unsupported transfer coding");
    }
    const char *expect = gw_request_header(req, "expect", 6, &vlen);
    if (expect) {
        if (vlen == 12 && !strncasecmp(expect, "100-continue", 12))
            req->expect_continue = req->version == 11;
        else
            return fail(hp, 417, "unsupported expectation");
    }
    if (!req->host_len) {
        const char *host = gw_request_header(req, "host", 4, &vlen);
        if (host) {
            req->host_off = (uint32_t)(host - req->buf);
            req->host_len = (uint32_t)vlen;
        }
    }
    if (p->upgrade && req->method != GW_METHOD_CONNECT) {
        const char *up = gw_request_header(req, "upgrade", 7, &vlen);
        req->upgrade = up && vlen == 9 && !strncasecmp(up, "websocket", 9);
    }
    if (decode_target(hp, req))
        return -1;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > hp->limits->max_body)
        return fail(hp, 413, "body over the limit");
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0) {
        /* The whole body in one allocation, up front: the limit allows it. */
        if (gw_request_reserve(req, (size_t)p->content_length + 1))
            return fail(hp, 503, "out of memory");
    }
    int rc = hp->cb->on_head(hp->ctx, req);
    if (rc < 0) {
        hp->error_status = -1; /* stopped by the callback, not an error of the request */
        return -1;
    }
    hp->drop_body = rc == GW_HP_BODY_DROP;
    hp->in_body = 1;
    req->body_off = (uint32_t)req->buf_len;
    req->body_len = 0;
    return 0;
}

static int check_chunk_end(gw_hp *hp, feed *f, const char *after);

static int on_body(http_parser *p, const char *at, size_t len)
{
    gw_hp *hp = hp_of(p);
    gw_request *req = hp->req;
    hp->body_seen += len;
    if (hp->body_seen > hp->limits->max_body)
        return fail(hp, 413, "body over the limit");
    if ((p->flags & F_CHUNKED) && p->content_length == 0 &&
        check_chunk_end(hp, p->data, at + len))
        return -1;
    if (hp->drop_body)
        return 0;
    if (grow(req, at, len))
        return fail(hp, 503, "out of memory");
    req->body_len += len;
    return 0;
}

/* The end of a chunk's data: http-parser (unless built strict) skips the two bytes after it
 * without looking; RFC 9112 7.1 says they are CRLF, and anything else desynchronises the
 * framing. Checks what of them this feed holds; the rest is checked by gw_hp_feed. */
static int check_chunk_end(gw_hp *hp, feed *f, const char *after)
{
    static const char crlf[2] = {'\r', '\n'};
    hp->crlf_need = 2;
    while (hp->crlf_need && after < f->end) {
        if (*after++ != crlf[2 - hp->crlf_need])
            return fail(hp, 400, "chunk data not followed by CRLF");
        hp->crlf_need--;
    }
    return 0;
}

/* A chunk's size is known before its data: refuse one that would pass the limit. */
static int on_chunk_header(http_parser *p)
{
    gw_hp *hp = hp_of(p);
    if (p->content_length > hp->limits->max_body ||
        hp->body_seen + p->content_length > hp->limits->max_body)
        return fail(hp, 413, "body over the limit");
    return 0;
}

static int on_message_complete(http_parser *p)
{
    feed *f = p->data;
    gw_hp *hp = f->hp;
    gw_request *req = hp->req;
    if (!hp->in_body)
        return fail(hp, 400, "incomplete request head");
    /* The body is NUL-terminated like every other string (not counted). */
    if (!hp->drop_body) {
        req->buf[req->buf_len++] = '\0';
    } else {
        if (gw_request_reserve(req, 1))
            return fail(hp, 503, "out of memory");
        req->buf[req->buf_len++] = '\0';
    }
    hp->req = NULL;
    hp->in_message = 0;
    hp->in_body = 0;
    hp->upgrade_kept = req->upgrade || req->method == GW_METHOD_CONNECT;
    int rc = hp->cb->on_request(hp->ctx, req);
    if (rc < 0) {
        hp->error_status = -1;
        return -1;
    }
    if (rc == 1) {
        f->paused = 1;
        http_parser_pause(p, 1);
    }
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

/* ---- the public face --------------------------------------------------------------- */

void gw_hp_init(gw_hp *hp, const gw_hp_limits *limits, const gw_hp_callbacks *cb, void *ctx)
{
    memset(hp, 0, sizeof(*hp));
    hp->limits = limits;
    hp->cb = cb;
    hp->ctx = ctx;
    http_parser_init(PARSER(hp), HTTP_REQUEST);
}

void gw_hp_reset(gw_hp *hp)
{
    gw_request_release(hp->req);
    hp->req = NULL;
    hp->in_message = 0;
    hp->in_body = 0;
    hp->error_status = 0;
    hp->error_reason = NULL;
    hp->crlf_need = 0;
    http_parser_init(PARSER(hp), HTTP_REQUEST);
}

void gw_hp_resume(gw_hp *hp)
{
    http_parser_pause(PARSER(hp), 0);
}

/* Whether data starts like "TOKEN /target HTTP/": a request line with a method nobody
 * knows (501) rather than bytes that are no request at all (400). */
static int looks_like_request_line(const char *data, size_t len)
{
    size_t i = 0;
    while (i < len && (data[i] == '\r' || data[i] == '\n'))
        i++;
    size_t t = i;
    while (i < len && data[i] > ' ' && data[i] < 127 && !strchr("()<>@,;:\\\"/[]?={}", data[i]))
        i++;
    if (i == t || i >= len || data[i] != ' ')
        return 0;
    const char *sp = memchr(data + i + 1, ' ', len - i - 1);
    return sp && (size_t)(data + len - sp) > 5 && !memcmp(sp + 1, "HTTP/", 5);
}

/* The status that answers an error http-parser found itself. */
static int status_of(enum http_errno e, const char **reason)
{
    *reason = http_errno_description(e);
    switch (e) {
    case HPE_INVALID_METHOD: return 501;
    case HPE_HEADER_OVERFLOW: return 431;
    case HPE_INVALID_TRANSFER_ENCODING: return 501;
    default: return 400;
    }
}

int gw_hp_feed(gw_hp *hp, const char *data, size_t len, size_t *consumed)
{
    feed f = {hp, data, data + len, hp->prev_byte, 0};
    static const char crlf[2] = {'\r', '\n'};
    size_t at = 0;
    while (hp->crlf_need && at < len) {
        /* The end of a chunk that the previous feed began (see check_chunk_end): only
         * checked here, http-parser consumes these bytes itself. */
        if (data[at++] != crlf[2 - hp->crlf_need]) {
            hp->error_status = 400;
            hp->error_reason = "chunk data not followed by CRLF";
            *consumed = 0;
            return GW_HP_ERROR;
        }
        hp->crlf_need--;
    }
    size_t done = 0;
    *consumed = 0;
    while (done < len) {
        f.start = data + done;
        f.paused = 0;
        PARSER(hp)->data = &f;
        size_t n = http_parser_execute(PARSER(hp), &settings, data + done, len - done);
        enum http_errno e = HTTP_PARSER_ERRNO(PARSER(hp));
        if (n)
            hp->prev_byte = data[done + n - 1];
        f.prev = hp->prev_byte;
        done += n;
        *consumed = done;
        if (e == HPE_PAUSED || f.paused)
            return GW_HP_PAUSED;
        if (e != HPE_OK) {
            if (hp->error_status < 0)
                return GW_HP_STOPPED;
            if (!hp->error_status) {
                hp->error_status = status_of(e, &hp->error_reason);
                if (e == HPE_INVALID_METHOD) {
                    /* The request line begins after the last line feed before the error
                     * (a request pipelined behind another starts mid-buffer). */
                    const char *end = data + done;
                    const char *line = end;
                    while (line > f.start && line[-1] != '\n')
                        line--;
                    if (!looks_like_request_line(line, len - (size_t)(line - data)))
                        hp->error_status = 400;
                }
            }
            return GW_HP_ERROR;
        }
        if (!PARSER(hp)->upgrade)
            break;
        /* http-parser stops after a request that switches protocols. A CONNECT or a
         * WebSocket handshake does; any other Upgrade (h2c, say) is ignored as RFC 9110
         * 7.8 allows, and the bytes after it are the next request. */
        if (hp->upgrade_kept)
            return GW_HP_UPGRADE;
        http_parser_init(PARSER(hp), HTTP_REQUEST);
    }
    return GW_HP_OK;
}
