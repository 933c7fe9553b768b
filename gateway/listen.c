/*
 * The listening socket. The server opens it itself (so that the bind error is ours to
 * word, and SO_REUSEPORT is ours to set on every libwebsockets version), lets
 * libwebsockets watch it as a raw file descriptor, and accepts on the I/O thread,
 * adopting each new socket as a raw connection of GW_CONN_PROTOCOL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "internal.h"

/* Accepts per readiness report: enough to drain a burst, few enough that connections
 * already open are not starved while thousands arrive. */
#define GW_ACCEPT_BATCH 128
/* Accepting pauses this long when the process runs out of descriptors. */
#define GW_ACCEPT_PAUSE_US (100 * 1000)

int gw__listen_open(const char *host, int port, int reuse_port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        sl = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*a6);
    } else {
        snprintf(err, errlen, "host '%s' is not an IPv4 or IPv6 address", host);
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create a socket: %s", strerror(e));
        return -e;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse_port)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss.ss_family == AF_INET6 && !IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr))
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        if (e == EADDRINUSE)
            snprintf(err, errlen, "address %s:%d is already in use", host, port);
        else
            snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

int gw__listen_adopt(gw_server *srv)
{
    lws_sock_file_fd_type fd;
    fd.filefd = srv->listen_fd;
    srv->listen_wsi = lws_adopt_descriptor_vhost(srv->vhost, LWS_ADOPT_RAW_FILE_DESC, fd,
                                                 GW_LISTEN_PROTOCOL, NULL);
    return srv->listen_wsi ? 0 : -1;
}

static void resume_accepting(lws_sorted_usec_list_t *sul)
{
    gw_server *srv = lws_container_of(sul, gw_server, accept_timer);
    if (srv->accept_paused && srv->listen_wsi) {
        srv->accept_paused = 0;
        lws_rx_flow_control(srv->listen_wsi, 1);
    }
}

static void accept_some(gw_server *srv)
{
    for (int i = 0; i < GW_ACCEPT_BATCH; i++) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop watching the socket for a moment instead of
                 * being woken for it thousands of times a second, and say so once. */
                if (!srv->accept_warned) {
                    lwsl_err("gateway: accept: %s; new connections wait until some close "
                             "(raise the open files limit, ulimit -n)\n", strerror(errno));
                    srv->accept_warned = 1;
                }
                srv->accept_paused = 1;
                lws_rx_flow_control(srv->listen_wsi, 0);
                lws_sul_schedule(srv->context, 0, &srv->accept_timer, resume_accepting,
                                 GW_ACCEPT_PAUSE_US);
            }
            return;
        }
        srv->accept_warned = 0;
        /* Written by this thread only: a relaxed add, for the stats per shard. */
        atomic_fetch_add_explicit(&srv->accepted, 1, memory_order_relaxed);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        lws_sock_file_fd_type sock;
        sock.sockfd = fd;
        /* On failure lws closes the descriptor itself. */
        (void)lws_adopt_descriptor_vhost(srv->vhost, LWS_ADOPT_SOCKET, sock, GW_CONN_PROTOCOL,
                                         NULL);
    }
}

int gw__listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    struct lws_context *ctx = lws_get_context(wsi);
    gw_server *srv = ctx ? lws_context_user(ctx) : NULL;
    if (!srv)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        accept_some(srv);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        srv->listen_wsi = NULL;
        return 0;
    default:
        return 0;
    }
}
