// Replays every fuzz seed (tests/fuzz/corpus/<target>/) and every input a fuzzer once crashed on
// (tests/fuzz/regressions/<target>/) through the same harness code `make fuzz` runs, built here
// without libFuzzer: each must end in a value (loaded, or an error message), never a crash. A
// regression input must also still be refused by its reader with a message that names the file.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"

#define LLVMFuzzerTestOneInput fuzz_config_one
#include "fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_sweep_one
#include "fuzz/fuzz_sweep.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_npy_one
#include "fuzz/fuzz_npy.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_npz_one
#include "fuzz/fuzz_npz.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput

enum { INPUT_MAX = 1 << 20 };

typedef int (*harness_fn)(const uint8_t *, size_t);

// Reads the regression input through its reader directly: 1 when it is refused with a message
// that names the file (the sweep and config harnesses take text, checked by the harness alone).
static int refused_by_name(const char *target, const char *path)
{
    struct npy_array a;
    struct idx_array x;
    struct st_file *f;
    int rc = 0;
    err_clear();
    if (!strcmp(target, "npy")) rc = npy_read(path, &a);
    else if (!strcmp(target, "npz")) rc = npz_read(path, "arr_0", &a);
    else if (!strcmp(target, "idx")) rc = idx_read(path, &x);
    else if (!strcmp(target, "safetensors")) rc = st_open(path, &f);
    else return 1;
    if (rc == 0) return 0;
    return strstr(err_message(), path) != NULL;
}

// Runs every file of folder through the harness; returns how many were replayed.
static int replay_folder(const char *folder, const char *target, harness_fn harness, int regression)
{
    DIR *d = opendir(folder);
    if (!d) return 0;
    static uint8_t buffer[INPUT_MAX];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", folder, e->d_name);
        FILE *fp = fopen(path, "rb");
        if (!fp) continue;
        size_t size = fread(buffer, 1, sizeof buffer, fp);
        fclose(fp);
        harness(buffer, size);
        n++;
        if (regression)
            CHECK(refused_by_name(target, path), "%s: regression input '%s' not refused by name: '%s'",
                  target, path, err_message());
    }
    closedir(d);
    return n;
}

int main(void)
{
    static const struct {
        const char *name;
        harness_fn fn;
    } targets[] = {{"config", fuzz_config_one}, {"sweep", fuzz_sweep_one}, {"npy", fuzz_npy_one},
                   {"npz", fuzz_npz_one},       {"idx", fuzz_idx_one},     {"safetensors", fuzz_safetensors_one}};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char folder[256];
        snprintf(folder, sizeof folder, "tests/fuzz/corpus/%s", targets[i].name);
        int seeds = replay_folder(folder, targets[i].name, targets[i].fn, 0);
        CHECK(seeds > 0, "%s: no seeds in %s", targets[i].name, folder);
        snprintf(folder, sizeof folder, "tests/fuzz/regressions/%s", targets[i].name);
        int regressions = replay_folder(folder, targets[i].name, targets[i].fn, 1);
        printf("%s: %d seeds and %d regression inputs replayed\n", targets[i].name, seeds, regressions);
    }
    return test_summary("test_fuzz");
}
