/*
 * envelope.h: the msgpack envelope a published message travels in between
 * processes and machines (the Redis bus, docs/redis.md).
 *
 * One envelope is one msgpack array of exactly six elements:
 *
 *     [ version, origin, seq, topic, kind, payload ]
 *
 *     version  positive integer, PS_ENVELOPE_VERSION (1)
 *     origin   bin of PS_ENVELOPE_ORIGIN_LEN (16) bytes: the publishing
 *              process, random per process start
 *     seq      unsigned integer >= 1: the publisher's own counter, one more
 *              per message it sends, so a receiver can tell its own messages
 *              (same origin) and count gaps
 *     topic    str, 1..PS_ENVELOPE_MAX_TOPIC bytes of valid UTF-8
 *     kind     positive integer: 1 text, 2 binary (the RFC 6455 opcodes)
 *     payload  bin, 0..PS_ENVELOPE_MAX_PAYLOAD bytes; valid UTF-8 when kind
 *              is text (a browser closes a connection sent invalid text)
 *
 * Nothing may follow the array. The decoder accepts exactly this and answers
 * every other input with one of enum ps_envelope_error; it never reads past
 * the input, never allocates more than a small constant, and never aborts.
 */
#ifndef PS_ENVELOPE_H
#define PS_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

#define PS_ENVELOPE_VERSION 1
#define PS_ENVELOPE_ORIGIN_LEN 16
#define PS_ENVELOPE_MAX_TOPIC (64u * 1024u)
#define PS_ENVELOPE_MAX_PAYLOAD (64u * 1024u * 1024u)
/* The most bytes an envelope adds around its topic and payload. */
#define PS_ENVELOPE_OVERHEAD 48

typedef struct ps_envelope {
    unsigned char origin[PS_ENVELOPE_ORIGIN_LEN];
    uint64_t seq;
    const char *topic; /* not NUL-terminated */
    size_t topic_len;
    unsigned opcode; /* PS_OP_TEXT or PS_OP_BINARY */
    const unsigned char *payload;
    size_t payload_len;
} ps_envelope;

/* Why an input is not an envelope (or an envelope cannot be made). */
enum ps_envelope_error {
    PS_ENV_OK = 0,
    PS_ENV_EMPTY = -1,            /* no bytes at all */
    PS_ENV_TRUNCATED = -2,        /* the input ends inside the envelope */
    PS_ENV_TRAILING = -3,         /* bytes after the envelope */
    PS_ENV_NOT_ARRAY = -4,        /* not a msgpack array of six elements */
    PS_ENV_BAD_TYPE = -5,         /* an element of the wrong msgpack type */
    PS_ENV_BAD_VERSION = -6,      /* a version this build does not speak */
    PS_ENV_BAD_ORIGIN = -7,       /* origin not 16 bytes */
    PS_ENV_BAD_SEQ = -8,          /* sequence 0 */
    PS_ENV_BAD_TOPIC = -9,        /* empty, too long, or not UTF-8 */
    PS_ENV_BAD_KIND = -10,        /* kind neither text nor binary */
    PS_ENV_TOO_LARGE = -11,       /* payload over PS_ENVELOPE_MAX_PAYLOAD */
    PS_ENV_BAD_UTF8 = -12,        /* a text payload that is not UTF-8 */
    PS_ENV_MALFORMED = -13,       /* msgpack itself refused the bytes */
    PS_ENV_NOMEM = -14,           /* out of memory */
};

/* A short English description of code (an enum ps_envelope_error value);
 * never NULL. */
const char *ps_envelope_strerror(int code);

/*
 * Encodes env into a new buffer of *out_len bytes at *out, which the caller
 * owns and releases with free(). env's topic and payload are only read.
 * Returns PS_ENV_OK, or PS_ENV_BAD_TOPIC / PS_ENV_BAD_KIND / PS_ENV_BAD_SEQ /
 * PS_ENV_TOO_LARGE / PS_ENV_BAD_UTF8 for an envelope the decoder would refuse
 * (nothing is written then), or PS_ENV_NOMEM.
 */
PS_MUST_CHECK int ps_envelope_encode(const ps_envelope *env, unsigned char **out,
                                     size_t *out_len);

/*
 * Decodes the len bytes at data into *out. On PS_ENV_OK, out->topic and
 * out->payload point into data (borrowed: valid while data is). On any
 * other return *out is unspecified.
 */
PS_MUST_CHECK int ps_envelope_decode(const void *data, size_t len, ps_envelope *out);

/* Whether the len bytes at s are valid UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF). */
int ps_utf8_valid(const unsigned char *s, size_t len);

#endif /* PS_ENVELOPE_H */
