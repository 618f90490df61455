/*
 * lookup.h - host names resolved off the loop.
 *
 * getaddrinfo blocks for as long as the system's resolver takes, so each
 * lookup runs in a short-lived thread of its own; the loop joins it and
 * calls back on the loop thread.
 */
#ifndef FRONTDESK_LOOKUP_H
#define FRONTDESK_LOOKUP_H

struct addrinfo;
struct lookup;

/* err: 0 or an EAI_* code (gai_strerror).  res (TCP addresses, any
 * family) belongs to the callback: freeaddrinfo it. */
typedef void (*lookup_fn)(void *ud, int err, struct addrinfo *res);

/* Starts resolving host; fn runs on a later loop turn.  NULL when no
 * thread could be started. */
struct lookup *lookup_start(const char *host, lookup_fn fn, void *ud);
/* fn will not run (the lookup finishes unseen and is freed then). */
void lookup_cancel(struct lookup *l);

#endif
