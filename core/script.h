/*
 * script.h - Lua 5.4 channel scripts: sandboxed states, the `fd` library,
 * the msg object and its actions, and the *_test.lua runner.
 *
 * One `struct script` is one loaded version of one channel's script with its
 * own lua_State, capped allocator and instruction budget.  Reloading means
 * loading a new `struct script` beside the old one and swapping pointers in
 * the caller, so a broken edit never replaces a working version.
 *
 * Threading: everything runs on the loop thread.  No function here blocks
 * except on the script's own CPU time, which the budget bounds.
 */
#ifndef FRONTDESK_SCRIPT_H
#define FRONTDESK_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cJSON;
struct script;

/* The message as a script sees it (msg.*).  Borrowed for the call. */
struct script_msg {
    const char *id;         /* msg.id: the platform's message id */
    const char *text;
    const char *platform;
    const char *channel;
    bool is_private;
    const char *user_id;
    const char *user_name;  /* always set */
    const char *user_handle;/* may be NULL */
    const char *chat_id;
    const char *thread;     /* may be NULL */
    int64_t case_id;
    const char *case_state; /* "bot", "private", "human", "closed" */
};

enum script_action_kind {
    SCRIPT_REPLY = 0,   /* a = text */
    SCRIPT_DM,          /* a = text */
    SCRIPT_TO_PRIVATE,  /* a = public text, b = private text */
    SCRIPT_HANDOFF,     /* a = note (may be NULL), b = queue (may be NULL) */
    SCRIPT_HIDE,
    SCRIPT_TAG,         /* a = category */
};

/* One action the script took, in order.  Strings are malloc'd, owned by the
 * result. */
struct script_action {
    enum script_action_kind kind;
    char *a;
    char *b;
};

struct script_result {
    struct script_action *v;
    size_t n, cap;
};

/* Services scripts reach through `fd`: the per-channel key/value store,
 * logging, and the platform's capabilities (fd.can). */
struct script_env {
    void *ud;
    char *(*kv_get)(void *ud, const char *key);          /* malloc'd or NULL */
    int (*kv_set)(void *ud, const char *key, const char *value); /* NULL: del */
    void (*log)(void *ud, int level, const char *msg);   /* enum fd_log_level */
    unsigned caps;                                       /* enum fd_cap bits */
};

struct script_limits {
    long instructions;  /* per on_message call; 0: default (10 million) */
    size_t memory;      /* bytes per script state; 0: default (64 MiB) */
};

/* Load and compile `path` in a fresh sandboxed state; `require` resolves in
 * `lib_dir` (may be NULL).  The script must define on_message.  On failure
 * returns <0 and writes "file:line: message" into err. `env` is copied. */
int script_load(const char *path, const char *lib_dir,
                const struct script_limits *lim, const struct script_env *env,
                struct script **out, char *err, size_t errlen);

/* Run on_message(msg).  Appends the actions to `res` only when the call
 * returns normally; on a script error, budget overrun or memory cap returns
 * <0 with "file:line: message" in err and leaves `res` untouched, so the
 * caller can fall back to a handoff. */
int script_call(struct script *s, const struct script_msg *m,
                struct script_result *res, char *err, size_t errlen);

void script_free(struct script *s);
const char *script_path(const struct script *s);
void script_result_clear(struct script_result *r);
const char *script_action_name(enum script_action_kind k);

/* The *_test.lua runner.  A test file calls test(name, fn); inside, send()
 * runs one message through the script under test and returns its actions.
 * The caller supplies send(), so messages go through the real message path
 * (cases, state); `reset` starts a fresh conversation before each test. */
struct script_test_hooks {
    void *ud;
    /* Returns a cJSON array of action objects, as `frontdesk try --json`
     * prints them ({"action":"reply","text":...}); the runner frees it.
     * NULL with err set on failure. */
    struct cJSON *(*send)(void *ud, const char *text, bool is_private,
                          const char *user, const char *platform, char *err,
                          size_t errlen);
    void (*reset)(void *ud);
};

/* Run every test() of `test_path`; print "ok - <file>: <name>" or
 * "not ok - <file>: <name>: <why>" per test to `out` (may be NULL).
 * Returns 0 when the file loaded, <0 (err set) when it did not. */
int script_run_tests(const char *test_path, const char *lib_dir,
                     const struct script_test_hooks *hooks, int *passed,
                     int *failed, FILE *out, char *err, size_t errlen);

#endif
