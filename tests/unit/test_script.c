/*
 * test_script.c - the script engine (core/script.c, core/fdlib.c): loading
 * and its errors, actions, budget and memory caps, the sandbox, the fd
 * library, and the *_test.lua runner, including scripts/example_test.lua
 * against scripts/example.lua through a small fake of the router.
 *
 * Scripts are written to a temporary folder; run from the repository root
 * (or set FRONTDESK_SCRIPTS to the scripts folder).
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "plugin_api.h"
#include "script.h"

static char dir[64];
static char libdir[96];
static char logbuf[4096]; /* what the scripts logged, one line each */

static const char *write_file(const char *folder, const char *name,
                              const char *text)
{
    static char path[8][256];
    static int slot;
    char *p = path[slot++ % 8];
    snprintf(p, 256, "%s/%s", folder, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return p;
}

/* ---- a fake per-channel store and log ---------------------------------- */

static char kv_key[64], kv_val[256];

static char *kv_get(void *ud, const char *key)
{
    (void)ud;
    return kv_key[0] && strcmp(key, kv_key) == 0 ? strdup(kv_val) : NULL;
}

static int kv_set(void *ud, const char *key, const char *value)
{
    (void)ud;
    snprintf(kv_key, sizeof kv_key, "%s", value ? key : "");
    snprintf(kv_val, sizeof kv_val, "%s", value ? value : "");
    return 0;
}

static void env_log(void *ud, int level, const char *msg)
{
    (void)ud;
    if (level == FD_LOG_DEBUG)
        return; /* tracebacks */
    size_t o = strlen(logbuf);
    snprintf(logbuf + o, sizeof logbuf - o, "%d:%s\n", level, msg);
}

static const struct script_env env = {
    .kv_get = kv_get,
    .kv_set = kv_set,
    .log = env_log,
    .caps = FD_CAP_DM | FD_CAP_HIDE,
};

static struct script *load(const char *name, const char *text,
                           const struct script_limits *lim, char *err,
                           size_t errlen)
{
    struct script *s = NULL;
    const char *p = write_file(dir, name, text);
    err[0] = '\0';
    if (script_load(p, libdir, lim, &env, &s, err, errlen) < 0)
        return NULL;
    return s;
}

static struct script_msg msg_of(const char *text)
{
    return (struct script_msg){
        .id = "m1",
        .text = text,
        .platform = "webchat",
        .channel = "shop",
        .is_private = false,
        .user_id = "u1",
        .user_name = "Anna",
        .user_handle = NULL,
        .chat_id = "c1",
        .thread = NULL,
        .case_id = 7,
        .case_state = "bot",
    };
}

/* Runs one message; the actions as "kind:a:b|..." or "ERR:<err>". */
static const char *run(struct script *s, const char *text)
{
    static char out[2048];
    struct script_msg m = msg_of(text);
    struct script_result r = {0};
    char err[512];
    if (script_call(s, &m, &r, err, sizeof err) < 0) {
        snprintf(out, sizeof out, "ERR:%s%s", err,
                 r.n ? " (and actions!)" : "");
        script_result_clear(&r);
        return out;
    }
    out[0] = '\0';
    for (size_t i = 0; i < r.n; i++) {
        size_t o = strlen(out);
        snprintf(out + o, sizeof out - o, "%s%s", i ? "|" : "",
                 script_action_name(r.v[i].kind));
        if (r.v[i].a || r.v[i].b) {
            o = strlen(out);
            snprintf(out + o, sizeof out - o, ":%s", r.v[i].a ? r.v[i].a : "-");
        }
        if (r.v[i].b) {
            o = strlen(out);
            snprintf(out + o, sizeof out - o, ":%s", r.v[i].b);
        }
    }
    script_result_clear(&r);
    return out;
}

static bool has(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

/* The 1-based line of src on which needle first appears. */
static int line_of(const char *src, const char *needle)
{
    const char *p = strstr(src, needle);
    int line = 1;
    for (const char *c = src; p && c < p; c++)
        line += *c == '\n';
    return p ? line : -1;
}

/* "<file>:<line of needle in src>:<rest>" */
static const char *at(const char *file, const char *src, const char *needle,
                      const char *rest)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ % 4];
    snprintf(b, 512, "%s:%d:%s", file, line_of(src, needle), rest);
    return b;
}

/* ---- loading ----------------------------------------------------------- */

static void test_load(void)
{
    char err[512];
    struct script *s = load("syntax.lua", "local x = 1\n\nlocal y = = 2\n",
                            NULL, err, sizeof err);
    CHECK(!s && has(err, "syntax.lua:3:"),
          "load: syntax error names file:line");
    s = load("runtime.lua",
             "local t = nil\nlocal x = t.field\nfunction on_message() end\n",
             NULL, err, sizeof err);
    CHECK(!s && has(err, "runtime.lua:2: attempt to index a nil value"),
          "load: runtime error in the main chunk names file:line");
    s = load("noon.lua", "function on_mesage(msg) end\n", NULL, err,
             sizeof err);
    CHECK(!s && has(err, "noon.lua") && has(err, "on_message is not defined"),
          "load: missing on_message is an error");
    s = load("notfn.lua", "on_message = 42\n", NULL, err, sizeof err);
    CHECK(!s && has(err, "must be a function"),
          "load: on_message must be a function");
    struct script *x = NULL;
    CHECK(script_load("/nonexistent/x.lua", NULL, NULL, &env, &x, err,
                      sizeof err) < 0 &&
              !x && has(err, "/nonexistent/x.lua") && has(err, "cannot open"),
          "load: missing file");
    s = load("bin.lua", "\x1bLua\x54\x00", NULL, err, sizeof err);
    CHECK(!s && has(err, "binary"), "load: a binary chunk file is refused");
    s = load("loop.lua", "while true do end\n", NULL, err, sizeof err);
    CHECK(!s && has(err, "loop.lua:1:") && has(err, "budget"),
          "load: an endless main chunk hits the budget");
    s = load("ok.lua", "#!/usr/bin/env lua\nfunction on_message(msg) end\n",
             NULL, err, sizeof err);
    CHECK(s && strcmp(
                   script_path(s),
                   write_file(
                       dir, "ok.lua",
                       "#!/usr/bin/env lua\nfunction on_message(msg) end\n")) ==
                   0,
          "load: a good script loads; script_path");
    script_free(s);
    script_free(NULL);
}

/* ---- actions ----------------------------------------------------------- */

static const char actions_lua[] =
    "function on_message(msg)\n"
    "  if msg.text == 'all' then\n"
    "    msg:reply('r1')\n"
    "    msg:dm('d1')\n"
    "    msg:to_private{public = 'pub', private = 'priv'}\n"
    "    msg:to_private{private = 'only'}\n"
    "    msg:handoff{queue = 'billing', note = 'n'}\n"
    "    msg:handoff()\n"
    "    msg:handoff('just a note')\n"
    "    msg:hide()\n"
    "    msg:tag('faq')\n"
    "  elseif msg.text == 'fields' then\n"
    "    msg:reply(table.concat({msg.id, msg.text, msg.platform, msg.channel,\n"
    "      tostring(msg.private), msg.user.id, msg.user.name, "
    "tostring(msg.user.handle),\n"
    "      msg.chat.id, tostring(msg.thread), math.type(msg.case.id), "
    "msg.case.id,\n"
    "      msg.case.state, tostring(msg.nothing), tostring(msg.user == "
    "msg.user)}, ','))\n"
    "  elseif msg.text == 'midway' then\n"
    "    msg:reply('lost')\n"
    "    error('boom')\n"
    "  elseif msg.text == 'nonstring' then\n"
    "    msg:reply({})\n"
    "  elseif msg.text == 'nil' then\n"
    "    msg:reply()\n"
    "  elseif msg.text == 'empty' then\n"
    "    msg:reply('')\n"
    "  elseif msg.text == 'dot' then\n"
    "    msg.reply('x')\n"
    "  elseif msg.text == 'many' then\n"
    "    for i = 1, 51 do msg:reply('x' .. i) end\n"
    "  elseif msg.text == 'long' then\n"
    "    msg:reply(string.rep('x', 64 * 1024 + 1))\n"
    "  elseif msg.text == 'max' then\n"
    "    for i = 1, 50 do msg:reply(string.rep('y', 64 * 1024)) end\n"
    "  elseif msg.text == 'readonly' then\n"
    "    msg.text = 'changed'\n"
    "  elseif msg.text == 'badpriv' then\n"
    "    msg:to_private{public = 'p'}\n"
    "  elseif msg.text == 'badhandoff' then\n"
    "    msg:handoff{queue = 42.5, note = {}}\n"
    "  elseif msg.text == 'errtable' then\n"
    "    error({code = 1})\n"
    "  elseif msg.text == 'keep' then\n"
    "    kept = msg\n"
    "  elseif msg.text == 'stale' then\n"
    "    local ok, e = pcall(function() return kept.text end)\n"
    "    msg:reply(tostring(ok) .. ' ' .. tostring(e))\n"
    "    kept:reply('never')\n"
    "  elseif msg.text == 'count' then\n"
    "    counter = (counter or 0) + 1\n"
    "    msg:reply(tostring(counter))\n"
    "  end\n"
    "end\n";

static void test_actions(void)
{
    char err[512];
    struct script *s = load("actions.lua", actions_lua, NULL, err, sizeof err);
    CHECK(s != NULL, "actions: script loads");
    if (!s) {
        printf("# %s\n", err);
        return;
    }
    CHECK_STR(run(s, "all"),
              "reply:r1|dm:d1|to_private:pub:priv|to_private:-:only|handoff:n:"
              "billing|"
              "handoff|handoff:just a note|hide|tag:faq",
              "actions: collected in order with their texts");
    CHECK_STR(run(s, "fields"),
              "reply:m1,fields,webchat,shop,false,u1,Anna,nil,c1,nil,integer,7,"
              "bot,nil,true",
              "actions: msg fields");
    const char *r = run(s, "midway");
    CHECK(
        has(r, at("ERR:actions.lua", actions_lua, "error('boom')", " boom")) &&
            !has(r, "and actions"),
        "actions: an error midway: no actions, error with file:line");
    r = run(s, "nonstring");
    CHECK(has(r, at("ERR:actions.lua", actions_lua, "msg:reply({})",
                    " msg:reply: text must be a string, got table")),
          "actions: reply with a table is a clear error at the script's line");
    CHECK(has(run(s, "nil"), "text must be a string, got no value"),
          "actions: reply() without text");
    CHECK(has(run(s, "empty"), "msg:reply: text is empty"),
          "actions: empty reply");
    CHECK(has(run(s, "dot"), "call it with a colon"),
          "actions: msg.reply instead of msg:reply");
    CHECK(has(run(s, "many"), "too many actions in one call (at most 50)"),
          "actions: at most 50 per call");
    CHECK(has(run(s, "long"), "too long (65537 bytes, at most 65536)"),
          "actions: text capped at 64 KiB");
    CHECK(!has(run(s, "max"), "ERR"), "actions: 50 texts of 64 KiB are fine");
    CHECK(has(run(s, "readonly"), "msg is read-only"),
          "actions: msg is read-only");
    CHECK(has(run(s, "badpriv"),
              "msg:to_private: private must be a string, got nil"),
          "actions: to_private needs private");
    CHECK(has(run(s, "badhandoff"),
              "msg:handoff: note must be a string, got table"),
          "actions: handoff validates its fields");
    CHECK(has(run(s, "errtable"), at("actions.lua", actions_lua, "error({code",
                                     " (error object is a table value)")),
          "actions: a non-string error still gets file:line");
    CHECK_STR(run(s, "keep"), "", "actions: no action is fine");
    r = run(s, "stale");
    CHECK(has(r, "ERR:") && has(r, "only valid during the on_message call"),
          "actions: a msg kept past its call cannot act");
    CHECK_STR(run(s, "count"), "reply:1", "globals: first call");
    CHECK_STR(run(s, "count"), "reply:2",
              "globals persist between calls of one loaded version");
    script_free(s);
    s = load("actions.lua", actions_lua, NULL, err, sizeof err);
    CHECK_STR(run(s, "count"), "reply:1", "globals: a reload starts fresh");
    script_free(s);
}

/* ---- budget and memory ------------------------------------------------- */

static const char limits_lua[] =
    "function on_message(msg)\n"
    "  if msg.text == 'spin' then\n"
    "    while true do end\n"
    "  elseif msg.text == 'swallow' then\n"
    "    while true do pcall(function() while true do end end) end\n"
    "  elseif msg.text == 'xswallow' then\n"
    "    for i = 1, 1e9 do xpcall(function() while true do end end, function() "
    "return 1 end) end\n"
    "  elseif msg.text == 'rep' then\n"
    "    local s = string.rep('x', 2^31)\n" /* Lua: "too large" */
    "    msg:reply(#s)\n"
    "  elseif msg.text == 'rep30' then\n"
    "    local s = string.rep('x', 2^30)\n"
    "    msg:reply(#s)\n"
    "  elseif msg.text == 'grow' then\n"
    "    local t = {}\n"
    "    for i = 1, 1e9 do t[i] = {i} end\n"
    "  elseif msg.text == 'strings' then\n"
    "    local t = {}\n"
    "    for i = 1, 1e9 do t[#t + 1] = string.rep('y', 4096) .. i end\n"
    "  elseif msg.text == 'gcstop' then\n"
    "    collectgarbage('stop')\n"
    "  elseif msg.text == 'faqbomb' then\n"
    "    local p = {}\n" /* 640k trie nodes from 5 MB of phrases */
    "    for i = 1, 20000 do p[i] = string.rep('w' .. i .. ' ', 32) end\n"
    "    local f = fd.faq{ {p, 'x'} }\n"
    "  else\n"
    "    msg:reply('fine ' .. math.floor(collectgarbage('count')))\n"
    "  end\n"
    "end\n";

static void test_limits(void)
{
    char err[512];
    struct script_limits lim = {.instructions = 5000000, .memory = 16 << 20};
    struct script *s = load("limits.lua", limits_lua, &lim, err, sizeof err);
    CHECK(s != NULL, "limits: script loads");
    if (!s)
        return;
    const char *r = run(s, "spin");
    CHECK(has(r, at("ERR:limits.lua", limits_lua, "while true do end\n",
                    " instruction budget exceeded")),
          "budget: while true do end is stopped with file:line");
    CHECK(has(run(s, "ok"), "reply:fine"), "budget: the next call works");
    CHECK(has(run(s, "swallow"), "instruction budget exceeded"),
          "budget: pcall in the script cannot swallow it");
    CHECK(has(run(s, "xswallow"), "ERR:"), "budget: nor xpcall with a handler");
    CHECK(has(run(s, "ok"), "reply:fine"),
          "budget: and the next call still works");
    double t0 = (double)clock();
    CHECK(has(run(s, "rep"), "ERR:"), "memory: string.rep of 2 GiB fails");
    CHECK(has(run(s, "ok"), "reply:fine"), "memory: the next call works");
    r = run(s, "rep30");
    CHECK(has(r,
              "ERR:limits.lua: not enough memory (script memory limit 16 MiB)"),
          "memory: string.rep of 1 GiB hits the cap");
    CHECK(has(run(s, "ok"), "reply:fine"), "memory: the next call works");
    CHECK(has(run(s, "grow"), "not enough memory"),
          "memory: a growing table hits the cap");
    CHECK(has(run(s, "ok"), "reply:fine"),
          "memory: the next call works after the table");
    CHECK(has(run(s, "strings"), "not enough memory"),
          "memory: growing strings hit the cap");
    r = run(s, "ok");
    CHECK(has(r, "reply:fine"),
          "memory: garbage is collected after a failed call");
    CHECK(has(run(s, "gcstop"), "not allowed"),
          "sandbox: collectgarbage('stop') refused");
    CHECK(has(run(s, "faqbomb"), "ERR:"),
          "memory: a huge fd.faq counts against the cap");
    CHECK(has(run(s, "ok"), "reply:fine"),
          "memory: the next call works after the FAQ");
    printf("# limits: took %.2f s CPU\n",
           ((double)clock() - t0) / CLOCKS_PER_SEC);
    script_free(s);
}

/* ---- the sandbox ------------------------------------------------------- */

static const char eval_lua[] = "function on_message(msg)\n"
                               "  local f = assert(load(msg.text, '=probe'))\n"
                               "  local r = table.pack(f())\n"
                               "  for i = 1, r.n do r[i] = tostring(r[i]) end\n"
                               "  msg:reply(table.concat(r, ',', 1, r.n))\n"
                               "end\n";

static void test_sandbox(void)
{
    char err[512];
    write_file(libdir, "mod.lua",
               "loads = (loads or 0) + 1\nreturn {x = 42, loads = loads}\n");
    char sub[128];
    snprintf(sub, sizeof sub, "mkdir -p %s/sub", libdir);
    if (system(sub) != 0)
        printf("# mkdir failed\n");
    write_file(libdir, "sub/deep.lua", "return 'deep'\n");
    write_file(libdir, "broken.lua", "local x = \n");
    write_file(libdir, "boom.lua", "error('module failed')\n");
    write_file(libdir, "loopa.lua", "return require('loopb')\n");
    write_file(libdir, "loopb.lua", "return require('loopa')\n");
    write_file(dir, "outside.lua", "return 'escaped'\n");
    struct script *s = load("eval.lua", eval_lua, NULL, err, sizeof err);
    CHECK(s != NULL, "sandbox: eval script loads");
    if (!s)
        return;
    static const struct {
        const char *code, *want, *name;
    } probes[] = {
        {"return io", "reply:nil", "sandbox: no io"},
        {"return os.execute, os.getenv, os.exit, os.remove",
         "reply:nil,nil,nil,nil", "sandbox: no os.execute/getenv/exit/remove"},
        {"return type(os.time()), type(os.clock()), type(os.date('%Y'))",
         "reply:number,number,string", "sandbox: os.time/clock/date remain"},
        {"return package, debug, coroutine, dofile, loadfile",
         "reply:nil,nil,nil,nil,nil",
         "sandbox: no package, debug, coroutine, dofile, loadfile"},
        {"return string.dump, ('').dump", "reply:nil,nil",
         "sandbox: no string.dump"},
        {"return load(string.char(27) .. 'Lua')",
         "reply:nil,attempt to load a binary chunk (mode is 't')",
         "sandbox: load refuses binary chunks"},
        {"return load(string.char(27) .. 'Lua', 'x', 'b')",
         "reply:nil,attempt to load a binary chunk (mode is 't')",
         "sandbox: load with mode 'b' is still text-only"},
        {"return load('return 1 + 1')()", "reply:2",
         "sandbox: load of text works"},
        {"local env = {} ; load('y = 5', 'c', 't', env)() ; return env.y, y",
         "reply:5,nil", "sandbox: load with an env table"},
        {"return pcall(require, '../outside')", "reply:false,",
         "sandbox: require('../x') refused"},
        {"return select(2, pcall(require, '../outside')):match('bad module "
         "name') ~= nil",
         "reply:true", "sandbox: require('../x') says why"},
        {"return pcall(require, '/etc/passwd')", "reply:false,",
         "sandbox: require of a path refused"},
        {"return pcall(require, 'a..b')", "reply:false,",
         "sandbox: require('a..b') refused"},
        {"return require('mod').x, require('mod').loads, require('mod') == "
         "require('mod')",
         "reply:42,1,true",
         "require: loads lib_dir/mod.lua once and caches it"},
        {"return require('sub.deep')", "reply:deep",
         "require: dots are folders"},
        {"return select(2, pcall(require, 'nothere'))",
         "reply:require: module 'nothere' not found (no lib/nothere.lua)",
         "require: missing module"},
        {"return select(2, pcall(require, 'broken'))",
         "reply:lib/broken.lua:", "require: syntax error names lib/file:line"},
        {"return select(2, pcall(require, 'boom'))",
         "reply:lib/boom.lua:1: module failed",
         "require: runtime error names lib/file:line"},
        {"return select(2, pcall(require, 'loopa')):match('loop') ~= nil",
         "reply:true", "require: a loop is an error"},
        {"return getmetatable('').__index == string", "reply:true",
         "sandbox: the string metatable is intact"},
        {"x = 1; return x", "reply:1", "sandbox: a script may set globals"},
        {"return pcall(setmetatable, {}, {}) ",
         "reply:true,table:", "sandbox: setmetatable works"},
        {"print('hello', 1) fd.log('warn', 'careful', 2) fd.log('plain') "
         "return 1",
         "reply:1", "log: print and fd.log reach the env"},
    };
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        const char *r = run(s, probes[i].code);
        bool ok = strncmp(r, probes[i].want, strlen(probes[i].want)) == 0;
        if (!ok)
            printf("# got: %s\n", r);
        CHECK(ok, probes[i].name);
    }
    CHECK(has(logbuf, "1:hello\t1\n") && has(logbuf, "2:careful 2\n") &&
              has(logbuf, "1:plain\n"),
          "log: levels and text");
    script_free(s);
}

/* ---- fd from Lua ------------------------------------------------------- */

static const char fd_lua[] =
    "local faq = fd.faq{\n"
    "  { {'öffnungszeit*', 'geöffnet', 'opening hours'}, 'hours' },\n"
    "  { {'lieferzeit', 'wie lange dauert die lieferung'}, 'delivery' },\n"
    "  { phrases = 'kontakt', answer = {text = 'table answers work'} },\n"
    "}\n"
    "function on_message(msg)\n"
    "  local t = msg.text\n"
    "  local cmd, arg = t:match('^(%S+) ?(.*)$')\n"
    "  if cmd == 'faq' then\n"
    "    local a, i = faq:match(arg)\n"
    "    msg:reply(tostring(type(a) == 'table' and a.text or a) .. ' ' .. "
    "tostring(i) .. ' ' .. #faq)\n"
    "  elseif cmd == 'sens' then\n"
    "    local s = fd.sensitive(arg)\n"
    "    if not s then return msg:reply('none') end\n"
    "    local out = {table.concat(s.kinds, '+')}\n"
    "    for _, k in ipairs(s.kinds) do out[#out + 1] = k .. '=' .. "
    "table.concat(s[k], '/') end\n"
    "    msg:reply(table.concat(out, ' '))\n"
    "  elseif cmd == 'norm' then msg:reply(fd.normalize(arg))\n"
    "  elseif cmd == 'words' then msg:reply(table.concat(fd.words(arg), '|'))\n"
    "  elseif cmd == 'has' then\n"
    "    local ok, which = fd.has(arg, {'passwort vergessen', 'lieferzeit*'})\n"
    "    msg:reply(tostring(ok) .. ' ' .. tostring(which) .. ' ' .. "
    "tostring(fd.has(arg, 'kontakt')))\n"
    "  elseif cmd == 'tone' then msg:reply(string.format('%.2f', "
    "fd.tone(arg)))\n"
    "  elseif cmd == 'iban' then msg:reply(tostring(fd.is_iban(arg)) .. ' ' .. "
    "tostring(fd.find_iban(arg)))\n"
    "  elseif cmd == 'card' then msg:reply(tostring(fd.is_card(arg)))\n"
    "  elseif cmd == 'order' then msg:reply(tostring(fd.order_number(arg)))\n"
    "  elseif cmd == 'redact' then msg:reply(fd.redact(arg))\n"
    "  elseif cmd == 'can' then msg:reply(tostring(fd.can(arg)))\n"
    "  elseif cmd == 'set' then\n"
    "    local k, v = arg:match('^(%S+) ?(.*)$')\n"
    "    if v == '' then v = nil end\n"
    "    msg:reply(tostring(fd.store.set(k, v)))\n"
    "  elseif cmd == 'get' then msg:reply(tostring(fd.store.get(arg)))\n"
    "  elseif cmd == 'badfaq' then fd.faq{ {{}, 'x'} }\n"
    "  elseif cmd == 'badfaq2' then fd.faq{ {{'?!'}, 'x'} }\n"
    "  elseif cmd == 'badfaq3' then fd.faq{ 'x' }\n"
    "  elseif cmd == 'badhas' then fd.has(arg, {1})\n"
    "  end\n"
    "end\n";

static void test_fd(void)
{
    char err[512];
    struct script *s = load("fd.lua", fd_lua, NULL, err, sizeof err);
    CHECK(s != NULL, "fd: script loads");
    if (!s) {
        printf("# %s\n", err);
        return;
    }
    CHECK_STR(run(s, "faq Wann habt ihr GEÖFFNET?"), "reply:hours 1 3",
              "fd.faq: match, index, #faq");
    CHECK_STR(run(s, "faq Eure Öffnungszeiten bitte"), "reply:hours 1 3",
              "fd.faq: prefix");
    CHECK_STR(run(s, "faq wie lange dauert die Lieferung, Lieferzeit?"),
              "reply:delivery 2 3", "fd.faq: longest phrase");
    CHECK_STR(run(s, "faq kontakt"), "reply:table answers work 3 3",
              "fd.faq: named fields, any answer");
    CHECK_STR(run(s, "faq nichts davon"), "reply:nil nil 3",
              "fd.faq: no match is nil");
    CHECK_STR(run(s, "sens Geld zurück: DE89 3704 0044 0532 0130 00, Karte "
                     "4111-1111-1111-1111, "
                     "mail a.b@x.de, tel +49 171 1234567"),
              "reply:iban+card+email+phone iban=DE89370400440532013000 "
              "card=4111111111111111 "
              "email=a.b@x.de phone=+491711234567",
              "fd.sensitive: all kinds");
    CHECK_STR(run(s, "sens Wann habt ihr offen?"), "reply:none",
              "fd.sensitive: nil without data");
    CHECK_STR(run(s, "norm  Grüße aus Köln, Straße 5!"),
              "reply:gruesse aus koeln strasse 5", "fd.normalize");
    CHECK_STR(run(s, "words Öl-Wechsel?"), "reply:oel|wechsel", "fd.words");
    CHECK_STR(run(s, "has Wie ist die Lieferzeiten-Info und Kontakt"),
              "reply:true lieferzeit* true",
              "fd.has: list with prefix, single phrase");
    CHECK_STR(run(s, "has nichts"), "reply:false nil false",
              "fd.has: no match");
    CHECK(has(run(s, "tone Frechheit!!! Betrug!"), "reply:-1.00"),
          "fd.tone: angry");
    CHECK_STR(run(s, "iban DE89 3704 0044 0532 0130 00"),
              "reply:true DE89370400440532013000", "fd.is_iban, fd.find_iban");
    CHECK_STR(run(s, "card 4111 1111 1111 1111"), "reply:true", "fd.is_card");
    CHECK_STR(run(s, "order Bestellnummer 556677"), "reply:556677",
              "fd.order_number");
    CHECK_STR(run(s, "redact IBAN DE89370400440532013000 an a@b.de"),
              "reply:IBAN [IBAN] an [e-mail]", "fd.redact");
    CHECK_STR(run(s, "can hide"), "reply:true", "fd.can: hide (env caps)");
    CHECK_STR(run(s, "can threads"), "reply:false", "fd.can: threads not set");
    CHECK(has(run(s, "can fly"), "unknown capability 'fly'"),
          "fd.can: unknown name is an error");
    CHECK_STR(run(s, "set greeting hallo welt"), "reply:true", "fd.store.set");
    CHECK_STR(run(s, "get greeting"), "reply:hallo welt", "fd.store.get");
    CHECK_STR(run(s, "set greeting"), "reply:true", "fd.store.set nil deletes");
    CHECK_STR(run(s, "get greeting"), "reply:nil", "fd.store.get after delete");
    CHECK(has(run(s, "badfaq"), "entry 1 has no phrases"),
          "fd.faq: empty phrase list");
    CHECK(has(run(s, "badfaq2"), "entry 1: phrase 1"),
          "fd.faq: phrase without words");
    CHECK(has(run(s, "badfaq3"), "entry 1 must be a table"),
          "fd.faq: bad entry");
    CHECK(has(run(s, "badhas x"), "fd.has: phrase 1 must be a string"),
          "fd.has: bad phrase");
    script_free(s);
}

/* ---- the hot path ------------------------------------------------------ */

static void test_speed(void)
{
    /* a 500-entry FAQ script */
    size_t cap = 64 * 1024, o = 0;
    char *src = malloc(cap);
    o += (size_t)snprintf(src + o, cap - o, "local e = {\n");
    for (int i = 0; i < 500; i++)
        o += (size_t)snprintf(
            src + o, cap - o,
            "{{'thema%d', 'frage nummer %d', 'stich%d*'}, 'answer %d'},\n", i,
            i, i, i);
    snprintf(src + o, cap - o,
             "}\nlocal faq = fd.faq(e)\n"
             "function on_message(msg)\n"
             "  local a = faq:match(msg.text)\n"
             "  if a then msg:reply(a) end\n"
             "end\n");
    char err[512];
    struct script *s = load("speed.lua", src, NULL, err, sizeof err);
    free(src);
    CHECK(s != NULL, "speed: 500-entry FAQ script loads");
    if (!s)
        return;
    CHECK_STR(run(s, "Ich habe eine Frage Nummer 321 zum Thema"),
              "reply:answer 321", "speed: right answer");
    struct script_msg m =
        msg_of("Hallo, ich habe eine Frage nummer 499 zu meiner Lieferung!");
    struct timespec a, b;
    int n = 20000;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        struct script_result r = {0};
        script_call(s, &m, &r, err, sizeof err);
        script_result_clear(&r);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e6 +
                 (double)(b.tv_nsec - a.tv_nsec) / 1e3) /
                n;
    printf("# speed: %.2f us per on_message with a 500-entry FAQ (one reply)\n",
           us);
    script_free(s);
}

/* ---- the test runner --------------------------------------------------- */

/* A fake router: one case per conversation, the state machine of
 * router.c (to_private -> private, handoff -> human, human -> held). */
struct fake {
    struct script *s;
    long case_id;
    const char *state;
    int resets;
};

static void add_action(cJSON *arr, const char *action, const char *text,
                       struct fake *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "action", action);
    if (text)
        cJSON_AddStringToObject(o, "text", text);
    cJSON_AddNumberToObject(o, "case", (double)f->case_id);
    cJSON_AddItemToArray(arr, o);
}

static cJSON *fake_send(void *ud, const char *text, bool is_private,
                        const char *user, const char *platform, char *err,
                        size_t errlen)
{
    struct fake *f = ud;
    if (!f->s) {
        snprintf(err, errlen, "no script");
        return NULL;
    }
    cJSON *arr = cJSON_CreateArray();
    if (strcmp(f->state, "human") == 0) {
        add_action(arr, "held", NULL, f);
        return arr;
    }
    struct script_msg m = msg_of(text);
    m.is_private = is_private;
    if (user)
        m.user_id = m.user_name = user;
    if (platform)
        m.platform = platform;
    m.case_id = f->case_id;
    m.case_state = f->state;
    struct script_result r = {0};
    char e[512];
    if (script_call(f->s, &m, &r, e, sizeof e) < 0) {
        add_action(arr, "handoff", e, f);
        f->state = "human";
        return arr;
    }
    for (size_t i = 0; i < r.n; i++) {
        const struct script_action *a = &r.v[i];
        switch (a->kind) {
        case SCRIPT_REPLY:
            add_action(arr, "reply", a->a, f);
            break;
        case SCRIPT_DM:
            add_action(arr, "dm", a->a, f);
            break;
        case SCRIPT_TO_PRIVATE:
            if (a->a)
                add_action(arr, "reply", a->a, f);
            add_action(arr, "dm", a->b, f);
            if (strcmp(f->state, "bot") == 0)
                f->state = "private";
            break;
        case SCRIPT_HANDOFF:
            add_action(arr, "handoff", a->a, f);
            cJSON_AddStringToObject(
                cJSON_GetArrayItem(arr, cJSON_GetArraySize(arr) - 1), "queue",
                a->b ? a->b : "support");
            f->state = "human";
            break;
        case SCRIPT_HIDE:
            add_action(arr, "hide", NULL, f);
            break;
        case SCRIPT_TAG:
            add_action(arr, "tag", a->a, f);
            break;
        }
    }
    script_result_clear(&r);
    return arr;
}

static void fake_reset(void *ud)
{
    struct fake *f = ud;
    f->case_id++;
    f->state = "bot";
    f->resets++;
}

static const char echo_lua[] =
    "function on_message(msg)\n"
    "  if msg.text == 'crash' then error('crashed') end\n"
    "  msg:reply('echo ' .. msg.text .. (msg.private and ' (private)' or '') "
    ".. ' from ' .. msg.user.id)\n"
    "end\n";

static const char echo_test_lua[] =
    "test('passes', function()\n"
    "  local a = send('hi')\n"
    "  eq(#a, 1)\n"
    "  eq(a[1], {action = 'reply', text = 'echo hi from u1', case = "
    "a[1].case})\n"
    "  contains(a, 'echo hi')\n"
    "  contains(a[1].text, 'hi')\n"
    "  not_contains(a, 'bye')\n"
    "  assert(find(a, 'reply', 'echo'))\n"
    "  eq(find(a, 'dm'), nil)\n"
    "  eq(send('x', {private = true, user = 'bob'})[1].text, 'echo x (private) "
    "from bob')\n"
    "  print('a comment')\n"
    "end)\n"
    "test('fails on eq', function()\n"
    "  local a = send('hi')\n"
    "  eq(a[1].text, 'something else', 'reply text')\n"
    "end)\n"
    "test('fails on error', function()\n"
    "  local t = nil\n"
    "  return t.x\n"
    "end)\n"
    "test('fails on assert', function()\n"
    "  assert(false, 'custom')\n"
    "end)\n"
    "test('script error becomes a handoff', function()\n"
    "  local h = find(send('crash'), 'handoff')\n"
    "  contains(h.text, 'crashed')\n"
    "end)\n"
    "test('spins', function() while true do end end)\n"
    "test('contains fails', function() contains(send('hi'), 'nope') end)\n"
    "test('bad option', function() send('x', {privat = true}) end)\n"
    "test('still runs after a spin', function() eq(1, 1) end)\n";

static void test_runner(void)
{
    char err[512];
    struct fake f = {.case_id = 100, .state = "bot"};
    f.s = load("echo.lua", echo_lua, NULL, err, sizeof err);
    CHECK(f.s != NULL, "runner: script under test loads");
    const char *tp = write_file(dir, "echo_test.lua", echo_test_lua);
    struct script_test_hooks hooks = {
        .ud = &f, .send = fake_send, .reset = fake_reset};
    char *out = NULL;
    size_t outlen = 0;
    FILE *mem = open_memstream(&out, &outlen);
    int passed = -1, failed = -1;
    int rc = script_run_tests(tp, libdir, &hooks, &passed, &failed, mem, err,
                              sizeof err);
    fclose(mem);
    CHECK(rc == 0 && passed == 3 && failed == 6, "runner: 3 passed, 6 failed");
    CHECK(f.resets == 9, "runner: reset before each test");
    CHECK(has(out, "ok - echo_test.lua: passes\n"), "runner: ok line");
    CHECK(has(out, "# a comment\n"), "runner: print becomes a TAP comment");
    char want[512];
    snprintf(
        want, sizeof want, "not ok - echo_test.lua: fails on eq: %s",
        at("echo_test.lua", echo_test_lua, "'something else'",
           " reply text: got \"echo hi from u1\", want \"something else\"\n"));
    CHECK(has(out, want), "runner: eq failure names file:line and both values");
    snprintf(
        want, sizeof want, "not ok - echo_test.lua: fails on error: %s",
        at("echo_test.lua", echo_test_lua, "return t.x", " attempt to index"));
    CHECK(has(out, want), "runner: an error names file:line");
    snprintf(want, sizeof want, "not ok - echo_test.lua: fails on assert: %s",
             at("echo_test.lua", echo_test_lua, "assert(false", " custom\n"));
    CHECK(has(out, want), "runner: assert with a message names file:line");
    CHECK(has(out, "ok - echo_test.lua: script error becomes a handoff\n"),
          "runner: send() returns the handoff of a failing script");
    snprintf(want, sizeof want, "not ok - echo_test.lua: spins: %s",
             at("echo_test.lua", echo_test_lua, "while true",
                " instruction budget exceeded"));
    CHECK(has(out, want), "runner: the budget applies to tests");
    CHECK(has(out, "does not contain \"nope\""), "runner: contains failure");
    CHECK(has(out, "send: unknown option 'privat'"),
          "runner: send() checks its options");
    CHECK(has(out, "ok - echo_test.lua: still runs after a spin\n"),
          "runner: goes on after a spin");
    if (check_failed)
        printf("# runner output:\n%s", out);
    free(out);

    const char *bad = write_file(dir, "bad_test.lua",
                                 "test('x', function() end)\nlocal = 1\n");
    rc = script_run_tests(bad, libdir, &hooks, &passed, &failed, NULL, err,
                          sizeof err);
    CHECK(rc < 0 && has(err, "bad_test.lua:2:") && passed == 0 && failed == 0,
          "runner: a test file that does not load is an error with file:line");
    script_free(f.s);

    /* scripts/example_test.lua against scripts/example.lua */
    const char *sd = getenv("FRONTDESK_SCRIPTS");
    if (!sd)
        sd = "scripts";
    char ex[512], ext[512], exlib[512];
    snprintf(ex, sizeof ex, "%s/example.lua", sd);
    snprintf(ext, sizeof ext, "%s/example_test.lua", sd);
    snprintf(exlib, sizeof exlib, "%s/lib", sd);
    struct script_env all = env;
    all.caps = 0xffffffffu;
    struct fake g = {.case_id = 1, .state = "bot"};
    CHECK(script_load(ex, exlib, NULL, &all, &g.s, err, sizeof err) == 0,
          "example: scripts/example.lua loads");
    if (!g.s) {
        printf("# %s\n", err);
        return;
    }
    hooks.ud = &g;
    rc = script_run_tests(ext, exlib, &hooks, &passed, &failed, stdout, err,
                          sizeof err);
    CHECK(rc == 0 && passed > 10 && failed == 0,
          "example: every test of example_test.lua passes");
    if (rc < 0)
        printf("# %s\n", err);

    /* and the hide branch, which needs the platform's capability */
    fake_reset(&g);
    cJSON *a = fake_send(&g, "Meine IBAN ist DE89 3704 0044 0532 0130 00",
                         false, NULL, NULL, err, sizeof err);
    char *js = cJSON_PrintUnformatted(a);
    CHECK(has(js, "\"action\":\"hide\"") && has(js, "\"action\":\"dm\"") &&
              !has(js, "3704"),
          "example: public bank data is hidden where the platform can");
    free(js);
    cJSON_Delete(a);
    script_free(g.s);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/fd_script_test.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(libdir, sizeof libdir, "%s/lib", dir);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", libdir);
    if (system(cmd) != 0)
        return 1;
    test_load();
    test_actions();
    test_limits();
    test_sandbox();
    test_fd();
    test_speed();
    test_runner();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return CHECK_DONE();
}
