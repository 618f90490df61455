/* test_router.c - the message path on an in-memory store: cases, the move
 * to private and the author's DM joining the case, deep-link case linking
 * with waiting DMs woken, handoff silence, script errors → handoff, and
 * that a failing script leaves no half-processed actions. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channel.h"
#include "check.h"
#include "outbox.h"
#include "router.h"
#include "script.h"
#include "store.h"

static const char *script =
    "function on_message(msg)\n"
    "  if msg.text == 'secret' then\n"
    "    msg:to_private{public='moved', private='hello in private'}\n"
    "  elseif msg.text == 'human' then msg:handoff{queue='q', note='n'}\n"
    "  elseif msg.text == 'half' then msg:reply('first'); error('then broken')\n"
    "  elseif msg.text == 'tag' then msg:tag('billing'); msg:reply('tagged')\n"
    "  else msg:reply(msg.case.state .. ':' .. msg.case.id) end\n"
    "end\n";

static const char *action(cJSON *a, int i, const char *field)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(a, i), field));
}

static int case_of(cJSON *a, int i)
{
    return (int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(a, i), "case"));
}

static struct fd_channel ch;
static unsigned seq;

static cJSON *deliver(const char *text, bool priv, const char *user,
                      const char *link, int *rc)
{
    char ev[16];
    snprintf(ev, sizeof ev, "e%u", ++seq);
    struct fd_msg m = {.event_id = ev, .text = text, .is_private = priv,
                       .user_id = user, .chat_id = priv ? user : "room",
                       .link_case = link};
    cJSON *cap = cJSON_CreateArray();
    router_capture(ch.router, cap);
    int r = router_deliver(&ch, &m);
    if (rc)
        *rc = r;
    router_capture(ch.router, NULL);
    return cap;
}

static int64_t waiting_id;
static void find_dm(void *ud, struct outbox_rec *r)
{
    if (r->kind == FD_ACTION_DM && r->case_id == *(int64_t *)ud)
        waiting_id = r->id;
}

static int npending;
static void count(void *ud, struct outbox_rec *r)
{
    (void)ud, (void)r;
    npending++;
}

/* host->commit: a plugin that confirms messages to the platform by itself
 * (poll offset, socket ack) learns whether its batch really committed.  A
 * commit is made to fail with a file size limit below what the WAL needs. */
static void test_commit(void)
{
    char db[64];
    snprintf(db, sizeof db, "/tmp/fdrouter-%d.db", (int)getpid());
    struct store *st = NULL;
    CHECK(store_open(db, &st) == 0, "file store");
    struct fd_channel a = {.name = "a", .platform = "test", .caps = ch.caps};
    struct fd_channel b = {.name = "b", .platform = "test", .caps = ch.caps};
    a.router = b.router = router_new(st, 24);
    a.script = b.script = ch.script;
    router_set_batching(a.router, true, NULL);

    struct fd_msg m1 = {.event_id = "c1", .text = "hi", .user_id = "u1"};
    CHECK(router_deliver(&a, &m1) == FD_OK, "batched delivery taken");
    CHECK(router_batch_open(a.router), "and waiting in the open batch");
    CHECK(router_commit(&a) == FD_OK, "commit says it is recorded");
    CHECK(!router_batch_open(a.router), "the batch is committed");
    CHECK(router_commit(&b) == FD_OK, "a channel that delivered nothing: OK");

    struct fd_msg m2 = {.event_id = "c2", .text = "hi", .user_id = "u2"};
    CHECK(router_deliver(&a, &m2) == FD_OK, "next delivery taken");
    struct stat sb;
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", db);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = stat(wal, &sb) == 0 ? (rlim_t)sb.st_size : 0;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    router_flush(a.router); /* the end of the loop turn: fails */
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(router_commit(&b) == FD_OK,
          "a channel with nothing in the failed batch is not told");
    CHECK(router_commit(&a) == FD_ESTORE,
          "the channel whose delivery was dropped is told");
    CHECK(router_commit(&a) == FD_OK, "once: the next call starts afresh");
    CHECK(router_deliver(&a, &m2) == FD_OK,
          "the dropped delivery is new again when the platform resends it");
    CHECK(router_commit(&a) == FD_OK, "and is committed this time");
    CHECK(router_deliver(&a, &m2) == FD_DUPLICATE, "for good");

    router_free(a.router);
    store_close(st);
    unlink(db);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", db);
    unlink(wal);
}

int main(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/fdrouter-%d.lua", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(script, f);
    fclose(f);
    char err[512];
    struct store *st = NULL;
    CHECK(store_open(":memory:", &st) == 0, "in-memory store");
    ch.name = "c";
    ch.platform = "test";
    ch.caps = 0xffffffffu;
    ch.router = router_new(st, 24);
    struct script_limits lim = {0};
    struct script_env env = {.caps = ch.caps};
    CHECK(script_load(path, NULL, &lim, &env, &ch.script, err, sizeof err) == 0,
          "script loads");
    int rc;
    cJSON *a;

    a = deliver("hi", false, "ann", NULL, NULL);
    CHECK_STR(action(a, 0, "text"), "bot:1", "a first message opens case 1 in state bot");
    cJSON_Delete(a);
    a = deliver("hi", false, "bob", NULL, NULL);
    CHECK_STR(action(a, 0, "text"), "bot:2", "another user gets another case");
    cJSON_Delete(a);

    a = deliver("secret", false, "ann", NULL, NULL);
    CHECK(cJSON_GetArraySize(a) == 2, "to_private gives two actions");
    CHECK_STR(action(a, 0, "action"), "reply", "first the public acknowledgement");
    CHECK_STR(action(a, 1, "action"), "dm", "then the private message");
    CHECK_STR(action(a, 1, "state"), "private", "the case is now private");
    cJSON_Delete(a);
    a = deliver("in the DM now", true, "ann", NULL, NULL);
    CHECK_STR(action(a, 0, "text"), "private:1", "the author's DM joins the same case");
    cJSON_Delete(a);

    a = deliver("human", false, "bob", NULL, NULL);
    CHECK_STR(action(a, 0, "action"), "handoff", "handoff is reported");
    CHECK_STR(action(a, 0, "queue"), "q", "with its queue");
    cJSON_Delete(a);
    a = deliver("hello?", false, "bob", NULL, NULL);
    CHECK_STR(action(a, 0, "action"), "held", "a human case gets no script answer");
    cJSON_Delete(a);

    a = deliver("half", false, "cid", NULL, NULL);
    CHECK(cJSON_GetArraySize(a) == 1, "a script error leaves only the handoff");
    CHECK_STR(action(a, 0, "action"), "handoff", "script error falls back to a handoff");
    CHECK(action(a, 0, "text") && strstr(action(a, 0, "text"), ":5:"),
          "the error names the script line");
    cJSON_Delete(a);

    a = deliver("tag", false, "dan", NULL, NULL);
    int dan_case = case_of(a, 0);
    cJSON_Delete(a);
    struct case_rec c;
    CHECK(store_case_get(st, dan_case, &c) == 1 && !strcmp(c.tag, "billing"),
          "msg:tag is stored on the case");

    /* A refused DM waits; the deep link of the same user wakes it. */
    a = deliver("secret", false, "dan", NULL, NULL);
    cJSON_Delete(a);
    int64_t cid = dan_case;
    store_outbox_list(st, OUTBOX_PENDING, find_dm, &cid);
    CHECK(waiting_id > 0, "the DM is in the outbox");
    store_outbox_set(st, waiting_id, OUTBOX_WAITING_DM, 1, 0, "403");
    char link[16];
    snprintf(link, sizeof link, "%d", dan_case);
    a = deliver("/start", true, "eve", link, NULL);
    CHECK(case_of(a, 0) != dan_case, "someone else's deep link opens their own case");
    cJSON_Delete(a);
    a = deliver("/start", true, "dan", link, &rc);
    CHECK(rc == FD_OK && case_of(a, 0) == dan_case, "the author's deep link continues the case");
    cJSON_Delete(a);
    struct outbox_rec r = {0};
    CHECK(store_outbox_get(st, waiting_id, &r) == 1 && r.state == OUTBOX_PENDING,
          "the waiting DM is pending again");
    outbox_rec_clear(&r);

    /* A deep link to a case retention has deleted opens a new case. */
    int64_t gone;
    store_case_create(st, ch.name, "gil", &gone);
    usleep(2000);
    store_case_prune(st, store_now_ms(), 1000);
    char old_link[24];
    snprintf(old_link, sizeof old_link, "%lld", (long long)gone);
    a = deliver("/start", true, "gil", old_link, &rc);
    CHECK(rc == FD_OK && case_of(a, 0) > 0 && case_of(a, 0) != gone,
          "a deep link to a deleted case opens a new one");
    cJSON_Delete(a);

    /* dedupe */
    struct fd_msg m = {.event_id = "same", .text = "x", .user_id = "fay"};
    CHECK(router_deliver(&ch, &m) == FD_OK, "a new event is accepted");
    CHECK(router_deliver(&ch, &m) == FD_DUPLICATE, "the same event id is a duplicate");
    struct fd_msg bad = {.event_id = "", .text = "x"};
    CHECK(router_deliver(&ch, &bad) == FD_EINVAL, "an empty event id is refused");
    npending = 0;
    store_outbox_list(st, OUTBOX_PENDING, count, NULL);
    CHECK(npending > 0, "actions were queued in the store's outbox");

    test_commit();

    script_free(ch.script);
    router_free(ch.router);
    store_close(st);
    unlink(path);
    return CHECK_DONE();
}
