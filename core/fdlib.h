/*
 * fdlib.h - the `fd` table scripts see: normalisation and phrase matching,
 * sensitive data, tone, order numbers, logging, capabilities, the
 * per-channel store and fd.faq.  The text work is in text.c and faq.c;
 * this file is only the Lua binding.
 */
#ifndef FRONTDESK_FDLIB_H
#define FRONTDESK_FDLIB_H

#include <lua.h>

struct script_env;

/* Pushes a new `fd` table onto L's stack.  env is borrowed: it must live as
 * long as L (script.c keeps it inside struct script).  May raise a Lua
 * error (memory), so call it in protected mode. */
void fdlib_open(lua_State *L, const struct script_env *env);

#endif
