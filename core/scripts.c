/*
 * scripts.c - see scripts.h.
 *
 * A reload compiles the new version beside the old one; the swap is a
 * pointer assignment between two messages on the single loop thread, so no
 * message is ever half-processed across it.  Editors save in different
 * ways (write in place, or write a temp file and rename): IN_CLOSE_WRITE and
 * IN_MOVED_TO cover both, and a file is reloaded only when its content
 * changed, so one save reloads once.
 */
#include "scripts.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "config.h"
#include "host.h"
#include "log.h"
#include "loop.h"
#include "router.h"
#include "store.h"

static struct script_limits limits;
static struct {
    int fd;
    int wd_scripts, wd_lib;
    struct loop_watch *watch;
    char *dir, *lib;
} W = {.fd = -1, .wd_scripts = -1, .wd_lib = -1};

void scripts_set_limits(long budget, long memory_mb)
{
    limits.instructions = budget;
    limits.memory = (size_t)memory_mb << 20;
}

const struct script_limits *scripts_limits(void) { return &limits; }

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *scripts_lib_dir(const char *script_path)
{
    const char *slash = strrchr(script_path, '/');
    if (!slash)
        return strdup("lib");
    size_t dl = (size_t)(slash - script_path);
    size_t n = dl + 5;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%.*s/lib", (int)dl, script_path);
    return p;
}

char *scripts_tested_by(const char *t)
{
    size_t n = strlen(t);
    if (n < 10 || strcmp(t + n - 9, "_test.lua") != 0)
        return NULL;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%.*s.lua", (int)(n - 9), t);
    return p;
}

char *scripts_test_of(const char *s)
{
    size_t n = strlen(s);
    if (n < 5 || strcmp(s + n - 4, ".lua") != 0)
        return NULL;
    size_t m = n + 6;
    char *p = malloc(m);
    if (!p)
        return NULL;
    snprintf(p, m, "%.*s_test.lua", (int)(n - 4), s);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
        return p;
    free(p);
    return NULL;
}

/* ---- services for scripts ------------------------------------------------ */

static char *env_kv_get(void *ud, const char *key)
{
    struct fd_channel *ch = ud;
    return store_kv_get(router_store(ch->router), ch->name, key);
}

static int env_kv_set(void *ud, const char *key, const char *value)
{
    struct fd_channel *ch = ud;
    return store_kv_set(router_store(ch->router), ch->name, key, value);
}

static void env_log(void *ud, int level, const char *msg)
{
    struct fd_channel *ch = ud;
    log_msg(level, "script", ch->name, "%s", msg);
}

static int load_for(struct fd_channel *ch, const char *path, const char *lib,
                    struct script **out, char *err, size_t n)
{
    struct script_env env = {
        .ud = ch, .kv_get = env_kv_get, .kv_set = env_kv_set,
        .log = env_log, .caps = ch->caps,
    };
    return script_load(path, lib, &limits, &env, out, err, n);
}

int scripts_attach(struct fd_channel *ch, const struct config *cfg,
                   const char *script, char *err, size_t errlen)
{
    ch->script_path = script[0] == '/' ? strdup(script) : join(cfg->scripts, script);
    ch->lib_dir = join(cfg->scripts, "lib");
    if (!ch->script_path || !ch->lib_dir) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return load_for(ch, ch->script_path, ch->lib_dir, &ch->script, err, errlen);
}

void scripts_detach(struct fd_channel *ch)
{
    script_free(ch->script);
    ch->script = NULL;
    free(ch->script_path);
    free(ch->lib_dir);
    ch->script_path = ch->lib_dir = NULL;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int scripts_reload(struct fd_channel *ch)
{
    double t0 = now_ms();
    struct script *fresh = NULL;
    char err[1024];
    if (load_for(ch, ch->script_path, ch->lib_dir, &fresh, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, "script", ch->name,
                "reload failed, the previous version keeps serving: %s", err);
        return -1;
    }
    char *test = scripts_test_of(ch->script_path);
    if (test) {
        int passed = 0, failed = 0;
        char *buf = NULL;
        size_t blen = 0;
        FILE *out = open_memstream(&buf, &blen);
        /* The tests get their own copy with an in-memory store, so they
         * never touch the channel's real key/value data. */
        int rc = sandbox_run_tests(test, ch->script_path, ch->lib_dir, NULL,
                                   &passed, &failed, out, err, sizeof err);
        if (out)
            fclose(out);
        if (rc < 0 || failed > 0) {
            log_msg(LOG_ERROR, "script", ch->name,
                    "new version of %s fails its tests (%d passed, %d failed%s%s): "
                    "not swapped in, the previous version keeps serving",
                    ch->script_path, passed, failed, rc < 0 ? "; " : "",
                    rc < 0 ? err : "");
            for (char *line = buf; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                    *nl = '\0';
                if (strncmp(line, "not ok", 6) == 0)
                    log_msg(LOG_ERROR, "script", ch->name, "%s", line);
                line = nl ? nl + 1 : NULL;
            }
            free(buf);
            free(test);
            script_free(fresh);
            return -1;
        }
        free(buf);
        free(test);
    }
    script_free(ch->script);
    ch->script = fresh;
    ch->counters[CNT_RELOAD]++;
    log_msg(LOG_INFO, "script", ch->name, "reloaded %s in %.1f ms",
            ch->script_path, now_ms() - t0);
    return 0;
}

int scripts_reload_all(void)
{
    size_t n;
    struct fd_channel **chs = host_channels(&n);
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (scripts_reload(chs[i]) < 0)
            rc = -1;
    return rc;
}

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool is_lua(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".lua") == 0 && name[0] != '.';
}

static void on_change(int fd, void *ud)
{
    (void)ud;
    char ev[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n = read(fd, ev, sizeof ev);
    bool all = false;
    size_t nch;
    struct fd_channel **chs = host_channels(&nch);
    bool *todo = calloc(nch ? nch : 1, sizeof *todo);
    if (!todo)
        return;
    for (ssize_t off = 0; n > 0 && off < n;) {
        const struct inotify_event *e = (const void *)(ev + off);
        off += (ssize_t)(sizeof *e + e->len);
        if (!e->len || !is_lua(e->name))
            continue;
        if (e->wd == W.wd_lib) {
            all = true;
            continue;
        }
        for (size_t i = 0; i < nch; i++) {
            const char *sb = base(chs[i]->script_path);
            size_t sl = strlen(sb) - 4;
            if (strcmp(sb, e->name) == 0 ||
                (strncmp(sb, e->name, sl) == 0 &&
                 strcmp(e->name + sl, "_test.lua") == 0))
                todo[i] = true;
        }
    }
    for (size_t i = 0; i < nch; i++)
        if (all || todo[i])
            scripts_reload(chs[i]);
    free(todo);
}

int scripts_watch_start(const struct config *cfg)
{
    W.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (W.fd < 0) {
        log_warn("script", "inotify unavailable (%s): edits need SIGHUP",
                 strerror(errno));
        return -1;
    }
    uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO;
    W.dir = strdup(cfg->scripts);
    W.lib = join(cfg->scripts, "lib");
    W.wd_scripts = inotify_add_watch(W.fd, W.dir, mask);
    if (W.wd_scripts < 0)
        log_warn("script", "cannot watch %s: %s", W.dir, strerror(errno));
    W.wd_lib = inotify_add_watch(W.fd, W.lib, mask); /* lib/ is optional */
    W.watch = loop_watch_fd(W.fd, on_change, NULL);
    return W.watch ? 0 : -1;
}

void scripts_watch_stop(void)
{
    loop_unwatch(W.watch);
    W.watch = NULL;
    if (W.fd >= 0)
        close(W.fd);
    W.fd = -1;
    free(W.dir);
    free(W.lib);
    W.dir = W.lib = NULL;
}

/* ---- the offline sandbox ------------------------------------------------- */

struct sandbox {
    struct fd_channel ch;
    struct store *st;
    bool owns_script;
    unsigned seq;
};

static int sandbox_store(struct sandbox *sb)
{
    if (store_open(":memory:", &sb->st) < 0)
        return -1;
    sb->ch.router = router_new(sb->st, 24);
    return sb->ch.router ? 0 : -1;
}

static void sandbox_drop_store(struct sandbox *sb)
{
    router_free(sb->ch.router);
    store_close(sb->st);
    sb->ch.router = NULL;
    sb->st = NULL;
}

struct sandbox *sandbox_new(const char *platform, unsigned caps,
                            const char *script_path, const char *lib_dir,
                            struct script *use, char *err, size_t errlen)
{
    struct sandbox *sb = calloc(1, sizeof *sb);
    if (!sb)
        return NULL;
    sb->ch.name = strdup("offline");
    sb->ch.platform = platform ? platform : "webchat";
    sb->ch.caps = caps;
    sb->ch.script_path = strdup(script_path);
    sb->ch.lib_dir = lib_dir ? strdup(lib_dir) : scripts_lib_dir(script_path);
    if (sandbox_store(sb) < 0) {
        snprintf(err, errlen, "cannot open an in-memory store");
        sandbox_free(sb);
        return NULL;
    }
    if (use) {
        sb->ch.script = use;
    } else {
        if (load_for(&sb->ch, script_path, sb->ch.lib_dir, &sb->ch.script, err,
                     errlen) < 0) {
            sandbox_free(sb);
            return NULL;
        }
        sb->owns_script = true;
    }
    return sb;
}

void sandbox_free(struct sandbox *sb)
{
    if (!sb)
        return;
    if (sb->owns_script)
        script_free(sb->ch.script);
    sandbox_drop_store(sb);
    free(sb->ch.name);
    free(sb->ch.script_path);
    free(sb->ch.lib_dir);
    free(sb);
}

void sandbox_reset(struct sandbox *sb)
{
    sandbox_drop_store(sb);
    sandbox_store(sb);
}

cJSON *sandbox_send(struct sandbox *sb, const char *text, bool is_private,
                    const char *user, const char *platform, char *err,
                    size_t errlen)
{
    if (!sb->ch.router) {
        snprintf(err, errlen, "no store");
        return NULL;
    }
    char ev[32], mid[32], chat[160];
    sb->seq++;
    snprintf(ev, sizeof ev, "e%u", sb->seq);
    snprintf(mid, sizeof mid, "m%u", sb->seq);
    user = user && *user ? user : "customer";
    snprintf(chat, sizeof chat, is_private ? "dm:%s" : "public", user);
    struct fd_msg m = {
        .event_id = ev, .message_id = mid, .text = text ? text : "",
        .is_private = is_private, .user_id = user, .user_name = user,
        .chat_id = chat,
    };
    const char *saved = sb->ch.platform;
    if (platform && *platform)
        sb->ch.platform = platform;
    cJSON *out = cJSON_CreateArray();
    router_capture(sb->ch.router, out);
    int rc = router_deliver(&sb->ch, &m);
    router_capture(sb->ch.router, NULL);
    sb->ch.platform = saved;
    if (rc < 0) {
        snprintf(err, errlen, "the message could not be processed (%d)", rc);
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

static cJSON *hook_send(void *ud, const char *text, bool is_private,
                        const char *user, const char *platform, char *err,
                        size_t errlen)
{
    return sandbox_send(ud, text, is_private, user, platform, err, errlen);
}

static void hook_reset(void *ud) { sandbox_reset(ud); }

int sandbox_run_tests(const char *test_path, const char *script_path,
                      const char *lib_dir, struct script *use, int *passed,
                      int *failed, FILE *out, char *err, size_t errlen)
{
    struct sandbox *sb = sandbox_new("webchat", 0xffffffffu, script_path,
                                     lib_dir, use, err, errlen);
    if (!sb)
        return -1;
    struct script_test_hooks hooks = {.ud = sb, .send = hook_send,
                                      .reset = hook_reset};
    int rc = script_run_tests(test_path, sb->ch.lib_dir, &hooks, passed, failed,
                              out, err, errlen);
    sandbox_free(sb);
    return rc;
}
