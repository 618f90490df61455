/* fuzz_config.c - libFuzzer target: the INI configuration parser. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/fd-fuzz-config-%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    setenv("FUZZ_VAR", "value", 1);
    struct errlist e = {0};
    struct config *c = config_load(path, &e);
    if (c)
        for (size_t i = 0; i < c->nchannels; i++)
            (void)conf_channel_get(&c->channels[i], "plugin");
    config_free(c);
    errlist_free(&e);
    return 0;
}
