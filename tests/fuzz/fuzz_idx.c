// Fuzzes the IDX reader (plain or gzip-compressed, as zlib detects from the first bytes).
#include <stdint.h>

#include "core/error.h"
#include "data/idx.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("input-idx3-ubyte", data, size);
    struct idx_array a;
    if (idx_read(path, &a) == 0) idx_free(&a);
    err_clear();
    return 0;
}
