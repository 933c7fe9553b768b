/*
 * Static directories. See static.h and docs/static.md.
 */
#include "static.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct gw_static_mount {
    char *prefix;       /* normalised: "/a/b", no trailing slash; "" for the root */
    size_t prefix_len;
    size_t prefix_segments;
    char *root;         /* the directory, resolved */
    size_t root_len;
    char *index_file;   /* NULL for none */
    int listing;
};

struct gw_static_set {
    gw_static_mount **items;
    size_t len, cap;
};

static void set_err(char *err, size_t errlen, const char *fmt, const char *what, const char *more)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, what, more ? more : "");
}

/* ---- a growable string ---------------------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_grow(sbuf *b, size_t more)
{
    if (b->failed || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = 1;
        return;
    }
    b->s = s;
    b->cap = cap;
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    sb_grow(b, n);
    if (b->failed)
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void sb_fmt(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[512];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        sb_put(b, small, (size_t)n);
        return;
    }
    sb_grow(b, (size_t)n);
    if (b->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Text for an HTML page: < > & " ' escaped. */
static void sb_html(sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '<': sb_str(b, "&lt;"); break;
        case '>': sb_str(b, "&gt;"); break;
        case '&': sb_str(b, "&amp;"); break;
        case '"': sb_str(b, "&quot;"); break;
        case '\'': sb_str(b, "&#39;"); break;
        default: sb_put(b, s + i, 1);
        }
    }
}

/* A path segment for a URL: everything but unreserved bytes percent-encoded. */
static void sb_url_segment(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            sb_put(b, s, 1);
        } else {
            char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            sb_put(b, enc, 3);
        }
    }
}

/* ---- mounts ---------------------------------------------------------------------------- */

/* Walks the segments of a '/'-separated string, skipping empty ones: *at is where to look
 * next; returns 1 with the segment in *seg / *seg_len, or 0 at the end. */
static int next_segment(const char *s, size_t len, size_t *at, const char **seg, size_t *seg_len)
{
    size_t i = *at;
    while (i < len && s[i] == '/')
        i++;
    if (i >= len) {
        *at = len;
        return 0;
    }
    size_t start = i;
    while (i < len && s[i] != '/')
        i++;
    *seg = s + start;
    *seg_len = i - start;
    *at = i;
    return 1;
}

static int is_dot_segment(const char *seg, size_t n)
{
    return (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.');
}

gw_static_mount *gw_static_mount_new(const char *prefix, const char *directory,
                                     const char *index_file, int listing, char *err,
                                     size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!prefix || prefix[0] != '/') {
        set_err(err, errlen, "serve_directory: route '%s' must start with '/'%s",
                prefix ? prefix : "(null)", NULL);
        return NULL;
    }
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < plen; i++) {
        unsigned char ch = (unsigned char)prefix[i];
        if (ch < 0x21 || ch > 0x7e || ch == '?' || ch == '#' || ch == '%') {
            set_err(err, errlen,
                    "serve_directory: route '%s' may hold printable ASCII only, without spaces, "
                    "'?', '#' or '%%'%s", prefix, NULL);
            return NULL;
        }
    }
    if (!directory || !directory[0]) {
        set_err(err, errlen, "serve_directory: directory '%s' does not exist%s",
                directory ? directory : "(null)", NULL);
        return NULL;
    }
    if (index_file &&
        (!index_file[0] || strchr(index_file, '/') || !strcmp(index_file, ".") ||
         !strcmp(index_file, ".."))) {
        set_err(err, errlen, "serve_directory: index_file '%s' must be a file name%s", index_file,
                NULL);
        return NULL;
    }

    gw_static_mount *m = calloc(1, sizeof(*m));
    char *norm = malloc(plen + 1);
    if (!m || !norm)
        goto oom;
    size_t at = 0, nlen = 0;
    const char *seg;
    size_t seg_len;
    while (next_segment(prefix, plen, &at, &seg, &seg_len)) {
        if (is_dot_segment(seg, seg_len) || seg[0] == ':' || seg[0] == '*') {
            set_err(err, errlen,
                    "serve_directory: route '%s' may not hold '.', '..', ':name' or '*name' "
                    "segments%s", prefix, NULL);
            free(norm);
            free(m);
            return NULL;
        }
        norm[nlen++] = '/';
        memcpy(norm + nlen, seg, seg_len);
        nlen += seg_len;
        m->prefix_segments++;
    }
    norm[nlen] = '\0';
    m->prefix = norm;
    m->prefix_len = nlen;

    char resolved[PATH_MAX];
    if (!realpath(directory, resolved)) {
        int e = errno;
        if (e == ENOENT)
            set_err(err, errlen, "serve_directory: directory '%s' does not exist%s", directory,
                    NULL);
        else
            set_err(err, errlen, "serve_directory: directory '%s' cannot be read: %s",
                    directory, strerror(e));
        gw_static_mount_free(m);
        return NULL;
    }
    struct stat st;
    if (stat(resolved, &st) || !S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "serve_directory: directory '%s' is not a directory%s", directory,
                NULL);
        gw_static_mount_free(m);
        return NULL;
    }
    m->root = strdup(resolved);
    m->root_len = strlen(resolved);
    if (!m->root || (index_file && !(m->index_file = strdup(index_file))))
        goto oom;
    m->listing = listing != 0;
    return m;

oom:
    if (m && m->prefix) {
        gw_static_mount_free(m);
    } else {
        free(norm);
        free(m);
    }
    set_err(err, errlen, "serve_directory: out of memory%s%s", "", NULL);
    return NULL;
}

void gw_static_mount_free(gw_static_mount *m)
{
    if (!m)
        return;
    free(m->prefix);
    free(m->root);
    free(m->index_file);
    free(m);
}

gw_static_set *gw_static_set_new(void)
{
    return calloc(1, sizeof(gw_static_set));
}

void gw_static_set_free(gw_static_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->len; i++)
        gw_static_mount_free(set->items[i]);
    free(set->items);
    free(set);
}

int gw_static_set_add(gw_static_set *set, gw_static_mount *m, char *err, size_t errlen)
{
    for (size_t i = 0; i < set->len; i++) {
        if (!strcmp(set->items[i]->prefix, m->prefix)) {
            set_err(err, errlen, "serve_directory: route '%s' is already served%s",
                    m->prefix_len ? m->prefix : "/", NULL);
            gw_static_mount_free(m);
            return -EEXIST;
        }
    }
    if (set->len == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 4;
        gw_static_mount **items = realloc(set->items, cap * sizeof(*items));
        if (!items) {
            gw_static_mount_free(m);
            return -ENOMEM;
        }
        set->items = items;
        set->cap = cap;
    }
    set->items[set->len++] = m;
    return 0;
}

size_t gw_static_set_count(const gw_static_set *set)
{
    return set ? set->len : 0;
}

/* Whether m's prefix covers path; *rest receives where the rest of the path starts. */
static int covers(const gw_static_mount *m, const char *path, size_t len, size_t *rest)
{
    size_t pat = 0, at = 0;
    const char *pseg, *seg;
    size_t pseg_len, seg_len;
    while (next_segment(m->prefix, m->prefix_len, &pat, &pseg, &pseg_len)) {
        if (!next_segment(path, len, &at, &seg, &seg_len) || seg_len != pseg_len ||
            memcmp(seg, pseg, seg_len))
            return 0;
    }
    *rest = at;
    return 1;
}

const gw_static_mount *gw_static_find(const gw_static_set *set, const char *path,
                                      size_t path_len)
{
    const gw_static_mount *best = NULL;
    if (!set)
        return NULL;
    for (size_t i = 0; i < set->len; i++) {
        size_t rest;
        const gw_static_mount *m = set->items[i];
        if (covers(m, path, path_len, &rest) &&
            (!best || m->prefix_segments > best->prefix_segments))
            best = m;
    }
    return best;
}

/* ---- resolution -------------------------------------------------------------------------- */

void gw_static_hit_clear(gw_static_hit *hit)
{
    if (hit->fd >= 0)
        close(hit->fd);
    hit->fd = -1;
}

static int verdict(gw_static_hit *hit, int v, int status, const char *reason)
{
    hit->verdict = v;
    hit->status = status;
    hit->reason = reason;
    return v;
}

/* What a mount does not serve goes on to the routes, which answer 404 when none has it. */
static int not_served(const gw_static_mount *m, gw_static_hit *hit, const char *reason)
{
    (void)m;
    gw_static_hit_clear(hit);
    return verdict(hit, GW_STATIC_PASS, 0, reason);
}

static int inside_root(const gw_static_mount *m, const char *resolved)
{
    if (m->root_len == 1) /* the root is "/" */
        return resolved[0] == '/';
    return !strncmp(resolved, m->root, m->root_len) &&
           (resolved[m->root_len] == '\0' || resolved[m->root_len] == '/');
}

/* Opens fs_path if it resolves inside the root. Returns 0 with hit->fd, hit->st and
 * hit->fs_path set (the resolved path), or -1. */
static int open_inside(const gw_static_mount *m, const char *fs_path, gw_static_hit *hit)
{
    char resolved[PATH_MAX];
    if (!realpath(fs_path, resolved) || !inside_root(m, resolved))
        return -1;
    /* No link is left in the resolved path; O_NOFOLLOW refuses one swapped in since. */
    int fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (fstat(fd, &hit->st) || !(S_ISREG(hit->st.st_mode) || S_ISDIR(hit->st.st_mode))) {
        close(fd);
        return -1;
    }
    hit->fd = fd;
    snprintf(hit->fs_path, sizeof(hit->fs_path), "%s", resolved);
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int gw_static_resolve(const gw_static_mount *m, const char *path, size_t path_len,
                      const char *raw_path, size_t raw_len, gw_static_hit *hit)
{
    memset(hit, 0, sizeof(*hit));
    hit->fd = -1;
    size_t rest = 0;
    if (!covers(m, path, path_len, &rest))
        return verdict(hit, GW_STATIC_PASS, 0, "not under the mount");

    /* Refused outright, whatever the mount: ways to climb out of the root or to smuggle a
     * separator past the checks below. */
    for (size_t i = 0; raw_path && i + 2 < raw_len; i++) {
        if (raw_path[i] == '%' &&
            ((raw_path[i + 1] == '2' && (raw_path[i + 2] == 'f' || raw_path[i + 2] == 'F')) ||
             (raw_path[i + 1] == '5' && (raw_path[i + 2] == 'c' || raw_path[i + 2] == 'C'))))
            return verdict(hit, GW_STATIC_REFUSE, 400, "encoded slash or backslash");
    }
    size_t at = rest;
    const char *seg;
    size_t seg_len;
    while (next_segment(path, path_len, &at, &seg, &seg_len)) {
        if (memchr(seg, '\0', seg_len))
            return verdict(hit, GW_STATIC_REFUSE, 400, "NUL byte in the path");
        if (is_dot_segment(seg, seg_len))
            return verdict(hit, GW_STATIC_REFUSE, 400, "'.' or '..' segment");
    }

    char fs_path[PATH_MAX];
    size_t n = m->root_len;
    memcpy(fs_path, m->root, n);
    at = rest;
    while (next_segment(path, path_len, &at, &seg, &seg_len)) {
        if (seg[0] == '.')
            return not_served(m, hit, "hidden file");
        if (n + 1 + seg_len + 1 > sizeof(fs_path))
            return not_served(m, hit, "path too long");
        fs_path[n++] = '/';
        memcpy(fs_path + n, seg, seg_len);
        n += seg_len;
    }
    fs_path[n] = '\0';
    if (open_inside(m, fs_path, hit))
        return not_served(m, hit, "missing, unreadable, not a file, or outside the root");

    if (S_ISREG(hit->st.st_mode)) {
        hit->type_name = base_name(hit->fs_path);
        return verdict(hit, GW_STATIC_FILE, 0, "file");
    }

    /* A directory. */
    if (!m->index_file && !m->listing)
        return not_served(m, hit, "directory on a mount without index or listing");
    int trailing = path_len > 0 && path[path_len - 1] == '/';
    if (!trailing) {
        gw_static_hit_clear(hit);
        return verdict(hit, GW_STATIC_REDIRECT, 302, "directory without trailing slash");
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", hit->fs_path);
    gw_static_hit_clear(hit);
    if (m->index_file) {
        char index_path[PATH_MAX + 256];
        int k = snprintf(index_path, sizeof(index_path), "%s/%s", dir, m->index_file);
        if (k > 0 && (size_t)k < sizeof(index_path) && !open_inside(m, index_path, hit)) {
            if (S_ISREG(hit->st.st_mode)) {
                hit->type_name = m->index_file;
                return verdict(hit, GW_STATIC_FILE, 0, "index file");
            }
            gw_static_hit_clear(hit);
        }
    }
    if (m->listing) {
        snprintf(hit->fs_path, sizeof(hit->fs_path), "%s", dir);
        return verdict(hit, GW_STATIC_LISTING, 0, "listing");
    }
    return verdict(hit, GW_STATIC_PASS, 0, "directory without its index file");
}

/* ---- content types ------------------------------------------------------------------------ */

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    /* Sorted by extension (binary search). */
    {"7z", "application/x-7z-compressed"},
    {"aac", "audio/aac"},
    {"apng", "image/apng"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"eot", "application/vnd.ms-fontobject"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"ics", "text/calendar; charset=utf-8"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"jsonld", "application/ld+json"},
    {"m4a", "audio/mp4"},
    {"manifest", "text/cache-manifest; charset=utf-8"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpeg", "video/mpeg"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"rss", "application/rss+xml"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ts", "video/mp2t"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xml", "application/xml"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"zip", "application/zip"},
};

const char *gw_static_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || !dot[1] || strlen(dot + 1) > 15)
        return "application/octet-stream";
    char ext[16];
    size_t i = 0;
    for (const char *s = dot + 1; *s; s++)
        ext[i++] = (char)((*s >= 'A' && *s <= 'Z') ? *s + 32 : *s);
    ext[i] = '\0';
    size_t lo = 0, hi = sizeof(content_types) / sizeof(content_types[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(ext, content_types[mid].ext);
        if (!c)
            return content_types[mid].type;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return "application/octet-stream";
}

/* ---- dates ---------------------------------------------------------------------------------- */

static const char day_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void gw_static_http_date(time_t t, char out[40])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", day_names[tm.tm_wday % 7],
             tm.tm_mday, month_names[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int gw_static_parse_http_date(const char *s, size_t len, time_t *t)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT": 29 bytes, every field at a fixed place. */
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25] != ' ' || memcmp(s + 26, "GMT", 3))
        return -1;
    int day, year, hour, min, sec, mon = -1;
    if (digits(s + 5, 2, &day) || digits(s + 12, 4, &year) || digits(s + 17, 2, &hour) ||
        digits(s + 20, 2, &min) || digits(s + 23, 2, &sec))
        return -1;
    for (int i = 0; i < 12; i++)
        if (!memcmp(s + 8, month_names[i], 3))
            mon = i;
    if (mon < 0 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60 || year < 1970)
        return -1;
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    *t = timegm(&tm);
    return 0;
}

/* ---- answers ---------------------------------------------------------------------------------- */

void gw_static_answer_clear(gw_static_answer *a)
{
    free(a->head);
    a->head = NULL;
    a->head_len = 0;
    if (a->file_fd >= 0)
        close(a->file_fd);
    a->file_fd = -1;
    a->file_left = 0;
}

static void connection_header(sbuf *b, const gw_request *req)
{
    if (!req->keep_alive)
        sb_str(b, "connection: close\r\n");
    else if (req->version == 10)
        sb_str(b, "connection: keep-alive\r\n");
}

/* The path as sent (before decoding, without the query) and the query, if any. */
static void raw_parts(const gw_request *req, const char **path, size_t *path_len,
                      const char **query, size_t *query_len)
{
    const char *t = req->buf + req->target_off;
    size_t len = req->target_len;
    size_t start = 0;
    if (len && t[0] != '/') { /* absolute form: scheme://authority/path */
        const char *sep = memmem(t, len, "://", 3);
        size_t from = sep ? (size_t)(sep - t) + 3 : 0;
        start = len;
        for (size_t i = from; i < len; i++) {
            if (t[i] == '/' || t[i] == '?' || t[i] == '#') {
                start = i;
                break;
            }
        }
    }
    size_t end = start;
    while (end < len && t[end] != '?' && t[end] != '#')
        end++;
    *path = t + start;
    *path_len = end - start;
    *query = NULL;
    *query_len = 0;
    if (end < len && t[end] == '?') {
        size_t qend = end + 1;
        while (qend < len && t[qend] != '#')
            qend++;
        *query = t + end + 1;
        *query_len = qend - end - 1;
    }
}

/* Whether an If-None-Match list names etag (weak comparison, RFC 9110 13.1.2). */
static int etag_listed(const char *list, size_t len, const char *etag)
{
    size_t elen = strlen(etag);
    size_t i = 0;
    while (i < len) {
        while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t start = i;
        while (i < len && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        const char *tag = list + start;
        size_t tlen = end - start;
        if (tlen == 1 && tag[0] == '*')
            return 1;
        if (tlen > 2 && tag[0] == 'W' && tag[1] == '/') {
            tag += 2;
            tlen -= 2;
        }
        if (tlen == elen && !memcmp(tag, etag, elen))
            return 1;
    }
    return 0;
}

static int not_modified(const gw_request *req, const char *etag, time_t mtime)
{
    size_t len;
    const char *inm = gw_request_header(req, "if-none-match", 13, &len);
    if (inm)
        return etag_listed(inm, len, etag);
    const char *ims = gw_request_header(req, "if-modified-since", 17, &len);
    time_t since;
    if (ims && !gw_static_parse_http_date(ims, len, &since))
        return mtime <= since;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The HTML listing of hit->fs_path (the page Robyn's file service shows, with a link to
 * the parent directory below the mount's root). */
static void listing_body(const gw_static_mount *m, const gw_request *req, const char *dir,
                         sbuf *body)
{
    const char *title = req->buf + req->path_off;
    size_t title_len = req->path_len;
    sb_str(body, "<html><head><meta charset=\"utf-8\"><title>Index of ");
    sb_html(body, title, title_len);
    sb_str(body, "</title></head><body><h1>Index of ");
    sb_html(body, title, title_len);
    sb_str(body, "</h1><ul>");
    if (strcmp(dir, m->root))
        sb_str(body, "<li><a href=\"../\">../</a></li>");
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) && n < GW_STATIC_LISTING_MAX) {
            if (e->d_name[0] == '.') /* ., .., and hidden files, which are not served */
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                char **grown = realloc(names, ncap * sizeof(*grown));
                if (!grown)
                    break;
                names = grown;
                cap = ncap;
            }
            if (!(names[n] = strdup(e->d_name)))
                break;
            n++;
        }
        closedir(d);
    }
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        char full[PATH_MAX + 256], resolved[PATH_MAX];
        struct stat st;
        int k = snprintf(full, sizeof(full), "%s/%s", dir, names[i]);
        /* Listed only what a request for it would be served: inside the root, a file or a
         * directory. */
        if (k > 0 && (size_t)k < sizeof(full) && realpath(full, resolved) &&
            inside_root(m, resolved) && !stat(resolved, &st) &&
            (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
            int is_dir = S_ISDIR(st.st_mode);
            sb_str(body, "<li><a href=\"");
            sb_url_segment(body, names[i]);
            sb_str(body, is_dir ? "/\">" : "\">");
            sb_html(body, names[i], strlen(names[i]));
            sb_str(body, is_dir ? "/</a></li>" : "</a></li>");
        }
        free(names[i]);
    }
    free(names);
    sb_str(body, "</ul></body>\n</html>");
}

int gw_static_answer_build(const gw_static_mount *m, const gw_request *req, gw_static_hit *hit,
                           gw_static_answer *out)
{
    memset(out, 0, sizeof(*out));
    out->file_fd = -1;
    int head_only = req->method == GW_METHOD_HEAD;
    sbuf b = {0};

    if (hit->verdict == GW_STATIC_REFUSE) {
        const char *reason = gw_http_reason(hit->status);
        sb_fmt(&b, "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   "content-length: %zu\r\n", hit->status, reason, strlen(reason));
        connection_header(&b, req);
        sb_str(&b, "\r\n");
        if (!head_only)
            sb_str(&b, reason);
    } else if (hit->verdict == GW_STATIC_REDIRECT) {
        const char *path, *query;
        size_t path_len, query_len;
        raw_parts(req, &path, &path_len, &query, &query_len);
        sb_str(&b, "HTTP/1.1 302 Found\r\nlocation: ");
        sb_put(&b, path, path_len);
        sb_str(&b, "/");
        if (query) {
            sb_str(&b, "?");
            sb_put(&b, query, query_len);
        }
        sb_str(&b, "\r\ncontent-length: 0\r\n");
        connection_header(&b, req);
        sb_str(&b, "\r\n");
    } else if (hit->verdict == GW_STATIC_LISTING) {
        sbuf body = {0};
        listing_body(m, req, hit->fs_path, &body);
        if (body.failed) {
            free(body.s);
            goto oom;
        }
        sb_fmt(&b, "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n"
                   "content-length: %zu\r\n", body.len);
        connection_header(&b, req);
        sb_str(&b, "\r\n");
        if (!head_only)
            sb_put(&b, body.s, body.len);
        free(body.s);
    } else { /* GW_STATIC_FILE */
        char etag[80], modified[40];
        time_t mtime = hit->st.st_mtim.tv_sec;
        snprintf(etag, sizeof(etag), "\"%llx-%lx-%llx\"", (unsigned long long)mtime,
                 (unsigned long)hit->st.st_mtim.tv_nsec, (unsigned long long)hit->st.st_size);
        gw_static_http_date(mtime, modified);
        if (not_modified(req, etag, mtime)) {
            sb_fmt(&b, "HTTP/1.1 304 Not Modified\r\netag: %s\r\nlast-modified: %s\r\n", etag,
                   modified);
            connection_header(&b, req);
            sb_str(&b, "\r\n");
        } else {
            size_t size = (size_t)hit->st.st_size;
            char *inline_body = NULL;
            if (!head_only && size <= GW_STATIC_INLINE_MAX) {
                /* Small: read now, and the length said is the length read (a file cut
                 * short meanwhile must not leave the connection owing bytes). */
                inline_body = malloc(size ? size : 1);
                if (!inline_body)
                    goto oom;
                size_t got = 0;
                while (got < size) {
                    ssize_t r = pread(hit->fd, inline_body + got, size - got, (off_t)got);
                    if (r < 0 && errno == EINTR)
                        continue;
                    if (r <= 0)
                        break;
                    got += (size_t)r;
                }
                size = got;
            }
            sb_fmt(&b, "HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                       "last-modified: %s\r\netag: %s\r\n",
                   gw_static_content_type(hit->type_name), size, modified, etag);
            connection_header(&b, req);
            sb_str(&b, "\r\n");
            if (inline_body) {
                sb_put(&b, inline_body, size);
                free(inline_body);
            } else if (!head_only && size) {
                out->file_fd = hit->fd;
                hit->fd = -1;
                out->file_off = 0;
                out->file_left = size;
            }
        }
    }
    gw_static_hit_clear(hit);
    if (b.failed)
        goto oom;
    out->head = b.s;
    out->head_len = b.len;
    return 0;

oom:
    free(b.s);
    gw_static_hit_clear(hit);
    gw_static_answer_clear(out);
    return -ENOMEM;
}

/* ---- the server's mounts --------------------------------------------------------------------- */

int gw_server_serve_directory(gw_server *srv, const char *prefix, const char *directory,
                              const char *index_file, int listing, char *err, size_t errlen)
{
    gw_static_mount *m = gw_static_mount_new(prefix, directory, index_file, listing, err, errlen);
    if (!m)
        return strstr(err ? err : "", "out of memory") ? -ENOMEM : -EINVAL;
    if (!srv->statics && !(srv->statics = gw_static_set_new())) {
        gw_static_mount_free(m);
        return -ENOMEM;
    }
    return gw_static_set_add(srv->statics, m, err, errlen);
}
