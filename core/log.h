/*
 * log.h - one line per event on stderr:
 *   2026-11-23T10:00:00Z W telegram[shop]: 429, retry in 3 s
 * Never log tokens or secrets; message text only at debug level, truncated.
 */
#ifndef FRONTDESK_LOG_H
#define FRONTDESK_LOG_H

#include <stdarg.h>

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the threshold from "debug", "info", "warn", "error"; <0 if unknown. */
int log_set_level_name(const char *name);
void log_set_level(int level);
int log_level(void);

/* module names the subsystem (core, store, telegram, ...); channel may be
 * NULL. */
void log_msg(int level, const char *module, const char *channel,
             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void log_vmsg(int level, const char *module, const char *channel,
              const char *fmt, va_list ap);

#define log_debug(mod, ...) log_msg(LOG_DEBUG, mod, NULL, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, NULL, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, NULL, __VA_ARGS__)
#define log_error(mod, ...) log_msg(LOG_ERROR, mod, NULL, __VA_ARGS__)

#endif
