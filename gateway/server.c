/*
 * The HTTP server on libwebsockets. See server.h for the threads and queues.
 */
#include "server.h"
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ---------------------------------------------------------------- */

const char *gw_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 422: return "Unprocessable Entity";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

char *gw_response_alloc(size_t len)
{
    char *p = malloc(LWS_PRE + len + 1);
    return p ? p + LWS_PRE : NULL;
}

void gw_response_free(char *response)
{
    if (response)
        free(response - LWS_PRE);
}

char *gw_response_plain(int status, const char *body, const char *extra_headers, int keep_alive,
                        size_t *len)
{
    size_t body_len = strlen(body);
    const char *extra = extra_headers ? extra_headers : "";
    size_t cap = 160 + strlen(extra) + body_len;
    char *out = gw_response_alloc(cap);
    if (!out)
        return NULL;
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     "content-length: %zu\r\n%s%s\r\n%s",
                     status, gw_http_reason(status), body_len, extra,
                     keep_alive ? "" : "connection: close\r\n", body);
    if (n < 0 || (size_t)n >= cap) {
        gw_response_free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

static void fifo_push(void **head, void **tail, void *item, size_t next_off)
{
    *(void **)((char *)item + next_off) = NULL;
    if (*tail)
        *(void **)((char *)*tail + next_off) = item;
    else
        *head = item;
    *tail = item;
}

/* ---- requests ------------------------------------------------------------------- */

static int req_reserve(gw_request *req, size_t more)
{
    if (req->buf_len + more <= req->buf_cap)
        return 0;
    size_t cap = req->buf_cap ? req->buf_cap : 256;
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

/* Appends bytes and a NUL; returns the offset, or -1 when out of memory. */
static int64_t req_append(gw_request *req, const char *s, size_t len)
{
    if (req_reserve(req, len + 1))
        return -1;
    int64_t off = (int64_t)req->buf_len;
    memcpy(req->buf + req->buf_len, s, len);
    req->buf[req->buf_len + len] = '\0';
    req->buf_len += len + 1;
    return off;
}

static gw_pair *req_new_pair(gw_request *req)
{
    uint32_t used = req->nparams + req->nquery + req->nheaders;
    if (used == req->pairs_cap) {
        uint32_t cap = req->pairs_cap ? req->pairs_cap * 2 : 16;
        gw_pair *pairs = realloc(req->pairs, cap * sizeof(*pairs));
        if (!pairs)
            return NULL;
        req->pairs = pairs;
        req->pairs_cap = cap;
    }
    return &req->pairs[used];
}

static int req_add_pair(gw_request *req, const char *name, size_t name_len, const char *value,
                        size_t value_len)
{
    gw_pair *p = req_new_pair(req);
    if (!p)
        return -ENOMEM;
    int64_t n = req_append(req, name, name_len);
    if (n < 0)
        return -ENOMEM;
    int64_t v = req_append(req, value, value_len);
    if (v < 0)
        return -ENOMEM;
    p->name_off = (uint32_t)n;
    p->name_len = (uint32_t)name_len;
    p->value_off = (uint32_t)v;
    p->value_len = (uint32_t)value_len;
    return 0;
}

/*
 * The request pool. Requests are made on the I/O thread and finished on whichever thread
 * ran the handler; freeing them there and allocating anew on the I/O thread makes every
 * request cross glibc's arenas (locked slow paths, measured at ~5% of the I/O thread's
 * time for a trivial handler). Finished requests instead go back, buffers and all, onto a
 * lock-free stack that the I/O thread takes whole when its own list runs dry. Taking the
 * whole stack at once (exchange, not pop) leaves no ABA hazard.
 */
#define GW_POOL_KEEP 256             /* requests kept for reuse */
#define GW_POOL_KEEP_BUF 8192        /* a larger buffer is freed rather than kept */
#define GW_POOL_KEEP_PAIRS 64        /* likewise for the pairs array */

static void req_free_memory(gw_request *req)
{
    free(req->buf);
    free(req->pairs);
    free(req);
}

/* Any thread: gives a finished request back to its server's pool. */
static void req_destroy(gw_request *req)
{
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
    gw_server *srv = req->owner;
    gw_request *head = atomic_load_explicit(&srv->pool_returned, memory_order_relaxed);
    do {
        req->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&srv->pool_returned, &head, req,
                                                    memory_order_release,
                                                    memory_order_relaxed));
}

/* I/O thread: a request from the pool, emptied, or a new one. */
static gw_request *req_take(gw_server *srv)
{
    if (!srv->pool) {
        gw_request *r = atomic_exchange_explicit(&srv->pool_returned, NULL, memory_order_acquire);
        while (r) {
            gw_request *next = r->next;
            if (srv->pool_len < GW_POOL_KEEP) {
                r->next = srv->pool;
                srv->pool = r;
                srv->pool_len++;
            } else {
                req_free_memory(r);
            }
            r = next;
        }
    }
    gw_request *req = srv->pool;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (req)
            req->owner = srv;
        return req;
    }
    srv->pool = req->next;
    srv->pool_len--;
    char *buf = req->buf;
    size_t buf_cap = req->buf_cap;
    gw_pair *pairs = req->pairs;
    uint32_t pairs_cap = req->pairs_cap;
    memset(req, 0, sizeof(*req));
    req->owner = srv;
    req->buf = buf;
    req->buf_cap = buf_cap;
    req->pairs = pairs;
    req->pairs_cap = pairs_cap;
    return req;
}

/* Calls fn on every request of a list linked by next; fn may free it. */
static void each_request(gw_request *list, void (*fn)(gw_request *))
{
    while (list) {
        gw_request *next = list->next;
        fn(list);
        list = next;
    }
}

/* Frees every pooled request; nothing may be released afterwards. */
static void pool_free(gw_server *srv)
{
    each_request(atomic_exchange(&srv->pool_returned, NULL), req_free_memory);
    each_request(srv->pool, req_free_memory);
    srv->pool = NULL;
    srv->pool_len = 0;
}

gw_request *gw_request_new_copy(gw_server *srv, const gw_route *route, int method,
                                const char *path, size_t len, const gw_param *params,
                                int nparams)
{
    gw_request *req = req_take(srv);
    if (!req)
        return NULL;
    if (req_reserve(req, len + 1 + 512) || req_append(req, path, len) < 0) {
        req_destroy(req);
        return NULL;
    }
    req->route = route;
    req->method = method;
    req->keep_alive = 1;
    req->path_off = 0;
    req->path_len = (uint32_t)len;
    /* Parameter values point into lws' copy of the path; keep our own. */
    for (int i = 0; i < nparams; i++) {
        if (req_add_pair(req, params[i].name, params[i].name_len, params[i].value,
                         params[i].value_len)) {
            req_destroy(req);
            return NULL;
        }
        req->nparams++;
    }
    return req;
}

void gw_request_free_unanswered(gw_request *req)
{
    if (req)
        req_destroy(req);
}

int gw_route_set_ws_options(gw_route *route, int policy, int compress, int precheck,
                            const char *origins, size_t origins_len)
{
    char *copy = NULL;
    if (origins) {
        copy = malloc(origins_len + 2);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, origins, origins_len);
        copy[origins_len] = '\0';
        copy[origins_len + 1] = '\0';
    }
    free(route->ws.origins);
    route->ws.origins = copy;
    route->ws.policy = policy;
    route->ws.compress = compress;
    route->ws.precheck = precheck;
    return 0;
}

void gw_server_configure_ws(gw_server *srv, const gw_ws_config *cfg)
{
    gw_ws_configure(srv->ws, cfg);
}

/* ---- routes --------------------------------------------------------------------- */

gw_server *gw_server_new(void)
{
    gw_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->router = gw_router_new();
    if (!srv->router) {
        free(srv);
        return NULL;
    }
    srv->async_fd = -1;
    srv->ws = gw_ws_hub_new(srv);
    if (!srv->ws) {
        gw_router_free(srv->router);
        free(srv);
        return NULL;
    }
    pthread_mutex_init(&srv->sync_lock, NULL);
    pthread_cond_init(&srv->sync_cond, NULL);
    pthread_mutex_init(&srv->async_lock, NULL);
    pthread_mutex_init(&srv->answer_lock, NULL);
    return srv;
}

gw_route *gw_server_add_route(gw_server *srv, int method, const char *pattern, int kind,
                              void *handler, char *err, size_t errlen, int *code)
{
    gw_route_list *rl = &srv->routes;
    *code = -ENOMEM;
    if (rl->len == rl->cap) {
        size_t cap = rl->cap ? rl->cap * 2 : 16;
        gw_route **items = realloc(rl->items, cap * sizeof(*items));
        if (!items)
            goto oom;
        rl->items = items;
        rl->cap = cap;
    }
    gw_route *route = calloc(1, sizeof(*route));
    if (!route)
        goto oom;
    route->pattern = strdup(pattern);
    if (!route->pattern) {
        free(route);
        goto oom;
    }
    route->kind = kind;
    route->method = method;
    route->handler = handler;
    int rc = gw_router_add(srv->router, method, pattern, route, err, errlen);
    if (rc) {
        free(route->pattern);
        free(route);
        *code = rc;
        return NULL;
    }
    rl->items[rl->len++] = route;
    *code = 0;
    return route;
oom:
    if (err && errlen)
        snprintf(err, errlen, "out of memory adding route '%s'", pattern);
    return NULL;
}

int gw_server_set_const(gw_server *srv, gw_route *route, const char *response, size_t len,
                        size_t head_len)
{
    (void)srv;
    char *copy = gw_response_alloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, response, len);
    gw_response_free(route->const_response);
    route->const_response = copy;
    route->const_len = len;
    route->const_head_len = head_len;
    return 0;
}

void gw_server_each_route(gw_server *srv, void (*fn)(gw_route *route, void *arg), void *arg)
{
    for (size_t i = 0; i < srv->routes.len; i++)
        fn(srv->routes.items[i], arg);
}

/* ---- the I/O thread's writes ------------------------------------------------------ */

/* Writes a plain-text answer at once (from any HTTP callback). Returns lws_write's result. */
int gw__send_plain(struct lws *wsi, int status, const char *body, const char *extra_headers,
                      int keep_alive)
{
    size_t len;
    char *out = gw_response_plain(status, body, extra_headers, keep_alive, &len);
    if (!out)
        return -1;
    int n = lws_write(wsi, (unsigned char *)out, len, LWS_WRITE_HTTP_FINAL);
    gw_response_free(out);
    return n;
}

/* Answers at once and returns what the callback should return: -1 to close the
 * connection (always when close_after), 0 to keep it for the next request. */
static int respond_plain_now(struct lws *wsi, int status, const char *body,
                             const char *extra_headers, int close_after)
{
    if (gw__send_plain(wsi, status, body, extra_headers, !close_after) < 0 || close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- parsing a request ------------------------------------------------------------ */

static const struct {
    enum lws_token_indexes token;
    int method;
} method_tokens[] = {
    {WSI_TOKEN_GET_URI, GW_METHOD_GET},       {WSI_TOKEN_POST_URI, GW_METHOD_POST},
    {WSI_TOKEN_PUT_URI, GW_METHOD_PUT},       {WSI_TOKEN_DELETE_URI, GW_METHOD_DELETE},
    {WSI_TOKEN_PATCH_URI, GW_METHOD_PATCH},   {WSI_TOKEN_HEAD_URI, GW_METHOD_HEAD},
    {WSI_TOKEN_OPTIONS_URI, GW_METHOD_OPTIONS}, {WSI_TOKEN_CONNECT, GW_METHOD_CONNECT},
};

static int request_method(struct lws *wsi)
{
    for (size_t i = 0; i < sizeof(method_tokens) / sizeof(method_tokens[0]); i++)
        if (lws_hdr_total_length(wsi, method_tokens[i].token) > 0)
            return method_tokens[i].method;
    return -1;
}

/* Whether a token is a header worth handing to Python (not a method, a pseudo-header, or
 * something lws stores for itself). Name is set to the lower-case name without colon. */
static int header_token_name(int token, const char **name, size_t *len)
{
    const unsigned char *s = lws_token_to_string((enum lws_token_indexes)token);
    if (!s)
        return 0;
    size_t n = strlen((const char *)s);
    if (n < 2 || s[n - 1] != ':' || s[0] == ':')
        return 0;
    *name = (const char *)s;
    *len = n - 1;
    return 1;
}

/* The tokens that are request headers, with their names, found once per process. */
static struct {
    int token;
    const char *name;
    size_t len;
} header_tokens[WSI_TOKEN_COUNT];
static int n_header_tokens;
static pthread_once_t header_tokens_once = PTHREAD_ONCE_INIT;

static void find_header_tokens(void)
{
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const char *name;
        size_t len;
        if (t == WSI_TOKEN_HTTP_URI_ARGS || !header_token_name(t, &name, &len))
            continue;
        header_tokens[n_header_tokens].token = t;
        header_tokens[n_header_tokens].name = name;
        header_tokens[n_header_tokens].len = len;
        n_header_tokens++;
    }
}

/* Calls fn for each fragment lws stored for token (each occurrence of a header, or each
 * "name=value" of the query string), in order. fn returns 0 or a negative errno, which
 * stops the walk and is returned. */
typedef int (*fragment_fn)(gw_request *req, const char *s, size_t len, void *arg);

static int each_fragment(gw_request *req, struct lws *wsi, int token, fragment_fn fn, void *arg)
{
    char stack[1024];
    for (int i = 0; i < 65536; i++) {
        int flen = lws_hdr_fragment_length(wsi, (enum lws_token_indexes)token, i);
        char *tmp = (size_t)flen < sizeof(stack) ? stack : malloc((size_t)flen + 1);
        if (!tmp)
            return -ENOMEM;
        /* Past the last fragment lws reports length 0 and refuses the copy. */
        int got = lws_hdr_copy_fragment(wsi, tmp, flen + 1, (enum lws_token_indexes)token, i);
        int rc = got >= 0 ? fn(req, tmp, (size_t)got, arg) : 0;
        if (tmp != stack)
            free(tmp);
        if (rc)
            return rc;
        if (got < 0)
            break;
    }
    return 0;
}

struct header_walk {
    const char *name;
    size_t name_len;
    int is_host;
    size_t *head_bytes;
};

/* One occurrence of a header: a pair of its own (a repeated header stays repeated),
 * without the spaces lws keeps in front of a value. */
static int add_header(gw_request *req, const char *v, size_t len, void *arg)
{
    struct header_walk *w = arg;
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    *w->head_bytes += w->name_len + len + 4;
    if (w->is_host && !req->host_len) {
        int64_t off = req_append(req, v, len);
        if (off < 0)
            return -ENOMEM;
        req->host_off = (uint32_t)off;
        req->host_len = (uint32_t)len;
    }
    if (req_add_pair(req, w->name, w->name_len, v, len))
        return -ENOMEM;
    req->nheaders++;
    return 0;
}

/* One "name=value" of the query string (lws has decoded it already). */
static int add_query_pair(gw_request *req, const char *s, size_t len, void *arg)
{
    size_t *head_bytes = arg;
    if (!len)
        return 0;
    *head_bytes += len + 1;
    const char *eq = memchr(s, '=', len);
    size_t nlen = eq ? (size_t)(eq - s) : len;
    if (req_add_pair(req, s, nlen, eq ? eq + 1 : "", eq ? len - nlen - 1 : 0))
        return -ENOMEM;
    req->nquery++;
    return 0;
}

#if !GW_LWS_AT_LEAST(4, 3)
/* libwebsockets 4.1 cannot list the headers it has no token for; it can only look one
 * up by name. These names (and those the app asks for) are looked up on every request. */
static int copy_watched_headers(gw_server *srv, gw_request *req, struct lws *wsi,
                                size_t *head_bytes)
{
    char value[4096];
    for (size_t i = 0; i < srv->watched.len; i++) {
        const char *lname = srv->watched.names[i].name;
        size_t n = srv->watched.names[i].len;
        int vlen = lws_hdr_custom_length(wsi, lname, (int)n + 1);
        if (vlen < 0)
            continue;
        char *v = (size_t)vlen < sizeof(value) ? value : malloc((size_t)vlen + 1);
        if (!v)
            return -ENOMEM;
        int got = lws_hdr_custom_copy(wsi, v, vlen + 1, lname, (int)n + 1);
        int rc = 0;
        if (got >= 0) {
            const char *p = v;
            while (got > 0 && (*p == ' ' || *p == '\t')) {
                p++;
                got--;
            }
            *head_bytes += n + (size_t)got + 4;
            rc = req_add_pair(req, lname, n, p, (size_t)got);
            if (!rc)
                req->nheaders++;
        }
        if (v != value)
            free(v);
        if (rc)
            return rc;
    }
    return 0;
}
#endif

int gw_server_watch_header(gw_server *srv, const char *name)
{
    size_t n = strlen(name);
    if (!n || n > 128)
        return -EINVAL;
    for (size_t i = 0; i < srv->watched.len; i++)
        if (srv->watched.names[i].len == n && !strncasecmp(srv->watched.names[i].name, name, n))
            return 0;
    if (srv->watched.len == srv->watched.cap) {
        size_t cap = srv->watched.cap ? srv->watched.cap * 2 : 32;
        struct gw_watched_name *names = realloc(srv->watched.names, cap * sizeof(*names));
        if (!names)
            return -ENOMEM;
        srv->watched.names = names;
        srv->watched.cap = cap;
    }
    char *copy = malloc(n + 2);
    if (!copy)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        copy[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    copy[n] = ':';
    copy[n + 1] = '\0';
    srv->watched.names[srv->watched.len].name = copy;
    srv->watched.names[srv->watched.len].len = n;
    srv->watched.len++;
    return 1;
}

#if GW_LWS_AT_LEAST(4, 3)
struct custom_walk {
    gw_request *req;
    struct lws *wsi;
    size_t *head_bytes;
    int rc;
};

static void copy_custom_header(const char *name, int nlen, void *opaque)
{
    struct custom_walk *w = opaque;
    if (w->rc || nlen <= 0)
        return;
    int vlen = lws_hdr_custom_length(w->wsi, name, nlen);
    if (vlen < 0)
        return;
    char *value = malloc((size_t)vlen + 1);
    char lower[256];
    size_t n = (size_t)nlen;
    if (n && name[n - 1] == ':')
        n--;
    if (!value || n >= sizeof(lower)) {
        free(value);
        w->rc = value ? 0 : -ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    int got = lws_hdr_custom_copy(w->wsi, value, vlen + 1, name, nlen);
    if (got >= 0) {
        *w->head_bytes += n + (size_t)got + 4;
        if (req_add_pair(w->req, lower, n, value, (size_t)got))
            w->rc = -ENOMEM;
        else
            w->req->nheaders++;
    }
    free(value);
}
#endif

/* Copies query pairs and headers into the request. Returns 0, -ENOMEM, or -E2BIG when the
 * request head is larger than allowed. */
int gw__copy_head(gw_server *srv, gw_request *req, struct lws *wsi)
{
    size_t head_bytes = req->path_len;
    if (each_fragment(req, wsi, WSI_TOKEN_HTTP_URI_ARGS, add_query_pair, &head_bytes))
        return -ENOMEM;
    pthread_once(&header_tokens_once, find_header_tokens);
    for (int i = 0; i < n_header_tokens; i++) {
        int t = header_tokens[i].token;
        if (lws_hdr_total_length(wsi, (enum lws_token_indexes)t) <= 0) {
            /* Most known headers are absent; a present one may still be empty. */
            char probe[1];
            if (lws_hdr_copy_fragment(wsi, probe, 1, (enum lws_token_indexes)t, 0) < 0)
                continue;
        }
        struct header_walk w = {header_tokens[i].name, header_tokens[i].len,
                                t == WSI_TOKEN_HOST, &head_bytes};
        if (each_fragment(req, wsi, t, add_header, &w))
            return -ENOMEM;
    }
#if GW_LWS_AT_LEAST(4, 3)
    struct custom_walk walk = {req, wsi, &head_bytes, 0};
    lws_hdr_custom_name_foreach(wsi, copy_custom_header, &walk);
    if (walk.rc)
        return walk.rc;
#else
    if (copy_watched_headers(srv, req, wsi, &head_bytes))
        return -ENOMEM;
#endif
    if (head_bytes > srv->cfg.max_header)
        return -E2BIG;
    return 0;
}

/* The request's HTTP version: 10 or 11, 0 when lws saw none, -1 for any other. */
static int http_version(struct lws *wsi)
{
    char v[16];
    int n = lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP);
    if (n <= 0)
        return 0;
    if (!strcasecmp(v, "HTTP/1.1"))
        return 11;
    if (!strcasecmp(v, "HTTP/1.0"))
        return 10;
    return -1;
}

/* Whether the connection closes after this request, decided exactly as lws decides it
 * (so that our "connection: close" header tells the truth). */
static int client_wants_close(struct lws *wsi, int version)
{
    char conn[64];
    int n = lws_hdr_copy(wsi, conn, sizeof(conn), WSI_TOKEN_CONNECTION);
    if (n > 0 && !strcasecmp(conn, "close"))
        return 1;
    if (n > 0 && !strcasecmp(conn, "keep-alive"))
        return 0;
    return version != 11;
}

/* Whether s (n bytes) is 1*DIGIT, as Content-Length must be. */
static int all_digits(const char *s, int n)
{
    if (n <= 0 || n > 19)
        return 0;
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* ---- hand-offs -------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sync_timer_fired(lws_sorted_usec_list_t *sul);

/*
 * I/O thread, sync_lock held, queue not empty. Wakes a worker when none is awake, or
 * when the awake ones have taken nothing for GW_SYNC_STALL_NS (they are blocked inside
 * handlers); otherwise arms a timer to look again, so queued requests never wait on a
 * blocked handler for longer than that.
 */
static void sync_kick_locked(gw_server *srv)
{
    int awake = srv->sync_awake + srv->sync_signalled;
    int stalled = awake > 0 && now_ns() - srv->sync_progress_ns > GW_SYNC_STALL_NS;
    if (srv->sync_idle > srv->sync_signalled && (awake == 0 || stalled)) {
        srv->sync_signalled++;
        srv->sync_progress_ns = now_ns();
        pthread_cond_signal(&srv->sync_cond);
    }
    if (!srv->sync_timer_armed && srv->context) {
        srv->sync_timer_armed = 1;
        lws_sul_schedule(srv->context, 0, &srv->sync_timer, sync_timer_fired,
                         GW_SYNC_STALL_NS / 1000);
    }
}

static void sync_timer_fired(lws_sorted_usec_list_t *sul)
{
    gw_server *srv = lws_container_of(sul, gw_server, sync_timer);
    srv->sync_timer_armed = 0;
    pthread_mutex_lock(&srv->sync_lock);
    if (srv->sync_head && !srv->sync_closed)
        sync_kick_locked(srv);
    pthread_mutex_unlock(&srv->sync_lock);
}

void gw__wake_loop(gw_server *srv)
{
    uint64_t one = 1;
    if (write(srv->async_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        lwsl_err("gateway: eventfd write failed: %s\n", strerror(errno));
}

static void dispatch(gw_server *srv, gw_conn *conn, struct lws *wsi, gw_request *req)
{
    gw_pending *p = calloc(1, sizeof(*p));
    if (!p) {
        req_destroy(req);
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        return;
    }
    p->wsi = wsi;
    req->pending = p;
    conn->pending = p;
    atomic_fetch_add(&srv->in_flight, 1);
    /* The handler may take a while; the connection stays open until it answers or the
     * client leaves (lws tells us through LWS_CALLBACK_CLOSED_HTTP). */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);

    /* Held back until the end of this service round (flush_round), so that everything
     * one poll() brought in reaches its queue under one lock and one wake-up. */
    if (req->route->kind == GW_ROUTE_ASYNC)
        fifo_push((void **)&srv->round_async_head, (void **)&srv->round_async_tail, req,
                  offsetof(gw_request, next));
    else
        fifo_push((void **)&srv->round_sync_head, (void **)&srv->round_sync_tail, req,
                  offsetof(gw_request, next));
}

/* I/O thread, after each lws_service() round: hands the round's requests over. */
static void flush_round(gw_server *srv)
{
    if (srv->round_async_head) {
        pthread_mutex_lock(&srv->async_lock);
        int was_empty = srv->async_head == NULL;
        if (srv->async_tail)
            srv->async_tail->next = srv->round_async_head;
        else
            srv->async_head = srv->round_async_head;
        srv->async_tail = srv->round_async_tail;
        pthread_mutex_unlock(&srv->async_lock);
        srv->round_async_head = srv->round_async_tail = NULL;
        if (was_empty)
            gw__wake_loop(srv);
    }
    if (srv->round_sync_head) {
        pthread_mutex_lock(&srv->sync_lock);
        if (srv->sync_tail)
            srv->sync_tail->next = srv->round_sync_head;
        else
            srv->sync_head = srv->round_sync_head;
        srv->sync_tail = srv->round_sync_tail;
        srv->round_sync_head = srv->round_sync_tail = NULL;
        sync_kick_locked(srv);
        pthread_mutex_unlock(&srv->sync_lock);
    }
}

/* sync_lock held: pops the oldest sync request for worker `worker`, or returns NULL. */
static gw_request *sync_pop_locked(gw_server *srv, int worker)
{
    gw_request *req = srv->sync_head;
    if (req) {
        srv->sync_head = req->next;
        if (!srv->sync_head)
            srv->sync_tail = NULL;
        req->next = NULL;
        srv->sync_progress_ns = now_ns();
        srv->sync_last_worker = worker;
    }
    return req;
}

/* sync_lock held: whether another awake worker is taking requests steadily, so that this
 * one adds nothing but GIL contention and should sleep. */
static int sync_others_draining(gw_server *srv, int worker)
{
    return srv->sync_awake > 1 && srv->sync_last_worker != worker &&
           now_ns() - srv->sync_progress_ns < GW_SYNC_STALL_NS;
}

gw_request *gw_server_try_next_sync(gw_server *srv, int worker)
{
    pthread_mutex_lock(&srv->sync_lock);
    gw_request *req = sync_others_draining(srv, worker) ? NULL : sync_pop_locked(srv, worker);
    pthread_mutex_unlock(&srv->sync_lock);
    return req;
}

gw_request *gw_server_next_sync(gw_server *srv, int worker)
{
    gw_request *req = NULL;
    pthread_mutex_lock(&srv->sync_lock);
    while (!srv->sync_closed) {
        if (srv->sync_head && !sync_others_draining(srv, worker)) {
            req = sync_pop_locked(srv, worker);
            break;
        }
        srv->sync_awake--;
        srv->sync_idle++;
        pthread_cond_wait(&srv->sync_cond, &srv->sync_lock);
        srv->sync_idle--;
        srv->sync_awake++;
        if (srv->sync_signalled > 0) {
            /* Woken on purpose (nobody awake, or the awake ones stalled): take work. */
            srv->sync_signalled--;
            if (srv->sync_head) {
                req = sync_pop_locked(srv, worker);
                break;
            }
        }
    }
    pthread_mutex_unlock(&srv->sync_lock);
    return req;
}

void gw_server_worker_started(gw_server *srv)
{
    pthread_mutex_lock(&srv->sync_lock);
    srv->sync_awake++;
    pthread_mutex_unlock(&srv->sync_lock);
}

int gw_server_async_fd(const gw_server *srv)
{
    return srv->async_fd;
}

void gw_server_reset_wake(gw_server *srv)
{
    uint64_t v;
    if (read(srv->async_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        lwsl_err("gateway: eventfd read failed: %s\n", strerror(errno));
}

gw_request *gw_server_take_async(gw_server *srv)
{
    pthread_mutex_lock(&srv->async_lock);
    gw_request *list = srv->async_head;
    srv->async_head = srv->async_tail = NULL;
    pthread_mutex_unlock(&srv->async_lock);
    return list;
}

int gw_server_respond(gw_server *srv, gw_request *req, char *response, size_t len)
{
    gw_pending *p = req->pending;
    if (!p) {
        gw_response_free(response);
        return -ENOTCONN;
    }
    req->pending = NULL;
    p->response = response;
    p->len = len;
    pthread_mutex_lock(&srv->answer_lock);
    int was_empty = srv->answer_head == NULL;
    fifo_push((void **)&srv->answer_head, (void **)&srv->answer_tail, p,
              offsetof(gw_pending, next));
    struct lws_context *ctx = srv->context;
    pthread_mutex_unlock(&srv->answer_lock);
    if (was_empty && ctx)
        lws_cancel_service(ctx);
    return 0;
}

void gw_request_free(gw_server *srv, gw_request *req)
{
    if (!req)
        return;
    if (req->pending) {
        size_t len;
        char *out = gw_response_plain(500, "Internal Server Error", NULL, 0, &len);
        if (out)
            (void)gw_server_respond(srv, req, out, len);
    }
    req_destroy(req);
}

static void pending_free(gw_pending *p)
{
    gw_response_free(p->response);
    free(p);
}

/* Frees a request that never reached Python, with its pending (the context is gone). */
static void req_discard(gw_request *req)
{
    if (req->pending) {
        pending_free(req->pending);
    }
    req_destroy(req);
}

/*
 * I/O thread: writes an answer to its connection at once instead of asking for WRITEABLE
 * first, which saves a poll round per request. lws keeps whatever the socket does not
 * take and completes the transaction once it has gone out.
 */
static void write_answer(gw_pending *p)
{
    struct lws *wsi = p->wsi;
    gw_conn *conn = lws_wsi_user(wsi);
    if (!conn || conn->pending != p) {
        /* Not the answer this connection waits for: it cannot be written, and the
         * connection would hang waiting for one. Should never happen. */
        lwsl_err("gateway: an answer lost its connection's state\n");
        pending_free(p);
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        return;
    }
    conn->pending = NULL;
    int n = lws_write(wsi, (unsigned char *)p->response, p->len, LWS_WRITE_HTTP_FINAL);
    pending_free(p);
    /* Outside the connection's own callback a non-zero answer cannot close it: ask lws to. */
    if (n < 0 || lws_http_transaction_completed(wsi))
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

/* I/O thread: takes every answer and writes those whose connection is still there. */
static void drain_answers(gw_server *srv)
{
    pthread_mutex_lock(&srv->answer_lock);
    gw_pending *p = srv->answer_head;
    srv->answer_head = srv->answer_tail = NULL;
    pthread_mutex_unlock(&srv->answer_lock);
    while (p) {
        gw_pending *next = p->next;
        atomic_fetch_sub(&srv->in_flight, 1);
        if (p->wsi)
            write_answer(p);
        else
            pending_free(p);
        p = next;
    }
}

/* ---- the libwebsockets callback --------------------------------------------------- */

/*
 * The peer's address, asked of the kernel once per connection. It cannot live in gw_conn:
 * libwebsockets frees the per-session data after every HTTP transaction (when it rebinds
 * the protocol for the next request), so it hangs off the wsi itself and is freed at
 * LWS_CALLBACK_WSI_DESTROY. An IPv4 peer on a dual-stack socket reads as plain IPv4.
 */
const char *gw__peer_address(struct lws *wsi)
{
    char *ip = lws_get_opaque_user_data(wsi);
    if (ip)
        return ip;
    ip = malloc(GW_PEER_ADDRESS_MAX);
    if (!ip)
        return "";
    lws_get_peer_simple(wsi, ip, GW_PEER_ADDRESS_MAX);
    if (!strncmp(ip, "::ffff:", 7))
        memmove(ip, ip + 7, strlen(ip + 7) + 1);
    lws_set_opaque_user_data(wsi, ip);
    return ip;
}

static int on_http(gw_server *srv, gw_conn *conn, struct lws *wsi, const char *path, size_t len)
{
    int method = request_method(wsi);
    int version = http_version(wsi);
    int close_after = client_wants_close(wsi, version);
    if (version < 0)
        return respond_plain_now(wsi, 505, "HTTP Version Not Supported", NULL, 1);
    if (method < 0)
        return respond_plain_now(wsi, 501, "Not Implemented", NULL, 1);
    if (atomic_load(&srv->draining))
        return respond_plain_now(wsi, 503, "Service Unavailable", NULL, 1);

    gw_param params[GW_ROUTER_MAX_PARAMS];
    int nparams = 0;
    unsigned allowed = 0;
    gw_route *route = gw_router_match(srv->router, method, path, len, params, &nparams, &allowed);
    if (!route && method == GW_METHOD_HEAD) {
        route = gw_router_match(srv->router, GW_METHOD_GET, path, len, params, &nparams, NULL);
    }
    if (!route) {
        if (allowed & (1u << GW_METHOD_GET))
            allowed |= 1u << GW_METHOD_HEAD; /* HEAD is served by every GET route */
        if (!allowed)
            return respond_plain_now(wsi, 404, "Not Found", NULL, close_after);
        char allow[160] = "allow: ";
        size_t at = strlen(allow);
        for (int m = 0; m < GW_METHOD_COUNT; m++) {
            if (!(allowed & (1u << m)))
                continue;
            at += (size_t)snprintf(allow + at, sizeof(allow) - at, "%s%s",
                                   at > 7 ? ", " : "", gw_method_name(m));
        }
        snprintf(allow + at, sizeof(allow) - at, "\r\n");
        return respond_plain_now(wsi, 405, "Method Not Allowed", allow, close_after);
    }

    /* Bodies are delimited by Content-Length only: a transfer coding (chunked) is
     * refused before Content-Length is looked at, so that the two never disagree. */
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
        return respond_plain_now(wsi, 411, "Length Required", NULL, 1);
    char cl[32];
    size_t body_len = 0;
    int cl_len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (cl_len > 0) {
        int n = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
        if (!all_digits(cl, n))
            return respond_plain_now(wsi, 400, "Invalid Content-Length", NULL, 1);
        unsigned long long v = strtoull(cl, NULL, 10);
        if (v > srv->cfg.max_body) {
            if (gw__send_plain(wsi, 413, "Payload Too Large", NULL, 0) < 0)
                return -1;
            /* Swallow the body the client is sending so that it reads our answer
             * instead of a reset, then close. */
            if (v > GW_DISCARD_LIMIT)
                return -1;
            conn->discarding = 1;
            conn->discard_left = (size_t)v;
            return 0;
        }
        body_len = (size_t)v;
    }

    if (route->kind == GW_ROUTE_CONST && route->const_response) {
        size_t n = method == GW_METHOD_HEAD ? route->const_head_len : route->const_len;
        int rc = lws_write(wsi, (unsigned char *)route->const_response, n, LWS_WRITE_HTTP_FINAL);
        if (rc < 0 || close_after)
            return -1;
        if (body_len) { /* read and ignore the body, then finish the transaction */
            conn->discarding = 2;
            conn->discard_left = body_len;
            return 0;
        }
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }

    gw_request *req = gw_request_new_copy(srv, route, method, path, len, params, nparams);
    if (!req || req_reserve(req, body_len + 1)) {
        gw_request_free_unanswered(req);
        return respond_plain_now(wsi, 503, "Service Unavailable", NULL, 1);
    }
    req->keep_alive = !close_after;
    req->body_expected = body_len;
    int rc = 0;
    if (!rc)
        rc = gw__copy_head(srv, req, wsi);
    if (rc) {
        req_destroy(req);
        if (rc == -E2BIG)
            return respond_plain_now(wsi, 431, "Request Header Fields Too Large", NULL, 1);
        return respond_plain_now(wsi, 503, "Service Unavailable", NULL, 1);
    }
    snprintf(req->ip, sizeof(req->ip), "%s", gw__peer_address(wsi));

    if (body_len) {
        if (req_reserve(req, body_len + 1)) {
            req_destroy(req);
            return respond_plain_now(wsi, 503, "Service Unavailable", NULL, 1);
        }
        req->body_off = (uint32_t)req->buf_len;
        req->buf_len += body_len + 1; /* the body is written in place as it arrives */
        conn->reading = req;
        return 0;
    }
    req->body_off = (uint32_t)req->buf_len;
    dispatch(srv, conn, wsi, req);
    return 0;
}

static int on_body(gw_conn *conn, const char *in, size_t len)
{
    if (conn->discarding) {
        conn->discard_left = len > conn->discard_left ? 0 : conn->discard_left - len;
        return 0;
    }
    gw_request *req = conn->reading;
    if (!req)
        return 0;
    if (req->body_len == 0) {
        /* See on_body_complete: lws 4.1 may hand the request's own first bytes over as
         * its body. Remember whether this body starts like the request line. */
        char line[16];
        int n = snprintf(line, sizeof(line), "%s /", gw_method_name(req->method));
        size_t k = len < (size_t)n ? len : (size_t)n;
        conn->body_replayed = n > 0 && k > 0 && !memcmp(in, line, k);
    }
    if (req->body_len + len > req->body_expected)
        return -1; /* lws sends no more than Content-Length says; anything else is broken */
    memcpy(req->buf + req->body_off + req->body_len, in, len);
    req->body_len += len;
    return 0;
}

static void flush_round(gw_server *srv);

static void dispatch_completed(lws_sorted_usec_list_t *sul)
{
    gw_conn *conn = lws_container_of(sul, gw_conn, dispatch_timer);
    gw_request *req = conn->complete;
    if (!req)
        return;
    conn->complete = NULL;
    gw_server *srv = lws_context_user(lws_get_context(conn->wsi));
    dispatch(srv, conn, conn->wsi, req);
    /* Timers run before lws_service() polls: hand it over now, not after the poll. */
    flush_round(srv);
}

/*
 * A request's body is complete. It is dispatched on the next pass of the loop rather
 * than now, because libwebsockets 4.1 has a bug with a pipelined request that carries a
 * body: lws_http_action() feeds the request's own bytes back as its body, then reports
 * completion again and again in a loop that consumes nothing. A second completion
 * before the dispatch, with a body that begins like the request line itself, is that
 * bug: the body we hold is wrong, so the request is refused and the connection closed,
 * which ends lws' loop. A second completion with a genuine body only means that another
 * request waits behind this one; lws repeats it until the answer is written, and it is
 * ignored.
 */
static int on_body_complete(gw_server *srv, gw_conn *conn, struct lws *wsi)
{
    (void)srv;
    if (conn->discarding) {
        int finish = conn->discarding == 2;
        conn->discarding = 0;
        if (finish)
            return lws_http_transaction_completed(wsi) ? -1 : 0;
        return -1;
    }
    if (conn->complete || (!conn->reading && conn->pending)) {
        if (!conn->complete || !conn->body_replayed)
            return 0;
        lws_sul_cancel(&conn->dispatch_timer);
        req_destroy(conn->complete);
        conn->complete = NULL;
        gw__send_plain(wsi, 400, "Pipelined request bodies are not supported on this connection",
                       NULL, 0);
        return -1;
    }
    gw_request *req = conn->reading;
    if (!req)
        return 0;
    conn->reading = NULL;
    req->buf[req->body_off + req->body_len] = '\0';
    req->buf_len = req->body_off + req->body_len + 1;
    conn->complete = req;
    conn->wsi = wsi;
    lws_sul_schedule(lws_get_context(wsi), 0, &conn->dispatch_timer, dispatch_completed, 1);
    return 0;
}

static void on_closed(gw_conn *conn)
{
    if (conn->complete) {
        lws_sul_cancel(&conn->dispatch_timer);
        req_destroy(conn->complete);
        conn->complete = NULL;
    }
    if (conn->reading) {
        req_destroy(conn->reading);
        conn->reading = NULL;
    }
    if (conn->pending) {
        gw_pending *p = conn->pending;
        conn->pending = NULL;
        /* Its answer has not been taken yet (a taken one is written and let go at once):
         * it is freed when it is. */
        p->wsi = NULL;
    }
}

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    gw_conn *conn = user;
    struct lws_context *ctx = lws_get_context(wsi);
    gw_server *srv = ctx ? lws_context_user(ctx) : NULL;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(srv, conn, wsi, in ? (const char *)in : "/", in ? len : 1);
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(conn, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return on_body_complete(srv, conn, wsi);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        /* Nothing of ours waits for it: answers are written when the I/O thread takes
         * them (write_answer), and an answer not yet taken must not be touched here, as
         * its handler's thread may still be filling it in. */
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (conn)
            on_closed(conn);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        /* Every wsi of the vhost is reported here; only HTTP ones carry a peer address
         * (the raw WebSocket protocol keeps its own object in the same slot). */
        const struct lws_protocols *bound = lws_get_protocol(wsi);
        if (bound && bound->callback == callback_http) {
            free(lws_get_opaque_user_data(wsi));
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (srv) {
            drain_answers(srv);
            gw_ws_run_commands(srv);
        }
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        if (!in || strcasecmp((const char *)in, "websocket"))
            return respond_plain_now(wsi, 400, "Unsupported upgrade", NULL, 1);
        return gw_ws_confirm_upgrade(srv, wsi);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"http", callback_http, sizeof(gw_conn), 0, 0, NULL, 0},
    {GW_WS_RAW_PROTOCOL, gw_ws_raw_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- lifecycle -------------------------------------------------------------------- */

static void log_emit(int level, const char *line)
{
    fprintf(stderr, "gateway[lws %s]: %s", level == LLL_ERR ? "error" : "warning", line);
}

static void *io_main(void *arg)
{
    gw_server *srv = arg;
    pthread_setname_np(pthread_self(), "robyn-io"); /* what top -H and gdb show */
    while (!atomic_load(&srv->stopping)) {
        int rc = lws_service(srv->context, 0);
        flush_round(srv);
        if (rc < 0)
            break;
    }
    return NULL;
}

/* Binds a throwaway socket to tell a busy port from other failures, with a clear message. */
static int probe_bind(const char *host, int port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        sl = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*a6);
    } else {
        snprintf(err, errlen, "host '%s' is not an IPv4 or IPv6 address", host);
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a socket: %s", strerror(errno));
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
        rc = -errno;
        if (errno == EADDRINUSE)
            snprintf(err, errlen, "address %s:%d is already in use", host, port);
        else
            snprintf(err, errlen, "cannot bind %s:%d: %s", host, port, strerror(errno));
    }
    close(fd);
    return rc;
}

int gw_server_start(gw_server *srv, const gw_config *cfg, char *err, size_t errlen)
{
    if (srv->io_started) {
        snprintf(err, errlen, "the server is already running");
        return -EALREADY;
    }
    srv->cfg = *cfg;
    snprintf(srv->host, sizeof(srv->host), "%s",
             !strcmp(cfg->host, "localhost") ? "127.0.0.1" : cfg->host);
    if (cfg->port <= 0 || cfg->port > 65535) {
        snprintf(err, errlen, "port %d is out of range (1-65535)", cfg->port);
        return -EINVAL;
    }
    int rc = probe_bind(srv->host, cfg->port, err, errlen);
    if (rc)
        return rc;

    srv->async_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->async_fd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        return -errno;
    }

    lws_set_log_level(LLL_ERR | LLL_WARN, log_emit);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = cfg->port;
    int any4 = !strcmp(srv->host, "0.0.0.0"), any6 = !strcmp(srv->host, "::");
    info.iface = (any4 || any6) ? NULL : srv->host;
    info.protocols = protocols;
    info.user = srv;
    info.gid = -1;
    info.uid = -1;
    info.options = 0;
    if (!strchr(srv->host, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    /* lws drops a request whose head overflows this buffer without answering; our own
     * limit (cfg->max_header) is below it so that oversized heads get a 431 first. */
    size_t hdr = cfg->max_header + 4096;
    info.max_http_header_data = (unsigned short)(hdr > 65535 ? 65535 : hdr);
    info.max_http_header_pool = 4096;
    info.keepalive_timeout = (int)(cfg->keepalive_timeout ? cfg->keepalive_timeout : 5);
    /* Also the deadline for a WebSocket handshake to complete. */
    info.timeout_secs = 10;
    /* lws reads RLIMIT_NOFILE at context creation: raise the soft limit to the hard one
     * so that tens of thousands of connections fit. */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max && rl.rlim_max <= 10000000) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    srv->context = lws_create_context(&info);
    if (!srv->context) {
        snprintf(err, errlen, "cannot listen on %s:%d (libwebsockets refused; see its log)",
                 srv->host, cfg->port);
        close(srv->async_fd);
        srv->async_fd = -1;
        return -EIO;
    }
    srv->port = cfg->port;
    atomic_store(&srv->stopping, 0);
    if (pthread_create(&srv->io_thread, NULL, io_main, srv)) {
        snprintf(err, errlen, "cannot start the I/O thread");
        lws_context_destroy(srv->context);
        srv->context = NULL;
        return -EAGAIN;
    }
    srv->io_started = 1;
    return 0;
}

int gw_server_port(const gw_server *srv)
{
    return srv->io_started ? srv->port : 0;
}

void gw_server_drain(gw_server *srv)
{
    atomic_store(&srv->draining, 1);
}

size_t gw_server_in_flight(const gw_server *srv)
{
    return atomic_load(&srv->in_flight);
}

void gw_server_stop(gw_server *srv)
{
    pthread_mutex_lock(&srv->sync_lock);
    srv->sync_closed = 1;
    pthread_cond_broadcast(&srv->sync_cond);
    pthread_mutex_unlock(&srv->sync_lock);
    if (!srv->io_started)
        return;
    atomic_store(&srv->stopping, 1);
    lws_cancel_service(srv->context);
    pthread_join(srv->io_thread, NULL);
    srv->io_started = 0;
    lws_sul_cancel(&srv->sync_timer);
    srv->sync_timer_armed = 0;
    /* Destroying the context closes every connection (CLOSED_HTTP orphans what Python
     * still holds); answers that arrive later find no context and are freed below. */
    pthread_mutex_lock(&srv->answer_lock);
    struct lws_context *ctx = srv->context;
    srv->context = NULL;
    pthread_mutex_unlock(&srv->answer_lock);
    lws_context_destroy(ctx);
    drain_answers(srv);
}

void gw_server_free(gw_server *srv)
{
    if (!srv)
        return;
    gw_server_stop(srv);
    drain_answers(srv);
    each_request(srv->round_sync_head, req_discard);
    each_request(srv->round_async_head, req_discard);
    each_request(srv->sync_head, req_discard);
    each_request(srv->async_head, req_discard);
    srv->round_sync_head = srv->round_async_head = srv->sync_head = srv->async_head = NULL;
    if (srv->async_fd >= 0)
        close(srv->async_fd);
    for (size_t i = 0; i < srv->routes.len; i++) {
        gw_route *route = srv->routes.items[i];
        gw_response_free(route->const_response);
        free(route->ws.origins);
        free(route->pattern);
        free(route);
    }
    free(srv->routes.items);
    for (size_t i = 0; i < srv->watched.len; i++)
        free(srv->watched.names[i].name);
    free(srv->watched.names);
    gw_router_free(srv->router);
    gw_ws_hub_free(srv->ws);
    pool_free(srv);
    pthread_mutex_destroy(&srv->sync_lock);
    pthread_cond_destroy(&srv->sync_cond);
    pthread_mutex_destroy(&srv->async_lock);
    pthread_mutex_destroy(&srv->answer_lock);
    free(srv);
}
