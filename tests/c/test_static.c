/*
 * Unit tests for gateway/static.{c,h}: mounts and their errors, which mount covers a
 * path, how a path resolves (every traversal rule of docs/static.md, symbolic links in
 * and out of the root, hidden files, directories with and without an index file), the
 * content types, HTTP dates, and the answers built for parsed requests (200, 304, HEAD,
 * 302, 400, listings, large files left open for sendfile). A tree of files is made under
 * a fresh temporary directory and removed at the end; everything made is freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "httpparse.h"
#include "request.h"
#include "router.h"
#include "static.h"

static char tmp_root[256]; /* holds pub/ (the root served) and outside.txt */
static char pub[300];

static void write_file(const char *rel, const char *content, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmp_root, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    fclose(f);
}

static void make_dir(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmp_root, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void make_link(const char *target, const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmp_root, rel);
    assert_int_equal(symlink(target, path), 0);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/gw-static-test-XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    snprintf(pub, sizeof(pub), "%s/pub", tmp_root);
    make_dir("pub");
    make_dir("pub/sub");
    make_dir("pub/site");
    make_dir("pub/site/inner");
    make_dir("pub/empty");
    write_file("pub/index.html", "<h1>home</h1>", 13);
    write_file("pub/app.JS", "let a;", 6);
    write_file("pub/sub/style.css", "p{}", 3);
    write_file("pub/site/index.html", "<p>site</p>", 11);
    write_file("pub/site/inner/index.html", "<p>inner</p>", 12);
    write_file("pub/.env", "SECRET=1", 8);
    write_file("pub/a b.txt", "spaced", 6);
    write_file("outside.txt", "outside", 7);
    make_link("../outside.txt", "pub/escape.txt");
    make_link("/etc", "pub/etc");
    make_link("sub/style.css", "pub/alias.css");
    char fifo[512];
    snprintf(fifo, sizeof(fifo), "%s/pub/pipe", tmp_root);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    static char big[GW_STATIC_INLINE_MAX + 100];
    memset(big, 'x', sizeof(big));
    write_file("pub/big.bin", big, sizeof(big));
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- mounts -------------------------------------------------------------------------- */

static void mount_refused(const char *prefix, const char *dir, const char *index,
                          const char *want)
{
    char err[512] = "unset";
    gw_static_mount *m = gw_static_mount_new(prefix, dir, index, 0, err, sizeof(err));
    assert_null(m);
    assert_string_equal(err, want);
}

static void test_mount_errors(void **state)
{
    (void)state;
    mount_refused("static", pub, NULL, "serve_directory: route 'static' must start with '/'");
    mount_refused("/a/../b", pub, NULL,
                  "serve_directory: route '/a/../b' may not hold '.', '..', ':name' or '*name' "
                  "segments");
    mount_refused("/a/:id", pub, NULL,
                  "serve_directory: route '/a/:id' may not hold '.', '..', ':name' or '*name' "
                  "segments");
    mount_refused("/a b", pub, NULL,
                  "serve_directory: route '/a b' may hold printable ASCII only, without spaces, "
                  "'?', '#' or '%'");
    mount_refused("/s", "/nonexistent/dir", NULL,
                  "serve_directory: directory '/nonexistent/dir' does not exist");
    char file[512];
    snprintf(file, sizeof(file), "%s/index.html", pub);
    char want[700];
    snprintf(want, sizeof(want), "serve_directory: directory '%s' is not a directory", file);
    mount_refused("/s", file, NULL, want);
    mount_refused("/s", pub, "a/b.html", "serve_directory: index_file 'a/b.html' must be a file name");
    mount_refused("/s", pub, "..", "serve_directory: index_file '..' must be a file name");
    mount_refused("/s", pub, "", "serve_directory: index_file '' must be a file name");
}

static void test_set_and_find(void **state)
{
    (void)state;
    char err[256];
    gw_static_set *set = gw_static_set_new();
    assert_non_null(set);
    gw_static_mount *root = gw_static_mount_new("/", pub, NULL, 0, err, sizeof(err));
    gw_static_mount *stat_m = gw_static_mount_new("/static/", pub, NULL, 0, err, sizeof(err));
    gw_static_mount *deep = gw_static_mount_new("/static/sub", pub, NULL, 0, err, sizeof(err));
    assert_non_null(root);
    assert_non_null(stat_m);
    assert_non_null(deep);
    assert_int_equal(gw_static_set_add(set, root, err, sizeof(err)), 0);
    assert_int_equal(gw_static_set_add(set, stat_m, err, sizeof(err)), 0);
    assert_int_equal(gw_static_set_add(set, deep, err, sizeof(err)), 0);
    gw_static_mount *again = gw_static_mount_new("//static", pub, NULL, 0, err, sizeof(err));
    assert_non_null(again);
    assert_int_equal(gw_static_set_add(set, again, err, sizeof(err)), -EEXIST);
    assert_string_equal(err, "serve_directory: route '/static' is already served");
    assert_int_equal(gw_static_set_count(set), 3);

    assert_ptr_equal(gw_static_find(set, "/static/x", 9), stat_m);
    assert_ptr_equal(gw_static_find(set, "/static", 7), stat_m);
    assert_ptr_equal(gw_static_find(set, "//static//x", 11), stat_m);
    assert_ptr_equal(gw_static_find(set, "/statics/x", 10), root);
    assert_ptr_equal(gw_static_find(set, "/static/sub/a", 13), deep);
    assert_ptr_equal(gw_static_find(set, "/", 1), root);
    gw_static_set_free(set);

    gw_static_set *only = gw_static_set_new();
    gw_static_mount *m = gw_static_mount_new("/static", pub, NULL, 0, err, sizeof(err));
    assert_int_equal(gw_static_set_add(only, m, err, sizeof(err)), 0);
    assert_null(gw_static_find(only, "/other", 6));
    assert_null(gw_static_find(only, "/", 1));
    gw_static_set_free(only);
}

/* ---- resolution ------------------------------------------------------------------------- */

static int resolve(const gw_static_mount *m, const char *path, size_t len, gw_static_hit *hit)
{
    return gw_static_resolve(m, path, len, path, len, hit);
}

static void expect(const gw_static_mount *m, const char *path, int verdict, int status)
{
    gw_static_hit hit;
    int v = resolve(m, path, strlen(path), &hit);
    if (v != verdict || hit.status != status)
        fail_msg("%s: verdict %d status %d (%s), wanted %d %d", path, v, hit.status,
                 hit.reason ? hit.reason : "", verdict, status);
    if (v == GW_STATIC_FILE)
        assert_true(hit.fd >= 0);
    else
        assert_int_equal(hit.fd, -1);
    gw_static_hit_clear(&hit);
}

static void test_resolve_plain_mount(void **state)
{
    (void)state;
    char err[256];
    gw_static_mount *m = gw_static_mount_new("/static", pub, NULL, 0, err, sizeof(err));
    assert_non_null(m);
    expect(m, "/static/index.html", GW_STATIC_FILE, 0);
    expect(m, "/static//sub///style.css", GW_STATIC_FILE, 0);
    expect(m, "/static/alias.css", GW_STATIC_FILE, 0);   /* a link inside the root */
    expect(m, "/static/a b.txt", GW_STATIC_FILE, 0);
    /* What a plain mount does not serve goes on to the routes. */
    expect(m, "/static", GW_STATIC_PASS, 0);
    expect(m, "/static/sub", GW_STATIC_PASS, 0);
    expect(m, "/static/sub/", GW_STATIC_PASS, 0);
    expect(m, "/static/missing.txt", GW_STATIC_PASS, 0);
    expect(m, "/static/.env", GW_STATIC_PASS, 0);
    expect(m, "/static/escape.txt", GW_STATIC_PASS, 0); /* a link out of the root */
    expect(m, "/static/etc/passwd", GW_STATIC_PASS, 0);
    expect(m, "/static/pipe", GW_STATIC_PASS, 0);       /* neither file nor directory */
    expect(m, "/static/index.html/x", GW_STATIC_PASS, 0);
    expect(m, "/other/index.html", GW_STATIC_PASS, 0);
    /* Refused whatever the mount. */
    expect(m, "/static/../outside.txt", GW_STATIC_REFUSE, 400);
    expect(m, "/static/sub/../../outside.txt", GW_STATIC_REFUSE, 400);
    expect(m, "/static/./index.html", GW_STATIC_REFUSE, 400);
    expect(m, "/static/..", GW_STATIC_REFUSE, 400);
    expect(m, "/static/.env/..", GW_STATIC_REFUSE, 400);
    gw_static_hit hit;
    assert_int_equal(resolve(m, "/static/a\0b", 11, &hit), GW_STATIC_REFUSE);
    assert_int_equal(hit.status, 400);
    assert_string_equal(hit.reason, "NUL byte in the path");
    /* The decoded path names a file, but the slash was encoded in what was sent. */
    const char *decoded = "/static/sub/style.css";
    const char *raw = "/static/sub%2Fstyle.css";
    assert_int_equal(gw_static_resolve(m, decoded, strlen(decoded), raw, strlen(raw), &hit),
                     GW_STATIC_REFUSE);
    assert_int_equal(hit.status, 400);
    raw = "/static/sub%5cstyle.css";
    assert_int_equal(gw_static_resolve(m, decoded, strlen(decoded), raw, strlen(raw), &hit),
                     GW_STATIC_REFUSE);
    assert_int_equal(hit.status, 400);
    /* An encoded dot is decoded before the checks: still a dot segment. */
    decoded = "/static/../outside.txt";
    raw = "/static/%2e%2e/outside.txt";
    assert_int_equal(gw_static_resolve(m, decoded, strlen(decoded), raw, strlen(raw), &hit),
                     GW_STATIC_REFUSE);
    assert_int_equal(hit.status, 400);
    gw_static_mount_free(m);
}

static void test_resolve_index_mount(void **state)
{
    (void)state;
    char err[256];
    gw_static_mount *m = gw_static_mount_new("/site", pub, "index.html", 0, err, sizeof(err));
    assert_non_null(m);
    expect(m, "/site", GW_STATIC_REDIRECT, 302);
    expect(m, "/site/site", GW_STATIC_REDIRECT, 302);
    expect(m, "/site/", GW_STATIC_FILE, 0);
    expect(m, "/site/site/", GW_STATIC_FILE, 0);
    expect(m, "/site/site/inner/", GW_STATIC_FILE, 0);
    /* What the mount does not serve goes on to the routes (which answer 404 without one). */
    expect(m, "/site/sub/", GW_STATIC_PASS, 0); /* no index.html there, no listing */
    expect(m, "/site/missing", GW_STATIC_PASS, 0);
    expect(m, "/site/.env", GW_STATIC_PASS, 0);
    expect(m, "/site/escape.txt", GW_STATIC_PASS, 0);
    expect(m, "/site/../x", GW_STATIC_REFUSE, 400);
    gw_static_hit hit;
    assert_int_equal(resolve(m, "/site/site/", 11, &hit), GW_STATIC_FILE);
    assert_string_equal(hit.type_name, "index.html");
    char want[600];
    snprintf(want, sizeof(want), "%s/site/index.html", pub);
    char real_want[600];
    assert_non_null(realpath(want, real_want));
    assert_string_equal(hit.fs_path, real_want);
    gw_static_hit_clear(&hit);
    gw_static_mount_free(m);

    gw_static_mount *l = gw_static_mount_new("/list", pub, "index.html", 1, err, sizeof(err));
    expect(l, "/list/sub/", GW_STATIC_LISTING, 0); /* no index there: the listing */
    expect(l, "/list/site/", GW_STATIC_FILE, 0);
    expect(l, "/list/sub", GW_STATIC_REDIRECT, 302);
    gw_static_mount_free(l);
}

static void test_content_types(void **state)
{
    (void)state;
    assert_string_equal(gw_static_content_type("a.html"), "text/html; charset=utf-8");
    assert_string_equal(gw_static_content_type("A.HTML"), "text/html; charset=utf-8");
    assert_string_equal(gw_static_content_type("x.css"), "text/css; charset=utf-8");
    assert_string_equal(gw_static_content_type("x.js"), "text/javascript; charset=utf-8");
    assert_string_equal(gw_static_content_type("x.mjs"), "text/javascript; charset=utf-8");
    assert_string_equal(gw_static_content_type("x.json"), "application/json");
    assert_string_equal(gw_static_content_type("x.svg"), "image/svg+xml");
    assert_string_equal(gw_static_content_type("x.png"), "image/png");
    assert_string_equal(gw_static_content_type("x.jpg"), "image/jpeg");
    assert_string_equal(gw_static_content_type("x.gif"), "image/gif");
    assert_string_equal(gw_static_content_type("x.webp"), "image/webp");
    assert_string_equal(gw_static_content_type("x.ico"), "image/x-icon");
    assert_string_equal(gw_static_content_type("x.txt"), "text/plain; charset=utf-8");
    assert_string_equal(gw_static_content_type("x.wasm"), "application/wasm");
    assert_string_equal(gw_static_content_type("x.woff2"), "font/woff2");
    assert_string_equal(gw_static_content_type("x.pdf"), "application/pdf");
    assert_string_equal(gw_static_content_type("x.zip"), "application/zip");
    assert_string_equal(gw_static_content_type("x.unknown"), "application/octet-stream");
    assert_string_equal(gw_static_content_type("Makefile"), "application/octet-stream");
    assert_string_equal(gw_static_content_type(".bashrc"), "application/octet-stream");
    assert_string_equal(gw_static_content_type("trailing."), "application/octet-stream");
    assert_string_equal(gw_static_content_type("x.averyveryverylongextension"),
                        "application/octet-stream");
}

static void test_http_dates(void **state)
{
    (void)state;
    char out[40];
    gw_static_http_date(784111777, out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    time_t t = 0;
    assert_int_equal(gw_static_parse_http_date(out, strlen(out), &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(gw_static_parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT ", 31, &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(gw_static_parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t), -1);
    assert_int_equal(gw_static_parse_http_date("Sun Nov  6 08:49:37 1994", 24, &t), -1);
    assert_int_equal(gw_static_parse_http_date("Sun, 06 Xyz 1994 08:49:37 GMT", 29, &t), -1);
    assert_int_equal(gw_static_parse_http_date("Sun, 06 Nov 1994 28:49:37 GMT", 29, &t), -1);
    assert_int_equal(gw_static_parse_http_date("", 0, &t), -1);
}

/* ---- answers for parsed requests -------------------------------------------------------------- */

typedef struct parsed {
    gw_pool pool;
    gw_hp hp;
    gw_request *req;
} parsed;

static gw_request *new_req(void *ctx)
{
    return gw_pool_take(&((parsed *)ctx)->pool);
}

static int on_head(void *ctx, gw_request *req)
{
    (void)ctx;
    (void)req;
    return GW_HP_BODY_DROP;
}

static int on_request(void *ctx, gw_request *req)
{
    ((parsed *)ctx)->req = req;
    return 1;
}

static const gw_hp_callbacks callbacks = {new_req, on_head, on_request};
static const gw_hp_limits limits = {16384, 100, 8192, 1000000};

static gw_request *parse_one(parsed *p, const char *bytes)
{
    memset(p, 0, sizeof(*p));
    gw_hp_init(&p->hp, &limits, &callbacks, p);
    size_t used = 0;
    int rc = gw_hp_feed(&p->hp, bytes, strlen(bytes), &used);
    assert_int_equal(rc, GW_HP_PAUSED);
    assert_non_null(p->req);
    return p->req;
}

static void parsed_free(parsed *p)
{
    gw_request_release(p->req);
    gw_hp_reset(&p->hp);
    gw_pool_free(&p->pool);
}

/* Resolves and builds the answer of a request under m; the answer is the caller's. */
static void answer_for(const gw_static_mount *m, const char *bytes, gw_static_answer *a)
{
    parsed p;
    gw_request *req = parse_one(&p, bytes);
    gw_static_hit hit;
    const char *path = req->buf + req->path_off;
    const char *raw = req->buf + req->target_off;
    size_t raw_len = strcspn(raw, "?#");
    if (raw_len > req->target_len)
        raw_len = req->target_len;
    int v = gw_static_resolve(m, path, req->path_len, raw, raw_len, &hit);
    assert_int_not_equal(v, GW_STATIC_PASS);
    assert_int_equal(gw_static_answer_build(m, req, &hit, a), 0);
    assert_int_equal(hit.fd, -1);
    parsed_free(&p);
}

static int has(const gw_static_answer *a, const char *needle)
{
    return memmem(a->head, a->head_len, needle, strlen(needle)) != NULL;
}

/* Copies the value of header name (lower-case, with ": ") out of an answer's head. */
static void header_value(const gw_static_answer *a, const char *name, char *out, size_t cap)
{
    const char *at = memmem(a->head, a->head_len, name, strlen(name));
    assert_non_null(at);
    at += strlen(name);
    const char *end = strstr(at, "\r\n");
    assert_non_null(end);
    size_t n = (size_t)(end - at);
    assert_true(n < cap);
    memcpy(out, at, n);
    out[n] = '\0';
}

static void test_answers(void **state)
{
    (void)state;
    char err[256];
    gw_static_mount *m = gw_static_mount_new("/s", pub, "index.html", 1, err, sizeof(err));
    assert_non_null(m);
    gw_static_answer a;

    answer_for(m, "GET /s/sub/style.css HTTP/1.1\r\nHost: x\r\n\r\n", &a);
    assert_true(a.head_len > 4);
    assert_memory_equal(a.head, "HTTP/1.1 200 OK\r\ncontent-type: text/css; charset=utf-8\r\n"
                                "content-length: 3\r\n", 73);
    assert_memory_equal(a.head + a.head_len - 7, "\r\n\r\np{}", 7);
    assert_false(has(&a, "connection:"));
    assert_int_equal(a.file_fd, -1);
    char etag[80], modified[40];
    header_value(&a, "etag: ", etag, sizeof(etag));
    header_value(&a, "last-modified: ", modified, sizeof(modified));
    gw_static_answer_clear(&a);

    char req[512];
    snprintf(req, sizeof(req), "GET /s/sub/style.css HTTP/1.1\r\nIf-None-Match: \"zz\", W/%s\r\n\r\n",
             etag);
    answer_for(m, req, &a);
    assert_true(has(&a, "HTTP/1.1 304 Not Modified\r\n"));
    assert_true(has(&a, etag));
    assert_false(has(&a, "content-length"));
    gw_static_answer_clear(&a);

    answer_for(m, "GET /s/sub/style.css HTTP/1.1\r\nIf-None-Match: \"other\"\r\n\r\n", &a);
    assert_true(has(&a, "HTTP/1.1 200 OK\r\n"));
    gw_static_answer_clear(&a);

    snprintf(req, sizeof(req), "GET /s/sub/style.css HTTP/1.1\r\nIf-Modified-Since: %s\r\n\r\n",
             modified);
    answer_for(m, req, &a);
    assert_true(has(&a, "HTTP/1.1 304 Not Modified\r\n"));
    gw_static_answer_clear(&a);

    answer_for(m, "GET /s/sub/style.css HTTP/1.1\r\n"
                  "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n", &a);
    assert_true(has(&a, "HTTP/1.1 200 OK\r\n"));
    gw_static_answer_clear(&a);

    /* If-None-Match wins over If-Modified-Since. */
    snprintf(req, sizeof(req), "GET /s/sub/style.css HTTP/1.1\r\nIf-None-Match: \"other\"\r\n"
             "If-Modified-Since: %s\r\n\r\n", modified);
    answer_for(m, req, &a);
    assert_true(has(&a, "HTTP/1.1 200 OK\r\n"));
    gw_static_answer_clear(&a);

    answer_for(m, "HEAD /s/sub/style.css HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &a);
    assert_true(has(&a, "content-length: 3\r\n"));
    assert_true(has(&a, "connection: keep-alive\r\n"));
    assert_memory_equal(a.head + a.head_len - 4, "\r\n\r\n", 4);
    gw_static_answer_clear(&a);

    answer_for(m, "GET /s/big.bin HTTP/1.1\r\nConnection: close\r\n\r\n", &a);
    assert_true(a.file_fd >= 0);
    assert_int_equal(a.file_left, GW_STATIC_INLINE_MAX + 100);
    assert_int_equal(a.file_off, 0);
    assert_true(has(&a, "content-type: application/octet-stream\r\n"));
    assert_true(has(&a, "connection: close\r\n"));
    assert_memory_equal(a.head + a.head_len - 4, "\r\n\r\n", 4);
    gw_static_answer_clear(&a);
    assert_int_equal(a.file_fd, -1);

    answer_for(m, "GET /s/site?x=1 HTTP/1.1\r\n\r\n", &a);
    assert_true(has(&a, "HTTP/1.1 302 Found\r\nlocation: /s/site/?x=1\r\ncontent-length: 0\r\n"));
    gw_static_answer_clear(&a);

    answer_for(m, "GET http://example.com/s/site HTTP/1.1\r\n\r\n", &a);
    assert_true(has(&a, "location: /s/site/\r\n"));
    gw_static_answer_clear(&a);

    answer_for(m, "GET /s/../x HTTP/1.1\r\n\r\n", &a);
    assert_true(has(&a, "HTTP/1.1 400 Bad Request\r\n"));
    assert_memory_equal(a.head + a.head_len - 11, "Bad Request", 11);
    gw_static_answer_clear(&a);

    answer_for(m, "GET /s/ HTTP/1.1\r\n\r\n", &a);
    assert_true(has(&a, "<h1>home</h1>"));
    gw_static_answer_clear(&a);

    answer_for(m, "GET /s/sub/ HTTP/1.1\r\n\r\n", &a);
    assert_true(has(&a, "content-type: text/html; charset=utf-8\r\n"));
    assert_true(has(&a, "<title>Index of /s/sub/</title>"));
    assert_true(has(&a, "<li><a href=\"../\">../</a></li><li><a href=\"style.css\">style.css</a>"
                        "</li></ul>"));
    gw_static_answer_clear(&a);
    gw_static_mount_free(m);

    /* The root's listing: no parent link, hidden files and links out of the root left out,
     * names escaped and encoded. */
    gw_static_mount *l = gw_static_mount_new("/l", pub, NULL, 1, err, sizeof(err));
    answer_for(l, "GET /l/ HTTP/1.1\r\n\r\n", &a);
    assert_false(has(&a, "../"));
    assert_false(has(&a, ".env"));
    assert_false(has(&a, "escape.txt"));
    assert_false(has(&a, "\"etc/\""));
    assert_false(has(&a, "pipe"));
    assert_true(has(&a, "<li><a href=\"a%20b.txt\">a b.txt</a></li>"));
    assert_true(has(&a, "<li><a href=\"alias.css\">alias.css</a></li>"));
    assert_true(has(&a, "<li><a href=\"sub/\">sub/</a></li>"));
    gw_static_answer_clear(&a);
    gw_static_mount_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mount_errors),
        cmocka_unit_test(test_set_and_find),
        cmocka_unit_test(test_resolve_plain_mount),
        cmocka_unit_test(test_resolve_index_mount),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_http_dates),
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
