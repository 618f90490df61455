/*
 * config.c - reads config.ini with libinih into struct config.
 *
 * Parsing collects every section and key with its line number first; the
 * [core] table below then types and checks the values, so one run of
 * `frontdesk check` reports every problem, not only the first.
 */
#include "config.h"

#include <ini.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

void errlist_add(struct errlist *e, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char **v = realloc(e->v, (e->n + 1) * sizeof *v);
    if (!v)
        return;
    e->v = v;
    e->v[e->n] = strdup(line);
    if (e->v[e->n])
        e->n++;
}

void errlist_free(struct errlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
    e->v = NULL;
    e->n = 0;
}

int config_parse_bool(const char *s)
{
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

int config_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* ---- raw parse ---------------------------------------------------------- */

struct raw_section {
    char *name;
    int line;
    struct conf_kv *kv;
    size_t n;
};

struct parse {
    const char *path;
    struct raw_section *sec;
    size_t nsec;
    struct errlist *errs;
    FILE *f;
    int line; /* counted by read_line: Debian's inih passes no line number */
    bool at_line_start;
};

static char *read_line(char *str, int num, void *stream)
{
    struct parse *p = stream;
    char *r = fgets(str, num, p->f);
    if (r && p->at_line_start)
        p->line++;
    if (r)
        p->at_line_start = strchr(r, '\n') != NULL;
    return r;
}

/* Expands ${VAR} from the environment; NULL (error recorded) if a variable
 * is unset. */
static char *expand(struct parse *p, const char *section, const char *key,
                    int line, const char *value)
{
    size_t cap = strlen(value) + 1, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *s = value; *s;) {
        const char *piece = s;
        size_t plen = 1;
        char name[128];
        if (s[0] == '$' && s[1] == '{') {
            const char *end = strchr(s + 2, '}');
            size_t nlen = end ? (size_t)(end - s - 2) : 0;
            if (!end || nlen == 0 || nlen >= sizeof name) {
                errlist_add(p->errs, "%s:%d: [%s] %s: unterminated ${...}",
                            p->path, line, section, key);
                free(out);
                return NULL;
            }
            memcpy(name, s + 2, nlen);
            name[nlen] = '\0';
            piece = getenv(name);
            if (!piece) {
                errlist_add(p->errs,
                            "%s:%d: [%s] %s: environment variable %s is not set",
                            p->path, line, section, key, name);
                free(out);
                return NULL;
            }
            plen = strlen(piece);
            s = end + 1;
        } else {
            s++;
        }
        if (len + plen + 1 > cap) {
            cap = (len + plen + 1) * 2;
            char *n = realloc(out, cap);
            if (!n) {
                free(out);
                return NULL;
            }
            out = n;
        }
        memcpy(out + len, piece, plen);
        len += plen;
    }
    out[len] = '\0';
    return out;
}

static struct raw_section *section_get(struct parse *p, const char *name,
                                       int line)
{
    if (p->nsec && strcmp(p->sec[p->nsec - 1].name, name) == 0)
        return &p->sec[p->nsec - 1];
    for (size_t i = 0; i < p->nsec; i++) {
        if (strcmp(p->sec[i].name, name) == 0) {
            errlist_add(p->errs, "%s:%d: [%s]: section appears twice (first at line %d)",
                        p->path, line, name, p->sec[i].line);
            return &p->sec[i];
        }
    }
    struct raw_section *v = realloc(p->sec, (p->nsec + 1) * sizeof *v);
    if (!v)
        return NULL;
    p->sec = v;
    struct raw_section *s = &p->sec[p->nsec++];
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    s->line = line;
    return s;
}

static int on_ini(void *user, const char *section, const char *key,
                  const char *value)
{
    struct parse *p = user;
    int line = p->line;
    if (!key) /* a section header alone (INI_CALL_HANDLER_ON_NEW_SECTION) */
        return section_get(p, section, line) != NULL;
    if (!*section) {
        errlist_add(p->errs, "%s:%d: %s: key outside any section", p->path,
                    line, key);
        return 1;
    }
    struct raw_section *s = section_get(p, section, line);
    if (!s)
        return 0;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->kv[i].key, key) == 0) {
            errlist_add(p->errs, "%s:%d: [%s] %s: key given twice (first at line %d)",
                        p->path, line, section, key, s->kv[i].line);
            return 1;
        }
    }
    char *v = expand(p, section, key, line, value);
    if (!v)
        return 1;
    struct conf_kv *kv = realloc(s->kv, (s->n + 1) * sizeof *kv);
    if (!kv) {
        free(v);
        return 0;
    }
    s->kv = kv;
    s->kv[s->n].key = strdup(key);
    s->kv[s->n].value = v;
    s->kv[s->n].line = line;
    s->n++;
    return 1;
}

/* ---- the [core] table ----------------------------------------------------- */

enum opt_type { OPT_STR, OPT_PATH, OPT_LISTEN, OPT_URL, OPT_INT, OPT_LEVEL };

struct core_opt {
    const char *name;
    enum opt_type type;
    const char *def;
    long min, max;
    size_t off; /* of the char* or int/long member */
    const char *help;
};

#define OFF(m) offsetof(struct config, m)
static const struct core_opt core_opts[] = {
    {"listen", OPT_LISTEN, "127.0.0.1:8080", 0, 0, 0,
     "address:port of the HTTP listener (webhooks, web pages, /metrics, /healthz)"},
    {"public_url", OPT_URL, NULL, 0, 0, OFF(public_url),
     "base URL platforms call back (default http://<listen>)"},
    {"state", OPT_PATH, "frontdesk.db", 0, 0, OFF(state), "SQLite file"},
    {"plugins", OPT_PATH, "build/plugins", 0, 0, OFF(plugins),
     "folder of plugin .so files"},
    {"scripts", OPT_PATH, "scripts", 0, 0, OFF(scripts),
     "folder of channel scripts (lib/ inside for require)"},
    {"log_level", OPT_LEVEL, "info", 0, 0, OFF(log_level),
     "debug, info, warn or error"},
    {"drain_seconds", OPT_INT, "10", 0, 3600, OFF(drain_seconds),
     "on SIGTERM, how long in-flight sends may finish"},
    {"script_budget", OPT_INT, "10000000", 1000, 2000000000, OFF(script_budget),
     "Lua instructions one on_message call may run"},
    {"script_memory_mb", OPT_INT, "64", 1, 4096, OFF(script_memory_mb),
     "memory cap of one script's Lua state"},
    {"max_body", OPT_INT, "1048576", 1024, 64L << 20, OFF(max_body),
     "largest webhook body in bytes (larger: 413)"},
    {"max_connections", OPT_INT, "1024", 8, 100000, OFF(max_conns),
     "concurrent inbound HTTP connections"},
    {"case_idle_hours", OPT_INT, "24", 1, 24 * 365, OFF(case_idle_hours),
     "an idle case in state bot is closed after this"},
    {"case_retention_days", OPT_INT, "180", 0, 36500,
     OFF(case_retention_days),
     "a case untouched this many days is deleted (0: cases are kept)"},
    {NULL, 0, NULL, 0, 0, 0, NULL},
};

static bool is_int_member(size_t off)
{
    return off == OFF(drain_seconds) || off == OFF(max_conns) ||
           off == OFF(case_idle_hours) || off == OFF(case_retention_days);
}

/* Relative paths count from the config file's folder, so the daemon finds
 * its files whatever the working directory. */
static char *resolve(const char *cfgpath, const char *v)
{
    if (v[0] == '/' || strcmp(v, ":memory:") == 0)
        return strdup(v);
    const char *slash = strrchr(cfgpath, '/');
    if (!slash)
        return strdup(v);
    size_t dl = (size_t)(slash - cfgpath);
    size_t n = dl + 1 + strlen(v) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%.*s/%s", (int)dl, cfgpath, v);
    return out;
}

static void set_core(struct config *c, const struct core_opt *o,
                     const char *v, int line, struct errlist *errs)
{
    char where[512];
    snprintf(where, sizeof where, "%s:%d: [core] %s", c->path, line, o->name);
    long n;
    switch (o->type) {
    case OPT_LISTEN: {
        const char *colon = strrchr(v, ':');
        if (!colon || colon == v ||
            config_parse_long(colon + 1, 1, 65535, &n) < 0) {
            errlist_add(errs, "%s: want address:port, got \"%s\"", where, v);
            return;
        }
        free(c->listen_host);
        c->listen_host = strndup(v, (size_t)(colon - v));
        c->listen_port = (int)n;
        return;
    }
    case OPT_URL:
        if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
            errlist_add(errs, "%s: want an http:// or https:// URL, got \"%s\"",
                        where, v);
            return;
        }
        break;
    case OPT_LEVEL:
        if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") &&
            strcmp(v, "error")) {
            errlist_add(errs, "%s: want debug, info, warn or error, got \"%s\"",
                        where, v);
            return;
        }
        break;
    case OPT_INT:
        if (config_parse_long(v, o->min, o->max, &n) < 0) {
            errlist_add(errs, "%s: want a whole number from %ld to %ld, got \"%s\"",
                        where, o->min, o->max, v);
            return;
        }
        if (is_int_member(o->off))
            *(int *)((char *)c + o->off) = (int)n;
        else
            *(long *)((char *)c + o->off) = n;
        return;
    case OPT_STR:
    case OPT_PATH:
        if (!*v) {
            errlist_add(errs, "%s: must not be empty", where);
            return;
        }
        break;
    }
    char **slot = (char **)((char *)c + o->off);
    free(*slot);
    *slot = o->type == OPT_PATH ? resolve(c->path, v) : strdup(v);
    if (o->type == OPT_URL) { /* no trailing slash: paths are appended */
        size_t l = strlen(*slot);
        while (l > 0 && (*slot)[l - 1] == '/')
            (*slot)[--l] = '\0';
    }
}

static const struct conf_kv *raw_get(const struct raw_section *s,
                                     const char *key)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->kv[i].key, key) == 0)
            return &s->kv[i];
    return NULL;
}

static bool valid_channel_name(const char *n)
{
    if (!*n || strlen(n) > 64)
        return false;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') ||
              (*n >= '0' && *n <= '9') || *n == '-' || *n == '_' || *n == '.'))
            return false;
    return true;
}

static void build(struct config *c, struct parse *p, struct errlist *errs)
{
    const struct raw_section *core = NULL;
    for (size_t i = 0; i < p->nsec; i++)
        if (strcmp(p->sec[i].name, "core") == 0)
            core = &p->sec[i];
    for (const struct core_opt *o = core_opts; o->name; o++) {
        const struct conf_kv *kv = raw_get(core, o->name);
        if (o->def || kv)
            set_core(c, o, kv ? kv->value : o->def, kv ? kv->line : 0, errs);
    }
    for (size_t i = 0; core && i < core->n; i++) {
        const struct core_opt *o = core_opts;
        while (o->name && strcmp(o->name, core->kv[i].key))
            o++;
        if (!o->name)
            errlist_add(errs, "%s:%d: [core] %s: unknown key", c->path,
                        core->kv[i].line, core->kv[i].key);
    }
    if (!c->public_url && c->listen_host) {
        char url[300];
        snprintf(url, sizeof url, "http://%s:%d", c->listen_host, c->listen_port);
        c->public_url = strdup(url);
    }

    for (size_t i = 0; i < p->nsec; i++) {
        struct raw_section *s = &p->sec[i];
        if (strcmp(s->name, "core") == 0)
            continue;
        if (strncmp(s->name, "channel:", 8) != 0) {
            errlist_add(errs, "%s:%d: [%s]: unknown section (want [core] or [channel:NAME])",
                        c->path, s->line, s->name);
            continue;
        }
        const char *name = s->name + 8;
        if (!valid_channel_name(name)) {
            errlist_add(errs, "%s:%d: [%s]: channel names use A-Z a-z 0-9 - _ . (at most 64)",
                        c->path, s->line, s->name);
            continue;
        }
        struct conf_channel *v =
            realloc(c->channels, (c->nchannels + 1) * sizeof *v);
        if (!v)
            return;
        c->channels = v;
        struct conf_channel *ch = &c->channels[c->nchannels++];
        ch->name = strdup(name);
        ch->line = s->line;
        ch->kv = s->kv; /* ownership moves to the channel */
        ch->n = s->n;
        s->kv = NULL;
        s->n = 0;
        const char *pl = conf_channel_get(ch, "plugin");
        const char *sc = conf_channel_get(ch, "script");
        ch->plugin = pl ? strdup(pl) : NULL;
        ch->script = sc ? strdup(sc) : NULL;
        if (!pl || !*pl)
            errlist_add(errs, "%s:%d: [%s] plugin: missing required key",
                        c->path, s->line, s->name);
        if (!sc || !*sc)
            errlist_add(errs, "%s:%d: [%s] script: missing required key",
                        c->path, s->line, s->name);
    }
}

struct config *config_load(const char *path, struct errlist *errs)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        errlist_add(errs, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    struct config *c = calloc(1, sizeof *c);
    struct parse p = {.path = path, .errs = errs, .f = f, .at_line_start = true};
    if (!c) {
        fclose(f);
        return NULL;
    }
    c->path = strdup(path);
    /* Long values (URLs, tokens) must not hit inih's 200-byte default. */
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = 65536;
    int rc = ini_parse_stream(read_line, &p, on_ini, &p);
    fclose(f);
    if (rc > 0)
        errlist_add(errs, "%s:%d: syntax error (want [section] or key = value)",
                    path, rc);
    else if (rc < 0)
        errlist_add(errs, "%s: cannot parse (out of memory)", path);
    build(c, &p, errs);
    for (size_t i = 0; i < p.nsec; i++) {
        for (size_t k = 0; k < p.sec[i].n; k++) {
            free(p.sec[i].kv[k].key);
            free(p.sec[i].kv[k].value);
        }
        free(p.sec[i].kv);
        free(p.sec[i].name);
    }
    free(p.sec);
    return c;
}

void config_free(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nchannels; i++) {
        struct conf_channel *ch = &c->channels[i];
        for (size_t k = 0; k < ch->n; k++) {
            free(ch->kv[k].key);
            free(ch->kv[k].value);
        }
        free(ch->kv);
        free(ch->name);
        free(ch->plugin);
        free(ch->script);
    }
    free(c->channels);
    free(c->path);
    free(c->listen_host);
    free(c->public_url);
    free(c->state);
    free(c->plugins);
    free(c->scripts);
    free(c->log_level);
    free(c);
}

const struct conf_channel *config_channel(const struct config *c,
                                          const char *name)
{
    for (size_t i = 0; i < c->nchannels; i++)
        if (strcmp(c->channels[i].name, name) == 0)
            return &c->channels[i];
    return NULL;
}

const char *conf_channel_get(const struct conf_channel *ch, const char *key)
{
    for (size_t i = 0; i < ch->n; i++)
        if (strcmp(ch->kv[i].key, key) == 0)
            return ch->kv[i].value;
    return NULL;
}

int conf_channel_line(const struct conf_channel *ch, const char *key)
{
    for (size_t i = 0; i < ch->n; i++)
        if (strcmp(ch->kv[i].key, key) == 0)
            return ch->kv[i].line;
    return ch->line;
}

const char *config_core_value(const struct config *c, const char *key)
{
    if (strcmp(key, "public_url") == 0)
        return c->public_url;
    if (strcmp(key, "state") == 0)
        return c->state;
    if (strcmp(key, "scripts") == 0)
        return c->scripts;
    if (strcmp(key, "plugins") == 0)
        return c->plugins;
    if (strcmp(key, "log_level") == 0)
        return c->log_level;
    if (strcmp(key, "listen_host") == 0)
        return c->listen_host;
    return NULL;
}
