/*
 * scripts.h - channel scripts in the daemon: loading with the channel's
 * services and limits, hot reload on file changes (inotify on the scripts
 * folder and lib/) gated by the script's own tests, and the offline sandbox
 * used by `frontdesk try`, `frontdesk test` and that gate.
 */
#ifndef FRONTDESK_SCRIPTS_H
#define FRONTDESK_SCRIPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "script.h"

struct config;
struct cJSON;
struct fd_channel;

/* Loads the channel's script (relative to [core] scripts). */
int scripts_attach(struct fd_channel *ch, const struct config *cfg,
                   const char *script, char *err, size_t errlen);
void scripts_detach(struct fd_channel *ch);

/* Reloads one channel's script: the new version replaces the old only if
 * it loads and its *_test.lua (if any) passes.  0 swapped, <0 kept old. */
int scripts_reload(struct fd_channel *ch);
int scripts_reload_all(void);
int scripts_watch_start(const struct config *cfg);
void scripts_watch_stop(void);

void scripts_set_limits(long budget, long memory_mb);
const struct script_limits *scripts_limits(void);

/* The offline sandbox: an in-memory store and one channel. */
struct sandbox;
struct sandbox *sandbox_new(const char *platform, unsigned caps,
                            const char *script_path, const char *lib_dir,
                            struct script *use, char *err, size_t errlen);
void sandbox_free(struct sandbox *sb);
/* Runs one message; returns the actions as a JSON array (caller frees). */
struct cJSON *sandbox_send(struct sandbox *sb, const char *text,
                           bool is_private, const char *user,
                           const char *platform, char *err, size_t errlen);
void sandbox_reset(struct sandbox *sb);

/* Runs test_path against script_path (or `use`, a loaded version of it). */
int sandbox_run_tests(const char *test_path, const char *script_path,
                      const char *lib_dir, struct script *use, int *passed,
                      int *failed, FILE *out, char *err, size_t errlen);

/* "dir/shop_test.lua" → "dir/shop.lua" (malloc'd), NULL if not a test. */
char *scripts_tested_by(const char *test_path);
/* "dir/shop.lua" → "dir/shop_test.lua" if that file exists, else NULL. */
char *scripts_test_of(const char *script_path);
/* The lib/ folder beside a script (malloc'd). */
char *scripts_lib_dir(const char *script_path);

#endif
