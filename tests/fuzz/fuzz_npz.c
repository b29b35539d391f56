// Fuzzes the .npz reader (zip members, stored or deflated, ZIP64 records) through member arr_0.
#include <stdint.h>

#include "core/error.h"
#include "data/npy.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("input.npz", data, size);
    struct npy_array a;
    if (npz_read(path, "arr_0", &a) == 0) npy_free(&a);
    err_clear();
    return 0;
}
