// Pieces of the .npy format shared by npy.c and npz.c (an .npz member is an .npy image); not part
// of the public interface. `label` is how messages name the source, already quoted: "'a.npy'" or
// "'b.npz' member 'arr_0.npy'".
#ifndef PROMOE_NPY_INTERNAL_H
#define PROMOE_NPY_INTERNAL_H

#include "data/npy.h"

#include <stdio.h>

enum { NPY_PREAMBLE_MAX = 512 };  // magic + version + length + dict for up to 8 dims, padded

// Builds the version 1.0 preamble (its length is a multiple of 64); returns the length, or 0 with
// the error set for a bad dtype or shape.
size_t npy_preamble_encode(const char *label, char out[NPY_PREAMBLE_MAX], enum npy_dtype dtype,
                           int ndim, const int64_t *shape, int64_t *nbytes);
// Reads an .npy image of `avail` bytes from fp's current position. When crc is non-NULL the
// whole `avail` bytes are consumed and their CRC-32 returned through it.
int npy_read_stream(const char *label, FILE *fp, uint64_t avail, uint32_t *crc,
                    struct npy_array *out);

#endif
