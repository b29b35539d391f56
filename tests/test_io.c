// File formats: IDX (the real Fashion-MNIST files plus truncated and corrupt copies), .npy (every
// dtype, hand-made v2.0/v3.0 headers, every reject), .npz (stored, ZIP64, deflated, corrupt),
// safetensors (round trip and each validation), PNG (signature, IHDR, pixels read back) and the
// atomic writer (missing directory, a write cut short by RLIMIT_FSIZE). Inputs are made here, in a
// mkdtemp directory that is removed at the end.
#include "check.h"
#include "tmpfiles.h"
#include "core/error.h"
#include "data/idx.h"
#include "data/npy.h"
#include "io/atomic.h"
#include "io/png.h"
#include "model/safetensors.h"

#include <png.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION "/usr/share/datasets/fashion-mnist/"

static char tmp_dir[64];

// A path inside the temporary directory; a few rotating buffers so calls can be combined.
static const char *tmp(const char *name)
{
    static char buffers[8][256];
    static int next;
    char *b = buffers[next++ % 8];
    snprintf(b, sizeof buffers[0], "%s/%s", tmp_dir, name);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, n, fp) != n)
        BUG("cannot write test input '%s'", path);
    fclose(fp);
}

// Whole file into memory (caller frees); NULL when missing.
static uint8_t *read_bytes(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    rewind(fp);
    uint8_t *buf = malloc(*n + 1);
    if (fread(buf, 1, *n, fp) != *n)
        BUG("cannot read test file '%s'", path);
    fclose(fp);
    return buf;
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

// rc is -1 and the message holds both fragments (typically the path and the problem).
// VERBOSE=1 in the environment prints every message checked, to review their wording.
#define CHECK_ERR(call, frag1, frag2)                                                         \
    do {                                                                                      \
        err_clear();                                                                          \
        int rc_ = (call);                                                                     \
        if (getenv("VERBOSE"))                                                                \
            fprintf(stderr, "  message: %s\n", err_message());                                \
        CHECK(rc_ == -1 && strstr(err_message(), (frag1)) && strstr(err_message(), (frag2)), \
              "rc %d, message \"%s\", wanted \"%s\" and \"%s\"", rc_, err_message(), (frag1), \
              (frag2));                                                                       \
    } while (0)

// ---------------------------------------------------------------------------------------------
// IDX

static void test_idx_fashion(void)
{
    struct idx_array a;
    int rc = idx_read(FASHION "train-images-idx3-ubyte.gz", &a);
    CHECK(rc == 0, "train images: %s", err_message());
    CHECK(a.ndim == 3 && a.dims[0] == 60000 && a.dims[1] == 28 && a.dims[2] == 28,
          "train images shape %d [%lld %lld %lld]", a.ndim, (long long)a.dims[0],
          (long long)a.dims[1], (long long)a.dims[2]);
    CHECK(a.count == 60000LL * 28 * 28, "count %lld", (long long)a.count);
    long sum = 0;
    for (int i = 0; rc == 0 && i < 784; i++)
        sum += a.data[i];
    CHECK(sum == 76247, "first image pixel sum %ld (python's gzip gives 76247)", sum);
    idx_free(&a);

    rc = idx_read(FASHION "train-labels-idx1-ubyte.gz", &a);
    CHECK(rc == 0 && a.ndim == 1 && a.dims[0] == 60000, "train labels: %s", err_message());
    CHECK(rc == 0 && a.data[0] == 9 && a.data[3] == 3, "first train labels %d %d",
          rc == 0 ? a.data[0] : -1, rc == 0 ? a.data[3] : -1);
    idx_free(&a);

    rc = idx_read(FASHION "t10k-images-idx3-ubyte.gz", &a);
    CHECK(rc == 0 && a.ndim == 3 && a.dims[0] == 10000 && a.dims[1] == 28 && a.dims[2] == 28,
          "t10k images: %s", err_message());
    idx_free(&a);
    rc = idx_read(FASHION "t10k-labels-idx1-ubyte.gz", &a);
    CHECK(rc == 0 && a.dims[0] == 10000 && a.data[0] == 9 && a.data[1] == 2, "t10k labels: %s",
          err_message());
    idx_free(&a);
}

// An IDX image of ndim dims (big-endian) followed by n_data bytes, gzip-compressed or plain.
static void write_idx(const char *path, int gz, uint8_t type, int ndim, const uint32_t *dims,
                      size_t n_data)
{
    size_t n = 4 + 4 * (size_t)ndim + n_data;
    uint8_t *buf = calloc(n, 1);
    buf[2] = type, buf[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++)
        for (int b = 0; b < 4; b++)
            buf[4 + 4 * i + b] = (uint8_t)(dims[i] >> (24 - 8 * b));
    for (size_t i = 0; i < n_data; i++)
        buf[4 + 4 * ndim + i] = (uint8_t)(i * 7);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f || gzwrite(f, buf, (unsigned)n) != (int)n)
            BUG("cannot write '%s'", path);
        gzclose(f);
    } else {
        write_bytes(path, buf, n);
    }
    free(buf);
}

static void test_idx_errors(void)
{
    struct idx_array a;
    uint32_t dims[3] = {10, 28, 28};
    write_idx(tmp("short.gz"), 1, 0x08, 3, dims, 5 * 784);
    CHECK_ERR(idx_read(tmp("short.gz"), &a), tmp("short.gz"),
              "truncated: expected 7840 bytes of data, found 3920");
    CHECK(a.data == NULL, "data left allocated after an error");

    // The real labels file cut in the middle of its compressed stream.
    size_t n;
    uint8_t *gz = read_bytes(FASHION "train-labels-idx1-ubyte.gz", &n);
    write_bytes(tmp("cut-labels.gz"), gz, n / 2);
    free(gz);
    CHECK_ERR(idx_read(tmp("cut-labels.gz"), &a), "'", "truncated: expected 60000 bytes of data, found ");
    CHECK(strstr(err_message(), tmp("cut-labels.gz")) != NULL, "path missing: %s", err_message());

    write_idx(tmp("long.idx"), 0, 0x08, 1, dims, 11);
    CHECK_ERR(idx_read(tmp("long.idx"), &a), tmp("long.idx"), "expected 10 bytes of data, found 11");

    const uint8_t bad_magic[] = {0x1f, 0x00, 0x08, 0x01, 0, 0, 0, 1, 5};
    write_bytes(tmp("bad-magic.idx"), bad_magic, sizeof bad_magic);
    CHECK_ERR(idx_read(tmp("bad-magic.idx"), &a), tmp("bad-magic.idx"), "bad magic");

    write_idx(tmp("float.idx"), 1, 0x0D, 1, dims, 40);
    CHECK_ERR(idx_read(tmp("float.idx"), &a), tmp("float.idx"), "unsupported element type 0x0d");

    write_idx(tmp("dims.idx"), 0, 0x08, 5, (uint32_t[5]){1, 1, 1, 1, 1}, 1);
    CHECK_ERR(idx_read(tmp("dims.idx"), &a), tmp("dims.idx"), "number of dimensions 5");

    write_bytes(tmp("tiny.idx"), bad_magic, 2);
    CHECK_ERR(idx_read(tmp("tiny.idx"), &a), tmp("tiny.idx"), "truncated");

    char missing[300];
    snprintf(missing, sizeof missing, "cannot open '%s': No such file or directory",
             tmp("absent.gz"));
    CHECK_ERR(idx_read(tmp("absent.gz"), &a), missing, "");

    uint32_t d2[2] = {2, 3};
    write_idx(tmp("plain.idx"), 0, 0x08, 2, d2, 6);
    int rc = idx_read(tmp("plain.idx"), &a);
    CHECK(rc == 0 && a.ndim == 2 && a.dims[1] == 3 && a.count == 6 && a.data[5] == 35,
          "plain IDX: %s", err_message());
    idx_free(&a);
}

// ---------------------------------------------------------------------------------------------
// .npy

// Deterministic bytes for any dtype: element i holds i * 3 - 7 (u8: low byte).
static void *make_data(enum npy_dtype dtype, int64_t count)
{
    uint8_t *p = malloc(count ? (size_t)count * npy_dtype_size(dtype) : 1);
    for (int64_t i = 0; i < count; i++) {
        double v = (double)(i * 3 - 7);
        switch (dtype) {
        case NPY_F32: ((float *)p)[i] = (float)v * 0.5f; break;
        case NPY_F64: ((double *)p)[i] = v * 0.25; break;
        case NPY_I64: ((int64_t *)p)[i] = (int64_t)v * 1000000007LL; break;
        case NPY_I32: ((int32_t *)p)[i] = (int32_t)v; break;
        case NPY_U8: p[i] = (uint8_t)(i * 3 + 1); break;
        }
    }
    return p;
}

static int64_t shape_count(int ndim, const int64_t *shape)
{
    int64_t c = 1;
    for (int i = 0; i < ndim; i++)
        c *= shape[i];
    return c;
}

static int same_array(const struct npy_array *a, enum npy_dtype dtype, int ndim,
                      const int64_t *shape, const void *data)
{
    int64_t count = shape_count(ndim, shape);
    if (a->dtype != dtype || a->ndim != ndim || a->count != count)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (a->shape[i] != shape[i])
            return 0;
    return memcmp(a->data, data, (size_t)count * npy_dtype_size(dtype)) == 0;
}

static void test_npy_roundtrip(void)
{
    static const int64_t shapes[][4] = {{0}, {5}, {2, 3}, {2, 3, 4, 5}, {0, 3}};
    static const int ndims[] = {0, 1, 2, 4, 2};
    static const char *const descr[] = {"'<f4'", "'<f8'", "'<i8'", "'<i4'", "'|u1'"};
    for (int d = NPY_F32; d <= NPY_U8; d++) {
        for (int s = 0; s < 5; s++) {
            int64_t count = shape_count(ndims[s], shapes[s]);
            void *data = make_data((enum npy_dtype)d, count);
            const char *path = tmp("round.npy");
            int rc = npy_write(path, (enum npy_dtype)d, ndims[s], shapes[s], data);
            CHECK(rc == 0, "write dtype %d shape %d: %s", d, s, err_message());
            size_t n;
            uint8_t *bytes = read_bytes(path, &n);
            size_t header = 10 + (size_t)(bytes[8] | bytes[9] << 8);
            CHECK(header % 64 == 0 && bytes[header - 1] == '\n' && bytes[6] == 1 && bytes[7] == 0,
                  "header length %zu not a multiple of 64 (dtype %d shape %d)", header, d, s);
            CHECK(n == header + (size_t)count * npy_dtype_size((enum npy_dtype)d),
                  "file size %zu", n);
            CHECK(memmem(bytes, header, descr[d], 5) != NULL, "descr %s missing", descr[d]);
            free(bytes);
            struct npy_array a;
            rc = npy_read(path, &a);
            CHECK(rc == 0 && same_array(&a, (enum npy_dtype)d, ndims[s], shapes[s], data),
                  "read back dtype %d shape %d: %s", d, s, err_message());
            npy_free(&a);
            free(data);
        }
    }
    CHECK(tmp_files_of(tmp("round.npy")) == 0, "temporary file left behind");
}

static void test_npy_header_text(void)
{
    float data[6] = {1, 2, 3, 4, 5, 6};
    npy_write(tmp("h.npy"), NPY_F32, 2, (int64_t[]){2, 3}, data);
    size_t n;
    uint8_t *b = read_bytes(tmp("h.npy"), &n);
    const char expect[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, "
                          "'shape': (2, 3), }";
    CHECK(n == 128 + 24 && memcmp(b, expect, sizeof expect - 1) == 0,
          "(2,3) f32 header differs from numpy's (HEADER_LEN 118, data at 128)");
    free(b);
    int64_t *seven = make_data(NPY_I64, 7);
    npy_write(tmp("h1.npy"), NPY_I64, 1, (int64_t[]){7}, seven);
    free(seven);
    b = read_bytes(tmp("h1.npy"), &n);
    CHECK(memmem(b, 128, "'shape': (7,), }", 16) != NULL, "1-D shape not written as (7,)");
    free(b);
    npy_write(tmp("h0.npy"), NPY_F64, 0, NULL, &(double){2.5});
    b = read_bytes(tmp("h0.npy"), &n);
    CHECK(memmem(b, 128, "'shape': (), }", 14) != NULL && n == 128 + 8, "0-D shape not ()");
    free(b);
    struct npy_array a;
    int64_t offset = 0;
    int rc = npy_read_header(tmp("h.npy"), &a, &offset);
    CHECK(rc == 0 && offset == 128 && a.ndim == 2 && a.shape[1] == 3 && a.data == NULL,
          "npy_read_header: offset %lld: %s", (long long)offset, err_message());
}

// A .npy image with the given version and dict text (padded like numpy), then data bytes.
static void write_npy_raw(const char *path, int major, const char *dict, const void *data,
                          size_t n_data)
{
    size_t prefix = major == 1 ? 10 : 12, len = strlen(dict) + 1;
    size_t total = prefix + len + (64 - (prefix + len) % 64) % 64, hlen = total - prefix;
    uint8_t *buf = calloc(total + n_data, 1);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major, buf[7] = 0;
    for (size_t b = 0; b < prefix - 8; b++)
        buf[8 + b] = (uint8_t)(hlen >> (8 * b));
    memset(buf + prefix, ' ', hlen);
    memcpy(buf + prefix, dict, len - 1);
    buf[total - 1] = '\n';
    memcpy(buf + total, data, n_data);
    write_bytes(path, buf, total + n_data);
    free(buf);
}

static void test_npy_handmade(void)
{
    double d[3] = {1.5, -2, 1e300};
    struct npy_array a;
    write_npy_raw(tmp("v2.npy"), 2, "{ \"shape\" : ( 3 , ) ,'fortran_order':False , 'descr':'<f8',}",
                  d, sizeof d);
    int rc = npy_read(tmp("v2.npy"), &a);
    CHECK(rc == 0 && same_array(&a, NPY_F64, 1, (int64_t[]){3}, d), "v2.0 file: %s",
          err_message());
    npy_free(&a);

    int32_t i4[6] = {1, -2, 3, -4, 5, -6};
    write_npy_raw(tmp("v3.npy"), 3, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,3)}",
                  i4, sizeof i4);
    rc = npy_read(tmp("v3.npy"), &a);
    CHECK(rc == 0 && same_array(&a, NPY_I32, 2, (int64_t[]){2, 3}, i4), "v3.0 file: %s",
          err_message());
    npy_free(&a);

    // numpy >= 1.24 pads the dict so the shape can grow in place.
    uint8_t u1[4] = {1, 2, 3, 255};
    write_npy_raw(tmp("grow.npy"), 1,
                  "{'descr': '<u1', 'fortran_order': False, 'shape': (4,), }                     ",
                  u1, sizeof u1);
    rc = npy_read(tmp("grow.npy"), &a);
    CHECK(rc == 0 && same_array(&a, NPY_U8, 1, (int64_t[]){4}, u1), "<u1 file: %s", err_message());
    float *f = rc == 0 ? npy_to_f32(&a) : NULL;
    int64_t *i = rc == 0 ? npy_to_i64(&a) : NULL;
    CHECK(f && i && f[3] == 255.0f && i[3] == 255 && i[0] == 1, "u8 conversions");
    free(f), free(i);
    npy_free(&a);

    float labels[3] = {2, 0, 7};
    npy_write(tmp("fl.npy"), NPY_F32, 1, (int64_t[]){3}, labels);
    npy_read(tmp("fl.npy"), &a);
    i = npy_to_i64(&a);
    CHECK(i && i[0] == 2 && i[2] == 7, "f32 labels to int64");
    free(i), npy_free(&a);
    labels[1] = 0.5f;
    npy_write(tmp("fl.npy"), NPY_F32, 1, (int64_t[]){3}, labels);
    npy_read(tmp("fl.npy"), &a);
    err_clear();
    CHECK(npy_to_i64(&a) == NULL && strstr(err_message(), "not an integer"),
          "0.5 converted to int64 without error");
    npy_free(&a);
}

struct npy_reject {
    int major;
    const char *dict;
    size_t data_bytes;
    const char *problem;
};

static void test_npy_rejects(void)
{
    static const struct npy_reject cases[] = {
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24,
         "fortran_order True is not supported"},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24,
         "big-endian dtype '>f4'"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", 12,
         "unsupported dtype '<f2'"},
        {1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", 2,
         "unsupported dtype '|b1'"},
        {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8,
         "structured arrays"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20,
         "truncated: shape (2, 3) of '<f4' needs 24 bytes of data, found 20"},
        {2, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }", 4,
         "truncated: shape () of '<i8' needs 8 bytes of data, found 4"},
        {1, "{'descr': '<f4', 'shape': (2, 3), }", 24, "missing key 'fortran_order'"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 24,
         "unexpected or repeated key 'x'"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2; 3), }", 24,
         "malformed header"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }", 24,
         "malformed header"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } junk", 24,
         "malformed header"},
        {1, "['descr', '<f4']", 24, "malformed header"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 24,
         "more than 8 dimensions"},
    };
    uint8_t zeros[64] = {0};
    struct npy_array a;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[32];
        snprintf(name, sizeof name, "reject%zu.npy", c);
        write_npy_raw(tmp(name), cases[c].major, cases[c].dict, zeros, cases[c].data_bytes);
        CHECK_ERR(npy_read(tmp(name), &a), tmp(name), cases[c].problem);
        CHECK(a.data == NULL, "case %zu left data allocated", c);
    }
    write_bytes(tmp("magic.npy"), "\x93NUMPZ\x01\x00\x00\x00", 10);
    CHECK_ERR(npy_read(tmp("magic.npy"), &a), tmp("magic.npy"), "bad magic");
    write_bytes(tmp("ver.npy"), "\x93NUMPY\x04\x00\x10\x00{}", 12);
    CHECK_ERR(npy_read(tmp("ver.npy"), &a), tmp("ver.npy"), "unsupported .npy format version 4.0");
    write_bytes(tmp("cut.npy"), "\x93NUMPY\x01\x00\x76\x00{'descr'", 17);
    CHECK_ERR(npy_read(tmp("cut.npy"), &a), tmp("cut.npy"), "truncated: header of 128 bytes");
    write_bytes(tmp("short.npy"), "\x93NUM", 4);
    CHECK_ERR(npy_read(tmp("short.npy"), &a), tmp("short.npy"), "truncated");
    CHECK_ERR(npy_read(tmp("none.npy"), &a), tmp("none.npy"), "No such file or directory");
    CHECK_ERR(npy_write(tmp("neg.npy"), NPY_F32, 1, (int64_t[]){-1}, zeros), tmp("neg.npy"),
              "negative dimension");
    CHECK_ERR(npy_write(tmp("dt.npy"), (enum npy_dtype)9, 1, (int64_t[]){1}, zeros), tmp("dt.npy"),
              "unknown dtype");
}

// ---------------------------------------------------------------------------------------------
// .npz

static void check_npz_members(const char *path, const struct npz_member *m, int n)
{
    for (int i = 0; i < n; i++) {
        struct npy_array a;
        int rc = npz_read(path, m[i].name, &a);
        CHECK(rc == 0 && same_array(&a, m[i].dtype, m[i].ndim, m[i].shape, m[i].data),
              "'%s' member %s: %s", path, m[i].name, err_message());
        npy_free(&a);
    }
}

static void test_npz_stored(void)
{
    int64_t s0[4] = {2, 4, 4, 3}, s1[1] = {2};
    uint8_t *images = make_data(NPY_U8, 96);
    int64_t labels[2] = {3, 999};
    float scalar = 0.25f;
    struct npz_member m[3] = {{"arr_0", NPY_U8, 4, s0, images},
                              {"arr_1", NPY_I64, 1, s1, labels},
                              {"mu", NPY_F32, 0, NULL, &scalar}};
    int rc = npz_write(tmp("b.npz"), m, 3);
    CHECK(rc == 0, "npz_write: %s", err_message());
    check_npz_members(tmp("b.npz"), m, 3);
    size_t n;
    uint8_t *bytes = read_bytes(tmp("b.npz"), &n);
    CHECK(bytes && memcmp(bytes, "PK\x03\x04", 4) == 0 && bytes[8] == 0 &&
              memcmp(bytes + 30, "arr_0.npy", 9) == 0,
          "first local header is not a stored arr_0.npy");
    CHECK(memmem(bytes, n, "PK\x06\x06", 4) == NULL, "small archive carries ZIP64 records");
    CHECK_ERR(npz_read(tmp("b.npz"), "arr_9", &(struct npy_array){0}), tmp("b.npz"),
              "no member 'arr_9.npy' (members: arr_0.npy, arr_1.npy, mu.npy)");

    // A flipped byte inside arr_1's data: the member CRC catches it.
    const uint8_t *hit = memmem(bytes, n, labels, sizeof labels);
    if (hit) {
        bytes[hit - bytes + 9] ^= 0x40;
        write_bytes(tmp("flip.npz"), bytes, n);
        CHECK_ERR(npz_read(tmp("flip.npz"), "arr_1", &(struct npy_array){0}), tmp("flip.npz"),
                  "member 'arr_1.npy': checksum mismatch");
    }
    write_bytes(tmp("cut.npz"), bytes, n - 30);
    CHECK_ERR(npz_read(tmp("cut.npz"), "arr_0", &(struct npy_array){0}), tmp("cut.npz"),
              "not a ZIP archive");
    free(bytes);

    rc = npz_write_zip64(tmp("z64.npz"), m, 3);
    CHECK(rc == 0, "npz_write_zip64: %s", err_message());
    check_npz_members(tmp("z64.npz"), m, 3);
    bytes = read_bytes(tmp("z64.npz"), &n);
    CHECK(bytes && memmem(bytes, n, "PK\x06\x06", 4) && memmem(bytes, n, "PK\x06\x07", 4) &&
              bytes[18] == 0xff && bytes[28] == 20,
          "ZIP64 records missing");
    free(bytes);
    CHECK_ERR(npz_write(tmp("dup.npz"), (struct npz_member[]){m[1], m[1]}, 2), tmp("dup.npz"),
              "appears twice");
    CHECK(!file_exists(tmp("dup.npz")) && tmp_files_of(tmp("dup.npz")) == 0, "failed npz left files");
    free(images);
}

// A minimal ZIP with one deflated member, written the way np.savez_compressed does (zip64 extra
// in the local header only, as numpy's force_zip64 does).
static void write_deflated_zip(const char *path, const char *name, const uint8_t *plain,
                               size_t n_plain)
{
    uint8_t packed[8192], buf[16384];
    z_stream zs = {0};
    deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (Bytef *)plain, zs.avail_in = (uInt)n_plain;
    zs.next_out = packed, zs.avail_out = sizeof packed;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        BUG("deflate did not finish");
    size_t n_packed = zs.total_out, nl = strlen(name), at = 0;
    deflateEnd(&zs);
    uint32_t crc = (uint32_t)crc32(0, plain, (uInt)n_plain);
#define P16(v) (buf[at] = (uint8_t)(v), buf[at + 1] = (uint8_t)((v) >> 8), at += 2)
#define P32(v) (P16((v) & 0xffff), P16((uint32_t)(v) >> 16))
    P32(0x04034b50), P16(45), P16(0), P16(8), P16(0), P16(0x21), P32(crc);
    P32(0xffffffffu), P32(0xffffffffu), P16(nl), P16(20);
    memcpy(buf + at, name, nl), at += nl;
    P16(1), P16(16), P32(n_plain), P32(0), P32(n_packed), P32(0);
    memcpy(buf + at, packed, n_packed), at += n_packed;
    size_t cd = at;
    P32(0x02014b50), P16(20), P16(20), P16(0), P16(8), P16(0), P16(0x21), P32(crc);
    P32(n_packed), P32(n_plain), P16(nl), P16(0), P16(0), P16(0), P16(0), P32(0), P32(0);
    memcpy(buf + at, name, nl), at += nl;
    size_t cd_size = at - cd;
    P32(0x06054b50), P16(0), P16(0), P16(1), P16(1), P32(cd_size), P32(cd), P16(0);
#undef P16
#undef P32
    write_bytes(path, buf, at);
}

static void test_npz_deflated(void)
{
    float latent[2][4][4];
    for (int i = 0; i < 32; i++)
        ((float *)latent)[i] = (float)(i % 5) * 0.125f;
    npy_write(tmp("lat.npy"), NPY_F32, 3, (int64_t[]){2, 4, 4}, latent);
    size_t n;
    uint8_t *npy = read_bytes(tmp("lat.npy"), &n);
    write_deflated_zip(tmp("c.npz"), "latent.npy", npy, n);
    struct npy_array a;
    int rc = npz_read(tmp("c.npz"), "latent", &a);
    CHECK(rc == 0 && same_array(&a, NPY_F32, 3, (int64_t[]){2, 4, 4}, latent),
          "deflated member: %s", err_message());
    npy_free(&a);

    size_t zn;
    uint8_t *zip = read_bytes(tmp("c.npz"), &zn);
    zip[30 + 10 + 20 + 5] ^= 0xff;  // inside the deflate stream
    write_bytes(tmp("c-bad.npz"), zip, zn);
    CHECK_ERR(npz_read(tmp("c-bad.npz"), "latent", &a), "'", "member 'latent.npy': ");
    CHECK(strstr(err_message(), tmp("c-bad.npz")) &&
              (strstr(err_message(), "corrupt deflate data") ||
               strstr(err_message(), "checksum mismatch")),
          "corrupt deflate: %s", err_message());
    free(zip);
    free(npy);
}

// ---------------------------------------------------------------------------------------------
// safetensors

static uint64_t read_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void test_st_roundtrip(void)
{
    float w[6] = {1.5f, -2, 3, 4, 5, 6.25f};
    int64_t ids[4] = {1, -2, 1LL << 40, 7};
    uint8_t flag = 1;
    uint16_t half[3] = {0x3c00, 0x4000, 0xc000};
    double empty = 0;
    struct st_tensor t[5] = {
        {"y_embedder.embedding_table.weight", "F32", 2, {2, 3}, w},
        {"blocks.0.ids", "I64", 1, {4}, ids},
        {"a.flag", "U8", 0, {0}, &flag},
        {"pos_embed", "BF16", 1, {3}, half},
        {"zero", "F64", 1, {0}, &empty},
    };
    struct st_meta meta[2] = {{"promoe.step", "1200"}, {"promoe.weights", "ema"}};
    int64_t bytes = 0;
    const char *path = tmp("m.safetensors");
    int rc = st_write(path, t, 5, meta, 2, &bytes);
    CHECK(rc == 0, "st_write: %s", err_message());
    size_t n;
    uint8_t *file = read_bytes(path, &n);
    uint64_t hlen = read_u64le(file);
    CHECK(hlen % 8 == 0 && file[8] == '{' && file[8 + hlen - 1] != '\0',
          "header length %llu not padded to 8", (unsigned long long)hlen);
    CHECK(bytes == (int64_t)n && n == 8 + hlen + 24 + 32 + 1 + 6,
          "bytes_out %lld, file %zu", (long long)bytes, n);
    CHECK(memcmp(file + 8 + hlen, w, sizeof w) == 0, "data not laid out in the given order");
    free(file);

    struct st_file *f = NULL;
    rc = st_open(path, &f);
    CHECK(rc == 0, "st_open: %s", err_message());
    if (rc != 0)
        return;
    CHECK(st_count(f) == 5, "count %d", st_count(f));
    CHECK(strcmp(st_name(f, 0), "a.flag") == 0 && strcmp(st_name(f, 4), "zero") == 0,
          "header not sorted by name: %s ... %s", st_name(f, 0), st_name(f, 4));
    CHECK(st_name(f, 5) == NULL, "st_name out of range");
    for (int i = 0; i < 5; i++) {
        const char *dtype = NULL;
        int ndim = -1;
        int64_t shape[8] = {0};
        const void *data = st_get(f, t[i].name, &dtype, &ndim, shape);
        size_t nb = i == 0 ? sizeof w : i == 1 ? sizeof ids : i == 2 ? 1 : i == 3 ? 6 : 0;
        CHECK(data && strcmp(dtype, t[i].dtype) == 0 && ndim == t[i].ndim &&
                  memcmp(shape, t[i].shape, sizeof(int64_t) * (size_t)ndim) == 0 &&
                  memcmp(data, t[i].data, nb) == 0,
              "tensor %s differs", t[i].name);
    }
    const void *wp = st_get(f, "y_embedder.embedding_table.weight", NULL, NULL, NULL);
    CHECK(((uintptr_t)wp & 3) == 0, "F32 data not aligned");
    CHECK(st_get(f, "nope", NULL, NULL, NULL) == NULL, "found a missing tensor");
    CHECK(st_meta_get(f, "format") && strcmp(st_meta_get(f, "format"), "pt") == 0, "format");
    CHECK(st_meta_get(f, "promoe.step") && strcmp(st_meta_get(f, "promoe.step"), "1200") == 0 &&
              strcmp(st_meta_get(f, "promoe.weights"), "ema") == 0,
          "caller metadata lost");
    char crc[16];
    snprintf(crc, sizeof crc, "%lu", crc32(crc32(crc32(crc32(0, (const Bytef *)w, 24),
                                                       (const Bytef *)ids, 32),
                                                 &flag, 1),
                                           (const Bytef *)half, 6));
    CHECK(st_meta_get(f, "promoe.crc32") && strcmp(st_meta_get(f, "promoe.crc32"), crc) == 0,
          "crc32 %s vs %s", st_meta_get(f, "promoe.crc32"), crc);
    CHECK(st_meta_get(f, "absent") == NULL, "absent metadata found");
    st_close(f);
    CHECK(tmp_files_of(tmp("m.safetensors")) == 0, "temporary file left behind");

    CHECK_ERR(st_write(tmp("bad.safetensors"), (struct st_tensor[]){{"x", "F7", 1, {1}, w}}, 1,
                       NULL, 0, NULL),
              tmp("bad.safetensors"), "unknown dtype 'F7'");
    CHECK_ERR(st_write(tmp("bad.safetensors"), (struct st_tensor[]){t[0], t[0]}, 2, NULL, 0, NULL),
              tmp("bad.safetensors"), "appears twice");
    CHECK(!file_exists(tmp("bad.safetensors")), "failed write left a file");
}

// A safetensors file from header text and data bytes (header not padded unless the text is).
static void write_st_raw(const char *path, const char *header, const void *data, size_t n_data)
{
    size_t hl = strlen(header);
    uint8_t *buf = malloc(8 + hl + n_data + 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    memcpy(buf + 8 + hl, data, n_data);
    write_bytes(path, buf, 8 + hl + n_data);
    free(buf);
}

struct st_reject {
    const char *header;
    size_t data_bytes;
    const char *problem;
};

static void test_st_rejects(void)
{
    // A good file, then damaged copies.
    float w[4] = {1, 2, 3, 4};
    const char *path = tmp("ok.safetensors");
    st_write(path, (struct st_tensor[]){{"w", "F32", 2, {2, 2}, w}}, 1, NULL, 0, NULL);
    size_t n;
    uint8_t *file = read_bytes(path, &n);
    struct st_file *f = NULL;
    file[n - 3] ^= 0x01;
    write_bytes(tmp("flip.safetensors"), file, n);
    CHECK_ERR(st_open(tmp("flip.safetensors"), &f), tmp("flip.safetensors"),
              "checksum mismatch: file is corrupt");
    CHECK(f == NULL, "st_open returned a file on error");
    file[n - 3] ^= 0x01;
    write_bytes(tmp("cut.safetensors"), file, n - 5);
    CHECK_ERR(st_open(tmp("cut.safetensors"), &f), tmp("cut.safetensors"),
              "truncated: header says 16 bytes of data, file has 11");
    write_bytes(tmp("cut2.safetensors"), file, 20);
    CHECK_ERR(st_open(tmp("cut2.safetensors"), &f), tmp("cut2.safetensors"), "truncated");
    write_bytes(tmp("cut3.safetensors"), file, 5);
    CHECK_ERR(st_open(tmp("cut3.safetensors"), &f), tmp("cut3.safetensors"), "truncated");
    free(file);

    uint8_t garbage[4096];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (uint8_t)(i * 2654435761u >> 13);
    write_bytes(tmp("garbage.safetensors"), garbage, sizeof garbage);
    CHECK_ERR(st_open(tmp("garbage.safetensors"), &f), tmp("garbage.safetensors"),
              "exceeds the limit");
    CHECK_ERR(st_open(tmp("none.safetensors"), &f), tmp("none.safetensors"),
              "No such file or directory");

    static const struct st_reject cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
         "truncated: header says 8 bytes of data, file has 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16,
         "do not match 8 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
         "data_offsets [8, 0] do not match"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         12, "tensor 'b': data_offsets [8, 12] leave a gap after the previous tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
         "8 bytes of data, but the tensors cover only 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1e30,4]}}", 4,
         "data_offsets must be two non-negative integers"},
        {"{\"a\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "unknown or missing dtype 'F7'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
         "not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
         "not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "tensor 'a' appears twice"},
        {"{\"__metadata__\":{\"step\":5},\"a\":{\"dtype\":\"U8\",\"shape\":[],"
         "\"data_offsets\":[0,1]}}",
         1, "metadata 'step' is not a string"},
        {"{\"__metadata__\":{\"promoe.crc32\":\"12x\"}}", 0, "is not a CRC-32 value"},
        {"{\"a\": [1, 2]}", 0, "tensor 'a': entry is not an object"},
        {"{\"a\":{\"dtype\":\"F32\",", 0, "header is not valid JSON"},
        {"[1, 2]", 0, "header is not a JSON object"},
        {"{} x", 0, "bytes after the JSON object"},
    };
    uint8_t zeros[16] = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[32];
        snprintf(name, sizeof name, "rej%zu.safetensors", c);
        write_st_raw(tmp(name), cases[c].header, zeros, cases[c].data_bytes);
        CHECK_ERR(st_open(tmp(name), &f), tmp(name), cases[c].problem);
    }

    // A foreign file: unpadded header, no crc, empty metadata, rank-0 tensor.
    const char *foreign = "{\"__metadata__\":{},\"s\":{\"dtype\":\"F64\",\"shape\":[],"
                          "\"data_offsets\":[0,8]},\"e\":{\"dtype\":\"I32\",\"shape\":[0,3],"
                          "\"data_offsets\":[8,8]}}";
    double v = -0.5;
    write_st_raw(tmp("foreign.safetensors"), foreign, &v, 8);
    int rc = st_open(tmp("foreign.safetensors"), &f);
    int ndim = -1;
    const double *s = rc == 0 ? st_get(f, "s", NULL, &ndim, NULL) : NULL;
    CHECK(s && ((uintptr_t)s & 7) == 0 && *s == -0.5 && ndim == 0 && st_count(f) == 2,
          "foreign file: %s", err_message());
    st_close(f);
}

// ---------------------------------------------------------------------------------------------
// PNG and atomic writes

static uint32_t read_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void check_png(const char *path, int width, int height, int channels,
                      const uint8_t *pixels)
{
    size_t n;
    uint8_t *b = read_bytes(path, &n);
    CHECK(b && n > 33 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0, "'%s': no PNG signature", path);
    if (!b || n <= 33)
        return;
    CHECK(memcmp(b + 12, "IHDR", 4) == 0 && read_u32be(b + 16) == (uint32_t)width &&
              read_u32be(b + 20) == (uint32_t)height && b[24] == 8 &&
              b[25] == (channels == 1 ? 0 : 2),
          "'%s': IHDR %ux%u depth %d type %d", path, read_u32be(b + 16), read_u32be(b + 20),
          b[24], b[25]);
    free(b);
    png_image image = {.version = PNG_IMAGE_VERSION};
    uint8_t *back = malloc((size_t)width * height * channels);
    int ok = png_image_begin_read_from_file(&image, path);
    image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    ok = ok && png_image_finish_read(&image, NULL, back, 0, NULL);
    CHECK(ok && memcmp(back, pixels, (size_t)width * height * channels) == 0,
          "'%s': pixels differ after decoding (%s)", path, image.message);
    png_image_free(&image);
    free(back);
}

static void test_png(void)
{
    uint8_t rgb[5 * 3 * 3], gray[7 * 4];
    for (size_t i = 0; i < sizeof rgb; i++)
        rgb[i] = (uint8_t)(i * 17);
    for (size_t i = 0; i < sizeof gray; i++)
        gray[i] = (uint8_t)(255 - i * 9);
    CHECK(png_write(tmp("rgb.png"), 5, 3, 3, rgb) == 0, "rgb: %s", err_message());
    check_png(tmp("rgb.png"), 5, 3, 3, rgb);
    CHECK(png_write(tmp("gray.png"), 7, 4, 1, gray) == 0, "gray: %s", err_message());
    check_png(tmp("gray.png"), 7, 4, 1, gray);
    CHECK(tmp_files_of(tmp("rgb.png")) == 0, "temporary file left behind");
    CHECK_ERR(png_write(tmp("two.png"), 2, 2, 2, gray), tmp("two.png"), "2 channels");
    CHECK_ERR(png_write(tmp("wide.png"), 2000000, 1, 1, gray), tmp("wide.png"), "libpng: ");
    CHECK(!file_exists(tmp("wide.png")) && tmp_files_of(tmp("wide.png")) == 0,
          "failed PNG left a file");
    CHECK_ERR(png_write(tmp("no/dir.png"), 2, 2, 1, gray), tmp("no/dir.png"),
              "No such file or directory");
}

// A write cut short by the file-size limit: the error names the file and the reason, the
// temporary file is gone and the previous version is intact.
static void test_atomic_failure(void)
{
    const char *path = tmp("big.npy");
    uint8_t old = 42;
    npy_write(path, NPY_U8, 0, NULL, &old);
    size_t count = 1 << 20;
    uint8_t *data = calloc(count, 1);
    struct rlimit saved, small;
    getrlimit(RLIMIT_FSIZE, &saved);
    small = saved;
    small.rlim_cur = 65536;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &small);
    CHECK_ERR(npy_write(path, NPY_U8, 1, (int64_t[]){(int64_t)count}, data), path,
              "File too large");
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_DFL);
    CHECK(tmp_files_of(tmp("big.npy")) == 0, "temporary file survived a failed write");
    struct npy_array a;
    CHECK(npy_read(path, &a) == 0 && a.ndim == 0 && ((uint8_t *)a.data)[0] == 42,
          "previous file damaged: %s", err_message());
    npy_free(&a);
    free(data);
    CHECK(atomic_write_file(tmp("plain.bin"), "abc", 3) == 0, "atomic_write_file: %s",
          err_message());
    size_t n;
    uint8_t *b = read_bytes(tmp("plain.bin"), &n);
    CHECK(b && n == 3 && memcmp(b, "abc", 3) == 0, "atomic_write_file content");
    free(b);
    CHECK_ERR(atomic_write_file(tmp("nodir/x.bin"), "abc", 3), tmp("nodir/x.bin"),
              "No such file or directory");
}

static void remove_tmp_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
}

// Two writers of one path each write their own temporary file (neither sees the other's bytes);
// the last rename wins whole. A writer killed mid-write leaves its file, which the next writer of
// that path on this host removes.
static void test_atomic_two_writers(void)
{
    const char *path = tmp("two.bin");
    struct atomic_file a, b;
    CHECK(atomic_open(&a, path) == 0 && atomic_open(&b, path) == 0, "two opens: %s", err_message());
    CHECK(strcmp(a.tmp_path, b.tmp_path) != 0 && tmp_files_of(path) == 2, "shared temporary file '%s'", a.tmp_path);
    CHECK(atomic_write(&a, "first", 5) == 0 && atomic_write(&b, "second", 6) == 0, "writes");
    CHECK(atomic_commit(&a) == 0 && atomic_commit(&b) == 0, "commits: %s", err_message());
    char text[16] = "";
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    CHECK(n == 6 && !memcmp(text, "second", 6) && tmp_files_of(path) == 0, "two writers left '%.*s'", (int)n, text);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct atomic_file k;
        if (atomic_open(&k, path) == 0 && atomic_write(&k, "half", 4) == 0) fflush(k.fp);
        raise(SIGKILL);
        _exit(1);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && tmp_files_of(path) == 1, "the killed writer left %d temporary files", tmp_files_of(path));
    CHECK(atomic_write_file(path, "third", 5) == 0 && tmp_files_of(path) == 0,
          "a dead writer's temporary file survived the next write (%d left)", tmp_files_of(path));
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/promoe_test_io_XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_idx_fashion();
    test_idx_errors();
    test_npy_roundtrip();
    test_npy_header_text();
    test_npy_handmade();
    test_npy_rejects();
    test_npz_stored();
    test_npz_deflated();
    test_st_roundtrip();
    test_st_rejects();
    test_png();
    test_atomic_failure();
    test_atomic_two_writers();
    if (!getenv("KEEP_TMP"))
        remove_tmp_dir();
    else
        fprintf(stderr, "kept %s\n", tmp_dir);
    return test_summary("test_io");
}
