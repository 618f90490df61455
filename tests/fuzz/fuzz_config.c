/* fuzz_config.c - libFuzzer target: the INI configuration parser. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A memory file: no disk I/O per input. */
    static char path[64];
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("fuzz-config", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        return 0;
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
