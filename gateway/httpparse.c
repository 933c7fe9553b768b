/*
 * The HTTP/1.1 parser adapter. See httpparse.h.
 *
 * http-parser reports the pieces of a request through callbacks whose data points into
 * the buffer being fed; a piece may be split across feeds. Each string is therefore
 * grown in place at the end of the request's buffer and terminated when the next kind
 * of piece begins.
 *
 * Debian builds http-parser without HTTP_PARSER_STRICT. It then takes any byte for the
 * "TTP/" of "HTTP/", for the LF of the CR LF that ends the head, for the LF after an
 * empty header value's CR, for the LF of a chunk size line, for both bytes of the CR LF
 * after chunk data and in the trailers' last line, and anything but CR in a chunk
 * extension (a bare LF too); and any byte from 0x80 up for a 0 in a chunk size (a bug of
 * 2.9.4's table). Lax framing is how requests get smuggled past a proxy that
 * frames them otherwise, so the adapter checks those bytes itself, with a small scanner,
 * scan(), that reads the bytes http-parser reads next, from where a callback last said we
 * are (the end of the target, the end of a chunk's data): the version, that every CR of
 * the head and the trailers is followed by LF, the chunk size lines and the CR LF after
 * chunk data. Folded header lines it finds from the bytes before each value piece
 * (tail_before()).
 *
 * http-parser knows 34 method tokens and refuses any other at once, so it could not find
 * where a request with another token ends. The adapter reads each request's method token
 * before http-parser does (start_request()): one it does not know is shown to it as PURGE,
 * which means nothing special to it and which no route can have, so that the request's
 * method is -1, as for PURGE itself; it is then framed and answered like any other.
 *
 * The result does not depend on how the bytes were cut into feeds (fuzz/fuzz_http.c
 * checks that). That takes some care, since http-parser reports a string
 * only at its end or at the end of the buffer, and finds its own errors before either:
 * a target or header over a limit and malformed further on would be 414 or 431 when its
 * bytes come in small reads and 400 in one. So in the head http-parser is never given more
 * bytes than can be read before a limit is passed (exec_limit()); the byte that passes it
 * is then the last of an execute, which calls back with it, and whichever of the limit
 * and a malformed byte comes first in the stream decides, as it does byte by byte. Each
 * request's end pauses http-parser too (so that the next head starts a new execute).
 */
#include "httpparse.h"

#include <http_parser.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router.h"

/* The scanner's modes (see scan()). */
enum {
    SCAN_NONE,
    SCAN_VERSION,    /* after the target: sub counts the bytes of "HTTP/" seen */
    SCAN_HEAD,       /* the rest of the head: sub is a LINE_* state */
    SCAN_HEAD_END,   /* the head is over: what follows is for http-parser to say */
    SCAN_CHUNK_LINE, /* a chunk size line: sub holds CL_* bits */
    SCAN_CHUNK_DATA, /* chunk data: nothing to scan until on_body says where it ends */
    SCAN_CHUNK_CRLF, /* the CR LF after chunk data: hp->crlf_need counts what is left */
    SCAN_TRAILER,    /* the trailer section: sub is a LINE_* state */
    SCAN_END,        /* the chunked body is over */
    SCAN_BAD         /* a byte that http-parser should have refused (the status is set) */
};

/* gw_hp's opaque parser bytes: http-parser's state, and the scanner's beside it. */
typedef struct hp_state {
    http_parser parser;
    int scan;     /* SCAN_* */
    uint32_t sub; /* the state within the mode */
    int chunked;  /* http-parser reads this request's body as chunked: F_CHUNKED as it was
                     at the end of the head (Debian's http-parser clears it for a
                     Transfer-Encoding trailer) */
} hp_state;

_Static_assert(sizeof(hp_state) <= sizeof(((gw_hp *)0)->parser),
               "gw_hp has room for http_parser and the scanner");

#define STATE(hp) ((hp_state *)(void *)(hp)->parser.bytes)
#define PARSER(hp) (&STATE(hp)->parser)

/* Which string is growing at the end of the buffer. */
enum { GROW_NONE, GROW_URL, GROW_NAME, GROW_VALUE };

enum { CL_EXT = 1, CL_NONZERO = 2, CL_CR = 4 };
enum { LINE_START, LINE_IN, LINE_CR, LINE_END_CR };

/* What the bytes before a position end with, as header values need to know it: the class
 * of the last byte that is not SP or HT, and TAIL_WS when SP or HT follow it. gw_hp's
 * prev_byte keeps it for the bytes before the current http_parser_execute(). */
enum { TAIL_OTHER = 0, TAIL_COLON = 1, TAIL_LF = 2, TAIL_CLASS = 3, TAIL_WS = 4 };

/* Per-feed state, reachable from the callbacks through parser.data. */
typedef struct feed {
    gw_hp *hp;
    const char *start;   /* where this http_parser_execute() began */
    const char *stop;    /* where it stops (exec_limit()) */
    const char *scanned; /* how far scan() has read */
    char prev;           /* the tail (TAIL_*) of the bytes before start */
    int paused;          /* on_request asked for a pause */
    int ended;           /* on_message_complete paused (for exec_limit()) */
    int upgraded;        /* a request that switches protocols just completed */
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

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static int is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static int tail_class(char c)
{
    return c == ':' ? TAIL_COLON : c == '\n' ? TAIL_LF : TAIL_OTHER;
}

/* The tail of the bytes before at: those of this execute, then those before it. */
static int tail_before(const feed *f, const char *at)
{
    const char *s = at;
    int ws = 0;
    while (s > f->start && is_ws(s[-1])) {
        s--;
        ws = TAIL_WS;
    }
    if (s > f->start)
        return tail_class(s[-1]) | ws;
    return f->prev | ws;
}

/* The tail once n more bytes d have been read. */
static char tail_after(char prev, const char *d, size_t n)
{
    const char *s = d + n;
    int ws = 0;
    while (s > d && is_ws(s[-1])) {
        s--;
        ws = TAIL_WS;
    }
    if (s > d)
        return (char)(tail_class(s[-1]) | ws);
    return (char)(prev | ws);
}

/* ---- limits ---------------------------------------------------------------------------- */

/* What the first byte of a header name counts against max_head: itself, and the ": "
 * and CR LF of its line. Every other byte of a target, name or value counts 1. */
#define LINE_COST 5

/* Counts len bytes of the head (the first costing first) against max_head. Returns the
 * index of the byte that passes the limit, or len when none does. */
static size_t head_count(gw_hp *hp, size_t len, size_t first)
{
    size_t max = hp->limits->max_head;
    size_t all = len ? first + len - 1 : 0;
    if (hp->head_bytes <= max && all <= max - hp->head_bytes) {
        hp->head_bytes += all;
        return len;
    }
    for (size_t i = 0; i < len; i++) {
        hp->head_bytes += i ? 1 : first;
        if (hp->head_bytes > max)
            return i;
    }
    return len;
}

/* The most of data[0..len) http-parser may read in one execute now: in the head, no more
 * than it takes to pass a limit (a byte of the head costs at most LINE_COST), so that the
 * byte that passes one is the execute's last and is reported to a callback before
 * http-parser reads further (see the top of this file). */
static size_t exec_limit(const gw_hp *hp, const char *data, size_t len)
{
    if (hp->in_body)
        return len;
    const gw_hp_limits *l = hp->limits;
    const gw_request *req = hp->in_message ? hp->req : NULL;
    size_t head = req ? hp->head_bytes : 0;
    size_t room = l->max_head > head ? l->max_head - head : 0;
    size_t n = room / LINE_COST + 1;
    size_t url = SIZE_MAX;
    if (req && hp->grow.what == GROW_URL)
        url = req->buf_len - hp->grow.start;
    else if (!req || (!req->target_len && hp->grow.what == GROW_NONE))
        url = 0; /* the target is still to come */
    if (url != SIZE_MAX && l->max_url - url + 1 < n)
        n = l->max_url - url + 1;
    /* The first byte of a name past max_headers passes the count. Names begin lines: with
     * r more names allowed, the one that passes begins after the r-th line feed from here
     * (the r+1-th, when not at the start of a line now), so up to the byte after it. After
     * an empty line, which ends the head, no name of this request comes (and the next
     * request begins a new execute: on_message_complete pauses). */
    int w = req ? hp->grow.what : GROW_NONE;
    size_t lines = req ? req->nheaders + (w == GROW_NAME || w == GROW_VALUE) : 0;
    size_t r = lines < l->max_headers ? l->max_headers - lines : 0;
    int line_start = (hp->prev_byte & TAIL_CLASS) == TAIL_LF && !(hp->prev_byte & TAIL_WS);
    size_t lfs = r + !line_start, at = 0;
    if (lfs == 0) {
        n = 1;
    } else {
        size_t end = len < n ? len : n;
        int begun = req != NULL; /* else empty lines before a request line are skipped */
        while (at < end) {
            const char *lf = memchr(data + at, '\n', end - at);
            if (!lf)
                break;
            size_t line = at;
            at = (size_t)(lf - data) + 1;
            if (--lfs == 0) {
                if (at + 1 < n)
                    n = at + 1;
                break;
            }
            if (at - line > 2 || (at - line == 2 && data[line] != '\r'))
                begun = 1; /* that line was not empty */
            if (begun && at < end && (data[at] == '\r' || data[at] == '\n'))
                break;
        }
    }
    return n < len ? n : len;
}

/* ---- the framing scanner ------------------------------------------------------------- */

static void scan_bad(gw_hp *hp, const char *reason)
{
    STATE(hp)->scan = SCAN_BAD;
    fail(hp, 400, reason);
}

/* Lines of the head after the version, and of the trailers: they hold no CR, so each CR
 * is followed by LF; an empty line (CR LF, or a bare LF as http-parser takes it) ends
 * them. Returns 1 at that end, -1 for a bad byte, else 0. */
static int scan_lines(uint32_t *sub, char c)
{
    switch (*sub) {
    case LINE_START:
        if (c == '\n')
            return 1;
        *sub = c == '\r' ? LINE_END_CR : LINE_IN;
        return 0;
    case LINE_IN:
        if (c == '\r')
            *sub = LINE_CR;
        else if (c == '\n')
            *sub = LINE_START;
        return 0;
    case LINE_CR:
        if (c != '\n')
            return -1;
        *sub = LINE_START;
        return 0;
    default: /* LINE_END_CR */
        return c == '\n' ? 1 : -1;
    }
}

/*
 * Reads the bytes from where it stopped (f->scanned, or from) to f->stop: the bytes
 * http-parser reads in this execute, as far as the current framing goes. It stops where
 * only a callback can say what comes next (the end of the head, chunk data), at the end of
 * the chunked body, or at a bad byte: the status is then 400 at once and the mode
 * SCAN_BAD, which the next callback (or gw_hp_feed) reports. It never reads past the
 * request, nor past the execute: a limit is passed at an execute's last byte only (see
 * exec_limit()), so a bad byte it finds comes first.
 */
static void scan(gw_hp *hp, feed *f, const char *from)
{
    hp_state *st = STATE(hp);
    const char *s = from > f->scanned ? from : f->scanned;
    for (; s < f->stop; s++) {
        char c = *s;
        switch (st->scan) {
        case SCAN_VERSION:
            if (st->sub == 0 && c == ' ')
                break; /* http-parser allows more than one space */
            if (c != "HTTP/"[st->sub]) {
                scan_bad(hp, "malformed request line");
                goto out;
            }
            if (++st->sub == 5) {
                st->scan = SCAN_HEAD;
                st->sub = LINE_IN;
            }
            break;
        case SCAN_HEAD:
        case SCAN_TRAILER: {
            if (st->sub == LINE_IN) {
                /* The bulk of a line at once: up to its LF, with no CR but right before. */
                const char *lf = memchr(s, '\n', (size_t)(f->stop - s));
                const char *end = lf ? lf : f->stop;
                const char *cr = memchr(s, '\r', (size_t)(end - s));
                if (cr && cr + 1 < end) {
                    s = cr + 1;
                    scan_bad(hp, st->scan == SCAN_HEAD ? "CR without LF in the request head"
                                                       : "CR without LF in the trailers");
                    goto out;
                }
                if (!lf) {
                    if (cr)
                        st->sub = LINE_CR;
                    s = f->stop - 1;
                    break;
                }
                st->sub = LINE_START;
                s = lf;
                break;
            }
            int r = scan_lines(&st->sub, c);
            if (r < 0) {
                scan_bad(hp, st->scan == SCAN_HEAD ? "CR without LF in the request head"
                                                   : "CR without LF in the trailers");
                goto out;
            }
            if (r > 0) {
                st->scan = st->scan == SCAN_HEAD ? SCAN_HEAD_END : SCAN_END;
                s++;
                goto out;
            }
            break;
        }
        case SCAN_CHUNK_CRLF:
            if (c != (hp->crlf_need == 2 ? '\r' : '\n')) {
                scan_bad(hp, "chunk data not followed by CRLF");
                goto out;
            }
            if (--hp->crlf_need == 0) {
                st->scan = SCAN_CHUNK_LINE;
                st->sub = 0;
            }
            break;
        case SCAN_CHUNK_LINE:
            if (st->sub & CL_CR) {
                if (c != '\n') {
                    scan_bad(hp, "chunk size line not ended by CRLF");
                    goto out;
                }
                if (st->sub & CL_NONZERO) {
                    st->scan = SCAN_CHUNK_DATA;
                    s++;
                    goto out;
                }
                st->scan = SCAN_TRAILER; /* the last chunk */
                st->sub = LINE_START;
            } else if (c == '\r') {
                st->sub |= CL_CR;
            } else if (is_ctl((unsigned char)c)) { /* a bare LF, a NUL ... */
                scan_bad(hp, "control character in a chunk size line");
                goto out;
            } else if (!(st->sub & CL_EXT)) {
                int h = hex((unsigned char)c);
                if (h > 0) {
                    st->sub |= CL_NONZERO;
                } else if (h < 0 && (unsigned char)c >= 0x80) {
                    /* http-parser 2.9.4's unhex[] spells out 128 entries: it takes every
                     * byte from 0x80 up for the digit 0 ("1\xff" is 16). */
                    scan_bad(hp, "malformed chunk size");
                    goto out;
                } else if (h < 0) {
                    st->sub |= CL_EXT; /* ';' or ' ' (http-parser refuses the rest) */
                }
            }
            break;
        default:
            goto out;
        }
    }
out:
    f->scanned = s;
}

/* Starts the scanner in mode at from (a position in this execute). */
static void scan_from(gw_hp *hp, feed *f, int mode, uint32_t sub, const char *from)
{
    STATE(hp)->scan = mode;
    STATE(hp)->sub = sub;
    f->scanned = from;
    scan(hp, f, from);
}

/* Whether the scanner reads bytes now, rather than wait for a callback. */
static int scanning(const gw_hp *hp)
{
    int m = STATE(hp)->scan;
    return m == SCAN_VERSION || m == SCAN_HEAD || m == SCAN_CHUNK_CRLF || m == SCAN_CHUNK_LINE ||
           m == SCAN_TRAILER;
}

/* Whether http-parser reads a chunked body for this request (a CONNECT has none). */
static int chunked_body(http_parser *p)
{
    return (p->flags & F_CHUNKED) && p->method != HTTP_CONNECT;
}

/* What the scanner found. With must not SCAN_NONE, it has to be there now: else it and
 * http-parser disagree about where the framing is (the fuzzer would report that: it must
 * not happen). */
static int framing(gw_hp *hp, int must)
{
    int m = STATE(hp)->scan;
    if (m == SCAN_BAD)
        return -1; /* the status is set already */
    if (must != SCAN_NONE && m != must)
        return fail(hp, 400, "framing out of step");
    return 0;
}

/* ---- decoding ------------------------------------------------------------------------ */

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

/* Whether s holds "%00" anywhere (a part kept undecoded for a stray '%' may still). */
static int has_encoded_nul(const char *s, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++)
        if (s[i] == '%' && s[i + 1] == '0' && s[i + 2] == '0')
            return 1;
    return 0;
}

/* What http-parser is shown in place of a method token it does not know (see
 * start_request()): one with no meaning to it, and one method_of() makes -1, the method no
 * route can have, as it makes every method no route can have. */
#define UNKNOWN_METHOD_AS "PURGE"

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
    default: return -1; /* HTTP_PURGE among them: UNKNOWN_METHOD_AS */
    }
}

/* ---- the method token ---------------------------------------------------------------- */

/* The bytes that may be part of a token (RFC 9110 5.6.2): letters, digits and these. */
#define TCHAR_RANGE(lo, hi) [lo... hi] = 1
static const unsigned char TCHAR[256] = {
    TCHAR_RANGE('0', '9'), TCHAR_RANGE('A', 'Z'), TCHAR_RANGE('a', 'z'),
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
};
#undef TCHAR_RANGE

/* http-parser's own spelling of the method token s (len bytes; case matters), or NULL for
 * a token it does not know. Each comparison has a constant length, so the compiler turns
 * it into a load or two; GET is the second tried. */
static const char *known_method(const char *s, size_t len)
{
#define KNOWN_METHOD(num, name, string)                                                  \
    if (len == sizeof(#string) - 1 && !memcmp(s, #string, sizeof(#string) - 1))          \
        return #string;
    HTTP_METHOD_MAP(KNOWN_METHOD)
#undef KNOWN_METHOD
    return NULL;
}

/* ---- callbacks ------------------------------------------------------------------- */

static gw_hp *hp_of(http_parser *p)
{
    return ((feed *)p->data)->hp;
}

static int on_message_begin(http_parser *p)
{
    gw_hp *hp = hp_of(p);
    gw_request_release(hp->req); /* none is left over; were one, it would not leak */
    hp->req = NULL;
    gw_request *req = hp->cb->new_request(hp->ctx);
    if (!req)
        return fail(hp, 503, "out of memory");
    hp->req = req;
    hp->head_bytes = 0;
    hp->body_seen = 0;
    hp->in_body = 0;
    hp->drop_body = 0;
    hp->in_message = 1;
    hp->crlf_need = 0;
    hp->grow.what = GROW_NONE;
    STATE(hp)->scan = SCAN_NONE;
    STATE(hp)->chunked = 0;
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
    feed *f = p->data;
    gw_hp *hp = f->hp;
    gw_request *req = hp->req;
    gw_hp_grow *g = &hp->grow;
    if (g->what != GROW_URL) {
        g->what = GROW_URL;
        g->start = (uint32_t)req->buf_len;
    }
    /* Both limits count these bytes: the one with less room left is the one passed first. */
    size_t room_url = hp->limits->max_url - (req->buf_len - g->start);
    size_t room_head =
        hp->limits->max_head > hp->head_bytes ? hp->limits->max_head - hp->head_bytes : 0;
    if (len > room_url || len > room_head)
        return room_url <= room_head ? fail(hp, 414, "request target too long")
                                     : fail(hp, 431, "request head too large");
    hp->head_bytes += len;
    if (grow(req, at, len))
        return fail(hp, 503, "out of memory");
    if (at + len < f->stop) {
        /* http-parser calls back before the end of what it was given only at the byte that
         * ends the target: a space and the version, or CR or LF (HTTP/0.9, 505 later). */
        req->target_off = g->start;
        req->target_len = finish(req, g->start);
        g->what = GROW_NONE;
        if (at[len] == ' ')
            scan_from(hp, f, SCAN_VERSION, 0, at + len);
        else
            scan_from(hp, f, SCAN_HEAD, LINE_IN, at + len);
        if (STATE(hp)->scan == SCAN_BAD)
            return -1;
    }
    return 0;
}

/* A header line or the end of the head begins: the request line is over, and said
 * "HTTP/" (the digits around the dot are http-parser's to check). */
static int end_request_line(gw_hp *hp)
{
    gw_hp_grow *g = &hp->grow;
    if (g->what == GROW_URL) { /* not reached: http-parser ends the target at a byte */
        hp->req->target_off = g->start;
        hp->req->target_len = finish(hp->req, g->start);
        g->what = GROW_NONE;
    }
    if (STATE(hp)->scan == SCAN_VERSION)
        return fail(hp, 400, "malformed request line");
    return framing(hp, SCAN_NONE);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    gw_hp *hp = hp_of(p);
    if (hp->in_body)
        return framing(hp, SCAN_NONE); /* a trailer: read (by scan()) and dropped */
    gw_request *req = hp->req;
    gw_hp_grow *g = &hp->grow;
    if (end_request_line(hp))
        return -1;
    if (g->what == GROW_VALUE && end_header(hp))
        return -1;
    size_t first = 1;
    if (g->what != GROW_NAME) {
        if (req->nheaders + 1 > hp->limits->max_headers)
            return fail(hp, 431, "too many header lines");
        g->what = GROW_NAME;
        g->start = (uint32_t)req->buf_len;
        first = LINE_COST;
    }
    /* Whichever comes first: the byte past the limit, or white space (http-parser lets
     * "Name :" through). */
    size_t over = head_count(hp, len, first);
    for (size_t i = 0; i < over; i++)
        if (is_ws(at[i]))
            return fail(hp, 400, "white space in a header name");
    if (over < len)
        return fail(hp, 431, "request head too large");
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
        return framing(hp, SCAN_NONE);
    if (framing(hp, SCAN_NONE))
        return -1;
    gw_request *req = hp->req;
    gw_hp_grow *g = &hp->grow;
    int tail = tail_before(f, at);
    if (g->what == GROW_NAME) {
        /* The first piece of a value follows the colon (and white space), or, when the
         * value is empty, is called at the first byte of the next line. A line feed and
         * white space before it is a fold: a value that begins on a continuation line. */
        if ((tail & TAIL_CLASS) == TAIL_LF && (tail & TAIL_WS))
            return fail(hp, 400, "obsolete line folding");
        g->name_off = g->start;
        g->name_len = finish(req, g->start);
        g->what = GROW_VALUE;
        g->start = (uint32_t)req->buf_len;
    } else if (g->what == GROW_VALUE) {
        /* A second piece of one value: either the feed split it, or the value went on
         * on a line of its own (obs-fold), which http-parser accepts and RFC 9112 5.2
         * lets a server refuse. Only a fold puts a line feed right before the piece
         * (http-parser begins it at the white space that begins the line). */
        if ((tail & TAIL_CLASS) == TAIL_LF)
            return fail(hp, 400, "obsolete line folding");
    } else {
        return fail(hp, 400, "header value without a name");
    }
    /* Whichever comes first: the byte past the limit, or a control (RFC 9110 5.5). */
    size_t over = head_count(hp, len, 1);
    for (size_t i = 0; i < over; i++)
        if (is_ctl((unsigned char)at[i]))
            return fail(hp, 400, "control character in a header value");
    if (over < len)
        return fail(hp, 431, "request head too large");
    return grow(req, at, len) ? fail(hp, 503, "out of memory") : 0;
}

/* Whether the Transfer-Encoding headers, all of them together, say "chunked" and nothing
 * else: the only coding the server can undo. (http-parser takes "gzip, chunked" as
 * chunked and hands over a body that is still gzip; it looks at the last header only.) */
static int transfer_coding_ok(const gw_request *req)
{
    int chunked = 0, other = 0;
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const gw_pair *h = &req->pairs[req->header_at + i];
        if (h->name_len != 17 || memcmp(req->buf + h->name_off, "transfer-encoding", 17))
            continue;
        const char *v = req->buf + h->value_off, *end = v + h->value_len;
        while (v < end) {
            const char *comma = memchr(v, ',', (size_t)(end - v));
            const char *e = comma ? comma : end;
            const char *a = v;
            while (a < e && is_ws(*a))
                a++;
            const char *b = e;
            while (b > a && is_ws(b[-1]))
                b--;
            if (b - a == 7 && !strncasecmp(a, "chunked", 7))
                chunked++;
            else if (b > a)
                other++;
            v = comma ? comma + 1 : end;
        }
    }
    return chunked == 1 && !other;
}

/* Decodes target bytes [from, from + len) as the path (an empty target part is "/"). */
static int set_path(gw_hp *hp, gw_request *req, size_t from, size_t len)
{
    /* Decoding never grows a string: reserve the path's room once. */
    if (gw_request_reserve(req, len + 2))
        return fail(hp, 503, "out of memory");
    const char *t = req->buf + req->target_off;
    char *out = req->buf + req->buf_len;
    long n;
    if (len == 0) {
        out[0] = '/';
        n = 1;
    } else {
        n = gw_hp_percent_decode(t + from, len, out, 0);
    }
    if (n < 0) {
        req->refuse = 400;
        n = 0;
    }
    req->path_off = (uint32_t)req->buf_len;
    req->path_len = (uint32_t)n;
    req->buf_len += (size_t)n;
    req->buf[req->buf_len++] = '\0';
    return 0;
}

/* Splits target bytes [qoff, qoff + query_len) into decoded query pairs. */
static int set_query(gw_hp *hp, gw_request *req, size_t qoff, size_t query_len)
{
    char stack[2048];
    size_t at = 0;
    while (at <= query_len) {
        const char *s = req->buf + req->target_off + qoff + at; /* the buffer may move */
        const char *amp = memchr(s, '&', query_len - at);
        size_t plen = amp ? (size_t)(amp - s) : query_len - at;
        if (plen) {
            /* The pair as sent, then room to decode it into: a part with a stray '%' is
             * kept as it was sent, as browsers do, without damage from the decoding. */
            char *raw = 2 * plen <= sizeof(stack) ? stack : malloc(2 * plen);
            if (!raw)
                return fail(hp, 503, "out of memory");
            char *dec = raw + plen;
            memcpy(raw, s, plen);
            const char *eq = memchr(raw, '=', plen);
            size_t nlen = eq ? (size_t)(eq - raw) : plen;
            const char *rv = eq ? eq + 1 : raw + plen;
            size_t vlen = eq ? plen - nlen - 1 : 0;
            long dn = gw_hp_percent_decode(raw, nlen, dec, 1);
            long dv = gw_hp_percent_decode(rv, vlen, dec + nlen, 1);
            if ((dn == -1 && has_encoded_nul(raw, nlen)) || (dv == -1 && has_encoded_nul(rv, vlen)))
                dn = -2;
            int rc = 0;
            if (dn == -2 || dv == -2) {
                req->refuse = 400;
            } else {
                rc = gw_request_add_pair(req, dn >= 0 ? dec : raw, dn >= 0 ? (size_t)dn : nlen,
                                         dv >= 0 ? dec + nlen : rv, dv >= 0 ? (size_t)dv : vlen);
                if (!rc)
                    req->nquery++;
            }
            if (raw != stack)
                free(raw);
            if (rc)
                return fail(hp, 503, "out of memory");
        }
        if (!amp)
            break;
        at += plen + 1;
    }
    return 0;
}

/* Fills path, query and host from the target; sets req->refuse for a bad encoding. */
static int decode_target(gw_hp *hp, gw_request *req)
{
    const char *t = req->buf + req->target_off;
    size_t tlen = req->target_len;
    size_t path_from = 0, path_len = tlen;
    int has_query = 0;
    size_t qoff = 0, query_len = 0;
    req->query_at = req->npairs;
    if (req->method == GW_METHOD_CONNECT || (tlen && t[0] != '/' && t[0] != '*')) {
        struct http_parser_url u;
        http_parser_url_init(&u);
        int connect = req->method == GW_METHOD_CONNECT;
        if (http_parser_parse_url(t, tlen, connect, &u)) {
            req->refuse = 400;
            int64_t off = gw_request_append(req, "", 0); /* an empty path */
            if (off < 0)
                return fail(hp, 503, "out of memory");
            req->path_off = (uint32_t)off;
            req->path_len = 0;
            return 0;
        }
        if (!connect) { /* a CONNECT's authority, host:port, is routed as it is */
            if (u.field_set & (1 << UF_HOST)) {
                /* The host is copied from the target, in the buffer it grows: room first,
                 * then the copy from where the target is now. */
                size_t hlen = u.field_data[UF_HOST].len;
                if (gw_request_reserve(req, hlen + 1))
                    return fail(hp, 503, "out of memory");
                t = req->buf + req->target_off;
                int64_t off = gw_request_append(req, t + u.field_data[UF_HOST].off, hlen);
                if (off < 0)
                    return fail(hp, 503, "out of memory");
                req->host_off = (uint32_t)off;
                req->host_len = (uint32_t)hlen;
            }
            if (u.field_set & (1 << UF_PATH)) {
                path_from = u.field_data[UF_PATH].off;
                path_len = u.field_data[UF_PATH].len;
            } else {
                path_from = tlen;
                path_len = 0;
            }
            if (u.field_set & (1 << UF_QUERY)) {
                has_query = 1;
                qoff = u.field_data[UF_QUERY].off;
                query_len = u.field_data[UF_QUERY].len;
            }
        }
    } else {
        const char *q = memchr(t, '?', tlen);
        const char *hash = memchr(t, '#', tlen);
        size_t end = hash ? (size_t)(hash - t) : tlen;
        if (q && (size_t)(q - t) < end) {
            path_len = (size_t)(q - t);
            has_query = 1;
            qoff = path_len + 1;
            query_len = end - path_len - 1;
        } else {
            path_len = end;
        }
    }
    if (set_path(hp, req, path_from, path_len))
        return -1;
    req->query_at = req->npairs;
    return has_query ? set_query(hp, req, qoff, query_len) : 0;
}

static int on_headers_complete(http_parser *p)
{
    feed *f = p->data;
    gw_hp *hp = f->hp;
    gw_request *req = hp->req;
    gw_hp_grow *g = &hp->grow;
    if (end_request_line(hp))
        return -1;
    if (framing(hp, SCAN_HEAD_END))
        return -1;
    if (g->what == GROW_VALUE) {
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
    if (gw_request_header(req, "transfer-encoding", 17, &vlen) && !transfer_coding_ok(req))
        return fail(hp, 501, "unsupported transfer coding");
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
    /* The scanner has read the head to its end, the byte http-parser is at now: a chunked
     * body begins after it. */
    STATE(hp)->chunked = chunked_body(p);
    if (STATE(hp)->chunked)
        scan_from(hp, f, SCAN_CHUNK_LINE, 0, f->scanned);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    feed *f = p->data;
    gw_hp *hp = f->hp;
    gw_request *req = hp->req;
    int chunked = STATE(hp)->chunked;
    if (framing(hp, chunked ? SCAN_CHUNK_DATA : SCAN_HEAD_END))
        return -1;
    hp->body_seen += len;
    if (hp->body_seen > hp->limits->max_body)
        return fail(hp, 413, "body over the limit");
    if (chunked && p->content_length == 0) {
        /* The chunk's data ends here; http-parser skips the two bytes after it unread
         * (unless built strict). RFC 9112 7.1 says they are CRLF. */
        hp->crlf_need = 2;
        scan_from(hp, f, SCAN_CHUNK_CRLF, 0, at + len);
        if (STATE(hp)->scan == SCAN_BAD)
            return -1;
    }
    if (hp->drop_body)
        return 0;
    if (grow(req, at, len))
        return fail(hp, 503, "out of memory");
    req->body_len += len;
    return 0;
}

/* A chunk's size is known before its data: refuse one that would pass the limit. */
static int on_chunk_header(http_parser *p)
{
    gw_hp *hp = hp_of(p);
    if (framing(hp, SCAN_NONE))
        return -1;
    int m = STATE(hp)->scan;
    if (p->content_length ? m != SCAN_CHUNK_DATA : (m != SCAN_TRAILER && m != SCAN_END))
        return fail(hp, 400, "framing out of step");
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
    if (framing(hp, STATE(hp)->chunked ? SCAN_END : SCAN_HEAD_END))
        return -1;
    /* The body is NUL-terminated like every other string (not counted). The strings
     * before it may have filled the buffer to the last byte. */
    if (req->buf_len == req->buf_cap && gw_request_reserve(req, 1))
        return fail(hp, 503, "out of memory");
    req->buf[req->buf_len++] = '\0';
    hp->req = NULL;
    hp->in_message = 0;
    hp->in_body = 0;
    hp->grow.what = GROW_NONE;
    STATE(hp)->scan = SCAN_NONE;
    hp->upgrade_kept = req->upgrade || req->method == GW_METHOD_CONNECT;
    /* http-parser returns right after a request that switches protocols. */
    f->upgraded = p->upgrade;
    int rc = hp->cb->on_request(hp->ctx, req);
    if (rc < 0) {
        hp->error_status = -1;
        return -1;
    }
    if (rc == 1)
        f->paused = 1;
    /* Paused either way: for a pause asked for, or so that the next head begins a new
     * execute (gw_hp_feed goes on). */
    f->ended = 1;
    http_parser_pause(p, 1);
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
    hp->drop_body = 0;
    hp->upgrade_kept = 0;
    hp->prev_byte = 0;
    hp->crlf_need = 0;
    memset(&hp->grow, 0, sizeof(hp->grow));
    hp->method_part_len = 0;
    hp->error_status = 0;
    hp->error_reason = NULL;
    http_parser_init(PARSER(hp), HTTP_REQUEST);
    STATE(hp)->scan = SCAN_NONE;
    STATE(hp)->chunked = 0;
}

void gw_hp_resume(gw_hp *hp)
{
    http_parser_pause(PARSER(hp), 0);
}

/* The status that answers an error http-parser found itself. */
static int status_of(enum http_errno e, const char **reason)
{
    *reason = http_errno_description(e);
    switch (e) {
    case HPE_HEADER_OVERFLOW: return 431;
    case HPE_INVALID_TRANSFER_ENCODING: return 501;
    default: return 400;
    }
}

/* Whether d begins with a method routes can have and its space: what requests mostly
 * begin with, told at the cost of a few loads (each comparison has a constant length), so
 * that they need no closer look at their token (start_request()). */
static int routable_method(const char *d, size_t len)
{
    return len >= 8 && (!memcmp(d, "GET ", 4) || !memcmp(d, "POST ", 5) ||
                        !memcmp(d, "PUT ", 4) || !memcmp(d, "DELETE ", 7) ||
                        !memcmp(d, "PATCH ", 6) || !memcmp(d, "HEAD ", 5) ||
                        !memcmp(d, "OPTIONS ", 8));
}

enum { START_PARSE, START_TAKEN, START_ERROR };

/*
 * Reads the method token of the request that begins at data + *done, before http-parser
 * does (between requests, when it waits for a request line), so that a token it does not
 * know frames like any other. Empty lines before the request line are skipped, as
 * http-parser skips them. Returns:
 *   START_PARSE: http-parser goes on at data + *done. A token it knows (a complete one,
 *     followed by its space) it reads itself from the start of the line: known methods
 *     pay no copy and no second execute. Any other token it has been shown as
 *     UNKNOWN_METHOD_AS (the request's method is then -1), and *done is at the space
 *     after the token.
 *   START_TAKEN: the feed ended inside the token; its bytes wait in hp->method_part
 *     (every byte is used) and the next feed goes on with it, so that a token cut across
 *     feeds comes to the same as one fed whole.
 *   START_ERROR: 400 for a line that does not begin with a token and a space (not a
 *     request line); 501 for a token over GW_HP_METHOD_MAX bytes, decided at its first
 *     byte too many, whatever follows; 503 when out of memory.
 */
static int start_request(gw_hp *hp, const char *data, size_t len, size_t *done)
{
    size_t at = *done;
    size_t have = hp->method_part_len;
    if (!have)
        while (at < len && (data[at] == '\r' || data[at] == '\n'))
            at++;
    size_t from = at;
    size_t room = GW_HP_METHOD_MAX - have;
    size_t end = len - at > room ? at + room + 1 : len;
    while (at < end && TCHAR[(unsigned char)data[at]])
        at++;
    size_t n = at - from;
    if (n > room) {
        fail(hp, 501, "method token too long");
        return START_ERROR;
    }
    if (at == len) {
        if (!have && !n)
            return START_PARSE; /* empty lines only: http-parser skips them */
        memcpy(hp->method_part + have, data + from, n);
        hp->method_part_len = (unsigned)(have + n);
        hp->prev_byte = tail_after(hp->prev_byte, data + *done, len - *done);
        *done = len;
        return START_TAKEN;
    }
    if ((!have && !n) || data[at] != ' ') {
        fail(hp, 400, "malformed request line");
        return START_ERROR;
    }
    const char *name;
    if (!have) {
        name = known_method(data + from, n);
        if (name)
            return START_PARSE;
    } else {
        memcpy(hp->method_part + have, data + from, n);
        hp->method_part_len = 0;
        name = known_method(hp->method_part, have + n);
    }
    if (!name)
        name = UNKNOWN_METHOD_AS;
    size_t name_len = strlen(name);
    feed sub = {hp, name, name + name_len, name, TAIL_OTHER, 0, 0, 0};
    http_parser *p = PARSER(hp);
    p->data = &sub;
    (void)http_parser_execute(p, &settings, name, name_len); /* on_message_begin only */
    enum http_errno e = HTTP_PARSER_ERRNO(p);
    if (e != HPE_OK) {
        /* on_message_begin had no request (503), or http-parser takes no more requests
         * (built strict, after one that closes the connection). */
        if (!hp->error_status)
            hp->error_status = status_of(e, &hp->error_reason);
        return START_ERROR;
    }
    hp->prev_byte = TAIL_OTHER; /* the tail of a token */
    *done = at;
    return START_PARSE;
}

int gw_hp_feed(gw_hp *hp, const char *data, size_t len, size_t *consumed)
{
    http_parser *p = PARSER(hp);
    feed f = {hp, data, data, data, hp->prev_byte, 0, 0, 0};
    size_t done = 0;
    *consumed = 0;
    while (done < len) {
        if (!hp->in_message && HTTP_PARSER_ERRNO(p) == HPE_OK &&
            (hp->method_part_len || !routable_method(data + done, len - done))) {
            int s = start_request(hp, data, len, &done);
            *consumed = done;
            if (s == START_ERROR)
                return GW_HP_ERROR;
            if (s == START_TAKEN)
                break;
        }
        f.start = data + done;
        f.prev = hp->prev_byte;
        f.paused = f.ended = f.upgraded = 0;
        f.stop = f.start + exec_limit(hp, data + done, len - done);
        if (scanning(hp)) {
            /* Framing that began before this execute: http-parser reads these bytes next,
             * without looking at some of them. */
            scan(hp, &f, f.start);
            if (STATE(hp)->scan == SCAN_BAD)
                return GW_HP_ERROR;
        }
        p->data = &f;
        size_t n = http_parser_execute(p, &settings, f.start, (size_t)(f.stop - f.start));
        enum http_errno e = HTTP_PARSER_ERRNO(p);
        hp->prev_byte = tail_after(hp->prev_byte, data + done, n);
        done += n;
        *consumed = done;
        if (e != HPE_OK && e != HPE_PAUSED) {
            if (hp->error_status < 0) {
                /* A callback said stop; the request it was shown (on_head) goes back. */
                gw_request_release(hp->req);
                hp->req = NULL;
                hp->in_message = 0;
                hp->in_body = 0;
                return GW_HP_STOPPED;
            }
            if (!hp->error_status)
                hp->error_status = status_of(e, &hp->error_reason);
            return GW_HP_ERROR;
        }
        if (STATE(hp)->scan == SCAN_BAD)
            return GW_HP_ERROR; /* found by the scanner: http-parser is not there yet */
        if (f.upgraded) {
            /* http-parser stops after a request that switches protocols. A CONNECT or a
             * WebSocket handshake does; any other Upgrade (h2c, say) is ignored as RFC
             * 9110 7.8 allows, and the bytes after it are the next request. */
            if (hp->upgrade_kept)
                return GW_HP_UPGRADE; /* even if on_request asked for a pause */
            http_parser_init(p, HTTP_REQUEST);
            if (f.paused) {
                http_parser_pause(p, 1); /* until gw_hp_resume() */
                return GW_HP_PAUSED;
            }
            continue;
        }
        if (f.ended) {
            if (f.paused)
                return GW_HP_PAUSED; /* http-parser stays paused until gw_hp_resume() */
            http_parser_pause(p, 0);
            continue;
        }
        if (e == HPE_PAUSED)
            return GW_HP_PAUSED; /* paused before this feed: gw_hp_resume() was not called */
        if (!n)
            break; /* not reached: http-parser reads a byte at least */
        /* The execute ended at exec_limit() or at the end of the feed. */
    }
    return GW_HP_OK;
}
