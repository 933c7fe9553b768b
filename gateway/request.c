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

void gw_request_shrink(gw_request *req)
{
    if (req->buf && req->buf_len && req->buf_len < req->buf_cap) {
        char *buf = realloc(req->buf, req->buf_len);
        if (buf) {
            req->buf = buf;
            req->buf_cap = req->buf_len;
        }
    }
    if (req->pairs && req->npairs && req->npairs < req->pairs_cap) {
        gw_pair *pairs = realloc(req->pairs, req->npairs * sizeof(*pairs));
        if (pairs) {
            req->pairs = pairs;
            req->pairs_cap = req->npairs;
        }
    }
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
