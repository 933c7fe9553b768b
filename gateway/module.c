/*
 * robyn._gateway: the bridge between the C server and Python.
 *
 * Server wraps a gw_server: routes are registered on it at decoration time (so a bad
 * pattern raises ValueError at once), then start() binds, starts the I/O thread and the
 * sync worker threads. Each request reaches Python as a Job, a thin view over the C
 * request whose attributes are built only when read; the route's Python callable gets
 * the Job and answers it with Job.respond().
 *
 * Sync routes run on the worker threads here: a worker blocks (without the GIL) until a
 * request is queued, then takes the GIL once and keeps it while requests keep coming,
 * so that a burst costs one GIL acquisition. A handler that blocks releases the GIL
 * (time.sleep does), letting the other workers take the queue.
 * Async routes are taken by the asyncio loop thread: it watches async_fd() and calls
 * run_async(), which hands every queued request to its route's callable.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <lws_config.h>

#include "frame.h"
#include "history.h"
#include "router.h"
#include "server.h"
#include "static.h"
#include "ws.h"
#include "lwslog.h"
#include "metrics.h"

#include <libwebsockets.h>
#include "bus_redis.h"
#include "presence_link.h"

typedef struct {
    PyTypeObject *server_type;
    PyTypeObject *job_type;
    PyTypeObject *conn_type;
} module_state;

struct ServerObject;
typedef struct {
    struct ServerObject *server;
    int index;
} worker_arg;

typedef struct ServerObject {
    PyObject_HEAD
    gw_server *srv;
    PyObject *logger;   /* logging.getLogger("robyn"), for errors no caller can see */
    PyTypeObject *job_type;
    PyTypeObject *conn_type;
    PyInterpreterState *interp;
    pthread_t *workers;
    worker_arg *worker_args;
    int nworkers;
    int started;
    Py_ssize_t nroutes;
} ServerObject;

typedef struct {
    PyObject_HEAD
    ServerObject *server; /* strong reference */
    gw_server *shard;     /* the shard that took the request: its answers go there */
    gw_request *req;
    PyObject *owner; /* when set, req is a handshake's copy for this Job (the Connection's,
                      * unpacked): it is freed here unanswered, and cannot be answered */
    PyObject *on_writable; /* a stream writer's callback while it waits (see on_writable) */
} JobObject;

/* A WebSocket connection as Python sees it: a reference to the C handle. */
typedef struct {
    PyObject_HEAD
    ServerObject *server; /* strong reference */
    gw_server *shard;     /* the shard the connection lives on: its commands go there */
    gw_ws_handle *h;      /* one reference */
    PyObject *user;       /* the Python layer's object for this connection */
} ConnObject;

/* ---- Job ------------------------------------------------------------------------- */

/* Returns a new reference to a str decoded from UTF-8, with undecodable bytes replaced. */
static PyObject *decode(const char *s, size_t len)
{
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "replace");
}

/*
 * Logs the current exception through the "robyn" logger and clears it. Unlike
 * PyErr_Print(), nothing of it is kept in sys.last_*, where its frames (and every Job or
 * Connection they hold) would stay alive until the next error.
 */
static void report_error(ServerObject *server, const char *where)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type)
        return;
    PyErr_NormalizeException(&type, &value, &tb);
    if (value && tb)
        PyException_SetTraceback(value, tb);
    PyObject *info = PyTuple_Pack(3, type, value ? value : Py_None, tb ? tb : Py_None);
    PyObject *kwargs = info ? Py_BuildValue("{s:O}", "exc_info", info) : NULL;
    PyObject *args = Py_BuildValue("(ss)", "%s raised", where);
    PyObject *log = server && server->logger ? PyObject_GetAttrString(server->logger, "error")
                                             : NULL;
    PyObject *res = log && args && kwargs ? PyObject_Call(log, args, kwargs) : NULL;
    if (!res) {
        PyErr_Clear();
        PySys_WriteStderr("robyn: %s raised an exception that could not be logged\n", where);
    }
    Py_XDECREF(res);
    Py_XDECREF(log);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_XDECREF(info);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* Returns a new reference: a list of (name, value) tuples for pairs [from, from + n). */
static PyObject *pairs_to_list(const gw_request *req, uint32_t from, uint32_t n)
{
    PyObject *list = PyList_New(n);
    if (!list)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        const gw_pair *p = &req->pairs[from + i];
        PyObject *name = decode(req->buf + p->name_off, p->name_len);
        PyObject *value = name ? decode(req->buf + p->value_off, p->value_len) : NULL;
        PyObject *t = value ? PyTuple_Pack(2, name, value) : NULL;
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (!t) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, t);
    }
    return list;
}

/* Returns a new Job over req, which it frees (answering it first, unless an owner is set
 * afterwards). */
static PyObject *Job_new_for(ServerObject *server, gw_request *req)
{
    JobObject *job = PyObject_GC_New(JobObject, server->job_type);
    if (!job)
        return NULL;
    job->server = (ServerObject *)Py_NewRef(server);
    gw_server *shard = req ? gw_request_shard(req) : NULL;
    job->shard = shard ? shard : server->srv;
    job->req = req;
    job->owner = NULL;
    job->on_writable = NULL;
    PyObject_GC_Track(job);
    return (PyObject *)job;
}

/* A handshake's Job holds its Connection, whose Python object may hold the Job (through
 * a Request): the collector must see that edge. */
static int Job_traverse(JobObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->server);
    Py_VISIT(self->owner);
    Py_VISIT(self->on_writable);
    return 0;
}

static int Job_clear(JobObject *self)
{
    if (self->req && !self->owner && self->on_writable)
        (void)gw_stream_take_waiter(self->req);
    Py_CLEAR(self->on_writable);
    /* The owner stays until deallocation: it says how req is freed. */
    return 0;
}

static void Job_dealloc(JobObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Job_clear(self);
    if (self->req && !self->owner) {
        /* Answers 500 if the handler path never answered (or ends a stream that was
         * left unfinished), and frees the request. */
        gw_request_free(self->shard, self->req);
    } else if (self->req) {
        gw_request_release(self->req);
    }
    self->req = NULL;
    Py_CLEAR(self->owner);
    Py_CLEAR(self->server);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

static PyObject *Job_get_method(JobObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(gw_method_name(self->req->method));
}

static PyObject *Job_get_path(JobObject *self, void *closure)
{
    (void)closure;
    return decode(self->req->buf + self->req->path_off, self->req->path_len);
}

static PyObject *Job_get_host(JobObject *self, void *closure)
{
    (void)closure;
    if (!self->req->host_len)
        return PyUnicode_FromStringAndSize("", 0);
    return decode(self->req->buf + self->req->host_off, self->req->host_len);
}

static PyObject *Job_get_ip(JobObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(self->req->ip);
}

static PyObject *Job_get_body(JobObject *self, void *closure)
{
    (void)closure;
    return PyBytes_FromStringAndSize(self->req->buf + self->req->body_off,
                                     (Py_ssize_t)self->req->body_len);
}

static PyObject *Job_get_query(JobObject *self, void *closure)
{
    (void)closure;
    return pairs_to_list(self->req, self->req->query_at, self->req->nquery);
}

static PyObject *Job_get_headers(JobObject *self, void *closure)
{
    (void)closure;
    return pairs_to_list(self->req, self->req->header_at, self->req->nheaders);
}

static PyObject *Job_get_path_params(JobObject *self, void *closure)
{
    (void)closure;
    const gw_request *req = self->req;
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    for (uint32_t i = 0; i < req->nparams; i++) {
        const gw_pair *p = &req->pairs[req->param_at + i];
        PyObject *name = decode(req->buf + p->name_off, p->name_len);
        PyObject *value = name ? decode(req->buf + p->value_off, p->value_len) : NULL;
        int rc = value ? PyDict_SetItem(d, name, value) : -1;
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (rc < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

static PyObject *Job_get_answered(JobObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->req->pending == NULL);
}

/* A growable byte buffer for building a response. */
typedef struct {
    char *data;
    size_t len, cap;
} outbuf;

static int out_reserve(outbuf *o, size_t more)
{
    if (o->len + more <= o->cap)
        return 0;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + more)
        cap *= 2;
    char *fresh = gw_response_alloc(cap);
    if (!fresh) {
        PyErr_NoMemory();
        return -1;
    }
    if (o->data) {
        memcpy(fresh, o->data, o->len);
        gw_response_free(o->data);
    }
    o->data = fresh;
    o->cap = cap;
    return 0;
}

static int out_put(outbuf *o, const char *s, size_t n)
{
    if (out_reserve(o, n))
        return -1;
    memcpy(o->data + o->len, s, n);
    o->len += n;
    return 0;
}

/* Gets bytes from a str (UTF-8) or a bytes-like object; *keep receives a new reference
 * (or NULL) that keeps the bytes alive. Returns 0, or -1 with TypeError set. */
static int as_bytes(PyObject *obj, const char **s, Py_ssize_t *n, PyObject **keep,
                    const char *what)
{
    *keep = NULL;
    if (PyUnicode_Check(obj)) {
        *s = PyUnicode_AsUTF8AndSize(obj, n);
        return *s ? 0 : -1;
    }
    if (PyBytes_Check(obj)) {
        *s = PyBytes_AS_STRING(obj);
        *n = PyBytes_GET_SIZE(obj);
        return 0;
    }
    if (PyByteArray_Check(obj) || PyMemoryView_Check(obj)) {
        PyObject *b = PyBytes_FromObject(obj);
        if (!b)
            return -1;
        *keep = b;
        *s = PyBytes_AS_STRING(b);
        *n = PyBytes_GET_SIZE(b);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "%s must be str or bytes, not %.100s", what,
                 Py_TYPE(obj)->tp_name);
    return -1;
}

static int check_header_text(const char *s, Py_ssize_t n, const char *what)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') {
            PyErr_Format(PyExc_ValueError, "response header %s contains a line break or NUL",
                         what);
            return -1;
        }
    }
    return 0;
}

/*
 * Builds a complete HTTP/1.1 response into a gw_response_alloc() buffer. headers is a
 * sequence of (name, value) pairs or None. head_only leaves the body out (HEAD).
 * Returns the buffer and its length in *len, or NULL with an exception set.
 */
static char *build_answer(int status, PyObject *headers, PyObject *body, int keep_alive,
                          int head_only, int framing, size_t *len);

/* How build_response frames what follows the head. */
enum { FRAME_LENGTH = 0, FRAME_CHUNKED = 1, FRAME_CLOSE = 2 };

static char *build_response(int status, PyObject *headers, PyObject *body, int keep_alive,
                            int head_only, size_t *len)
{
    return build_answer(status, headers, body, keep_alive, head_only, FRAME_LENGTH, len);
}

/* keep_alive: 0 closes after the answer, 1 keeps (HTTP/1.1's default), 2 keeps and says so
 * (an HTTP/1.0 client that asked for keep-alive). */
static const char *connection_header(int keep_alive)
{
    return keep_alive == 2 ? "connection: keep-alive\r\n"
           : keep_alive   ? ""
                          : "connection: close\r\n";
}

/* Builds a complete answer (FRAME_LENGTH: with Content-Length and the body) or a
 * stream's head (FRAME_CHUNKED, FRAME_CLOSE: body is ignored). */
static char *build_answer(int status, PyObject *headers, PyObject *body, int keep_alive,
                          int head_only, int framing, size_t *len)
{
    outbuf o = {NULL, 0, 0};
    const char *b = "";
    Py_ssize_t blen = 0;
    PyObject *body_keep = NULL, *seq = NULL;
    if (status < 100 || status > 999) {
        PyErr_Format(PyExc_ValueError, "status code %d is not a valid HTTP status", status);
        return NULL;
    }
    if (framing == FRAME_LENGTH && as_bytes(body, &b, &blen, &body_keep, "response body"))
        return NULL;
    char line[128];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, gw_http_reason(status));
    if (out_reserve(&o, (size_t)n + (size_t)blen + 128) || out_put(&o, line, (size_t)n))
        goto error;
    if (headers && headers != Py_None) {
        seq = PySequence_Fast(headers, "response headers must be a sequence of pairs");
        if (!seq)
            goto error;
        Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *pair = PySequence_Fast_GET_ITEM(seq, i);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                PyErr_SetString(PyExc_TypeError, "each response header must be a (name, value) tuple");
                goto error;
            }
            const char *hn, *hv;
            Py_ssize_t hnl, hvl;
            PyObject *kn, *kv;
            if (as_bytes(PyTuple_GET_ITEM(pair, 0), &hn, &hnl, &kn, "header name"))
                goto error;
            if (as_bytes(PyTuple_GET_ITEM(pair, 1), &hv, &hvl, &kv, "header value")) {
                Py_XDECREF(kn);
                goto error;
            }
            /* Content-Length is always computed here, and a stream's framing is ours: a
             * handler's own would conflict. */
            int skip = (hnl == 14 && !strncasecmp(hn, "content-length", 14)) ||
                       (framing && hnl == 17 && !strncasecmp(hn, "transfer-encoding", 17));
            int rc = check_header_text(hn, hnl, "name") || check_header_text(hv, hvl, "value");
            if (!rc && !skip)
                rc = out_put(&o, hn, (size_t)hnl) || out_put(&o, ": ", 2) ||
                     out_put(&o, hv, (size_t)hvl) || out_put(&o, "\r\n", 2);
            Py_XDECREF(kn);
            Py_XDECREF(kv);
            if (rc)
                goto error;
        }
    }
    /* 1xx, 204 and 304 answers have no body and no Content-Length (RFC 9110 8.6). */
    int bodiless = status < 200 || status == 204 || status == 304;
    if (framing == FRAME_CHUNKED)
        n = snprintf(line, sizeof(line), "transfer-encoding: chunked\r\n%s\r\n",
                     keep_alive ? "" : "connection: close\r\n");
    else if (framing == FRAME_CLOSE)
        n = snprintf(line, sizeof(line), "connection: close\r\n\r\n");
    else if (bodiless)
        n = snprintf(line, sizeof(line), "%s\r\n", connection_header(keep_alive));
    else
        n = snprintf(line, sizeof(line), "content-length: %zd\r\n%s\r\n", blen,
                     connection_header(keep_alive));
    if (out_put(&o, line, (size_t)n))
        goto error;
    if (!framing && !head_only && !bodiless && out_put(&o, b, (size_t)blen))
        goto error;
    Py_XDECREF(seq);
    Py_XDECREF(body_keep);
    *len = o.len;
    return o.data;
error:
    Py_XDECREF(seq);
    Py_XDECREF(body_keep);
    gw_response_free(o.data);
    return NULL;
}

PyDoc_STRVAR(Job_respond_doc,
"respond(status, headers, body)\n--\n\n"
"Answers the request: status is an int, headers a sequence of (name, value) pairs or\n"
"None, body str or bytes. Content-Length is added here. Returns True when the answer\n"
"was queued, False when the request had been answered already.");

static PyObject *Job_respond(JobObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "respond() takes exactly 3 arguments");
        return NULL;
    }
    long status = PyLong_AsLong(args[0]);
    if (status == -1 && PyErr_Occurred())
        return NULL;
    if (status < 100 || status > 999) {
        PyErr_Format(PyExc_ValueError, "status code %ld is not a valid HTTP status", status);
        return NULL;
    }
    gw_request *req = self->req;
    if (!req->pending)
        Py_RETURN_FALSE;
    size_t len;
    /* 2: an HTTP/1.0 client that asked for keep-alive is told it is kept. */
    int keep = req->keep_alive ? (req->version == 10 ? 2 : 1) : 0;
    char *out = build_response((int)status, args[1], args[2], keep,
                               req->method == GW_METHOD_HEAD, &len);
    if (!out)
        return NULL;
    if (gw_server_respond(self->shard, req, out, len))
        Py_RETURN_FALSE;
    Py_RETURN_TRUE;
}

/* Raises the exception a stream call answers -ENOTCONN with. */
static PyObject *client_gone_error(void)
{
    PyErr_SetString(PyExc_ConnectionResetError, "client disconnected");
    return NULL;
}

PyDoc_STRVAR(Job_start_stream_doc,
"start_stream(status, headers) -> bool\n--\n\n"
"Sends the head of a streamed answer (chunked on HTTP/1.1, close-delimited on 1.0).\n"
"False when the request was answered already.");

static PyObject *Job_start_stream(JobObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "start_stream() takes a status and headers");
        return NULL;
    }
    long status = PyLong_AsLong(args[0]);
    if (status == -1 && PyErr_Occurred())
        return NULL;
    gw_request *req = self->req;
    if (self->owner || !req->pending)
        Py_RETURN_FALSE;
    size_t len;
    int chunked = gw_stream_chunked(req);
    char *out = build_answer((int)status, args[1], NULL, chunked ? req->keep_alive : 0,
                             req->method == GW_METHOD_HEAD,
                             chunked ? FRAME_CHUNKED : FRAME_CLOSE, &len);
    if (!out)
        return NULL;
    if (gw_stream_start(self->shard, req, out, len))
        Py_RETURN_FALSE;
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(Job_write_doc,
"write(data) -> bool\n--\n\n"
"Queues one chunk of a streamed answer (str is sent as UTF-8). Returns True when the\n"
"unsent backlog is over the high-water mark: wait before producing more. Raises\n"
"ConnectionResetError once the client has gone.");

static PyObject *Job_write(JobObject *self, PyObject *data)
{
    const char *s;
    Py_ssize_t n;
    PyObject *keep;
    if (as_bytes(data, &s, &n, &keep, "a streamed chunk"))
        return NULL;
    gw_request *req = self->req;
    if (self->owner || !gw_stream_started(req)) {
        Py_XDECREF(keep);
        PyErr_SetString(PyExc_RuntimeError, "write() needs a stream started by start_stream()");
        return NULL;
    }
    int rc = gw_stream_write(self->shard, req, s, (size_t)n);
    Py_XDECREF(keep);
    if (rc == -ENOTCONN)
        return client_gone_error();
    if (rc == -ENOMEM)
        return PyErr_NoMemory();
    return PyBool_FromLong(rc);
}

static PyObject *Job_wait_writable(JobObject *self, PyObject *unused)
{
    (void)unused;
    if (self->owner)
        Py_RETURN_FALSE;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = gw_stream_wait(self->shard, self->req);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(Job_on_writable_doc,
"on_writable(callback) -> bool\n--\n\n"
"For a writer on the event loop: False when there is nothing to wait for (the backlog\n"
"is under the mark, or the client has gone); True when callback() will be called once,\n"
"on the loop thread, when the stream may go on.");

static PyObject *Job_on_writable(JobObject *self, PyObject *callback)
{
    if (!PyCallable_Check(callback)) {
        PyErr_SetString(PyExc_TypeError, "on_writable() takes a callable");
        return NULL;
    }
    if (self->owner || !self->req->pending)
        Py_RETURN_FALSE;
    if (!gw_stream_want_writable(self->shard, self->req, self))
        Py_RETURN_FALSE;
    Py_XSETREF(self->on_writable, Py_NewRef(callback));
    Py_RETURN_TRUE;
}

static PyObject *Job_end_stream(JobObject *self, PyObject *unused)
{
    (void)unused;
    if (!self->owner && gw_stream_started(self->req)) {
        if (self->on_writable) {
            (void)gw_stream_take_waiter(self->req);
            Py_CLEAR(self->on_writable);
        }
        (void)gw_stream_end(self->shard, self->req);
    }
    Py_RETURN_NONE;
}

static PyObject *Job_get_client_gone(JobObject *self, void *closure)
{
    (void)closure;
    if (self->owner)
        Py_RETURN_FALSE;
    return PyBool_FromLong(gw_stream_gone(self->req));
}

static PyGetSetDef Job_getset[] = {
    {"method", (getter)Job_get_method, NULL, "the request method, e.g. 'GET'", NULL},
    {"path", (getter)Job_get_path, NULL, "the decoded path", NULL},
    {"host", (getter)Job_get_host, NULL, "the Host header, or ''", NULL},
    {"ip", (getter)Job_get_ip, NULL, "the client's address", NULL},
    {"body", (getter)Job_get_body, NULL, "the body, as bytes", NULL},
    {"query", (getter)Job_get_query, NULL, "decoded query pairs, in order", NULL},
    {"headers", (getter)Job_get_headers, NULL, "(name, value) pairs, names lower-case", NULL},
    {"path_params", (getter)Job_get_path_params, NULL, "dict of path parameters", NULL},
    {"answered", (getter)Job_get_answered, NULL, "whether respond() has been called", NULL},
    {"client_gone", (getter)Job_get_client_gone, NULL,
     "whether the client of a streamed answer has gone", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Job_methods[] = {
    {"respond", (PyCFunction)(void (*)(void))Job_respond, METH_FASTCALL, Job_respond_doc},
    {"start_stream", (PyCFunction)(void (*)(void))Job_start_stream, METH_FASTCALL,
     Job_start_stream_doc},
    {"write", (PyCFunction)Job_write, METH_O, Job_write_doc},
    {"wait_writable", (PyCFunction)Job_wait_writable, METH_NOARGS,
     "Blocks (without the GIL) until the stream may go on; False when the client left."},
    {"on_writable", (PyCFunction)Job_on_writable, METH_O, Job_on_writable_doc},
    {"end_stream", (PyCFunction)Job_end_stream, METH_NOARGS, "Finishes a streamed answer."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Job_slots[] = {
    {Py_tp_dealloc, Job_dealloc},
    {Py_tp_traverse, Job_traverse},
    {Py_tp_clear, Job_clear},
    {Py_tp_getset, Job_getset},
    {Py_tp_methods, Job_methods},
    {Py_tp_doc, "One HTTP request handed to Python by the C server."},
    {0, NULL},
};

static PyType_Spec Job_spec = {
    .name = "robyn._gateway.Job",
    .basicsize = sizeof(JobObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Job_slots,
};


/* ---- Connection (WebSocket) --------------------------------------------------------- */

/* Returns a new Connection for h (taking a new reference to h), or NULL. */
static PyObject *Conn_new_for(ServerObject *server, gw_server *shard, gw_ws_handle *h)
{
    ConnObject *c = PyObject_GC_New(ConnObject, server->conn_type);
    if (!c)
        return NULL;
    c->server = (ServerObject *)Py_NewRef(server);
    c->shard = shard;
    c->h = gw_ws_handle_ref(h);
    c->user = NULL;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

static int Conn_traverse(ConnObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->server);
    Py_VISIT(self->user);
    return 0;
}

static int Conn_clear(ConnObject *self)
{
    Py_CLEAR(self->user);
    return 0;
}

static void Conn_dealloc(ConnObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Conn_clear(self);
    gw_ws_handle_unref(self->h);
    Py_XDECREF(self->server);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

/* Gets a topic's bytes from a str. Returns 0, or -1 with TypeError set. */
static int topic_arg(PyObject *obj, const char **s, Py_ssize_t *n)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "topic must be str, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    *s = PyUnicode_AsUTF8AndSize(obj, n);
    if (!*s)
        return -1;
    if (*n == 0 || (*s)[0] == '\x01') {
        PyErr_SetString(PyExc_ValueError, "topic must be a non-empty str not starting with \\x01");
        return -1;
    }
    return 0;
}

/* Gets a message's bytes and opcode: str is a text message, bytes-like a binary one. */
static int message_arg(PyObject *obj, const char **s, Py_ssize_t *n, unsigned *opcode,
                       PyObject **keep)
{
    *keep = NULL;
    if (PyUnicode_Check(obj)) {
        *opcode = PS_OP_TEXT;
        *s = PyUnicode_AsUTF8AndSize(obj, n);
        return *s ? 0 : -1;
    }
    if (PyBytes_Check(obj) || PyByteArray_Check(obj) || PyMemoryView_Check(obj)) {
        *opcode = PS_OP_BINARY;
        return as_bytes(obj, s, n, keep, "message");
    }
    PyErr_Format(PyExc_TypeError, "a message must be str or bytes, not %.100s",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

static PyObject *not_connected(void)
{
    PyErr_SetString(PyExc_ConnectionError, "the WebSocket connection is closed");
    return NULL;
}

PyDoc_STRVAR(Conn_send_doc, "send(message) -> bool\n--\n\n"
"Queues a message (str: text, bytes: binary). Returns True when the send backlog is\n"
"now over the high-water mark: the caller should wait for the drained event.\n"
"Raises ConnectionError when the connection is closed.");

static PyObject *Conn_send(ConnObject *self, PyObject *msg)
{
    const char *s;
    Py_ssize_t n;
    unsigned op;
    PyObject *keep;
    if (message_arg(msg, &s, &n, &op, &keep))
        return NULL;
    int rc = gw_ws_send(self->shard, self->h, op, s, (size_t)n);
    Py_XDECREF(keep);
    if (rc == -ENOTCONN)
        return not_connected();
    if (rc < 0)
        return PyErr_NoMemory();
    return PyBool_FromLong(rc == 1);
}

static PyObject *Conn_wait_drain(ConnObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(gw_ws_wait_drain(self->shard, self->h));
}

static PyObject *Conn_close(ConnObject *self, PyObject *args)
{
    int code = 1000;
    const char *reason = "";
    Py_ssize_t rlen = 0;
    if (!PyArg_ParseTuple(args, "|is#:close", &code, &reason, &rlen))
        return NULL;
    if (code != 1000 && (code < 3000 || code > 4999) &&
        !(code >= 1001 && code <= 1014 && code != 1004 && code != 1005 && code != 1006)) {
        PyErr_Format(PyExc_ValueError, "%d is not a close code a server may send", code);
        return NULL;
    }
    if (rlen > 123) {
        PyErr_SetString(PyExc_ValueError, "a close reason is at most 123 bytes of UTF-8");
        return NULL;
    }
    return PyBool_FromLong(gw_ws_close(self->shard, self->h, code, reason) == 0);
}

static PyObject *Conn_subscribe(ConnObject *self, PyObject *topic)
{
    const char *s;
    Py_ssize_t n;
    if (topic_arg(topic, &s, &n))
        return NULL;
    int rc = gw_ws_subscribe(self->shard, self->h, s, (size_t)n);
    if (rc == -ENOTCONN)
        return not_connected();
    if (rc < 0)
        return PyErr_NoMemory();
    return PyBool_FromLong(rc == 1);
}

static PyObject *Conn_unsubscribe(ConnObject *self, PyObject *topic)
{
    const char *s;
    Py_ssize_t n;
    if (topic_arg(topic, &s, &n))
        return NULL;
    int rc = gw_ws_unsubscribe(self->shard, self->h, s, (size_t)n);
    if (rc == -ENOTCONN)
        Py_RETURN_FALSE;
    if (rc < 0)
        return PyErr_NoMemory();
    return PyBool_FromLong(rc == 1);
}

static PyObject *publish_common(ServerObject *server, PyObject *topic, const char *tname,
                                Py_ssize_t tlen, PyObject *msg, gw_ws_handle *exclude,
                                gw_server *exclude_shard)
{
    const char *s;
    Py_ssize_t n;
    unsigned op;
    PyObject *keep;
    if (topic && topic_arg(topic, &tname, &tlen))
        return NULL;
    if (message_arg(msg, &s, &n, &op, &keep))
        return NULL;
    long count = gw_ws_publish_all(server->srv, tname, (size_t)tlen, op, s, (size_t)n, exclude,
                                   exclude_shard);
    Py_XDECREF(keep);
    if (count < 0)
        return PyErr_NoMemory();
    return PyLong_FromLong(count);
}

static PyObject *Conn_publish(ConnObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "publish() takes a topic and a message");
        return NULL;
    }
    return publish_common(self->server, args[0], NULL, 0, args[1], self->h, self->shard);
}

static PyObject *Conn_broadcast(ConnObject *self, PyObject *msg)
{
    char topic[64];
    int tl = snprintf(topic, sizeof(topic), GW_WS_ROUTE_TOPIC_FMT, (const void *)self->h->route);
    return publish_common(self->server, NULL, topic, tl, msg, NULL, NULL);
}

/* ---- topics with history (docs/realtime.md) ---------------------------------------- */

static PyObject *no_history(const char *topic)
{
    PyErr_Format(PyExc_ValueError, "topic '%s' keeps no history: give it one with "
                 "app.topic(pattern, history=N) before the app starts", topic);
    return NULL;
}

static PyObject *history_publish_common(ServerObject *server, PyObject *const *args,
                                        Py_ssize_t nargs, gw_ws_handle *exclude)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "publish_history() takes a topic and the envelope's rest");
        return NULL;
    }
    const char *topic, *rest;
    Py_ssize_t tlen, rlen;
    if (topic_arg(args[0], &topic, &tlen))
        return NULL;
    if (!PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "the envelope's rest must be str");
        return NULL;
    }
    rest = PyUnicode_AsUTF8AndSize(args[1], &rlen);
    if (!rest)
        return NULL;
    gw_ws_position pos;
    int rc = gw_ws_publish_history(server->srv, topic, (size_t)tlen, rest, (size_t)rlen,
                                   exclude, &pos);
    if (rc == -ENOENT)
        return no_history(topic);
    if (rc == -EXDEV) {
        PyErr_Format(PyExc_ValueError, "websocket.publish('%s', ...) cannot leave the sender "
                     "out on a topic with history with the Redis bus (every node delivers "
                     "what Redis numbered, the sender's included): use app.publish() "
                     "(docs/redis.md)", topic);
        return NULL;
    }
    if (rc < 0)
        return PyErr_NoMemory();
    if (!pos.epoch[0]) /* with the Redis bus: Redis numbers it later */
        return Py_BuildValue("(lOO)", pos.reached, Py_None, Py_None);
    return Py_BuildValue("(lsK)", pos.reached, pos.epoch, (unsigned long long)pos.offset);
}

/* Raises one of the errors of history kept in Redis (docs/redis.md) as
 * robyn.realtime.HistoryUnavailable; always NULL. */
static PyObject *redis_history_error(int rc, const char *topic)
{
    const char *why;
    switch (rc) {
    case -EHOSTDOWN:
        why = "the Redis bus is not connected";
        break;
    case -ETIMEDOUT:
        why = "Redis did not answer within 5 s";
        break;
    case -EPROTO:
        why = "Redis answered something the history script does not write";
        break;
    case -ENOEXEC:
        why = "Redis refused the history scripts (SCRIPT LOAD; is scripting disabled?)";
        break;
    case -ENOBUFS:
        why = "more than 10000 live messages came while the history was read; the "
              "connection is closed with 1013 (try again later)";
        break;
    default:
        return PyErr_NoMemory();
    }
    PyObject *mod = PyImport_ImportModule("robyn.realtime");
    PyObject *cls = mod ? PyObject_GetAttrString(mod, "HistoryUnavailable") : NULL;
    Py_XDECREF(mod);
    if (!cls)
        return NULL;
    PyErr_Format(cls, "the history of '%s' cannot be read: %s", topic, why);
    Py_DECREF(cls);
    return NULL;
}

static PyObject *Conn_publish_history(ConnObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return history_publish_common(self->server, args, nargs, self->h);
}

PyDoc_STRVAR(Conn_subscribe_since_doc,
"subscribe_since(topic, epoch, since, last) -> (replayed, epoch, offset)\n--\n\n"
"Joins a topic with history after replaying the messages after since of epoch (epoch\n"
"None: the last `last` held), as one I/O-thread command. replayed is -1 when they are\n"
"not all held any more (then epoch and offset say where the topic is).");

static PyObject *Conn_subscribe_since(ConnObject *self, PyObject *args)
{
    PyObject *topic_obj;
    const char *epoch;
    unsigned long long since;
    Py_ssize_t last;
    if (!PyArg_ParseTuple(args, "OzKn:subscribe_since", &topic_obj, &epoch, &since, &last))
        return NULL;
    const char *topic;
    Py_ssize_t tlen;
    if (topic_arg(topic_obj, &topic, &tlen))
        return NULL;
    if (last < 0) {
        PyErr_SetString(PyExc_ValueError, "last must be >= 0");
        return NULL;
    }
    gw_ws_position pos;
    int rc;
    /* With the Redis bus this waits for Redis (a round trip or two). */
    Py_BEGIN_ALLOW_THREADS
    rc = gw_ws_subscribe_since(self->shard, self->h, topic, (size_t)tlen, epoch,
                               (uint64_t)since, (size_t)last, &pos);
    Py_END_ALLOW_THREADS
    switch (rc) {
    case 0:
        return Py_BuildValue("(nsK)", (Py_ssize_t)pos.replayed, pos.epoch,
                             (unsigned long long)pos.offset);
    case -ESTALE:
        return Py_BuildValue("(nsK)", (Py_ssize_t)-1, pos.epoch, (unsigned long long)pos.offset);
    case -ENOENT:
        return no_history(topic);
    case -EALREADY:
        PyErr_Format(PyExc_ValueError, "this connection is already subscribed to '%s': "
                     "a subscribe with since= or last= must be its first", topic);
        return NULL;
    case -ENOTCONN:
        return not_connected();
    case -EHOSTDOWN:
    case -ETIMEDOUT:
    case -EPROTO:
    case -ENOBUFS:
    case -ENOEXEC:
        return redis_history_error(rc, topic);
    default:
        return PyErr_NoMemory();
    }
}

static PyObject *Conn_accept(ConnObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(gw_ws_accept(self->shard, self->h) == 0);
}

PyDoc_STRVAR(Conn_refuse_doc, "refuse(status, headers, body) -> bool\n--\n\n"
"Answers the pending upgrade with this HTTP response instead of 101, and closes.");

static PyObject *Conn_refuse(ConnObject *self, PyObject *args)
{
    int status;
    PyObject *headers, *body;
    if (!PyArg_ParseTuple(args, "iOO:refuse", &status, &headers, &body))
        return NULL;
    size_t len;
    char *out = build_response(status, headers, body, 0, 0, &len);
    if (!out)
        return NULL;
    return PyBool_FromLong(gw_ws_refuse(self->shard, self->h, out, len) == 0);
}

static PyObject *Conn_consumed(ConnObject *self, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    gw_ws_consumed(self->shard, self->h, (int)n);
    Py_RETURN_NONE;
}

static PyObject *Conn_get_id(ConnObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->h->id);
}

static PyObject *Conn_get_closed(ConnObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(atomic_load(&self->h->gone));
}

static PyObject *Conn_get_request(ConnObject *self, void *closure)
{
    (void)closure;
    /* The connection keeps its handshake packed (request.h): each read gets a copy. */
    gw_request *req = gw_request_unpack(self->h->handshake);
    if (!req)
        return PyErr_NoMemory();
    JobObject *job = (JobObject *)Job_new_for(self->server, req);
    if (!job) {
        gw_request_release(req);
        return NULL;
    }
    job->owner = Py_NewRef(self);
    return (PyObject *)job;
}

static PyObject *Conn_get_user(ConnObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->user ? self->user : Py_None);
}

static int Conn_set_user(ConnObject *self, PyObject *value, void *closure)
{
    (void)closure;
    Py_XSETREF(self->user, Py_XNewRef(value));
    return 0;
}

static PyMethodDef Conn_methods[] = {
    {"send", (PyCFunction)Conn_send, METH_O, Conn_send_doc},
    {"wait_drain", (PyCFunction)Conn_wait_drain, METH_NOARGS,
     "After send() returned True: True when a drained event will come, False when the "
     "backlog has already fallen."},
    {"close", (PyCFunction)Conn_close, METH_VARARGS, "close(code=1000, reason='')"},
    {"subscribe", (PyCFunction)Conn_subscribe, METH_O, "subscribe(topic) -> bool"},
    {"unsubscribe", (PyCFunction)Conn_unsubscribe, METH_O, "unsubscribe(topic) -> bool"},
    {"publish", (PyCFunction)(void (*)(void))Conn_publish, METH_FASTCALL,
     "publish(topic, message) -> int: to every subscriber but this connection."},
    {"publish_history", (PyCFunction)(void (*)(void))Conn_publish_history, METH_FASTCALL,
     "publish_history(topic, rest) -> (reached, epoch, offset): to a topic with history, "
     "every subscriber but this connection."},
    {"subscribe_since", (PyCFunction)Conn_subscribe_since, METH_VARARGS,
     Conn_subscribe_since_doc},
    {"broadcast", (PyCFunction)Conn_broadcast, METH_O,
     "broadcast(message) -> int: to every connection of this endpoint."},
    {"consumed", (PyCFunction)Conn_consumed, METH_O, "consumed(n): n messages were taken."},
    {"accept", (PyCFunction)Conn_accept, METH_NOARGS,
     "accept() -> bool: answers a pending upgrade with 101."},
    {"refuse", (PyCFunction)Conn_refuse, METH_VARARGS, Conn_refuse_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Conn_getset[] = {
    {"id", (getter)Conn_get_id, NULL, "the connection's id, unique in this process", NULL},
    {"closed", (getter)Conn_get_closed, NULL, "whether the connection has closed", NULL},
    {"request", (getter)Conn_get_request, NULL, "the handshake request, as a Job", NULL},
    {"user", (getter)Conn_get_user, (setter)Conn_set_user, "the Python layer's object", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Conn_slots[] = {
    {Py_tp_dealloc, Conn_dealloc},
    {Py_tp_traverse, Conn_traverse},
    {Py_tp_clear, Conn_clear},
    {Py_tp_methods, Conn_methods},
    {Py_tp_getset, Conn_getset},
    {Py_tp_doc, "One WebSocket connection, as the C server holds it."},
    {0, NULL},
};

static PyType_Spec Conn_spec = {
    .name = "robyn._gateway.Connection",
    .basicsize = sizeof(ConnObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Conn_slots,
};

/* Hands one WebSocket event to its route's callable: handler(kind, connection, payload). */
static void run_ws_event(ServerObject *self, gw_server *shard, gw_ws_event *ev)
{
    gw_ws_handle *h = ev->conn;
    PyObject *handler = (PyObject *)h->route->handler;
    PyObject *conn = NULL, *payload = NULL, *res = NULL;
    if ((ev->type == GW_WS_OPEN || ev->type == GW_WS_HANDSHAKE) && !h->user) {
        conn = Conn_new_for(self, shard, h);
        if (!conn)
            goto error;
        h->user = Py_NewRef(conn); /* the handle's reference, dropped at CLOSE */
    } else {
        if (!h->user)
            return; /* opened while Python could not take it; nothing to tell */
        conn = Py_NewRef((PyObject *)h->user);
    }
    switch (ev->type) {
    case GW_WS_MESSAGE:
        payload = ev->binary ? PyBytes_FromStringAndSize((const char *)ev->data, (Py_ssize_t)ev->len)
                             : PyUnicode_DecodeUTF8((const char *)ev->data, (Py_ssize_t)ev->len,
                                                    "replace");
        break;
    case GW_WS_CLOSE:
        payload = Py_BuildValue("(is)", ev->code, ev->reason);
        break;
    default:
        payload = Py_NewRef(Py_None);
    }
    if (!payload)
        goto error;
    /* The kinds are small ints, cached by CPython: no object is made for them. */
    PyObject *kind = PyLong_FromLong(ev->type);
    if (!kind)
        goto error;
    PyObject *argv[3] = {kind, conn, payload};
    res = PyObject_Vectorcall(handler, argv, 3, NULL);
    Py_DECREF(kind);
    if (!res)
        goto error;
    goto done;
error:
    report_error(self, "a WebSocket handler");
done:
    if (ev->type == GW_WS_CLOSE && h->user) {
        PyObject *u = (PyObject *)h->user;
        h->user = NULL;
        Py_DECREF(u);
    }
    Py_XDECREF(res);
    Py_XDECREF(payload);
    Py_XDECREF(conn);
}

/* ---- running handlers -------------------------------------------------------------- */

/* Calls the route's callable with a Job for req. Holds the GIL. Never raises: an
 * exception that escapes the callable is printed and the request answered 500 (by the
 * Job's deallocation). */
static void run_request(ServerObject *self, gw_request *req)
{
    PyObject *handler = (PyObject *)req->route->handler;
    PyObject *job = Job_new_for(self, req);
    if (!job) {
        report_error(self, "the request bridge");
        gw_request_free(gw_request_shard(req) ? gw_request_shard(req) : self->srv, req);
        return;
    }
    PyObject *res = PyObject_CallOneArg(handler, job);
    if (!res)
        report_error(self, "a route handler");
    Py_XDECREF(res);
    Py_DECREF(job);
}

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    ServerObject *self = wa->server;
    int me = wa->index;
    char name[16];
    snprintf(name, sizeof(name), "robyn-sync%d", me);
    pthread_setname_np(pthread_self(), name);
    PyThreadState *ts = PyThreadState_New(self->interp);
    gw_server_worker_started(self->srv);
    for (;;) {
        gw_request *req = gw_server_next_sync(self->srv, me);
        if (!req)
            break;
        PyEval_RestoreThread(ts);
        do {
            run_request(self, req);
            req = gw_server_try_next_sync(self->srv, me);
        } while (req);
        PyEval_SaveThread();
    }
    PyEval_RestoreThread(ts);
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();
    return NULL;
}

/* ---- Server ----------------------------------------------------------------------- */

static PyObject *Server_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "Server() takes no arguments");
        return NULL;
    }
    module_state *st = PyType_GetModuleState(type);
    if (!st)
        return NULL;
    ServerObject *self = (ServerObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->srv = gw_server_new();
    if (!self->srv) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    PyObject *logging = PyImport_ImportModule("logging");
    self->logger = logging ? PyObject_CallMethod(logging, "getLogger", "s", "robyn") : NULL;
    Py_XDECREF(logging);
    if (!self->logger) {
        Py_DECREF(self);
        return NULL;
    }
    self->job_type = (PyTypeObject *)Py_NewRef(st->job_type);
    self->conn_type = (PyTypeObject *)Py_NewRef(st->conn_type);
    self->interp = PyInterpreterState_Get();
    return (PyObject *)self;
}

static void stop_workers(ServerObject *self)
{
    if (!self->srv)
        return;
    Py_BEGIN_ALLOW_THREADS
    gw_server_stop(self->srv);
    for (int i = 0; i < self->nworkers; i++)
        pthread_join(self->workers[i], NULL);
    Py_END_ALLOW_THREADS
    PyMem_Free(self->workers);
    PyMem_Free(self->worker_args);
    self->workers = NULL;
    self->worker_args = NULL;
    self->nworkers = 0;
}

/* Each route holds a strong reference to its handler (see Server_add_route). */
struct visit_routes {
    visitproc visit;
    void *arg;
    int rc;
};

static void visit_route(gw_route *route, void *arg)
{
    struct visit_routes *v = arg;
    if (!v->rc && route->handler)
        v->rc = v->visit((PyObject *)route->handler, v->arg);
}

static void clear_route(gw_route *route, void *arg)
{
    (void)arg;
    PyObject *handler = route->handler;
    route->handler = NULL;
    Py_XDECREF(handler);
}

static int Server_traverse(ServerObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->logger);
    if (self->srv) {
        struct visit_routes v = {visit, arg, 0};
        gw_server_each_route(self->srv, visit_route, &v);
        if (v.rc)
            return v.rc;
    }
    Py_VISIT(self->job_type);
    Py_VISIT(self->conn_type);
    return 0;
}

static int Server_clear(ServerObject *self)
{
    if (self->srv && !self->started)
        gw_server_each_route(self->srv, clear_route, NULL);
    Py_CLEAR(self->logger);
    Py_CLEAR(self->job_type);
    Py_CLEAR(self->conn_type);
    return 0;
}

static void Server_dealloc(ServerObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    stop_workers(self);
    self->started = 0;
    Server_clear(self);
    gw_server_free(self->srv);
    self->srv = NULL;
    tp->tp_free(self);
    Py_DECREF(tp);
}

PyDoc_STRVAR(Server_add_route_doc,
"add_route(method, pattern, kind, handler) -> int\n--\n\n"
"Registers a route. method is 'GET', 'POST', ... or 'WS'; kind is 0 (sync), 1 (async)\n"
"or 2 (const); handler(job) is called for each request (not for const routes).\n"
"Raises ValueError naming the pattern when it is malformed or conflicts with another.\n"
"Returns the route's index, for set_const().");

static PyObject *Server_add_route(ServerObject *self, PyObject *args)
{
    const char *method_name, *pattern;
    int kind;
    PyObject *handler;
    if (!PyArg_ParseTuple(args, "ssiO:add_route", &method_name, &pattern, &kind, &handler))
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "routes cannot be added once the server has started");
        return NULL;
    }
    int method = !strcmp(method_name, "WS") ? GW_METHOD_WS
                                             : gw_method_from_name(method_name, strlen(method_name));
    if (method < 0) {
        PyErr_Format(PyExc_ValueError, "unknown HTTP method '%s' for route '%s'", method_name,
                     pattern);
        return NULL;
    }
    if (kind < GW_ROUTE_SYNC || kind > GW_ROUTE_CONST) {
        PyErr_Format(PyExc_ValueError, "unknown route kind %d", kind);
        return NULL;
    }
    if (kind != GW_ROUTE_CONST && !PyCallable_Check(handler)) {
        PyErr_SetString(PyExc_TypeError, "handler must be callable");
        return NULL;
    }
    char err[512] = "";
    int code = 0;
    gw_route *route = gw_server_add_route(self->srv, method, pattern, kind, handler, err,
                                          sizeof(err), &code);
    if (!route) {
        if (code == -ENOMEM)
            return PyErr_NoMemory();
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_INCREF(handler); /* the route's own reference, dropped in Server_clear */
    self->nroutes++;
    return PyLong_FromSsize_t(self->nroutes - 1);
}

struct find_route {
    Py_ssize_t want, at;
    gw_route *found;
};

static void find_route_cb(gw_route *route, void *arg)
{
    struct find_route *f = arg;
    if (f->at++ == f->want)
        f->found = route;
}

PyDoc_STRVAR(Server_set_const_doc,
"set_const(index, status, headers, body)\n--\n\n"
"Stores the complete response of a const route; the I/O thread serves it from then on.");

static PyObject *Server_set_const(ServerObject *self, PyObject *args)
{
    Py_ssize_t index;
    int status;
    PyObject *headers, *body;
    if (!PyArg_ParseTuple(args, "niOO:set_const", &index, &status, &headers, &body))
        return NULL;
    struct find_route f = {index, 0, NULL};
    gw_server_each_route(self->srv, find_route_cb, &f);
    if (!f.found || f.found->kind != GW_ROUTE_CONST) {
        PyErr_Format(PyExc_ValueError, "route %zd is not a const route", index);
        return NULL;
    }
    size_t len, head_len;
    char *full = build_response(status, headers, body, 1, 0, &len);
    if (!full)
        return NULL;
    char *head = build_response(status, headers, body, 1, 1, &head_len);
    if (!head) {
        gw_response_free(full);
        return NULL;
    }
    gw_response_free(head);
    int rc = gw_server_set_const(self->srv, f.found, full, len, head_len);
    gw_response_free(full);
    if (rc)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ---- core: requests no route takes (issue 9) ------------------------------------------ */

PyDoc_STRVAR(Server_set_fallback_doc,
"set_fallback(kind, handler) -> int\n--\n\n"
"Hands every request of a known method that no route matches (404 / 405 otherwise) to\n"
"handler(job), with no path parameters; kind is 0 (sync) or 1 (async). At most once, after\n"
"the routes, before start(). Returns the index it takes among the routes.");

static PyObject *Server_set_fallback(ServerObject *self, PyObject *args)
{
    int kind;
    PyObject *handler;
    if (!PyArg_ParseTuple(args, "iO:set_fallback", &kind, &handler))
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "the fallback cannot be set once the server has started");
        return NULL;
    }
    if (kind != GW_ROUTE_SYNC && kind != GW_ROUTE_ASYNC) {
        PyErr_Format(PyExc_ValueError, "the fallback's kind must be sync or async, not %d", kind);
        return NULL;
    }
    if (!PyCallable_Check(handler)) {
        PyErr_SetString(PyExc_TypeError, "handler must be callable");
        return NULL;
    }
    int code = 0;
    if (!gw_server_set_fallback(self->srv, kind, handler, &code)) {
        if (code == -EEXIST) {
            PyErr_SetString(PyExc_RuntimeError, "the fallback is set already");
            return NULL;
        }
        return PyErr_NoMemory();
    }
    Py_INCREF(handler); /* the route's own reference, dropped in Server_clear */
    self->nroutes++;    /* it is listed among the routes: later indices stay right */
    return PyLong_FromSsize_t(self->nroutes - 1);
}

PyDoc_STRVAR(Server_enable_metrics_doc,
"enable_metrics(path, worker=-1) -> int\n--\n\n"
"Makes the I/O thread answer GET and HEAD of path with the Prometheus text exposition\n"
"(docs/realtime.md); every sample gets worker=\"N\" when worker >= 0. Once, after the\n"
"routes, before start(). ValueError when a route has the path or the path is malformed,\n"
"RuntimeError when metrics are on already. Returns the index it takes among the routes.");

static PyObject *Server_enable_metrics(ServerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", "worker", NULL};
    const char *path;
    int worker = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|i:enable_metrics", kwlist, &path, &worker))
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "metrics cannot be enabled once the server has started");
        return NULL;
    }
    char err[512] = "";
    int code = 0;
    /* The route holds a reference like every other (Server_clear drops it). */
    if (!gw_server_enable_metrics(self->srv, path, worker, Py_None, err, sizeof(err), &code)) {
        if (code == -ENOMEM)
            return PyErr_NoMemory();
        PyErr_SetString(code == -EEXIST && !strncmp(err, "metrics are already", 19)
                            ? PyExc_RuntimeError : PyExc_ValueError, err);
        return NULL;
    }
    Py_INCREF(Py_None);
    self->nroutes++;
    return PyLong_FromSsize_t(self->nroutes - 1);
}

/* ---- end of core's block ---------------------------------------------------------------- */

PyDoc_STRVAR(Server_start_doc,
"start(host, port, max_body=1000000, max_header=16384, workers=8, keepalive_timeout=20,\n"
"      max_header_count=100, max_url=8192, header_timeout=10, body_timeout=10,\n"
"      max_pipeline=64, stream_high_water=65536, reuse_port=False, access_log=False,\n"
"      io_threads=1)\n--\n\n"
"Binds, starts the I/O threads (io_threads: --workers, each with its own listening socket)\n"
"and the sync worker threads, and returns at once.\n"
"The limits are those of docs/http.md. Raises OSError with a clear message when the\n"
"address cannot be used, ValueError for a limit out of range.");

static PyObject *Server_start(ServerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"host", "port", "max_body", "max_header", "workers",
                             "keepalive_timeout", "max_header_count", "max_url",
                             "header_timeout", "body_timeout", "max_pipeline",
                             "stream_high_water", "reuse_port", "access_log", "io_threads",
                             NULL};
    const char *host;
    int port, workers = 8, reuse_port = 0, access_log = 0, io_threads = 1;
    Py_ssize_t max_body = 1000000, max_header = 16384, max_header_count = 100, max_url = 8192;
    Py_ssize_t stream_high_water = 65536;
    unsigned int keepalive = 20, header_timeout = 10, body_timeout = 10, max_pipeline = 64;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "si|nniInnIIInppi:start", kwlist, &host,
                                     &port, &max_body, &max_header, &workers, &keepalive,
                                     &max_header_count, &max_url, &header_timeout,
                                     &body_timeout, &max_pipeline, &stream_high_water,
                                     &reuse_port, &access_log, &io_threads))
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "the server is already running");
        return NULL;
    }
    if (workers < 1 || workers > 1024) {
        PyErr_Format(PyExc_ValueError, "workers must be between 1 and 1024, not %d", workers);
        return NULL;
    }
    if (io_threads < 1 || io_threads > GW_MAX_SHARDS ||
        gw_server_set_shards(self->srv, (unsigned)io_threads)) {
        PyErr_Format(PyExc_ValueError, "io_threads must be between 1 and %d, not %d",
                     GW_MAX_SHARDS, io_threads);
        return NULL;
    }
    if (max_body < 0 || max_header < 256 || max_header > 1048576) {
        PyErr_SetString(PyExc_ValueError,
                        "max_body must be >= 0 and max_header between 256 and 1048576");
        return NULL;
    }
    if (max_header_count < 1 || max_url < 16 || max_pipeline < 1 || stream_high_water < 1) {
        PyErr_SetString(PyExc_ValueError, "max_header_count, max_url, max_pipeline and "
                                          "stream_high_water must be positive");
        return NULL;
    }
    gw_config cfg = {
        .host = host, .port = port, .max_body = (size_t)max_body,
        .max_header = (size_t)max_header, .max_header_count = (size_t)max_header_count,
        .max_url = (size_t)max_url, .keepalive_timeout = keepalive,
        .header_timeout = header_timeout, .body_timeout = body_timeout,
        .max_pipeline = max_pipeline, .stream_high_water = (size_t)stream_high_water,
        .reuse_port = reuse_port, .access_log = access_log,
    };
    char err[256] = "";
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = gw_server_start(self->srv, &cfg, err, sizeof(err));
    Py_END_ALLOW_THREADS
    if (rc) {
        errno = -rc;
        PyObject *exc_args = Py_BuildValue("(is)", -rc, err);
        if (exc_args) {
            PyErr_SetObject(PyExc_OSError, exc_args);
            Py_DECREF(exc_args);
        }
        return NULL;
    }
    self->workers = PyMem_Calloc((size_t)workers, sizeof(pthread_t));
    self->worker_args = PyMem_Calloc((size_t)workers, sizeof(worker_arg));
    if (!self->workers || !self->worker_args) {
        stop_workers(self);
        return PyErr_NoMemory();
    }
    for (int i = 0; i < workers; i++) {
        self->worker_args[i].server = self;
        self->worker_args[i].index = i;
        if (pthread_create(&self->workers[i], NULL, worker_main, &self->worker_args[i])) {
            stop_workers(self);
            PyErr_SetString(PyExc_RuntimeError, "cannot start the worker threads");
            return NULL;
        }
        self->nworkers++;
    }
    self->started = 1;
    Py_RETURN_NONE;
}


static PyObject *Server_set_ws_options(ServerObject *self, PyObject *args)
{
    Py_ssize_t index;
    int policy, compress, precheck;
    Py_ssize_t threshold;
    PyObject *origins;
    if (!PyArg_ParseTuple(args, "niiniO:set_ws_options", &index, &policy, &compress, &threshold,
                          &precheck, &origins))
        return NULL;
    if (threshold < 0) {
        PyErr_SetString(PyExc_ValueError, "compression_threshold must not be negative");
        return NULL;
    }
    struct find_route f = {index, 0, NULL};
    gw_server_each_route(self->srv, find_route_cb, &f);
    if (!f.found || f.found->method != GW_METHOD_WS) {
        PyErr_Format(PyExc_ValueError, "route %zd is not a WebSocket route", index);
        return NULL;
    }
    const char *list = NULL;
    Py_ssize_t list_len = 0;
    PyObject *joined = NULL;
    if (origins != Py_None) {
        /* NUL-separated, as the C side wants them. */
        PyObject *sep = PyUnicode_FromStringAndSize("\0", 1);
        joined = sep ? PyUnicode_Join(sep, origins) : NULL;
        Py_XDECREF(sep);
        if (!joined)
            return NULL;
        list = PyUnicode_AsUTF8AndSize(joined, &list_len);
        if (!list) {
            Py_DECREF(joined);
            return NULL;
        }
    }
    int rc = gw_route_set_ws_options(f.found, policy, compress, (size_t)threshold, precheck, list,
                                     (size_t)list_len);
    Py_XDECREF(joined);
    if (rc)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *Server_configure_ws(ServerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_message", "high_water", "send_limit", "max_connections",
                             "ping_interval", "ping_timeout", "inbox_limit", NULL};
    Py_ssize_t max_message, high_water, send_limit, max_connections;
    unsigned int ping_interval, ping_timeout;
    int inbox_limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nnnnIIi:configure_ws", kwlist, &max_message,
                                     &high_water, &send_limit, &max_connections, &ping_interval,
                                     &ping_timeout, &inbox_limit))
        return NULL;
    if (max_message < 1 || high_water < 1 || send_limit < high_water || max_connections < 1 ||
        inbox_limit < 2 || ping_interval > 65535 || ping_timeout > 65535) {
        PyErr_SetString(PyExc_ValueError, "invalid WebSocket limits");
        return NULL;
    }
    gw_ws_config cfg = {(size_t)max_message, (size_t)high_water, (size_t)send_limit,
                        (size_t)max_connections, ping_interval, ping_timeout, inbox_limit};
    gw_server_configure_ws(self->srv, &cfg);
    Py_RETURN_NONE;
}

static PyObject *Server_publish(ServerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "publish() takes a topic and a message");
        return NULL;
    }
    return publish_common(self, args[0], NULL, 0, args[1], NULL, NULL);
}

static PyObject *Server_publish_history(ServerObject *self, PyObject *const *args,
                                        Py_ssize_t nargs)
{
    return history_publish_common(self, args, nargs, NULL);
}

static PyObject *Server_history_pattern(ServerObject *self, PyObject *args)
{
    const char *glob;
    Py_ssize_t capacity;
    long long ttl_ms;
    if (!PyArg_ParseTuple(args, "snL:history_pattern", &glob, &capacity, &ttl_ms))
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "topics cannot be configured once the server has started");
        return NULL;
    }
    if (capacity < 1 || (size_t)capacity > PS_HISTORY_MAX_CAPACITY) {
        PyErr_Format(PyExc_ValueError, "history must be between 1 and %u messages",
                     PS_HISTORY_MAX_CAPACITY);
        return NULL;
    }
    int rc = gw_ws_history_pattern(self->srv, glob, (size_t)capacity, ttl_ms);
    if (rc == -EEXIST) {
        PyErr_Format(PyExc_ValueError, "topic pattern '%s' is already configured", glob);
        return NULL;
    }
    if (rc == -EINVAL) {
        PyErr_Format(PyExc_ValueError, "topic pattern '%s': empty, or a negative ttl", glob);
        return NULL;
    }
    if (rc < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Server_history_doc,
"history(topic, epoch, since, limit) -> (epoch, offset, [(offset, message), ...]) or None\n--\n\n"
"The messages a topic with history holds: with epoch None the newest `limit` (0: all),\n"
"else the first `limit` after since. None when those after since are not all held.\n"
"epoch is None when nothing was published to the topic yet.");

static PyObject *Server_history(ServerObject *self, PyObject *args)
{
    PyObject *topic_obj;
    const char *epoch;
    unsigned long long since;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "OzKn:history", &topic_obj, &epoch, &since, &limit))
        return NULL;
    const char *topic;
    Py_ssize_t tlen;
    if (topic_arg(topic_obj, &topic, &tlen))
        return NULL;
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "limit must be >= 0");
        return NULL;
    }
    gw_ws_history hist;
    int rc;
    /* With the Redis bus this waits for Redis. */
    Py_BEGIN_ALLOW_THREADS
    rc = gw_ws_history_read(self->srv, topic, (size_t)tlen, epoch, (uint64_t)since,
                            (size_t)limit, &hist);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (rc == -ENOENT) {
        result = no_history(topic);
    } else if (rc == -ESTALE) {
        result = Py_NewRef(Py_None);
    } else if (rc == -EHOSTDOWN || rc == -ETIMEDOUT || rc == -EPROTO || rc == -ENOEXEC) {
        result = redis_history_error(rc, topic);
    } else if (rc < 0) {
        result = PyErr_NoMemory();
    } else {
        PyObject *list = PyList_New((Py_ssize_t)hist.n);
        for (size_t i = 0; list && i < hist.n; i++) {
            ps_frame *f = hist.entries[i].frame;
            PyObject *item = Py_BuildValue("(Ks#)", (unsigned long long)hist.entries[i].offset,
                                           (const char *)ps_frame_payload(f),
                                           (Py_ssize_t)ps_frame_payload_len(f));
            if (!item) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, (Py_ssize_t)i, item);
        }
        if (list) {
            PyObject *ep = hist.pos.epoch[0] ? PyUnicode_FromString(hist.pos.epoch)
                                             : Py_NewRef(Py_None);
            result = ep ? Py_BuildValue("(NKN)", ep, (unsigned long long)hist.pos.offset, list)
                        : NULL;
            if (!ep)
                Py_DECREF(list);
        }
    }
    gw_ws_history_free(&hist);
    return result;
}

static PyObject *Server_subscribers(ServerObject *self, PyObject *topic)
{
    const char *s;
    Py_ssize_t n;
    if (topic_arg(topic, &s, &n))
        return NULL;
    return PyLong_FromSize_t(gw_ws_subscribers_all(self->srv, s, (size_t)n));
}

static PyObject *Server_close_websockets(ServerObject *self, PyObject *unused)
{
    (void)unused;
    for (unsigned k = 0; k < gw_server_shard_count(self->srv); k++)
        gw_ws_close_all(gw_server_shard(self->srv, k));
    Py_RETURN_NONE;
}

static int add_pubsub_stats(ServerObject *self, PyObject *d);

static PyObject *Server_ws_stats(ServerObject *self, PyObject *unused)
{
    (void)unused;
    /* The process's figures, summed over its shards (--workers M). */
    gw_ws_stats st = {0};
    unsigned m = gw_server_shard_count(self->srv);
    for (unsigned k = 0; k < m; k++) {
        gw_ws_stats one;
        gw_ws_get_stats(gw_server_shard(self->srv, k), &one);
        st.connections += one.connections;
        st.topics = one.topics;
        st.slow_closed += one.slow_closed;
        st.slow_dropped += one.slow_dropped;
    }
    if (m > 1)
        st.topics = gw_ws_topics_all(self->srv); /* a topic on two shards is one topic */
    PyObject *d = Py_BuildValue("{s:n,s:n,s:n,s:n}", "connections", (Py_ssize_t)st.connections,
                                "topics", (Py_ssize_t)st.topics, "slow_closed",
                                (Py_ssize_t)st.slow_closed, "slow_dropped",
                                (Py_ssize_t)st.slow_dropped);
    if (d && add_pubsub_stats(self, d)) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

PyDoc_STRVAR(Server_shard_stats_doc,
"shard_stats() -> list[dict]\n--\n\n"
"One dict per I/O shard (--workers M; one before start): 'accepted', the connections its\n"
"listening socket took, 'connections', its open WebSockets, 'topics', its topics.");

static PyObject *Server_shard_stats(ServerObject *self, PyObject *unused)
{
    (void)unused;
    unsigned m = self->started ? gw_server_shard_count(self->srv) : 1;
    PyObject *list = PyList_New(m);
    for (unsigned k = 0; list && k < m; k++) {
        gw_server *shard = gw_server_shard(self->srv, k);
        gw_ws_stats one;
        gw_ws_get_stats(shard, &one);
        PyObject *d = Py_BuildValue("{s:n,s:n,s:n}", "accepted",
                                    (Py_ssize_t)gw_server_accepted(shard), "connections",
                                    (Py_ssize_t)one.connections, "topics",
                                    (Py_ssize_t)one.topics);
        if (!d)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, k, d);
    }
    return list;
}

static PyObject *Server_async_fd(ServerObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(gw_server_async_fd(self->srv));
}

PyDoc_STRVAR(Server_run_async_doc,
"run_async() -> int\n--\n\n"
"On the asyncio loop thread, when async_fd() is readable: hands every queued async\n"
"request to its route's callable. Returns how many there were.");

static PyObject *Server_run_async(ServerObject *self, PyObject *unused)
{
    (void)unused;
    long count = 0;
    gw_server_reset_wake(self->srv);
    /* Every shard shares this eventfd: each one's streams and events are taken. */
    for (unsigned k = 0, m = gw_server_shard_count(self->srv); k < m; k++) {
        gw_server *shard = gw_server_shard(self->srv, k);
        if (!shard)
            break; /* not started: nothing of its own yet */
        gw_pending *w = gw_server_take_writable(shard);
        while (w) {
            gw_pending *next = gw_pending_next_writable(w);
            JobObject *job = gw_pending_take_waiter(w);
            gw_pending_release(w);
            if (job && job->on_writable) {
                PyObject *cb = job->on_writable;
                job->on_writable = NULL;
                PyObject *res = PyObject_CallNoArgs(cb);
                if (!res)
                    report_error(self, "a stream's writable callback");
                Py_XDECREF(res);
                Py_DECREF(cb);
            }
            w = next;
            count++;
        }
        gw_ws_event *ev = gw_ws_take_events(shard);
        while (ev) {
            gw_ws_event *next = ev->next;
            run_ws_event(self, shard, ev);
            gw_ws_event_free(ev);
            ev = next;
            count++;
        }
    }
    gw_request *req = gw_server_take_async(self->srv);
    while (req) {
        gw_request *next = req->next;
        req->next = NULL;
        run_request(self, req);
        req = next;
        count++;
    }
    return PyLong_FromLong(count);
}

static PyObject *Server_defer_ws_wakes(ServerObject *self, PyObject *unused)
{
    (void)unused;
    gw_ws_defer_wakes(self->srv);
    Py_RETURN_NONE;
}

static PyObject *Server_flush_ws_wakes(ServerObject *self, PyObject *unused)
{
    (void)unused;
    gw_ws_flush_wakes(self->srv);
    Py_RETURN_NONE;
}

static PyObject *Server_drain(ServerObject *self, PyObject *unused)
{
    (void)unused;
    gw_server_drain(self->srv);
    Py_RETURN_NONE;
}

static PyObject *Server_in_flight(ServerObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSize_t(gw_server_in_flight(self->srv));
}

PyDoc_STRVAR(Server_stop_doc,
"stop()\n--\n\n"
"Closes every connection, stops the I/O thread and joins the worker threads.");

static PyObject *Server_stop(ServerObject *self, PyObject *unused)
{
    (void)unused;
    gw_ws_flush_wakes(self->srv);
    stop_workers(self);
    self->started = 0;
    Py_RETURN_NONE;
}

static PyObject *Server_get_port(ServerObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(gw_server_port(self->srv));
}

static PyObject *Server_get_event_loop(ServerObject *self, void *closure)
{
    (void)closure;
    const char *why = NULL;
    const char *loop = gw_server_event_loop(self->srv, &why);
    if (why)
        return Py_BuildValue("(ss)", loop, why);
    return Py_BuildValue("(sO)", loop, Py_None);
}

/* ---- matching without a socket (robyn.testing) -------------------------------------- */

PyDoc_STRVAR(Server_match_doc,
"match(method, path) -> (index, params, allowed)\n--\n\n"
"Routes a request as the I/O thread does, for answering it in-process (robyn.testing):\n"
"index is the route's position in registration order (add_route's return value) or None\n"
"when no route takes the path; params the dict of path parameters; allowed, on a miss,\n"
"the tuple of the methods that would take it (HEAD wherever GET does). path is the\n"
"decoded path without its query. Static mounts and the fallback are not consulted.\n"
"Raises ValueError for an unknown method.");

static PyObject *Server_match(ServerObject *self, PyObject *args)
{
    const char *method_name, *path;
    Py_ssize_t path_len;
    if (!PyArg_ParseTuple(args, "ss#:match", &method_name, &path, &path_len))
        return NULL;
    int method = gw_method_from_name(method_name, strlen(method_name));
    if (method < 0) {
        PyErr_Format(PyExc_ValueError, "unknown HTTP method '%s'", method_name);
        return NULL;
    }
    gw_param params[GW_ROUTER_MAX_PARAMS];
    int nparams = 0;
    unsigned allowed = 0;
    long index = gw_server_match(self->srv, method, path, (size_t)path_len, params, &nparams,
                                 &allowed);
    PyObject *found = NULL, *names = NULL, *methods = NULL;
    names = PyDict_New();
    if (!names)
        goto error;
    for (int i = 0; i < nparams; i++) {
        PyObject *name = decode(params[i].name, params[i].name_len);
        PyObject *value = name ? decode(params[i].value, params[i].value_len) : NULL;
        int rc = value ? PyDict_SetItem(names, name, value) : -1;
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (rc < 0)
            goto error;
    }
    methods = PyList_New(0);
    if (!methods)
        goto error;
    for (int m = 0; m < GW_METHOD_WS; m++) {
        if (!(allowed & (1u << m)))
            continue;
        PyObject *name = PyUnicode_FromString(gw_method_name(m));
        int rc = name ? PyList_Append(methods, name) : -1;
        Py_XDECREF(name);
        if (rc < 0)
            goto error;
    }
    found = index < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(index);
    if (!found)
        goto error;
    PyObject *allowed_tuple = PyList_AsTuple(methods);
    Py_DECREF(methods);
    if (!allowed_tuple) {
        Py_DECREF(found);
        Py_DECREF(names);
        return NULL;
    }
    return Py_BuildValue("(NNN)", found, names, allowed_tuple);
error:
    Py_XDECREF(found);
    Py_XDECREF(names);
    Py_XDECREF(methods);
    return NULL;
}

/* ---- static directories (serve_directory) ------------------------------------------- */

PyDoc_STRVAR(Server_serve_directory_doc,
"serve_directory(route, directory, index_file=None, listing=False)\n--\n\n"
"Serves the files under directory at the URL prefix route from the I/O thread, with no\n"
"Python per request (docs/static.md). Before start(). Raises ValueError naming the route,\n"
"the directory or the index file when one cannot be served, RuntimeError once started.");

static PyObject *Server_serve_directory(ServerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"route", "directory", "index_file", "listing", NULL};
    const char *route, *directory, *index_file = NULL;
    int listing = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ss|zp:serve_directory", kwlist, &route,
                                     &directory, &index_file, &listing))
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError,
                        "directories cannot be served once the server has started");
        return NULL;
    }
    char err[512] = "";
    int rc = gw_server_serve_directory(self->srv, route, directory, index_file, listing, err,
                                       sizeof(err));
    if (rc == -ENOMEM)
        return PyErr_NoMemory();
    if (rc) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- end of static directories ------------------------------------------------------ */

/* ---- sibling processes (robyn --processes N, docs/deployment.md) -------------------- */

PyDoc_STRVAR(Server_use_siblings_doc,
"use_siblings(group, slot, count, queue_limit=8388608)\n--\n\n"
"Makes this process number slot of count processes serving one app: publishes reach\n"
"the subscribers of every one of them (the siblings bus). group names the processes'\n"
"sockets and is the same in all. Before start(). Raises ValueError for a bad argument\n"
"and OSError when the slot's socket cannot be made.");

static PyObject *Server_use_siblings(ServerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"group", "slot", "count", "queue_limit", NULL};
    const char *group;
    unsigned int slot, count;
    Py_ssize_t queue_limit = 8 * 1024 * 1024;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sII|n:use_siblings", kwlist, &group, &slot,
                                     &count, &queue_limit))
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "use_siblings() must come before start()");
        return NULL;
    }
    if (queue_limit < 1024) {
        PyErr_Format(PyExc_ValueError, "queue_limit must be at least 1024 bytes, not %zd",
                     queue_limit);
        return NULL;
    }
    char err[256] = "";
    int rc = gw_ws_use_siblings(self->srv, group, slot, count, (size_t)queue_limit, err,
                                sizeof(err));
    if (rc == -EINVAL || rc == -EALREADY) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    if (rc == -ENOMEM)
        return PyErr_NoMemory();
    if (rc) {
        PyObject *exc_args = Py_BuildValue("(is)", -rc, err);
        if (exc_args) {
            PyErr_SetObject(PyExc_OSError, exc_args);
            Py_DECREF(exc_args);
        }
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Server_subscribers_everywhere_doc,
"subscribers_everywhere(topic, timeout=1.0) -> (count, siblings_answered)\n--\n\n"
"The subscribers of topic in this process and in every sibling process that answers\n"
"within timeout seconds. Without siblings, the local count and 0.");

static PyObject *Server_subscribers_everywhere(ServerObject *self, PyObject *args)
{
    PyObject *topic;
    double timeout = 1.0;
    if (!PyArg_ParseTuple(args, "O|d:subscribers_everywhere", &topic, &timeout))
        return NULL;
    const char *s;
    Py_ssize_t n;
    if (topic_arg(topic, &s, &n))
        return NULL;
    if (!(timeout >= 0 && timeout <= 60)) {
        PyErr_SetString(PyExc_ValueError, "timeout must be between 0 and 60 seconds");
        return NULL;
    }
    unsigned answered = 0;
    long total;
    size_t others = 0;
    Py_BEGIN_ALLOW_THREADS
    /* Shard 0 asks the siblings and adds its own ledger; the other shards add theirs. */
    for (unsigned k = 1; k < gw_server_shard_count(self->srv); k++)
        others += gw_ws_subscribers(gw_server_shard(self->srv, k), s, (size_t)n);
    total = gw_ws_subscribers_everywhere(self->srv, s, (size_t)n, (unsigned)(timeout * 1000),
                                         &answered);
    Py_END_ALLOW_THREADS
    if (total < 0)
        return PyErr_NoMemory();
    return Py_BuildValue("(lI)", total + (long)others, answered);
}

/* ---- end of sibling processes ------------------------------------------------------- */

/* ---- presence across processes and nodes (presence_link.h, docs/realtime.md) ---------- */

/* A str argument's UTF-8 bytes (any str: the table checks the lengths). */
static int utf8_arg(PyObject *obj, const char *what, const char **s, Py_ssize_t *n)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    *s = PyUnicode_AsUTF8AndSize(obj, n);
    return *s ? 0 : -1;
}

static PyObject *Server_presence_join(ServerObject *self, PyObject *args)
{
    PyObject *topic, *id, *info;
    const char *t, *i, *f;
    Py_ssize_t tl, il, fl;
    if (!PyArg_ParseTuple(args, "OOO:presence_join", &topic, &id, &info) ||
        topic_arg(topic, &t, &tl) || utf8_arg(id, "id", &i, &il) ||
        utf8_arg(info, "info", &f, &fl))
        return NULL;
    int rc = gw_presence_join(gw_presence_of(self->srv), t, (size_t)tl, i, (size_t)il, f,
                              (size_t)fl);
    if (rc == -EINVAL) {
        PyErr_Format(PyExc_ValueError, "presence: a topic of 1 to %u bytes, an id of 1 to %u "
                     "and an info of at most %u bytes of JSON", PS_PRESENCE_MAX_TOPIC,
                     PS_PRESENCE_MAX_ID, PS_PRESENCE_MAX_INFO);
        return NULL;
    }
    if (rc < 0)
        return PyErr_NoMemory();
    return PyBool_FromLong(rc);
}

static PyObject *Server_presence_leave(ServerObject *self, PyObject *args)
{
    PyObject *topic, *id;
    const char *t, *i;
    Py_ssize_t tl, il;
    if (!PyArg_ParseTuple(args, "OO:presence_leave", &topic, &id) || topic_arg(topic, &t, &tl) ||
        utf8_arg(id, "id", &i, &il))
        return NULL;
    return PyBool_FromLong(gw_presence_leave(gw_presence_of(self->srv), t, (size_t)tl, i,
                                             (size_t)il));
}

static PyObject *Server_presence_count(ServerObject *self, PyObject *topic)
{
    const char *t;
    Py_ssize_t tl;
    if (topic_arg(topic, &t, &tl))
        return NULL;
    size_t n;
    Py_BEGIN_ALLOW_THREADS
    n = ps_presence_count(gw_presence_table(gw_presence_of(self->srv)), t, (size_t)tl);
    Py_END_ALLOW_THREADS
    return PyLong_FromSize_t(n);
}

static PyObject *Server_presence_members(ServerObject *self, PyObject *topic)
{
    const char *t;
    Py_ssize_t tl;
    if (topic_arg(topic, &t, &tl))
        return NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    long n;
    /* The copy is made under the table's lock, which the I/O thread takes too: not with
     * the GIL held. */
    Py_BEGIN_ALLOW_THREADS
    n = ps_presence_copy(gw_presence_table(gw_presence_of(self->srv)), t, (size_t)tl, &buf,
                         &len);
    Py_END_ALLOW_THREADS
    if (n < 0)
        return PyErr_NoMemory();
    PyObject *list = PyList_New(n);
    size_t at = 0;
    for (long k = 0; list && k < n; k++) {
        /* The table's own format (presence.h, ps_presence_copy): trusted, but walked with
         * bounds all the same. */
        if (len - at < 3)
            break;
        int local = buf[at];
        size_t il = (size_t)buf[at + 1] | (size_t)buf[at + 2] << 8;
        at += 3;
        if (len - at < il + 4)
            break;
        const char *id = (const char *)buf + at;
        at += il;
        size_t fl = (size_t)buf[at] | (size_t)buf[at + 1] << 8 | (size_t)buf[at + 2] << 16 |
                    (size_t)buf[at + 3] << 24;
        at += 4;
        if (len - at < fl)
            break;
        PyObject *item = Py_BuildValue("(s#s#O)", id, (Py_ssize_t)il, (const char *)buf + at,
                                       (Py_ssize_t)fl, local ? Py_True : Py_False);
        at += fl;
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, k, item);
    }
    free(buf);
    if (list && at != len) {
        Py_DECREF(list);
        PyErr_SetString(PyExc_RuntimeError, "presence: the member list was cut short");
        return NULL;
    }
    return list;
}

static PyObject *Server_presence_take_gone(ServerObject *self, PyObject *unused)
{
    (void)unused;
    gw_presence_gone *g = gw_presence_take_gone(gw_presence_of(self->srv));
    if (!g)
        Py_RETURN_NONE;
    PyObject *list = PyList_New(0);
    while (g) {
        gw_presence_gone *next = g->next;
        if (list) {
            PyObject *item = Py_BuildValue("(ss#s#s#)", g->joined ? "join" : "leave",
                                           g->data, (Py_ssize_t)g->topic_len,
                                           g->data + g->topic_len, (Py_ssize_t)g->id_len,
                                           g->data + g->topic_len + g->id_len,
                                           (Py_ssize_t)g->info_len);
            if (!item || PyList_Append(list, item))
                Py_CLEAR(list);
            Py_XDECREF(item);
        }
        free(g);
        g = next;
    }
    return list;
}

static PyObject *Server_presence_stats(ServerObject *self, PyObject *unused)
{
    (void)unused;
    gw_presence *gp = gw_presence_of(self->srv);
    ps_presence_stats st;
    ps_presence_get_stats(gw_presence_table(gp), &st);
    return Py_BuildValue("{sKsKsKsKsKsKsKsKsKsKsK}", "origins", (unsigned long long)st.origins,
                         "members", (unsigned long long)st.members,
                         "local", (unsigned long long)st.local,
                         "seq", (unsigned long long)st.seq,
                         "snapshots_in", (unsigned long long)st.snapshots_in,
                         "asked", (unsigned long long)st.asked,
                         "expired", (unsigned long long)st.expired,
                         "dropped", (unsigned long long)st.dropped,
                         "bad", (unsigned long long)st.bad,
                         "refused", (unsigned long long)st.refused,
                         "leaves_dropped", (unsigned long long)gw_presence_gone_dropped(gp));
}

/* ---- a fan-out held in the middle, for tests (ws.h) ------------------------------------ */

PyDoc_STRVAR(Server_test_hold_fanout_doc,
"_test_hold_fanout(topic, after)\n--\n\n"
"For tests: the next fan-out of a publish to topic stops the I/O thread after `after`\n"
"deliveries (>= 1), in the middle of it, until _test_release() or 10 s. Raises\n"
"RuntimeError while another hold is armed or under way.");

static PyObject *Server_test_hold_fanout(ServerObject *self, PyObject *args)
{
    PyObject *topic;
    Py_ssize_t after;
    if (!PyArg_ParseTuple(args, "On:_test_hold_fanout", &topic, &after))
        return NULL;
    const char *s;
    Py_ssize_t n;
    if (topic_arg(topic, &s, &n))
        return NULL;
    if (after < 1) {
        PyErr_SetString(PyExc_ValueError, "after must be at least 1");
        return NULL;
    }
    int rc = gw_ws_test_hold_fanout(self->srv, s, (size_t)n, (size_t)after);
    if (rc == -EBUSY) {
        PyErr_SetString(PyExc_RuntimeError, "a fan-out hold is already armed or under way");
        return NULL;
    }
    if (rc < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Server_test_wait_held_doc,
"_test_wait_held(timeout) -> int | None\n--\n\n"
"For tests: waits (GIL released) up to timeout seconds for the I/O thread to stop at the\n"
"hold; returns the deliveries its fan-out had made by then, or None.");

static PyObject *Server_test_wait_held(ServerObject *self, PyObject *arg)
{
    double timeout = PyFloat_AsDouble(arg);
    if (timeout == -1.0 && PyErr_Occurred())
        return NULL;
    if (!(timeout >= 0 && timeout <= 60)) {
        PyErr_SetString(PyExc_ValueError, "timeout must be between 0 and 60 seconds");
        return NULL;
    }
    size_t delivered = 0;
    int held;
    Py_BEGIN_ALLOW_THREADS
    held = gw_ws_test_wait_held(self->srv, (unsigned)(timeout * 1000), &delivered);
    Py_END_ALLOW_THREADS
    if (!held)
        Py_RETURN_NONE;
    return PyLong_FromSize_t(delivered);
}

static PyObject *Server_test_release(ServerObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(gw_ws_test_release(self->srv));
}

static PyObject *Server_test_hold_result(ServerObject *self, PyObject *unused)
{
    (void)unused;
    size_t reached = 0;
    if (!gw_ws_test_hold_result(self->srv, &reached))
        Py_RETURN_NONE;
    return PyLong_FromSize_t(reached);
}

/* ---- pub/sub across processes and machines (docs/redis.md) --------------------------------- */

PyDoc_STRVAR(Server_configure_pubsub_doc,
"configure_pubsub(url, connect=True)\n--\n\n"
"Publishes go through Redis at url (redis://[[user]:password@]host[:port][/db][?options])\n"
"once the server starts. Raises ValueError for a URL that cannot be used. With connect,\n"
"also resolves the host and checks, synchronously, that Redis answers AUTH, SELECT and\n"
"PING (ConnectionError when it does not); without, only checks the URL and keeps nothing.");

static PyObject *Server_configure_pubsub(ServerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"url", "connect", NULL};
    const char *url;
    int connect = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|p:configure_pubsub", kwlist, &url,
                                     &connect))
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "configure_pubsub() must come before start()");
        return NULL;
    }
    ps_redis_config cfg;
    char err[512] = "";
    if (ps_redis_parse_url(url, &cfg, err, sizeof(err))) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    if (!connect)
        Py_RETURN_NONE;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ps_redis_resolve(&cfg, err, sizeof(err));
    if (!rc)
        rc = ps_redis_probe(&cfg, err, sizeof(err));
    Py_END_ALLOW_THREADS
    if (rc == -ENOMEM)
        return PyErr_NoMemory();
    if (rc) {
        PyErr_SetString(PyExc_ConnectionError, err);
        return NULL;
    }
    if (gw_ws_set_pubsub(self->srv, &cfg))
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* Adds the Redis bus's counters to d (a ws_stats() dict) when it runs. 0 or -1. */
static int add_pubsub_stats(ServerObject *self, PyObject *d)
{
    ps_redis_stats st;
    if (!gw_ws_pubsub_stats(self->srv, &st))
        return 0;
    struct { const char *name; unsigned long long v; } items[] = {
        {"pubsub_connected", (unsigned long long)st.connected},
        {"pubsub_outages", st.outages},
        {"pubsub_published", st.published},
        {"pubsub_buffered", st.buffered},
        {"pubsub_dropped", st.dropped},
        {"pubsub_received", st.received},
        {"pubsub_own_skipped", st.own_skipped},
        {"pubsub_gaps", st.gaps},
        {"pubsub_bad", st.bad},
        {"pubsub_channels", st.channels},
    };
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(items[i].v);
        if (!v || PyDict_SetItemString(d, items[i].name, v)) {
            Py_XDECREF(v);
            return -1;
        }
        Py_DECREF(v);
    }
    return 0;
}

/* ---- end of pub/sub ---------------------------------------------------------------------- */

static PyMethodDef Server_methods[] = {
    {"add_route", (PyCFunction)Server_add_route, METH_VARARGS, Server_add_route_doc},
    {"set_const", (PyCFunction)Server_set_const, METH_VARARGS, Server_set_const_doc},
    {"set_fallback", (PyCFunction)Server_set_fallback, METH_VARARGS, Server_set_fallback_doc},
    {"enable_metrics", (PyCFunction)(void (*)(void))Server_enable_metrics,
     METH_VARARGS | METH_KEYWORDS, Server_enable_metrics_doc},
    {"start", (PyCFunction)(void (*)(void))Server_start, METH_VARARGS | METH_KEYWORDS,
     Server_start_doc},
    {"set_ws_options", (PyCFunction)Server_set_ws_options, METH_VARARGS,
     "set_ws_options(index, policy, compress, compress_threshold, precheck, origins): a WebSocket "
     "route's options."},
    {"configure_ws", (PyCFunction)(void (*)(void))Server_configure_ws,
     METH_VARARGS | METH_KEYWORDS, "Sets the WebSocket limits (before start)."},
    {"publish", (PyCFunction)(void (*)(void))Server_publish, METH_FASTCALL,
     "publish(topic, message) -> int: subscribers reached in this process."},
    {"publish_history", (PyCFunction)(void (*)(void))Server_publish_history, METH_FASTCALL,
     "publish_history(topic, rest) -> (reached, epoch, offset): to a topic with history."},
    {"history_pattern", (PyCFunction)Server_history_pattern, METH_VARARGS,
     "history_pattern(glob, capacity, ttl_ms): topics matching glob keep history."},
    {"history", (PyCFunction)Server_history, METH_VARARGS, Server_history_doc},
    {"subscribers", (PyCFunction)Server_subscribers, METH_O,
     "subscribers(topic) -> int: subscribers of topic in this process."},
    {"close_websockets", (PyCFunction)Server_close_websockets, METH_NOARGS,
     "Closes every WebSocket with 1001 (graceful shutdown)."},
    {"ws_stats", (PyCFunction)Server_ws_stats, METH_NOARGS, "WebSocket counters."},
    {"async_fd", (PyCFunction)Server_async_fd, METH_NOARGS, "The eventfd to watch for async requests."},
    {"run_async", (PyCFunction)Server_run_async, METH_NOARGS, Server_run_async_doc},
    {"defer_ws_wakes", (PyCFunction)Server_defer_ws_wakes, METH_NOARGS,
     "defer_ws_wakes(): this thread's WebSocket commands wake the I/O thread only at\n"
     "flush_ws_wakes(), as one batch (the loop thread, over one pass of its handlers)."},
    {"flush_ws_wakes", (PyCFunction)Server_flush_ws_wakes, METH_NOARGS,
     "flush_ws_wakes(): wakes the I/O thread for the commands deferred since\n"
     "defer_ws_wakes(), and stops deferring."},
    {"drain", (PyCFunction)Server_drain, METH_NOARGS,
     "Answers new requests 503 from now on; requests in flight finish."},
    {"shard_stats", (PyCFunction)Server_shard_stats, METH_NOARGS, Server_shard_stats_doc},
    {"in_flight", (PyCFunction)Server_in_flight, METH_NOARGS,
     "The number of requests handed to Python and not answered yet."},
    {"stop", (PyCFunction)Server_stop, METH_NOARGS, Server_stop_doc},
    {"match", (PyCFunction)Server_match, METH_VARARGS, Server_match_doc},
    {"serve_directory", (PyCFunction)(void (*)(void))Server_serve_directory,
     METH_VARARGS | METH_KEYWORDS, Server_serve_directory_doc},
    {"use_siblings", (PyCFunction)(void (*)(void))Server_use_siblings,
     METH_VARARGS | METH_KEYWORDS, Server_use_siblings_doc},
    {"subscribers_everywhere", (PyCFunction)Server_subscribers_everywhere, METH_VARARGS,
     Server_subscribers_everywhere_doc},
    {"presence_join", (PyCFunction)Server_presence_join, METH_VARARGS,
     "presence_join(topic, id, info_json) -> bool: id is present on topic in this process\n"
     "(True when it joined, False when its info was replaced); the bus tells the others."},
    {"presence_leave", (PyCFunction)Server_presence_leave, METH_VARARGS,
     "presence_leave(topic, id) -> bool: id leaves topic (False when it was not there)."},
    {"presence_count", (PyCFunction)Server_presence_count, METH_O,
     "presence_count(topic) -> int: members of topic in every process the bus reaches."},
    {"presence_members", (PyCFunction)Server_presence_members, METH_O,
     "presence_members(topic) -> [(id, info_json, local)]: topic's members everywhere."},
    {"presence_take_gone", (PyCFunction)Server_presence_take_gone, METH_NOARGS,
     "presence_take_gone() -> [(kind, topic, id, info_json)] | None: members of dead\n"
     "processes whose leaves (kind 'leave'), or of silent ones back, whose joins ('join'),\n"
     "this process is to announce."},
    {"presence_stats", (PyCFunction)Server_presence_stats, METH_NOARGS,
     "presence_stats() -> dict: the presence table's counters."},
    {"_test_hold_fanout", (PyCFunction)Server_test_hold_fanout, METH_VARARGS,
     Server_test_hold_fanout_doc},
    {"_test_wait_held", (PyCFunction)Server_test_wait_held, METH_O, Server_test_wait_held_doc},
    {"_test_release", (PyCFunction)Server_test_release, METH_NOARGS,
     "_test_release() -> bool: for tests: lets the held fan-out go on; True when the I/O\n"
     "thread was still stopped at the hold."},
    {"_test_hold_result", (PyCFunction)Server_test_hold_result, METH_NOARGS,
     "_test_hold_result() -> int | None: for tests: how many the held fan-out reached, once\n"
     "it has ended."},

    {"configure_pubsub", (PyCFunction)(void (*)(void))Server_configure_pubsub,
     METH_VARARGS | METH_KEYWORDS, Server_configure_pubsub_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Server_getset[] = {
    {"port", (getter)Server_get_port, NULL, "the port bound, or 0", NULL},
    {"event_loop", (getter)Server_get_event_loop, NULL,
     "(loop, why_poll): the I/O threads' event loop, \"epoll\" or \"poll\", and why poll()\n"
     "serves when ROBYN_EVENT_LOOP did not ask for it (else None)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Server_slots[] = {
    {Py_tp_new, Server_new},
    {Py_tp_dealloc, Server_dealloc},
    {Py_tp_traverse, Server_traverse},
    {Py_tp_clear, Server_clear},
    {Py_tp_methods, Server_methods},
    {Py_tp_getset, Server_getset},
    {Py_tp_doc, "The C HTTP server: routes, the I/O thread and the sync worker threads."},
    {0, NULL},
};

static PyType_Spec Server_spec = {
    .name = "robyn._gateway.Server",
    .basicsize = sizeof(ServerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Server_slots,
};

/* ---- module ----------------------------------------------------------------------- */

static int module_exec(PyObject *m)
{
    module_state *st = PyModule_GetState(m);
    st->job_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Job_spec, NULL);
    if (!st->job_type)
        return -1;
    st->server_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Server_spec, NULL);
    if (!st->server_type)
        return -1;
    st->conn_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Conn_spec, NULL);
    if (!st->conn_type)
        return -1;
    if (PyModule_AddType(m, st->job_type) < 0 || PyModule_AddType(m, st->server_type) < 0 ||
        PyModule_AddType(m, st->conn_type) < 0)
        return -1;
    PyObject *version = Py_BuildValue("(ii)", LWS_LIBRARY_VERSION_MAJOR, LWS_LIBRARY_VERSION_MINOR);
    if (!version || PyModule_AddObjectRef(m, "LWS_VERSION", version) < 0) {
        Py_XDECREF(version);
        return -1;
    }
    Py_DECREF(version);
    if (PyModule_AddIntConstant(m, "WS_OPEN", GW_WS_OPEN) < 0 ||
        PyModule_AddIntConstant(m, "WS_MESSAGE", GW_WS_MESSAGE) < 0 ||
        PyModule_AddIntConstant(m, "WS_CLOSE", GW_WS_CLOSE) < 0 ||
        PyModule_AddIntConstant(m, "WS_DRAINED", GW_WS_DRAINED) < 0 ||
        PyModule_AddIntConstant(m, "WS_HANDSHAKE", GW_WS_HANDSHAKE) < 0 ||
        PyModule_AddIntConstant(m, "WS_POLICY_CLOSE", GW_WS_POLICY_CLOSE) < 0 ||
        PyModule_AddIntConstant(m, "WS_POLICY_DROP", GW_WS_POLICY_DROP) < 0)
        return -1;
    if (PyModule_AddIntConstant(m, "LLL_ERR", LLL_ERR) < 0 ||
        PyModule_AddIntConstant(m, "LLL_WARN", LLL_WARN) < 0 ||
        PyModule_AddIntConstant(m, "LLL_NOTICE", LLL_NOTICE) < 0 ||
        PyModule_AddIntConstant(m, "LLL_INFO", LLL_INFO) < 0 ||
        PyModule_AddIntConstant(m, "LLL_DEBUG", LLL_DEBUG) < 0 ||
        PyModule_AddIntConstant(m, "LLL_USER", LLL_USER) < 0 ||
        PyModule_AddIntConstant(m, "LOG_ACCESS", GW_LOG_ACCESS) < 0)
        return -1;
    /* From import on, lws' lines go to the ring, never straight to stderr. */
    gw_lwslog_set_mask(gw_lwslog_mask());
    if (PyModule_AddIntConstant(m, "ROUTE_SYNC", GW_ROUTE_SYNC) < 0 ||
        PyModule_AddIntConstant(m, "ROUTE_ASYNC", GW_ROUTE_ASYNC) < 0 ||
        PyModule_AddIntConstant(m, "ROUTE_CONST", GW_ROUTE_CONST) < 0)
        return -1;
    return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    module_state *st = PyModule_GetState(m);
    Py_VISIT(st->job_type);
    Py_VISIT(st->server_type);
    Py_VISIT(st->conn_type);
    return 0;
}

static int module_clear(PyObject *m)
{
    module_state *st = PyModule_GetState(m);
    Py_CLEAR(st->job_type);
    Py_CLEAR(st->server_type);
    Py_CLEAR(st->conn_type);
    return 0;
}

static void module_free(void *m)
{
    module_clear((PyObject *)m);
}

/* ---- libwebsockets' log, routed to logging (gateway/lwslog.c; robyn/logger.py) ----------- */

static PyObject *mod_lws_version(PyObject *m, PyObject *noargs)
{
    (void)m;
    (void)noargs;
    return PyUnicode_FromString(lws_get_library_version());
}

static PyObject *mod_lws_log_fd(PyObject *m, PyObject *noargs)
{
    (void)m;
    (void)noargs;
    int fd = gw_lwslog_fd();
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

/* Lines are taken in batches of this many (a buffer of 64 KiB), until none wait. */
#define LWS_LOG_BATCH 256

static PyObject *mod_lws_log_take(PyObject *m, PyObject *noargs)
{
    (void)m;
    (void)noargs;
    gw_lwslog_line *lines = PyMem_Malloc(sizeof(*lines) * LWS_LOG_BATCH);
    PyObject *list = lines ? PyList_New(0) : NULL;
    if (!list) {
        PyMem_Free(lines);
        return PyErr_NoMemory();
    }
    unsigned long dropped = 0;
    for (;;) {
        unsigned long lost = 0;
        size_t n;
        Py_BEGIN_ALLOW_THREADS
        n = gw_lwslog_take(lines, LWS_LOG_BATCH, &lost);
        Py_END_ALLOW_THREADS
        dropped += lost;
        for (size_t i = 0; i < n; i++) {
            PyObject *item = Py_BuildValue("(iN)", lines[i].level,
                                           PyUnicode_DecodeUTF8(lines[i].text,
                                                                (Py_ssize_t)strlen(lines[i].text),
                                                                "replace"));
            if (!item || PyList_Append(list, item) < 0) {
                Py_XDECREF(item);
                Py_DECREF(list);
                PyMem_Free(lines);
                return NULL;
            }
            Py_DECREF(item);
        }
        if (n < LWS_LOG_BATCH)
            break;
    }
    PyMem_Free(lines);
    return Py_BuildValue("(Nk)", list, dropped);
}

static PyObject *mod_lws_log_mask(PyObject *m, PyObject *args)
{
    (void)m;
    int mask = -1;
    if (!PyArg_ParseTuple(args, "|i:lws_log_mask", &mask))
        return NULL;
    if (mask >= 0)
        gw_lwslog_set_mask(mask);
    return PyLong_FromLong(gw_lwslog_mask());
}

static PyObject *mod_lws_log_emit(PyObject *m, PyObject *args)
{
    (void)m;
    int level;
    const char *text;
    if (!PyArg_ParseTuple(args, "is:lws_log_emit", &level, &text))
        return NULL;
    if (level & gw_lwslog_mask())
        _lws_log(level, "%s\n", text);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"lws_version", mod_lws_version, METH_NOARGS, "libwebsockets' version string."},
    {"lws_log_fd", mod_lws_log_fd, METH_NOARGS,
     "The eventfd that is readable when libwebsockets log lines wait for lws_log_take()."},
    {"lws_log_take", mod_lws_log_take, METH_NOARGS,
     "lws_log_take() -> ([(LLL_* level, text), ...], lines dropped since the last call)"},
    {"lws_log_mask", mod_lws_log_mask, METH_VARARGS,
     "lws_log_mask([mask]) -> mask: the LLL_* levels libwebsockets emits (sets it if given)."},
    {"lws_log_emit", mod_lws_log_emit, METH_VARARGS,
     "lws_log_emit(level, text): logs a line through libwebsockets' own logger, as lws does."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static struct PyModuleDef gateway_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "robyn._gateway",
    .m_doc = "The C core of robyn: libwebsockets server, router and the bridge to Python.",
    .m_size = sizeof(module_state),
    .m_slots = module_slots,
    .m_methods = module_methods,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__gateway(void)
{
    return PyModuleDef_Init(&gateway_module);
}
