/*
 * script_test.c - the *_test.lua runner behind `frontdesk test`: a test
 * file runs in the same sandbox as a channel script, with test(name, fn),
 * send(text [, opts]) (the script under test answers through the hooks),
 * eq/contains/not_contains/find/assert and reset().  Each test gets a
 * fresh instruction budget; a failure is reported and the next test runs.
 *
 * Threading: the loop thread only (or the CLI's).
 */
#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_api.h"
#include "script.h"
#include "script_impl.h"

static char tests_key; /* registry: the test file's {name, fn} list */

/* A short, one-line rendering of the value at idx for failure messages. */
static void repr(lua_State *L, int idx, char *out, size_t cap, int depth)
{
    size_t o = strlen(out);
    if (o + 1 >= cap)
        return;
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *v = lua_tolstring(L, idx, &n);
        out[o++] = '"';
        for (size_t i = 0; i < n && o + 6 < cap; i++) {
            unsigned char c = (unsigned char)v[i];
            if (c == '"' || c == '\\')
                out[o++] = '\\', out[o++] = (char)c;
            else if (c == '\n')
                out[o++] = '\\', out[o++] = 'n';
            else if (c < 0x20)
                o += (size_t)snprintf(out + o, cap - o, "\\%u", c);
            else
                out[o++] = (char)c;
            if (i == 200 && n > 210) {
                memcpy(out + o, "...", 3);
                o += 3;
                break;
            }
        }
        if (o + 1 < cap)
            out[o++] = '"';
        out[o < cap ? o : cap - 1] = '\0';
        return;
    }
    case LUA_TTABLE: {
        if (depth > 2 || !lua_checkstack(L, 3)) {
            snprintf(out + o, cap - o, "{...}");
            return;
        }
        snprintf(out + o, cap - o, "{");
        bool first = true;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            o = strlen(out);
            if (!first && o + 2 < cap)
                snprintf(out + o, cap - o, ", ");
            first = false;
            if (lua_type(L, -2) == LUA_TSTRING) {
                o = strlen(out);
                snprintf(out + o, cap - o, "%s=", lua_tostring(L, -2));
            } else if (!lua_isinteger(L, -2)) {
                o = strlen(out);
                snprintf(out + o, cap - o, "[?]=");
            }
            repr(L, -1, out, cap, depth + 1);
            lua_pop(L, 1);
        }
        o = strlen(out);
        snprintf(out + o, cap - o, "}");
        return;
    }
    default:
        luaL_tolstring(L, idx, NULL);
        snprintf(out + o, cap - o, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

static bool deep_equal(lua_State *L, int a, int b, int depth)
{
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    if (lua_rawequal(L, a, b))
        return true;
    if (lua_type(L, a) != LUA_TTABLE || lua_type(L, b) != LUA_TTABLE ||
        depth > 16 || !lua_checkstack(L, 4))
        return false;
    long na = 0, nb = 0;
    lua_pushnil(L);
    while (lua_next(L, a)) {
        na++;
        lua_pushvalue(L, -2);
        lua_rawget(L, b);
        bool eq = deep_equal(L, -1, -2, depth + 1);
        lua_pop(L, 2);
        if (!eq) {
            lua_pop(L, 1);
            return false;
        }
    }
    lua_pushnil(L);
    while (lua_next(L, b)) {
        nb++;
        lua_pop(L, 1);
    }
    return na == nb;
}

/* Raises "file:line: msg: detail" at the test's line. */
static int fail(lua_State *L, int msg_idx, const char *detail)
{
    const char *m = lua_tostring(L, msg_idx);
    luaL_where(L, 1);
    if (m)
        lua_pushfstring(L, "%s%s: %s", lua_tostring(L, -1), m, detail);
    else
        lua_pushfstring(L, "%s%s", lua_tostring(L, -1), detail);
    return lua_error(L);
}

/* eq(got, want [, msg]): deep equality for tables */
static int t_eq(lua_State *L)
{
    lua_settop(L, 3);
    if (deep_equal(L, 1, 2, 0))
        return 0;
    char g[400] = "", w[400] = "", d[900];
    repr(L, 1, g, sizeof g, 0);
    repr(L, 2, w, sizeof w, 0);
    snprintf(d, sizeof d, "got %s, want %s", g, w);
    return fail(L, 3, d);
}

static bool str_has(lua_State *L, int idx, const char *needle)
{
    const char *h =
        lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
    return h && strstr(h, needle);
}

/* String haystack: substring.  Table (e.g. send()'s actions): an element
 * equal to needle, a string element containing it, or an element whose
 * .text contains it. */
static bool haystack_has(lua_State *L, const char *needle)
{
    if (lua_type(L, 1) == LUA_TSTRING)
        return str_has(L, 1, needle);
    if (lua_type(L, 1) != LUA_TTABLE)
        return false;
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, 1, i);
        bool hit = false;
        if (t == LUA_TSTRING) {
            hit = str_has(L, -1, needle);
        } else if (t == LUA_TTABLE) {
            lua_getfield(L, -1, "text");
            hit = str_has(L, -1, needle);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        if (hit)
            return true;
    }
    return false;
}

static int contains_impl(lua_State *L, bool want)
{
    lua_settop(L, 3);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "contains: needle must be a string, got %s",
                          luaL_typename(L, 2));
    char h[500] = "", n[300] = "", d[900];
    if (lua_type(L, 1) != LUA_TSTRING && lua_type(L, 1) != LUA_TTABLE) {
        snprintf(d, sizeof d, "expected a string or a table to search, got %s",
                 luaL_typename(L, 1));
        return fail(L, 3, d);
    }
    if (haystack_has(L, lua_tostring(L, 2)) == want)
        return 0;
    repr(L, 1, h, sizeof h, 0);
    repr(L, 2, n, sizeof n, 0);
    snprintf(d, sizeof d, "%s %s %s", h, want ? "does not contain" : "contains",
             n);
    return fail(L, 3, d);
}

static int t_contains(lua_State *L)
{
    return contains_impl(L, true);
}
static int t_not_contains(lua_State *L)
{
    return contains_impl(L, false);
}

/* find(actions, kind [, text]) -> first action of that kind (whose text
 * contains `text`, if given), or nil */
static int t_find(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *kind = luaL_checkstring(L, 2);
    const char *needle = luaL_optstring(L, 3, NULL);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) == LUA_TTABLE) {
            lua_getfield(L, -1, "action");
            lua_getfield(L, -2, "text");
            bool hit = lua_type(L, -2) == LUA_TSTRING &&
                       strcmp(lua_tostring(L, -2), kind) == 0 &&
                       (!needle || str_has(L, -1, needle));
            lua_pop(L, 2);
            if (hit)
                return 1;
        }
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    return 1;
}

/* assert(v [, msg]) that always says where it failed */
static int t_assert(lua_State *L)
{
    if (lua_toboolean(L, 1))
        return lua_gettop(L);
    luaL_where(L, 1);
    if (lua_gettop(L) >= 3 && lua_type(L, 2) == LUA_TSTRING)
        lua_pushfstring(L, "%s%s", lua_tostring(L, -1), lua_tostring(L, 2));
    else
        lua_pushfstring(L, "%sassertion failed!", lua_tostring(L, -1));
    return lua_error(L);
}

/* test(name, fn): registers a test; they run after the file loaded. */
static int t_test(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &tests_key);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, n + 1);
    return 0;
}

/* JSON value (light userdata) -> Lua value; protected, so the caller can
 * free the JSON even when this runs out of memory. */
static void push_json(lua_State *L, const cJSON *j, int depth)
{
    luaL_checkstack(L, 3, "send: result too deep");
    if (depth > 32 || !j || cJSON_IsNull(j)) {
        lua_pushnil(L);
    } else if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d >= -9.0e15 && d <= 9.0e15 && d == (double)(lua_Integer)d)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
    } else if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
        bool arr = cJSON_IsArray(j);
        lua_newtable(L);
        lua_Integer i = 1;
        for (const cJSON *c = j->child; c; c = c->next) {
            push_json(L, c, depth + 1);
            if (arr)
                lua_rawseti(L, -2, i++);
            else if (c->string)
                lua_setfield(L, -2, c->string);
            else
                lua_pop(L, 1);
        }
    } else {
        lua_pushnil(L);
    }
}

static int json_to_lua(lua_State *L)
{
    push_json(L, lua_touserdata(L, 1), 0);
    return 1;
}

static const char *opt_field(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    int ty = lua_type(L, -1);
    if (ty != LUA_TNIL && ty != LUA_TSTRING)
        luaL_error(L, "send: option %s must be a string, got %s", k,
                   luaL_typename(L, -1));
    return lua_tostring(L, -1); /* stays on the stack */
}

/* send(text [, {private=bool, user=string, platform=string}]) -> actions */
static int t_send(lua_State *L)
{
    struct script *s = script_owner(L);
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "send: text must be a string, got %s",
                          luaL_typename(L, 1));
    const char *text = lua_tostring(L, 1);
    bool priv = false;
    const char *user = NULL, *platform = NULL;
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            const char *k =
                lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
            if (strcmp(k, "private") && strcmp(k, "user") &&
                strcmp(k, "platform"))
                return luaL_error(L,
                                  "send: unknown option '%s' (private, "
                                  "user, platform)",
                                  k);
            lua_pop(L, 1);
        }
        lua_getfield(L, 2, "private");
        priv = lua_toboolean(L, -1);
        lua_pop(L, 1);
        user = opt_field(L, 2, "user");
        platform = opt_field(L, 2, "platform");
    } else if (!lua_isnoneornil(L, 2)) {
        return luaL_error(L, "send: options must be a table, got %s",
                          luaL_typename(L, 2));
    }
    if (!s->hooks || !s->hooks->send)
        return luaL_error(L, "send: there is no script under test");
    lua_pushcfunction(L, json_to_lua); /* before the JSON exists */
    char err[512] = "";
    cJSON *arr = s->hooks->send(s->hooks->ud, text, priv, user, platform, err,
                                sizeof err);
    if (!arr)
        return luaL_error(L, "send: %s", err[0] ? err : "failed");
    lua_pushlightuserdata(L, arr);
    int st = lua_pcall(L, 1, 1, 0);
    cJSON_Delete(arr);
    if (st != LUA_OK)
        return lua_error(L);
    return 1;
}

/* reset(): a fresh conversation in the middle of a test */
static int t_reset(lua_State *L)
{
    struct script *s = script_owner(L);
    if (s->hooks && s->hooks->reset)
        s->hooks->reset(s->hooks->ud);
    return 0;
}

static const luaL_Reg test_funcs[] = {
    {"test", t_test},
    {"send", t_send},
    {"eq", t_eq},
    {"contains", t_contains},
    {"not_contains", t_not_contains},
    {"find", t_find},
    {"assert", t_assert},
    {"reset", t_reset},
    {NULL, NULL},
};

/* Protected: the sandbox plus the test functions, then the test file. */
static int load_tests(lua_State *L)
{
    struct script *s = script_owner(L);
    script_open_sandbox(L);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tests_key);
    lua_pushglobaltable(L);
    luaL_setfuncs(L, test_funcs, 0);
    lua_pop(L, 1);
    char chunk[300];
    snprintf(chunk, sizeof chunk, "@%s", s->name);
    script_load_file(L, s->path, chunk, s->path);
    lua_call(L, 0, 0);
    return 0;
}

static void test_log(void *ud, int level, const char *msg)
{
    FILE *out = ud;
    if (out && level >= FD_LOG_INFO)
        fprintf(out, "# %s\n", msg);
}

int script_run_tests(const char *test_path, const char *lib_dir,
                     const struct script_test_hooks *hooks, int *passed,
                     int *failed, FILE *out, char *err, size_t errlen)
{
    int np = 0, nf = 0, rc = 0;
    struct script_env env = {.ud = out, .log = test_log};
    struct script *s = NULL;
    if (!test_path) {
        script_set_err(err, errlen, "no test file");
        rc = -1;
        goto done;
    }
    s = script_state_new(test_path, lib_dir, NULL, &env, err, errlen);
    if (!s) {
        rc = -1;
        goto done;
    }
    s->hooks = hooks;
    s->out = out;
    lua_State *L = s->L;
    lua_pushcfunction(L, script_msgh);
    lua_pushcfunction(L, load_tests);
    script_set_budget(s);
    int st = lua_pcall(L, 0, 0, 1);
    if (st != LUA_OK) {
        script_call_error(s, st, err, errlen);
        rc = -1;
        goto done;
    }
    lua_settop(L, 0);
    for (lua_Integer i = 1;; i++) {
        lua_settop(L, 0);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &tests_key);
        if (lua_rawgeti(L, 1, i) != LUA_TTABLE)
            break;
        lua_rawgeti(L, 2, 1); /* 3: name */
        lua_pushcfunction(L, script_msgh);
        lua_rawgeti(L, 2, 2);
        if (hooks && hooks->reset)
            hooks->reset(hooks->ud);
        script_set_budget(s);
        st = lua_pcall(L, 0, 0, 4);
        const char *name = lua_tostring(L, 3);
        if (st == LUA_OK) {
            np++;
            if (out)
                fprintf(out, "ok - %s: %s\n", s->name, name);
        } else {
            char why[600];
            script_call_error(s, st, why, sizeof why);
            nf++;
            if (out)
                fprintf(out, "not ok - %s: %s: %s\n", s->name, name, why);
            script_set_budget(s);
            lua_gc(L, LUA_GCCOLLECT);
        }
    }
    if (out)
        fflush(out);
done:
    script_free(s);
    if (passed)
        *passed = np;
    if (failed)
        *failed = nf;
    return rc;
}
