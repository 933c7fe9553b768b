#include "lwslog.h"

#include <errno.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static gw_lwslog_line ring[GW_LWSLOG_RING];
static size_t ring_head;  /* oldest line */
static size_t ring_count;
static unsigned long ring_dropped;
static int wake_fd = -1;
static int level_mask = LLL_ERR | LLL_WARN;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A forked child must not share the parent's eventfd (a sibling could eat its wake-ups)
 * nor keep lines the parent logged. */
static void after_fork_in_child(void)
{
    pthread_mutex_init(&ring_lock, NULL);
    ring_head = ring_count = 0;
    ring_dropped = 0;
    if (wake_fd >= 0) {
        close(wake_fd);
        wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    }
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

int gw_lwslog_fd(void)
{
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&ring_lock);
    if (wake_fd < 0)
        wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int fd = wake_fd;
    pthread_mutex_unlock(&ring_lock);
    return fd;
}

void gw_lwslog_emit(int level, const char *line)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len >= GW_LWSLOG_LINE)
        len = GW_LWSLOG_LINE - 1;
    int wake = -1;
    pthread_mutex_lock(&ring_lock);
    if (ring_count == GW_LWSLOG_RING) {
        ring_dropped++;
    } else {
        gw_lwslog_line *slot = &ring[(ring_head + ring_count) % GW_LWSLOG_RING];
        slot->level = level;
        memcpy(slot->text, line, len);
        slot->text[len] = '\0';
        if (ring_count++ == 0)
            wake = wake_fd;
    }
    pthread_mutex_unlock(&ring_lock);
    if (wake >= 0) {
        uint64_t one = 1;
        /* EAGAIN means the counter is already non-zero: the reader wakes anyway. */
        ssize_t rc = write(wake, &one, sizeof(one));
        (void)rc;
    }
}

void gw_lwslog_set_mask(int mask)
{
    pthread_mutex_lock(&ring_lock);
    level_mask = mask;
    pthread_mutex_unlock(&ring_lock);
    lws_set_log_level(mask, gw_lwslog_emit);
}

int gw_lwslog_mask(void)
{
    pthread_mutex_lock(&ring_lock);
    int mask = level_mask;
    pthread_mutex_unlock(&ring_lock);
    return mask;
}

size_t gw_lwslog_take(gw_lwslog_line *out, size_t max, unsigned long *dropped)
{
    pthread_mutex_lock(&ring_lock);
    int fd = wake_fd;
    pthread_mutex_unlock(&ring_lock);
    if (fd >= 0) {
        /* Reset first: a line added after this wakes the reader again. */
        uint64_t count;
        ssize_t rc = read(fd, &count, sizeof(count));
        (void)rc;
    }
    size_t taken = 0;
    pthread_mutex_lock(&ring_lock);
    while (taken < max && ring_count) {
        out[taken++] = ring[ring_head];
        ring_head = (ring_head + 1) % GW_LWSLOG_RING;
        ring_count--;
    }
    *dropped = ring_dropped;
    ring_dropped = 0;
    pthread_mutex_unlock(&ring_lock);
    return taken;
}
