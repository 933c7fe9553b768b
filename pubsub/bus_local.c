/*
 * bus_local.c: the in-process bus. A publish goes straight into the
 * registry of the calling I/O thread; there is nowhere else to send it, so
 * it follows no interest.
 */
#include "bus.h"

#include <limits.h>
#include <stdlib.h>

struct bus_local {
    ps_bus base; /* first: a ps_bus * is a struct bus_local * */
    ps_topics *topics;
};

static int local_publish(ps_bus *bus, const char *topic, size_t len,
                         ps_frame *frame, const ps_subscriber *exclude)
{
    struct bus_local *b = (struct bus_local *)bus;
    size_t n = ps_topics_publish(b->topics, topic, len, frame, exclude);

    return n > INT_MAX ? INT_MAX : (int)n;
}

static void local_close(ps_bus *bus)
{
    free(bus);
}

static const ps_bus_ops local_ops = {
    .name = "local",
    .publish = local_publish,
    .subscribe_interest = NULL,
    .unsubscribe_interest = NULL,
    .close = local_close,
};

ps_bus *ps_bus_local_new(ps_topics *topics)
{
    struct bus_local *b = malloc(sizeof(*b));

    if (b == NULL)
        return NULL;
    b->base.ops = &local_ops;
    b->topics = topics;
    return &b->base;
}
