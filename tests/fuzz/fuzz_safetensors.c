// Fuzzes the safetensors reader: a file that opens must give every tensor it lists, with data the
// reader vouches for (every byte is read, so ASan sees any offset that escapes the file).
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "fuzz_file.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("input.safetensors", data, size);
    struct st_file *f;
    if (st_open(path, &f) == 0) {
        for (int i = 0; i < st_count(f); i++) {
            const char *dtype;
            int ndim;
            int64_t shape[8];
            const uint8_t *p = st_get(f, st_name(f, i), &dtype, &ndim, shape);
            if (!p) abort();
            volatile uint8_t sum = 0;
            int64_t count = 1;
            for (int d = 0; d < ndim; d++) count *= shape[d];
            for (int64_t k = 0; k < count && k < (1 << 20); k++) sum ^= p[k];
            (void)sum;
        }
        st_meta_get(f, "promoe.config");
        st_close(f);
    }
    err_clear();
    return 0;
}
