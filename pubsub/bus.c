/*
 * bus.c: dispatch through a bus's ops, shared by every implementation.
 */
#include "bus.h"

#include <errno.h>

int ps_bus_publish(ps_bus *bus, const char *topic, size_t len,
                   unsigned opcode, const void *payload, size_t payload_len,
                   const ps_subscriber *exclude)
{
    ps_frame *f = ps_frame_new(opcode, payload, payload_len);
    int rc;

    if (f == NULL)
        return errno == EINVAL ? -EINVAL : -ENOMEM;
    rc = ps_bus_publish_frame(bus, topic, len, f, exclude);
    ps_frame_unref(f);
    return rc;
}

int ps_bus_publish_frame(ps_bus *bus, const char *topic, size_t len,
                         ps_frame *frame, const ps_subscriber *exclude)
{
    return bus->ops->publish(bus, topic, len, frame, exclude);
}

void ps_bus_on_interest(void *ctx, const char *topic, size_t len, bool alive)
{
    ps_bus *bus = ctx;

    if (alive && bus->ops->subscribe_interest != NULL)
        bus->ops->subscribe_interest(bus, topic, len);
    else if (!alive && bus->ops->unsubscribe_interest != NULL)
        bus->ops->unsubscribe_interest(bus, topic, len);
}

void ps_bus_close(ps_bus *bus)
{
    if (bus != NULL)
        bus->ops->close(bus);
}
