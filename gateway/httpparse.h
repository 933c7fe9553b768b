/*
 * The HTTP/1.1 parser adapter: bytes of one connection in, whole requests out.
 *
 * http-parser (Debian's libhttp-parser-dev) tokenises the stream; this module assembles
 * what it reports into gw_request buffers (request.h), decodes the target, enforces the
 * limits and turns every way a request can be wrong into the one status that answers it.
 * It knows nothing of sockets or threads, and this header does not include
 * http_parser.h, so that libwebsockets.h can stand beside it: the connection (http.c) feeds it what it reads,
 * and the fuzzer and the C tests feed it whatever they like.
 *
 * A request passes through two calls of the connection's callbacks: on_head once its
 * head is complete (the connection routes it and says what to do with the body), and
 * on_request once its body is complete too (the request then belongs to the callee).
 */
#ifndef GW_HTTPPARSE_H
#define GW_HTTPPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"

typedef struct gw_hp_limits {
    size_t max_head;    /* bytes of request line and header lines: 431 past it */
    size_t max_headers; /* header lines: 431 past it */
    size_t max_url;     /* bytes of request target: 414 past it */
    size_t max_body;    /* bytes of body: 413 past it */
} gw_hp_limits;

/* What on_head decides about the body of the request it was shown. */
enum gw_hp_body {
    GW_HP_BODY_KEEP = 0,   /* read it into the request */
    GW_HP_BODY_DROP = 1,   /* read it and throw it away (the answer does not need it) */
};

typedef struct gw_hp_callbacks {
    /* Returns an empty request to fill, or NULL when out of memory. */
    gw_request *(*new_request)(void *ctx);
    /* The head of req is complete: method, version, target, path, query and headers are
     * filled in (or req->refuse holds the status that answers it). Returns a
     * gw_hp_body, or a negative value to stop parsing at once (gw_hp_feed then returns
     * GW_HP_STOPPED and the request is released). */
    int (*on_head)(void *ctx, gw_request *req);
    /* req is complete and now belongs to the callee. Returns 0 to go on parsing, 1 to
     * pause after this request (gw_hp_feed returns GW_HP_PAUSED), or a negative value to
     * stop (GW_HP_STOPPED). */
    int (*on_request)(void *ctx, gw_request *req);
} gw_hp_callbacks;

/* The string growing at the end of the request's buffer (see httpparse.c). */
typedef struct gw_hp_grow {
    int what;
    uint32_t start;
    uint32_t name_off, name_len; /* the finished name of the header whose value grows */
} gw_hp_grow;

/* The longest method token a request may have: a longer one is answered 501 and the
 * connection closed (RFC 9112 3: a method longer than any the server implements). */
#define GW_HP_METHOD_MAX 32

/* One connection's parser. Embed it; gw_hp_init() before use, gw_hp_reset() to discard
 * a request in progress. */
typedef struct gw_hp {
    /* http-parser's own state. Its header and libwebsockets' both define enum
     * http_status, so it is kept opaque here; httpparse.c checks that it fits. */
    union {
        unsigned char bytes[64];
        void *align_pointer;
        uint64_t align_integer;
    } parser;
    const gw_hp_limits *limits;
    const gw_hp_callbacks *cb;
    void *ctx;
    gw_request *req;      /* the request being read, owned by the parser */
    size_t head_bytes;    /* of the head so far */
    size_t body_seen;     /* bytes of body so far, kept or dropped */
    int in_body;          /* headers done: what http-parser reports now is body or trailer */
    int drop_body;
    int last_was_value;   /* header callbacks alternate field/value pieces */
    int in_message;       /* a request has begun and not completed */
    int upgrade_kept;     /* the last request switches protocols (see GW_HP_UPGRADE) */
    char prev_byte;       /* the last byte of the previous feed (obs-fold detection) */
    int crlf_need;        /* bytes of a chunk's closing CRLF not checked yet */
    gw_hp_grow grow;
    char method_part[GW_HP_METHOD_MAX]; /* a method token the end of a feed cut short */
    unsigned method_part_len;
    int error_status;     /* after GW_HP_ERROR: the status that answers it */
    const char *error_reason; /* after GW_HP_ERROR: a short reason for logs and tests */
} gw_hp;

enum gw_hp_result {
    GW_HP_OK = 0,      /* everything was parsed */
    GW_HP_PAUSED = 1,  /* on_request asked to pause; *consumed says how far */
    GW_HP_UPGRADE = 2, /* the request just handed to on_request switches protocols (or is
                          a CONNECT): what follows *consumed is not HTTP */
    GW_HP_ERROR = 3,   /* malformed or over a limit: answer error_status and close */
    GW_HP_STOPPED = 4  /* a callback said stop */
};

void gw_hp_init(gw_hp *hp, const gw_hp_limits *limits, const gw_hp_callbacks *cb, void *ctx);

/* Releases the request in progress, if any, and starts over on a new message. */
void gw_hp_reset(gw_hp *hp);

/*
 * Feeds len bytes. Returns a gw_hp_result; *consumed receives how many bytes were used
 * (all of them for GW_HP_OK). After GW_HP_PAUSED or GW_HP_UPGRADE, feed the rest again
 * later (after gw_hp_resume() for a pause); after GW_HP_ERROR or GW_HP_STOPPED the parser
 * must not be fed again.
 */
__attribute__((warn_unused_result))
int gw_hp_feed(gw_hp *hp, const char *data, size_t len, size_t *consumed);

/* Lets a paused parser go on. */
void gw_hp_resume(gw_hp *hp);

/* Whether a request has begun (some of its bytes arrived) and not completed. */
static inline int gw_hp_busy(const gw_hp *hp)
{
    return hp->in_message || hp->method_part_len;
}

/* Whether the request in progress has its head complete and is reading its body. */
static inline int gw_hp_in_body(const gw_hp *hp)
{
    return hp->in_message && hp->in_body;
}

/* Percent-decodes s (len bytes) into out (room for len bytes); plus_is_space turns '+'
 * into ' ' (queries). Returns the decoded length, -1 for a '%' not followed by two hex
 * digits, -2 for an encoded NUL. */
long gw_hp_percent_decode(const char *s, size_t len, char *out, int plus_is_space);

#endif
