/*
 * config.h - the INI configuration (libinih), strict: unknown sections and
 * keys, missing required keys and bad values are errors naming file,
 * section and key.  ${VAR} expands from the environment.
 *
 * [core] options are a typed table with defaults (config.c); channel keys are
 * kept raw here and checked against the plugin's own key table in plugin.c.
 */
#ifndef FRONTDESK_CONFIG_H
#define FRONTDESK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct conf_kv {
    char *key;
    char *value;
    int line;
};

struct conf_channel {
    char *name;
    char *plugin;
    char *script;       /* as written: relative to [core] scripts */
    struct conf_kv *kv; /* every key of the section, plugin/script included */
    size_t n;
    int line;
};

struct config {
    char *path;
    char *listen_host;
    int listen_port;
    char *public_url;
    char *state;        /* SQLite file, resolved against the config's folder */
    char *plugins;      /* folder of <name>.so */
    char *scripts;      /* folder of channel scripts; lib/ below for require */
    char *log_level;
    int drain_seconds;
    long script_budget; /* instructions per on_message call */
    long script_memory_mb;
    long max_body;      /* bytes of one webhook body */
    int max_conns;      /* concurrent HTTP connections */
    int case_idle_hours;/* a bot-state case idle this long is closed */
    int case_retention_days; /* untouched cases are deleted; 0: kept */
    struct conf_channel *channels;
    size_t nchannels;
};

/* A list of error lines ("config.ini:12: [core] listen: ..."). */
struct errlist {
    char **v;
    size_t n;
};
void errlist_add(struct errlist *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void errlist_free(struct errlist *e);

/* Parses `path`; every problem goes to errs.  Returns the config (also when
 * there were errors, so `check` can go on), NULL only when the file could
 * not be read at all. */
struct config *config_load(const char *path, struct errlist *errs);
void config_free(struct config *c);

const struct conf_channel *config_channel(const struct config *c,
                                          const char *name);
const char *conf_channel_get(const struct conf_channel *ch, const char *key);
int conf_channel_line(const struct conf_channel *ch, const char *key);

/* A [core] value by name as text (for plugins' core_conf), or NULL. */
const char *config_core_value(const struct config *c, const char *key);

/* "yes"/"true"/"on"/"1" → 1, the opposites → 0, else -1. */
int config_parse_bool(const char *s);
/* Whole decimal number within [min, max]; 0 or -1. */
int config_parse_long(const char *s, long min, long max, long *out);

#endif
