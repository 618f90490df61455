/*
 * log.c - timestamped single-line logging to stderr.  Lines are written with
 * one write() so concurrent processes (tests) never interleave mid-line.
 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int threshold = LOG_INFO;

int log_set_level_name(const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, names[i]) == 0) {
            threshold = i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        threshold = LOG_WARN;
        return 0;
    }
    return -1;
}

void log_set_level(int level) { threshold = level; }
int log_level(void) { return threshold; }

void log_vmsg(int level, const char *module, const char *channel,
              const char *fmt, va_list ap)
{
    if (level < threshold)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    int m = snprintf(line + n, sizeof line - n, "%c %s%s%s%s: ",
                     "DIWE"[level < 0 ? 0 : level > 3 ? 3 : level], module,
                     channel ? "[" : "", channel ? channel : "",
                     channel ? "]" : "");
    if (m > 0)
        n += (size_t)m < sizeof line - n ? (size_t)m : sizeof line - n - 1;
    m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (m > 0)
        n += (size_t)m < sizeof line - n ? (size_t)m : sizeof line - n - 1;
    /* Keep every entry on one line whatever the message held. */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void log_msg(int level, const char *module, const char *channel,
             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, module, channel, fmt, ap);
    va_end(ap);
}
