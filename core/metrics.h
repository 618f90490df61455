/* metrics.h - Prometheus text for /metrics, from the channels' counters. */
#ifndef FRONTDESK_METRICS_H
#define FRONTDESK_METRICS_H

struct buf;
void metrics_render(struct buf *out);

#endif
