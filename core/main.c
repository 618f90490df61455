/*
 * main.c - the command line, start and stop order, and the only exit().
 *
 *   frontdesk run   [-c config.ini]   the daemon, in the foreground
 *   frontdesk check [-c config.ini]   every problem of config, plugins, scripts
 *   frontdesk try   [--json] [--private] [--user NAME] [--platform P] SCRIPT TEXT
 *   frontdesk test  [PATH...]         run *_test.lua files
 *   frontdesk outbox [-c config.ini] [retry ID]   dead letters
 *   frontdesk version
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "config.h"
#include "host.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "outbox.h"
#include "router.h"
#include "scripts.h"
#include "store.h"
#include "version.h"
#include "webhook.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: frontdesk run   [-c config.ini]\n"
            "       frontdesk check [-c config.ini]\n"
            "       frontdesk try   [--json] [--private] [--user NAME] [--platform P] SCRIPT TEXT\n"
            "       frontdesk test  [PATH...]\n"
            "       frontdesk outbox [-c config.ini] [retry ID]\n"
            "       frontdesk version\n");
}

static const char *config_arg(int argc, char **argv)
{
    for (int i = 2; i < argc - 1; i++)
        if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))
            return argv[i + 1];
    return "config.ini";
}

static void print_errors(const struct errlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        fprintf(stderr, "%s\n", e->v[i]);
}

/* ---- run ------------------------------------------------------------------ */

static struct {
    const struct config *cfg;
    struct router *router;
    struct loop_timer *drain, *prune;
    long long drain_deadline;
    bool draining;
    int sigfd;
} D = {.sigfd = -1};

static void drain_check(void *ud)
{
    (void)ud;
    if (outbox_in_flight() == 0 || store_now_ms() >= D.drain_deadline) {
        if (outbox_in_flight())
            log_warn("core", "drain time over: %d send(s) still in flight, kept "
                     "for the next start", outbox_in_flight());
        loop_stop();
        return;
    }
    loop_timer_schedule(D.drain, 50);
}

static void start_drain(void)
{
    if (D.draining)
        return;
    D.draining = true;
    log_info("core", "stopping: no new messages, finishing sends for up to %d s",
             D.cfg->drain_seconds);
    webhook_set_draining(true);
    router_set_draining(D.router, true);
    outbox_pause(true);
    D.drain_deadline = store_now_ms() + (long long)D.cfg->drain_seconds * 1000;
    drain_check(NULL);
}

static void on_signal(int fd, void *ud)
{
    (void)ud;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            log_info("core", "SIGHUP: reloading scripts, rescanning the outbox");
            scripts_reload_all();
            outbox_resume(router_store(D.router), true);
        } else if (D.draining) {
            log_warn("core", "second stop signal: exiting now");
            loop_stop();
        } else {
            start_drain();
        }
    }
}

/* Store batching: a batch opens with the first write of a loop turn and is
 * committed at its end (or before a plugin's own request). */
static bool flush_turn(void)
{
    if (!router_batch_open(D.router))
        return false;
    router_flush(D.router);
    return true;
}

/* A plugin's own request (a poll confirming updates) never goes out before
 * the deliveries it confirms are committed; outbox sends carry entries
 * committed already and need not wait. */
static void flush_before_request(void)
{
    if (!outbox_sending())
        router_flush(D.router);
}
static bool batch_open(void) { return router_batch_open(D.router); }

#define DAY_MS (24LL * 3600 * 1000)
#define WEEK_MS (7 * DAY_MS)
#define PRUNE_CHUNK 500

/* Deletes in chunks until one comes back short (returns true: all done)
 * or the loop time runs out at `until`; adds what went to *deleted. */
static bool prune_chunks(int (*chunk)(struct store *, int64_t, int),
                         struct store *st, int64_t before, int64_t until,
                         int *deleted)
{
    int n = PRUNE_CHUNK;
    while (n == PRUNE_CHUNK && store_now_ms() < until) {
        n = chunk(st, before, PRUNE_CHUNK);
        *deleted += n > 0 ? n : 0;
    }
    return n < PRUNE_CHUNK;
}

static void prune(void *ud)
{
    (void)ud;
    struct store *st = router_store(D.router);
    /* Platforms retry for hours (Telegram up to a day): keep a week. */
    store_seen_prune(st, store_now_ms() - WEEK_MS);
    /* A DM the platform refused waits for the user to open the private
     * chat; after a week it is a dead letter, listed for the team. */
    int n = store_outbox_expire_dms(st, store_now_ms() - WEEK_MS,
                                    "the user did not open the private chat "
                                    "within 7 days");
    if (n > 0)
        log_warn("outbox", "%d DM(s) waited 7 days for their user to open "
                 "the private chat: now dead letters (frontdesk outbox)", n);
    /* Sent entries are kept a week (for inspection), then deleted, in
     * chunks of at most ~10 ms of loop time; a backlog continues soon. */
    int64_t until = store_now_ms() + 10;
    int sent = 0, cases = 0, entries = 0;
    bool done = prune_chunks(store_outbox_prune, st, store_now_ms() - WEEK_MS,
                             until, &sent);
    /* Cases nobody touched for case_retention_days go the same way, and so
     * do plugins' entries about users (links, DM channels, window times):
     * the state file does not grow with every customer ever seen. */
    int64_t keep_ms = D.cfg->case_retention_days * DAY_MS;
    if (done && keep_ms > 0)
        done = prune_chunks(store_case_prune, st, store_now_ms() - keep_ms,
                            until, &cases) &&
               prune_chunks(store_kv_prune, st, store_now_ms() - keep_ms,
                            until, &entries);
    if (cases > 0 || entries > 0)
        log_info("core", "%d case(s) and %d plugin entr%s untouched for %d "
                 "days deleted", cases, entries, entries == 1 ? "y" : "ies",
                 D.cfg->case_retention_days);
    loop_timer_schedule(D.prune, done ? 3600 * 1000 : 1000);
}

static int cmd_run(int argc, char **argv)
{
    const char *path = config_arg(argc, argv);
    struct errlist errs = {0};
    struct config *cfg = config_load(path, &errs);
    struct store *st = NULL;
    int rc = 1;
    if (errs.n) {
        print_errors(&errs);
        fprintf(stderr, "frontdesk: %zu problem(s) in %s; not starting\n", errs.n,
                path);
        goto out;
    }
    log_set_level_name(cfg->log_level);
    if (store_open(cfg->state, &st) < 0)
        goto out;
    D.cfg = cfg;
    D.router = router_new(st, cfg->case_idle_hours);
    scripts_set_limits(cfg->script_budget, cfg->script_memory_mb);
    if (host_load(cfg, D.router, &errs) < 0) {
        print_errors(&errs);
        fprintf(stderr, "frontdesk: %zu problem(s); not starting\n", errs.n);
        goto out;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit makes the store's writes fail (EFBIG: a failed
     * commit the platforms retry), not the daemon die. */
    signal(SIGXFSZ, SIG_IGN);
    D.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (loop_init(cfg) < 0)
        goto out;
    webhook_set_limits(cfg->max_body);
    outbox_set_store(st);
    struct loop_watch *sw = loop_watch_fd(D.sigfd, on_signal, NULL);
    D.drain = loop_timer_new(drain_check, NULL);
    /* Store writes of one loop turn share one transaction. */
    router_set_batching(D.router, true, webhook_committed);
    loop_on_turn(flush_turn);
    loop_on_turn(outbox_turn);
    loop_on_turn(http_turn);
    webhook_set_batch_probe(batch_open);
    http_set_before_request(flush_before_request);
    D.prune = loop_timer_new(prune, NULL);
    loop_timer_schedule(D.prune, 60 * 1000);
    scripts_watch_start(cfg);
    host_start();
    outbox_resume(st, false);
    log_info("core", "frontdesk %s serving on http://%s:%d (%s)", FRONTDESK_VERSION,
             cfg->listen_host, cfg->listen_port, cfg->public_url);
    loop_run();
    router_flush(D.router);
    log_info("core", "stopped");
    scripts_watch_stop();
    loop_unwatch(sw);
    loop_timer_free(D.drain);
    loop_timer_free(D.prune);
    host_unload();
    loop_cleanup();
    webhook_cleanup();
    rc = 0;
out:
    host_unload();
    router_free(D.router);
    store_close(st);
    if (D.sigfd >= 0)
        close(D.sigfd);
    config_free(cfg);
    errlist_free(&errs);
    return rc;
}

/* ---- check ---------------------------------------------------------------- */

static int cmd_check(int argc, char **argv)
{
    const char *path = config_arg(argc, argv);
    struct errlist errs = {0};
    struct config *cfg = config_load(path, &errs);
    if (cfg) {
        log_set_level(LOG_ERROR);
        scripts_set_limits(cfg->script_budget, cfg->script_memory_mb);
        struct store *st = NULL;
        store_open(":memory:", &st);
        struct router *r = router_new(st, cfg->case_idle_hours);
        host_load(cfg, r, &errs);
        size_t n;
        struct fd_channel **chs = host_channels(&n);
        for (size_t i = 0; i < n; i++) {
            char *test = chs[i]->script_path ? scripts_test_of(chs[i]->script_path)
                                             : NULL;
            int passed = 0, failed = 0;
            char err[512] = "";
            if (test && (sandbox_run_tests(test, chs[i]->script_path,
                                           chs[i]->lib_dir, NULL, &passed,
                                           &failed, NULL, err, sizeof err) < 0 ||
                         failed))
                errlist_add(&errs, "[channel:%s] %s: %d test(s) fail%s%s",
                            chs[i]->name, test, failed, *err ? ": " : "", err);
            free(test);
        }
        if (!errs.n)
            printf("%s: ok (%zu channel(s))\n", path, n);
        host_unload();
        router_free(r);
        store_close(st);
        config_free(cfg);
    }
    print_errors(&errs);
    int rc = errs.n ? 1 : 0;
    if (errs.n)
        fprintf(stderr, "%zu problem(s)\n", errs.n);
    errlist_free(&errs);
    return rc;
}

/* ---- try ------------------------------------------------------------------ */

static int cmd_try(int argc, char **argv)
{
    bool json = false, priv = false;
    const char *user = NULL, *platform = NULL, *script = NULL, *text = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json"))
            json = true;
        else if (!strcmp(a, "--private"))
            priv = true;
        else if ((!strcmp(a, "--user") || !strcmp(a, "--platform")) && i + 1 < argc)
            *(a[2] == 'u' ? &user : &platform) = argv[++i];
        else if (a[0] == '-' && a[1] == '-' && a[2]) {
            fprintf(stderr, "frontdesk try: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!script)
            script = a;
        else if (!text)
            text = a;
        else {
            fprintf(stderr, "frontdesk try: one SCRIPT and one TEXT (quote the text)\n");
            return 2;
        }
    }
    if (!script || !text) {
        usage(stderr);
        return 2;
    }
    log_set_level(LOG_WARN);
    char err[1024];
    struct sandbox *sb = sandbox_new(platform ? platform : "webchat", 0xffffffffu,
                                     script, NULL, NULL, err, sizeof err);
    if (!sb) {
        fprintf(stderr, "frontdesk try: %s\n", err);
        return 1;
    }
    cJSON *acts = sandbox_send(sb, text, priv, user, platform, err, sizeof err);
    if (!acts) {
        fprintf(stderr, "frontdesk try: %s\n", err);
        sandbox_free(sb);
        return 1;
    }
    cJSON *a;
    cJSON_ArrayForEach(a, acts)
    {
        if (json) {
            char *s = cJSON_PrintUnformatted(a);
            if (s)
                printf("%s\n", s);
            free(s);
            continue;
        }
        const char *act = cJSON_GetStringValue(cJSON_GetObjectItem(a, "action"));
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(a, "text"));
        const char *q = cJSON_GetStringValue(cJSON_GetObjectItem(a, "queue"));
        printf("%-8s %s", act ? act : "?", t ? t : "");
        if (q)
            printf("%s[queue %s]", t ? " " : "", q);
        printf("\n");
    }
    if (!cJSON_GetArraySize(acts) && !json)
        printf("(no action: the script stays silent)\n");
    cJSON_Delete(acts);
    sandbox_free(sb);
    return 0;
}

/* ---- test ----------------------------------------------------------------- */

static int test_file(const char *path, int *passed, int *failed)
{
    char *script = scripts_tested_by(path);
    if (!script)
        return 0;
    int p = 0, f = 0;
    char err[1024] = "";
    if (sandbox_run_tests(path, script, NULL, NULL, &p, &f, stdout, err,
                          sizeof err) < 0) {
        printf("not ok - %s: %s\n", path, err);
        f++;
    }
    *passed += p;
    *failed += f;
    free(script);
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_dir(const char *dir, int *passed, int *failed, int *files)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 9 && !strcmp(e->d_name + l - 9, "_test.lua")) {
            char **v = realloc(names, (n + 1) * sizeof *v);
            if (!v)
                break;
            names = v;
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        *files += test_file(p, passed, failed);
        free(names[i]);
    }
    free(names);
}

static int cmd_test(int argc, char **argv)
{
    log_set_level(LOG_ERROR);
    int passed = 0, failed = 0, files = 0;
    char *def[] = {"scripts"};
    char **paths = argc > 2 ? argv + 2 : def;
    int np = argc > 2 ? argc - 2 : 1;
    for (int i = 0; i < np; i++) {
        struct stat st;
        if (stat(paths[i], &st) < 0) {
            printf("not ok - %s: %s\n", paths[i], strerror(errno));
            failed++;
        } else if (S_ISDIR(st.st_mode)) {
            test_dir(paths[i], &passed, &failed, &files);
        } else if (test_file(paths[i], &passed, &failed)) {
            files++;
        } else {
            printf("not ok - %s: not a *_test.lua file\n", paths[i]);
            failed++;
        }
    }
    if (!files && !failed)
        printf("no *_test.lua files found\n");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* ---- outbox --------------------------------------------------------------- */

static void print_dead(void *ud, struct outbox_rec *r)
{
    (void)ud;
    static const char *const kinds[] = {"reply", "dm", "hide"};
    printf("%" PRId64 "\t%s\t%s\tcase %" PRId64 "\t%d attempt(s)\t%s\n", r->id,
           r->channel ? r->channel : "?",
           r->kind >= 0 && r->kind < 3 ? kinds[r->kind] : "?", r->case_id,
           r->attempts, r->error ? r->error : "");
}

static int cmd_outbox(int argc, char **argv)
{
    struct errlist errs = {0};
    struct config *cfg = config_load(config_arg(argc, argv), &errs);
    struct store *st = NULL;
    int rc = 1;
    if (!cfg || store_open(cfg->state, &st) < 0) {
        print_errors(&errs);
        goto out;
    }
    int64_t retry = 0;
    for (int i = 2; i < argc - 1; i++)
        if (!strcmp(argv[i], "retry"))
            retry = strtoll(argv[i + 1], NULL, 10);
    if (retry > 0) {
        struct outbox_rec r = {0};
        if (store_outbox_get(st, retry, &r) != 1 || r.state != OUTBOX_DEAD) {
            fprintf(stderr, "frontdesk outbox: no dead entry %" PRId64 "\n", retry);
            outbox_rec_clear(&r);
            goto out;
        }
        store_outbox_set(st, retry, OUTBOX_PENDING, 0, 0, NULL);
        outbox_rec_clear(&r);
        printf("entry %" PRId64 " queued again; a running daemon sends it on "
               "SIGHUP or its next start\n", retry);
        rc = 0;
        goto out;
    }
    store_outbox_list(st, OUTBOX_DEAD, print_dead, NULL);
    rc = 0;
out:
    store_close(st);
    config_free(cfg);
    errlist_free(&errs);
    return rc;
}

int main(int argc, char **argv)
{
    srandom((unsigned)time(NULL) ^ (unsigned)getpid() << 16);
    if (argc < 2) {
        usage(stderr);
        exit(2);
    }
    const char *cmd = argv[1];
    int rc;
    if (!strcmp(cmd, "run"))
        rc = cmd_run(argc, argv);
    else if (!strcmp(cmd, "check"))
        rc = cmd_check(argc, argv);
    else if (!strcmp(cmd, "try"))
        rc = cmd_try(argc, argv);
    else if (!strcmp(cmd, "test"))
        rc = cmd_test(argc, argv);
    else if (!strcmp(cmd, "outbox"))
        rc = cmd_outbox(argc, argv);
    else if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("frontdesk %s (plugin ABI %d)\n", FRONTDESK_VERSION, FD_PLUGIN_ABI);
        rc = 0;
    } else if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        rc = 0;
    } else {
        fprintf(stderr, "frontdesk: unknown command \"%s\"\n", cmd);
        usage(stderr);
        rc = 2;
    }
    exit(rc);
}
