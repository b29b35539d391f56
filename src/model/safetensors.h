// safetensors files (the Hugging Face format: 8-byte little-endian header length, JSON header of
// tensors {dtype, shape, data_offsets} and "__metadata__" strings, then the raw data), written
// atomically and read with every offset validated. promoe adds metadata "promoe.crc32" (of the
// data section) so a corrupt file is detected and reported by name.
#ifndef PROMOE_SAFETENSORS_H
#define PROMOE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

struct st_tensor {
    const char *name;
    const char *dtype;     // "F32", "F64", "I64", "U8", ...
    int ndim;
    int64_t shape[8];
    const void *data;      // nbytes = product(shape) * dtype size
};

struct st_meta {
    const char *key;
    const char *value;
};

// Writes tensors (in the given order; the header lists them sorted by name as the format's
// reference writer does) and metadata to path via path.tmp + fsync + rename. Returns bytes
// written through *bytes_out (may be NULL).
int st_write(const char *path, const struct st_tensor *tensors, int n_tensors,
             const struct st_meta *meta, int n_meta, int64_t *bytes_out);

// A file read into memory.
struct st_file;
int st_open(const char *path, struct st_file **out);
void st_close(struct st_file *f);
// Finds a tensor: returns its data pointer and fills dtype/shape, or NULL if absent.
const void *st_get(const struct st_file *f, const char *name, const char **dtype, int *ndim,
                   int64_t shape[8]);
// Metadata value or NULL.
const char *st_meta_get(const struct st_file *f, const char *key);
int st_count(const struct st_file *f);
const char *st_name(const struct st_file *f, int i);

#endif
