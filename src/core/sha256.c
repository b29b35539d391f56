// SHA-256 as hex through OpenSSL. A failure of the digest itself (not of reading a file) is a bug
// in the build (no SHA-256 provider), so it stops the program with BUG.
#include "core/sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

enum { SHA256_BYTES = 32, FILE_CHUNK = 1 << 14 };

static void digest_or_bug(int ok)
{
    if (!ok) BUG("OpenSSL SHA-256 failed");
}

static void to_hex(const unsigned char digest[SHA256_BYTES], char out[SHA256_HEX_CAPACITY])
{
    for (int i = 0; i < SHA256_BYTES; i++) sprintf(out + 2 * i, "%02x", digest[i]);
}

void sha256_hex(const void *data, size_t n, char out[SHA256_HEX_CAPACITY])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned length = 0;
    digest_or_bug(EVP_Digest(data, n, digest, &length, EVP_sha256(), NULL) && length == SHA256_BYTES);
    to_hex(digest, out);
}

void sha256_begin(struct sha256_stream *s)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    digest_or_bug(ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL));
    s->ctx = ctx;
}

void sha256_add(struct sha256_stream *s, const void *data, size_t n)
{
    digest_or_bug(EVP_DigestUpdate(s->ctx, data, n));
}

void sha256_end_hex(struct sha256_stream *s, char out[SHA256_HEX_CAPACITY])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned length = 0;
    digest_or_bug(EVP_DigestFinal_ex(s->ctx, digest, &length) && length == SHA256_BYTES);
    EVP_MD_CTX_free(s->ctx);
    s->ctx = NULL;
    to_hex(digest, out);
}

int sha256_file_hex(const char *path, char out[SHA256_HEX_CAPACITY])
{
    unsigned char chunk[FILE_CHUNK];
    FILE *f = fopen(path, "rb");
    if (!f) return err("cannot read '%s': %s", path, strerror(errno));
    struct sha256_stream s;
    sha256_begin(&s);
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sha256_add(&s, chunk, n);
    int failed = ferror(f);
    fclose(f);
    sha256_end_hex(&s, out);
    return failed ? err("cannot read '%s': read error", path) : 0;
}
