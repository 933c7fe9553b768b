/*
 * Static directories: URL prefixes mapped to directories of the file system, served by
 * the I/O thread with no Python (docs/static.md says what a user sees).
 *
 * A mount is made before the server starts and lives as long as the server. For a GET
 * or HEAD under a mount's prefix, gw_static_resolve() decides what the mount does with
 * the path: serve a file, list a directory, redirect to the directory's slash form,
 * refuse (400 for a path that tries to climb out or to hide a slash), or pass, so that
 * the request is routed as if the mount were not there (the routes answer 404 when none
 * has the path). A mount with neither index file nor listing serves regular files only.
 * gw_static_answer() turns a resolution into the bytes of the answer: a complete
 * response for small files, listings, redirects, refusals and 304s, or a head plus an
 * open file that the connection sends from disk as the socket drains.
 *
 * The file system is read with plain blocking calls (realpath, open, fstat, pread of
 * files up to GW_STATIC_INLINE_MAX bytes, readdir for listings) on the I/O thread: local
 * disks and the page cache answer them in microseconds; a slow network file system
 * under a mount would stall every connection of the thread while it answers.
 *
 * Nothing here touches sockets or libwebsockets; the C tests drive it directly.
 */
#ifndef GW_STATIC_H
#define GW_STATIC_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "request.h"

/* Files up to this size are read whole into the answer; larger ones are sent from disk
 * in pieces (sendfile) as the socket takes them. */
#define GW_STATIC_INLINE_MAX (64u * 1024u)
/* A listing shows at most this many entries (the first ones in name order). */
#define GW_STATIC_LISTING_MAX 10000

typedef struct gw_static_mount gw_static_mount;
typedef struct gw_static_set gw_static_set;

/* What a mount does with a request path. */
enum gw_static_verdict {
    GW_STATIC_PASS = 0, /* not the mount's: route the request as if it were not there */
    GW_STATIC_FILE,     /* a regular file: hit->fd is open on it, hit->st describes it */
    GW_STATIC_LISTING,  /* a directory to list: hit->fs_path names it */
    GW_STATIC_REDIRECT, /* a directory asked for without its trailing slash: 302 */
    GW_STATIC_REFUSE    /* answered hit->status (400) */
};

/* A resolution. Owns hit->fd when it is >= 0: release with gw_static_hit_clear(). */
typedef struct gw_static_hit {
    int verdict;
    int status;              /* GW_STATIC_REFUSE: 400; GW_STATIC_REDIRECT: 302 */
    const char *reason;      /* GW_STATIC_REFUSE: why, for tests and logs (static string) */
    int fd;                  /* GW_STATIC_FILE: the open file; -1 otherwise */
    struct stat st;          /* GW_STATIC_FILE */
    char fs_path[4096];      /* FILE and LISTING: the resolved path inside the root */
    const char *type_name;   /* FILE: the name whose extension gives the content type */
} gw_static_hit;

/*
 * Returns a new mount, or NULL with a one-line reason in err (NUL-terminated, cut to
 * errlen):
 *   serve_directory: route 'R' must start with '/'          (also: bytes outside
 *       printable ASCII, '?', '#', '%', '.' or '..' segments, ':' or '*' segments)
 *   serve_directory: directory 'D' does not exist            (or: is not a directory,
 *       cannot be read: <strerror>)
 *   serve_directory: index_file 'I' must be a file name      (empty, '/', '.', '..', NUL)
 * prefix, directory and index_file (NULL for none) are copied. The directory is resolved
 * (symbolic links followed) once, here: what it names later does not move the mount.
 */
gw_static_mount *gw_static_mount_new(const char *prefix, const char *directory,
                                     const char *index_file, int listing, char *err,
                                     size_t errlen);

/* Frees a mount. NULL is fine. */
void gw_static_mount_free(gw_static_mount *m);

/* Returns a new, empty set of mounts, or NULL when out of memory. */
gw_static_set *gw_static_set_new(void);

/* Frees the set and every mount in it. NULL is fine. */
void gw_static_set_free(gw_static_set *set);

/* Adds a mount, which the set then owns (in every case: it is freed on failure).
 * Returns 0; -EEXIST (with "serve_directory: route 'R' is already served" in err)
 * when a mount has the same prefix; -ENOMEM. */
__attribute__((warn_unused_result))
int gw_static_set_add(gw_static_set *set, gw_static_mount *m, char *err, size_t errlen);

/* The number of mounts in the set (NULL: 0). */
size_t gw_static_set_count(const gw_static_set *set);

/* Returns the mount with the longest prefix that the decoded path lies under, segment by
 * segment with empty segments ignored as the router ignores them ("/static" covers
 * "/static", "/static/" and "//static/a", not "/statics"), or NULL. */
const gw_static_mount *gw_static_find(const gw_static_set *set, const char *path,
                                      size_t path_len);

/*
 * Resolves a request for path (percent-decoded, len bytes, NUL allowed inside) under m,
 * whose prefix must cover it (gw_static_find). raw_path is the path as sent (before
 * decoding, without the query), used to refuse encoded slashes. Fills *hit (always, even
 * for PASS) and returns hit->verdict. The rules, in order:
 *   400  a segment is "." or "..", a segment holds a NUL byte, or raw_path holds "%2f"
 *        or "%5c" (an encoded slash or backslash);
 *   pass  a segment starts with '.' (hidden), the path does not exist, it cannot be
 *        read, it is not a regular file or directory, or it resolves (through symbolic
 *        links) outside the mount's root;
 *   FILE  a regular file;
 *   a directory: pass on a mount without index file and listing; else REDIRECT when path
 *        lacks its trailing slash; else FILE for its index file when there is one (same
 *        rules), else LISTING when listings are on, else pass.
 */
int gw_static_resolve(const gw_static_mount *m, const char *path, size_t path_len,
                      const char *raw_path, size_t raw_len, gw_static_hit *hit);

/* Closes what a hit holds. Idempotent. */
void gw_static_hit_clear(gw_static_hit *hit);

/* Returns the content type for a file name from its extension (case-insensitive), e.g.
 * "text/html; charset=utf-8", or "application/octet-stream". Static string. */
const char *gw_static_content_type(const char *name);

/* An answer ready to write. head (malloc'd, the caller frees it) holds the whole
 * response, or its head and the first body bytes; when file_fd >= 0 the caller owns it
 * too and sends file_left more bytes from file_off, then closes it. */
typedef struct gw_static_answer {
    char *head;
    size_t head_len;
    int file_fd;
    off_t file_off;
    size_t file_left;
} gw_static_answer;

/*
 * Builds the answer to req (GET or HEAD) from a resolution that is not PASS, and takes
 * over hit->fd (hit is cleared). Honours If-None-Match, then (only without it)
 * If-Modified-Since, with a 304. keep_alive and version shape the connection header as
 * the rest of the server does. Returns 0, or -ENOMEM (nothing to free then).
 */
__attribute__((warn_unused_result))
int gw_static_answer_build(const gw_static_mount *m, const gw_request *req, gw_static_hit *hit,
                           gw_static_answer *out);

/* Frees what an answer holds (head and file). Idempotent. */
void gw_static_answer_clear(gw_static_answer *a);

/* Formats t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into out (room for 40 bytes). */
void gw_static_http_date(time_t t, char out[40]);

/* Parses an IMF-fixdate; returns 0 and sets *t, or -1 for anything else. */
int gw_static_parse_http_date(const char *s, size_t len, time_t *t);

struct gw_server;

/* Adds a mount to a server (before it starts); the server frees its mounts with itself.
 * Returns 0, or -EINVAL / -EEXIST with a reason in err (see gw_static_mount_new and
 * gw_static_set_add), or -ENOMEM. */
__attribute__((warn_unused_result))
int gw_server_serve_directory(struct gw_server *srv, const char *prefix, const char *directory,
                              const char *index_file, int listing, char *err, size_t errlen);

#endif
