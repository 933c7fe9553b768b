/*
 * deflate.c: permessage-deflate compression with per-thread, reused zlib states.
 */
#include "deflate.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* zlib counts in uInt; past this a message is sent uncompressed (its caller's choice). */
#define MAX_ZLIB_LEN (1u << 30)

/* One thread's deflate states, indexed by effective window bits - 9. */
typedef struct thread_streams {
    z_stream *by_bits[PS_DEFLATE_MAX_WINDOW_BITS - 8];
} thread_streams;

static pthread_key_t streams_key;
static pthread_once_t streams_once = PTHREAD_ONCE_INIT;
static int streams_key_ok;

static void free_streams(void *arg)
{
    thread_streams *ts = arg;

    for (size_t i = 0; i < sizeof(ts->by_bits) / sizeof(ts->by_bits[0]); i++) {
        if (ts->by_bits[i] != NULL) {
            deflateEnd(ts->by_bits[i]);
            free(ts->by_bits[i]);
        }
    }
    free(ts);
}

static void make_key(void)
{
    streams_key_ok = pthread_key_create(&streams_key, free_streams) == 0;
}

unsigned ps_deflate_effective_bits(unsigned window_bits)
{
    if (window_bits < PS_DEFLATE_MIN_WINDOW_BITS || window_bits > PS_DEFLATE_MAX_WINDOW_BITS)
        return 0;
    return window_bits == 8 ? 9 : window_bits;
}

/* The calling thread's state for bits (9..15), made on first use; NULL without memory. */
static z_stream *thread_stream(unsigned bits)
{
    thread_streams *ts;
    z_stream *z;

    pthread_once(&streams_once, make_key);
    if (!streams_key_ok)
        return NULL;
    ts = pthread_getspecific(streams_key);
    if (ts == NULL) {
        ts = calloc(1, sizeof(*ts));
        if (ts == NULL)
            return NULL;
        if (pthread_setspecific(streams_key, ts) != 0) {
            free(ts);
            return NULL;
        }
    }
    z = ts->by_bits[bits - 9];
    if (z != NULL)
        return z;
    z = calloc(1, sizeof(*z));
    if (z == NULL)
        return NULL;
    if (deflateInit2(z, PS_DEFLATE_LEVEL, Z_DEFLATED, -(int)bits, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        free(z);
        return NULL;
    }
    ts->by_bits[bits - 9] = z;
    return z;
}

unsigned char *ps_deflate_message(const void *in, size_t len, unsigned window_bits,
                                  size_t prefix, size_t *out_len)
{
    static const unsigned char sync_tail[4] = {0x00, 0x00, 0xff, 0xff};
    unsigned bits = ps_deflate_effective_bits(window_bits);
    unsigned char *buf, *shrunk;
    size_t cap, used;
    z_stream *z;
    int zr, whole;

    if (bits == 0 || len > MAX_ZLIB_LEN || prefix > MAX_ZLIB_LEN)
        return NULL;
    z = thread_stream(bits);
    if (z == NULL)
        return NULL;
    /* deflateBound() covers a finished stream; a sync flush adds at most an empty stored
     * block (5 bytes) after the last block, and a little slack keeps deflate() from ever
     * running out of room, so one call does the whole message. */
    cap = (size_t)deflateBound(z, (uLong)len) + 16;
    buf = malloc(prefix + cap);
    if (buf == NULL)
        return NULL;
    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)len;
    z->next_out = buf + prefix;
    z->avail_out = (uInt)cap;
    zr = deflate(z, Z_SYNC_FLUSH);
    used = cap - z->avail_out;
    whole = zr == Z_OK && z->avail_in == 0 && z->avail_out != 0;
    /* The next message starts from an empty window: no context takeover. */
    if (deflateReset(z) != Z_OK || !whole || used < sizeof(sync_tail) ||
        memcmp(buf + prefix + used - sizeof(sync_tail), sync_tail, sizeof(sync_tail)) != 0) {
        free(buf);
        return NULL;
    }
    used -= sizeof(sync_tail);
    shrunk = realloc(buf, prefix + used);
    *out_len = used;
    return shrunk != NULL ? shrunk : buf;
}

void ps_deflate_release_thread(void)
{
    thread_streams *ts;

    pthread_once(&streams_once, make_key);
    if (!streams_key_ok)
        return;
    ts = pthread_getspecific(streams_key);
    if (ts == NULL)
        return;
    pthread_setspecific(streams_key, NULL);
    free_streams(ts);
}
