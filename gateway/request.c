/*
 * Request buffers and their pool. See request.h.
 */
#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GW_POOL_KEEP 256      /* requests kept for reuse */
#define GW_POOL_KEEP_BUF 8192 /* a larger buffer is freed rather than kept */
#define GW_POOL_KEEP_PAIRS 64 /* likewise for the pairs array */

int gw_request_reserve(gw_request *req, size_t more)
{
    /* A buffer holds at most UINT32_MAX bytes (offsets are 32-bit). Checked first: past
     * it, buf_len + more could wrap (and seem to fit) or cap could double to 0 (and the
     * loop below never end). */
    if (more > UINT32_MAX - req->buf_len)
        return -ENOMEM;
    if (req->buf_len + more <= req->buf_cap)
        return 0;
    size_t cap = req->buf_cap ? req->buf_cap : 512;
    while (cap < req->buf_len + more)
        cap *= 2;
    if (cap > UINT32_MAX)
        return -ENOMEM;
    char *buf = realloc(req->buf, cap);
    if (!buf)
        return -ENOMEM;
    req->buf = buf;
    req->buf_cap = cap;
    return 0;
}

int64_t gw_request_append(gw_request *req, const char *s, size_t len)
{
    /* s may be a string of this buffer, which growing it moves. */
    uintptr_t from = (uintptr_t)s, base = (uintptr_t)req->buf;
    int inside = req->buf && len && from >= base && from < base + req->buf_len;
    if (gw_request_reserve(req, len + 1))
        return -1;
    if (inside)
        s = req->buf + (from - base);
    int64_t off = (int64_t)req->buf_len;
    if (len)
        memcpy(req->buf + req->buf_len, s, len);
    req->buf[req->buf_len + len] = '\0';
    req->buf_len += len + 1;
    return off;
}

gw_pair *gw_request_new_pair(gw_request *req)
{
    if (req->npairs == req->pairs_cap) {
        uint32_t cap = req->pairs_cap ? req->pairs_cap * 2 : 16;
        gw_pair *pairs = realloc(req->pairs, cap * sizeof(*pairs));
        if (!pairs)
            return NULL;
        req->pairs = pairs;
        req->pairs_cap = cap;
    }
    return &req->pairs[req->npairs++];
}

int gw_request_add_pair(gw_request *req, const char *name, size_t name_len, const char *value,
                        size_t value_len)
{
    int64_t n = gw_request_append(req, name, name_len);
    int64_t v = n < 0 ? -1 : gw_request_append(req, value, value_len);
    gw_pair *p = v < 0 ? NULL : gw_request_new_pair(req);
    if (!p)
        return -ENOMEM;
    p->name_off = (uint32_t)n;
    p->name_len = (uint32_t)name_len;
    p->value_off = (uint32_t)v;
    p->value_len = (uint32_t)value_len;
    return 0;
}

const char *gw_request_header(const gw_request *req, const char *name, size_t name_len,
                              size_t *len)
{
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const gw_pair *p = &req->pairs[req->header_at + i];
        if (p->name_len == name_len && !memcmp(req->buf + p->name_off, name, name_len)) {
            *len = p->value_len;
            return req->buf + p->value_off;
        }
    }
    return NULL;
}

/* ---- packed requests ---------------------------------------------------------------- */

/* The strings follow the counts, each as its length (LEB128: one byte below 128) and its
 * bytes, in this order: path, host, ip, body, then name and value of every header, query
 * pair and path parameter. Lengths, not NULs, end them: whatever bytes a string holds, the
 * same come back. */
struct gw_packed_request {
    const struct gw_route *route;
    int16_t method;
    uint8_t version;
    uint8_t keep_alive;
    uint32_t nheaders, nquery, nparams;
    unsigned char data[];
};

static size_t varint_size(size_t n)
{
    size_t size = 1;
    while (n >= 0x80) {
        n >>= 7;
        size++;
    }
    return size;
}

static unsigned char *put_string(unsigned char *out, const char *s, size_t len)
{
    size_t n = len;
    while (n >= 0x80) {
        *out++ = (unsigned char)(n | 0x80);
        n >>= 7;
    }
    *out++ = (unsigned char)n;
    if (len)
        memcpy(out, s, len);
    return out + len;
}

static const unsigned char *get_string(const unsigned char *in, const char **s, size_t *len)
{
    size_t n = 0;
    unsigned shift = 0;
    while (*in & 0x80) {
        n |= (size_t)(*in++ & 0x7f) << shift;
        shift += 7;
    }
    n |= (size_t)*in++ << shift;
    *s = (const char *)in;
    *len = n;
    return in + n;
}

gw_packed_request *gw_request_pack(const gw_request *req)
{
    const char *fixed[4] = {req->buf + req->path_off, req->buf + req->host_off, req->ip,
                            req->buf + req->body_off};
    size_t lens[4] = {req->path_len, req->host_len, strlen(req->ip), req->body_len};
    if (!req->body_len)
        fixed[3] = "";
    const uint32_t groups[3][2] = {{req->header_at, req->nheaders}, {req->query_at, req->nquery},
                                   {req->param_at, req->nparams}};
    size_t size = sizeof(gw_packed_request);
    for (int i = 0; i < 4; i++)
        size += varint_size(lens[i]) + lens[i];
    for (int g = 0; g < 3; g++) {
        for (uint32_t i = 0; i < groups[g][1]; i++) {
            const gw_pair *p = &req->pairs[groups[g][0] + i];
            size += varint_size(p->name_len) + p->name_len + varint_size(p->value_len) + p->value_len;
        }
    }
    gw_packed_request *packed = malloc(size);
    if (!packed)
        return NULL;
    packed->route = req->route;
    packed->method = (int16_t)req->method;
    packed->version = (uint8_t)req->version;
    packed->keep_alive = (uint8_t)req->keep_alive;
    packed->nheaders = req->nheaders;
    packed->nquery = req->nquery;
    packed->nparams = req->nparams;
    unsigned char *out = packed->data;
    for (int i = 0; i < 4; i++)
        out = put_string(out, fixed[i], lens[i]);
    for (int g = 0; g < 3; g++) {
        for (uint32_t i = 0; i < groups[g][1]; i++) {
            const gw_pair *p = &req->pairs[groups[g][0] + i];
            out = put_string(out, req->buf + p->name_off, p->name_len);
            out = put_string(out, req->buf + p->value_off, p->value_len);
        }
    }
    return packed;
}

const struct gw_route *gw_packed_request_route(const gw_packed_request *packed)
{
    return packed->route;
}

gw_request *gw_request_unpack(const gw_packed_request *packed)
{
    gw_request *req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->route = packed->route;
    req->method = packed->method;
    req->version = packed->version;
    req->keep_alive = packed->keep_alive;
    const unsigned char *in = packed->data;
    const char *s;
    size_t len;
    int64_t off[4];
    for (int i = 0; i < 4; i++) {
        in = get_string(in, &s, &len);
        if (i == 2) {
            /* The address was at most GW_PEER_ADDRESS_MAX - 1 bytes when packed. */
            memcpy(req->ip, s, len);
            req->ip[len] = '\0';
            continue;
        }
        if ((off[i] = gw_request_append(req, s, len)) < 0)
            goto fail;
        if (i == 0)
            req->path_off = (uint32_t)off[i], req->path_len = (uint32_t)len;
        else if (i == 1)
            req->host_off = (uint32_t)off[i], req->host_len = (uint32_t)len;
        else
            req->body_off = (uint32_t)off[i], req->body_len = len;
    }
    uint32_t *counts[3] = {&req->nheaders, &req->nquery, &req->nparams};
    uint32_t *starts[3] = {&req->header_at, &req->query_at, &req->param_at};
    const uint32_t want[3] = {packed->nheaders, packed->nquery, packed->nparams};
    for (int g = 0; g < 3; g++) {
        *starts[g] = req->npairs;
        for (uint32_t i = 0; i < want[g]; i++) {
            const char *name, *value;
            size_t name_len, value_len;
            in = get_string(in, &name, &name_len);
            in = get_string(in, &value, &value_len);
            if (gw_request_add_pair(req, name, name_len, value, value_len))
                goto fail;
            (*counts[g])++;
        }
    }
    return req;
fail:
    free(req->buf);
    free(req->pairs);
    free(req);
    return NULL;
}

static void free_memory(gw_request *req)
{
    free(req->buf);
    free(req->pairs);
    free(req);
}

void gw_request_release(gw_request *req)
{
    if (!req)
        return;
    if (!req->pool) {
        free_memory(req); /* gw_request_unpack()'s */
        return;
    }
    if (req->buf_cap > GW_POOL_KEEP_BUF) {
        free(req->buf);
        req->buf = NULL;
        req->buf_cap = 0;
    }
    if (req->pairs_cap > GW_POOL_KEEP_PAIRS) {
        free(req->pairs);
        req->pairs = NULL;
        req->pairs_cap = 0;
    }
    gw_pool *pool = req->pool;
    gw_request *head = atomic_load_explicit(&pool->returned, memory_order_relaxed);
    do {
        req->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&pool->returned, &head, req,
                                                    memory_order_release, memory_order_relaxed));
}

gw_request *gw_pool_take(gw_pool *pool)
{
    if (!pool->free_list) {
        /* Taking the whole stack at once (exchange, not pop) leaves no ABA hazard. */
        gw_request *r = atomic_exchange_explicit(&pool->returned, NULL, memory_order_acquire);
        while (r) {
            gw_request *next = r->next;
            if (pool->free_len < GW_POOL_KEEP) {
                r->next = pool->free_list;
                pool->free_list = r;
                pool->free_len++;
            } else {
                free_memory(r);
            }
            r = next;
        }
    }
    gw_request *req = pool->free_list;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (req)
            req->pool = pool;
        return req;
    }
    pool->free_list = req->next;
    pool->free_len--;
    char *buf = req->buf;
    size_t buf_cap = req->buf_cap;
    gw_pair *pairs = req->pairs;
    uint32_t pairs_cap = req->pairs_cap;
    memset(req, 0, sizeof(*req));
    req->pool = pool;
    req->buf = buf;
    req->buf_cap = buf_cap;
    req->pairs = pairs;
    req->pairs_cap = pairs_cap;
    return req;
}

void gw_pool_free(gw_pool *pool)
{
    gw_request *lists[2] = {atomic_exchange(&pool->returned, NULL), pool->free_list};
    for (int i = 0; i < 2; i++) {
        gw_request *r = lists[i];
        while (r) {
            gw_request *next = r->next;
            free_memory(r);
            r = next;
        }
    }
    pool->free_list = NULL;
    pool->free_len = 0;
}
