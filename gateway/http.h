/*
 * HTTP/1.1 connections on raw libwebsockets sockets (I/O thread only).
 *
 * Every accepted socket starts here. Its bytes go through the parser adapter
 * (httpparse.h); each complete request is answered at once by C (const routes, 404, 405,
 * the limits' answers) or handed to Python through the server's round queues. Answers
 * are owed in request order: each request that waits for Python holds a slot (a
 * gw_pending) in its connection's list, and what is ready at the front of that list is
 * copied into one output buffer and written with as few send() calls as the socket
 * allows. A WebSocket handshake leaves this module for ws.c on the same socket.
 *
 * Ownership: a connection's state is allocated when lws adopts the socket and freed when
 * lws reports it closed; nothing outside the I/O thread ever sees it. A gw_pending is
 * shared with the thread that answers it and refcounted (see server.c).
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <libwebsockets.h>

struct gw_server;

/* The lws protocol accepted sockets are adopted into (HTTP first, WebSocket after an
 * upgrade; the connection's opaque user data says which it is now). */
#define GW_CONN_PROTOCOL "robyn-conn"

/* That protocol's callback. */
int gw_conn_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);

/* Takes every answer, chunk and stream end that handler threads posted, and writes what
 * each connection can now send (EVENT_WAIT_CANCELLED). */
void gw_http_take_answers(struct gw_server *srv);

/* Starts the deadline sweep (head, body, keep-alive, lingering close). After the context
 * exists, on the I/O thread or before it runs. */
void gw_http_start_sweep(struct gw_server *srv);

/* Closes every idle HTTP connection (graceful stop: nothing is lost). */
void gw_http_close_idle(struct gw_server *srv);

#endif
