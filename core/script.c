/*
 * script.c - channel scripts (see script.h): one sandboxed lua_State per
 * loaded script version, the msg object and its actions, require from the
 * library folder.  The *_test.lua runner is script_test.c.
 *
 * Invariants:
 *  - Every Lua entry from C is a lua_pcall with the traceback handler
 *    `msgh` and a fresh instruction budget (a count hook).  When the budget
 *    runs out the hook re-arms itself for every instruction, so a script's
 *    own pcall cannot swallow the overrun: the next instruction fails again
 *    until the error reaches us.
 *  - A capped allocator bounds each state's memory, FAQ tries included.
 *    Lua's emergency collection runs before an allocation is refused; after
 *    any failed call we collect fully so the next call starts clean.
 *  - Actions are collected in the call's own list and moved into the
 *    caller's result only when on_message returned normally.
 *  - msg userdata carries only a call generation, never a pointer, so a
 *    msg kept in a global past its call fails cleanly instead of reading
 *    freed memory.
 *  - Globals a script sets persist between calls of one loaded version
 *    (useful for caches); they are gone after a reload or restart, so
 *    anything that must last goes through fd.store.
 * Sandbox: base (without dofile, loadfile; load is text-only; print and
 * collectgarbage restricted), string (without dump), table, math, utf8,
 * os.time/clock/date/difftime, require from lib_dir, fd.  No io, package,
 * debug, coroutine (a coroutine gets a fresh hook count, which would
 * defeat the budget).
 * Known limit: the budget counts VM instructions, so one slow C call (a
 * pathological Lua pattern on a long string) is not interrupted.
 *
 * Threading: the loop thread only.
 */
#include "script.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fdlib.h"
#include "log.h"
#include "plugin_api.h"
#include "script_impl.h"

#define DEFAULT_BUDGET 10000000L
#define DEFAULT_MEMORY ((size_t)64 << 20)
#define MAX_ACTIONS 50
#define MAX_TEXT (64 * 1024)
#define MAX_SHORT 128 /* queue names, tags */
#define MAX_FILE ((off_t)16 << 20)
#define MSG_META "fd.msg"
#define PART_META "fd.msgpart"

enum { PART_MSG, PART_USER, PART_CHAT, PART_CASE };

struct call {
    const struct script_msg *m;
    struct script_result pending;
    unsigned long gen;
};

struct msgref {
    unsigned long gen;
    int part;
};

static char loaded_key;  /* registry: require's cache */
static char loading_key; /* sentinel while a module loads */

struct script *script_owner(lua_State *L)
{
    return *(struct script **)lua_getextraspace(L);
}

/* The capped allocator: refuses growth past the limit; Lua then collects
 * garbage and retries before raising "not enough memory". */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct script *s = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        s->mem_used -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > s->mem_limit - s->mem_used)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (!p)
        return nsize <= old ? ptr : NULL; /* Lua assumes shrinking works */
    s->mem_used = s->mem_used - old + nsize;
    return p;
}

static const char *base_name(const char *p)
{
    const char *b = strrchr(p, '/');
    return b && b[1] ? b + 1 : p;
}

/* Copies a Lua message into err on one line. */
void script_set_err(char *err, size_t errlen, const char *msg)
{
    if (!err || errlen == 0)
        return;
    snprintf(err, errlen, "%s", msg ? msg : "unknown error");
    for (char *c = err; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
}

/* ---- budget and error handler ------------------------------------------ */

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    struct script *s = script_owner(L);
    /* From now on every instruction fails, so pcall cannot swallow it. */
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        lua_pushfstring(L, "%s:%d: instruction budget exceeded (%I)",
                        ar->short_src, ar->currentline, (lua_Integer)s->budget);
    else
        lua_pushfstring(L, "%s: instruction budget exceeded (%I)", s->name,
                        (lua_Integer)s->budget);
    lua_error(L);
}

void script_set_budget(struct script *s)
{
    int n = s->budget > INT_MAX ? INT_MAX : (int)s->budget;
    lua_sethook(s->L, budget_hook, LUA_MASKCOUNT, n);
}

/* Pushes "file:line:" of the innermost Lua function, or "". */
static void push_where(lua_State *L)
{
    lua_Debug ar;
    for (int lv = 1; lua_getstack(L, lv, &ar); lv++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

/* The message handler of every pcall: turns the error object into a
 * string (with a location if it had none to carry) and logs the
 * traceback at debug level. */
int script_msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") &&
            lua_type(L, -1) == LUA_TSTRING) {
            msg = lua_tostring(L, -1);
        } else {
            push_where(L);
            msg = lua_pushfstring(L, "%s(error object is a %s value)",
                                  lua_tostring(L, -1), luaL_typename(L, 1));
        }
    }
    struct script *s = script_owner(L);
    if (s->env.log) {
        luaL_traceback(L, L, msg, 1);
        s->env.log(s->env.ud, FD_LOG_DEBUG, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pushstring(L, msg);
    return 1;
}

/* Formats a failed pcall's status and message into err. */
void script_call_error(struct script *s, int st, char *err, size_t errlen)
{
    char buf[256];
    if (st == LUA_ERRMEM) {
        snprintf(buf, sizeof buf,
                 "%s: not enough memory (script memory limit %zu MiB)", s->name,
                 s->mem_limit >> 20);
        script_set_err(err, errlen, buf);
    } else {
        const char *m = lua_tostring(s->L, -1);
        script_set_err(err, errlen, m ? m : "error in error handling");
    }
}

/* ---- loading files ----------------------------------------------------- */

/* Reads `path` into a collector-owned buffer and compiles it as text;
 * pushes the chunk, or raises with a message naming the file. */
void script_load_file(lua_State *L, const char *path, const char *chunkname,
                      const char *shown)
{
    struct stat st;
    if (stat(path, &st) < 0)
        luaL_error(L, "%s: cannot open: %s", shown, strerror(errno));
    if (!S_ISREG(st.st_mode))
        luaL_error(L, "%s: not a regular file", shown);
    if (st.st_size > MAX_FILE)
        luaL_error(L, "%s: larger than 16 MiB", shown);
    size_t size = (size_t)st.st_size;
    char *buf = lua_newuserdatauv(L, size + 1, 0);
    FILE *f = fopen(path, "rb");
    if (!f)
        luaL_error(L, "%s: cannot open: %s", shown, strerror(errno));
    size_t n = fread(buf, 1, size, f);
    fclose(f);
    size_t skip = n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    if (n - skip > 0 && buf[skip] == '#') /* a "#!" line, as lua(1) allows */
        while (skip < n && buf[skip] != '\n')
            skip++;
    if (luaL_loadbufferx(L, buf + skip, n - skip, chunkname, "t") != LUA_OK)
        lua_error(L);
    lua_remove(L, -2); /* the buffer */
}

static bool module_name_ok(const char *n, size_t len)
{
    if (len == 0 || len > 128 || n[0] == '.' || n[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                  (c == '.' && n[i + 1] != '.');
        if (!ok)
            return false;
    }
    return true;
}

/* require(name): lib_dir/<name with dots as slashes>.lua, text only, run
 * in the script's sandbox once; later calls return the cached value. */
static int l_require(lua_State *L)
{
    struct script *s = script_owner(L);
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    if (!module_name_ok(name, len))
        return luaL_error(L,
                          "require: bad module name '%s' (letters, "
                          "digits, '_', '-', and '.' between parts)",
                          name);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &loaded_key);
    int cache = lua_gettop(L);
    lua_getfield(L, cache, name);
    if (lua_touserdata(L, -1) == &loading_key)
        return luaL_error(L, "require: '%s' requires itself (loop)", name);
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    if (!s->lib_dir)
        return luaL_error(L, "require: no library folder for '%s'", name);
    char rel[160], path[4096], chunk[210], shown[200];
    snprintf(rel, sizeof rel, "%s.lua", name);
    for (char *c = rel; c < rel + len; c++)
        if (*c == '.')
            *c = '/';
    snprintf(path, sizeof path, "%s/%s", s->lib_dir, rel);
    snprintf(shown, sizeof shown, "%s/%s", s->lib_label, rel);
    snprintf(chunk, sizeof chunk, "@%s", shown);
    struct stat st;
    if (stat(path, &st) < 0)
        return luaL_error(L, "require: module '%s' not found (no %s)", name,
                          shown);
    lua_pushlightuserdata(L, &loading_key);
    lua_setfield(L, cache, name);
    script_load_file(L, path, chunk, shown);
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pushnil(L); /* not loading any more: a later require retries */
        lua_setfield(L, cache, name);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, cache, name);
    return 1;
}

/* ---- sandbox ----------------------------------------------------------- */

/* load(chunk [, name [, mode [, env]]]) with mode forced to "t". */
static int l_load(lua_State *L)
{
    if (lua_gettop(L) < 3)
        lua_settop(L, 3);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int l_print(lua_State *L)
{
    struct script *s = script_owner(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    const char *msg = lua_tostring(L, -1);
    if (s->out)
        fprintf(s->out, "# %s\n", msg);
    else if (s->env.log)
        s->env.log(s->env.ud, FD_LOG_INFO, msg);
    else
        log_msg(LOG_INFO, "script", NULL, "%s: %s", s->name, msg);
    return 0;
}

/* collectgarbage limited to options that cannot stop or retune the
 * collector (a stopped collector would just run into the memory cap). */
static int l_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "collect") == 0) {
        lua_gc(L, LUA_GCCOLLECT);
        lua_pushinteger(L, 0);
    } else if (strcmp(opt, "count") == 0) {
        int k = lua_gc(L, LUA_GCCOUNT), b = lua_gc(L, LUA_GCCOUNTB);
        lua_pushnumber(L, (lua_Number)k + (lua_Number)b / 1024);
    } else if (strcmp(opt, "step") == 0) {
        lua_pushboolean(L,
                        lua_gc(L, LUA_GCSTEP, (int)luaL_optinteger(L, 2, 0)));
    } else if (strcmp(opt, "isrunning") == 0) {
        lua_pushboolean(L, lua_gc(L, LUA_GCISRUNNING));
    } else {
        return luaL_error(L,
                          "collectgarbage: option '%s' is not allowed in "
                          "scripts",
                          opt);
    }
    return 1;
}

static void open_lib(lua_State *L, const char *name, lua_CFunction f)
{
    luaL_requiref(L, name, f, 1);
    lua_pop(L, 1);
}

static void set_nil(lua_State *L, int t, const char *k)
{
    lua_pushnil(L);
    lua_setfield(L, t, k);
}

static int msg_index(lua_State *L);
static int part_index(lua_State *L);
static int msg_newindex(lua_State *L);
static int msg_tostring(lua_State *L);

/* Builds the sandbox in a fresh state (protected: may raise). */
void script_open_sandbox(lua_State *L)
{
    struct script *s = script_owner(L);
    open_lib(L, LUA_GNAME, luaopen_base);
    open_lib(L, LUA_STRLIBNAME, luaopen_string);
    open_lib(L, LUA_TABLIBNAME, luaopen_table);
    open_lib(L, LUA_MATHLIBNAME, luaopen_math);
    open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);

    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0); /* not global */
    lua_createtable(L, 0, 4);
    static const char *const safe_os[] = {"time", "clock", "date", "difftime",
                                          NULL};
    for (int i = 0; safe_os[i]; i++) {
        lua_getfield(L, -2, safe_os[i]);
        lua_setfield(L, -2, safe_os[i]);
    }
    lua_setglobal(L, "os");
    lua_pop(L, 1);

    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    set_nil(L, g, "dofile");
    set_nil(L, g, "loadfile");
    lua_getfield(L, g, "load");
    lua_pushcclosure(L, l_load, 1);
    lua_setfield(L, g, "load");
    lua_pushcfunction(L, l_print);
    lua_setfield(L, g, "print");
    lua_pushcfunction(L, l_collectgarbage);
    lua_setfield(L, g, "collectgarbage");
    lua_pushcfunction(L, l_require);
    lua_setfield(L, g, "require");
    lua_getfield(L, g, "string");
    set_nil(L, lua_gettop(L), "dump");
    lua_pop(L, 1);
    fdlib_open(L, &s->env);
    lua_setfield(L, g, "fd");
    lua_pop(L, 1);

    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &loaded_key);

    luaL_newmetatable(L, MSG_META);
    lua_pushcfunction(L, msg_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, msg_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, msg_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    luaL_newmetatable(L, PART_META);
    lua_pushcfunction(L, part_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, msg_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

/* A new script with its state, not yet loaded; NULL with err set. */
struct script *script_state_new(const char *path, const char *lib_dir,
                                const struct script_limits *lim,
                                const struct script_env *env, char *err,
                                size_t errlen)
{
    struct script *s = calloc(1, sizeof *s);
    if (!s) {
        script_set_err(err, errlen, "out of memory");
        return NULL;
    }
    s->path = strdup(path);
    s->name = strdup(base_name(path));
    if (lib_dir) {
        s->lib_dir = strdup(lib_dir);
        s->lib_label = strdup(base_name(lib_dir));
    }
    if (env)
        s->env = *env;
    s->budget =
        lim && lim->instructions > 0 ? lim->instructions : DEFAULT_BUDGET;
    s->mem_limit = lim && lim->memory > 0 ? lim->memory : DEFAULT_MEMORY;
    if (!s->path || !s->name || (lib_dir && (!s->lib_dir || !s->lib_label)))
        goto fail;
    s->L = lua_newstate(capped_alloc, s);
    if (!s->L)
        goto fail;
    *(struct script **)lua_getextraspace(s->L) = s;
    script_set_budget(s);
    return s;
fail:
    script_set_err(err, errlen, "out of memory");
    script_free(s);
    return NULL;
}

/* ---- the msg object ---------------------------------------------------- */

static const struct script_msg *live_msg(lua_State *L, const struct msgref *r)
{
    struct script *s = script_owner(L);
    if (!s->call || s->call->gen != r->gen)
        luaL_error(L, "msg is only valid during the on_message call it was "
                      "passed to");
    return s->call->m;
}

static void push_opt(lua_State *L, const char *v)
{
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
}

static void push_part(lua_State *L, int slot, int part, unsigned long gen)
{
    if (lua_getiuservalue(L, 1, slot) != LUA_TNIL)
        return; /* cached: msg.user == msg.user */
    lua_pop(L, 1);
    struct msgref *r = lua_newuserdatauv(L, sizeof *r, 0);
    r->gen = gen;
    r->part = part;
    luaL_setmetatable(L, PART_META);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, slot);
}

static int m_reply(lua_State *L);
static int m_dm(lua_State *L);
static int m_to_private(lua_State *L);
static int m_handoff(lua_State *L);
static int m_hide(lua_State *L);
static int m_tag(lua_State *L);

static int msg_index(lua_State *L)
{
    struct msgref *r = luaL_checkudata(L, 1, MSG_META);
    const char *k = lua_tostring(L, 2);
    if (!k || lua_type(L, 2) != LUA_TSTRING)
        return 0;
    static const struct {
        const char *name;
        lua_CFunction f;
    } methods[] = {
        {"reply", m_reply},     {"dm", m_dm},     {"to_private", m_to_private},
        {"handoff", m_handoff}, {"hide", m_hide}, {"tag", m_tag},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(k, methods[i].name) == 0) {
            lua_pushcfunction(L, methods[i].f);
            return 1;
        }
    const struct script_msg *m = live_msg(L, r);
    if (strcmp(k, "text") == 0)
        push_opt(L, m->text ? m->text : "");
    else if (strcmp(k, "id") == 0)
        push_opt(L, m->id);
    else if (strcmp(k, "platform") == 0)
        push_opt(L, m->platform);
    else if (strcmp(k, "channel") == 0)
        push_opt(L, m->channel);
    else if (strcmp(k, "private") == 0)
        lua_pushboolean(L, m->is_private);
    else if (strcmp(k, "thread") == 0)
        push_opt(L, m->thread);
    else if (strcmp(k, "user") == 0)
        push_part(L, 1, PART_USER, r->gen);
    else if (strcmp(k, "chat") == 0)
        push_part(L, 2, PART_CHAT, r->gen);
    else if (strcmp(k, "case") == 0)
        push_part(L, 3, PART_CASE, r->gen);
    else
        lua_pushnil(L);
    return 1;
}

static int part_index(lua_State *L)
{
    struct msgref *r = luaL_checkudata(L, 1, PART_META);
    const char *k = lua_tostring(L, 2);
    if (!k || lua_type(L, 2) != LUA_TSTRING)
        return 0;
    const struct script_msg *m = live_msg(L, r);
    if (r->part == PART_USER) {
        if (strcmp(k, "id") == 0)
            push_opt(L, m->user_id);
        else if (strcmp(k, "name") == 0)
            push_opt(L, m->user_name ? m->user_name : m->user_id);
        else if (strcmp(k, "handle") == 0)
            push_opt(L, m->user_handle);
        else
            lua_pushnil(L);
    } else if (r->part == PART_CHAT) {
        if (strcmp(k, "id") == 0)
            push_opt(L, m->chat_id);
        else
            lua_pushnil(L);
    } else {
        if (strcmp(k, "id") == 0)
            lua_pushinteger(L, (lua_Integer)m->case_id);
        else if (strcmp(k, "state") == 0)
            push_opt(L, m->case_state ? m->case_state : "bot");
        else
            lua_pushnil(L);
    }
    return 1;
}

static int msg_newindex(lua_State *L)
{
    return luaL_error(L, "msg is read-only (tried to set '%s')",
                      luaL_tolstring(L, 2, NULL));
}

static int msg_tostring(lua_State *L)
{
    struct msgref *r = luaL_checkudata(L, 1, MSG_META);
    struct script *s = script_owner(L);
    if (s->call && s->call->gen == r->gen && s->call->m->id)
        lua_pushfstring(L, "msg(%s)", s->call->m->id);
    else
        lua_pushliteral(L, "msg");
    return 1;
}

/* ---- actions ----------------------------------------------------------- */

static struct call *call_of(lua_State *L, const char *fn)
{
    struct msgref *r = luaL_testudata(L, 1, MSG_META);
    if (!r)
        luaL_error(L, "msg:%s: call it with a colon: msg:%s(...)", fn, fn);
    live_msg(L, r);
    return script_owner(L)->call;
}

/* The string argument at idx: NULL when nil and optional; raises when the
 * type is wrong, it is empty, or longer than max. */
static const char *arg_text(lua_State *L, int idx, const char *fn,
                            const char *what, bool required, size_t max)
{
    int t = lua_type(L, idx);
    if ((t == LUA_TNIL || t == LUA_TNONE) && !required)
        return NULL;
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "msg:%s: %s must be a string, got %s", fn, what,
                   luaL_typename(L, idx));
    size_t n;
    const char *v = lua_tolstring(L, idx, &n);
    if (n == 0)
        luaL_error(L, "msg:%s: %s is empty", fn, what);
    if (n > max)
        luaL_error(L, "msg:%s: %s is too long (%I bytes, at most %I)", fn, what,
                   (lua_Integer)n, (lua_Integer)max);
    if (strlen(v) != n)
        luaL_error(L, "msg:%s: %s contains a NUL byte", fn, what);
    return v;
}

/* Appends an action to the call's pending list.  No Lua call may raise
 * between the mallocs and the append, or they would leak. */
static void add_action(lua_State *L, struct call *c, const char *fn,
                       enum script_action_kind kind, const char *a,
                       const char *b)
{
    struct script_result *p = &c->pending;
    if (p->n >= MAX_ACTIONS)
        luaL_error(L, "msg:%s: too many actions in one call (at most %d)", fn,
                   MAX_ACTIONS);
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 4;
        struct script_action *v = realloc(p->v, ncap * sizeof *v);
        if (!v)
            luaL_error(L, "msg:%s: not enough memory", fn);
        p->v = v;
        p->cap = ncap;
    }
    char *ca = a ? strdup(a) : NULL, *cb = b ? strdup(b) : NULL;
    if ((a && !ca) || (b && !cb)) {
        free(ca);
        free(cb);
        luaL_error(L, "msg:%s: not enough memory", fn);
    }
    p->v[p->n++] = (struct script_action){.kind = kind, .a = ca, .b = cb};
}

/* msg:reply(text) */
static int m_reply(lua_State *L)
{
    struct call *c = call_of(L, "reply");
    const char *t = arg_text(L, 2, "reply", "text", true, MAX_TEXT);
    add_action(L, c, "reply", SCRIPT_REPLY, t, NULL);
    return 0;
}

/* msg:dm(text) */
static int m_dm(lua_State *L)
{
    struct call *c = call_of(L, "dm");
    const char *t = arg_text(L, 2, "dm", "text", true, MAX_TEXT);
    add_action(L, c, "dm", SCRIPT_DM, t, NULL);
    return 0;
}

/* msg:to_private{public=..., private=...}; public may be left out. */
static int m_to_private(lua_State *L)
{
    struct call *c = call_of(L, "to_private");
    lua_settop(L, 2);
    if (lua_type(L, 2) != LUA_TTABLE)
        return luaL_error(L,
                          "msg:to_private: expected a table "
                          "{public=..., private=...}, got %s",
                          luaL_typename(L, 2));
    lua_getfield(L, 2, "public");
    lua_getfield(L, 2, "private");
    const char *pub = arg_text(L, 3, "to_private", "public", false, MAX_TEXT);
    const char *priv = arg_text(L, 4, "to_private", "private", true, MAX_TEXT);
    add_action(L, c, "to_private", SCRIPT_TO_PRIVATE, pub, priv);
    return 0;
}

/* msg:handoff([{queue=..., note=...} | note]) */
static int m_handoff(lua_State *L)
{
    struct call *c = call_of(L, "handoff");
    const char *note = NULL, *queue = NULL;
    lua_settop(L, 2);
    int t = lua_type(L, 2);
    if (t == LUA_TTABLE) {
        lua_getfield(L, 2, "queue");
        lua_getfield(L, 2, "note");
        queue = arg_text(L, 3, "handoff", "queue", false, MAX_SHORT);
        note = arg_text(L, 4, "handoff", "note", false, MAX_TEXT);
    } else if (t == LUA_TSTRING) {
        note = arg_text(L, 2, "handoff", "note", false, MAX_TEXT);
    } else if (t != LUA_TNIL && t != LUA_TNONE) {
        return luaL_error(L,
                          "msg:handoff: expected a table {queue=..., "
                          "note=...} or nothing, got %s",
                          luaL_typename(L, 2));
    }
    add_action(L, c, "handoff", SCRIPT_HANDOFF, note, queue);
    return 0;
}

/* msg:hide() */
static int m_hide(lua_State *L)
{
    struct call *c = call_of(L, "hide");
    add_action(L, c, "hide", SCRIPT_HIDE, NULL, NULL);
    return 0;
}

/* msg:tag(category) */
static int m_tag(lua_State *L)
{
    struct call *c = call_of(L, "tag");
    const char *t = arg_text(L, 2, "tag", "category", true, MAX_SHORT);
    add_action(L, c, "tag", SCRIPT_TAG, t, NULL);
    return 0;
}

/* ---- load / call / free ------------------------------------------------ */

static void check_on_message(lua_State *L, const struct script *s)
{
    int t = lua_getglobal(L, "on_message");
    if (t == LUA_TNIL) {
        lua_pushfstring(L,
                        "%s: on_message is not defined (the script must "
                        "define function on_message(msg))",
                        s->name);
        lua_error(L);
    }
    if (t != LUA_TFUNCTION) {
        lua_pushfstring(L, "%s: on_message must be a function, got %s", s->name,
                        lua_typename(L, t));
        lua_error(L);
    }
    lua_pop(L, 1);
}

/* Protected: builds the sandbox, compiles and runs the main chunk. */
static int load_main(lua_State *L)
{
    struct script *s = script_owner(L);
    bool want_on_message = lua_toboolean(L, 1);
    script_open_sandbox(L);
    char chunk[300];
    snprintf(chunk, sizeof chunk, "@%s", s->name);
    script_load_file(L, s->path, chunk, s->path);
    lua_call(L, 0, 0);
    if (want_on_message)
        check_on_message(L, s);
    return 0;
}

/* Runs load_main; 0 or <0 with err set. */
static int run_load(struct script *s, bool want_on_message, char *err,
                    size_t errlen)
{
    lua_State *L = s->L;
    lua_settop(L, 0);
    lua_pushcfunction(L, script_msgh);
    lua_pushcfunction(L, load_main);
    lua_pushboolean(L, want_on_message);
    script_set_budget(s);
    int st = lua_pcall(L, 1, 0, 1);
    if (st != LUA_OK)
        script_call_error(s, st, err, errlen);
    lua_settop(L, 0);
    return st == LUA_OK ? 0 : -1;
}

int script_load(const char *path, const char *lib_dir,
                const struct script_limits *lim, const struct script_env *env,
                struct script **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path) {
        script_set_err(err, errlen, "no script path");
        return -1;
    }
    struct script *s = script_state_new(path, lib_dir, lim, env, err, errlen);
    if (!s)
        return -1;
    if (run_load(s, true, err, errlen) < 0) {
        script_free(s);
        return -1;
    }
    lua_gc(s->L, LUA_GCCOLLECT);
    *out = s;
    return 0;
}

/* Protected: on_message(msg). */
static int call_main(lua_State *L)
{
    struct script *s = script_owner(L);
    if (lua_getglobal(L, "on_message") != LUA_TFUNCTION) {
        lua_pushfstring(L, "%s: on_message is not a function any more",
                        s->name);
        return lua_error(L);
    }
    struct msgref *r = lua_newuserdatauv(L, sizeof *r, 3);
    r->gen = s->call->gen;
    r->part = PART_MSG;
    luaL_setmetatable(L, MSG_META);
    lua_call(L, 1, 0);
    return 0;
}

static int result_append(struct script_result *res, struct script_result *p)
{
    if (p->n == 0)
        return 0;
    if (res->n + p->n > res->cap) {
        size_t ncap = res->cap ? res->cap : 4;
        while (ncap < res->n + p->n)
            ncap *= 2;
        struct script_action *v = realloc(res->v, ncap * sizeof *v);
        if (!v)
            return -1;
        res->v = v;
        res->cap = ncap;
    }
    memcpy(res->v + res->n, p->v, p->n * sizeof *p->v);
    res->n += p->n;
    free(p->v);
    memset(p, 0, sizeof *p);
    return 0;
}

int script_call(struct script *s, const struct script_msg *m,
                struct script_result *res, char *err, size_t errlen)
{
    if (!s || !m || !res) {
        script_set_err(err, errlen, "script_call: nothing to run");
        return -1;
    }
    lua_State *L = s->L;
    struct call c = {.m = m, .gen = ++s->gen};
    s->call = &c;
    lua_settop(L, 0);
    lua_pushcfunction(L, script_msgh);
    lua_pushcfunction(L, call_main);
    script_set_budget(s);
    int st = lua_pcall(L, 0, 0, 1);
    s->call = NULL;
    int rc = 0;
    if (st != LUA_OK) {
        script_call_error(s, st, err, errlen);
        rc = -1;
    } else if (result_append(res, &c.pending) < 0) {
        script_set_err(err, errlen, "out of memory");
        rc = -1;
    }
    script_result_clear(&c.pending);
    lua_settop(L, 0);
    if (rc < 0) {
        script_set_budget(s);     /* finalisers get a fresh budget */
        lua_gc(L, LUA_GCCOLLECT); /* a failed call leaves garbage behind */
    }
    return rc;
}

void script_free(struct script *s)
{
    if (!s)
        return;
    if (s->L) {
        script_set_budget(s); /* finalisers run under the budget too */
        lua_close(s->L);
    }
    free(s->path);
    free(s->name);
    free(s->lib_dir);
    free(s->lib_label);
    free(s);
}

const char *script_path(const struct script *s)
{
    return s ? s->path : NULL;
}

void script_result_clear(struct script_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].a);
        free(r->v[i].b);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

const char *script_action_name(enum script_action_kind k)
{
    switch (k) {
    case SCRIPT_REPLY:
        return "reply";
    case SCRIPT_DM:
        return "dm";
    case SCRIPT_TO_PRIVATE:
        return "to_private";
    case SCRIPT_HANDOFF:
        return "handoff";
    case SCRIPT_HIDE:
        return "hide";
    case SCRIPT_TAG:
        return "tag";
    }
    return "?";
}
