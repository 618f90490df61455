/* test_store.c - store.c: dedupe, cases, outbox states, key/value, and that
 * a committed transaction survives reopening the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "plugin_api.h"
#include "store.h"

#define DAY_MS (24 * 3600 * 1000LL)

static int count;
static void count_rec(void *ud, struct outbox_rec *r)
{
    (void)ud, (void)r;
    count++;
}

/* Runs SQL on the file through a connection of its own, as another process
 * (or an older frontdesk) would. */
static void sql_on(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_open(path, &db);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fprintf(stderr, "# %s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    sqlite3_close(db);
}

static bool has_kv(struct store *s, const char *ns, const char *key)
{
    char *v = store_kv_get(s, ns, key);
    free(v);
    return v != NULL;
}

int main(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/fdstore-%d.db", (int)getpid());
    unlink(path);
    struct store *s;
    CHECK(store_open(path, &s) == 0, "store opens and creates its schema");

    CHECK(store_seen_add(s, "ch", "u1") == 1, "first delivery is new");
    CHECK(store_seen_add(s, "ch", "u1") == 0, "same delivery again is a duplicate");
    CHECK(store_seen_add(s, "other", "u1") == 1, "dedupe is per channel");

    int64_t id;
    CHECK(store_case_create(s, "ch", "alice", &id) == 0 && id > 0, "case created");
    struct case_rec c;
    CHECK(store_case_find_open(s, "ch", "alice", 0, &c) == 1 && c.id == id &&
              c.state == CASE_BOT,
          "open case found for the user");
    CHECK(store_case_find_open(s, "ch", "bob", 0, &c) == 0, "no case for another user");
    CHECK(store_case_find_open(s, "ch", "alice", store_now_ms() + 1000, &c) == 0,
          "an idle bot case counts as closed");
    store_case_update(s, id, CASE_PRIVATE, "billing", NULL, true);
    CHECK(store_case_find_open(s, "ch", "alice", store_now_ms() + 1000, &c) == 1 &&
              c.state == CASE_PRIVATE && !strcmp(c.tag, "billing") && c.messages == 1,
          "a private case stays open however idle, tag and count kept");
    store_case_update(s, id, CASE_CLOSED, NULL, NULL, false);
    CHECK(store_case_find_open(s, "ch", "alice", 0, &c) == 0, "closed case is not found");

    CHECK(store_begin(s) == 0, "begin");
    struct outbox_rec r = {.channel = "ch", .case_id = id, .kind = FD_ACTION_DM,
                           .text = "hello", .user_id = "alice"};
    CHECK(store_outbox_add(s, &r) == 0 && r.id > 0, "outbox entry added");
    CHECK(store_commit(s) == 0, "commit");
    count = 0;
    store_outbox_list(s, OUTBOX_PENDING, count_rec, NULL);
    CHECK(count == 1, "one pending entry");
    store_outbox_set(s, r.id, OUTBOX_WAITING_DM, 1, 0, "403");
    count = 0;
    store_outbox_list(s, OUTBOX_PENDING, count_rec, NULL);
    CHECK(count == 0, "waiting DM is not pending");
    CHECK(store_outbox_expire_dms(s, store_now_ms() - 60000, "expired") == 0,
          "a DM waiting for a minute does not expire after a week");
    CHECK(store_outbox_wake_dms(s, id) == 1, "waking the case's DMs");
    count = 0;
    store_outbox_list(s, OUTBOX_PENDING, count_rec, NULL);
    CHECK(count == 1, "woken DM is pending again");
    store_outbox_set(s, r.id, OUTBOX_WAITING_DM, 1, 0, "403");
    CHECK(store_outbox_expire_dms(s, store_now_ms() + 1, "never opened") == 1,
          "a DM waiting past the limit expires");
    count = 0;
    store_outbox_list(s, OUTBOX_DEAD, count_rec, NULL);
    CHECK(count == 1, "an expired DM is a dead letter");
    CHECK(store_outbox_wake_dms(s, id) == 0, "an expired DM is not woken");
    store_outbox_set(s, r.id, OUTBOX_PENDING, 1, 0, NULL);

    /* Sent entries are pruned oldest first, in bounded chunks; others stay. */
    store_begin(s);
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        struct outbox_rec d = {.channel = "ch", .kind = FD_ACTION_REPLY, .text = "sent"};
        store_outbox_add(s, &d);
        ids[i] = d.id;
        store_outbox_set(s, d.id, OUTBOX_DONE, 1, 0, NULL);
    }
    store_commit(s);
    CHECK(store_outbox_prune(s, store_now_ms() - 60000, 100) == 0,
          "sent entries younger than the limit are kept");
    CHECK(store_outbox_prune(s, store_now_ms() + 1, 2) == 2, "pruning stops at the chunk size");
    struct outbox_rec got = {0};
    int first = store_outbox_get(s, ids[0], &got);
    outbox_rec_clear(&got);
    int third = store_outbox_get(s, ids[2], &got);
    outbox_rec_clear(&got);
    CHECK(first == 0 && third == 1, "the oldest go first");
    CHECK(store_outbox_prune(s, store_now_ms() + 1, 100) == 3, "the rest of the sent entries go");
    count = 0;
    store_outbox_list(s, OUTBOX_PENDING, count_rec, NULL);
    CHECK(count == 1, "a pending entry is never pruned");

    store_begin(s);
    struct outbox_rec r2 = {.channel = "ch", .kind = FD_ACTION_REPLY, .text = "x"};
    store_outbox_add(s, &r2);
    store_rollback(s);
    count = 0;
    store_outbox_list(s, -1, count_rec, NULL);
    CHECK(count == 1, "a rolled back entry is gone");

    CHECK(store_kv_set(s, "ch", "k", "v1") == 0, "kv set");
    char *v = store_kv_get(s, "ch", "k");
    CHECK_STR(v, "v1", "kv get");
    free(v);
    store_kv_set(s, "ch", "k", NULL);
    CHECK(store_kv_get(s, "ch", "k") == NULL, "kv delete");

    /* Plugin entries neither read nor written for the retention period go;
     * a read counts as use; scripts' entries (namespace = channel) stay. */
    store_kv_set(s, "plugin:ret", "stale", "1");
    store_kv_set(s, "plugin:ret", "read", "1");
    store_kv_set(s, "plugin:ret", "fresh", "1");
    store_kv_set(s, "ret", "script", "1");
    sql_on(path, "UPDATE kv SET used = used - 3 * 86400000 WHERE key != 'fresh'");
    int64_t kv_cut = store_now_ms() - DAY_MS;
    CHECK(has_kv(s, "plugin:ret", "read"), "kv retention: an old entry is still read");
    CHECK(store_kv_prune(s, kv_cut, 100) == 1, "kv retention: one entry unused since the cut-off goes");
    CHECK(!has_kv(s, "plugin:ret", "stale"), "kv retention: the unused plugin entry is deleted");
    CHECK(has_kv(s, "plugin:ret", "read"), "kv retention: an entry read since is kept");
    CHECK(has_kv(s, "plugin:ret", "fresh"), "kv retention: an entry written since is kept");
    CHECK(has_kv(s, "ret", "script"), "kv retention: a script's entry is never deleted");
    store_kv_set(s, "plugin:ret", "a", "1");
    store_kv_set(s, "plugin:ret", "b", "1");
    sql_on(path, "UPDATE kv SET used = used - 3 * 86400000 WHERE key IN ('a', 'b')");
    CHECK(store_kv_prune(s, kv_cut, 1) == 1 && store_kv_prune(s, kv_cut, 1) == 1 &&
              store_kv_prune(s, kv_cut, 1) == 0,
          "kv retention: one entry per chunk of 1, then none");

    /* Retention: only cases untouched since the cut-off go, oldest first,
     * at most `max` per call. */
    int64_t old1, old2, old3, fresh;
    store_case_create(s, "ret", "u1", &old1);
    store_case_create(s, "ret", "u2", &old2);
    store_case_create(s, "ret", "u3", &old3);
    usleep(5000);
    int64_t cut = store_now_ms();
    usleep(5000);
    store_case_update(s, old3, CASE_PRIVATE, NULL, NULL, true);
    store_case_create(s, "ret", "u4", &fresh);
    /* alice's case (above) is the oldest. */
    CHECK(store_case_prune(s, cut, 1) == 1 && store_case_get(s, id, &c) == 0 &&
              store_case_get(s, old1, &c) == 1,
          "case retention: the oldest untouched case goes first, one per chunk of 1");
    CHECK(store_case_prune(s, cut, 100) == 2, "case retention: the rest of the untouched ones go");
    CHECK(store_case_get(s, old1, &c) == 0, "case retention: an untouched case is deleted");
    CHECK(store_case_get(s, old2, &c) == 0, "case retention: an untouched case is deleted");
    CHECK(store_case_get(s, old3, &c) == 1, "case retention: a case updated since is kept");
    CHECK(store_case_get(s, fresh, &c) == 1, "case retention: a newer case is kept");
    CHECK(store_case_prune(s, cut, 100) == 0, "case retention: nothing left to delete");
    store_close(s);

    CHECK(store_open(path, &s) == 0, "reopens");
    CHECK(store_seen_add(s, "ch", "u1") == 0, "dedupe survives a restart");
    count = 0;
    store_outbox_list(s, OUTBOX_PENDING, count_rec, NULL);
    CHECK(count == 1, "pending outbox survives a restart");
    store_close(s);

    /* A version 1 file (before the case index and the kv times) is
     * brought to 3; its plugin entries count as used at the migration. */
    sql_on(path, "DROP INDEX cases_created; DROP INDEX kv_plugin_used;"
                 " ALTER TABLE kv DROP COLUMN used;"
                 " INSERT INTO kv(channel, key, value) VALUES('plugin:old', 'k', 'v');"
                 " PRAGMA user_version = 1;");
    CHECK(store_open(path, &s) == 0, "a version 1 file opens");
    CHECK(store_case_prune(s, store_now_ms() + 1, 100) >= 0, "and its cases can be pruned");
    CHECK(store_kv_prune(s, store_now_ms() - 3600 * 1000, 100) == 0 &&
              has_kv(s, "plugin:old", "k"),
          "its plugin entries count as used at the migration");
    store_close(s);
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(db,
                       "SELECT (SELECT user_version FROM pragma_user_version),"
                       " (SELECT count(*) FROM sqlite_master WHERE name IN"
                       " ('cases_created', 'kv_plugin_used'))",
                       -1, &q, NULL);
    CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 3 &&
              sqlite3_column_int(q, 1) == 2,
          "the migration sets version 3 and creates the indexes");
    sqlite3_finalize(q);
    sqlite3_close(db);
    unlink(path);
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    return CHECK_DONE();
}
