/*
 * store.c - SQLite implementation of store.h.
 *
 * WAL with synchronous=NORMAL: a committed transaction survives a crash or
 * kill -9 of the daemon (the WAL is in the OS page cache); only a power loss
 * can lose the last commits.  Schema versions go through PRAGMA user_version.
 * Every statement is prepared once and kept.
 *
 * Checkpoints (copying the WAL back into the database, with an fsync) run
 * on a thread of their own with its own connection, so the loop thread
 * never stalls on them; SQLite lets a passive checkpoint run beside the
 * writer.  That thread touches nothing but its connection.
 */
#include "store.h"

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

enum {
    Q_BEGIN, Q_COMMIT, Q_ROLLBACK,
    Q_SEEN_ADD, Q_SEEN_PRUNE, Q_OB_EXPIRE_DMS, Q_OB_PRUNE, Q_CASE_PRUNE,
    Q_CASE_FIND, Q_CASE_GET, Q_CASE_NEW, Q_CASE_UPD, Q_CASE_LIST, Q_CASE_LIST_OPEN,
    Q_OB_ADD, Q_OB_SET, Q_OB_LIST, Q_OB_LIST_ALL, Q_OB_GET, Q_OB_WAKE,
    Q_KV_GET, Q_KV_TOUCH, Q_KV_SET, Q_KV_DEL, Q_KV_PRUNE,
    Q_SAVEPOINT, Q_RELEASE, Q_ROLLBACK_TO,
    Q_COUNT
};

_Static_assert(OUTBOX_PENDING == 0 && OUTBOX_DONE == 1 && OUTBOX_DEAD == 2 &&
                   OUTBOX_WAITING_DM == 3,
               "the SQL below spells outbox states as numbers");

static const char *const sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SEEN_ADD] = "INSERT OR IGNORE INTO seen(channel, id, at) VALUES(?,?,?)",
    [Q_SEEN_PRUNE] = "DELETE FROM seen WHERE at < ?",
    [Q_OB_EXPIRE_DMS] = "UPDATE outbox SET state = 2, error = ?"
                        " WHERE state = 3 AND created < ?",
    /* The oldest done entries first, through the (state, id) index: each
     * call does bounded work however large the table. */
    [Q_OB_PRUNE] = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
                   " WHERE state = 1 ORDER BY id LIMIT ?2) AND created < ?1",
    /* Through the created index: a case untouched since before_ms was
     * created before it too, so each call visits only old cases (those
     * still in use among them are passed over). */
    [Q_CASE_PRUNE] = "DELETE FROM cases WHERE id IN (SELECT id FROM cases"
                     " WHERE created < ?1 AND updated < ?1 ORDER BY created"
                     " LIMIT ?2)",
    [Q_CASE_FIND] =
        "SELECT id, state, channel, user_id, tag, queue, created, updated, messages"
        " FROM cases WHERE channel = ? AND user_id = ? AND state != 3"
        " AND (state != 0 OR updated >= ?) ORDER BY id DESC LIMIT 1",
    [Q_CASE_GET] =
        "SELECT id, state, channel, user_id, tag, queue, created, updated, messages"
        " FROM cases WHERE id = ?",
    [Q_CASE_NEW] = "INSERT INTO cases(channel, user_id, state, created, updated,"
                   " messages) VALUES(?,?,0,?,?,0)",
    [Q_CASE_UPD] = "UPDATE cases SET state = coalesce(?, state),"
                   " tag = coalesce(?, tag), queue = coalesce(?, queue),"
                   " updated = ?, messages = messages + ? WHERE id = ?",
    [Q_CASE_LIST] =
        "SELECT id, state, channel, user_id, tag, queue, created, updated, messages"
        " FROM cases ORDER BY id",
    [Q_CASE_LIST_OPEN] =
        "SELECT id, state, channel, user_id, tag, queue, created, updated, messages"
        " FROM cases WHERE state != 3 ORDER BY id",
    [Q_OB_ADD] = "INSERT INTO outbox(channel, case_id, kind, is_private, text,"
                 " chat_id, message_id, thread, user_id, state, attempts, next_at,"
                 " created) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [Q_OB_SET] = "UPDATE outbox SET state = ?, attempts = ?, next_at = ?,"
                 " error = ? WHERE id = ?",
    [Q_OB_LIST] = "SELECT id, channel, case_id, kind, is_private, text, chat_id,"
                  " message_id, thread, user_id, state, attempts, next_at, error"
                  " FROM outbox WHERE state = ? ORDER BY id",
    [Q_OB_LIST_ALL] = "SELECT id, channel, case_id, kind, is_private, text, chat_id,"
                      " message_id, thread, user_id, state, attempts, next_at, error"
                      " FROM outbox ORDER BY id",
    [Q_OB_GET] = "SELECT id, channel, case_id, kind, is_private, text, chat_id,"
                 " message_id, thread, user_id, state, attempts, next_at, error"
                 " FROM outbox WHERE id = ?",
    [Q_OB_WAKE] = "UPDATE outbox SET state = 0, next_at = 0 WHERE case_id = ?"
                  " AND state = 3",
    [Q_KV_GET] = "SELECT value, used FROM kv WHERE channel = ? AND key = ?",
    [Q_KV_TOUCH] = "UPDATE kv SET used = ?3 WHERE channel = ?1 AND key = ?2",
    [Q_KV_SET] = "INSERT INTO kv(channel, key, value, used) VALUES(?,?,?,?)"
                 " ON CONFLICT(channel, key) DO UPDATE SET value = excluded.value,"
                 " used = excluded.used",
    [Q_KV_DEL] = "DELETE FROM kv WHERE channel = ? AND key = ?",
    /* Plugins' entries only (STORE_PLUGIN_NS, spelt out here and in the
     * index), through the partial index of schema v3. */
    [Q_KV_PRUNE] = "DELETE FROM kv WHERE (channel, key) IN (SELECT channel, key"
                   " FROM kv WHERE channel >= 'plugin:' AND channel < 'plugin;'"
                   " AND used < ?1 ORDER BY used LIMIT ?2)",
    [Q_SAVEPOINT] = "SAVEPOINT msg",
    [Q_RELEASE] = "RELEASE msg",
    [Q_ROLLBACK_TO] = "ROLLBACK TO msg",
};

static const char schema_v1[] =
    "CREATE TABLE seen(channel TEXT NOT NULL, id TEXT NOT NULL,"
    " at INTEGER NOT NULL, PRIMARY KEY(channel, id)) WITHOUT ROWID;"
    "CREATE INDEX seen_at ON seen(at);"
    "CREATE TABLE cases(id INTEGER PRIMARY KEY, channel TEXT NOT NULL,"
    " user_id TEXT NOT NULL, state INTEGER NOT NULL, tag TEXT, queue TEXT,"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL,"
    " messages INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX cases_user ON cases(channel, user_id, id);"
    "CREATE TABLE outbox(id INTEGER PRIMARY KEY, channel TEXT NOT NULL,"
    " case_id INTEGER, kind INTEGER NOT NULL, is_private INTEGER NOT NULL,"
    " text TEXT, chat_id TEXT, message_id TEXT, thread TEXT, user_id TEXT,"
    " state INTEGER NOT NULL, attempts INTEGER NOT NULL, next_at INTEGER NOT NULL,"
    " created INTEGER NOT NULL, error TEXT);"
    "CREATE INDEX outbox_state ON outbox(state, id);"
    "CREATE TABLE kv(channel TEXT NOT NULL, key TEXT NOT NULL, value TEXT,"
    " PRIMARY KEY(channel, key)) WITHOUT ROWID;"
    "PRAGMA user_version = 1;";

/* v2: case retention (store_case_prune) looks cases up by age. */
static const char schema_v2[] =
    "BEGIN;"
    "CREATE INDEX IF NOT EXISTS cases_created ON cases(created);"
    "PRAGMA user_version = 2;"
    "COMMIT;";

/* v3: key/value entries record when they were last used, so plugins'
 * entries (user links, DM channel caches, window times) can be retired
 * like cases.  Entries from before count as used at the migration. */
static const char schema_v3[] =
    "BEGIN;"
    "ALTER TABLE kv ADD COLUMN used INTEGER NOT NULL DEFAULT 0;"
    "UPDATE kv SET used = CAST(strftime('%s', 'now') AS INTEGER) * 1000;"
    "CREATE INDEX kv_plugin_used ON kv(used)"
    " WHERE channel >= 'plugin:' AND channel < 'plugin;';"
    "PRAGMA user_version = 3;"
    "COMMIT;";

struct store {
    sqlite3 *db;
    pthread_t ckpt;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool ckpt_running, ckpt_stop;
    char *path;
    sqlite3_stmt *q[Q_COUNT];
    bool batching; /* writes join one transaction until store_flush */
};

const char *case_state_name(int s)
{
    static const char *const names[] = {"bot", "private", "human", "closed"};
    return s >= 0 && s < 4 ? names[s] : "bot";
}

int case_state_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, case_state_name(i)) == 0)
            return i;
    return -1;
}

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *store_errmsg(struct store *s) { return sqlite3_errmsg(s->db); }

static int fail(struct store *s, const char *what)
{
    log_error("store", "%s: %s", what, sqlite3_errmsg(s->db));
    return -1;
}

#define CHECKPOINT_MS 500

static void *checkpointer(void *arg)
{
    struct store *s = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 100);
    pthread_mutex_lock(&s->lock);
    while (!s->ckpt_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += CHECKPOINT_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->wake, &s->lock, &ts);
        if (s->ckpt_stop)
            break;
        pthread_mutex_unlock(&s->lock);
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    sqlite3_close(db);
    return NULL;
}

static void checkpointer_start(struct store *s, const char *path)
{
    if (strcmp(path, ":memory:") == 0 || !(s->path = strdup(path)))
        return;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    /* The thread takes no signals: they belong to the loop's signalfd. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    bool ok = sqlite3_exec(s->db, "PRAGMA wal_autocheckpoint = 0", NULL, NULL,
                           NULL) == SQLITE_OK &&
              pthread_create(&s->ckpt, NULL, checkpointer, s) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ok) {
        s->ckpt_running = true;
        return;
    }
    /* No thread: SQLite checkpoints on the loop thread as usual. */
    sqlite3_exec(s->db, "PRAGMA wal_autocheckpoint = 1000", NULL, NULL, NULL);
}

static void checkpointer_stop(struct store *s)
{
    if (!s->ckpt_running)
        return;
    pthread_mutex_lock(&s->lock);
    s->ckpt_stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->ckpt, NULL);
    s->ckpt_running = false;
    /* Leave a short WAL behind for the next start. */
    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

int store_open(const char *path, struct store **out)
{
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    /* Without memory statistics every sqlite3_malloc/free skips a global
     * mutex (about 50 per message).  Only takes effect before SQLite's
     * first use; later calls fail harmlessly. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        log_error("store", "cannot open %s: %s", path,
                  s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 2000);
    char *err = NULL;
    if (sqlite3_exec(s->db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                     " PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;",
                     NULL, NULL, &err) != SQLITE_OK) {
        log_error("store", "%s: %s", path, err ? err : "pragma failed");
        sqlite3_free(err);
        goto fail;
    }
    sqlite3_stmt *v;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &v, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(v) == SQLITE_ROW)
            version = sqlite3_column_int(v, 0);
        sqlite3_finalize(v);
    }
    if ((version == 0 &&
         sqlite3_exec(s->db, schema_v1, NULL, NULL, &err) != SQLITE_OK) ||
        (version < 2 &&
         sqlite3_exec(s->db, schema_v2, NULL, NULL, &err) != SQLITE_OK) ||
        (version < 3 &&
         sqlite3_exec(s->db, schema_v3, NULL, NULL, &err) != SQLITE_OK)) {
        log_error("store", "%s: creating the schema: %s", path,
                  err ? err : "failed");
        sqlite3_free(err);
        goto fail;
    }
    if (version > 3) {
        log_error("store", "%s: schema version %d is newer than this frontdesk",
                  path, version);
        goto fail;
    }
    for (int i = 0; i < Q_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &s->q[i], NULL) != SQLITE_OK) {
            fail(s, sql[i]);
            goto fail;
        }
    }
    checkpointer_start(s, path);
    *out = s;
    return 0;
fail:
    store_close(s);
    return -1;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    checkpointer_stop(s);
    if (s->path) {
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
    }
    free(s->path);
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(s->q[i]);
    sqlite3_close(s->db);
    free(s);
}

/* Runs a statement that returns no rows; resets it. */
static int exec_q(struct store *s, int q)
{
    int rc = sqlite3_step(s->q[q]);
    sqlite3_reset(s->q[q]);
    sqlite3_clear_bindings(s->q[q]);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return fail(s, sql[q]);
    return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int store_begin(struct store *s) { return exec_q(s, Q_BEGIN); }

void store_set_batching(struct store *s, bool on) { s->batching = on; }

bool store_in_tx(struct store *s) { return !sqlite3_get_autocommit(s->db); }

/* With batching on, every write joins the open transaction, opening one
 * when there is none; the owner commits it at the end of the loop turn. */
static int tx(struct store *s)
{
    if (!s->batching || !sqlite3_get_autocommit(s->db))
        return 0;
    return exec_q(s, Q_BEGIN);
}

int store_flush(struct store *s)
{
    if (sqlite3_get_autocommit(s->db))
        return 0;
    if (exec_q(s, Q_COMMIT) == 0)
        return 0;
    store_rollback(s);
    return -1;
}

int store_savepoint(struct store *s)
{
    return tx(s) < 0 ? -1 : exec_q(s, Q_SAVEPOINT);
}

int store_release(struct store *s) { return exec_q(s, Q_RELEASE); }

void store_rollback_to(struct store *s)
{
    exec_q(s, Q_ROLLBACK_TO);
    exec_q(s, Q_RELEASE);
}
int store_commit(struct store *s) { return exec_q(s, Q_COMMIT); }

void store_rollback(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        exec_q(s, Q_ROLLBACK);
}

int store_seen_add(struct store *s, const char *channel, const char *event_id)
{
    if (tx(s) < 0)
        return -1;
    sqlite3_stmt *st = s->q[Q_SEEN_ADD];
    bind_text(st, 1, channel);
    bind_text(st, 2, event_id);
    sqlite3_bind_int64(st, 3, store_now_ms());
    if (exec_q(s, Q_SEEN_ADD) < 0)
        return -1;
    return sqlite3_changes(s->db) > 0 ? 1 : 0;
}

int store_seen_prune(struct store *s, int64_t before_ms)
{
    if (tx(s) < 0)
        return -1;
    sqlite3_bind_int64(s->q[Q_SEEN_PRUNE], 1, before_ms);
    if (exec_q(s, Q_SEEN_PRUNE) < 0)
        return -1;
    return sqlite3_changes(s->db);
}

int store_outbox_expire_dms(struct store *s, int64_t before_ms,
                            const char *why)
{
    if (tx(s) < 0)
        return -1;
    sqlite3_stmt *st = s->q[Q_OB_EXPIRE_DMS];
    bind_text(st, 1, why);
    sqlite3_bind_int64(st, 2, before_ms);
    if (exec_q(s, Q_OB_EXPIRE_DMS) < 0)
        return -1;
    return sqlite3_changes(s->db);
}

/* One chunk of a pruning delete (?1 = before_ms, ?2 = max): how many
 * rows went. */
static int delete_chunk(struct store *s, int q, int64_t before_ms, int max)
{
    if (tx(s) < 0)
        return -1;
    sqlite3_bind_int64(s->q[q], 1, before_ms);
    sqlite3_bind_int(s->q[q], 2, max);
    if (exec_q(s, q) < 0)
        return -1;
    return sqlite3_changes(s->db);
}

int store_outbox_prune(struct store *s, int64_t before_ms, int max)
{
    return delete_chunk(s, Q_OB_PRUNE, before_ms, max);
}

static void copy_col(char *dst, size_t n, sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    snprintf(dst, n, "%s", v ? (const char *)v : "");
}

static void read_case(sqlite3_stmt *st, struct case_rec *c)
{
    c->id = sqlite3_column_int64(st, 0);
    c->state = sqlite3_column_int(st, 1);
    copy_col(c->channel, sizeof c->channel, st, 2);
    copy_col(c->user_id, sizeof c->user_id, st, 3);
    copy_col(c->tag, sizeof c->tag, st, 4);
    copy_col(c->queue, sizeof c->queue, st, 5);
    c->created = sqlite3_column_int64(st, 6);
    c->updated = sqlite3_column_int64(st, 7);
    c->messages = sqlite3_column_int(st, 8);
}

/* Steps a one-row query: 1 with the case read, 0 none, -1 error. */
static int one_case(struct store *s, int q, struct case_rec *out)
{
    sqlite3_stmt *st = s->q[q];
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        read_case(st, out);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = fail(s, sql[q]);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return found;
}

int store_case_find_open(struct store *s, const char *channel,
                         const char *user_id, int64_t since_ms,
                         struct case_rec *out)
{
    sqlite3_stmt *st = s->q[Q_CASE_FIND];
    bind_text(st, 1, channel);
    bind_text(st, 2, user_id);
    sqlite3_bind_int64(st, 3, since_ms);
    return one_case(s, Q_CASE_FIND, out);
}

int store_case_get(struct store *s, int64_t id, struct case_rec *out)
{
    sqlite3_bind_int64(s->q[Q_CASE_GET], 1, id);
    return one_case(s, Q_CASE_GET, out);
}

int store_case_create(struct store *s, const char *channel,
                      const char *user_id, int64_t *id)
{
    if (tx(s) < 0)
        return -1;
    sqlite3_stmt *st = s->q[Q_CASE_NEW];
    int64_t now = store_now_ms();
    bind_text(st, 1, channel);
    bind_text(st, 2, user_id);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now);
    if (exec_q(s, Q_CASE_NEW) < 0)
        return -1;
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int store_case_update(struct store *s, int64_t id, int state, const char *tag,
                      const char *queue, bool count_message)
{
    if (tx(s) < 0)
        return -1;
    sqlite3_stmt *st = s->q[Q_CASE_UPD];
    if (state >= 0)
        sqlite3_bind_int(st, 1, state);
    else
        sqlite3_bind_null(st, 1);
    bind_text(st, 2, tag);
    bind_text(st, 3, queue);
    sqlite3_bind_int64(st, 4, store_now_ms());
    sqlite3_bind_int(st, 5, count_message ? 1 : 0);
    sqlite3_bind_int64(st, 6, id);
    return exec_q(s, Q_CASE_UPD);
}

int store_case_prune(struct store *s, int64_t before_ms, int max)
{
    return delete_chunk(s, Q_CASE_PRUNE, before_ms, max);
}

int store_case_list(struct store *s, bool open_only, store_case_fn fn, void *ud)
{
    int q = open_only ? Q_CASE_LIST_OPEN : Q_CASE_LIST;
    sqlite3_stmt *st = s->q[q];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct case_rec c;
        read_case(st, &c);
        fn(ud, &c);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, sql[q]);
}

void outbox_rec_clear(struct outbox_rec *r)
{
    free(r->channel);
    free(r->text);
    free(r->chat_id);
    free(r->message_id);
    free(r->thread);
    free(r->user_id);
    free(r->error);
    memset(r, 0, sizeof *r);
}

int store_outbox_add(struct store *s, struct outbox_rec *r)
{
    if (tx(s) < 0)
        return -1;
    sqlite3_stmt *st = s->q[Q_OB_ADD];
    bind_text(st, 1, r->channel);
    sqlite3_bind_int64(st, 2, r->case_id);
    sqlite3_bind_int(st, 3, r->kind);
    sqlite3_bind_int(st, 4, r->is_private);
    bind_text(st, 5, r->text);
    bind_text(st, 6, r->chat_id);
    bind_text(st, 7, r->message_id);
    bind_text(st, 8, r->thread);
    bind_text(st, 9, r->user_id);
    sqlite3_bind_int(st, 10, r->state);
    sqlite3_bind_int(st, 11, r->attempts);
    sqlite3_bind_int64(st, 12, r->next_at);
    sqlite3_bind_int64(st, 13, store_now_ms());
    if (exec_q(s, Q_OB_ADD) < 0)
        return -1;
    r->id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int store_outbox_set(struct store *s, int64_t id, int state, int attempts,
                     int64_t next_at, const char *error)
{
    if (tx(s) < 0)
        return -1;
    sqlite3_stmt *st = s->q[Q_OB_SET];
    sqlite3_bind_int(st, 1, state);
    sqlite3_bind_int(st, 2, attempts);
    sqlite3_bind_int64(st, 3, next_at);
    bind_text(st, 4, error);
    sqlite3_bind_int64(st, 5, id);
    return exec_q(s, Q_OB_SET);
}

static char *col_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    return v ? strdup((const char *)v) : NULL;
}

static void read_outbox(sqlite3_stmt *st, struct outbox_rec *r)
{
    r->id = sqlite3_column_int64(st, 0);
    r->channel = col_dup(st, 1);
    r->case_id = sqlite3_column_int64(st, 2);
    r->kind = sqlite3_column_int(st, 3);
    r->is_private = sqlite3_column_int(st, 4) != 0;
    r->text = col_dup(st, 5);
    r->chat_id = col_dup(st, 6);
    r->message_id = col_dup(st, 7);
    r->thread = col_dup(st, 8);
    r->user_id = col_dup(st, 9);
    r->state = sqlite3_column_int(st, 10);
    r->attempts = sqlite3_column_int(st, 11);
    r->next_at = sqlite3_column_int64(st, 12);
    r->error = col_dup(st, 13);
}

int store_outbox_list(struct store *s, int state, store_outbox_fn fn, void *ud)
{
    int q = state < 0 ? Q_OB_LIST_ALL : Q_OB_LIST;
    sqlite3_stmt *st = s->q[q];
    if (state >= 0)
        sqlite3_bind_int(st, 1, state);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct outbox_rec r = {0};
        read_outbox(st, &r);
        fn(ud, &r);
        outbox_rec_clear(&r);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, sql[q]);
}

int store_outbox_get(struct store *s, int64_t id, struct outbox_rec *out)
{
    sqlite3_stmt *st = s->q[Q_OB_GET];
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        read_outbox(st, out);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = fail(s, sql[Q_OB_GET]);
    }
    sqlite3_reset(st);
    return found;
}

int store_outbox_wake_dms(struct store *s, int64_t case_id)
{
    if (tx(s) < 0)
        return -1;
    sqlite3_bind_int64(s->q[Q_OB_WAKE], 1, case_id);
    if (exec_q(s, Q_OB_WAKE) < 0)
        return -1;
    return sqlite3_changes(s->db);
}

/* A read counts as use, recorded at most once a day per entry so that
 * reads stay reads. */
#define KV_TOUCH_MS (24 * 3600 * 1000LL)

char *store_kv_get(struct store *s, const char *channel, const char *key)
{
    sqlite3_stmt *st = s->q[Q_KV_GET];
    bind_text(st, 1, channel);
    bind_text(st, 2, key);
    char *v = NULL;
    int64_t used = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        v = col_dup(st, 0);
        used = sqlite3_column_int64(st, 1);
    } else if (rc != SQLITE_DONE)
        fail(s, sql[Q_KV_GET]);
    sqlite3_reset(st);
    int64_t now = v ? store_now_ms() : 0;
    if (v && used < now - KV_TOUCH_MS && tx(s) == 0) {
        st = s->q[Q_KV_TOUCH];
        bind_text(st, 1, channel);
        bind_text(st, 2, key);
        sqlite3_bind_int64(st, 3, now);
        exec_q(s, Q_KV_TOUCH); /* failing only delays the entry's retirement */
    }
    return v;
}

int store_kv_set(struct store *s, const char *channel, const char *key,
                 const char *value)
{
    if (tx(s) < 0)
        return -1;
    int q = value ? Q_KV_SET : Q_KV_DEL;
    sqlite3_stmt *st = s->q[q];
    bind_text(st, 1, channel);
    bind_text(st, 2, key);
    if (value) {
        bind_text(st, 3, value);
        sqlite3_bind_int64(st, 4, store_now_ms());
    }
    return exec_q(s, q);
}

int store_kv_prune(struct store *s, int64_t before_ms, int max)
{
    return delete_chunk(s, Q_KV_PRUNE, before_ms, max);
}
