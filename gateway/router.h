/*
 * The route table: a segment (radix) tree per method mapping URL paths to opaque handlers.
 *
 * Patterns are made of '/'-separated segments: a static segment ("users"), a named
 * parameter (":id", matching one non-empty segment), or a catch-all ("*rest", last
 * segment only, matching the remainder of the path, possibly empty and possibly with
 * slashes). Leading and trailing slashes are normalised: "/users/", "users" and
 * "/users" are one pattern, and a request for "/users/" matches it. The root is "/"
 * (also written ""). Patterns are bytes 0x20..0x7e and are compared byte for byte, case
 * sensitively, with the decoded path: write "/a b", not "/a%20b"; a '%' is a plain byte.
 *
 * Request paths: empty segments are ignored. Leading, trailing and repeated slashes are
 * only separators, so "//a///b/" matches like "/a/b" and a path of slashes only matches
 * the root (nginx's merge_slashes does the same; a proxy in front that authorises by path
 * must normalise alike). A segment is any run of bytes other than '/', NUL included, so
 * '%', spaces and non-ASCII bytes are matched like any other. A parameter therefore never
 * sees an empty segment. A catch-all's value runs from the first byte of its first segment
 * to the last byte of the last one: no leading or trailing slash, inner slashes verbatim
 * (repeated ones too); when nothing is left it is empty and points at the path's end.
 *
 * At a given position static beats parameter beats catch-all, with backtracking:
 * "/a/:x/c" still matches "/a/b/c" when "/a/b" exists without a child "c". An exact
 * route beats a catch-all that would match the empty rest. A match visits each tree node
 * at most once, and static children are found by binary search.
 *
 * The router never runs Python and never allocates while matching. It is not
 * thread-safe for writers: routes are added before the server starts, matching then
 * happens on the I/O thread(s) only, read-only.
 */
#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stddef.h>

/* Method slots. GW_METHOD_WS is the slot for WebSocket upgrade routes. */
enum gw_method {
    GW_METHOD_GET = 0,
    GW_METHOD_POST,
    GW_METHOD_PUT,
    GW_METHOD_DELETE,
    GW_METHOD_PATCH,
    GW_METHOD_HEAD,
    GW_METHOD_OPTIONS,
    GW_METHOD_CONNECT,
    GW_METHOD_TRACE,
    GW_METHOD_WS,
    GW_METHOD_COUNT
};

/* The most path parameters a single route may declare; a pattern with more is malformed. */
#define GW_ROUTER_MAX_PARAMS 16
/* The longest pattern accepted, in bytes. */
#define GW_ROUTER_MAX_PATTERN 2048

/* A matched parameter: name and value point into the router and into the matched path
 * respectively; both stay valid while the router and the path buffer live. Not
 * NUL-terminated. A catch-all's value excludes the slash in front of it. */
typedef struct gw_param {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} gw_param;

typedef struct gw_router gw_router;

/* Returns a new, empty router, or NULL when out of memory. */
gw_router *gw_router_new(void);

/* Frees the router and its nodes (not the handlers, which the caller owns). NULL is fine. */
void gw_router_free(gw_router *router);

/* Parses a method name ("GET", "post" ...; case-insensitive, not "WS") into its slot.
 * Returns the gw_method, or -1 for an unknown method. */
int gw_method_from_name(const char *name, size_t len);

/* Returns the upper-case name of a method slot ("GET" ... "WS"), or NULL when out of range. */
const char *gw_method_name(int method);

/*
 * Adds a route. handler must not be NULL; the router keeps the pointer and never
 * dereferences it.
 * Returns 0 on success;
 *   -EINVAL for a malformed pattern (empty parameter name, '*' not last, a ':' or '*'
 *           inside a segment, a parameter name repeated, too many parameters, too long,
 *           bytes outside printable ASCII, an empty segment such as "/a//b");
 *   -EEXIST when the same route exists for that method, or a conflicting one (the same
 *           shape with a parameter or catch-all of another name: "/u/:id" vs "/u/:name");
 *   -ENOMEM when out of memory.
 * On failure the router is unchanged and, when err is not NULL, a one-line reason naming
 * the pattern is written to err (always NUL-terminated, truncated to errlen; set to ""
 * on success). The reasons, P being the pattern as given:
 *   Malformed route pattern 'P': empty segment
 *   Malformed route pattern 'P': empty parameter name          (also "empty catch-all name")
 *   Malformed route pattern 'P': ':' inside segment 'b:c'      (or '*')
 *   Malformed route pattern 'P': catch-all '*rest' is not the last segment
 *   Malformed route pattern 'P': parameter 'id' repeated
 *   Malformed route pattern 'P': more than 16 parameters
 *   Malformed route pattern 'P...': longer than 2048 bytes     (P cut short, escaped)
 *   Malformed route pattern 'P': byte 0x0a at offset 2 is not printable ASCII
 *                                                              (P escaped as \xNN)
 *   Route 'P' conflicts with 'Q' for GET       (Q: the route that made the other name)
 *   Route 'P' already exists for GET
 *   Route 'P' duplicates 'Q' for GET           (the same route, written differently)
 *   Route 'P' for GET: handler is NULL / Route 'P': invalid method 12 /
 *   Route pattern is NULL / Out of memory adding route 'P' for GET
 */
__attribute__((warn_unused_result))
int gw_router_add(gw_router *router, int method, const char *pattern,
                  void *handler, char *err, size_t errlen);

/*
 * Matches a decoded request path (starting with '/', without the query string) for a method.
 * Returns the handler, or NULL when nothing matches. On a match *nparams is the number of
 * parameters written to params (at most GW_ROUTER_MAX_PARAMS; pass an array that large),
 * in pattern order; otherwise *nparams is 0. params and nparams may be NULL.
 * When allowed is not NULL it receives, on a miss, a bitmask (1u << method) of the other
 * methods (not GW_METHOD_WS) for which the path does match, so the caller can tell 405 from 404;
 * 0 on a match. A method out of range (an unknown verb, -1) never matches but still gets
 * allowed filled in. Never allocates and never copies: values point into path.
 */
void *gw_router_match(const gw_router *router, int method, const char *path, size_t path_len,
                      gw_param *params, int *nparams, unsigned *allowed);

/* Returns the number of routes added for a method (all methods when method is -1). */
size_t gw_router_count(const gw_router *router, int method);

#endif
