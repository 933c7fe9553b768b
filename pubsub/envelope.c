/*
 * envelope.c: the msgpack envelope of a message between processes (see
 * envelope.h for the format).
 *
 * Encoding is msgpack-c's packer writing into one buffer sized up front.
 * Decoding is msgpack-c's unpacker, behind a guard: msgpack-c allocates the
 * elements of an array or map as soon as it reads their count, so a few
 * hostile bytes claiming a container of four billion elements would ask for
 * ~100 GB. The guard walks the input's headers first (six scalar elements in
 * one array, every length within the input) and only a shape that passes it
 * reaches msgpack-c, whose zone then holds one array of six objects.
 */
#include "envelope.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const char *ps_envelope_strerror(int code)
{
    switch (code) {
    case PS_ENV_OK: return "ok";
    case PS_ENV_EMPTY: return "empty message";
    case PS_ENV_TRUNCATED: return "truncated envelope";
    case PS_ENV_TRAILING: return "bytes after the envelope";
    case PS_ENV_NOT_ARRAY: return "not a msgpack array of six elements";
    case PS_ENV_BAD_TYPE: return "an element has the wrong msgpack type";
    case PS_ENV_BAD_VERSION: return "unknown envelope version";
    case PS_ENV_BAD_ORIGIN: return "origin is not 16 bytes";
    case PS_ENV_BAD_SEQ: return "sequence number 0";
    case PS_ENV_BAD_TOPIC: return "topic empty, too long or not UTF-8";
    case PS_ENV_BAD_KIND: return "kind is neither text (1) nor binary (2)";
    case PS_ENV_TOO_LARGE: return "payload too large";
    case PS_ENV_BAD_UTF8: return "text payload is not UTF-8";
    case PS_ENV_MALFORMED: return "malformed msgpack";
    case PS_ENV_NOMEM: return "out of memory";
    default: return "unknown envelope error";
    }
}

int ps_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* past U+10FFFF */
        } else {
            return 0;
        }
        if (len - i - 1 < need)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += need + 1;
    }
    return 1;
}

/* ---- encoding ---------------------------------------------------------------------- */

struct outbuf {
    unsigned char *p;
    size_t len, cap;
};

/* msgpack-c's write callback: the buffer was sized for the whole envelope. */
static int outbuf_write(void *data, const char *buf, size_t len)
{
    struct outbuf *o = data;

    if (o->cap - o->len < len)
        return -1;
    memcpy(o->p + o->len, buf, len);
    o->len += len;
    return 0;
}

int ps_envelope_encode(const ps_envelope *env, unsigned char **out, size_t *out_len)
{
    struct outbuf o;
    msgpack_packer pk;
    int rc = 0;

    if (env->topic_len == 0 || env->topic_len > PS_ENVELOPE_MAX_TOPIC ||
        !ps_utf8_valid((const unsigned char *)env->topic, env->topic_len))
        return PS_ENV_BAD_TOPIC;
    if (env->opcode != PS_OP_TEXT && env->opcode != PS_OP_BINARY)
        return PS_ENV_BAD_KIND;
    if (env->seq == 0)
        return PS_ENV_BAD_SEQ;
    if (env->payload_len > PS_ENVELOPE_MAX_PAYLOAD)
        return PS_ENV_TOO_LARGE;
    if (env->opcode == PS_OP_TEXT && !ps_utf8_valid(env->payload, env->payload_len))
        return PS_ENV_BAD_UTF8;
    o.cap = PS_ENVELOPE_OVERHEAD + env->topic_len + env->payload_len;
    o.len = 0;
    o.p = malloc(o.cap);
    if (o.p == NULL)
        return PS_ENV_NOMEM;
    msgpack_packer_init(&pk, &o, outbuf_write);
    rc |= msgpack_pack_array(&pk, 6);
    rc |= msgpack_pack_uint8(&pk, PS_ENVELOPE_VERSION);
    rc |= msgpack_pack_bin(&pk, PS_ENVELOPE_ORIGIN_LEN);
    rc |= msgpack_pack_bin_body(&pk, env->origin, PS_ENVELOPE_ORIGIN_LEN);
    rc |= msgpack_pack_uint64(&pk, env->seq);
    rc |= msgpack_pack_str(&pk, env->topic_len);
    rc |= msgpack_pack_str_body(&pk, env->topic, env->topic_len);
    rc |= msgpack_pack_uint8(&pk, (uint8_t)env->opcode);
    rc |= msgpack_pack_bin(&pk, env->payload_len);
    if (env->payload_len)
        rc |= msgpack_pack_bin_body(&pk, env->payload, env->payload_len);
    if (rc) { /* cannot happen: the buffer holds the largest headers */
        free(o.p);
        return PS_ENV_NOMEM;
    }
    *out = o.p;
    *out_len = o.len;
    return PS_ENV_OK;
}

/* ---- the guard ------------------------------------------------------------------------ */

enum kind { K_UINT, K_STR, K_BIN };

/* Big-endian read of n (1, 2, 4, 8) bytes. */
static uint64_t be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/*
 * Steps over one scalar element at data[*off]: an unsigned integer (or a
 * signed one holding a non-negative value), a str or a bin. Sets *kind and
 * *value (the integer, or the byte length). Returns PS_ENV_OK, PS_ENV_TRUNCATED,
 * PS_ENV_BAD_TYPE (nil, bool, float, negative, array, map, ext) or
 * PS_ENV_MALFORMED (0xc1, the byte msgpack never uses).
 */
static int step(const unsigned char *data, size_t len, size_t *off, enum kind *kind,
                uint64_t *value)
{
    size_t at = *off;
    size_t width = 0;
    unsigned char c;

    if (at >= len)
        return PS_ENV_TRUNCATED;
    c = data[at++];
    if (c <= 0x7f) {
        *kind = K_UINT;
        *value = c;
    } else if (c >= 0xa0 && c <= 0xbf) {
        *kind = K_STR;
        *value = c & 0x1f;
    } else if (c >= 0xcc && c <= 0xcf) { /* uint 8/16/32/64 */
        width = (size_t)1 << (c - 0xcc);
        *kind = K_UINT;
    } else if (c >= 0xd0 && c <= 0xd3) { /* int 8/16/32/64 */
        width = (size_t)1 << (c - 0xd0);
        if (len - at < width)
            return PS_ENV_TRUNCATED;
        if (data[at] & 0x80)
            return PS_ENV_BAD_TYPE; /* negative */
        *kind = K_UINT;
    } else if (c >= 0xd9 && c <= 0xdb) { /* str 8/16/32 */
        width = (size_t)1 << (c - 0xd9);
        *kind = K_STR;
    } else if (c >= 0xc4 && c <= 0xc6) { /* bin 8/16/32 */
        width = (size_t)1 << (c - 0xc4);
        *kind = K_BIN;
    } else if (c == 0xc1) {
        return PS_ENV_MALFORMED;
    } else {
        return PS_ENV_BAD_TYPE;
    }
    if (width) {
        if (len - at < width)
            return PS_ENV_TRUNCATED;
        *value = be(data + at, width);
        at += width;
    }
    if (*kind != K_UINT) {
        if (*value > len - at)
            return PS_ENV_TRUNCATED;
        at += (size_t)*value;
    }
    *off = at;
    return PS_ENV_OK;
}

/* The six elements' expected kinds, and the error a wrong one gets. */
static const enum kind shape[6] = {K_UINT, K_BIN, K_UINT, K_STR, K_UINT, K_BIN};

/* Checks that data is one array of six scalars of the right kinds and nothing
 * more, without building anything. */
static int guard(const unsigned char *data, size_t len)
{
    size_t off = 1;
    uint64_t count;

    if (len == 0)
        return PS_ENV_EMPTY;
    if ((data[0] & 0xf0) == 0x90) {
        count = data[0] & 0x0f;
    } else if (data[0] == 0xdc || data[0] == 0xdd) {
        size_t width = data[0] == 0xdc ? 2 : 4;

        if (len - 1 < width)
            return PS_ENV_TRUNCATED;
        count = be(data + 1, width);
        off += width;
    } else {
        return data[0] == 0xc1 ? PS_ENV_MALFORMED : PS_ENV_NOT_ARRAY;
    }
    if (count != 6)
        return PS_ENV_NOT_ARRAY;
    for (int i = 0; i < 6; i++) {
        enum kind k;
        uint64_t v;
        int rc = step(data, len, &off, &k, &v);

        if (rc)
            return rc;
        if (k != shape[i])
            return PS_ENV_BAD_TYPE;
    }
    return off == len ? PS_ENV_OK : PS_ENV_TRAILING;
}

/* ---- decoding ---------------------------------------------------------------------- */

int ps_envelope_decode(const void *data, size_t len, ps_envelope *out)
{
    msgpack_unpacked msg;
    size_t off = 0;
    int rc = guard(data, len);

    if (rc)
        return rc;
    msgpack_unpacked_init(&msg);
    switch (msgpack_unpack_next(&msg, data, len, &off)) {
    case MSGPACK_UNPACK_SUCCESS:
        break;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        msgpack_unpacked_destroy(&msg);
        return PS_ENV_NOMEM;
    default:
        msgpack_unpacked_destroy(&msg);
        return PS_ENV_MALFORMED;
    }
    const msgpack_object *top = &msg.data;
    const msgpack_object *e = top->via.array.ptr;
    if (off != len || top->type != MSGPACK_OBJECT_ARRAY || top->via.array.size != 6 ||
        e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || e[1].type != MSGPACK_OBJECT_BIN ||
        e[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER || e[3].type != MSGPACK_OBJECT_STR ||
        e[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER || e[5].type != MSGPACK_OBJECT_BIN) {
        /* The guard and msgpack-c disagree: say malformed rather than trust either. */
        rc = PS_ENV_MALFORMED;
    } else if (e[0].via.u64 != PS_ENVELOPE_VERSION) {
        rc = PS_ENV_BAD_VERSION;
    } else if (e[1].via.bin.size != PS_ENVELOPE_ORIGIN_LEN) {
        rc = PS_ENV_BAD_ORIGIN;
    } else if (e[2].via.u64 == 0) {
        rc = PS_ENV_BAD_SEQ;
    } else if (e[3].via.str.size == 0 || e[3].via.str.size > PS_ENVELOPE_MAX_TOPIC ||
               !ps_utf8_valid((const unsigned char *)e[3].via.str.ptr, e[3].via.str.size)) {
        rc = PS_ENV_BAD_TOPIC;
    } else if (e[4].via.u64 != PS_OP_TEXT && e[4].via.u64 != PS_OP_BINARY) {
        rc = PS_ENV_BAD_KIND;
    } else if (e[5].via.bin.size > PS_ENVELOPE_MAX_PAYLOAD) {
        rc = PS_ENV_TOO_LARGE;
    } else if (e[4].via.u64 == PS_OP_TEXT &&
               !ps_utf8_valid((const unsigned char *)e[5].via.bin.ptr, e[5].via.bin.size)) {
        rc = PS_ENV_BAD_UTF8;
    } else {
        memcpy(out->origin, e[1].via.bin.ptr, PS_ENVELOPE_ORIGIN_LEN);
        out->seq = e[2].via.u64;
        out->topic = e[3].via.str.ptr;
        out->topic_len = e[3].via.str.size;
        out->opcode = (unsigned)e[4].via.u64;
        out->payload = (const unsigned char *)e[5].via.bin.ptr;
        out->payload_len = e[5].via.bin.size;
    }
    /* The decoded pointers are into data, not the zone: freeing it is safe. */
    msgpack_unpacked_destroy(&msg);
    return rc;
}
