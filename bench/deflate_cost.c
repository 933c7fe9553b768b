/*
 * deflate_cost: what compressing and inflating one message costs, alone, on this machine.
 *
 *   bench/deflate --cost       builds this against pubsub/deflate.c and feeds it MESSAGE
 *
 * Reads one message on stdin. Compresses it with ps_deflate_message() (the server's
 * compressor: a reused zlib state per thread, window 15, level 6) and inflates the result
 * with a raw inflate state reset between messages (as robyn-load --deflate and a browser
 * with no context takeover do), each `count` times per batch, for `batches` batches, and
 * prints the median and the range of the per-message times, in microseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "deflate.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *us, int batches)
{
    qsort(us, (size_t)batches, sizeof(*us), by_value);
    printf("%s: median %.2f us per message (%.2f-%.2f over %d batches)\n", what,
           us[batches / 2], us[0], us[batches - 1], batches);
}

int main(int argc, char **argv)
{
    int count = argc > 1 ? atoi(argv[1]) : 20000;
    int batches = argc > 2 ? atoi(argv[2]) : 5;
    static unsigned char msg[1 << 20], out[1 << 20];
    size_t len = fread(msg, 1, sizeof(msg), stdin);
    if (count < 1 || batches < 1 || batches > 64 || len == 0) {
        fprintf(stderr, "usage: deflate_cost [count [batches]] < message\n");
        return 1;
    }
    while (len && msg[len - 1] == '\n')
        len--;

    double deflate_us[64], inflate_us[64];
    size_t clen = 0;
    unsigned char *compressed = NULL;
    for (int b = 0; b < batches; b++) {
        double t0 = now_us();
        for (int i = 0; i < count; i++) {
            free(compressed);
            compressed = ps_deflate_message(msg, len, 15, 0, &clen);
            if (!compressed) {
                fprintf(stderr, "deflate_cost: ps_deflate_message failed\n");
                return 1;
            }
        }
        deflate_us[b] = (now_us() - t0) / count;
    }

    /* The peer's side: the message's bytes plus the 00 00 ff ff the sender stripped. */
    static unsigned char in[1 << 20];
    memcpy(in, compressed, clen);
    memcpy(in + clen, "\x00\x00\xff\xff", 4);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, -15) != Z_OK)
        return 1;
    for (int b = 0; b < batches; b++) {
        double t0 = now_us();
        for (int i = 0; i < count; i++) {
            inflateReset(&zs);
            zs.next_in = in;
            zs.avail_in = (uInt)(clen + 4);
            zs.next_out = out;
            zs.avail_out = sizeof(out);
            int rc = inflate(&zs, Z_SYNC_FLUSH);
            if ((rc != Z_OK && rc != Z_STREAM_END) || sizeof(out) - zs.avail_out != len ||
                memcmp(out, msg, len)) {
                fprintf(stderr, "deflate_cost: the message did not inflate back\n");
                return 1;
            }
        }
        inflate_us[b] = (now_us() - t0) / count;
    }
    inflateEnd(&zs);
    printf("message: %zu bytes, compressed to %zu\n", len, clen);
    report("compress (ps_deflate_message)", deflate_us, batches);
    report("inflate (raw, reset per message)", inflate_us, batches);
    free(compressed);
    ps_deflate_release_thread();
    return 0;
}
