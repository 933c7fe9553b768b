/*
 * wsproto.h: the server side of the WebSocket protocol (RFC 6455, RFC 7692), as a pure
 * state machine over bytes. No sockets, no libwebsockets, no Python: the caller feeds the
 * bytes it read from a connection and sends the bytes this module builds.
 *
 * Receiving: one gw_wsp per connection turns client bytes into callbacks (whole messages,
 * pings, pongs, the peer's close) and enforces every RFC 6455 rule a server must: masking,
 * RSV bits, opcodes, control frame shape, fragmentation order, 64-bit lengths, UTF-8 of
 * text messages (incrementally, at the first bad byte), close codes and reasons, and a
 * message size limit checked on frame headers before their payload arrives. With
 * permessage-deflate (negotiated with no context takeover both ways, the windows the
 * client asked for) it inflates compressed messages and limits their decompressed size as
 * it inflates.
 *
 * Decisions worth knowing:
 *  - Non-minimal length encodings (a 5-byte payload sent with a 16- or 64-bit length) are
 *    accepted; RFC 6455 asks senders to use the minimal form, but rejecting them buys no
 *    safety and browsers never send them (Node's ws and Python's websockets accept them too).
 *  - Close code 1003 is never produced: the parser hands both text and binary messages on.
 *  - 1011 (internal error) is returned when memory runs out.
 *  - In a compressed message, bytes after a final (BFINAL) deflate block are ignored, as
 *    zlib-based peers do (RFC 7692 7.2.3.4's example has one); a stream cut short is 1007.
 *  - max_message is counted on the wire (payload bytes of all frames so far plus the
 *    announced length of the next) and, for compressed messages, also on the decompressed
 *    bytes.
 *
 * Sending: gw_wsp_header() and gw_wsp_close_payload() build server frames (never masked).
 * The server's messages are compressed by pubsub/deflate.c, once per fan-out;
 * gw_wsp_deflate() is a peer's compressor, kept here so that this file stands alone (the
 * fuzzer builds it without the rest) and tests have a second, independent one. Handshake:
 * gw_wsp_accept_key(), gw_wsp_parse_deflate_offer() and gw_wsp_deflate_response().
 *
 * Threads: a gw_wsp is used by one thread at a time; the other functions are reentrant.
 */
#ifndef GW_WSPROTO_H
#define GW_WSPROTO_H

#include <stddef.h>
#include <stdint.h>

#ifndef GW_WSP_MUST_CHECK
#define GW_WSP_MUST_CHECK __attribute__((warn_unused_result))
#endif

/* RFC 6455 opcodes. */
enum {
    GW_WSP_OP_CONT = 0x0,
    GW_WSP_OP_TEXT = 0x1,
    GW_WSP_OP_BINARY = 0x2,
    GW_WSP_OP_CLOSE = 0x8,
    GW_WSP_OP_PING = 0x9,
    GW_WSP_OP_PONG = 0xA
};

/* Control frame payloads are at most this long. */
#define GW_WSP_MAX_CONTROL 125

/* What a permessage-deflate negotiation settled (gw_wsp_parse_deflate_offer()). */
typedef struct gw_wsp_deflate_params {
    unsigned char server_bits;      /* 8..15: the window our compressor stays within */
    unsigned char client_bits;      /* 8..15: the window the client compresses with */
    unsigned char name_server_bits; /* the answer says server_max_window_bits=server_bits */
    unsigned char name_client_bits; /* the answer says client_max_window_bits=client_bits */
} gw_wsp_deflate_params;

/* Room for gw_wsp_deflate_response()'s answer and its NUL. */
#define GW_WSP_DEFLATE_RESPONSE_MAX 160

/*
 * One connection's receive state. Embed it anywhere; initialise it with gw_wsp_init() and
 * release it with gw_wsp_free(). The fields are private to wsproto.c (tests read them).
 * Buffers hang off it only while they are in use, so that an idle connection holds none:
 * the message being reassembled (grown as payload arrives, never past max_message + 1
 * bytes) until it is handed on, a 125-byte control payload buffer for one control frame,
 * and a zlib inflate state for one compressed message (no context takeover means nothing
 * carries over between messages). All are freed when parsing stops, and by gw_wsp_free().
 */
typedef struct gw_wsp {
    unsigned char *msg;      /* the message being reassembled (decompressed), or NULL */
    size_t msg_len;          /* bytes in msg */
    size_t msg_cap;          /* bytes allocated for msg */
    uint64_t msg_wire;       /* payload bytes of the open message, current frame included */
    uint64_t remaining;      /* payload bytes of the current frame still to come */
    size_t max_message;      /* the limit, in bytes */
    unsigned char *ctl;      /* GW_WSP_MAX_CONTROL bytes for control payloads, or NULL */
    void *inflater;          /* a z_stream, or NULL */
    const char *fail_reason; /* static text for fail */
    int fail;                /* the sticky result once parsing stopped */
    unsigned char hdr[14];   /* the frame header being read */
    unsigned char hdr_len;   /* bytes of it read */
    unsigned char hdr_need;  /* its full length, once the second byte is known */
    unsigned char mask[4];
    unsigned char mask_pos;  /* index into mask of the next payload byte */
    unsigned char state;     /* header, payload, closed or failed */
    unsigned char opcode;    /* of the current frame */
    unsigned char fin;       /* of the current frame */
    unsigned char msg_op;    /* GW_WSP_OP_TEXT or _BINARY while a message is open, else 0 */
    unsigned char msg_deflate; /* the open message is compressed */
    unsigned char deflate;   /* 0, or permessage-deflate's client window bits (8..15) */
    unsigned char server_bits; /* 0, or permessage-deflate's server window bits (8..15) */
    unsigned char ctl_len;   /* bytes in ctl */
    unsigned char z_end;     /* the open message's deflate stream has ended */
    unsigned char u8_need, u8_lo, u8_hi; /* UTF-8 validator: continuation bytes due, range */
} gw_wsp;

typedef struct gw_wsp_callbacks {
    /* A complete message (reassembled across fragments, decompressed). data is malloc'd,
     * NUL-terminated one byte past len (data[len] == 0), and owned by the callee from the
     * call on: it must free() it, whatever it returns. Return 0, or nonzero to stop parsing
     * (the connection is going away). When NULL the parser frees the message itself. */
    int (*on_message)(void *ctx, int binary, unsigned char *data, size_t len);
    /* A ping or pong; data (never NULL, len <= 125) is borrowed for the call only. Return 0,
     * or nonzero to stop parsing. May be NULL. Answering pings is the caller's job. */
    int (*on_ping)(void *ctx, const unsigned char *data, size_t len);
    int (*on_pong)(void *ctx, const unsigned char *data, size_t len);
    /* The peer's close frame, already validated: code (1005 when it carried none) and
     * reason (valid UTF-8, not NUL-terminated, borrowed for the call). Every byte after it is
     * ignored. The return value is handled as above. May be NULL. */
    int (*on_close)(void *ctx, int code, const char *reason, size_t reason_len);
} gw_wsp_callbacks;

/* Prepares p for a new connection. Messages longer than max_message bytes (on the wire,
 * and decompressed) are refused with 1009; pass SIZE_MAX for no limit (clamped to
 * SIZE_MAX - 1). deflate is what the handshake negotiated (a window outside 8..15 counts
 * as 15), or NULL without permessage-deflate: compressed messages are inflated with a
 * window of 2^client_bits bytes (zlib allocates that much), so a client that refers further
 * back than it agreed to may fail with 1007 (zlib checks a distance against the output it
 * kept from earlier calls; within one call it may reach further). Allocates nothing. */
void gw_wsp_init_deflate(gw_wsp *p, size_t max_message, const gw_wsp_deflate_params *deflate);

/* gw_wsp_init_deflate() with 15-bit windows both ways when deflate is nonzero, else none. */
void gw_wsp_init(gw_wsp *p, size_t max_message, int deflate);

/* The server window bits (8..15) p's connection negotiated, or 0 without permessage-deflate:
 * what its outgoing messages are compressed for (ps_frame_deflated()). */
unsigned gw_wsp_server_window(const gw_wsp *p);

/* Frees p's buffers and zlib state; the struct itself is the caller's. p may then be
 * initialised again. */
void gw_wsp_free(gw_wsp *p);

/*
 * Feeds bytes received from the client, in any split (one byte at a time works), calling
 * cb's callbacks (on the calling thread, before returning) for each complete message,
 * ping, pong and close. in is only read during the call.
 *
 * Returns:
 *   0   all of in was consumed (after the peer's close frame, bytes are ignored);
 *   > 0 the peer broke the protocol: a WebSocket close code (1002 protocol error, 1007
 *       invalid UTF-8 or invalid compressed data, 1009 message too big, 1011 out of
 *       memory), with *reason set to a short static explanation (fits a close frame).
 *       The caller sends a close with that code and stops feeding;
 *   -1  a callback returned nonzero (*reason is a static "stopped by callback").
 * Nothing is read past the point of failure, and no callback is called after it. The
 * result is sticky: feeding again returns it again without reading. reason may be NULL.
 */
GW_WSP_MUST_CHECK
int gw_wsp_feed(gw_wsp *p, const unsigned char *in, size_t len, const gw_wsp_callbacks *cb,
                void *ctx, const char **reason);

/* Writes the header of a server frame (FIN set, the given opcode, RSV1 when rsv1 is
 * nonzero, i.e. a compressed message, no mask) for a payload of len bytes into out, using
 * the minimal length encoding. Returns the header length: 2, 4 or 10. */
size_t gw_wsp_header(unsigned char out[10], unsigned opcode, size_t len, int rsv1);

/* Compresses one message as a permessage-deflate peer with no context takeover does: a
 * fresh raw deflate stream (15-bit window), flushed with Z_SYNC_FLUSH, the trailing
 * 00 00 ff ff removed (RFC 7692 7.2.1). Returns a malloc'd buffer the caller frees, with its
 * length in *out_len (at least 1, even for an empty message), or NULL when out of memory.
 * in may be NULL when len is 0. The server itself compresses with ps_frame_deflated()
 * (pubsub/frame.h), which reuses its zlib state; both give the same bytes. */
GW_WSP_MUST_CHECK
unsigned char *gw_wsp_deflate(const unsigned char *in, size_t len, size_t *out_len);

/* Builds a close frame payload in out: the 2-byte code, then reason (NUL-terminated, valid
 * UTF-8, may be NULL) cut to 123 bytes at a UTF-8 character boundary. Returns its length
 * (2..125), or 0, an empty payload, when code is outside 1000..4999 (send a close without
 * a code). The caller must not send 1005, 1006 or 1015. */
size_t gw_wsp_close_payload(unsigned char out[125], int code, const char *reason);

/* Computes the Sec-WebSocket-Accept value for a Sec-WebSocket-Key header value of len
 * bytes: base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28 characters and a
 * NUL, into out. Spaces and tabs around the key are ignored. Returns 0, or -1 (out
 * untouched) when the key is not 22 base64 characters followed by "==" (a 16-byte value;
 * like Node's ws, the unused low bits of the last character are not checked). */
GW_WSP_MUST_CHECK
int gw_wsp_accept_key(const char *client_key, size_t len, char out[29]);

/*
 * Reads a Sec-WebSocket-Extensions header value (len bytes; several header lines joined
 * with ","). Returns 1 when one of its offers is permessage-deflate in a form the server
 * accepts, and fills *out (may be NULL) with the first such offer's terms (offers are in
 * the client's order of preference, RFC 7692 section 5); else 0, *out untouched.
 *
 * An offer is accepted when each of its parameters is given at most once and is one of
 * (RFC 7692 section 7.1; values may be quoted, decimal without leading zeros):
 *   server_no_context_takeover, client_no_context_takeover   without a value;
 *   server_max_window_bits=8..15   our compressor stays within that window (zlib cannot
 *       use 8 and compresses with 9, which still fits 8: pubsub/deflate.h), answered back;
 *   client_max_window_bits   without a value (the client then uses up to 15), or 8..15:
 *       9..15 is answered back and inflated with that window; 8 is left out of the answer
 *       and inflated with 15 (zlib clients cannot compress with 8, and some refuse an
 *       answer that names it).
 * Any other offer is declined and the next one considered (RFC 7692 section 5: an unknown
 * parameter, a repeated one, a missing or invalid value). A header that does not parse as
 * RFC 6455 extension syntax returns 0 whatever it offered.
 */
GW_WSP_MUST_CHECK
int gw_wsp_parse_deflate_offer(const char *ext_header, size_t len, gw_wsp_deflate_params *out);

/* Writes the Sec-WebSocket-Extensions value accepting the offer dp describes into out:
 * "permessage-deflate; server_no_context_takeover; client_no_context_takeover", then
 * server_max_window_bits and client_max_window_bits when dp names them. Returns its
 * length (< GW_WSP_DEFLATE_RESPONSE_MAX). */
size_t gw_wsp_deflate_response(const gw_wsp_deflate_params *dp,
                               char out[GW_WSP_DEFLATE_RESPONSE_MAX]);

/* Internal, for tests: SHA-1 of len bytes at data into out. */
void gw__wsp_sha1(const void *data, size_t len, unsigned char out[20]);

#endif
