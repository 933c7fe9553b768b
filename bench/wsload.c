/*
 * wsload: a WebSocket load generator in C (plain sockets + epoll, RFC 6455
 * client framing with masking done here). It holds tens of thousands of
 * connections from one or a few threads and measures round trips, fan-out
 * delivery and latency.
 *
 *   cc -O2 -pthread -o bench/build/wsload bench/wsload.c -lm -lz
 *   wsload --url ws://127.0.0.1:8080/ws --mode echo --connections 64 --duration 10
 *
 * Modes:
 *   echo    every connection sends a message and waits for it to come back
 *           (closed loop, --pipeline in flight per connection), or, with
 *           --rate R, R messages/s in total spread over the connections
 *           (open loop). Reports round trips/s and round-trip latency.
 *   fanout  --connections subscribers on --url and one publisher on --pub-url
 *           (default: --url plus "role=pub"). The publisher sends --rate
 *           messages/s, or with --rate 0 keeps --window messages outstanding
 *           (a message is done when every subscriber has it, or given up
 *           after 10 s; window_timeouts counts those). Reports
 *           delivered messages/s and delivery latency (publisher's send to a
 *           subscriber's receipt).
 *           With --url2 (another node, e.g. a second app instance sharing
 *           the topic through Redis), every second subscriber connects there
 *           instead, so deliveries cross between nodes.
 *   chat    every connection is a member of one room (--url) and publishes;
 *           --rate is the total messages/s of all members together; every
 *           message is delivered to every member, the sender included.
 *   idle    opens --connections connections, holds them for --duration
 *           seconds, reports the connect rate. Prints "wsload: all N
 *           connected" to stderr when they are all open.
 *
 * Every message carries its send time: a text payload "T<16 hex ns><8 hex
 * seq>" padded with 'x' to --message-size bytes (at least 32). Latency is
 * recorded in a log-linear histogram (1/64 relative precision).
 *
 * With --deflate every connection offers permessage-deflate (RFC 7692) and
 * inflates the messages that arrive compressed (RSV1); what it sends stays
 * uncompressed, which the RFC allows. Bytes received on the subscribers'
 * sockets are counted either way, so a run with and one without --deflate
 * give the bytes on the wire per delivered message.
 *
 * A progress line goes to stderr every second; a summary to stdout at the end
 * (JSON with --json). Loss = messages expected (sent x recipients) minus
 * received, counted after a drain period. Frames not in that format are
 * counted as "foreign". Exit status: 0 the run completed, 1 bad usage, 2 no
 * connection could be opened, 3 a --max-loss / --max-p99 threshold was
 * crossed, 4 errors of no known cause (every error is put in a class: connect
 * refused, handshake status, closed by the server with a code, ...).
 *
 * Built by `make load-tester` as build/robyn-load (the command users run);
 * it links only libc, libm and zlib.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum mode { M_ECHO, M_FANOUT, M_CHAT, M_IDLE, M_SUBSCRIBE };
enum phase { P_CONNECT, P_READY, P_RUN, P_DRAIN, P_DONE };
enum cstate { C_NEW, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSING, C_CLOSED };

#define HDR_LEN 25          /* "T" + 16 hex ts + 8 hex seq */
#define MIN_MSG 32
#define TBUF_SIZE (256 * 1024)
#define MAX_FRAME (64u * 1024 * 1024)
#define MAX_PROBES 4096
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* ---------- latency histogram (values in ns) ---------- */

#define HBUCKETS 2304
typedef struct {
    uint64_t c[HBUCKETS];
    uint64_t n, sum, max;
} hist_t;

static inline int hist_index(uint64_t v)
{
    if (v < 128)
        return (int)v;
    int msb = 63 - __builtin_clzll(v);
    if (msb > 40)
        return HBUCKETS - 1;
    int shift = msb - 6;
    return 128 + (msb - 7) * 64 + (int)((v >> shift) - 64);
}

static double hist_value(int idx)
{
    if (idx < 128)
        return idx;
    int msb = 7 + (idx - 128) / 64;
    int sub = (idx - 128) % 64;
    double low = (double)((uint64_t)(64 + sub) << (msb - 6));
    return low + (double)((uint64_t)1 << (msb - 6)) / 2.0;
}

static inline void hist_add(hist_t *h, uint64_t v)
{
    h->c[hist_index(v)]++;
    h->n++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

static void hist_merge(hist_t *dst, const hist_t *src)
{
    for (int i = 0; i < HBUCKETS; i++)
        dst->c[i] += __atomic_load_n(&src->c[i], __ATOMIC_RELAXED);
    dst->n += __atomic_load_n(&src->n, __ATOMIC_RELAXED);
    dst->sum += __atomic_load_n(&src->sum, __ATOMIC_RELAXED);
    uint64_t m = __atomic_load_n(&src->max, __ATOMIC_RELAXED);
    if (m > dst->max)
        dst->max = m;
}

/* Returns the q-quantile (0..1) in ns, or 0 when the histogram is empty. */
static double hist_quantile(const hist_t *h, double q)
{
    uint64_t total = 0;
    for (int i = 0; i < HBUCKETS; i++)
        total += h->c[i];
    if (!total)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)total);
    if (rank < 1)
        rank = 1;
    uint64_t acc = 0;
    for (int i = 0; i < HBUCKETS; i++) {
        acc += h->c[i];
        if (acc >= rank) {
            double v = hist_value(i);
            return v > (double)h->max ? (double)h->max : v;
        }
    }
    return (double)h->max;
}

/* ---------- options and shared state ---------- */

static struct {
    enum mode mode;
    char host[256];
    int port;
    char path[2048];
    char pub_path[2100];
    int has_url2;     /* --url2: every second subscriber connects to port2/path2 */
    int port2;
    char path2[2048];
    int connections;
    double rate;
    double duration;
    double warmup;
    double drain;
    int msg_size;
    int threads;
    int pipeline;
    int window;
    int concurrency;
    int source_addrs;
    double connect_timeout;
    int json;
    int quiet;
    /* --message / --message-file: the payloads sent instead of the timing format; "{stamp}"
     * in one is replaced by the timing header, which the receiver finds anywhere in a frame */
    char **messages;
    int nmessages;
    const char *on_open;     /* sent once by each connection when it opens */
    int deflate;             /* --deflate: offer permessage-deflate, inflate what comes */
    const char *stamp_field; /* subscribe: "NAME": in a frame holds the server's send time */
    size_t stamp_field_len;
    double max_loss;         /* percent; < 0 = not checked */
    double max_p99;          /* ms; < 0 = not checked */
} opt;

#define MAX_STATUS 600
#define MAX_CLOSE_CODE 5000

static struct sockaddr_in g_addr, g_addr2;
static volatile int g_phase = P_CONNECT;
static volatile int g_measuring;
static volatile sig_atomic_t g_interrupted;
static struct timespec g_t0;
static int g_nsubs;                 /* recipients of each published message */
static uint32_t g_probe_count[MAX_PROBES];
static volatile uint32_t g_probe_ready = UINT32_MAX; /* probe seq that reached all */

/* fanout closed-loop window: slot = seq % window */
static uint32_t *g_slot_seq;
static uint32_t *g_slot_count;

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)(ts.tv_sec - g_t0.tv_sec) * 1000000000ull + (uint64_t)ts.tv_nsec -
           (uint64_t)g_t0.tv_nsec;
}

struct thread;

typedef struct conn {
    int fd;
    int state;
    int idx;
    int is_pub;       /* fanout publisher: what it receives is not counted */
    int counted;      /* counts as a recipient of published messages */
    struct thread *t;
    char *rbuf;
    size_t rlen, rcap;
    char *wbuf;
    size_t wlen, woff, wcap;
    int want_out;
    int inflight;
    int in_msg;       /* inside a fragmented message */
    char msg_kind;
    uint64_t msg_ts;
    uint32_t msg_seq;
    uint64_t close_deadline;
    int deflate;      /* the server accepted permessage-deflate */
    int z_msg;        /* the open fragmented message is compressed */
    int msg_text;     /* the open message is a text message */
    char *zacc;       /* its compressed payload so far */
    size_t zacc_len, zacc_cap;
} conn_t;

/* A compressed payload inflated, and what was read from it (read_compressed()). */
#define ZMEMO 512
typedef struct zmemo {
    uint64_t hash;
    char *data;
    size_t len, cap;
    int used, text;
    char kind;
    uint64_t ts;
    uint32_t seq;
} zmemo_t;

typedef struct thread {
    pthread_t th;
    int idx;
    int ep;
    conn_t **conns;
    int nconns;
    int next_connect;
    int pending;
    int done_connecting;
    conn_t *pub;           /* fanout publisher, owned by thread 0 */
    conn_t *prober;        /* sends readiness probes */
    /* counters written by this thread only */
    uint64_t sent, recv, sent_m, recv_m, errors, connected, failed, closed_by_peer;
    uint64_t probes_sent;
    uint64_t rx_bytes_m;   /* bytes received by counted connections while measuring */
    uint64_t compressed;   /* data messages that arrived compressed */
    uint64_t deflate_ok;   /* connections whose 101 accepted permessage-deflate */
    uint64_t last_probe_ns;
    uint32_t seq;
    uint32_t rng;
    double rate;           /* this thread's share of --rate */
    uint64_t paced_t0;
    uint64_t paced_sent;
    int rr;
    int run_started;
    uint64_t win_oldest;   /* fanout window (thread 0) */
    uint64_t *win_sent_at;
    uint64_t timeouts;
    /* every error is counted once in `errors` and, when its cause is known, in one class */
    uint64_t foreign, refused, connect_other, handshake_bad, reset, masked, oversize, send_failed;
    uint64_t bad_compressed; /* RSV1 without permessage-deflate, or data that does not inflate */
    uint64_t status[MAX_STATUS];            /* handshake answered with this HTTP status */
    uint64_t close_code[MAX_CLOSE_CODE + 1]; /* closed by the server with this code (last: other) */
    uint64_t close_no_code;                 /* close frame without a code */
    hist_t hist;
    char *tbuf;
    char *msg;
    char *tpl_buf;         /* a --message template with its placeholders filled */
    z_stream *inflater;    /* --deflate: one raw inflate stream, reset per message */
    char *zout;            /* what a compressed message inflated to */
    size_t zout_cap;
    struct zmemo *zmemo;   /* ZMEMO payloads inflated lately (read_compressed()), or NULL */
} thread_t;

static thread_t *g_threads;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wsload: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static inline void bump(uint64_t *p) { __atomic_store_n(p, *p + 1, __ATOMIC_RELAXED); }
static inline uint64_t rd(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* ---------- buffers ---------- */

static void wbuf_reserve(conn_t *c, size_t more)
{
    if (c->woff && c->woff == c->wlen) {
        c->woff = c->wlen = 0;
    }
    if (c->wlen + more <= c->wcap)
        return;
    if (c->woff) {
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
        if (c->wlen + more <= c->wcap)
            return;
    }
    size_t cap = c->wcap ? c->wcap : 256;
    while (cap < c->wlen + more)
        cap *= 2;
    c->wbuf = realloc(c->wbuf, cap);
    if (!c->wbuf)
        die("out of memory");
    c->wcap = cap;
}

static void rbuf_reserve(conn_t *c, size_t need)
{
    if (need <= c->rcap)
        return;
    size_t cap = c->rcap ? c->rcap : 1024;
    while (cap < need)
        cap *= 2;
    c->rbuf = realloc(c->rbuf, cap);
    if (!c->rbuf)
        die("out of memory");
    c->rcap = cap;
}

static inline uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Appends one masked client frame (FIN set) to c's write buffer. */
static void frame_append(conn_t *c, int opcode, const char *payload, size_t len)
{
    wbuf_reserve(c, len + 14);
    unsigned char *p = (unsigned char *)c->wbuf + c->wlen;
    size_t h = 0;
    p[h++] = 0x80 | (unsigned char)opcode;
    if (len < 126) {
        p[h++] = 0x80 | (unsigned char)len;
    } else if (len < 65536) {
        p[h++] = 0x80 | 126;
        p[h++] = (unsigned char)(len >> 8);
        p[h++] = (unsigned char)len;
    } else {
        p[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            p[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    uint32_t m = xorshift(&c->t->rng);
    unsigned char mask[4];
    memcpy(mask, &m, 4);
    memcpy(p + h, mask, 4);
    h += 4;
    unsigned char *d = p + h;
    size_t i = 0;
    uint64_t m8;
    memcpy(&m8, mask, 4);
    memcpy((char *)&m8 + 4, mask, 4);
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, payload + i, 8);
        v ^= m8;
        memcpy(d + i, &v, 8);
    }
    for (; i < len; i++)
        d[i] = (unsigned char)payload[i] ^ mask[i & 3];
    c->wlen += h + len;
}

static void conn_close(conn_t *c);

static void set_out(conn_t *c, int on)
{
    if (c->want_out == on || c->fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(c->t->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

/* Writes what is buffered. Returns 0, or -1 when the connection failed (closed). */
static int conn_flush(conn_t *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(c, 1);
            return 0;
        }
        if (n < 0 && errno == EINTR)
            continue;
        bump(&c->t->errors);
        if (errno == ECONNRESET || errno == EPIPE)
            bump(&c->t->reset);
        else
            bump(&c->t->send_failed);
        conn_close(c);
        return -1;
    }
    c->woff = c->wlen = 0;
    if (c->state != C_HANDSHAKE && c->state != C_CONNECTING)
        set_out(c, 0);
    return 0;
}

static const char hexd[] = "0123456789abcdef";

static void fill_msg(char *m, char kind, uint64_t ts, uint32_t seq)
{
    m[0] = kind;
    for (int i = 15; i >= 0; i--) {
        m[1 + i] = hexd[ts & 15];
        ts >>= 4;
    }
    for (int i = 7; i >= 0; i--) {
        m[17 + i] = hexd[seq & 15];
        seq >>= 4;
    }
}

static inline int hexv(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Parses a message header; returns 0 on success. */
static int parse_hdr(const char *p, size_t len, char *kind, uint64_t *ts, uint32_t *seq)
{
    if (len < HDR_LEN || (p[0] != 'T' && p[0] != 'P'))
        return -1;
    uint64_t t = 0;
    for (int i = 1; i <= 16; i++) {
        int v = hexv(p[i]);
        if (v < 0)
            return -1;
        t = (t << 4) | (uint64_t)v;
    }
    uint32_t s = 0;
    for (int i = 17; i < 25; i++) {
        int v = hexv(p[i]);
        if (v < 0)
            return -1;
        s = (s << 4) | (uint32_t)v;
    }
    *kind = p[0];
    *ts = t;
    *seq = s;
    return 0;
}

/* Finds the timing header anywhere in a payload (a --message template puts it inside). */
static int find_hdr(const char *p, size_t len, char *kind, uint64_t *ts, uint32_t *seq)
{
    for (size_t i = 0; i + HDR_LEN <= len; i++)
        if ((p[i] == 'T' || p[i] == 'P') && parse_hdr(p + i, len - i, kind, ts, seq) == 0)
            return 0;
    return -1;
}

/* The wall clock in microseconds since the epoch: what a server puts in a --stamp-field. */
static uint64_t epoch_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Finds the JSON member "<--stamp-field>": <digits> in a payload: the server's send time in
 * microseconds since the epoch (same machine, same clock). Returns 0 and sets *us if found. */
static int find_stamp_field(const char *p, size_t len, uint64_t *us)
{
    size_t flen = opt.stamp_field_len;
    for (size_t i = 0; i + flen + 3 <= len; i++) {
        if (p[i] != '"' || memcmp(p + i + 1, opt.stamp_field, flen) || p[i + 1 + flen] != '"')
            continue;
        size_t j = i + flen + 2;
        while (j < len && (p[j] == ' ' || p[j] == ':'))
            j++;
        uint64_t v = 0;
        size_t digits = 0;
        for (; j < len && p[j] >= '0' && p[j] <= '9' && digits < 19; j++, digits++)
            v = v * 10 + (uint64_t)(p[j] - '0');
        if (!digits)
            return -1;
        *us = v;
        return 0;
    }
    return -1;
}

/* Writes template tpl into t->tpl_buf with its placeholders filled: {stamp} the timing
 * header (found anywhere in what comes back), {counter} the message's sequence number,
 * {conn} the connection's number, {time_ms} the wall clock in milliseconds since the epoch.
 * Anything else in braces is sent as it is. Returns the length. */
static size_t expand_message(thread_t *t, const conn_t *c, const char *tpl, char kind,
                             uint32_t seq)
{
    if (!t->tpl_buf) {
        /* Sized once for the longest expansion of any template: a placeholder grows by
         * at most HDR_LEN + 24 bytes, and each one starts with a '{'. */
        size_t need = 0;
        for (int i = 0; i < opt.nmessages; i++) {
            size_t n = strlen(opt.messages[i]) + 1;
            for (const char *p = strchr(opt.messages[i], '{'); p; p = strchr(p + 1, '{'))
                n += HDR_LEN + 24;
            if (n > need)
                need = n;
        }
        t->tpl_buf = malloc(need);
        if (!t->tpl_buf)
            die("out of memory");
    }
    char *out = t->tpl_buf;
    size_t n = 0;
    for (const char *p = tpl; *p;) {
        if (*p == '{') {
            if (!strncmp(p, "{stamp}", 7)) {
                fill_msg(out + n, kind, now_ns(), seq);
                n += HDR_LEN;
                p += 7;
                continue;
            }
            if (!strncmp(p, "{counter}", 9)) {
                n += (size_t)sprintf(out + n, "%u", seq);
                p += 9;
                continue;
            }
            if (!strncmp(p, "{conn}", 6)) {
                n += (size_t)sprintf(out + n, "%d", c->idx);
                p += 6;
                continue;
            }
            if (!strncmp(p, "{time_ms}", 9)) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                n += (size_t)sprintf(out + n, "%lld",
                                     (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
                p += 9;
                continue;
            }
        }
        out[n++] = *p++;
    }
    return n;
}

/* Queues one timed message on c (not flushed). */
static void send_msg(conn_t *c, char kind, uint32_t seq)
{
    thread_t *t = c->t;
    if (opt.nmessages) {
        const char *tpl = opt.messages[seq % (uint32_t)opt.nmessages];
        size_t len = expand_message(t, c, tpl, kind, seq);
        frame_append(c, 1, t->tpl_buf, len);
    } else {
        fill_msg(t->msg, kind, now_ns(), seq);
        frame_append(c, 1, t->msg, (size_t)opt.msg_size);
    }
    if (kind == 'T') {
        bump(&t->sent);
        if (g_measuring)
            bump(&t->sent_m);
    }
}

/* ---------- connection lifecycle ---------- */

static void conn_close(conn_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl(c->t->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
        c->t->pending--;
        bump(&c->t->failed);
    }
    c->state = C_CLOSED;
    free(c->rbuf);
    free(c->wbuf);
    free(c->zacc);
    c->rbuf = c->wbuf = c->zacc = NULL;
    c->rlen = c->rcap = c->wlen = c->woff = c->wcap = 0;
    c->zacc_len = c->zacc_cap = 0;
    c->z_msg = 0;
}

/* Whether c is one of the subscribers --url2 takes (every second one). */
static int on_url2(const conn_t *c)
{
    return opt.has_url2 && !c->is_pub && c->idx % 2 == 1;
}

static void conn_start(conn_t *c)
{
    thread_t *t = c->t;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        bump(&t->errors);
        bump(&t->connect_other);
        bump(&t->failed);
        c->state = C_CLOSED;
        if (!opt.quiet && rd(&t->failed) == 1)
            fprintf(stderr, "wsload: socket: %s\n", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (opt.source_addrs > 1) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->idx % opt.source_addrs));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 && !opt.quiet)
            fprintf(stderr, "wsload: bind source address: %s\n", strerror(errno));
    }
    c->fd = fd;
    c->state = C_CONNECTING;
    t->pending++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->want_out = 1;
    if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    const struct sockaddr_in *to = on_url2(c) ? &g_addr2 : &g_addr;
    int r = connect(fd, (const struct sockaddr *)to, sizeof(*to));
    if (r < 0 && errno != EINPROGRESS) {
        if (!opt.quiet && rd(&t->errors) < 3)
            fprintf(stderr, "wsload: connect: %s\n", strerror(errno));
        bump(&t->errors);
        bump(errno == ECONNREFUSED ? &t->refused : &t->connect_other);
        conn_close(c);
    }
}

static void conn_send_handshake(conn_t *c)
{
    char req[4096];
    const char *tpl = c->is_pub ? opt.pub_path : on_url2(c) ? opt.path2 : opt.path;
    /* "{n}" in the URL is the connection's number, for servers that want distinct names */
    char path[2200];
    const char *at = strstr(tpl, "{n}");
    if (at)
        snprintf(path, sizeof(path), "%.*s%d%s", (int)(at - tpl), tpl, c->idx, at + 3);
    else
        snprintf(path, sizeof(path), "%s", tpl);
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\nUser-Agent: wsload\r\n%s\r\n",
                     path, opt.host, on_url2(c) ? opt.port2 : opt.port,
                     opt.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                   "client_max_window_bits\r\n" : "");
    wbuf_reserve(c, (size_t)n);
    memcpy(c->wbuf + c->wlen, req, (size_t)n);
    c->wlen += (size_t)n;
    c->state = C_HANDSHAKE;
    conn_flush(c);
}

static void on_open(conn_t *c)
{
    thread_t *t = c->t;
    t->pending--;
    bump(&t->connected);
    c->state = C_OPEN;
    if (opt.on_open)
        frame_append(c, 1, opt.on_open, strlen(opt.on_open));
    /* A connection that opens after the run started joins it. */
    if (g_phase == P_RUN && opt.mode == M_ECHO && opt.rate <= 0) {
        for (int i = 0; i < opt.pipeline; i++)
            send_msg(c, 'T', t->seq++);
        c->inflight = opt.pipeline;
    }
}

/* Echo mode: an answer came back on c; in closed loop, send the next message. */
static void echo_next(conn_t *c)
{
    thread_t *t = c->t;
    if (opt.mode != M_ECHO)
        return;
    if (c->inflight > 0)
        c->inflight--;
    if (opt.rate <= 0 && g_phase == P_RUN) {
        send_msg(c, 'T', t->seq++);
        c->inflight++;
    }
}

static void on_message(conn_t *c, char kind, uint64_t ts, uint32_t seq, uint64_t now)
{
    thread_t *t = c->t;
    if (kind == 'P') {
        if (c->counted && seq < MAX_PROBES) {
            uint32_t n = __atomic_add_fetch(&g_probe_count[seq], 1, __ATOMIC_RELAXED);
            if ((int)n == g_nsubs)
                __atomic_store_n(&g_probe_ready, seq, __ATOMIC_RELAXED);
        }
        return;
    }
    if (kind == 'S') {
        /* A server-stamped frame (--stamp-field): ts is its send time, epoch microseconds. */
        if (!c->counted)
            return;
        bump(&t->recv);
        if (g_measuring) {
            uint64_t at = epoch_us();
            bump(&t->recv_m);
            hist_add(&t->hist, at > ts ? (at - ts) * 1000u : 0);
        }
        return;
    }
    if (kind != 'T' || !c->counted)
        return;
    bump(&t->recv);
    if (g_measuring) {
        bump(&t->recv_m);
        hist_add(&t->hist, now > ts ? now - ts : 0);
    }
    echo_next(c);
    if (opt.mode == M_FANOUT && opt.rate <= 0) {
        uint32_t slot = seq % (uint32_t)opt.window;
        if (__atomic_load_n(&g_slot_seq[slot], __ATOMIC_RELAXED) == seq)
            __atomic_add_fetch(&g_slot_count[slot], 1, __ATOMIC_RELAXED);
    }
}

/* A frame not in the timing format: counted, and in echo mode it is the answer. */
static void on_foreign(conn_t *c)
{
    if (!c->counted)
        return;
    bump(&c->t->foreign);
    echo_next(c);
}

/* Inflates one compressed message (RFC 7692 7.2.2: the payload with 00 00 ff ff put back)
 * into t->zout with a fresh stream: the server is asked for nothing, but a server that
 * keeps its context (no server_no_context_takeover in its answer) fails here, which is
 * counted. Returns the length, or -1 when the data does not inflate or would pass
 * MAX_FRAME. */
static ssize_t inflate_message(thread_t *t, const char *in, size_t len)
{
    static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    z_stream *z = t->inflater;
    size_t out = 0;

    if (!z) {
        z = calloc(1, sizeof(*z));
        if (!z || inflateInit2(z, -15) != Z_OK)
            die("out of memory");
        t->inflater = z;
    } else if (inflateReset(z) != Z_OK) {
        return -1;
    }
    for (int part = 0; part < 2; part++) {
        z->next_in = part ? (Bytef *)tail : (Bytef *)in;
        z->avail_in = part ? (uInt)sizeof(tail) : (uInt)len;
        do {
            if (out == t->zout_cap) {
                size_t cap = t->zout_cap ? t->zout_cap * 2 : 65536;
                if (cap > MAX_FRAME)
                    return -1;
                t->zout = realloc(t->zout, cap);
                if (!t->zout)
                    die("out of memory");
                t->zout_cap = cap;
            }
            z->next_out = (Bytef *)t->zout + out;
            z->avail_out = (uInt)(t->zout_cap - out);
            int r = inflate(z, Z_SYNC_FLUSH);
            out = t->zout_cap - z->avail_out;
            if (r == Z_STREAM_END)
                return (ssize_t)out; /* a final block: what follows it is ignored */
            if (r != Z_OK && r != Z_BUF_ERROR)
                return -1;
        } while (z->avail_out == 0);
        if (z->avail_in != 0)
            return -1;
    }
    return (ssize_t)out;
}

/* A compressed frame that cannot be read: the connection fails (RFC 7692 8.2.3.1). */
static void bad_compressed(conn_t *c)
{
    bump(&c->t->errors);
    bump(&c->t->bad_compressed);
    conn_close(c);
}

static void zacc_append(conn_t *c, const char *p, size_t n)
{
    if (c->zacc_len + n > c->zacc_cap) {
        size_t cap = c->zacc_cap ? c->zacc_cap : 4096;
        while (cap < c->zacc_len + n)
            cap *= 2;
        c->zacc = realloc(c->zacc, cap);
        if (!c->zacc)
            die("out of memory");
        c->zacc_cap = cap;
    }
    memcpy(c->zacc + c->zacc_len, p, n);
    c->zacc_len += n;
}

/* Looks for the timing header in a message's first bytes (or anywhere, with --message), or
 * in a text message for the --stamp-field member. */
static void read_timing(conn_t *c, const char *pl, size_t len)
{
    char k;
    uint64_t ts;
    uint32_t s;
    if (parse_hdr(pl, len, &k, &ts, &s) == 0 ||
        (opt.nmessages && find_hdr(pl, len, &k, &ts, &s) == 0)) {
        c->msg_kind = k;
        c->msg_ts = ts;
        c->msg_seq = s;
    } else if (opt.stamp_field && c->msg_text && find_stamp_field(pl, len, &ts) == 0) {
        c->msg_kind = 'S';
        c->msg_ts = ts;
        c->msg_seq = 0;
    }
}

/* A 64-bit hash of a payload's length and its first and last 64 bytes (8 at a time,
 * multiply and rotate), to index the memo: a hit is then checked on every byte. */
static uint64_t payload_hash(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    size_t edge = n < 64 ? n : 64;
    for (int part = 0; part < 2; part++) {
        const char *q = part ? p + n - edge : p;
        size_t i = 0;
        for (; i + 8 <= edge; i += 8) {
            uint64_t w;
            memcpy(&w, q + i, 8);
            h = (h ^ w) * 0xff51afd7ed558ccdull;
            h = h << 31 | h >> 33;
        }
        for (; i < edge; i++)
            h = (h ^ (unsigned char)q[i]) * 0x100000001b3ull;
    }
    return h ^ h >> 29;
}

/*
 * Reads the timing of a whole compressed message (len bytes at z). A payload byte for byte
 * the same as one this thread inflated lately (a table of ZMEMO slots, indexed by hash:
 * more than a fan-out window has messages in flight), for a message of the same type, is
 * not inflated again:
 * the same bytes inflate to the same message, and the copies of one fan-out are the same
 * bytes (a server compresses each message once, with no context takeover), so one client
 * can stand in for thousands of peers without inflating every copy. Returns 0, or -1 when
 * the payload does not inflate.
 */
static int read_compressed(conn_t *c, const char *z, size_t len)
{
    thread_t *t = c->t;
    uint64_t h = payload_hash(z, len);
    if (!t->zmemo) {
        t->zmemo = calloc(ZMEMO, sizeof(*t->zmemo));
        if (!t->zmemo)
            die("out of memory");
    }
    zmemo_t *m = &t->zmemo[h % ZMEMO];
    if (m->used && m->hash == h && m->len == len && m->text == c->msg_text &&
        memcmp(m->data, z, len) == 0) {
        c->msg_kind = m->kind;
        c->msg_ts = m->ts;
        c->msg_seq = m->seq;
        return 0;
    }
    ssize_t n = inflate_message(t, z, len);
    if (n < 0)
        return -1;
    read_timing(c, t->zout, (size_t)n);
    if (len > m->cap) {
        free(m->data);
        m->data = malloc(len);
        if (!m->data)
            die("out of memory");
        m->cap = len;
    }
    memcpy(m->data, z, len);
    m->used = 1;
    m->hash = h;
    m->len = len;
    m->text = c->msg_text;
    m->kind = c->msg_kind;
    m->ts = c->msg_ts;
    m->seq = c->msg_seq;
    return 0;
}

/* Parses complete frames from data; returns bytes consumed, or -1 if c was closed. */
static ssize_t parse_frames(conn_t *c, const char *data, size_t len, uint64_t now)
{
    size_t off = 0;
    while (len - off >= 2) {
        const unsigned char *p = (const unsigned char *)data + off;
        int fin = p[0] & 0x80;
        int rsv1 = p[0] & 0x40;
        int opcode = p[0] & 0x0f;
        int masked = p[1] & 0x80;
        uint64_t plen = p[1] & 0x7f;
        size_t h = 2;
        if (plen == 126) {
            if (len - off < 4)
                break;
            plen = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (plen == 127) {
            if (len - off < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | p[2 + i];
            h = 10;
        }
        if (masked)
            h += 4;
        if (plen > MAX_FRAME) {
            bump(&c->t->errors);
            bump(&c->t->oversize);
            conn_close(c);
            return -1;
        }
        if (len - off < h + plen)
            break;
        const char *pl = (const char *)p + h;
        if (masked) { /* servers must not mask; unmask in place is not possible on const data */
            bump(&c->t->errors);
            bump(&c->t->masked);
        }
        switch (opcode) {
        case 0x1:
        case 0x2:
        case 0x0: {
            if (rsv1 && (opcode == 0 || !c->deflate)) {
                bad_compressed(c); /* RSV1 only starts a message, and only with deflate */
                return -1;
            }
            if (opcode != 0) {
                c->in_msg = 1;
                c->msg_kind = 0;
                c->z_msg = rsv1 != 0;
                c->msg_text = opcode == 0x1;
                c->zacc_len = 0;
                if (rsv1)
                    bump(&c->t->compressed);
                if (!rsv1)
                    read_timing(c, pl, (size_t)plen);
            }
            if (c->z_msg) {
                /* A compressed message is read once whole: straight from the frame when it
                 * is one, else from its fragments put together. */
                const char *z = pl;
                size_t zlen = (size_t)plen;
                if (!fin || c->zacc_len) {
                    zacc_append(c, pl, (size_t)plen);
                    z = c->zacc;
                    zlen = c->zacc_len;
                }
                if (fin) {
                    if (read_compressed(c, z, zlen) < 0) {
                        bad_compressed(c);
                        return -1;
                    }
                    c->z_msg = 0;
                    c->zacc_len = 0;
                }
            }
            if (fin && c->in_msg) {
                c->in_msg = 0;
                if (c->msg_kind)
                    on_message(c, c->msg_kind, c->msg_ts, c->msg_seq, now);
                else
                    on_foreign(c);
            }
            break;
        }
        case 0x8: /* close */
            if (c->state == C_OPEN) {
                if (g_phase < P_DONE) {
                    bump(&c->t->closed_by_peer);
                    if (plen >= 2) {
                        unsigned code = ((unsigned)(unsigned char)pl[0] << 8) | (unsigned char)pl[1];
                        bump(&c->t->close_code[code < MAX_CLOSE_CODE ? code : MAX_CLOSE_CODE]);
                    } else {
                        bump(&c->t->close_no_code);
                    }
                }
                frame_append(c, 0x8, pl, plen >= 2 ? 2 : 0);
                conn_flush(c);
            }
            if (c->fd >= 0)
                conn_close(c);
            return -1;
        case 0x9: /* ping */
            frame_append(c, 0xA, pl, (size_t)plen);
            break;
        default:
            break;
        }
        off += h + (size_t)plen;
    }
    return (ssize_t)off;
}

/* Whether a 101's head (len bytes) has a Sec-WebSocket-Extensions header that names
 * permessage-deflate. */
static int head_accepts_deflate(const char *head, size_t len)
{
    static const char name[] = "sec-websocket-extensions:";
    static const char ext[] = "permessage-deflate";
    for (size_t i = 0; i + sizeof(name) < len; i++) {
        if (head[i] != '\n' || strncasecmp(head + i + 1, name, sizeof(name) - 1))
            continue;
        const char *v = head + i + sizeof(name);
        const char *end = memchr(v, '\r', len - (size_t)(v - head));
        if (!end)
            return 0;
        for (; v + sizeof(ext) - 1 <= end; v++)
            if (!strncasecmp(v, ext, sizeof(ext) - 1))
                return 1;
    }
    return 0;
}

static void on_handshake_data(conn_t *c, uint64_t now)
{
    char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (!end) {
        if (c->rlen > 16384) {
            bump(&c->t->errors);
            bump(&c->t->handshake_bad);
            conn_close(c);
        }
        return;
    }
    size_t hlen = (size_t)(end - c->rbuf) + 4;
    int ok = c->rlen > 12 && memcmp(c->rbuf, "HTTP/1.1 101", 12) == 0;
    if (ok) {
        char *acc = memmem(c->rbuf, hlen, WS_ACCEPT, strlen(WS_ACCEPT));
        ok = acc != NULL;
    }
    if (!ok) {
        if (!opt.quiet && rd(&c->t->errors) < 3) {
            char *eol = memchr(c->rbuf, '\r', c->rlen);
            int l = eol ? (int)(eol - c->rbuf) : (int)(c->rlen < 80 ? c->rlen : 80);
            fprintf(stderr, "wsload: handshake refused: %.*s\n", l, c->rbuf);
        }
        bump(&c->t->errors);
        int status = 0;
        if (c->rlen > 12 && memcmp(c->rbuf, "HTTP/1.", 7) == 0)
            status = atoi(c->rbuf + 9);
        if (status > 0 && status < MAX_STATUS)
            bump(&c->t->status[status]);
        else
            bump(&c->t->handshake_bad);
        conn_close(c);
        return;
    }
    c->deflate = opt.deflate && head_accepts_deflate(c->rbuf, hlen);
    if (c->deflate)
        bump(&c->t->deflate_ok);
    memmove(c->rbuf, c->rbuf + hlen, c->rlen - hlen);
    c->rlen -= hlen;
    on_open(c);
    if (c->rlen) {
        ssize_t used = parse_frames(c, c->rbuf, c->rlen, now);
        if (used < 0)
            return;
        memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
        c->rlen -= (size_t)used;
    }
    conn_flush(c);
}

static void on_readable(conn_t *c)
{
    thread_t *t = c->t;
    for (int rounds = 0; rounds < 4 && c->fd >= 0; rounds++) {
        ssize_t n = recv(c->fd, t->tbuf, TBUF_SIZE, 0);
        if (n == 0) {
            if (c->state == C_OPEN && g_phase < P_DONE)
                bump(&t->closed_by_peer);
            conn_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            if (c->state == C_OPEN && g_phase < P_DONE)
                bump(&t->closed_by_peer);
            bump(&t->errors);
            bump(errno == ECONNRESET ? &t->reset : &t->send_failed);
            conn_close(c);
            return;
        }
        uint64_t now = now_ns();
        if (c->counted && g_measuring)
            __atomic_store_n(&t->rx_bytes_m, t->rx_bytes_m + (uint64_t)n, __ATOMIC_RELAXED);
        if (c->state == C_HANDSHAKE) {
            rbuf_reserve(c, c->rlen + (size_t)n);
            memcpy(c->rbuf + c->rlen, t->tbuf, (size_t)n);
            c->rlen += (size_t)n;
            on_handshake_data(c, now);
        } else if (c->state == C_OPEN || c->state == C_CLOSING) {
            const char *data;
            size_t len;
            if (c->rlen) {
                rbuf_reserve(c, c->rlen + (size_t)n);
                memcpy(c->rbuf + c->rlen, t->tbuf, (size_t)n);
                c->rlen += (size_t)n;
                data = c->rbuf;
                len = c->rlen;
            } else {
                data = t->tbuf;
                len = (size_t)n;
            }
            ssize_t used = parse_frames(c, data, len, now);
            if (used < 0)
                return;
            size_t rest = len - (size_t)used;
            if (data == c->rbuf) {
                memmove(c->rbuf, c->rbuf + used, rest);
            } else if (rest) {
                rbuf_reserve(c, rest);
                memcpy(c->rbuf, data + used, rest);
            }
            c->rlen = rest;
            if (c->wlen > c->woff && conn_flush(c) < 0)
                return;
        }
        if (n < TBUF_SIZE)
            break;
    }
}

static void on_writable(conn_t *c)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            if (!opt.quiet && rd(&c->t->errors) < 3)
                fprintf(stderr, "wsload: connect: %s\n", strerror(err));
            bump(&c->t->errors);
            bump(err == ECONNREFUSED ? &c->t->refused : &c->t->connect_other);
            conn_close(c);
            return;
        }
        conn_send_handshake(c);
        return;
    }
    conn_flush(c);
}

/* ---------- sending schedules ---------- */

static conn_t *next_open(thread_t *t)
{
    for (int tries = 0; tries < t->nconns; tries++) {
        conn_t *c = t->conns[t->rr];
        t->rr = (t->rr + 1) % t->nconns;
        if (c->state == C_OPEN && !c->is_pub)
            return c;
    }
    return NULL;
}

/* Flushes every connection with pending output (after a sending burst). */
static void flush_all(thread_t *t)
{
    for (int i = 0; i < t->nconns; i++) {
        conn_t *c = t->conns[i];
        if (c->fd >= 0 && c->wlen > c->woff)
            conn_flush(c);
    }
    if (t->pub && t->pub->fd >= 0 && t->pub->wlen > t->pub->woff)
        conn_flush(t->pub);
}

static void run_paced(thread_t *t, uint64_t now)
{
    if (t->rate <= 0)
        return;
    double elapsed = (double)(now - t->paced_t0) / 1e9;
    uint64_t due = (uint64_t)(elapsed * t->rate);
    if (due <= t->paced_sent)
        return;
    uint64_t n = due - t->paced_sent;
    if (n > 20000)
        n = 20000;
    int any = 0;
    for (uint64_t i = 0; i < n; i++) {
        conn_t *c;
        if (opt.mode == M_FANOUT)
            c = (t->pub && t->pub->state == C_OPEN) ? t->pub : NULL;
        else
            c = next_open(t);
        if (!c)
            break;
        send_msg(c, 'T', t->seq++);
        if (opt.mode == M_ECHO)
            c->inflight++;
        any = 1;
    }
    t->paced_sent += n;
    if (any)
        flush_all(t);
}

/* Fanout with --rate 0: keeps --window messages outstanding. */
static void run_window(thread_t *t, uint64_t now)
{
    conn_t *p = t->pub;
    if (!p || p->state != C_OPEN)
        return;
    int sent = 0;
    for (;;) {
        while (t->win_oldest < t->seq) {
            uint32_t slot = (uint32_t)(t->win_oldest % (uint64_t)opt.window);
            uint32_t cnt = __atomic_load_n(&g_slot_count[slot], __ATOMIC_RELAXED);
            if ((int)cnt >= g_nsubs) {
                t->win_oldest++;
            } else if (now - t->win_sent_at[slot] > 10000000000ull) {
                t->timeouts++;
                t->win_oldest++;
            } else {
                break;
            }
        }
        if (t->seq - t->win_oldest >= (uint64_t)opt.window)
            break;
        uint32_t seq = t->seq++;
        uint32_t slot = seq % (uint32_t)opt.window;
        __atomic_store_n(&g_slot_count[slot], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&g_slot_seq[slot], seq, __ATOMIC_RELEASE);
        t->win_sent_at[slot] = now;
        send_msg(p, 'T', seq);
        sent++;
    }
    if (sent)
        conn_flush(p);
}

/* ---------- thread main ---------- */

static void *thread_main(void *arg)
{
    thread_t *t = arg;
    struct epoll_event evs[1024];
    int last_phase = -1;
    uint64_t done_deadline = 0;
    int per_thread_conc = opt.concurrency / opt.threads;
    if (per_thread_conc < 1)
        per_thread_conc = 1;

    for (;;) {
        int phase = g_phase;
        uint64_t now = now_ns();
        if (phase != last_phase) {
            if (phase == P_RUN) {
                t->paced_t0 = now;
                t->paced_sent = 0;
                if (opt.mode == M_ECHO && opt.rate <= 0) {
                    for (int i = 0; i < t->nconns; i++) {
                        conn_t *c = t->conns[i];
                        if (c->state != C_OPEN)
                            continue;
                        for (int k = 0; k < opt.pipeline; k++)
                            send_msg(c, 'T', t->seq++);
                        c->inflight = opt.pipeline;
                    }
                    flush_all(t);
                }
            } else if (phase == P_DONE) {
                done_deadline = now + 2000000000ull;
                for (int i = 0; i < t->nconns; i++) {
                    conn_t *c = t->conns[i];
                    if (c->state == C_OPEN) {
                        static const char code[2] = {0x03, (char)0xe8};
                        frame_append(c, 0x8, code, 2);
                        c->state = C_CLOSING;
                        conn_flush(c);
                    } else if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
                        conn_close(c);
                    }
                }
                if (t->pub && t->pub->state == C_OPEN) {
                    static const char code[2] = {0x03, (char)0xe8};
                    frame_append(t->pub, 0x8, code, 2);
                    t->pub->state = C_CLOSING;
                    conn_flush(t->pub);
                }
            }
            last_phase = phase;
        }
        if (phase == P_CONNECT) {
            while (t->pending < per_thread_conc && t->next_connect < t->nconns)
                conn_start(t->conns[t->next_connect++]);
            if (t->next_connect >= t->nconns && t->pub && t->pub->state == C_NEW)
                conn_start(t->pub);
        }
        if (phase == P_READY && t->prober && t->prober->state == C_OPEN &&
            now - t->last_probe_ns > 200000000ull && t->probes_sent < MAX_PROBES) {
            send_msg(t->prober, 'P', (uint32_t)t->probes_sent++);
            t->last_probe_ns = now;
            conn_flush(t->prober);
        }
        if (phase == P_RUN && opt.mode != M_IDLE) {
            if (opt.mode == M_FANOUT && opt.rate <= 0)
                run_window(t, now);
            else
                run_paced(t, now);
        }
        if (phase == P_DONE) {
            int open = 0;
            for (int i = 0; i < t->nconns; i++)
                if (t->conns[i]->fd >= 0)
                    open++;
            if (t->pub && t->pub->fd >= 0)
                open++;
            if (!open || now > done_deadline) {
                for (int i = 0; i < t->nconns; i++)
                    if (t->conns[i]->fd >= 0)
                        conn_close(t->conns[i]);
                if (t->pub && t->pub->fd >= 0)
                    conn_close(t->pub);
                break;
            }
        }
        int timeout = 20;
        if (phase == P_RUN && (opt.rate > 0 || opt.mode == M_FANOUT))
            timeout = 1;
        if (phase == P_CONNECT || phase == P_READY)
            timeout = 5;
        int n = epoll_wait(t->ep, evs, 1024, timeout);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (c->state == C_CONNECTING) {
                    on_writable(c);
                    if (c->fd < 0)
                        continue;
                }
                on_readable(c);
            }
            if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
                on_writable(c);
        }
    }
    return NULL;
}

/* ---------- reporting ---------- */

typedef struct {
    uint64_t sent, recv, sent_m, recv_m, errors, connected, failed, closed_by_peer, timeouts;
    uint64_t foreign, refused, connect_other, handshake_bad, reset, masked, oversize, send_failed;
    uint64_t bad_compressed, rx_bytes_m, compressed, deflate_ok;
    uint64_t status[MAX_STATUS], close_code[MAX_CLOSE_CODE + 1], close_no_code;
    hist_t hist;
} totals_t;

static void collect(totals_t *s)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < opt.threads; i++) {
        thread_t *t = &g_threads[i];
        s->sent += rd(&t->sent);
        s->recv += rd(&t->recv);
        s->sent_m += rd(&t->sent_m);
        s->recv_m += rd(&t->recv_m);
        s->errors += rd(&t->errors);
        s->connected += rd(&t->connected);
        s->failed += rd(&t->failed);
        s->closed_by_peer += rd(&t->closed_by_peer);
        s->timeouts += t->timeouts;
        s->foreign += rd(&t->foreign);
        s->refused += rd(&t->refused);
        s->connect_other += rd(&t->connect_other);
        s->handshake_bad += rd(&t->handshake_bad);
        s->reset += rd(&t->reset);
        s->masked += rd(&t->masked);
        s->oversize += rd(&t->oversize);
        s->send_failed += rd(&t->send_failed);
        s->bad_compressed += rd(&t->bad_compressed);
        s->rx_bytes_m += rd(&t->rx_bytes_m);
        s->compressed += rd(&t->compressed);
        s->deflate_ok += rd(&t->deflate_ok);
        s->close_no_code += rd(&t->close_no_code);
        for (int k = 0; k < MAX_STATUS; k++)
            s->status[k] += rd(&t->status[k]);
        for (int k = 0; k <= MAX_CLOSE_CODE; k++)
            s->close_code[k] += rd(&t->close_code[k]);
        hist_merge(&s->hist, &t->hist);
    }
}

static const char *phase_name(int p)
{
    static const char *names[] = {"connect", "ready", "run", "drain", "done"};
    return names[p];
}

static void fmt_rate(char *buf, size_t n, double v)
{
    if (v >= 1e6)
        snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else
        snprintf(buf, n, "%.0f", v);
}

static void progress(double elapsed, totals_t *prev, int total_conns)
{
    static totals_t s;
    collect(&s);
    char sr[32], rr[32];
    fmt_rate(sr, sizeof(sr), (double)(s.sent - prev->sent));
    fmt_rate(rr, sizeof(rr), (double)(s.recv - prev->recv));
    double p99 = hist_quantile(&s.hist, 0.99) / 1e6;
    fprintf(stderr,
            "wsload [%6.1fs] %-7s conns %llu/%d  sent %llu (%s/s)  recv %llu (%s/s)  foreign %llu  "
            "p99 %.3fms  errors %llu\n",
            elapsed, phase_name(g_phase), (unsigned long long)s.connected, total_conns,
            (unsigned long long)s.sent, sr, (unsigned long long)s.recv, rr,
            (unsigned long long)s.foreign, p99, (unsigned long long)s.errors);
    prev->sent = s.sent;
    prev->recv = s.recv;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double secs_since(uint64_t t) { return (double)(now_ns() - t) / 1e9; }

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static void usage(FILE *out, int status)
{
    fprintf(out,
            "usage: robyn-load --url ws://HOST:PORT/PATH [options]\n"
            "A WebSocket load generator: opens --connections connections, sends, counts every\n"
            "frame received, prints a summary, and exits non-zero when a threshold is crossed.\n"
            "  --mode echo|fanout|chat|subscribe|idle   workload (default echo)\n"
            "                      subscribe: send nothing (but --on-open), count every frame\n"
            "  --message TEXT      send TEXT instead of the timing format; in it {stamp} is\n"
            "                      replaced by a timing header (found anywhere in what comes\n"
            "                      back), {counter} by the message's sequence number, {conn} by\n"
            "                      the connection's number, {time_ms} by the time (ms, epoch)\n"
            "  --message-file F    one message per line, sent in turn (as --message)\n"
            "  --on-open TEXT      sent once by every connection when it opens\n"
            "  --deflate           offer permessage-deflate and inflate what comes compressed\n"
            "                      (sends stay uncompressed); the summary gives the bytes\n"
            "                      received per message either way\n"
            "  --stamp-field NAME  subscribe: a text frame holding the JSON member \"NAME\": N,\n"
            "                      N the server's send time in microseconds since the epoch,\n"
            "                      is timed (latency = receipt - N; same machine's clock)\n"
            "  --preset chat-example  drive examples/chat: --mode chat, JSON messages with a\n"
            "                      stamp, user=load{n} added to the URL, 1 message/s per member\n"
            "                      ({n} in a URL is the connection's number)\n"
            "  --max-loss PCT      exit 3 when more than PCT %% of expected messages are lost\n"
            "  --max-p99 MS        exit 3 when the p99 latency is above MS milliseconds\n"
            "  --connections N     connections (fanout: subscribers; default 64)\n"
            "  --rate R            messages/s in total (0 = closed loop; chat default N/s)\n"
            "  --duration S        measured seconds (default 10)\n"
            "  --warmup S          seconds before measuring (default 1)\n"
            "  --drain S           max seconds to wait for messages in flight (default 3)\n"
            "  --message-size B    payload bytes, >= 32 (default 32)\n"
            "  --pub-url URL       fanout publisher URL (default: --url with role=pub)\n"
            "  --url2 URL          fanout: every second subscriber connects here (same host)\n"
            "  --pipeline K        echo: messages in flight per connection (default 1)\n"
            "  --window W          fanout with --rate 0: messages outstanding (default 32)\n"
            "  --threads T         client threads (default 1)\n"
            "  --concurrency C     connects in progress at once (default 256)\n"
            "  --source-addrs K    spread connections over 127.0.0.1..K (default: auto)\n"
            "  --connect-timeout S give up connecting after S seconds (default 60)\n"
            "  --json              summary as JSON\n"
            "  --quiet             no progress lines\n"
            "  --help              this text\n"
            "Exit status: 0 run completed; 1 bad usage; 2 no connection could be opened;\n"
            "3 a --max-loss/--max-p99 threshold was crossed; 4 errors of no known cause.\n");
    exit(status);
}

static char *xstrdup(const char *v)
{
    char *d = strdup(v);
    if (!d)
        die("out of memory");
    return d;
}

static void add_message(const char *text)
{
    opt.messages = realloc(opt.messages, sizeof(char *) * (size_t)(opt.nmessages + 1));
    if (!opt.messages)
        die("out of memory");
    opt.messages[opt.nmessages++] = xstrdup(text);
}

static void read_message_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("--message-file %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n > 0)
            add_message(line);
    }
    free(line);
    fclose(f);
    if (!opt.nmessages)
        die("--message-file %s has no messages", path);
}

static void parse_url(const char *url, char *host, int *port, char *path)
{
    if (strncmp(url, "ws://", 5) != 0)
        die("only ws:// URLs are supported: %s", url);
    const char *h = url + 5;
    const char *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    char hp[256];
    if (hl >= sizeof(hp))
        die("host too long");
    memcpy(hp, h, hl);
    hp[hl] = 0;
    char *colon = strrchr(hp, ':');
    *port = 80;
    if (colon) {
        *colon = 0;
        *port = atoi(colon + 1);
    }
    snprintf(host, 256, "%s", hp);
    snprintf(path, 2048, "%s", slash ? slash : "/");
}

int main(int argc, char **argv)
{
    static struct option lo[] = {
        {"url", 1, 0, 'u'},          {"mode", 1, 0, 'm'},         {"connections", 1, 0, 'c'},
        {"rate", 1, 0, 'r'},         {"duration", 1, 0, 'd'},     {"warmup", 1, 0, 'w'},
        {"drain", 1, 0, 'D'},        {"message-size", 1, 0, 's'}, {"pub-url", 1, 0, 'p'},
        {"pipeline", 1, 0, 'P'},     {"window", 1, 0, 'W'},       {"threads", 1, 0, 't'},
        {"concurrency", 1, 0, 'C'},  {"source-addrs", 1, 0, 'S'}, {"connect-timeout", 1, 0, 'T'},
        {"json", 0, 0, 'j'},         {"quiet", 0, 0, 'q'},        {"help", 0, 0, 'h'},
        {"url2", 1, 0, '2'},         {"message", 1, 0, 'M'},      {"message-file", 1, 0, 'F'},
        {"on-open", 1, 0, 'O'},      {"preset", 1, 0, 'R'},       {"max-loss", 1, 0, 'L'},
        {"max-p99", 1, 0, '9'},      {"stamp-field", 1, 0, 'Z'},
        {"deflate", 0, 0, 'z'},
        {0, 0, 0, 0}};
    int preset_chat = 0;
    opt.max_loss = -1;
    opt.max_p99 = -1;
    const char *url = NULL, *pub_url = NULL, *url2 = NULL;
    opt.mode = M_ECHO;
    opt.connections = 64;
    opt.rate = -1;
    opt.duration = 10;
    opt.warmup = 1;
    opt.drain = 3;
    opt.msg_size = 32;
    opt.threads = 1;
    opt.pipeline = 1;
    opt.window = 32;
    opt.concurrency = 256;
    opt.source_addrs = 0;
    opt.connect_timeout = 60;
    int ch;
    while ((ch = getopt_long(argc, argv, "u:m:c:r:d:s:t:jqh", lo, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 'm':
            if (!strcmp(optarg, "echo")) opt.mode = M_ECHO;
            else if (!strcmp(optarg, "fanout")) opt.mode = M_FANOUT;
            else if (!strcmp(optarg, "chat")) opt.mode = M_CHAT;
            else if (!strcmp(optarg, "idle")) opt.mode = M_IDLE;
            else if (!strcmp(optarg, "subscribe")) opt.mode = M_SUBSCRIBE;
            else die("unknown mode %s", optarg);
            break;
        case 'c': opt.connections = atoi(optarg); break;
        case 'r': opt.rate = atof(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'w': opt.warmup = atof(optarg); break;
        case 'D': opt.drain = atof(optarg); break;
        case 's': opt.msg_size = atoi(optarg); break;
        case 'p': pub_url = optarg; break;
        case '2': url2 = optarg; break;
        case 'P': opt.pipeline = atoi(optarg); break;
        case 'W': opt.window = atoi(optarg); break;
        case 't': opt.threads = atoi(optarg); break;
        case 'C': opt.concurrency = atoi(optarg); break;
        case 'S': opt.source_addrs = atoi(optarg); break;
        case 'T': opt.connect_timeout = atof(optarg); break;
        case 'j': opt.json = 1; break;
        case 'q': opt.quiet = 1; break;
        case 'M': add_message(optarg); break;
        case 'F': read_message_file(optarg); break;
        case 'O': opt.on_open = optarg; break;
        case 'Z': opt.stamp_field = optarg; opt.stamp_field_len = strlen(optarg); break;
        case 'R':
            if (strcmp(optarg, "chat-example"))
                die("unknown preset %s (known: chat-example)", optarg);
            preset_chat = 1;
            break;
        case 'L': opt.max_loss = atof(optarg); break;
        case '9': opt.max_p99 = atof(optarg); break;
        case 'z': opt.deflate = 1; break;
        case 'h': usage(stdout, 0); break;
        default: usage(stderr, 1);
        }
    }
    if (optind < argc)
        die("unexpected argument %s", argv[optind]);
    if (!url)
        usage(stderr, 1);
    char preset_url[2300];
    if (preset_chat) {
        opt.mode = M_CHAT;
        if (!opt.nmessages)
            add_message("{\"type\":\"message\",\"text\":\"{stamp}\"}");
        if (!strstr(url, "user=")) {
            snprintf(preset_url, sizeof(preset_url), "%s%cuser=load{n}", url,
                     strchr(url, '?') ? '&' : '?');
            url = preset_url;
        }
    }
    if (opt.connections < 1 || opt.threads < 1 || opt.pipeline < 1 || opt.window < 1 ||
        opt.duration <= 0 || opt.concurrency < 1)
        die("bad numeric option");
    if (opt.nmessages && opt.mode != M_ECHO && opt.mode != M_CHAT && opt.mode != M_FANOUT)
        die("--message/--message-file need --mode echo, chat or fanout");
    if (opt.nmessages) {
        size_t longest = 0;
        for (int i = 0; i < opt.nmessages; i++)
            if (strlen(opt.messages[i]) > longest)
                longest = strlen(opt.messages[i]);
        if ((size_t)opt.msg_size < longest + HDR_LEN)
            opt.msg_size = (int)(longest + HDR_LEN);
    }
    if (opt.msg_size < MIN_MSG)
        die("--message-size must be at least %d (the payload carries a timestamp)", MIN_MSG);
    if (opt.threads > opt.connections)
        opt.threads = opt.connections;
    if (opt.rate < 0)
        opt.rate = opt.mode == M_CHAT ? opt.connections : 0;
    if (opt.stamp_field && opt.mode != M_SUBSCRIBE)
        die("--stamp-field applies to --mode subscribe (other modes time their own messages)");
    if (opt.stamp_field && !opt.stamp_field_len)
        die("--stamp-field needs a member name");
    if (opt.mode == M_SUBSCRIBE && opt.rate > 0)
        die("--mode subscribe sends nothing: --rate does not apply");
    if (opt.mode == M_CHAT && opt.rate <= 0)
        die("chat needs --rate > 0");

    parse_url(url, opt.host, &opt.port, opt.path);
    if (pub_url) {
        char h[256];
        int p;
        parse_url(pub_url, h, &p, opt.pub_path);
    } else {
        snprintf(opt.pub_path, sizeof(opt.pub_path), "%s%crole=pub", opt.path,
                 strchr(opt.path, '?') ? '&' : '?');
    }
    if (url2) {
        char h[256];
        parse_url(url2, h, &opt.port2, opt.path2);
        if (strcmp(h, opt.host))
            die("--url2 must be on the same host as --url");
        opt.has_url2 = 1;
    }
    memset(&g_addr, 0, sizeof(g_addr));
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &g_addr.sin_addr) != 1) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
        if (getaddrinfo(opt.host, NULL, &hints, &res) != 0)
            die("cannot resolve %s", opt.host);
        g_addr.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    g_addr2 = g_addr;
    g_addr2.sin_port = htons((uint16_t)opt.port2);
    int loopback = (ntohl(g_addr.sin_addr.s_addr) >> 24) == 127;
    if (opt.source_addrs <= 0)
        opt.source_addrs = loopback ? 1 + opt.connections / 16000 : 1;
    if (!loopback)
        opt.source_addrs = 1;

    /* Room for every connection: raise the fd limit (root may raise the hard limit). */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)opt.connections + 1024;
    if (rl.rlim_cur < want) {
        struct rlimit nr = {want, rl.rlim_max > want ? rl.rlim_max : want};
        if (setrlimit(RLIMIT_NOFILE, &nr) < 0) {
            nr.rlim_cur = rl.rlim_max;
            nr.rlim_max = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &nr);
            if (rl.rlim_max < (rlim_t)opt.connections + 16)
                fprintf(stderr, "wsload: the open-files limit (%llu) is too low for %d connections\n",
                        (unsigned long long)rl.rlim_max, opt.connections);
        }
    }

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    clock_gettime(CLOCK_MONOTONIC, &g_t0);

    int N = opt.connections;
    g_nsubs = N;
    conn_t *conns = calloc((size_t)N + 1, sizeof(conn_t));
    g_threads = calloc((size_t)opt.threads, sizeof(thread_t));
    if (!conns || !g_threads)
        die("out of memory");
    for (int i = 0; i < opt.threads; i++) {
        thread_t *t = &g_threads[i];
        t->idx = i;
        t->ep = epoll_create1(EPOLL_CLOEXEC);
        t->conns = calloc((size_t)N / opt.threads + 2, sizeof(conn_t *));
        t->tbuf = malloc(TBUF_SIZE);
        t->msg = malloc((size_t)opt.msg_size);
        memset(t->msg, 'x', (size_t)opt.msg_size);
        t->rng = 0x9e3779b9u ^ (uint32_t)(i * 7919 + 1) ^ (uint32_t)getpid();
        if (!t->rng)
            t->rng = 1;
        t->rate = opt.mode == M_FANOUT ? (i == 0 ? opt.rate : 0) : 0;
    }
    for (int i = 0; i < N; i++) {
        conn_t *c = &conns[i];
        c->fd = -1;
        c->idx = i;
        c->counted = opt.mode != M_IDLE;
        thread_t *t = &g_threads[i % opt.threads];
        c->t = t;
        t->conns[t->nconns++] = c;
    }
    for (int i = 0; i < opt.threads; i++) {
        thread_t *t = &g_threads[i];
        if (opt.mode != M_FANOUT)
            t->rate = opt.rate * (double)t->nconns / (double)N;
    }
    if (opt.mode == M_FANOUT) {
        conn_t *p = &conns[N];
        p->fd = -1;
        p->idx = N;
        p->is_pub = 1;
        p->counted = 0;
        p->t = &g_threads[0];
        g_threads[0].pub = p;
        g_threads[0].prober = p;
        g_slot_seq = calloc((size_t)opt.window, sizeof(uint32_t));
        g_slot_count = calloc((size_t)opt.window, sizeof(uint32_t));
        g_threads[0].win_sent_at = calloc((size_t)opt.window, sizeof(uint64_t));
        for (int i = 0; i < opt.window; i++)
            g_slot_seq[i] = UINT32_MAX;
    } else if (opt.mode == M_CHAT) {
        g_threads[0].prober = g_threads[0].conns[0];
    }
    int total_conns = N + (opt.mode == M_FANOUT ? 1 : 0);

    uint64_t t_start = now_ns();
    for (int i = 0; i < opt.threads; i++)
        pthread_create(&g_threads[i].th, NULL, thread_main, &g_threads[i]);

    totals_t prev = {0}, s;
    uint64_t next_progress = t_start + 1000000000ull;
    /* Connect phase. */
    double connect_seconds = 0;
    for (;;) {
        sleep_ms(5);
        collect(&s);
        if ((int)(s.connected + s.failed) >= total_conns || g_interrupted ||
            secs_since(t_start) > opt.connect_timeout)
            break;
        if (now_ns() >= next_progress && !opt.quiet) {
            progress(secs_since(t_start), &prev, total_conns);
            next_progress += 1000000000ull;
        }
    }
    connect_seconds = secs_since(t_start);
    collect(&s);
    uint64_t established = s.connected;
    if (!opt.quiet || opt.mode == M_IDLE)
        fprintf(stderr, "wsload: all %llu connected in %.2fs (%llu failed)\n",
                (unsigned long long)established, connect_seconds, (unsigned long long)s.failed);
    /* With no connection there is nothing to run, but the summary still says why. */
    int no_connection = !established;
    if (no_connection)
        fprintf(stderr, "wsload: no connection could be opened to %s\n", url);
    /* Recipients are the counted connections that opened. */
    {
        int opened = 0;
        for (int i = 0; i < N; i++)
            if (conns[i].state == C_OPEN)
                opened++;
        g_nsubs = opened;
    }

    int ready = 1;
    double ready_seconds = 0;
    if ((opt.mode == M_FANOUT || opt.mode == M_CHAT) && !g_interrupted && !no_connection) {
        uint64_t r0 = now_ns();
        g_phase = P_READY;
        while (__atomic_load_n(&g_probe_ready, __ATOMIC_RELAXED) == UINT32_MAX) {
            sleep_ms(5);
            if (g_interrupted || secs_since(r0) > 30) {
                ready = 0;
                fprintf(stderr, "wsload: not every subscriber got a probe within 30s\n");
                break;
            }
            if (now_ns() >= next_progress && !opt.quiet) {
                progress(secs_since(t_start), &prev, total_conns);
                next_progress += 1000000000ull;
            }
        }
        ready_seconds = secs_since(r0);
        sleep_ms(100);
    }

    /* Run: warmup, then the measured window. */
    uint64_t run0 = now_ns();
    double measured = 0, cpu_m0 = 0, cpu_m1 = 0;
    if (!g_interrupted && !no_connection) {
        g_phase = P_RUN;
        uint64_t m0 = 0;
        int measuring = 0;
        double warm = opt.mode == M_IDLE ? 0 : opt.warmup;
        while (!g_interrupted) {
            sleep_ms(2);
            double el = secs_since(run0);
            if (!measuring && el >= warm) {
                m0 = now_ns();
                cpu_m0 = cpu_seconds();
                g_measuring = 1;
                measuring = 1;
            }
            if (measuring && secs_since(m0) >= opt.duration)
                break;
            if (now_ns() >= next_progress && !opt.quiet) {
                progress(secs_since(t_start), &prev, total_conns);
                next_progress += 1000000000ull;
            }
        }
        g_measuring = 0;
        measured = m0 ? secs_since(m0) : 0;
        cpu_m1 = cpu_seconds();
    }

    /* Drain: stop sending, wait for what is in flight. */
    g_phase = P_DRAIN;
    uint64_t d0 = now_ns();
    uint64_t expected = 0;
    for (;;) {
        collect(&s);
        uint64_t per = opt.mode == M_ECHO ? 1 : (uint64_t)g_nsubs;
        expected = opt.mode == M_IDLE || opt.mode == M_SUBSCRIBE ? 0 : s.sent * per;
        if (s.recv >= expected || secs_since(d0) >= opt.drain || g_interrupted)
            break;
        sleep_ms(5);
    }
    double drain_seconds = secs_since(d0);
    collect(&s);
    g_phase = P_DONE;
    for (int i = 0; i < opt.threads; i++)
        pthread_join(g_threads[i].th, NULL);
    collect(&s);

    uint64_t per = opt.mode == M_ECHO ? 1 : (uint64_t)g_nsubs;
    expected = opt.mode == M_IDLE || opt.mode == M_SUBSCRIBE ? 0 : s.sent * per;
    long long loss = (long long)expected - (long long)s.recv;
    double dur = measured > 0 ? measured : 1e-9;
    double q50 = hist_quantile(&s.hist, 0.5) / 1e3, q90 = hist_quantile(&s.hist, 0.9) / 1e3,
           q99 = hist_quantile(&s.hist, 0.99) / 1e3, q999 = hist_quantile(&s.hist, 0.999) / 1e3,
           qmax = (double)s.hist.max / 1e3,
           mean = s.hist.n ? (double)s.hist.sum / (double)s.hist.n / 1e3 : 0;
    static const char *mnames[] = {"echo", "fanout", "chat", "idle", "subscribe"};
    /* Client CPU during the measured window (idle: while holding). */
    double client_cpu = measured > 0 ? 100.0 * (cpu_m1 - cpu_m0) / measured : 0;

    /* Every error class, and what is left of the errors when they are taken out. */
    uint64_t still_connecting = (uint64_t)total_conns > s.connected + s.failed
                                    ? (uint64_t)total_conns - s.connected - s.failed : 0;
    uint64_t status_total = 0;
    for (int k = 0; k < MAX_STATUS; k++)
        status_total += s.status[k];
    uint64_t classified = s.refused + s.connect_other + s.handshake_bad + status_total + s.reset +
                          s.masked + s.oversize + s.send_failed + s.bad_compressed;
    uint64_t unexplained = s.errors > classified ? s.errors - classified : 0;
    uint64_t closed_with_frame = s.close_no_code;
    for (int k = 0; k <= MAX_CLOSE_CODE; k++)
        closed_with_frame += s.close_code[k];
    uint64_t closed_no_frame = s.closed_by_peer > closed_with_frame ? s.closed_by_peer - closed_with_frame : 0;

    /* Thresholds. */
    double loss_pct = expected ? 100.0 * (double)(loss > 0 ? loss : 0) / (double)expected : 0;
    double p99_ms = q99 / 1e3;
    char crossed[256] = "";
    if (opt.max_loss >= 0 && loss_pct > opt.max_loss)
        snprintf(crossed + strlen(crossed), sizeof(crossed) - strlen(crossed),
                 "%sloss %.3f%% > --max-loss %g%%", *crossed ? "; " : "", loss_pct, opt.max_loss);
    if (opt.max_p99 >= 0 && (s.hist.n == 0 || p99_ms > opt.max_p99)) {
        if (s.hist.n == 0)
            snprintf(crossed + strlen(crossed), sizeof(crossed) - strlen(crossed),
                     "%sno latency measured, --max-p99 cannot be checked", *crossed ? "; " : "");
        else
            snprintf(crossed + strlen(crossed), sizeof(crossed) - strlen(crossed),
                     "%sp99 %.3fms > --max-p99 %gms", *crossed ? "; " : "", p99_ms, opt.max_p99);
    }
    /* Connections that opened but were all closed before the run measured nothing either. */
    if (!no_connection && g_nsubs == 0) {
        no_connection = 1;
        fprintf(stderr, "wsload: every connection was closed before the run began\n");
    }
    int status = no_connection ? 2 : *crossed ? 3 : unexplained ? 4 : 0;

    if (opt.json) {
        printf("{\"mode\": \"%s\", \"url\": \"%s\", \"connections\": %d, \"established\": %llu, "
               "\"opened\": %llu, \"connect_failed\": %llu, \"connect_seconds\": %.3f, \"connect_rate\": %.1f, "
               "\"ready\": %s, \"ready_seconds\": %.3f, \"recipients\": %d, "
               "\"message_size\": %d, \"rate\": %.1f, \"threads\": %d, "
               "\"duration\": %.3f, \"sent\": %llu, \"received\": %llu, \"foreign\": %llu, "
               "\"frames_received\": %llu, \"sent_measured\": %llu, "
               "\"received_measured\": %llu, \"sent_per_s\": %.1f, \"received_per_s\": %.1f, "
               "\"latency_us\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p99.9\": %.1f, "
               "\"max\": %.1f, \"mean\": %.1f}, \"latency_samples\": %llu, \"expected\": %llu, "
               "\"loss\": %lld, \"loss_percent\": %.4f, "
               "\"errors\": %llu, \"closed_by_peer\": %llu, \"window_timeouts\": %llu, "
               "\"deflate\": %s, \"deflate_accepted\": %llu, \"compressed_messages\": %llu, "
               "\"bytes_received_measured\": %llu, \"bytes_per_message\": %.1f, ",
               mnames[opt.mode], url, N, (unsigned long long)g_nsubs, (unsigned long long)established,
               (unsigned long long)s.failed, connect_seconds,
               connect_seconds > 0 ? (double)established / connect_seconds : 0,
               ready ? "true" : "false", ready_seconds, g_nsubs, opt.msg_size, opt.rate,
               opt.threads, measured, (unsigned long long)s.sent, (unsigned long long)s.recv,
               (unsigned long long)s.foreign, (unsigned long long)(s.recv + s.foreign),
               (unsigned long long)s.sent_m, (unsigned long long)s.recv_m,
               (double)s.sent_m / dur, (double)s.recv_m / dur, q50, q90, q99, q999, qmax, mean,
               (unsigned long long)s.hist.n, (unsigned long long)expected, loss, loss_pct,
               (unsigned long long)s.errors, (unsigned long long)s.closed_by_peer,
               (unsigned long long)s.timeouts, opt.deflate ? "true" : "false",
               (unsigned long long)s.deflate_ok, (unsigned long long)s.compressed,
               (unsigned long long)s.rx_bytes_m,
               s.recv_m ? (double)s.rx_bytes_m / (double)s.recv_m : 0.0);
        printf("\"error_classes\": {\"connect_refused\": %llu, \"connect_error\": %llu, "
               "\"connect_timeout\": %llu, \"handshake_status\": {",
               (unsigned long long)s.refused, (unsigned long long)s.connect_other,
               (unsigned long long)still_connecting);
        const char *sep = "";
        for (int k = 0; k < MAX_STATUS; k++)
            if (s.status[k]) {
                printf("%s\"%d\": %llu", sep, k, (unsigned long long)s.status[k]);
                sep = ", ";
            }
        printf("}, \"handshake_invalid\": %llu, \"closed_by_server\": {", (unsigned long long)s.handshake_bad);
        sep = "";
        for (int k = 0; k < MAX_CLOSE_CODE; k++)
            if (s.close_code[k]) {
                printf("%s\"%d\": %llu", sep, k, (unsigned long long)s.close_code[k]);
                sep = ", ";
            }
        if (s.close_code[MAX_CLOSE_CODE]) {
            printf("%s\"other\": %llu", sep, (unsigned long long)s.close_code[MAX_CLOSE_CODE]);
            sep = ", ";
        }
        if (s.close_no_code)
            printf("%s\"no_code\": %llu", sep, (unsigned long long)s.close_no_code);
        printf("}, \"closed_without_close_frame\": %llu, \"connection_reset\": %llu, "
               "\"io_error\": %llu, \"masked_frame\": %llu, \"oversized_frame\": %llu, "
               "\"window_timeout\": %llu, \"bad_compressed\": %llu, \"unexplained\": %llu}, ",
               (unsigned long long)closed_no_frame, (unsigned long long)s.reset,
               (unsigned long long)s.send_failed, (unsigned long long)s.masked,
               (unsigned long long)s.oversize, (unsigned long long)s.timeouts,
               (unsigned long long)s.bad_compressed, (unsigned long long)unexplained);
        printf("\"thresholds\": {\"max_loss_percent\": ");
        if (opt.max_loss >= 0) printf("%g", opt.max_loss); else printf("null");
        printf(", \"max_p99_ms\": ");
        if (opt.max_p99 >= 0) printf("%g", opt.max_p99); else printf("null");
        printf(", \"crossed\": %s", *crossed ? "\"" : "null");
        if (*crossed) printf("%s\"", crossed);
        printf("}, \"drain_seconds\": %.3f, \"client_cpu_percent\": %.1f, \"exit_status\": %d}\n",
               drain_seconds, client_cpu, status);
    } else {
        const char *what = opt.mode == M_ECHO ? "round trips/s" : "delivered/s";
        printf("robyn-load %s %s\n", mnames[opt.mode], url);
        printf("  connections   %llu opened of %d%s (%llu failed) in %.2fs, %.0f connects/s; "
               "%d open when the run began\n",
               (unsigned long long)established, total_conns,
               opt.mode == M_FANOUT ? " (with the publisher)" : "", (unsigned long long)s.failed,
               connect_seconds, connect_seconds > 0 ? (double)established / connect_seconds : 0,
               g_nsubs);
        if (no_connection) {
            /* nothing was measured: only the connections and the errors say anything */
        } else if (opt.mode == M_SUBSCRIBE) {
            printf("  measured      %.2fs after %.1fs warmup, sending nothing%s\n", measured,
                   opt.warmup, opt.on_open ? " but --on-open" : "");
            printf("  received      %llu frames (%llu timed, %llu foreign)\n",
                   (unsigned long long)(s.recv + s.foreign), (unsigned long long)s.recv,
                   (unsigned long long)s.foreign);
            if (opt.stamp_field)
                printf("  latency       p50 %.1fus  p90 %.1fus  p99 %.1fus  p99.9 %.1fus  max %.1fus"
                       " (%.0f timed frames/s, from \"%s\")\n", q50, q90, q99, q999, qmax,
                       (double)s.recv_m / dur, opt.stamp_field);
        } else if (opt.mode != M_IDLE) {
            printf("  measured      %.2fs after %.1fs warmup, message %s, rate %s\n", measured,
                   opt.warmup, opt.nmessages ? "from --message" : "timing format",
                   opt.rate > 0 ? "fixed" : "closed loop");
            printf("  sent          %llu (%.0f/s measured)\n", (unsigned long long)s.sent,
                   (double)s.sent_m / dur);
            printf("  received      %llu (%.0f %s), foreign frames %llu\n", (unsigned long long)s.recv,
                   (double)s.recv_m / dur, what, (unsigned long long)s.foreign);
            printf("  latency       p50 %.1fus  p90 %.1fus  p99 %.1fus  p99.9 %.1fus  max %.1fus\n",
                   q50, q90, q99, q999, qmax);
            printf("  loss          %lld of %llu expected, %.3f%% (drained %.2fs)\n", loss,
                   (unsigned long long)expected, loss_pct, drain_seconds);
            if (opt.deflate) {
                printf("  deflate       accepted by %llu connections, %llu messages compressed\n",
                       (unsigned long long)s.deflate_ok, (unsigned long long)s.compressed);
                printf("  wire          %llu bytes received while measuring, %.1f per message\n",
                       (unsigned long long)s.rx_bytes_m,
                       s.recv_m ? (double)s.rx_bytes_m / (double)s.recv_m : 0.0);
            }
        } else if (opt.mode == M_IDLE) {
            printf("  held          %.1fs\n", measured);
        }
        printf("  errors        %llu (%llu of no known cause)\n", (unsigned long long)s.errors,
               (unsigned long long)unexplained);
        if (s.refused)
            printf("    connect refused            %llu\n", (unsigned long long)s.refused);
        if (s.connect_other)
            printf("    connect failed (other)     %llu\n", (unsigned long long)s.connect_other);
        if (still_connecting)
            printf("    connect timed out          %llu (after %gs)\n", (unsigned long long)still_connecting, opt.connect_timeout);
        for (int k = 0; k < MAX_STATUS; k++)
            if (s.status[k])
                printf("    handshake answered %3d     %llu\n", k, (unsigned long long)s.status[k]);
        if (s.handshake_bad)
            printf("    handshake not HTTP / 101 without a valid accept  %llu\n", (unsigned long long)s.handshake_bad);
        if (s.reset)
            printf("    connection reset           %llu\n", (unsigned long long)s.reset);
        if (s.send_failed)
            printf("    send/recv failed           %llu\n", (unsigned long long)s.send_failed);
        if (s.masked)
            printf("    masked frame from server   %llu\n", (unsigned long long)s.masked);
        if (s.oversize)
            printf("    frame over 64 MB           %llu\n", (unsigned long long)s.oversize);
        if (s.bad_compressed)
            printf("    compressed frame unreadable %llu\n", (unsigned long long)s.bad_compressed);
        if (s.timeouts)
            printf("    fanout window timeouts     %llu (a message not at every subscriber in 10s)\n", (unsigned long long)s.timeouts);
        printf("  closed by server  %llu\n", (unsigned long long)s.closed_by_peer);
        for (int k = 0; k < MAX_CLOSE_CODE; k++)
            if (s.close_code[k])
                printf("    with code %d  %llu\n", k, (unsigned long long)s.close_code[k]);
        if (s.close_code[MAX_CLOSE_CODE])
            printf("    with a code >= %d  %llu\n", MAX_CLOSE_CODE, (unsigned long long)s.close_code[MAX_CLOSE_CODE]);
        if (s.close_no_code)
            printf("    with no code  %llu\n", (unsigned long long)s.close_no_code);
        if (closed_no_frame)
            printf("    without a close frame  %llu\n", (unsigned long long)closed_no_frame);
        printf("  client cpu    %.0f%% of one core\n", client_cpu);
        if (*crossed)
            printf("  FAILED        %s\n", crossed);
    }
    fflush(stdout);
    if (*crossed)
        fprintf(stderr, "robyn-load: threshold crossed: %s\n", crossed);
    else if (unexplained)
        fprintf(stderr, "robyn-load: %llu errors of no known cause\n", (unsigned long long)unexplained);
    return status;
}
