/*
 * host.c - the plugin host.
 *
 * Loads build/plugins/<name>.so once per plugin name with dlopen, checks the
 * ABI (version, struct size, mandatory callbacks) with a clear message,
 * validates every channel's keys against the plugin's key table (unknown,
 * missing, wrongly typed → error naming file, section, key), loads each
 * channel's script, and passes plugins the service table.
 */
#include "host.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "channel.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "outbox.h"
#include "router.h"
#include "script.h"
#include "scripts.h"
#include "store.h"
#include "webhook.h"
#include "ws.h"

struct plugin {
    char *name;
    void *dl;
    const struct fd_plugin *def;
    bool inited;
};

static struct {
    const struct config *cfg;
    struct router *router;
    struct plugin **plugins;
    size_t nplugins;
    struct fd_channel **channels;
    size_t nchannels;
} H;

/* ---- services ------------------------------------------------------------ */

static void svc_log(struct fd_channel *ch, enum fd_log_level lvl,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg((int)lvl, ch ? ch->platform : "plugin", ch ? ch->name : NULL, fmt,
             ap);
    va_end(ap);
}

static const struct fd_key *key_def(const struct fd_plugin *def,
                                    const char *key)
{
    for (const struct fd_key *k = def ? def->keys : NULL; k && k->name; k++)
        if (strcmp(k->name, key) == 0)
            return k;
    return NULL;
}

static const char *svc_conf(struct fd_channel *ch, const char *key)
{
    if (!ch || !key)
        return NULL;
    const char *v = ch->conf ? conf_channel_get(ch->conf, key) : NULL;
    if (v)
        return v;
    const struct fd_key *k = key_def(ch->def, key);
    return k ? k->def : NULL;
}

static const char *svc_core_conf(const char *key)
{
    return H.cfg && key ? config_core_value(H.cfg, key) : NULL;
}

static const char *svc_channel_name(struct fd_channel *ch)
{
    return ch ? ch->name : NULL;
}

static void svc_set_data(struct fd_channel *ch, void *d)
{
    if (ch)
        ch->data = d;
}

static void *svc_get_data(struct fd_channel *ch) { return ch ? ch->data : NULL; }

/* Plugins keep their state under "plugin:<channel>", apart from the
 * script's fd.store (under the channel's own name), so neither can
 * overwrite the other's keys. */
static void plugin_ns(const struct fd_channel *ch, char *out, size_t n)
{
    snprintf(out, n, STORE_PLUGIN_NS "%s", ch->name);
}

static char *svc_kv_get(struct fd_channel *ch, const char *key)
{
    char ns[96];
    if (!ch || !key)
        return NULL;
    plugin_ns(ch, ns, sizeof ns);
    return store_kv_get(router_store(ch->router), ns, key);
}

static int svc_kv_set(struct fd_channel *ch, const char *key,
                      const char *value)
{
    char ns[96];
    if (!ch || !key)
        return FD_EINVAL;
    plugin_ns(ch, ns, sizeof ns);
    return store_kv_set(router_store(ch->router), ns, key, value) < 0
               ? FD_ESTORE
               : FD_OK;
}

static void svc_set_caps(struct fd_channel *ch, unsigned caps)
{
    if (ch)
        ch->caps = caps;
}

static bool svc_ct_equal(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    size_t la = strlen(a), lb = strlen(b);
    /* Compare over the longer length so timing does not reveal a prefix. */
    unsigned char diff = (unsigned char)(la != lb);
    size_t n = la > lb ? la : lb;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)((i < la ? a[i] : 0) ^ (i < lb ? b[i] : 0));
    return diff == 0;
}

static bool svc_hmac_ok(const char *key, const void *data, size_t len,
                        const char *hex)
{
    if (!key || !hex || (!data && len))
        return false;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)strlen(key), data, len, mac, &mlen))
        return false;
    char want[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int i = 0; i < mlen; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    /* Accept upper-case hex from the sender as well. */
    char got[2 * EVP_MAX_MD_SIZE + 1];
    size_t hl = strlen(hex);
    if (hl != 2 * mlen)
        return false;
    for (size_t i = 0; i <= hl; i++)
        got[i] = (char)((hex[i] >= 'A' && hex[i] <= 'F') ? hex[i] + 32 : hex[i]);
    return CRYPTO_memcmp(want, got, hl) == 0;
}

static int svc_random_hex(char *out, size_t n)
{
    unsigned char b[256];
    if (!out || n == 0 || n > sizeof b || RAND_bytes(b, (int)n) != 1)
        return FD_EINVAL;
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return FD_OK;
}

static size_t utf8_len(unsigned char c)
{
    return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

static size_t svc_text_cut(const char *s, size_t len, size_t max, int unit)
{
    if (!s || !len)
        return 0;
    size_t i = 0, n = 0, last_break = 0;
    while (i < len) {
        size_t cl = utf8_len((unsigned char)s[i]);
        if (i + cl > len)
            cl = len - i; /* a truncated character at the end */
        size_t units = unit == FD_TEXT_BYTES ? cl
                       : unit == FD_TEXT_UTF16 && cl == 4 ? 2 : 1;
        if (n + units > max)
            break;
        n += units;
        if (s[i] == '\n' || s[i] == ' ')
            last_break = i + 1;
        i += cl;
    }
    if (i == 0) /* not even one character fits: still make progress */
        return utf8_len((unsigned char)s[0]) < len ? utf8_len((unsigned char)s[0]) : len;
    if (i < len && last_break && last_break >= i - i / 5)
        return last_break;
    return i;
}

static int svc_backoff_ms(int attempt, int base_ms, int max_ms)
{
    if (attempt < 1)
        attempt = 1;
    long v = (long)(base_ms > 0 ? base_ms : 1000) << (attempt > 20 ? 20 : attempt - 1);
    if (max_ms > 0 && v > max_ms)
        v = max_ms;
    long jitter = (long)(random() % (v * 2 / 5 + 1)) - v / 5;
    return (int)(v + jitter);
}

static const char *svc_response_header(const struct fd_http_response *r,
                                       const char *name)
{
    return http_response_header(r, name);
}

static struct fd_http_call *svc_http(struct fd_channel *ch,
                                     const struct fd_http_request *req,
                                     fd_http_done_fn done, void *ud)
{
    return http_request(ch, req, done, ud);
}

static const struct fd_host services = {
    .abi = FD_PLUGIN_ABI,
    .size = sizeof(struct fd_host),
    .log = svc_log,
    .conf = svc_conf,
    .core_conf = svc_core_conf,
    .channel_name = svc_channel_name,
    .set_data = svc_set_data,
    .get_data = svc_get_data,
    .deliver = router_deliver,
    .send_done = outbox_send_done,
    .http = svc_http,
    .http_cancel = http_cancel,
    .timer_add = loop_timer_add,
    .timer_cancel = loop_timer_cancel,
    .ws_connect = ws_connect,
    .ws_send = ws_send,
    .ws_close = ws_close,
    .conn_set_data = ws_conn_set_data,
    .conn_get_data = ws_conn_get_data,
    .reply_status = webhook_reply_status,
    .reply_type = webhook_reply_type,
    .reply_body = webhook_reply_body,
    .header = webhook_header,
    .kv_get = svc_kv_get,
    .kv_set = svc_kv_set,
    .ct_equal = svc_ct_equal,
    .hmac_sha256_hex_ok = svc_hmac_ok,
    .random_hex = svc_random_hex,
    .text_cut = svc_text_cut,
    .backoff_ms = svc_backoff_ms,
    .set_caps = svc_set_caps,
    .response_header = svc_response_header,
    .commit = router_commit,
};

const struct fd_host *host_services(void) { return &services; }
const struct config *host_config(void) { return H.cfg; }

/* ---- loading ---------------------------------------------------------------- */

static struct plugin *plugin_load(const char *name, const char *where,
                                  struct errlist *errs)
{
    for (size_t i = 0; i < H.nplugins; i++)
        if (strcmp(H.plugins[i]->name, name) == 0)
            return H.plugins[i]->def ? H.plugins[i] : NULL;
    struct plugin *p = calloc(1, sizeof *p);
    struct plugin **v = realloc(H.plugins, (H.nplugins + 1) * sizeof *v);
    if (!p || !v) {
        free(p);
        return NULL;
    }
    H.plugins = v;
    H.plugins[H.nplugins++] = p;
    p->name = strdup(name);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.so", H.cfg->plugins, name);
    bool valid = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") ==
                 strlen(name);
    p->dl = valid ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!p->dl) {
        errlist_add(errs, "%s plugin: cannot load plugin \"%s\" from %s: %s",
                    where, name, path, valid ? dlerror() : "invalid name");
        return NULL;
    }
    const struct fd_plugin *def = dlsym(p->dl, "frontdesk_plugin");
    if (!def) {
        errlist_add(errs, "%s plugin: %s exports no frontdesk_plugin symbol",
                    where, path);
        return NULL;
    }
    if (def->abi != FD_PLUGIN_ABI) {
        errlist_add(errs,
                    "%s plugin: %s was built for plugin ABI %u, this frontdesk "
                    "speaks ABI %u: rebuild the plugin against this plugin_api.h",
                    where, path, def->abi, FD_PLUGIN_ABI);
        return NULL;
    }
    if (def->size < sizeof(struct fd_plugin) || !def->name || !def->start ||
        !def->stop || !def->send) {
        errlist_add(errs,
                    "%s plugin: %s lacks a mandatory part (name, start, stop, "
                    "send) or is older than this ABI",
                    where, path);
        return NULL;
    }
    if (def->init && def->init(&services) < 0) {
        errlist_add(errs, "%s plugin: %s failed to initialise", where, path);
        return NULL;
    }
    p->inited = true;
    p->def = def;
    return p;
}

static bool value_ok(const struct fd_key *k, const char *v, char *why,
                     size_t n)
{
    long num;
    switch (k->type) {
    case FD_KEY_STRING:
        return true;
    case FD_KEY_URL:
        if (!strncmp(v, "http://", 7) || !strncmp(v, "https://", 8) ||
            !strncmp(v, "ws://", 5) || !strncmp(v, "wss://", 6))
            return true;
        snprintf(why, n, "want an http(s):// URL, got \"%s\"", v);
        return false;
    case FD_KEY_INT:
        if (config_parse_long(v, -2147483647L, 2147483647L, &num) == 0)
            return true;
        snprintf(why, n, "want a whole number, got \"%s\"", v);
        return false;
    case FD_KEY_BOOL:
        if (config_parse_bool(v) >= 0)
            return true;
        snprintf(why, n, "want yes or no, got \"%s\"", v);
        return false;
    case FD_KEY_ENUM: {
        const char *c = k->choices ? k->choices : "";
        size_t vl = strlen(v);
        while (*c) {
            const char *bar = strchr(c, '|');
            size_t cl = bar ? (size_t)(bar - c) : strlen(c);
            if (cl == vl && strncmp(c, v, vl) == 0)
                return true;
            c += cl + (bar ? 1 : 0);
        }
        snprintf(why, n, "want one of %s, got \"%s\"", k->choices, v);
        return false;
    }
    }
    return true;
}

static void check_keys(const struct conf_channel *cc, const struct fd_plugin *def,
                       struct errlist *errs)
{
    const char *file = H.cfg->path;
    for (size_t i = 0; i < cc->n; i++) {
        const char *key = cc->kv[i].key;
        if (!strcmp(key, "plugin") || !strcmp(key, "script"))
            continue;
        if (!strcmp(key, "rate_per_s") || !strcmp(key, "chat_per_min") ||
            !strcmp(key, "dm_per_min")) {
            char *end;
            double v = strtod(cc->kv[i].value, &end);
            if (*end || end == cc->kv[i].value || v < 0 || v > 1e6)
                errlist_add(errs, "%s:%d: [channel:%s] %s: want a number >= 0 "
                            "(0: no limit), got \"%s\"", file, cc->kv[i].line,
                            cc->name, key, cc->kv[i].value);
            continue;
        }
        const struct fd_key *k = key_def(def, key);
        char why[300];
        if (!k)
            errlist_add(errs, "%s:%d: [channel:%s] %s: unknown key for plugin %s",
                        file, cc->kv[i].line, cc->name, key, def->name);
        else if (!value_ok(k, cc->kv[i].value, why, sizeof why))
            errlist_add(errs, "%s:%d: [channel:%s] %s: %s", file,
                        cc->kv[i].line, cc->name, key, why);
    }
    for (const struct fd_key *k = def->keys; k && k->name; k++)
        if ((k->flags & FD_KEY_REQUIRED) && !conf_channel_get(cc, k->name))
            errlist_add(errs, "%s:%d: [channel:%s] %s: missing required key (%s)",
                        file, cc->line, cc->name, k->name,
                        k->help ? k->help : def->name);
}

/* A core rate key of the channel, or the plugin's published default. */
static double rate(const struct conf_channel *cc, const char *key, double def)
{
    const char *v = conf_channel_get(cc, key);
    return v ? strtod(v, NULL) : def;
}

int host_load(const struct config *cfg, struct router *r, struct errlist *errs)
{
    size_t before = errs->n;
    H.cfg = cfg;
    H.router = r;
    H.channels = calloc(cfg->nchannels ? cfg->nchannels : 1, sizeof *H.channels);
    if (!H.channels)
        return -1;
    for (size_t i = 0; i < cfg->nchannels; i++) {
        const struct conf_channel *cc = &cfg->channels[i];
        if (!cc->plugin || !cc->script)
            continue; /* reported by config.c */
        char where[256];
        snprintf(where, sizeof where, "%s:%d: [channel:%s]", cfg->path,
                 conf_channel_line(cc, "plugin"), cc->name);
        struct plugin *p = plugin_load(cc->plugin, where, errs);
        if (!p)
            continue;
        check_keys(cc, p->def, errs);
        struct fd_channel *ch = calloc(1, sizeof *ch);
        if (!ch)
            return -1;
        H.channels[H.nchannels++] = ch;
        ch->name = strdup(cc->name);
        ch->conf = cc;
        ch->plugin = p;
        ch->def = p->def;
        ch->platform = p->def->name;
        ch->caps = p->def->caps;
        ch->router = r;
        ch->rate_per_s = rate(cc, "rate_per_s", p->def->rate_per_s);
        ch->chat_per_min = rate(cc, "chat_per_min", p->def->chat_per_min);
        ch->dm_per_min = rate(cc, "dm_per_min", p->def->dm_per_min);
        if (p->def->check) {
            char err[512] = "";
            if (p->def->check(ch, err, sizeof err) < 0)
                errlist_add(errs, "%s:%d: [channel:%s] %s", cfg->path, cc->line,
                            cc->name, err[0] ? err : "invalid configuration");
        }
        char err[1024];
        if (scripts_attach(ch, cfg, cc->script, err, sizeof err) < 0)
            errlist_add(errs, "%s:%d: [channel:%s] script: %s", cfg->path,
                        conf_channel_line(cc, "script"), cc->name, err);
    }
    return errs->n == before ? 0 : -1;
}

int host_start(void)
{
    int rc = 0;
    for (size_t i = 0; i < H.nchannels; i++) {
        struct fd_channel *ch = H.channels[i];
        if (ch->def->start(ch) < 0) {
            log_msg(LOG_ERROR, ch->platform, ch->name, "failed to start");
            rc = -1;
            continue;
        }
        ch->started = true;
        log_msg(LOG_INFO, ch->platform, ch->name, "started (script %s)",
                ch->script_path);
    }
    return rc;
}

static void channel_stop(struct fd_channel *ch)
{
    if (ch->started) {
        /* Cancel first: done callbacks may still use the plugin's state. */
        ch->stopping = true;
        /* Sockets first: their CLOSED events may still touch timers. */
        http_cancel_channel(ch);
        ws_close_channel(ch);
        loop_timer_cancel_channel(ch);
        ch->def->stop(ch);
        ch->started = false;
    }
    outbox_channel_free(ch);
    scripts_detach(ch);
    free(ch->name);
    free(ch);
}

void host_unload(void)
{
    for (size_t i = 0; i < H.nchannels; i++)
        channel_stop(H.channels[i]);
    free(H.channels);
    H.channels = NULL;
    H.nchannels = 0;
    for (size_t i = 0; i < H.nplugins; i++) {
        struct plugin *p = H.plugins[i];
        if (p->inited && p->def->deinit)
            p->def->deinit();
        if (p->dl && !getenv("FRONTDESK_KEEP_PLUGINS"))
            dlclose(p->dl);
        free(p->name);
        free(p);
    }
    free(H.plugins);
    H.plugins = NULL;
    H.nplugins = 0;
}

struct fd_channel *host_channel(const char *name)
{
    for (size_t i = 0; i < H.nchannels; i++)
        if (strcmp(H.channels[i]->name, name) == 0)
            return H.channels[i];
    return NULL;
}

struct fd_channel *host_web_channel(void)
{
    for (size_t i = 0; i < H.nchannels; i++)
        if (H.channels[i]->caps & FD_CAP_WEBPAGE)
            return H.channels[i];
    return NULL;
}

struct fd_channel **host_channels(size_t *n)
{
    *n = H.nchannels;
    return H.channels;
}
