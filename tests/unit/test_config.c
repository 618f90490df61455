/* test_config.c - config.c: defaults, ${VAR}, and every error names file,
 * section and key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

static char path[64];

static struct config *load(const char *text, struct errlist *e)
{
    snprintf(path, sizeof path, "/tmp/fdcfg-%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    memset(e, 0, sizeof *e);
    return config_load(path, e);
}

static bool has_error(const struct errlist *e, const char *needle)
{
    for (size_t i = 0; i < e->n; i++)
        if (strstr(e->v[i], needle))
            return true;
    return false;
}

int main(void)
{
    struct errlist e;
    struct config *c = load("[core]\n[channel:a]\nplugin = webchat\nscript = x.lua\n", &e);
    CHECK(c && e.n == 0, "a minimal config loads without errors");
    CHECK(c && c->listen_port == 8080 && !strcmp(c->listen_host, "127.0.0.1"),
          "listen defaults to 127.0.0.1:8080");
    CHECK_STR(c ? c->public_url : NULL, "http://127.0.0.1:8080",
              "public_url defaults to the listen address");
    CHECK(c && c->max_body == 1048576 && c->drain_seconds == 10,
          "numeric defaults (max_body 1 MiB, drain 10 s)");
    CHECK(c && c->case_retention_days == 180, "cases are kept 180 days by default");
    CHECK(c && c->nchannels == 1 && !strcmp(c->channels[0].plugin, "webchat"),
          "channel section parsed");
    CHECK(c && c->state[0] == '/', "relative paths resolve against the config's folder");
    config_free(c);
    errlist_free(&e);

    c = load("[core]\nlisten = 127.0.0.1:9\nbogus = 1\n", &e);
    CHECK(has_error(&e, ":3: [core] bogus: unknown key"),
          "unknown [core] key: file, line, section and key named");
    CHECK(has_error(&e, path), "errors name the file");
    config_free(c);
    errlist_free(&e);

    c = load("[core]\nlisten = nowhere\nlog_level = loud\ndrain_seconds = -5\n", &e);
    CHECK(has_error(&e, "[core] listen: want address:port"), "bad listen value");
    CHECK(has_error(&e, "[core] log_level: want debug, info, warn or error"),
          "bad log_level value");
    CHECK(has_error(&e, "[core] drain_seconds: want a whole number"),
          "out-of-range number");
    config_free(c);
    errlist_free(&e);

    c = load("[core]\ncase_retention_days = 0\n", &e);
    CHECK(c && e.n == 0 && c->case_retention_days == 0,
          "case_retention_days = 0 keeps cases forever");
    config_free(c);
    errlist_free(&e);
    c = load("[core]\ncase_retention_days = -1\n", &e);
    CHECK(has_error(&e, "[core] case_retention_days: want a whole number"),
          "a negative retention is an error");
    config_free(c);
    errlist_free(&e);

    c = load("[channel:x]\nscript = a.lua\n[channel:y]\nplugin = telegram\n", &e);
    CHECK(has_error(&e, "[channel:x] plugin: missing required key"),
          "missing plugin key named");
    CHECK(has_error(&e, "[channel:y] script: missing required key"),
          "missing script key named");
    config_free(c);
    errlist_free(&e);

    c = load("[strange]\na = b\n[channel:bad name!]\nplugin=x\n", &e);
    CHECK(has_error(&e, "[strange]: unknown section"), "unknown section");
    CHECK(has_error(&e, "[channel:bad name!]: channel names use"), "bad channel name");
    config_free(c);
    errlist_free(&e);

    setenv("FD_TEST_TOKEN", "123:secret", 1);
    c = load("[channel:t]\nplugin = telegram\nscript = s.lua\ntoken = ${FD_TEST_TOKEN}\n"
             "other = pre-${FD_TEST_TOKEN}-post\n", &e);
    CHECK(e.n == 0, "${VAR} expands without errors");
    CHECK_STR(c ? conf_channel_get(&c->channels[0], "token") : NULL, "123:secret",
              "${VAR} expands from the environment");
    CHECK_STR(c ? conf_channel_get(&c->channels[0], "other") : NULL,
              "pre-123:secret-post", "${VAR} expands inside a value");
    config_free(c);
    errlist_free(&e);

    unsetenv("FD_TEST_UNSET");
    c = load("[channel:t]\nplugin = telegram\nscript = s.lua\ntoken = ${FD_TEST_UNSET}\n", &e);
    CHECK(has_error(&e, ":4: [channel:t] token: environment variable FD_TEST_UNSET is not set"),
          "unset ${VAR} is an error naming the key");
    config_free(c);
    errlist_free(&e);

    c = load("[core]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n", &e);
    CHECK(has_error(&e, "[core] listen: key given twice"), "duplicate key");
    config_free(c);
    errlist_free(&e);

    c = load("[core\nfoo\n", &e);
    CHECK(has_error(&e, "syntax error"), "syntax errors are reported with a line");
    config_free(c);
    errlist_free(&e);

    memset(&e, 0, sizeof e);
    c = config_load("/nonexistent/frontdesk.ini", &e);
    CHECK(!c && has_error(&e, "cannot read"), "a missing file is a clear error");
    errlist_free(&e);

    CHECK(config_parse_bool("yes") == 1 && config_parse_bool("off") == 0 &&
              config_parse_bool("maybe") == -1,
          "booleans");
    unlink(path);
    return CHECK_DONE();
}
