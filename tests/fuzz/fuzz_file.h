// Shared by the fuzz harnesses: the readers under test take a path, so each input is written to a
// file in a folder of this process's own (removed at exit) and read back through the real reader.
#ifndef PROMOE_FUZZ_FILE_H
#define PROMOE_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_dir[64];

static void fuzz_remove_dir(void)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fuzz_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", fuzz_dir);
}

// The path of `name` in this process's folder, created on first use.
static const char *fuzz_path(const char *name)
{
    static char path[128];
    if (!fuzz_dir[0]) {
        snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/promoe_fuzz_%d", (int)getpid());
        mkdir(fuzz_dir, 0700);
        atexit(fuzz_remove_dir);
    }
    snprintf(path, sizeof path, "%s/%s", fuzz_dir, name);
    return path;
}

// Writes the input to `name` and returns its path.
static const char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

#endif
