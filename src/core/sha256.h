// SHA-256 digests as lower-case hex (sha256.c, OpenSSL's EVP): run ids, config and metadata
// digests, sweep specs, database shards, the feature network's data.
#ifndef PROMOE_CORE_SHA256_H
#define PROMOE_CORE_SHA256_H

#include <stddef.h>

enum { SHA256_HEX_CAPACITY = 65 };   // 64 hex digits and the NUL

// The digest of data [n].
void sha256_hex(const void *data, size_t n, char out[SHA256_HEX_CAPACITY]);

// A digest over pieces added one after another, as if they were one buffer.
struct sha256_stream {
    void *ctx;   // OpenSSL's EVP_MD_CTX
};
void sha256_begin(struct sha256_stream *s);
void sha256_add(struct sha256_stream *s, const void *data, size_t n);
// The digest of everything added; the stream is released.
void sha256_end_hex(struct sha256_stream *s, char out[SHA256_HEX_CAPACITY]);

// The digest of a whole file; -1 with "cannot read '<path>': <reason>" when it cannot be read.
int sha256_file_hex(const char *path, char out[SHA256_HEX_CAPACITY]);

#endif
