/*
 * fdlib.c - the `fd` Lua library (see fdlib.h and DESIGN.md "The script
 * API").  Every function validates its arguments with a Lua error that
 * names the function; nothing here keeps malloc'd memory across a point
 * where Lua may raise (a raise would leak it), so scratch space is either
 * on the C stack or a Lua userdata the collector owns.
 *
 * The script_env pointer is every function's upvalue 1.
 */
#include "fdlib.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "faq.h"
#include "log.h"
#include "plugin_api.h"
#include "script.h"
#include "text.h"

#define MAX_SENSITIVE 64
#define MAX_KEY 256
#define MAX_VALUE (64 * 1024)
#define MAX_LOG 4096
#define FAQ_META "fd.faq"

static const struct script_env *env_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static const char *check_text(lua_State *L, int arg, const char *fn,
                              size_t *len)
{
    if (lua_type(L, arg) != LUA_TSTRING && lua_type(L, arg) != LUA_TNUMBER)
        luaL_error(L, "%s: argument #%d must be a string, got %s", fn, arg,
                   luaL_typename(L, arg));
    return lua_tolstring(L, arg, len);
}

/* Scratch memory owned by the collector, pushed on the stack. */
static char *scratch(lua_State *L, size_t n)
{
    return lua_newuserdatauv(L, n ? n : 1, 0);
}

/* fd.normalize(s) -> normalised string */
static int l_normalize(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, "fd.normalize", &len);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, len + 1);
    luaL_pushresultsize(&b, text_normalize(s, len, out, len + 1));
    return 1;
}

/* fd.words(s) -> { normalised words } */
static int l_words(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, "fd.words", &len);
    char sbuf[2048];
    char *buf = len < sizeof sbuf ? sbuf : scratch(L, len + 1);
    size_t n = text_normalize(s, len, buf, len + 1);
    lua_newtable(L);
    lua_Integer k = 1;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && buf[e] != ' ')
            e++;
        lua_pushlstring(L, buf + i, e - i);
        lua_rawseti(L, -2, k++);
        i = e + 1;
    }
    return 1;
}

/* Does normalised text contain the phrase at stack index `idx`? */
static bool has_one(lua_State *L, const char *norm, size_t n, int idx,
                    lua_Integer pos)
{
    size_t plen;
    if (lua_type(L, idx) != LUA_TSTRING)
        luaL_error(L, "fd.has: phrase %d must be a string, got %s", (int)pos,
                   luaL_typename(L, idx));
    const char *p = lua_tolstring(L, idx, &plen);
    char sbuf[512];
    char *buf = plen + 1 <= sizeof sbuf ? sbuf : scratch(L, plen + 1);
    size_t pn = text_phrase_prepare(p, plen, buf, plen + 1);
    bool hit = text_has_phrase(norm, n, buf, pn);
    if (buf != sbuf)
        lua_pop(L, 1);
    return hit;
}

/* fd.has(text, phrase | {phrases}) -> true, phrase | false
 * Whole-word match on normalised text; "word*" matches as a prefix. */
static int l_has(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, "fd.has", &len);
    int t = lua_type(L, 2);
    if (t != LUA_TSTRING && t != LUA_TTABLE)
        return luaL_error(L,
                          "fd.has: argument #2 must be a phrase or a list "
                          "of phrases, got %s",
                          luaL_typename(L, 2));
    char sbuf[2048];
    char *norm = len < sizeof sbuf ? sbuf : scratch(L, len + 1);
    size_t n = text_normalize(s, len, norm, len + 1);
    if (t == LUA_TSTRING) {
        bool hit = has_one(L, norm, n, 2, 1);
        lua_pushboolean(L, hit);
        if (!hit)
            return 1;
        lua_pushvalue(L, 2);
        return 2;
    }
    lua_Integer count = luaL_len(L, 2);
    for (lua_Integer i = 1; i <= count; i++) {
        lua_geti(L, 2, i);
        if (has_one(L, norm, n, -1, i)) {
            lua_pushboolean(L, 1);
            lua_insert(L, -2);
            return 2;
        }
        lua_pop(L, 1);
    }
    lua_pushboolean(L, 0);
    return 1;
}

/* fd.sensitive(text) -> nil | {iban={..}, card={..}, email={..},
 * phone={..}, kinds={"iban", ...}} with only the kinds found. */
static int l_sensitive(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, "fd.sensitive", &len);
    struct text_match m[MAX_SENSITIVE];
    size_t n = text_find_sensitive(s, len, m, MAX_SENSITIVE);
    if (n == 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 5);
    lua_createtable(L, 4, 0); /* kinds */
    lua_Integer nk = 0;
    for (int kind = 0; kind < TEXT_NKINDS; kind++) {
        lua_Integer k = 0;
        for (size_t i = 0; i < n; i++) {
            if (m[i].kind != (enum text_kind)kind)
                continue;
            if (k == 0)
                lua_newtable(L);
            lua_pushstring(L, m[i].value);
            lua_rawseti(L, -2, ++k);
        }
        if (k == 0)
            continue;
        lua_setfield(L, -3, text_kind_name((enum text_kind)kind));
        lua_pushstring(L, text_kind_name((enum text_kind)kind));
        lua_rawseti(L, -2, ++nk);
    }
    lua_setfield(L, -2, "kinds");
    return 1;
}

/* fd.redact(text) -> text with sensitive data replaced by [IBAN], [card],
 * [e-mail], [phone]; safe for logs and handoff notes. */
static int l_redact(lua_State *L)
{
    static const char *const label[] = {"[IBAN]", "[card]", "[e-mail]",
                                        "[phone]"};
    size_t len;
    const char *s = check_text(L, 1, "fd.redact", &len);
    struct text_match m[MAX_SENSITIVE];
    size_t n = text_find_sensitive(s, len, m, MAX_SENSITIVE);
    for (size_t i = 1; i < n; i++) /* by offset */
        for (size_t j = i; j > 0 && m[j - 1].off > m[j].off; j--) {
            struct text_match t = m[j];
            m[j] = m[j - 1];
            m[j - 1] = t;
        }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        luaL_addlstring(&b, s + pos, m[i].off - pos);
        luaL_addstring(&b, label[m[i].kind]);
        pos = m[i].off + m[i].len;
    }
    if (n == MAX_SENSITIVE) /* there may be more: do not show the rest */
        luaL_addstring(&b, " [...]");
    else
        luaL_addlstring(&b, s + pos, len - pos);
    luaL_pushresult(&b);
    return 1;
}

/* fd.find_iban(text) -> first IBAN (compact, upper case) or nil */
static int l_find_iban(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, "fd.find_iban", &len);
    struct text_match m[4];
    size_t n = text_find_sensitive(s, len, m, 1);
    if (n == 1 && m[0].kind == TEXT_IBAN)
        lua_pushstring(L, m[0].value);
    else
        lua_pushnil(L);
    return 1;
}

static int l_is_iban(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, "fd.is_iban", &len);
    lua_pushboolean(L, text_is_iban(s, len));
    return 1;
}

static int l_is_card(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, "fd.is_card", &len);
    lua_pushboolean(L, text_is_card(s, len));
    return 1;
}

/* fd.order_number(text) -> "12345678" or nil */
static int l_order_number(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, "fd.order_number", &len);
    char out[40];
    if (text_order_number(s, len, out, sizeof out))
        lua_pushstring(L, out);
    else
        lua_pushnil(L);
    return 1;
}

/* fd.tone(text) -> number in [-1, 1] */
static int l_tone(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, "fd.tone", &len);
    lua_pushnumber(L, text_tone(s, len));
    return 1;
}

/* fd.log([level,] ...): level "debug" | "info" | "warn" | "error" when
 * more arguments follow; the rest joined like print(). */
static int l_log(lua_State *L)
{
    static const char *const names[] = {"debug", "info", "warn", "error", NULL};
    int top = lua_gettop(L), first = 1, level = FD_LOG_INFO;
    if (top >= 2 && lua_type(L, 1) == LUA_TSTRING) {
        const char *l = lua_tostring(L, 1);
        for (int i = 0; names[i]; i++)
            if (strcmp(l, names[i]) == 0) {
                level = i;
                first = 2;
            }
        if (first == 1 && strcmp(l, "warning") == 0)
            level = FD_LOG_WARN, first = 2;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = first; i <= top; i++) {
        if (i > first)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    if (n > MAX_LOG) {
        lua_pushlstring(L, msg, MAX_LOG);
        msg = lua_tostring(L, -1);
    }
    const struct script_env *env = env_of(L);
    if (env && env->log)
        env->log(env->ud, level, msg);
    else
        log_msg(level, "script", NULL, "%s", msg);
    return 0;
}

/* fd.can(capability) -> boolean, from the platform's capability bits. */
static int l_can(lua_State *L)
{
    static const struct {
        const char *name;
        unsigned bit;
    } caps[] = {
        {"threads", FD_CAP_THREADS},
        {"dm", FD_CAP_DM},
        {"private_reply", FD_CAP_PRIVATE_REPLY},
        {"hide", FD_CAP_HIDE},
        {"typing", FD_CAP_TYPING},
        {"webpage", FD_CAP_WEBPAGE},
    };
    const char *name = luaL_checkstring(L, 1);
    const struct script_env *env = env_of(L);
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        if (strcmp(name, caps[i].name) == 0) {
            lua_pushboolean(L, env && (env->caps & caps[i].bit));
            return 1;
        }
    return luaL_error(L,
                      "fd.can: unknown capability '%s' (threads, dm, "
                      "private_reply, hide, typing, webpage)",
                      name);
}

/* ---- fd.store -------------------------------------------------------- */

static const char *check_key(lua_State *L, const char *fn)
{
    size_t n;
    if (lua_type(L, 1) != LUA_TSTRING)
        luaL_error(L, "%s: key must be a string, got %s", fn,
                   luaL_typename(L, 1));
    const char *k = lua_tolstring(L, 1, &n);
    if (n == 0 || n > MAX_KEY || strlen(k) != n)
        luaL_error(L, "%s: key must be 1..%d bytes without NUL", fn, MAX_KEY);
    return k;
}

static int push_malloced(lua_State *L)
{
    lua_pushstring(L, lua_touserdata(L, 1));
    return 1;
}

/* fd.store.get(key) -> string or nil */
static int l_store_get(lua_State *L)
{
    const char *key = check_key(L, "fd.store.get");
    const struct script_env *env = env_of(L);
    if (!env || !env->kv_get) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushcfunction(L, push_malloced); /* before the malloc: cannot fail */
    char *v = env->kv_get(env->ud, key);
    if (!v) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlightuserdata(L, v);
    int st = lua_pcall(L, 1, 1, 0); /* so a memory error cannot leak v */
    free(v);
    if (st != LUA_OK)
        return lua_error(L);
    return 1;
}

/* fd.store.set(key, value) -> true | false, why.  value: string, number,
 * boolean (stored as text) or nil (deletes). */
static int l_store_set(lua_State *L)
{
    const char *key = check_key(L, "fd.store.set");
    const char *val = NULL;
    size_t n = 0;
    switch (lua_type(L, 2)) {
    case LUA_TNIL:
    case LUA_TNONE:
        break;
    case LUA_TBOOLEAN:
        val = lua_toboolean(L, 2) ? "true" : "false";
        break;
    case LUA_TSTRING:
    case LUA_TNUMBER:
        val = lua_tolstring(L, 2, &n);
        if (n > MAX_VALUE || strlen(val) != n)
            return luaL_error(L,
                              "fd.store.set: value must be at most %d "
                              "bytes without NUL",
                              MAX_VALUE);
        break;
    default:
        return luaL_error(L,
                          "fd.store.set: value must be a string, number, "
                          "boolean or nil, got %s",
                          luaL_typename(L, 2));
    }
    const struct script_env *env = env_of(L);
    if (!env || !env->kv_set) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "no store");
        return 2;
    }
    if (env->kv_set(env->ud, key, val) < 0) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "store write failed");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- fd.faq ---------------------------------------------------------- */

struct faq_box {
    struct faq *f;
    lua_Integer entries;
};

static struct faq_box *check_faq(lua_State *L)
{
    struct faq_box *b = luaL_testudata(L, 1, FAQ_META);
    if (!b)
        luaL_error(L, "faq:match: call it as faq:match(text), not "
                      "faq.match(text)");
    return b;
}

/* Adds the phrase at the top of the stack to entry i (0-based). */
static void faq_add_top(lua_State *L, struct faq_box *b, lua_Integer i,
                        lua_Integer p)
{
    size_t n;
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "fd.faq: entry %d: phrase %d must be a string, got %s",
                   (int)i + 1, (int)p, luaL_typename(L, -1));
    const char *s = lua_tolstring(L, -1, &n);
    int rc = faq_add(b->f, s, n, (int)i);
    if (rc == -ENOMEM)
        luaL_error(L, "fd.faq: not enough memory");
    if (rc < 0)
        luaL_error(L,
                   "fd.faq: entry %d: phrase %d (\"%s\") needs 1..32 words, "
                   "a '*' prefix at most 63 bytes",
                   (int)i + 1, (int)p, s);
    lua_pop(L, 1);
}

/* fd.faq{ {{phrases...}, answer}, ... } -> faq object.  An entry may also
 * be {phrases=..., answer=...}; phrases may be one string. */
static int l_faq(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct faq_box *b = lua_newuserdatauv(L, sizeof *b, 1); /* index 2 */
    b->f = NULL;
    b->entries = 0;
    luaL_setmetatable(L, FAQ_META);
    void *aud;
    lua_Alloc alloc = lua_getallocf(L, &aud);
    b->f = faq_new(alloc, aud); /* counts against the script's memory cap */
    if (!b->f)
        return luaL_error(L, "fd.faq: not enough memory");
    lua_Integer n = luaL_len(L, 1);
    lua_createtable(L, n > 0 && n < 1000000 ? (int)n : 0, 0); /* answers */
    for (lua_Integer i = 0; i < n; i++) {
        if (lua_geti(L, 1, i + 1) != LUA_TTABLE)
            return luaL_error(L,
                              "fd.faq: entry %d must be a table "
                              "{ {phrases...}, answer }, got %s",
                              (int)i + 1, luaL_typename(L, -1));
        int e = lua_gettop(L);
        if (lua_geti(L, e, 1) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_getfield(L, e, "phrases");
        }
        if (lua_geti(L, e, 2) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_getfield(L, e, "answer");
        }
        if (lua_isnil(L, -1))
            return luaL_error(L,
                              "fd.faq: entry %d has no answer "
                              "(expected { {phrases...}, answer })",
                              (int)i + 1);
        lua_rawseti(L, -4, i + 1); /* answers[i+1] = answer */
        if (lua_type(L, -1) == LUA_TSTRING) {
            faq_add_top(L, b, i, 1);
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            int ph = lua_gettop(L);
            lua_Integer np = luaL_len(L, ph);
            if (np == 0)
                return luaL_error(L, "fd.faq: entry %d has no phrases",
                                  (int)i + 1);
            for (lua_Integer p = 1; p <= np; p++) {
                lua_geti(L, ph, p);
                faq_add_top(L, b, i, p);
            }
            lua_pop(L, 1);
        } else {
            return luaL_error(L,
                              "fd.faq: entry %d: phrases must be a list "
                              "of strings, got %s",
                              (int)i + 1, luaL_typename(L, -1));
        }
        lua_pop(L, 1); /* the entry */
    }
    b->entries = n;
    lua_setiuservalue(L, 2, 1);
    lua_settop(L, 2);
    return 1;
}

/* faq:match(text) -> answer, entry index (1-based) | nil */
static int l_faq_match(lua_State *L)
{
    struct faq_box *b = check_faq(L);
    size_t len;
    const char *s = check_text(L, 2, "faq:match", &len);
    int e = b->f ? faq_match(b->f, s, len, NULL) : -1;
    if (e < 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_getiuservalue(L, 1, 1);
    lua_geti(L, -1, (lua_Integer)e + 1);
    lua_pushinteger(L, (lua_Integer)e + 1);
    return 2;
}

static int l_faq_len(lua_State *L)
{
    struct faq_box *b = luaL_checkudata(L, 1, FAQ_META);
    lua_pushinteger(L, b->entries);
    return 1;
}

static int l_faq_tostring(lua_State *L)
{
    struct faq_box *b = luaL_checkudata(L, 1, FAQ_META);
    lua_pushfstring(L, "fd.faq(%d entries, %d phrases)", (int)b->entries,
                    (int)faq_phrases(b->f));
    return 1;
}

static int l_faq_gc(lua_State *L)
{
    struct faq_box *b = luaL_checkudata(L, 1, FAQ_META);
    faq_free(b->f);
    b->f = NULL;
    return 0;
}

static const luaL_Reg faq_methods[] = {
    {"match", l_faq_match},
    {NULL, NULL},
};

static const luaL_Reg faq_meta[] = {
    {"__len", l_faq_len},
    {"__tostring", l_faq_tostring},
    {"__gc", l_faq_gc},
    {NULL, NULL},
};

static const luaL_Reg fd_funcs[] = {
    {"normalize", l_normalize},
    {"words", l_words},
    {"has", l_has},
    {"sensitive", l_sensitive},
    {"redact", l_redact},
    {"find_iban", l_find_iban},
    {"is_iban", l_is_iban},
    {"is_card", l_is_card},
    {"order_number", l_order_number},
    {"tone", l_tone},
    {"log", l_log},
    {"can", l_can},
    {"faq", l_faq},
    {NULL, NULL},
};

static const luaL_Reg store_funcs[] = {
    {"get", l_store_get},
    {"set", l_store_set},
    {NULL, NULL},
};

void fdlib_open(lua_State *L, const struct script_env *env)
{
    if (luaL_newmetatable(L, FAQ_META)) {
        luaL_setfuncs(L, faq_meta, 0);
        luaL_newlib(L, faq_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, sizeof fd_funcs / sizeof fd_funcs[0]);
    lua_pushlightuserdata(L, (void *)env);
    luaL_setfuncs(L, fd_funcs, 1);
    lua_createtable(L, 0, 2);
    lua_pushlightuserdata(L, (void *)env);
    luaL_setfuncs(L, store_funcs, 1);
    lua_setfield(L, -2, "store");
}
