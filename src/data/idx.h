// IDX files of the MNIST family (optionally gzip-compressed), as shipped by dataset-fashion-mnist.
#ifndef PROMOE_IDX_H
#define PROMOE_IDX_H

#include <stdint.h>

// An unsigned-byte IDX array: dims[0..ndim) row-major; data owned (free with idx_free).
struct idx_array {
    int ndim;
    int64_t dims[4];
    uint8_t *data;
    int64_t count;  // product of dims
};

// Reads path (.gz or plain). Errors name the path and the problem (missing, truncated, bad magic,
// unsupported element type, sizes that disagree with the header).
int idx_read(const char *path, struct idx_array *out);
void idx_free(struct idx_array *a);

#endif
