/* badabi.c - a plugin built for another ABI version: the host must refuse
 * it with a clear message (tests/integration/test_core). */
#include "plugin_api.h"

static int start(struct fd_channel *ch) { (void)ch; return 0; }
static void stop(struct fd_channel *ch) { (void)ch; }
static int send_(struct fd_channel *ch, const struct fd_action *a,
                 struct fd_send *t)
{
    (void)ch, (void)a, (void)t;
    return 0;
}

FD_EXPORT const struct fd_plugin frontdesk_plugin = {
    .abi = FD_PLUGIN_ABI + 998,
    .size = sizeof(struct fd_plugin),
    .name = "badabi",
    .start = start,
    .stop = stop,
    .send = send_,
};
