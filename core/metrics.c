/* metrics.c - /metrics in the Prometheus text format. */
#include "metrics.h"

#include <inttypes.h>

#include "buf.h"
#include "channel.h"
#include "host.h"
#include "http.h"
#include "outbox.h"
#include "router.h"

static const struct {
    int idx;
    const char *name, *help;
} counters[] = {
    {CNT_IN, "frontdesk_messages_total", "messages accepted"},
    {CNT_DUP, "frontdesk_duplicates_total", "duplicate deliveries dropped"},
    {CNT_SCRIPT_ERR, "frontdesk_script_errors_total", "script errors and budget overruns"},
    {CNT_SENT, "frontdesk_actions_sent_total", "actions the platform accepted"},
    {CNT_RETRY, "frontdesk_send_retries_total", "sends to be retried"},
    {CNT_DEAD, "frontdesk_actions_dead_total", "actions given up (dead letters)"},
    {CNT_REFUSED, "frontdesk_webhooks_refused_total", "webhook requests refused"},
    {CNT_RELOAD, "frontdesk_script_reloads_total", "script reloads swapped in"},
    {CNT_THROTTLED, "frontdesk_sends_throttled_total", "sends delayed by a rate limit"},
};

void metrics_render(struct buf *out)
{
    size_t n;
    struct fd_channel **chs = host_channels(&n);
    for (size_t k = 0; k < sizeof counters / sizeof counters[0]; k++) {
        buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", counters[k].name,
                   counters[k].help, counters[k].name);
        for (size_t i = 0; i < n; i++)
            buf_printf(out, "%s{channel=\"%s\",platform=\"%s\"} %" PRIu64 "\n",
                       counters[k].name, chs[i]->name, chs[i]->platform,
                       chs[i]->counters[counters[k].idx]);
    }
    buf_printf(out, "# HELP frontdesk_outbox_pending actions queued to send\n"
                    "# TYPE frontdesk_outbox_pending gauge\n");
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "frontdesk_outbox_pending{channel=\"%s\"} %d\n",
                   chs[i]->name, outbox_pending(chs[i]));
    buf_printf(out, "# HELP frontdesk_http_in_flight outbound HTTP requests\n"
                    "# TYPE frontdesk_http_in_flight gauge\n"
                    "frontdesk_http_in_flight %d\n"
                    "# HELP frontdesk_delivery_failures_total deliveries the store could not record\n"
                    "# TYPE frontdesk_delivery_failures_total counter\n"
                    "frontdesk_delivery_failures_total %" PRIu64 "\n",
               http_in_flight(), router_failures());
}
