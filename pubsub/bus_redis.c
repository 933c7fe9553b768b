/*
 * bus_redis.c: the bus across machines, on Redis Pub/Sub. See bus_redis.h
 * for the model and docs/redis.md for what a user sees.
 *
 * The connection state machine (one for both connections):
 *
 *   DOWN ──timer──► CONNECTING ──both ready──► UP (buffer empty)
 *    ▲                  │                  └─► SETTLING ──timer──► UP
 *    └──── either connection lost, refused or timed out ◄──────────┘
 *
 * SETTLING holds publishes back for one backoff cap (plus a margin) after a
 * reconnection that found buffered publishes: every other node cut by the
 * same outage retries at most that long after Redis is back, so by then it
 * has subscribed again and the buffered messages reach it.
 *
 * Channels: one record per topic this process wants (or still has
 * subscribed), with what is wanted (set from any thread, under the lock) and
 * what Redis was told (loop thread). At most one SUBSCRIBE or UNSUBSCRIBE is
 * in flight per channel; the next is decided when its reply comes. That also
 * keeps hiredis 0.14 from losing a channel's callback, which it does when an
 * UNSUBSCRIBE and a SUBSCRIBE of one channel cross.
 */
#include "bus_redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "envelope.h"
#include "redis_history.h"

#define RETRY_MIN_US (100 * 1000)
/* A settle period is the backoff cap plus this, for a reconnection's round trips. */
#define SETTLE_MARGIN_US (250 * 1000)
/* Publishes handed to Redis and not answered yet, past which Redis is not
 * keeping up and new ones are dropped (counted) rather than piled up in
 * hiredis' unbounded output buffer. */
#define MIN_INFLIGHT_LIMIT 10000
#define ORIGIN_SLOTS 256

/* ---- logging ----------------------------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    char line[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "robyn.pubsub[redis]: %s\n", line);
}

/* ---- URL --------------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes n bytes of s into out (cap bytes, NUL-terminated). Returns
 * the length, or -1 for a bad escape, a NUL, or no room. */
static long pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= n)
                return -1;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0' || o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

/* Parses n decimal digits (no sign, no spaces) into *v within [lo, hi]. */
static int parse_num(const char *s, size_t n, unsigned long long lo, unsigned long long hi,
                     unsigned long long *v)
{
    unsigned long long x = 0;

    if (n == 0 || n > 19)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (unsigned)(s[i] - '0');
    }
    if (x < lo || x > hi)
        return -1;
    *v = x;
    return 0;
}

static int host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}

/* One query option name=value (n bytes). */
static int parse_option(const char *s, size_t n, ps_redis_config *cfg, int *prefix_set,
                        char *err, size_t errlen)
{
    const char *eq = memchr(s, '=', n);
    size_t klen = eq ? (size_t)(eq - s) : n;
    const char *val = eq ? eq + 1 : s + n;
    size_t vlen = eq ? n - klen - 1 : 0;
    unsigned long long v;

    if (eq == NULL)
        return fail(err, errlen, -EINVAL, "option '%.*s' has no value (name=value)",
                    (int)(klen > 64 ? 64 : klen), s);
#define KEY(name) (klen == sizeof(name) - 1 && !memcmp(s, name, klen))
    if (KEY("buffer")) {
        if (parse_num(val, vlen, 0, 10000000, &v))
            return fail(err, errlen, -EINVAL,
                        "buffer must be a number of messages from 0 to 10000000");
        cfg->buffer_messages = (size_t)v;
    } else if (KEY("buffer_bytes")) {
        if (parse_num(val, vlen, 0, 1ULL << 34, &v))
            return fail(err, errlen, -EINVAL,
                        "buffer_bytes must be a number of bytes from 0 to 17179869184");
        cfg->buffer_bytes = (size_t)v;
    } else if (KEY("retry_max_ms")) {
        if (parse_num(val, vlen, 100, 600000, &v))
            return fail(err, errlen, -EINVAL,
                        "retry_max_ms must be a number of milliseconds from 100 to 600000");
        cfg->retry_max_ms = (unsigned)v;
    } else if (KEY("connect_timeout_ms")) {
        if (parse_num(val, vlen, 100, 600000, &v))
            return fail(err, errlen, -EINVAL, "connect_timeout_ms must be a number of "
                                              "milliseconds from 100 to 600000");
        cfg->connect_timeout_ms = (unsigned)v;
    } else if (KEY("prefix")) {
        if (pct_decode(val, vlen, cfg->prefix, sizeof(cfg->prefix)) < 0)
            return fail(err, errlen, -EINVAL,
                        "prefix must be at most 255 bytes, percent-encoded where needed");
        *prefix_set = 1;
    } else {
        return fail(err, errlen, -EINVAL,
                    "unknown option '%.*s' (known: buffer, buffer_bytes, prefix, "
                    "retry_max_ms, connect_timeout_ms)",
                    (int)(klen > 64 ? 64 : klen), s);
    }
#undef KEY
    return 0;
}

int ps_redis_parse_url(const char *url, ps_redis_config *cfg, char *err, size_t errlen)
{
    const char *p, *end, *auth_end, *at, *hp, *colon;
    int prefix_set = 0;
    unsigned long long v;

    memset(cfg, 0, sizeof(*cfg));
    cfg->port = 6379;
    cfg->buffer_messages = 10000;
    cfg->buffer_bytes = 16u << 20;
    cfg->retry_max_ms = 2000;
    cfg->connect_timeout_ms = 2000;
    if (url == NULL || *url == '\0')
        return fail(err, errlen, -EINVAL, "the URL is empty");
    for (p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return fail(err, errlen, -EINVAL, "the URL has a space or control character");
    if (!strncasecmp(url, "rediss://", 9))
        return fail(err, errlen, -ENOTSUP,
                    "rediss:// (TLS) is not supported: this build's hiredis has no TLS "
                    "(hiredis_ssl is not in Debian 12's libhiredis-dev 0.14); use redis:// "
                    "through a TLS tunnel (docs/redis.md)");
    if (strncasecmp(url, "redis://", 8)) {
        const char *sep = strstr(url, "://");
        if (!strncasecmp(url, "unix:", 5))
            return fail(err, errlen, -EINVAL, "unix sockets are not supported; use "
                                              "redis://host:port/db");
        return fail(err, errlen, -EINVAL, "the scheme must be redis://, not '%.*s'",
                    sep ? (int)(sep - url > 32 ? 32 : sep - url) + 3 : 0,
                    sep ? url : "");
    }
    p = url + 8;
    end = p + strcspn(p, "/?#");
    if (*end == '#')
        return fail(err, errlen, -EINVAL, "the URL may not have a #fragment");
    auth_end = end;
    /* user:password@ (the last @ before the path: a password may hold one encoded). */
    at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    hp = p;
    if (at != NULL) {
        const char *c = memchr(p, ':', (size_t)(at - p));

        if (c == NULL)
            return fail(err, errlen, -EINVAL,
                        "a user needs a password: redis://user:password@host or "
                        "redis://:password@host");
        if (pct_decode(p, (size_t)(c - p), cfg->user, sizeof(cfg->user)) < 0)
            return fail(err, errlen, -EINVAL, "the user is too long or badly percent-encoded");
        if (pct_decode(c + 1, (size_t)(at - c - 1), cfg->password, sizeof(cfg->password)) < 0)
            return fail(err, errlen, -EINVAL,
                        "the password is too long or badly percent-encoded");
        if (cfg->password[0] == '\0')
            return fail(err, errlen, -EINVAL, "the password is empty");
        cfg->has_password = 1;
        hp = at + 1;
    }
    /* host[:port], host possibly [v6]. */
    if (hp < auth_end && *hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(auth_end - hp));
        size_t hl;

        if (rb == NULL)
            return fail(err, errlen, -EINVAL, "an IPv6 address needs its closing ]");
        hl = (size_t)(rb - hp - 1);
        if (hl == 0 || hl >= sizeof(cfg->host))
            return fail(err, errlen, -EINVAL, "the IPv6 address is empty or too long");
        memcpy(cfg->host, hp + 1, hl);
        cfg->host[hl] = '\0';
        for (size_t i = 0; i < hl; i++)
            if (!(hexval(cfg->host[i]) >= 0 || cfg->host[i] == ':' || cfg->host[i] == '.'))
                return fail(err, errlen, -EINVAL, "'%s' is not an IPv6 address", cfg->host);
        colon = rb + 1 < auth_end ? rb + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return fail(err, errlen, -EINVAL, "expected :port after the IPv6 address");
    } else {
        size_t hl;

        colon = memchr(hp, ':', (size_t)(auth_end - hp));
        hl = (size_t)((colon ? colon : auth_end) - hp);
        if (hl == 0)
            return fail(err, errlen, -EINVAL, "the host is missing: redis://host:port/db");
        if (hl >= sizeof(cfg->host))
            return fail(err, errlen, -EINVAL, "the host is too long");
        for (size_t i = 0; i < hl; i++)
            if (!host_char_ok(hp[i]))
                return fail(err, errlen, -EINVAL, "the host '%.*s' has a character a host "
                                                  "name cannot have", (int)hl, hp);
        memcpy(cfg->host, hp, hl);
        cfg->host[hl] = '\0';
    }
    if (colon != NULL) {
        if (parse_num(colon + 1, (size_t)(auth_end - colon - 1), 1, 65535, &v))
            return fail(err, errlen, -EINVAL, "the port must be a number from 1 to 65535, "
                                              "not '%.*s'",
                        (int)(auth_end - colon - 1 > 16 ? 16 : auth_end - colon - 1), colon + 1);
        cfg->port = (int)v;
    }
    /* /db */
    p = auth_end;
    if (*p == '/') {
        const char *q = p + 1;
        size_t n = strcspn(q, "?");

        if (n > 0) {
            if (parse_num(q, n, 0, INT_MAX, &v))
                return fail(err, errlen, -EINVAL, "the database must be a number (/0, /1 ...), "
                                                  "not '/%.*s'", (int)(n > 32 ? 32 : n), q);
            cfg->db = (int)v;
        }
        p = q + n;
    }
    /* ?options */
    if (*p == '?') {
        p++;
        while (*p) {
            size_t n = strcspn(p, "&");
            int rc;

            if (n == 0)
                return fail(err, errlen, -EINVAL, "an empty option (&&)");
            rc = parse_option(p, n, cfg, &prefix_set, err, errlen);
            if (rc)
                return rc;
            p += n;
            if (*p == '&')
                p++;
        }
    }
    if (!prefix_set)
        snprintf(cfg->prefix, sizeof(cfg->prefix), "robyn:%d:", cfg->db);
    return 0;
}

int ps_redis_resolve(ps_redis_config *cfg, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(cfg->host, NULL, &hints, &res);
    if (rc != 0 || res == NULL)
        return fail(err, errlen, -EHOSTUNREACH, "cannot resolve the Redis host '%s': %s",
                    cfg->host, rc ? gai_strerror(rc) : "no address");
    /* IPv4 first, as hiredis itself prefers it. */
    struct addrinfo *pick = res;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    const void *src = pick->ai_family == AF_INET
                          ? (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
                          : (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
    if (!inet_ntop(pick->ai_family, src, cfg->addr, sizeof(cfg->addr))) {
        freeaddrinfo(res);
        return fail(err, errlen, -EHOSTUNREACH, "cannot use the address of '%s'", cfg->host);
    }
    freeaddrinfo(res);
    return 0;
}

/* Describes where cfg points, for messages: host:port/db. */
static void where(const ps_redis_config *cfg, char *out, size_t cap)
{
    if (strchr(cfg->host, ':'))
        snprintf(out, cap, "[%s]:%d/%d", cfg->host, cfg->port, cfg->db);
    else
        snprintf(out, cap, "%s:%d/%d", cfg->host, cfg->port, cfg->db);
}

/* Runs one command on a synchronous connection; returns the reply (owned) or NULL. */
static redisReply *sync_cmd(redisContext *c, int argc, const char **argv)
{
    size_t lens[3];

    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return redisCommandArgv(c, argc, argv, lens);
}

int ps_redis_probe(const ps_redis_config *cfg, char *err, size_t errlen)
{
    struct timeval tv = {(time_t)(cfg->connect_timeout_ms / 1000),
                         (suseconds_t)(cfg->connect_timeout_ms % 1000) * 1000};
    char w[320], dbs[16];
    redisContext *c;
    redisReply *r;
    int rc = 0;

    where(cfg, w, sizeof(w));
    c = redisConnectWithTimeout(cfg->addr, cfg->port, tv);
    if (c == NULL)
        return fail(err, errlen, -ENOMEM, "out of memory connecting to Redis");
    if (c->err) {
        rc = fail(err, errlen, -ECONNREFUSED, "cannot connect to Redis at %s: %s", w, c->errstr);
        goto out;
    }
    redisSetTimeout(c, tv);
    if (cfg->has_password) {
        const char *auth_user[3] = {"AUTH", cfg->user, cfg->password};
        const char *auth_pass[2] = {"AUTH", cfg->password};

        r = cfg->user[0] ? sync_cmd(c, 3, auth_user) : sync_cmd(c, 2, auth_pass);
        if (r == NULL) {
            rc = fail(err, errlen, -EPROTO, "Redis at %s did not answer AUTH: %s", w, c->errstr);
            goto out;
        }
        if (r->type == REDIS_REPLY_ERROR)
            rc = fail(err, errlen, -EACCES, "Redis at %s refused AUTH: %s", w, r->str);
        freeReplyObject(r);
        if (rc)
            goto out;
    }
    snprintf(dbs, sizeof(dbs), "%d", cfg->db);
    const char *sel[2] = {"SELECT", dbs};
    r = sync_cmd(c, 2, sel);
    if (r == NULL) {
        rc = fail(err, errlen, -EPROTO, "Redis at %s did not answer SELECT: %s", w, c->errstr);
        goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (!strncmp(r->str, "NOAUTH", 6))
            rc = fail(err, errlen, -EACCES, "Redis at %s needs a password: %s", w, r->str);
        else
            rc = fail(err, errlen, -EINVAL, "Redis at %s refused database %d: %s", w, cfg->db,
                      r->str);
    }
    freeReplyObject(r);
    if (rc)
        goto out;
    const char *ping[1] = {"PING"};
    r = sync_cmd(c, 1, ping);
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        rc = fail(err, errlen, -EPROTO, "Redis at %s did not answer PING: %s", w,
                  r ? r->str : c->errstr);
    if (r)
        freeReplyObject(r);
out:
    redisFree(c);
    return rc;
}

/* ---- the bus ------------------------------------------------------------------------ */

enum conn_state { DOWN, CONNECTING, SETTLING, UP };
enum chan_state { C_IDLE, C_SUBSCRIBING, C_SUBSCRIBED, C_UNSUBSCRIBING };

struct chan {
    struct chan *next;       /* hash chain */
    struct chan *next_dirty; /* the dirty list, while dirty */
    int wanted;              /* under the lock */
    int dirty;               /* under the lock */
    int pins;                /* ps_bus_redis_pin()s not undone (loop thread, under the lock) */
    enum chan_state state;   /* what Redis was told (loop thread, under the lock) */
    size_t len;              /* topic length */
    char topic[];            /* NUL-terminated */
};

struct held {
    struct held *next;
    size_t chan_len, env_len;
    unsigned char *env;
    /* A publish to a topic with history: chan is then the topic, env the message's rest. */
    int history;
    size_t capacity;
    int64_t ttl_ms;
    char chan[];
};

struct origin_slot {
    unsigned char id[PS_ENVELOPE_ORIGIN_LEN];
    uint64_t last;
    int used;
};

struct bus_redis {
    ps_bus base; /* first: a ps_bus * is a struct bus_redis * */
    ps_topics *topics;
    ps_redis_config cfg;
    ps_redis_host host;
    char where[320];
    unsigned char origin[PS_ENVELOPE_ORIGIN_LEN];
    uint64_t seq;

    /* Loop thread. */
    enum conn_state state;
    redisAsyncContext *pub, *sub;
    int pub_ready, sub_ready;
    int closing;
    int64_t backoff_us;
    int ever_connected;
    int down_logged;       /* the current outage was reported */
    int overflow_logged;   /* this outage's overflow was reported */
    int refused_logged;    /* Redis refused a publish: reported once */
    int scripts_refused_logged; /* Redis refused SCRIPT LOAD: reported once */
    struct held *held_head, *held_tail;
    size_t held_count, held_bytes;
    uint64_t dropped_this_outage;
    size_t inflight;
    char *scratch;
    size_t scratch_cap;
    struct origin_slot origins[ORIGIN_SLOTS];
    /* Presence (presence_* functions below): the reserved channel, whether Redis confirmed
     * our SUBSCRIBE to it on the current connection, and whether presence_online was
     * said for this connection. */
    char presence_chan[272];
    size_t presence_chan_len;
    int presence_subscribed, presence_online;
    /* The history scripts' SHA1s (SCRIPT LOAD on the publishing connection), and what new
     * epochs are named after: a random token of this process and a counter. */
    char sha_publish[41], sha_read[41];
    char epoch_node[11];
    uint64_t epoch_seq;

    /* Channels: guarded by lock. */
    pthread_mutex_t lock;
    struct chan **buckets;
    size_t nbuckets, nchans;
    struct chan *dirty_head;

    atomic_int st_connected;
    atomic_uint_fast64_t st_outages, st_published, st_buffered, st_dropped, st_received,
        st_own, st_gaps, st_bad, st_channels;
};

static const ps_bus_ops redis_ops;

static const char TAG_AUTH = 'a', TAG_PUB = 'p', TAG_SUB = 's', TAG_LOAD_PUBLISH = 'l',
                  TAG_LOAD_READ = 'r';

static void connect_all(struct bus_redis *b);
static void teardown(struct bus_redis *b, const char *why);
static void apply(struct bus_redis *b, struct chan *c);
static void presence_subscribe(struct bus_redis *b);
static void presence_maybe_online(struct bus_redis *b);
static int presence_reply(struct bus_redis *b, const redisReply *reply);
static void send_history_publish(struct bus_redis *b, const char *topic, size_t len,
                                 const char *rest, size_t rest_len, size_t capacity,
                                 int64_t ttl_ms);
static void on_history_message(struct bus_redis *b, const char *topic, size_t len,
                               const redisReply *data);

/* Whether Redis should have channel c subscribed: a local subscriber, or a pin. */
static int chan_wanted(const struct chan *c)
{
    return c->wanted || c->pins > 0;
}

/* ---- channel records (under b->lock) ----------------------------------------------- */

static size_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 29));
}

static struct chan **chan_slot(struct bus_redis *b, const char *topic, size_t len)
{
    struct chan **pp = &b->buckets[hash(topic, len) & (b->nbuckets - 1)];

    while (*pp && !((*pp)->len == len && !memcmp((*pp)->topic, topic, len)))
        pp = &(*pp)->next;
    return pp;
}

static void grow(struct bus_redis *b)
{
    size_t n = b->nbuckets * 2;
    struct chan **nb = calloc(n, sizeof(*nb));

    if (nb == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < b->nbuckets; i++) {
        struct chan *c = b->buckets[i];

        while (c) {
            struct chan *next = c->next;
            size_t j = hash(c->topic, c->len) & (n - 1);

            c->next = nb[j];
            nb[j] = c;
            c = next;
        }
    }
    free(b->buckets);
    b->buckets = nb;
    b->nbuckets = n;
}

static struct chan *chan_get(struct bus_redis *b, const char *topic, size_t len, int create)
{
    struct chan **pp = chan_slot(b, topic, len);
    struct chan *c;

    if (*pp || !create)
        return *pp;
    c = calloc(1, sizeof(*c) + len + 1);
    if (c == NULL)
        return NULL;
    memcpy(c->topic, topic, len);
    c->len = len;
    *pp = c;
    if (++b->nchans > b->nbuckets)
        grow(b);
    return c;
}

static void chan_remove(struct bus_redis *b, struct chan *c)
{
    struct chan **pp = chan_slot(b, c->topic, c->len);

    if (*pp == c) {
        *pp = c->next;
        b->nchans--;
        free(c);
    }
}

static void mark_dirty(struct bus_redis *b, struct chan *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        c->next_dirty = b->dirty_head;
        b->dirty_head = c;
    }
}

/* ---- helpers ------------------------------------------------------------------------- */

/* prefix + topic in b->scratch; returns its length, or 0 when out of memory. */
static size_t channel_of(struct bus_redis *b, const char *topic, size_t len)
{
    size_t pl = strlen(b->cfg.prefix), need = pl + len + 1;

    if (need > b->scratch_cap) {
        char *s = realloc(b->scratch, need);
        if (s == NULL)
            return 0;
        b->scratch = s;
        b->scratch_cap = need;
    }
    memcpy(b->scratch, b->cfg.prefix, pl);
    memcpy(b->scratch + pl, topic, len);
    b->scratch[pl + len] = '\0';
    return pl + len;
}

static int internal_topic(const char *topic, size_t len)
{
    /* Topics starting with \x01 name things of this process (a route's broadcast). */
    return len == 0 || topic[0] == '\x01';
}

static void drop_one(struct bus_redis *b, const char *what)
{
    atomic_fetch_add(&b->st_dropped, 1);
    b->dropped_this_outage++;
    if (!b->overflow_logged) {
        b->overflow_logged = 1;
        say("%s; further publishes are dropped (and counted: websocket_stats()"
            "['pubsub_dropped']) until there is room again", what);
    }
}

/* ---- hiredis callbacks --------------------------------------------------------------- */

static void on_publish_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct bus_redis *b = privdata;
    redisReply *reply = r;

    (void)ac;
    if (b->inflight)
        b->inflight--;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        atomic_fetch_add(&b->st_dropped, 1);
        if (!b->refused_logged) {
            b->refused_logged = 1;
            say("Redis at %s refused a PUBLISH: %s (such publishes are counted in "
                "websocket_stats()['pubsub_dropped'])", b->where, reply->str);
        }
    }
}

static void send_publish(struct bus_redis *b, const char *chan, size_t chan_len,
                         const unsigned char *env, size_t env_len)
{
    const char *argv[3] = {"PUBLISH", chan, (const char *)env};
    size_t lens[3] = {7, chan_len, env_len};

    if (redisAsyncCommandArgv(b->pub, on_publish_reply, b, 3, argv, lens) != REDIS_OK) {
        drop_one(b, "a PUBLISH could not be queued");
        return;
    }
    b->inflight++;
    atomic_fetch_add(&b->st_published, 1);
}

static void flush_held(struct bus_redis *b)
{
    struct held *h = b->held_head;
    size_t n = b->held_count;

    while (h) {
        struct held *next = h->next;

        if (h->history) {
            send_history_publish(b, h->chan, h->chan_len, (const char *)h->env, h->env_len,
                                 h->capacity, h->ttl_ms);
            free(h->env);
        } else {
            send_publish(b, h->chan, h->chan_len, h->env, h->env_len);
        }
        free(h);
        h = next;
    }
    b->held_head = b->held_tail = NULL;
    b->held_count = b->held_bytes = 0;
    atomic_store(&b->st_buffered, 0);
    if (n)
        say("sent the %zu publishes buffered during the outage", n);
}

static void go_up(struct bus_redis *b)
{
    flush_held(b);
    b->state = UP;
    atomic_store(&b->st_connected, 1);
}

/* Both connections answered their set-up commands. */
static void both_ready(struct bus_redis *b)
{
    b->host.schedule(b->host.ctx, -1);
    b->backoff_us = RETRY_MIN_US;
    if (b->ever_connected)
        say("reconnected to %s; %llu publishes buffered, %llu dropped during the outage",
            b->where, (unsigned long long)b->held_count,
            (unsigned long long)b->dropped_this_outage);
    else if (b->down_logged)
        say("connected to %s", b->where);
    b->ever_connected = 1;
    b->down_logged = 0;
    b->dropped_this_outage = 0;
    presence_maybe_online(b);
    if (b->held_count == 0) {
        go_up(b);
        return;
    }
    b->state = SETTLING;
    b->host.schedule(b->host.ctx, (int64_t)b->cfg.retry_max_ms * 1000 + SETTLE_MARGIN_US);
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct bus_redis *b = ac->data;
    redisReply *reply = r;
    char why[300];

    if (reply == NULL || b->closing || (ac != b->pub && ac != b->sub))
        return;
    if (privdata == &TAG_LOAD_PUBLISH || privdata == &TAG_LOAD_READ) {
        char *sha = privdata == &TAG_LOAD_PUBLISH ? b->sha_publish : b->sha_read;
        if (reply->type == REDIS_REPLY_STRING && reply->len == 40) {
            memcpy(sha, reply->str, 40);
            sha[40] = '\0';
        } else {
            /* A Redis that forbids scripts still carries plain topics; topics with
             * history are refused, each publish and read saying so. */
            sha[0] = '\0';
            if (!b->scripts_refused_logged) {
                b->scripts_refused_logged = 1;
                say("Redis at %s refused SCRIPT LOAD (%s): topics with history cannot be kept "
                    "in it; their publishes are dropped and their reads fail",
                    b->where, reply->type == REDIS_REPLY_ERROR ? reply->str : "not a SHA1");
            }
        }
        /* The read script's is the last set-up reply on this connection. */
        if (privdata == &TAG_LOAD_READ)
            b->pub_ready = 1;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "Redis refused %s: %s",
                 privdata == &TAG_AUTH ? "AUTH" : privdata == &TAG_PUB ? "SELECT" : "PING",
                 reply->str);
        teardown(b, why);
        return;
    } else if (privdata == &TAG_SUB) {
        b->sub_ready = 1;
        presence_subscribe(b);
        /* Subscribe to every channel wanted now. */
        pthread_mutex_lock(&b->lock);
        for (size_t i = 0; i < b->nbuckets; i++) {
            struct chan *c = b->buckets[i];

            while (c) {
                struct chan *next = c->next;

                apply(b, c);
                c = next;
            }
        }
        pthread_mutex_unlock(&b->lock);
    }
    if (b->pub_ready && b->sub_ready && b->state == CONNECTING)
        both_ready(b);
}

/* An origin's last sequence number seen; counts gaps, tells duplicates. Returns
 * 0 for a message to deliver, 1 for a duplicate. */
static int track_origin(struct bus_redis *b, const ps_envelope *env)
{
    size_t i = hash((const char *)env->origin, PS_ENVELOPE_ORIGIN_LEN) % ORIGIN_SLOTS;

    for (size_t k = 0; k < ORIGIN_SLOTS; k++, i = (i + 1) % ORIGIN_SLOTS) {
        struct origin_slot *s = &b->origins[i];

        if (!s->used) {
            s->used = 1;
            memcpy(s->id, env->origin, PS_ENVELOPE_ORIGIN_LEN);
            s->last = env->seq;
            return 0;
        }
        if (!memcmp(s->id, env->origin, PS_ENVELOPE_ORIGIN_LEN)) {
            if (env->seq <= s->last)
                return 1;
            if (env->seq > s->last + 1)
                atomic_fetch_add(&b->st_gaps, env->seq - s->last - 1);
            s->last = env->seq;
            return 0;
        }
    }
    /* More publishers than slots: start over rather than grow without bound. */
    memset(b->origins, 0, sizeof(b->origins));
    return track_origin(b, env);
}

static void on_message(struct bus_redis *b, const redisReply *chan, const redisReply *data)
{
    size_t pl = strlen(b->cfg.prefix);
    ps_envelope env;
    ps_frame *f;
    int rc;

    if (chan->type != REDIS_REPLY_STRING || data->type != REDIS_REPLY_STRING ||
        chan->len <= pl || memcmp(chan->str, b->cfg.prefix, pl)) {
        atomic_fetch_add(&b->st_bad, 1);
        return;
    }
    /* A message Redis numbered is the JSON subscribers get; an envelope is msgpack (an
     * array: never '{'). */
    if (data->len > 0 && data->str[0] == '{') {
        on_history_message(b, chan->str + pl, chan->len - pl, data);
        return;
    }
    rc = ps_envelope_decode(data->str, data->len, &env);
    if (rc == PS_ENV_OK && (env.topic_len != chan->len - pl ||
                            memcmp(env.topic, chan->str + pl, env.topic_len)))
        rc = PS_ENV_BAD_TOPIC;
    if (rc != PS_ENV_OK) {
        if (atomic_fetch_add(&b->st_bad, 1) == 0)
            say("a message on channel '%.*s' is not a Robyn envelope (%s); such messages "
                "are dropped and counted in websocket_stats()['pubsub_bad']",
                (int)(chan->len > 200 ? 200 : chan->len), chan->str, ps_envelope_strerror(rc));
        return;
    }
    if (!memcmp(env.origin, b->origin, PS_ENVELOPE_ORIGIN_LEN)) {
        atomic_fetch_add(&b->st_own, 1); /* delivered locally when published */
        return;
    }
    if (track_origin(b, &env))
        return;
    f = ps_frame_new(env.opcode, env.payload, env.payload_len);
    if (f == NULL) {
        atomic_fetch_add(&b->st_bad, 1);
        return;
    }
    b->host.deliver(b->host.ctx, env.topic, env.topic_len, f);
    ps_frame_unref(f);
    atomic_fetch_add(&b->st_received, 1);
}

/* Every reply on the subscribing connection: subscribe / unsubscribe
 * confirmations and messages. */
static void on_sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct bus_redis *b = privdata;
    redisReply *reply = r;
    size_t pl = strlen(b->cfg.prefix);

    if (reply == NULL || b->closing || ac != b->sub)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof(why), "Redis refused SUBSCRIBE: %s", reply->str);
        teardown(b, why);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (presence_reply(b, reply))
        return;
    const char *kind = reply->element[0]->str;
    const redisReply *chan = reply->element[1];
    if (!strcmp(kind, "message")) {
        on_message(b, chan, reply->element[2]);
        return;
    }
    if (chan->type != REDIS_REPLY_STRING || chan->len < pl)
        return;
    pthread_mutex_lock(&b->lock);
    struct chan *c = chan_get(b, chan->str + pl, chan->len - pl, 0);
    int ready = 0;
    if (c != NULL) {
        if (!strcmp(kind, "subscribe")) {
            c->state = C_SUBSCRIBED;
            atomic_fetch_add(&b->st_channels, 1);
            ready = 1;
        } else if (!strcmp(kind, "unsubscribe")) {
            c->state = C_IDLE;
            atomic_fetch_sub(&b->st_channels, 1);
        }
        if (!c->dirty)
            apply(b, c);
    }
    pthread_mutex_unlock(&b->lock);
    /* Outside the lock: the host may pin, unpin or read in answer. */
    if (ready && b->host.channel_ready)
        b->host.channel_ready(b->host.ctx, chan->str + pl, chan->len - pl);
}

/* Brings Redis in line with what is wanted of channel c (under b->lock). */
static void apply(struct bus_redis *b, struct chan *c)
{
    const char *argv[2];
    size_t lens[2];
    size_t n;

    int wanted = chan_wanted(c);

    if (!b->sub_ready) {
        if (!wanted && c->state == C_IDLE)
            chan_remove(b, c);
        return;
    }
    if (wanted && c->state == C_IDLE) {
        argv[0] = "SUBSCRIBE";
    } else if (!wanted && c->state == C_SUBSCRIBED) {
        argv[0] = "UNSUBSCRIBE";
    } else {
        if (!wanted && c->state == C_IDLE)
            chan_remove(b, c);
        return; /* in flight: decided again when its reply comes */
    }
    n = channel_of(b, c->topic, c->len);
    if (n == 0)
        return;
    argv[1] = b->scratch;
    lens[0] = strlen(argv[0]);
    lens[1] = n;
    if (redisAsyncCommandArgv(b->sub, on_sub_reply, b, 2, argv, lens) != REDIS_OK)
        return;
    c->state = wanted ? C_SUBSCRIBING : C_UNSUBSCRIBING;
}

static void conn_gone(struct bus_redis *b, const redisAsyncContext *ac, const char *why)
{
    if (ac == b->pub) {
        b->pub = NULL;
        b->pub_ready = 0;
    } else if (ac == b->sub) {
        b->sub = NULL;
        b->sub_ready = 0;
    } else {
        return; /* one we let go of ourselves */
    }
    if (!b->closing)
        teardown(b, why);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct bus_redis *b = ac->data;

    if (status != REDIS_OK)
        conn_gone(b, ac, ac->errstr[0] ? ac->errstr : "connection failed");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct bus_redis *b = ac->data;

    conn_gone(b, ac, status == REDIS_OK ? "connection closed"
                                        : (ac->errstr[0] ? ac->errstr : "connection lost"));
}

/* ---- the connection state machine ---------------------------------------------------- */

/* Lets go of both connections, reports the outage (once), forgets what Redis
 * was told about channels, and schedules the next attempt. */
static void teardown(struct bus_redis *b, const char *why)
{
    redisAsyncContext *pub = b->pub, *sub = b->sub;
    int was_up = b->state == UP || b->state == SETTLING;

    b->pub = b->sub = NULL;
    b->pub_ready = b->sub_ready = 0;
    b->presence_subscribed = b->presence_online = 0;
    if (pub)
        redisAsyncFree(pub);
    if (sub)
        redisAsyncFree(sub);
    if (b->state != DOWN && b->state != CONNECTING)
        atomic_fetch_add(&b->st_outages, 1);
    atomic_store(&b->st_connected, 0);
    if (was_up) {
        b->overflow_logged = 0;
        b->dropped_this_outage = 0;
        say("lost the connection to %s (%s); local delivery goes on, publishes are kept "
            "(up to %zu messages, %zu bytes) and sent when Redis is back; retrying",
            b->where, why, b->cfg.buffer_messages, b->cfg.buffer_bytes);
        b->down_logged = 1;
    } else if (!b->down_logged) {
        say("cannot reach %s (%s); retrying with backoff up to %u ms", b->where, why,
            b->cfg.retry_max_ms);
        b->down_logged = 1;
    }
    b->state = DOWN;
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->nbuckets; i++) {
        struct chan *c = b->buckets[i];

        while (c) {
            struct chan *next = c->next;

            c->state = C_IDLE;
            if (!chan_wanted(c) && !c->dirty)
                chan_remove(b, c);
            c = next;
        }
    }
    atomic_store(&b->st_channels, 0);
    pthread_mutex_unlock(&b->lock);
    b->host.schedule(b->host.ctx, b->backoff_us);
    if (was_up && b->host.down)
        b->host.down(b->host.ctx);
    b->backoff_us *= 2;
    if (b->backoff_us > (int64_t)b->cfg.retry_max_ms * 1000)
        b->backoff_us = (int64_t)b->cfg.retry_max_ms * 1000;
}

static redisAsyncContext *open_conn(struct bus_redis *b, const char *tag)
{
    redisAsyncContext *ac = redisAsyncConnect(b->cfg.addr, b->cfg.port);
    char dbs[16];

    if (ac == NULL)
        return NULL;
    if (ac->err) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = b;
    if (b->host.attach(b->host.ctx, ac)) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisEnableKeepAlive(&ac->c);
    ps_rh_bound_reader(ac->c.reader);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (b->cfg.has_password) {
        const char *argv[3] = {"AUTH", b->cfg.user, b->cfg.password};
        size_t lens[3] = {4, strlen(b->cfg.user), strlen(b->cfg.password)};

        if (b->cfg.user[0])
            redisAsyncCommandArgv(ac, on_setup_reply, (void *)&TAG_AUTH, 3, argv, lens);
        else {
            argv[1] = b->cfg.password;
            lens[1] = lens[2];
            redisAsyncCommandArgv(ac, on_setup_reply, (void *)&TAG_AUTH, 2, argv, lens);
        }
    }
    if (tag == &TAG_PUB) {
        snprintf(dbs, sizeof(dbs), "%d", b->cfg.db);
        const char *argv[2] = {"SELECT", dbs};
        size_t lens[2] = {6, strlen(dbs)};
        redisAsyncCommandArgv(ac, on_setup_reply, (void *)tag, 2, argv, lens);
        /* Loaded once per connection, run by EVALSHA (redis_history.h). */
        const char *load[3] = {"SCRIPT", "LOAD", ps_redis_history_publish_lua};
        size_t load_lens[3] = {6, 4, strlen(ps_redis_history_publish_lua)};
        redisAsyncCommandArgv(ac, on_setup_reply, (void *)&TAG_LOAD_PUBLISH, 3, load, load_lens);
        load[2] = ps_redis_history_read_lua;
        load_lens[2] = strlen(ps_redis_history_read_lua);
        redisAsyncCommandArgv(ac, on_setup_reply, (void *)&TAG_LOAD_READ, 3, load, load_lens);
    } else {
        const char *argv[1] = {"PING"};
        size_t lens[1] = {4};
        redisAsyncCommandArgv(ac, on_setup_reply, (void *)tag, 1, argv, lens);
    }
    return ac;
}

static void connect_all(struct bus_redis *b)
{
    b->state = CONNECTING;
    b->pub = open_conn(b, &TAG_PUB);
    b->sub = b->pub ? open_conn(b, &TAG_SUB) : NULL;
    if (b->pub == NULL || b->sub == NULL) {
        b->state = CONNECTING; /* so that teardown does not count a new outage */
        teardown(b, "cannot open a connection");
        return;
    }
    b->host.schedule(b->host.ctx, (int64_t)b->cfg.connect_timeout_ms * 1000);
}

void ps_bus_redis_tick(ps_bus *bus)
{
    struct bus_redis *b = (struct bus_redis *)bus;

    if (b->closing)
        return;
    switch (b->state) {
    case DOWN:
        connect_all(b);
        break;
    case CONNECTING:
        teardown(b, "timed out connecting");
        break;
    case SETTLING:
        go_up(b);
        break;
    case UP:
        break;
    }
}

void ps_bus_redis_service(ps_bus *bus)
{
    struct bus_redis *b = (struct bus_redis *)bus;

    pthread_mutex_lock(&b->lock);
    struct chan *c = b->dirty_head;
    b->dirty_head = NULL;
    while (c) {
        struct chan *next = c->next_dirty;

        c->dirty = 0;
        c->next_dirty = NULL;
        apply(b, c);
        c = next;
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---- ps_bus_ops ------------------------------------------------------------------------ */

static void hold(struct bus_redis *b, const char *chan, size_t chan_len, unsigned char *env,
                 size_t env_len)
{
    struct held *h;

    if (b->held_count >= b->cfg.buffer_messages ||
        b->held_bytes + env_len > b->cfg.buffer_bytes) {
        char what[160];
        snprintf(what, sizeof(what), "the outage buffer is full (%zu messages, %zu bytes)",
                 b->held_count, b->held_bytes);
        drop_one(b, what);
        free(env);
        return;
    }
    h = malloc(sizeof(*h) + chan_len + 1);
    if (h == NULL) {
        drop_one(b, "out of memory buffering a publish");
        free(env);
        return;
    }
    h->next = NULL;
    h->chan_len = chan_len;
    memcpy(h->chan, chan, chan_len + 1);
    h->env = env;
    h->env_len = env_len;
    h->history = 0;
    h->capacity = 0;
    h->ttl_ms = 0;
    if (b->held_tail)
        b->held_tail->next = h;
    else
        b->held_head = h;
    b->held_tail = h;
    b->held_count++;
    b->held_bytes += env_len;
    atomic_store(&b->st_buffered, b->held_count);
}

static int redis_publish(ps_bus *bus, const char *topic, size_t len, ps_frame *frame,
                         const ps_subscriber *exclude)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    size_t n = ps_topics_publish(b->topics, topic, len, frame, exclude);
    int reached = n > INT_MAX ? INT_MAX : (int)n;
    unsigned op = ps_frame_opcode(frame);
    unsigned char *env = NULL;
    size_t env_len = 0, chan_len;
    int rc;

    if (internal_topic(topic, len) || (op != PS_OP_TEXT && op != PS_OP_BINARY))
        return reached;
    ps_envelope e = {.seq = ++b->seq, .topic = topic, .topic_len = len, .opcode = op,
                     .payload = ps_frame_payload(frame),
                     .payload_len = ps_frame_payload_len(frame)};
    memcpy(e.origin, b->origin, sizeof(e.origin));
    rc = ps_envelope_encode(&e, &env, &env_len);
    chan_len = rc == PS_ENV_OK ? channel_of(b, topic, len) : 0;
    if (chan_len == 0) {
        free(env);
        drop_one(b, rc == PS_ENV_OK ? "out of memory" : ps_envelope_strerror(rc));
        return reached;
    }
    if (b->state == UP) {
        if (b->inflight >= (b->cfg.buffer_messages > MIN_INFLIGHT_LIMIT ? b->cfg.buffer_messages
                                                                         : MIN_INFLIGHT_LIMIT))
            drop_one(b, "Redis is not keeping up (too many publishes unanswered)");
        else
            send_publish(b, b->scratch, chan_len, env, env_len);
        free(env);
    } else {
        hold(b, b->scratch, chan_len, env, env_len);
    }
    return reached;
}

static void want(ps_bus *bus, const char *topic, size_t len, int wanted)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    struct chan *c;

    if (internal_topic(topic, len))
        return;
    pthread_mutex_lock(&b->lock);
    c = chan_get(b, topic, len, wanted);
    if (c != NULL) {
        c->wanted = wanted;
        mark_dirty(b, c);
    } else if (wanted) {
        say("out of memory: cannot subscribe to a topic on Redis");
    }
    pthread_mutex_unlock(&b->lock);
    if (c != NULL)
        b->host.wake(b->host.ctx);
}

static void redis_subscribe_interest(ps_bus *bus, const char *topic, size_t len)
{
    want(bus, topic, len, 1);
}

static void redis_unsubscribe_interest(ps_bus *bus, const char *topic, size_t len)
{
    want(bus, topic, len, 0);
}

static void redis_close(ps_bus *bus)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    redisAsyncContext *pub = b->pub, *sub = b->sub;

    b->closing = 1;
    b->host.schedule(b->host.ctx, -1);
    b->pub = b->sub = NULL;
    if (pub)
        redisAsyncFree(pub);
    if (sub)
        redisAsyncFree(sub);
    struct held *h = b->held_head;
    while (h) {
        struct held *next = h->next;
        free(h->env);
        free(h);
        h = next;
    }
    for (size_t i = 0; i < b->nbuckets; i++) {
        struct chan *c = b->buckets[i];
        while (c) {
            struct chan *next = c->next;
            free(c);
            c = next;
        }
    }
    free(b->buckets);
    free(b->scratch);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static const ps_bus_ops redis_ops = {
    .name = "redis",
    .publish = redis_publish,
    .subscribe_interest = redis_subscribe_interest,
    .unsubscribe_interest = redis_unsubscribe_interest,
    .close = redis_close,
};

ps_bus *ps_bus_redis_new(ps_topics *topics, const ps_redis_config *cfg,
                         const ps_redis_host *host)
{
    struct bus_redis *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    b->buckets = calloc(64, sizeof(*b->buckets));
    if (b->buckets == NULL) {
        free(b);
        errno = ENOMEM;
        return NULL;
    }
    b->nbuckets = 64;
    b->base.ops = &redis_ops;
    b->topics = topics;
    b->cfg = *cfg;
    b->host = *host;
    where(cfg, b->where, sizeof(b->where));
    if (getrandom(b->origin, sizeof(b->origin), 0) != (ssize_t)sizeof(b->origin)) {
        /* No entropy source: the clock and the address still tell processes apart. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uintptr_t self = (uintptr_t)b;
        memcpy(b->origin, &ts, sizeof(ts) < 16 ? sizeof(ts) : 16);
        memcpy(b->origin + 8, &self, sizeof(self) < 8 ? sizeof(self) : 8);
    }
    unsigned char r[5];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        memcpy(r, b->origin, sizeof(r));
    snprintf(b->epoch_node, sizeof(b->epoch_node), "%02x%02x%02x%02x%02x", r[0], r[1], r[2],
             r[3], r[4]);
    b->backoff_us = RETRY_MIN_US;
    int pn = snprintf(b->presence_chan, sizeof(b->presence_chan), "%s\x01presence",
                      b->cfg.prefix);
    b->presence_chan_len = pn > 0 && (size_t)pn < sizeof(b->presence_chan) ? (size_t)pn : 0;
    pthread_mutex_init(&b->lock, NULL);
    /* The probe at start has just succeeded: connect now, not after a backoff. */
    b->state = DOWN;
    b->host.schedule(b->host.ctx, 0);
    return &b->base;
}

void ps_bus_redis_stats(ps_bus *bus, ps_redis_stats *out)
{
    struct bus_redis *b = (struct bus_redis *)bus;

    out->connected = atomic_load(&b->st_connected);
    out->outages = atomic_load(&b->st_outages);
    out->published = atomic_load(&b->st_published);
    out->buffered = atomic_load(&b->st_buffered);
    out->dropped = atomic_load(&b->st_dropped);
    out->received = atomic_load(&b->st_received);
    out->own_skipped = atomic_load(&b->st_own);
    out->gaps = atomic_load(&b->st_gaps);
    out->bad = atomic_load(&b->st_bad);
    out->channels = atomic_load(&b->st_channels);
}

/* ---- presence: the reserved channel (bus_redis.h) --------------------------------------- */

static void on_presence_publish_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    (void)r;
    (void)privdata; /* a refused presence PUBLISH is repaired by the next snapshot asked for */
}

/* On the subscribing connection, once it is ready: the channel is wanted always. */
static void presence_subscribe(struct bus_redis *b)
{
    if (!b->host.presence || b->presence_chan_len == 0)
        return;
    const char *argv[2] = {"SUBSCRIBE", b->presence_chan};
    size_t lens[2] = {9, b->presence_chan_len};
    (void)redisAsyncCommandArgv(b->sub, on_sub_reply, b, 2, argv, lens);
}

static void presence_maybe_online(struct bus_redis *b)
{
    if (b->presence_subscribed && b->pub_ready && !b->presence_online && b->host.presence_online) {
        b->presence_online = 1;
        b->host.presence_online(b->host.ctx);
    }
}

/* A reply on the subscribing connection that concerns the presence channel: its
 * confirmation or one of its messages. Returns 1 when it was (and was handled). */
static int presence_reply(struct bus_redis *b, const redisReply *reply)
{
    const redisReply *chan = reply->element[1];
    if (b->presence_chan_len == 0 || chan->type != REDIS_REPLY_STRING ||
        chan->len != b->presence_chan_len || memcmp(chan->str, b->presence_chan, chan->len))
        return 0;
    const char *kind = reply->element[0]->str;
    if (!strcmp(kind, "message")) {
        const redisReply *data = reply->element[2];
        if (data->type == REDIS_REPLY_STRING && b->host.presence)
            b->host.presence(b->host.ctx, (const unsigned char *)data->str, data->len);
    } else if (!strcmp(kind, "subscribe")) {
        b->presence_subscribed = 1;
        presence_maybe_online(b);
    }
    return 1;
}

int ps_bus_redis_presence_send(ps_bus *bus, const void *msg, size_t len)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    if (!b->pub || !b->pub_ready || !b->presence_subscribed || b->presence_chan_len == 0)
        return -ENOTCONN;
    const char *argv[3] = {"PUBLISH", b->presence_chan, (const char *)msg};
    size_t lens[3] = {7, b->presence_chan_len, len};
    if (redisAsyncCommandArgv(b->pub, on_presence_publish_reply, b, 3, argv, lens) != REDIS_OK)
        return -ENOTCONN;
    return 0;
}

int ps_bus_is_redis(const ps_bus *bus)
{
    return bus != NULL && bus->ops == &redis_ops;
}

/* ---- topics with history kept in Redis (redis_history.h) ------------------------------ */

/* prefix + what + topic, as a new string of *out_len bytes (NULL when out of memory). */
static char *key_of(const struct bus_redis *b, const char *what, const char *topic, size_t len,
                    size_t *out_len)
{
    size_t pl = strlen(b->cfg.prefix), wl = strlen(what);
    char *k = malloc(pl + wl + len + 1);

    if (k == NULL)
        return NULL;
    memcpy(k, b->cfg.prefix, pl);
    memcpy(k + pl, what, wl);
    memcpy(k + pl + wl, topic, len);
    k[pl + wl + len] = '\0';
    *out_len = pl + wl + len;
    return k;
}

static void on_history_publish_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct bus_redis *b = privdata;
    redisReply *reply = r;

    (void)ac;
    if (b->inflight)
        b->inflight--;
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR || b->closing)
        return;
    atomic_fetch_add(&b->st_dropped, 1);
    if (!strncmp(reply->str, "NOSCRIPT", 8)) {
        /* Someone flushed Redis' scripts: a new connection loads them again. */
        teardown(b, "Redis no longer has the history scripts (SCRIPT FLUSH?)");
        return;
    }
    if (!b->refused_logged) {
        b->refused_logged = 1;
        say("Redis at %s refused a publish to a topic with history: %s (such publishes are "
            "counted in websocket_stats()['pubsub_dropped'])", b->where, reply->str);
    }
}

/* EVALSHA of the publish script; the caller checked that Redis is up. */
static void send_history_publish(struct bus_redis *b, const char *topic, size_t len,
                                 const char *rest, size_t rest_len, size_t capacity,
                                 int64_t ttl_ms)
{
    size_t meta_len = 0, stream_len = 0, chan_len = 0;
    char *meta = key_of(b, PS_RH_EPOCH_KEY, topic, len, &meta_len);
    char *stream = key_of(b, PS_RH_STREAM_KEY, topic, len, &stream_len);
    char *chan = key_of(b, "", topic, len, &chan_len);
    char epoch[PS_RH_EPOCH_MAX], cap[24], ttl[24];

    if (b->sha_publish[0] == '\0') {
        drop_one(b, "Redis refused the history scripts (SCRIPT LOAD)");
        goto out;
    }
    if (meta == NULL || stream == NULL || chan == NULL) {
        drop_one(b, "out of memory");
        goto out;
    }
    snprintf(epoch, sizeof(epoch), "%s.%llu", b->epoch_node,
             (unsigned long long)++b->epoch_seq);
    snprintf(cap, sizeof(cap), "%zu", capacity);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
    const char *argv[10] = {"EVALSHA", b->sha_publish, "2", meta, stream, epoch, cap, ttl,
                            rest, chan};
    size_t lens[10] = {7, 40, 1, meta_len, stream_len, strlen(epoch), strlen(cap), strlen(ttl),
                       rest_len, chan_len};
    if (redisAsyncCommandArgv(b->pub, on_history_publish_reply, b, 10, argv, lens) != REDIS_OK) {
        drop_one(b, "a publish to a topic with history could not be queued");
        goto out;
    }
    b->inflight++;
    atomic_fetch_add(&b->st_published, 1);
out:
    free(meta);
    free(stream);
    free(chan);
}

int ps_bus_redis_publish_history(ps_bus *bus, const char *topic, size_t len, const char *rest,
                                 size_t rest_len, size_t capacity, int64_t ttl_ms)
{
    struct bus_redis *b = (struct bus_redis *)bus;

    if (b->state == UP) {
        if (b->inflight >= (b->cfg.buffer_messages > MIN_INFLIGHT_LIMIT ? b->cfg.buffer_messages
                                                                         : MIN_INFLIGHT_LIMIT)) {
            drop_one(b, "Redis is not keeping up (too many publishes unanswered)");
            return -ENOBUFS;
        }
        send_history_publish(b, topic, len, rest, rest_len, capacity, ttl_ms);
        return 0;
    }
    /* Kept as the topic and the rest: it is numbered only once Redis runs the script. */
    if (b->held_count >= b->cfg.buffer_messages ||
        b->held_bytes + rest_len > b->cfg.buffer_bytes) {
        char what[160];
        snprintf(what, sizeof(what), "the outage buffer is full (%zu messages, %zu bytes)",
                 b->held_count, b->held_bytes);
        drop_one(b, what);
        return -ENOBUFS;
    }
    struct held *h = malloc(sizeof(*h) + len + 1);
    unsigned char *copy = malloc(rest_len ? rest_len : 1);
    if (h == NULL || copy == NULL) {
        free(h);
        free(copy);
        drop_one(b, "out of memory buffering a publish");
        return -ENOMEM;
    }
    memcpy(copy, rest, rest_len);
    h->next = NULL;
    h->chan_len = len;
    memcpy(h->chan, topic, len);
    h->chan[len] = '\0';
    h->env = copy;
    h->env_len = rest_len;
    h->history = 1;
    h->capacity = capacity;
    h->ttl_ms = ttl_ms;
    if (b->held_tail)
        b->held_tail->next = h;
    else
        b->held_head = h;
    b->held_tail = h;
    b->held_count++;
    b->held_bytes += rest_len;
    atomic_store(&b->st_buffered, b->held_count);
    return 0;
}

/* A message on a topic's channel that Redis numbered: checked, then handed to the host. */
static void on_history_message(struct bus_redis *b, const char *topic, size_t len,
                               const redisReply *data)
{
    ps_rh_head head;

    if (ps_rh_head_parse(data->str, data->len, &head) ||
        !ps_utf8_valid((const unsigned char *)data->str, data->len)) {
        if (atomic_fetch_add(&b->st_bad, 1) == 0)
            say("a message on the channel of '%.*s' is neither a Robyn envelope nor a "
                "numbered history message; such messages are dropped and counted in "
                "websocket_stats()['pubsub_bad']", (int)(len > 200 ? 200 : len), topic);
        return;
    }
    ps_frame *f = ps_frame_new(PS_OP_TEXT, data->str, data->len);
    if (f == NULL) {
        atomic_fetch_add(&b->st_bad, 1);
        return;
    }
    if (b->host.deliver_history)
        b->host.deliver_history(b->host.ctx, topic, len, head.epoch, head.epoch_len,
                                head.offset, f);
    else
        b->host.deliver(b->host.ctx, topic, len, f);
    ps_frame_unref(f);
    atomic_fetch_add(&b->st_received, 1);
}

struct history_read {
    struct bus_redis *b;
    ps_rh_done_fn done;
    void *arg;
};

static void on_history_read_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct history_read *rd = privdata;
    redisReply *reply = r;
    ps_rh_result res;
    int rc;

    (void)ac;
    memset(&res, 0, sizeof(res));
    if (rd->b->closing)
        rc = -ECANCELED;
    else if (reply == NULL)
        rc = -ECONNRESET;
    else if (reply->type == REDIS_REPLY_ERROR) {
        say("Redis at %s refused a read of a topic's history: %s", rd->b->where, reply->str);
        rc = -EPROTO;
    } else {
        rc = ps_rh_decode(reply, &res);
        if (rc == -EPROTO)
            say("Redis at %s answered a read of a topic's history with something the history "
                "script does not write; treated as an error", rd->b->where);
    }
    rd->done(rd->arg, rc, rc ? NULL : &res);
    ps_rh_result_free(&res);
    free(rd);
}

int ps_bus_redis_read_history(ps_bus *bus, const char *topic, size_t len,
                              const ps_rh_query *q, ps_rh_done_fn done, void *arg)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    size_t meta_len = 0, stream_len = 0;
    char epoch[PS_RH_EPOCH_MAX], since[24], limit[24], ttl[24], mode[2] = {q->mode, '\0'};
    int rc = 0;

    if (b->pub == NULL || !b->pub_ready || b->closing)
        return -ENOTCONN;
    if (b->sha_read[0] == '\0')
        return -ENOEXEC;
    char *meta = key_of(b, PS_RH_EPOCH_KEY, topic, len, &meta_len);
    char *stream = key_of(b, PS_RH_STREAM_KEY, topic, len, &stream_len);
    struct history_read *rd = malloc(sizeof(*rd));
    if (meta == NULL || stream == NULL || rd == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(epoch, sizeof(epoch), "%s.%llu", b->epoch_node,
             (unsigned long long)++b->epoch_seq);
    snprintf(since, sizeof(since), "%llu", (unsigned long long)q->since);
    snprintf(limit, sizeof(limit), "%zu", q->limit);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)q->ttl_ms);
    const char *pos_epoch = q->epoch ? q->epoch : "";
    const char *argv[12] = {"EVALSHA", b->sha_read, "2", meta, stream, q->create ? "1" : "0",
                            epoch, mode, pos_epoch, since, limit, ttl};
    size_t lens[12] = {7, 40, 1, meta_len, stream_len, 1, strlen(epoch), 1, strlen(pos_epoch),
                       strlen(since), strlen(limit), strlen(ttl)};
    rd->b = b;
    rd->done = done;
    rd->arg = arg;
    if (redisAsyncCommandArgv(b->pub, on_history_read_reply, rd, 12, argv, lens) != REDIS_OK) {
        rc = -ENOMEM;
        goto out;
    }
    rd = NULL;
out:
    free(rd);
    free(meta);
    free(stream);
    return rc;
}

int ps_bus_redis_pin(ps_bus *bus, const char *topic, size_t len)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    int rc;

    pthread_mutex_lock(&b->lock);
    struct chan *c = chan_get(b, topic, len, 1);
    if (c == NULL) {
        rc = -ENOMEM;
    } else {
        c->pins++;
        rc = c->state == C_SUBSCRIBED && b->sub_ready;
        if (!rc && !c->dirty)
            apply(b, c);
    }
    pthread_mutex_unlock(&b->lock);
    return rc;
}

void ps_bus_redis_unpin(ps_bus *bus, const char *topic, size_t len)
{
    struct bus_redis *b = (struct bus_redis *)bus;

    pthread_mutex_lock(&b->lock);
    struct chan *c = chan_get(b, topic, len, 0);
    if (c != NULL && c->pins > 0) {
        c->pins--;
        if (!c->dirty)
            apply(b, c);
    }
    pthread_mutex_unlock(&b->lock);
}
