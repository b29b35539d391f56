// Writes the small valid files that seed the binary fuzz corpora (tests/fuzz/corpus/<target>/),
// through promoe's own writers. Run by hand from the repository root when a format changes:
//   make build/tests/make_seeds && build/tests/make_seeds
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "data/npy.h"
#include "model/safetensors.h"

#define CORPUS "tests/fuzz/corpus/"

static int write_idx(const char *path, int gz)
{
    static const uint8_t file[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8};
    if (gz) {
        gzFile g = gzopen(path, "wb");
        if (!g) return -1;
        gzwrite(g, file, sizeof file);
        return gzclose(g) == Z_OK ? 0 : -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(file, 1, sizeof file, f);
    return fclose(f);
}

int main(void)
{
    float values[6] = {0.5f, -1, 2, 3, 4, 5};
    int64_t labels[3] = {0, 9, 3};
    uint8_t bytes[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    int64_t shape23[2] = {2, 3}, shape3[1] = {3}, shape2x2x3[3] = {2, 2, 3};
    int rc = npy_write(CORPUS "npy/f32.npy", NPY_F32, 2, shape23, values);
    rc |= npy_write(CORPUS "npy/i64.npy", NPY_I64, 1, shape3, labels);
    rc |= npy_write(CORPUS "npy/u8.npy", NPY_U8, 3, shape2x2x3, bytes);
    struct npz_member members[2] = {{"arr_0", NPY_U8, 3, shape2x2x3, bytes}, {"arr_1", NPY_I64, 1, shape3, labels}};
    rc |= npz_write(CORPUS "npz/stored.npz", members, 2);
    rc |= npz_write_zip64(CORPUS "npz/zip64.npz", members, 2);
    struct st_tensor tensors[2] = {{"pos_embed", "F32", 2, {2, 3}, values}, {"y", "I64", 1, {3}, labels}};
    struct st_meta meta[2] = {{"promoe.config", "model:\n  hidden: 32\n"}, {"promoe.step", "4"}};
    rc |= st_write(CORPUS "safetensors/small.safetensors", tensors, 2, meta, 2, NULL);
    rc |= write_idx(CORPUS "idx/plain-idx3-ubyte", 0);
    rc |= write_idx(CORPUS "idx/gz-idx3-ubyte.gz", 1);
    if (rc) fprintf(stderr, "make_seeds: %s\n", err_message());
    return rc ? 1 : 0;
}
