// Fuzzes the sweep loader and expander: the input is a sweep file beside a tiny base config
// (stub.yaml); it either expands into runs or fails with a message.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/sweep.h"
#include "core/error.h"
#include "fuzz_file.h"

static const char STUB[] = "model: {hidden: 32, depth: 2, heads: 2, patch: 7}\n"
                           "train: {steps: 4, batch_size: 16}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int stub_written;
    if (!stub_written) {
        fuzz_write("stub.yaml", (const uint8_t *)STUB, strlen(STUB));
        stub_written = 1;
    }
    const char *path = fuzz_write("sweep.yaml", data, size);
    struct sweep sw;
    if (sweep_load(&sw, path) == 0) sweep_free(&sw);
    err_clear();
    return 0;
}
