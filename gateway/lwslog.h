/* libwebsockets' own log, routed to Python's `logging` without the GIL.
 *
 * lws calls gw_lwslog_emit() on whatever thread logs (the I/O thread, mostly). A line is
 * copied into a fixed ring under a mutex; when the ring goes from empty to not empty, an
 * eventfd is written. The Python side watches that eventfd on its event loop and takes the
 * lines in a batch (gw_lwslog_take), logging each to "robyn.lws". Lines that find the ring
 * full are counted, not kept. */
#ifndef GW_LWSLOG_H
#define GW_LWSLOG_H

#include <stddef.h>

#define GW_LWSLOG_LINE 256  /* bytes kept of one line, NUL included; longer ones are cut */
#define GW_LWSLOG_RING 4096 /* lines waiting at most */

/* The "level" of an access log line (gateway/http.c), beside lws' own LLL_* bits. */
#define GW_LOG_ACCESS (1 << 30)

typedef struct {
    int level; /* one LLL_* bit */
    char text[GW_LWSLOG_LINE];
} gw_lwslog_line;

/* The emit function given to lws_set_log_level(): safe on any thread. */
void gw_lwslog_emit(int level, const char *line);

/* Which LLL_* levels lws formats and emits; also installs gw_lwslog_emit. */
void gw_lwslog_set_mask(int mask);
int gw_lwslog_mask(void);

/* The eventfd that becomes readable when lines wait (created on first use; a forked child
 * gets its own). -1 if it cannot be made. */
int gw_lwslog_fd(void);

/* Moves up to `max` waiting lines into `out`, oldest first; returns how many. `*dropped`
 * gets the count of lines lost since the last call. */
size_t gw_lwslog_take(gw_lwslog_line *out, size_t max, unsigned long *dropped);

#endif
