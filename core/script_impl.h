/*
 * script_impl.h - what script.c shares with script_test.c (the *_test.lua
 * runner).  Nothing else includes it: the rest of the core sees script.h.
 */
#ifndef FRONTDESK_SCRIPT_IMPL_H
#define FRONTDESK_SCRIPT_IMPL_H

#include <lua.h>
#include <stdio.h>

#include "script.h"

struct call;

struct script {
    lua_State *L;
    char *path;
    char *name;      /* chunk name shown in errors: the file's base name */
    char *lib_dir;   /* may be NULL */
    char *lib_label; /* base name of lib_dir, for module chunk names */
    struct script_env env;
    long budget;
    size_t mem_used, mem_limit;
    struct call *call; /* the on_message call in progress, or NULL */
    unsigned long gen;
    /* the test runner */
    const struct script_test_hooks *hooks;
    FILE *out;
};

/* The script a state belongs to. */
struct script *script_owner(lua_State *L);
/* Copies a Lua message into err on one line. */
void script_set_err(char *err, size_t errlen, const char *msg);
/* A new script with its state, not yet loaded; NULL with err set. */
struct script *script_state_new(const char *path, const char *lib_dir,
                                const struct script_limits *lim,
                                const struct script_env *env, char *err,
                                size_t errlen);
/* Builds the sandbox in a fresh state (protected: may raise). */
void script_open_sandbox(lua_State *L);
/* Reads `path` and compiles it as text; pushes the chunk, or raises with
 * a message naming the file (shown). */
void script_load_file(lua_State *L, const char *path, const char *chunkname,
                      const char *shown);
/* The message handler of every pcall. */
int script_msgh(lua_State *L);
/* A fresh instruction budget for the next call. */
void script_set_budget(struct script *s);
/* Formats a failed pcall's status and message into err. */
void script_call_error(struct script *s, int st, char *err, size_t errlen);

#endif
