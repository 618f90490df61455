/*
 * host.h - the plugin host: loads plugins (dlopen, ABI checks), validates
 * channel keys against each plugin's key table, starts and stops channels,
 * and hands plugins the host service table.
 */
#ifndef FRONTDESK_HOST_H
#define FRONTDESK_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "plugin_api.h"

struct config;
struct errlist;
struct router;

/* Loads the plugins and scripts of every channel in cfg; every problem goes
 * to errs.  Returns 0 when nothing was wrong. */
int host_load(const struct config *cfg, struct router *r, struct errlist *errs);
/* Starts every channel's plugin (needs the loop). */
int host_start(void);
/* Stops every channel and unloads the plugins. */
void host_unload(void);

struct fd_channel *host_channel(const char *name);
/* The first channel whose plugin serves a web page (mounted at "/"). */
struct fd_channel *host_web_channel(void);
struct fd_channel **host_channels(size_t *n);
const struct fd_host *host_services(void);
const struct config *host_config(void);

#endif
