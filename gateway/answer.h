/*
 * Answers, from any thread to the I/O thread: a whole response, or a stream (its head,
 * chunks and end), each handed over as parts on one queue and one lws_cancel_service()
 * when the queue was empty. The I/O thread writes them in request order per connection.
 *
 * Ownership: a response buffer comes from gw_response_alloc() and is taken over by the
 * call that hands it over, in every case (freed at once when it cannot be sent).
 */
#ifndef GW_ANSWER_H
#define GW_ANSWER_H

#include <stddef.h>

#include "request.h"

struct gw_server;
typedef struct gw_pending gw_pending;

/*
 * Answers a request. response is the complete HTTP/1.1 message (status line, headers,
 * blank line, body) and is taken over by the server: it must come from
 * gw_response_alloc(). Safe from any thread; calling it twice for one request, or
 * after the client left, is harmless (the answer is dropped). Returns 0 when the answer
 * was queued, -ENOTCONN when the request was answered already.
 */
int gw_server_respond(struct gw_server *srv, gw_request *req, char *response, size_t len);

/*
 * Streaming answers (any thread, the one that answers the request):
 * gw_stream_start() sends the head (a complete status line and headers, without the
 * blank line's framing header: the caller writes "transfer-encoding: chunked" or
 * "connection: close" as gw_stream_chunked() says), taken over like a response. Then
 * gw_stream_write() queues a chunk (copied; framed here), gw_stream_end() finishes.
 * Each returns -ENOTCONN once the client has gone (or the request was answered).
 */
__attribute__((warn_unused_result))
int gw_stream_start(struct gw_server *srv, gw_request *req, char *head, size_t len);

/* Whether req's answer is a stream that has started and not ended. */
int gw_stream_started(const gw_request *req);

/* Whether the stream is chunked (HTTP/1.1) or close-delimited (HTTP/1.0). */
int gw_stream_chunked(const gw_request *req);

/* Returns 1 when the backlog is now over the high-water mark (wait before the next
 * write), 0, -ENOTCONN, -ENOMEM. */
int gw_stream_write(struct gw_server *srv, gw_request *req, const void *data, size_t len);

/* Finishes the stream (the last chunk). Returns 0 or -ENOTCONN. */
int gw_stream_end(struct gw_server *srv, gw_request *req);

/* Whether the client of this streamed request has gone. */
int gw_stream_gone(const gw_request *req);

/* Blocks until the stream's backlog is under the high-water mark; returns 1, or 0 when
 * the client has gone or the server stops. Call without the GIL. */
int gw_stream_wait(struct gw_server *srv, gw_request *req);

/* For a writer on an event loop: returns 0 when there is nothing to wait for (the
 * backlog is under the mark, or the client has gone), or 1 when waiter has been stored
 * and the stream will appear in gw_server_take_writable() once it may go on. */
int gw_stream_want_writable(struct gw_server *srv, gw_request *req, void *waiter);

/* Takes back the waiter stored on req's stream (NULL when none). */
void *gw_stream_take_waiter(gw_request *req);

/* Takes the list of streams whose writers may go on; for each, gw_pending_take_waiter()
 * then gw_pending_release(). */
gw_pending *gw_server_take_writable(struct gw_server *srv);
gw_pending *gw_pending_next_writable(gw_pending *p);
void *gw_pending_take_waiter(gw_pending *p);
void gw_pending_release(gw_pending *p);

/* Returns a buffer for gw_server_respond with room for len bytes (and the headroom that
 * libwebsockets needs in front, which the caller does not see), or NULL. */
char *gw_response_alloc(size_t len);

/* Frees a buffer from gw_response_alloc that was not handed to gw_server_respond. */
void gw_response_free(char *response);

/* Frees a request taken from a queue. If it was never answered, it is answered 500. */
void gw_request_free(struct gw_server *srv, gw_request *req);

/* The shard (--workers M) whose connection a request came from, or NULL once it has been
 * answered: its answers and stream calls go to that shard. */
struct gw_server *gw_request_shard(const gw_request *req);


#endif
