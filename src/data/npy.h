// NumPy .npy (format 1.0 / 2.0 / 3.0 read, 1.0 written) and .npz (stored members written;
// stored and deflated members read) for latents, labels, model inputs and samples.
#ifndef PROMOE_NPY_H
#define PROMOE_NPY_H

#include <stddef.h>
#include <stdint.h>

enum npy_dtype { NPY_F32, NPY_F64, NPY_I64, NPY_I32, NPY_U8 };

// An array in memory: data owned (free with npy_free), little-endian, C order.
struct npy_array {
    enum npy_dtype dtype;
    int ndim;
    int64_t shape[8];
    int64_t count;   // product of shape
    void *data;
};

size_t npy_dtype_size(enum npy_dtype dtype);

// Reads a .npy file. Fortran order, big-endian or other dtypes are errors naming the path.
int npy_read(const char *path, struct npy_array *out);
// Reads only the header of a .npy file (for memory mapping): fills dtype, ndim, shape and count
// (data stays NULL) and the byte offset where the data starts. Checks the file holds all the data.
int npy_read_header(const char *path, struct npy_array *out, int64_t *data_offset);
// Converts any numeric array to a newly allocated float array (caller frees) / int64 array.
float *npy_to_f32(const struct npy_array *a);
int64_t *npy_to_i64(const struct npy_array *a);
void npy_free(struct npy_array *a);

// Writes a .npy atomically (temporary file, then rename).
int npy_write(const char *path, enum npy_dtype dtype, int ndim, const int64_t *shape, const void *data);

// Writes an .npz (zip of .npy members, stored, with ZIP64 when large) atomically.
struct npz_member {
    const char *name;        // without ".npy", e.g. "arr_0"
    enum npy_dtype dtype;
    int ndim;
    const int64_t *shape;
    const void *data;
};
int npz_write(const char *path, const struct npz_member *members, int n_members);
// Same, but with ZIP64 records for every member and for the end of the archive whatever the sizes
// (numpy's force_zip64 does this for members); lets the ZIP64 path be exercised on small files.
int npz_write_zip64(const char *path, const struct npz_member *members, int n_members);
// Reads one member of an .npz (stored or deflated).
int npz_read(const char *path, const char *name, struct npy_array *out);

#endif
