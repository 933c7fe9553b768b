/*
 * deflate.h: the server's permessage-deflate compressor (RFC 7692), no context takeover.
 *
 * Each message is compressed on its own: a raw deflate stream (no zlib header), flushed
 * with Z_SYNC_FLUSH and stripped of the trailing 00 00 ff ff (RFC 7692 7.2.1), so any
 * peer that negotiated permessage-deflate with a window at least as large inflates it,
 * whatever it received before. That is what lets one compressed buffer serve every
 * subscriber with the same window: see ps_frame_deflated() in frame.h.
 *
 * Window bits: RFC 7692 lets a client bound the server's window with
 * server_max_window_bits=8..15. zlib's raw deflate refuses 8 (deflateInit2() answers
 * Z_STREAM_ERROR since zlib 1.2.9), so 8 compresses with 9. That output is still valid
 * for a 256-byte window: zlib never emits a match distance beyond the window size less
 * MIN_LOOKAHEAD (262 bytes), i.e. 250 bytes with a 512-byte window (zlib's deflate.h,
 * MAX_DIST). tests/c/test_pubsub.c inflates such output with an 8-bit window to hold zlib
 * to it.
 *
 * Streams: compressing needs a deflate state of about 256 KiB (15-bit window); allocating
 * and freeing one per message costs more than compressing a short message. Each thread
 * that compresses keeps one state per window size it has used, reset between messages,
 * and freed when the thread exits (or by ps_deflate_release_thread()).
 *
 * Threads: every function may be called from any thread.
 */
#ifndef PS_DEFLATE_H
#define PS_DEFLATE_H

#include <stddef.h>

#ifndef PS_MUST_CHECK
#define PS_MUST_CHECK __attribute__((warn_unused_result))
#endif

/* The window bits a client may name in server_max_window_bits (RFC 7692 7.1.2.1). */
#define PS_DEFLATE_MIN_WINDOW_BITS 8
#define PS_DEFLATE_MAX_WINDOW_BITS 15

/* The zlib compression level: zlib's default (6). On a 1 KB chat message it compresses
 * a little better than level 1 for about the same time, and a fan-out pays it once. */
#define PS_DEFLATE_LEVEL 6

/* The window zlib compresses with for a promise of window_bits (8..15): 8 becomes 9
 * (see above), other values are themselves. Returns 0 for a value outside 8..15. */
unsigned ps_deflate_effective_bits(unsigned window_bits);

/*
 * Compresses len bytes at in (NULL allowed when len is 0) as one permessage-deflate
 * message within a 2^window_bits window (8..15). Returns a malloc'd buffer whose first
 * `prefix` bytes are left for the caller (uninitialised) and whose compressed bytes follow
 * them, *out_len of them (at least 1: an empty message is the single byte 00, RFC 7692
 * 7.2.3.6); the buffer is shrunk to prefix + *out_len bytes when realloc() allows.
 * Returns NULL, *out_len untouched, when window_bits is out of range, len or prefix is
 * over 1 GiB (zlib counts in 32 bits), or memory runs out.
 */
PS_MUST_CHECK unsigned char *ps_deflate_message(const void *in, size_t len,
                                                unsigned window_bits, size_t prefix,
                                                size_t *out_len);

/* Frees the calling thread's compression states now rather than at its exit. The next
 * ps_deflate_message() on the thread makes them again. */
void ps_deflate_release_thread(void);

#endif /* PS_DEFLATE_H */
