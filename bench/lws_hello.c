/*
 * lws_hello: the smallest libwebsockets HTTP server answering every request
 * with "Hello, world!" (text/plain, 13 bytes, keep-alive), written as one
 * precomputed response per request. It is the raw limit
 * of the bench: what libwebsockets itself serves on this machine, to which a
 * const route of this project is compared.
 *
 *   cc -O2 -o bench/build/lws_hello bench/lws_hello.c $(pkg-config --cflags --libs libwebsockets)
 *   bench/build/lws_hello [port]       (listens on 127.0.0.1, default 8080)
 *
 * SIGINT/SIGTERM stop it.
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* The whole response, the same bytes as this project's const route answers: one
 * lws_write() per request, straight from LWS_CALLBACK_HTTP, no WRITEABLE round trip. */
static const char response[] = "HTTP/1.1 200 OK\r\n"
                               "content-type: text/plain\r\n"
                               "content-length: 13\r\n"
                               "\r\n"
                               "Hello, world!";
static volatile sig_atomic_t interrupted;

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    unsigned char buf[LWS_PRE + sizeof(response)];

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        memcpy(buf + LWS_PRE, response, sizeof(response) - 1);
        if (lws_write(wsi, buf + LWS_PRE, sizeof(response) - 1, LWS_WRITE_HTTP_FINAL) < 0)
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static struct lws_protocols protocols[] = {
    {"http", callback_http, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct lws_context *context;
    int n = 0;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

    memset(&info, 0, sizeof(info));
    info.port = argc > 1 ? atoi(argv[1]) : 8080;
    info.iface = "127.0.0.1";
    info.protocols = protocols;

    context = lws_create_context(&info);
    if (!context) {
        lwsl_err("lws_hello: lws_create_context failed\n");
        return 1;
    }
    lwsl_user("lws_hello: listening on 127.0.0.1:%d\n", info.port);
    while (n >= 0 && !interrupted)
        n = lws_service(context, 0);
    lws_context_destroy(context);
    return 0;
}
