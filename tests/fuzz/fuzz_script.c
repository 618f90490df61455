/* fuzz_script.c - libFuzzer target: the Lua/C boundary.  The input becomes
 * the message (text, user name, handle, chat, thread separated by NUL bytes)
 * handed to a script that passes every field through the fd helpers and
 * back into every action, so message tables and action arguments are
 * exercised with arbitrary bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "script.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *script_src =
    "local faq = fd.faq{ {{'öffnungszeiten', 'opening hours'}, 'A'},\n"
    "  {{'lieferzeit*', 'delivery'}, 'B'} }\n"
    "function on_message(msg)\n"
    "  local t = msg.text\n"
    "  local n = fd.normalize(t)\n"
    "  local s = fd.sensitive(t)\n"
    "  local a = faq:match(t)\n"
    "  local tone = fd.tone(t)\n"
    "  fd.has(t, {msg.user.name, n})\n"
    "  if s then msg:to_private{public = msg.user.name, private = t} msg:hide() end\n"
    "  if a then msg:reply(a .. (msg.thread or '')) end\n"
    "  if tone < 0 then msg:handoff{queue = msg.chat.id, note = t} end\n"
    "  msg:tag(msg.user.handle or n)\n"
    "  msg:dm(tostring(msg.case.id) .. msg.case.state)\n"
    "  fd.store.set(n:sub(1, 8), t)\n"
    "  return fd.store.get(n:sub(1, 8))\n"
    "end\n";

static struct script *sc;

static char *kv_get(void *ud, const char *key)
{
    (void)ud, (void)key;
    return NULL;
}

static int kv_set(void *ud, const char *key, const char *value)
{
    (void)ud, (void)key, (void)value;
    return 0;
}

static void log_fn(void *ud, int level, const char *msg)
{
    (void)ud, (void)level, (void)msg;
}

static void setup(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/fd-fuzz-%d.lua", (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs(script_src, f);
    fclose(f);
    struct script_limits lim = {.instructions = 200000, .memory = 16u << 20};
    struct script_env env = {.kv_get = kv_get, .kv_set = kv_set, .log = log_fn,
                             .caps = 0xff};
    char err[512];
    if (script_load(path, NULL, &lim, &env, &sc, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!sc)
        setup();
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *field[5] = {buf, "", "", "", ""};
    size_t k = 1;
    for (size_t i = 0; i < size && k < 5; i++)
        if (buf[i] == '\0')
            field[k++] = buf + i + 1;
    struct script_msg m = {
        .id = "1", .text = field[0], .platform = "fuzz", .channel = "fuzz",
        .is_private = size & 1, .user_id = "u", .user_name = field[1],
        .user_handle = *field[2] ? field[2] : NULL, .chat_id = field[3],
        .thread = *field[4] ? field[4] : NULL, .case_id = 7, .case_state = "bot",
    };
    struct script_result res = {0};
    char err[512];
    script_call(sc, &m, &res, err, sizeof err);
    script_result_clear(&res);
    free(buf);
    return 0;
}
