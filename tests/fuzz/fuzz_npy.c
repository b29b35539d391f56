// Fuzzes the .npy reader (whole file and header only) and the conversions applied to what it reads.
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "data/npy.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("input.npy", data, size);
    struct npy_array a;
    if (npy_read(path, &a) == 0) {
        free(npy_to_f32(&a));
        free(npy_to_i64(&a));
        npy_free(&a);
    }
    int64_t offset;
    npy_read_header(path, &a, &offset);
    err_clear();
    return 0;
}
