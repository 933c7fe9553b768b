/*
 * The route table: one segment tree per method.
 *
 * Each node stands for one pattern segment. Its children are kept in three places: the
 * static children in an array sorted by label (binary search), at most one parameter child
 * and at most one catch-all child. A node where a route ends holds that route's handler and
 * an owned copy of its pattern, as the user wrote it, for error messages.
 *
 * Matching walks the tree segment by segment, trying at each node the static child, then
 * the parameter child, then the catch-all child, and backs up when a branch dead-ends.
 * Every node consumes exactly one segment at a fixed position of the path, so a match
 * visits each node at most once: the cost is bounded by the tree, never exponential.
 * The recursion is as deep as the deepest route (at most GW_ROUTER_MAX_PATTERN / 2
 * levels), whatever the request path.
 *
 * Adding is done in phases so that a failure leaves the router unchanged: validate the
 * pattern; walk the existing tree to find a duplicate or a conflict; build the missing
 * nodes as a detached chain; grow the array the chain hangs from; then link it, which
 * cannot fail.
 */
#include "router.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum seg_kind { SEG_STATIC, SEG_PARAM, SEG_CATCHALL };

struct node {
    struct node **statics;  /* static children, sorted by label (memcmp, then length) */
    size_t nstatics;
    size_t capstatics;
    struct node *param;     /* the ":name" child, or NULL */
    struct node *catchall;  /* the "*name" child, or NULL; it never has children */
    void *handler;          /* non-NULL when a route ends at this node */
    char *pattern;          /* that route's pattern as given; owned, set with handler */
    const char *origin;     /* pattern of the route that created this node; borrowed from
                               the node that owns it (nodes are never removed) */
    size_t label_len;
    char label[];           /* static text, or the parameter / catch-all name; no NUL */
};

struct gw_router {
    struct node *roots[GW_METHOD_COUNT];
    size_t counts[GW_METHOD_COUNT];
};

static const char *const method_names[GW_METHOD_COUNT] = {
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "WS",
};

/* ---- nodes ---------------------------------------------------------------------------- */

/* Returns a new childless node labelled with len bytes of label, or NULL. */
static struct node *node_new(const char *label, size_t len, const char *origin)
{
    struct node *n = calloc(1, sizeof(*n) + len);
    if (n == NULL)
        return NULL;
    if (len > 0)
        memcpy(n->label, label, len);
    n->label_len = len;
    n->origin = origin;
    return n;
}

/* Frees a node and everything under it. The depth is bounded by the longest pattern. */
static void node_free(struct node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nstatics; i++)
        node_free(n->statics[i]);
    free(n->statics);
    node_free(n->param);
    node_free(n->catchall);
    free(n->pattern);
    free(n);
}

/* Orders a label against len bytes of s: memcmp order, a prefix first. */
static int label_cmp(const struct node *n, const char *s, size_t len)
{
    size_t m = n->label_len < len ? n->label_len : len;
    int c = m > 0 ? memcmp(n->label, s, m) : 0;
    if (c != 0)
        return c;
    return (n->label_len > len) - (n->label_len < len);
}

/* Binary-searches the static children of n for the label s[0..len). Returns the child, or
 * NULL with *at set to the index where such a child would be inserted. */
static struct node *find_static(const struct node *n, const char *s, size_t len, size_t *at)
{
    size_t lo = 0, hi = n->nstatics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = label_cmp(n->statics[mid], s, len);
        if (c == 0)
            return n->statics[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (at != NULL)
        *at = lo;
    return NULL;
}

/* ---- errors --------------------------------------------------------------------------- */

/* Writes a formatted, NUL-terminated, possibly truncated message to err when it has room. */
__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Writes a printable rendering of s[0..len) into out (outlen > 4): bytes outside printable
 * ASCII, and backslashes, as \xNN; "..." at the end when it had to stop early. */
static void escape(char *out, size_t outlen, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = c >= 0x20 && c <= 0x7e && c != '\\';
        size_t need = plain ? 1 : 4;
        if (o + need + 4 > outlen) {  /* keep room for "..." and the NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* ---- patterns ------------------------------------------------------------------------- */

/* Returns the length of the segment starting at p: up to the next '/' or end. */
static size_t seg_len(const char *p, const char *end)
{
    const char *slash = memchr(p, '/', (size_t)(end - p));
    return (size_t)((slash != NULL ? slash : end) - p);
}

static enum seg_kind seg_kind(const char *seg)
{
    return seg[0] == ':' ? SEG_PARAM : seg[0] == '*' ? SEG_CATCHALL : SEG_STATIC;
}

/*
 * Validates pattern (len bytes, all printable) and finds its normalised body: the pattern
 * without one leading and one trailing slash, empty for the root. Returns 0, or -EINVAL
 * with the reason in err.
 */
static int parse_pattern(const char *pattern, size_t len, const char **body, size_t *body_len,
                         char *err, size_t errlen)
{
    const char *b = pattern, *end = pattern + len;
    if (b < end && *b == '/')
        b++;
    if (b < end && end[-1] == '/')
        end--;
    *body = b;
    *body_len = (size_t)(end - b);
    if (b == end) {
        if (len > 1) { /* "//": an empty segment between the two slashes */
            set_err(err, errlen, "Malformed route pattern '%s': empty segment", pattern);
            return -EINVAL;
        }
        return 0;
    }

    const char *names[GW_ROUTER_MAX_PARAMS];
    size_t name_lens[GW_ROUTER_MAX_PARAMS];
    int nnames = 0;
    for (const char *p = b; p <= end; ) {
        size_t l = seg_len(p, end);
        if (l == 0) {
            set_err(err, errlen, "Malformed route pattern '%s': empty segment", pattern);
            return -EINVAL;
        }
        enum seg_kind kind = seg_kind(p);
        const char *text = kind == SEG_STATIC ? p : p + 1;
        size_t text_len = kind == SEG_STATIC ? l : l - 1;
        if (kind != SEG_STATIC && text_len == 0) {
            set_err(err, errlen, "Malformed route pattern '%s': empty %s name", pattern,
                    kind == SEG_PARAM ? "parameter" : "catch-all");
            return -EINVAL;
        }
        for (size_t i = 0; i < text_len; i++) {
            if (text[i] == ':' || text[i] == '*') {
                set_err(err, errlen, "Malformed route pattern '%s': '%c' inside segment '%.*s'",
                        pattern, text[i], (int)l, p);
                return -EINVAL;
            }
        }
        if (kind == SEG_CATCHALL && p + l != end) {
            set_err(err, errlen,
                    "Malformed route pattern '%s': catch-all '%.*s' is not the last segment",
                    pattern, (int)l, p);
            return -EINVAL;
        }
        if (kind != SEG_STATIC) {
            for (int i = 0; i < nnames; i++) {
                if (name_lens[i] == text_len && memcmp(names[i], text, text_len) == 0) {
                    set_err(err, errlen, "Malformed route pattern '%s': parameter '%.*s' repeated",
                            pattern, (int)text_len, text);
                    return -EINVAL;
                }
            }
            if (nnames == GW_ROUTER_MAX_PARAMS) {
                set_err(err, errlen, "Malformed route pattern '%s': more than %d parameters",
                        pattern, GW_ROUTER_MAX_PARAMS);
                return -EINVAL;
            }
            names[nnames] = text;
            name_lens[nnames] = text_len;
            nnames++;
        }
        p += l + 1;
    }
    return 0;
}

/* ---- public --------------------------------------------------------------------------- */

gw_router *gw_router_new(void)
{
    gw_router *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    for (int m = 0; m < GW_METHOD_COUNT; m++) {
        r->roots[m] = node_new("", 0, NULL);
        if (r->roots[m] == NULL) {
            gw_router_free(r);
            return NULL;
        }
    }
    return r;
}

void gw_router_free(gw_router *router)
{
    if (router == NULL)
        return;
    for (int m = 0; m < GW_METHOD_COUNT; m++)
        node_free(router->roots[m]);
    free(router);
}

int gw_method_from_name(const char *name, size_t len)
{
    if (name == NULL)
        return -1;
    for (int m = 0; m < GW_METHOD_WS; m++) {
        const char *s = method_names[m];
        if (strlen(s) != len)
            continue;
        size_t i = 0;
        while (i < len) {
            char c = name[i];
            if (c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            if (c != s[i])
                break;
            i++;
        }
        if (i == len)
            return m;
    }
    return -1;
}

const char *gw_method_name(int method)
{
    if (method < 0 || method >= GW_METHOD_COUNT)
        return NULL;
    return method_names[method];
}

size_t gw_router_count(const gw_router *router, int method)
{
    if (router == NULL)
        return 0;
    if (method == -1) {
        size_t total = 0;
        for (int m = 0; m < GW_METHOD_COUNT; m++)
            total += router->counts[m];
        return total;
    }
    if (method < 0 || method >= GW_METHOD_COUNT)
        return 0;
    return router->counts[method];
}

int gw_router_add(gw_router *router, int method, const char *pattern,
                  void *handler, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (router == NULL || pattern == NULL) {
        set_err(err, errlen, router == NULL ? "Router is NULL" : "Route pattern is NULL");
        return -EINVAL;
    }

    /* Length and bytes first, so that every later message can quote the pattern as is. */
    size_t len = 0;
    while (len <= GW_ROUTER_MAX_PATTERN && pattern[len] != '\0')
        len++;
    if (len > GW_ROUTER_MAX_PATTERN) {
        char shown[72];
        escape(shown, sizeof(shown), pattern, len);
        set_err(err, errlen, "Malformed route pattern '%s': longer than %d bytes", shown,
                GW_ROUTER_MAX_PATTERN);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)pattern[i];
        if (c < 0x20 || c > 0x7e) {
            char shown[160];
            escape(shown, sizeof(shown), pattern, len);
            set_err(err, errlen,
                    "Malformed route pattern '%s': byte 0x%02x at offset %zu is not printable ASCII",
                    shown, c, i);
            return -EINVAL;
        }
    }
    if (method < 0 || method >= GW_METHOD_COUNT) {
        set_err(err, errlen, "Route '%s': invalid method %d", pattern, method);
        return -EINVAL;
    }
    const char *mname = method_names[method];
    if (handler == NULL) {
        set_err(err, errlen, "Route '%s' for %s: handler is NULL", pattern, mname);
        return -EINVAL;
    }

    const char *body;
    size_t body_len;
    int rc = parse_pattern(pattern, len, &body, &body_len, err, errlen);
    if (rc != 0)
        return rc;

    /* Walk as far as the tree already goes, looking for a duplicate or a conflict. */
    const char *p = body, *end = body + body_len;
    struct node *n = router->roots[method];
    size_t at = 0;
    while (p < end) {
        size_t l = seg_len(p, end);
        enum seg_kind kind = seg_kind(p);
        struct node *next;
        if (kind == SEG_STATIC) {
            next = find_static(n, p, l, &at);
        } else {
            next = kind == SEG_PARAM ? n->param : n->catchall;
            if (next != NULL && label_cmp(next, p + 1, l - 1) != 0) {
                set_err(err, errlen, "Route '%s' conflicts with '%s' for %s", pattern,
                        next->origin, mname);
                return -EEXIST;
            }
        }
        if (next == NULL)
            break;
        n = next;
        p += l;
        if (p < end)
            p++;
    }
    if (p == end && n->handler != NULL) {
        if (strcmp(pattern, n->pattern) == 0)
            set_err(err, errlen, "Route '%s' already exists for %s", pattern, mname);
        else
            set_err(err, errlen, "Route '%s' duplicates '%s' for %s", pattern, n->pattern, mname);
        return -EEXIST;
    }

    /* Build what is missing as a detached chain, hanging from nothing yet. */
    const char *first = p; /* the first segment the tree lacks, if any */
    struct node *head = NULL, *tail = NULL;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        goto nomem;
    memcpy(copy, pattern, len + 1);
    while (p < end) {
        size_t l = seg_len(p, end);
        enum seg_kind kind = seg_kind(p);
        struct node *c = kind == SEG_STATIC ? node_new(p, l, copy) : node_new(p + 1, l - 1, copy);
        if (c == NULL)
            goto nomem;
        if (tail == NULL) {
            head = c;
        } else if (kind == SEG_STATIC) {
            tail->statics = malloc(sizeof(*tail->statics));
            if (tail->statics == NULL) {
                free(c);
                goto nomem;
            }
            tail->statics[0] = c;
            tail->nstatics = tail->capstatics = 1;
        } else if (kind == SEG_PARAM) {
            tail->param = c;
        } else {
            tail->catchall = c;
        }
        tail = c;
        p += l;
        if (p < end)
            p++;
    }

    /* Make room where the chain goes (the last step that can fail), then link it. */
    if (head != NULL) {
        enum seg_kind kind = seg_kind(first);
        if (kind == SEG_STATIC) {
            if (n->nstatics == n->capstatics) {
                size_t cap = n->capstatics ? 2 * n->capstatics : 4;
                struct node **grown = realloc(n->statics, cap * sizeof(*grown));
                if (grown == NULL)
                    goto nomem;
                n->statics = grown;
                n->capstatics = cap;
            }
            memmove(n->statics + at + 1, n->statics + at, (n->nstatics - at) * sizeof(*n->statics));
            n->statics[at] = head;
            n->nstatics++;
        } else if (kind == SEG_PARAM) {
            n->param = head;
        } else {
            n->catchall = head;
        }
        n = tail;
    }
    n->handler = handler;
    n->pattern = copy;
    router->counts[method]++;
    return 0;

nomem:
    node_free(head);
    free(copy);
    set_err(err, errlen, "Out of memory adding route '%s' for %s", pattern, mname);
    return -ENOMEM;
}

/* ---- matching ------------------------------------------------------------------------- */

/*
 * Matches the path from p (at a segment start or at slashes) to end against the subtree of
 * n, with depth parameters already written to params. Returns the node of the matched
 * route, with *nparams set, or NULL (params[depth..] may then hold garbage).
 */
static const struct node *match_node(const struct node *n, const char *p, const char *end,
                                     gw_param *params, int depth, int *nparams)
{
    while (p < end && *p == '/')
        p++;
    if (p == end) {
        if (n->handler != NULL) {
            *nparams = depth;
            return n;
        }
        if (n->catchall != NULL) {
            const struct node *c = n->catchall;
            params[depth] = (gw_param){c->label, c->label_len, p, 0};
            *nparams = depth + 1;
            return c;
        }
        return NULL;
    }

    size_t l = seg_len(p, end);
    const struct node *r;
    const struct node *c = find_static(n, p, l, NULL);
    if (c != NULL && (r = match_node(c, p + l, end, params, depth, nparams)) != NULL)
        return r;
    if ((c = n->param) != NULL) {
        params[depth] = (gw_param){c->label, c->label_len, p, l};
        if ((r = match_node(c, p + l, end, params, depth + 1, nparams)) != NULL)
            return r;
    }
    if ((c = n->catchall) != NULL) { /* a catch-all node always ends a route */
        const char *q = end;
        while (q[-1] == '/') /* p is at a non-slash byte, so this stops there at the latest */
            q--;
        params[depth] = (gw_param){c->label, c->label_len, p, (size_t)(q - p)};
        *nparams = depth + 1;
        return c;
    }
    return NULL;
}

void *gw_router_match(const gw_router *router, int method, const char *path, size_t path_len,
                      gw_param *params, int *nparams, unsigned *allowed)
{
    gw_param scratch[GW_ROUTER_MAX_PARAMS];
    int count = 0, ignored;
    if (params == NULL)
        params = scratch;
    if (nparams != NULL)
        *nparams = 0;
    if (allowed != NULL)
        *allowed = 0;
    if (router == NULL || (path == NULL && path_len > 0))
        return NULL;
    if (path == NULL)
        path = "";

    const char *end = path + path_len;
    if (method >= 0 && method < GW_METHOD_COUNT) {
        const struct node *r = match_node(router->roots[method], path, end, params, 0, &count);
        if (r != NULL) {
            if (nparams != NULL)
                *nparams = count;
            return r->handler;
        }
    }
    if (allowed != NULL) {
        unsigned mask = 0;
        for (int m = 0; m < GW_METHOD_WS; m++) {
            if (m != method && match_node(router->roots[m], path, end, scratch, 0, &ignored))
                mask |= 1u << m;
        }
        *allowed = mask;
    }
    return NULL;
}
