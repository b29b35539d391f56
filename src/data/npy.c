// NumPy .npy arrays: reads format versions 1.0, 2.0 and 3.0 (the header is a Python dict literal,
// parsed properly because numpy pads it differently across versions), writes 1.0 atomically with the
// header padded to a multiple of 64 bytes as numpy.lib.format does. Only little-endian, C-order
// f4/f8/i8/i4/u1 arrays are accepted; anything else is an error naming the file.
#include "data/npy.h"
#include "data/npy_internal.h"

#include "core/error.h"
#include "io/atomic.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum {
    NPY_MAX_DIMS = 8,
    NPY_ALIGN = 64,              // numpy's ARRAY_ALIGN
    NPY_HEADER_LIMIT = 1 << 20,  // longest header dict accepted; numpy itself stops at 10000
    NPY_SHAPE_TEXT = 8 * 24 + 8,
};
static const char NPY_MAGIC[6] = "\x93NUMPY";
static const char *const DESCR[] = {[NPY_F32] = "<f4", [NPY_F64] = "<f8", [NPY_I64] = "<i8",
                                    [NPY_I32] = "<i4", [NPY_U8] = "|u1"};
static const size_t DTYPE_SIZE[] = {[NPY_F32] = 4, [NPY_F64] = 8, [NPY_I64] = 8, [NPY_I32] = 4,
                                    [NPY_U8] = 1};

size_t npy_dtype_size(enum npy_dtype dtype)
{
    return (unsigned)dtype <= NPY_U8 ? DTYPE_SIZE[dtype] : 0;
}

// "(2, 3)", "(5,)" or "()" as Python prints a tuple.
static const char *shape_text(char buf[NPY_SHAPE_TEXT], int ndim, const int64_t *shape)
{
    size_t n = 0;
    buf[n++] = '(';
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf(buf + n, NPY_SHAPE_TEXT - n, i ? ", %lld" : "%lld",
                              (long long)shape[i]);
    snprintf(buf + n, NPY_SHAPE_TEXT - n, ndim == 1 ? ",)" : ")");
    return buf;
}

// Element count and byte size of a shape, or -1 with the error set when negative or too large.
static int shape_size(const char *label, enum npy_dtype dtype, int ndim, const int64_t *shape,
                      int64_t *count, int64_t *nbytes)
{
    if (ndim < 0 || ndim > NPY_MAX_DIMS)
        return err("%s: %d dimensions (at most %d are supported)", label, ndim, NPY_MAX_DIMS);
    int64_t c = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return err("%s: negative dimension %lld", label, (long long)shape[i]);
        if (__builtin_mul_overflow(c, shape[i], &c))
            return err("%s: shape is too large", label);
    }
    if (__builtin_mul_overflow(c, (int64_t)npy_dtype_size(dtype), nbytes))
        return err("%s: shape is too large", label);
    *count = c;
    return 0;
}

// ---- header dict parsing: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } ----

struct cursor {
    const char *p, *end, *label;
};

static void skip_space(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int malformed(struct cursor *c, const char *expected)
{
    return err("%s: malformed header: expected %s at '%.20s'", c->label, expected,
               c->p < c->end ? c->p : "(end)");
}

static int expect_char(struct cursor *c, char ch)
{
    skip_space(c);
    if (c->p >= c->end || *c->p != ch) {
        char what[4] = {'\'', ch, '\'', 0};
        return malformed(c, what);
    }
    c->p++;
    return 0;
}

static int parse_string(struct cursor *c, char *out, size_t cap)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return malformed(c, "a quoted string");
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (n + 1 >= cap)
            return err("%s: malformed header: string too long", c->label);
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return malformed(c, "a closing quote");
    c->p++;
    out[n] = '\0';
    return 0;
}

static int parse_bool(struct cursor *c, int *value)
{
    skip_space(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        *value = 1, c->p += 4;
        return 0;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        *value = 0, c->p += 5;
        return 0;
    }
    return malformed(c, "True or False");
}

static int parse_int(struct cursor *c, int64_t *value)
{
    skip_space(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return malformed(c, "a non-negative integer");
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (v > (INT64_MAX - 9) / 10)
            return err("%s: dimension too large in header", c->label);
        v = v * 10 + (*c->p++ - '0');
    }
    if (c->p < c->end && *c->p == 'L')  // Python 2 long literal
        c->p++;
    *value = v;
    return 0;
}

// "()", "(N,)", "(N, M)", "(N, M,)" with any spacing.
static int parse_shape(struct cursor *c, struct npy_array *out)
{
    if (expect_char(c, '(') != 0)
        return -1;
    out->ndim = 0;
    for (;;) {
        skip_space(c);
        if (c->p < c->end && *c->p == ')')
            break;
        if (out->ndim == NPY_MAX_DIMS)
            return err("%s: more than %d dimensions are not supported", c->label, NPY_MAX_DIMS);
        if (parse_int(c, &out->shape[out->ndim++]) != 0)
            return -1;
        skip_space(c);
        if (c->p < c->end && *c->p == ',')
            c->p++;
        else if (c->p < c->end && *c->p == ')')
            break;
        else
            return malformed(c, "',' or ')' in shape");
    }
    c->p++;
    return 0;
}

static int parse_descr(struct cursor *c, enum npy_dtype *dtype)
{
    skip_space(c);
    if (c->p < c->end && *c->p == '[')
        return err("%s: unsupported dtype: structured arrays are not supported", c->label);
    char descr[32];
    if (parse_string(c, descr, sizeof descr) != 0)
        return -1;
    for (int d = 0; d <= NPY_U8; d++)
        if (strcmp(descr, DESCR[d]) == 0) {
            *dtype = (enum npy_dtype)d;
            return 0;
        }
    if (strcmp(descr, "<u1") == 0) {
        *dtype = NPY_U8;
        return 0;
    }
    if (descr[0] == '>')
        return err("%s: big-endian dtype '%s' is not supported (only little-endian)", c->label,
                   descr);
    return err("%s: unsupported dtype '%s' (supported: <f4 <f8 <i8 <i4 |u1)", c->label, descr);
}

// One "key: value" pair; seen[] records which of descr, fortran_order, shape appeared.
static int parse_entry(struct cursor *c, struct npy_array *out, int seen[3])
{
    char key[32];
    int fortran = 0;
    if (parse_string(c, key, sizeof key) != 0 || expect_char(c, ':') != 0)
        return -1;
    if (strcmp(key, "descr") == 0 && !seen[0]) {
        seen[0] = 1;
        return parse_descr(c, &out->dtype);
    }
    if (strcmp(key, "fortran_order") == 0 && !seen[1]) {
        seen[1] = 1;
        if (parse_bool(c, &fortran) != 0)
            return -1;
        if (fortran)
            return err("%s: fortran_order True is not supported (only C order)", c->label);
        return 0;
    }
    if (strcmp(key, "shape") == 0 && !seen[2]) {
        seen[2] = 1;
        return parse_shape(c, out);
    }
    return err("%s: malformed header: unexpected or repeated key '%s'", c->label, key);
}

static int parse_dict(const char *label, const char *text, size_t len, struct npy_array *out)
{
    struct cursor c = {text, text + len, label};
    int seen[3] = {0, 0, 0};
    if (expect_char(&c, '{') != 0)
        return -1;
    for (;;) {
        skip_space(&c);
        if (c.p < c.end && *c.p == '}')
            break;
        if (parse_entry(&c, out, seen) != 0)
            return -1;
        skip_space(&c);
        if (c.p < c.end && *c.p == ',')
            c.p++;
        else if (c.p >= c.end || *c.p != '}')
            return malformed(&c, "',' or '}'");
    }
    c.p++;
    skip_space(&c);
    if (c.p != c.end)
        return malformed(&c, "the end of the header");
    if (!seen[0] || !seen[1] || !seen[2])
        return err("%s: malformed header: missing key '%s'", label,
                   !seen[0] ? "descr" : !seen[1] ? "fortran_order" : "shape");
    return 0;
}

// ---- reading ----

static int read_exact(const char *label, FILE *fp, void *buf, size_t n, uint32_t *crc)
{
    if (fread(buf, 1, n, fp) != n)
        return ferror(fp) ? err("cannot read %s: %s", label, strerror(errno))
                          : err("%s: truncated: unexpected end of file", label);
    if (crc)
        *crc = (uint32_t)crc32_z(*crc, buf, n);
    return 0;
}

// Magic, version and header length; leaves fp at the start of the dict.
static int read_prefix(const char *label, FILE *fp, uint64_t avail, uint32_t *crc,
                       uint64_t *dict_len, uint64_t *prefix_len)
{
    uint8_t b[12];
    if (avail < 10)
        return err("%s: truncated: %llu bytes, too short for an .npy header", label,
                   (unsigned long long)avail);
    if (read_exact(label, fp, b, 10, crc) != 0)
        return -1;
    if (memcmp(b, NPY_MAGIC, 6) != 0)
        return err("%s: bad magic: not an .npy file", label);
    if (b[6] == 1) {
        *prefix_len = 10;
        *dict_len = b[8] | (uint64_t)b[9] << 8;
    } else if (b[6] == 2 || b[6] == 3) {
        if (avail < 12 || read_exact(label, fp, b + 10, 2, crc) != 0)
            return err("%s: truncated: too short for an .npy header", label);
        *prefix_len = 12;
        *dict_len = b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
    } else {
        return err("%s: unsupported .npy format version %d.%d", label, b[6], b[7]);
    }
    if (*dict_len > NPY_HEADER_LIMIT)
        return err("%s: header length %llu is too large", label, (unsigned long long)*dict_len);
    if (*prefix_len + *dict_len > avail)
        return err("%s: truncated: header of %llu bytes, file has %llu", label,
                   (unsigned long long)(*prefix_len + *dict_len), (unsigned long long)avail);
    return 0;
}

// Reads the preamble and parses it into out (data stays NULL); *offset is where the data starts.
static int read_header(const char *label, FILE *fp, uint64_t avail, uint32_t *crc,
                       struct npy_array *out, uint64_t *offset, int64_t *nbytes)
{
    uint64_t dict_len = 0, prefix_len = 0;
    if (read_prefix(label, fp, avail, crc, &dict_len, &prefix_len) != 0)
        return -1;
    char *dict = malloc(dict_len + 1);
    if (!dict)
        return err("%s: out of memory", label);
    dict[dict_len] = '\0';  // messages quote from it with %.20s
    int rc = read_exact(label, fp, dict, dict_len, crc);
    if (rc == 0)
        rc = parse_dict(label, dict, dict_len, out);
    free(dict);
    if (rc == 0)
        rc = shape_size(label, out->dtype, out->ndim, out->shape, &out->count, nbytes);
    *offset = prefix_len + dict_len;
    return rc;
}

// Feeds the bytes after the array into the CRC so a member's checksum covers all of it.
static int consume_rest(const char *label, FILE *fp, uint64_t left, uint32_t *crc)
{
    uint8_t buf[65536];
    while (left) {
        size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
        if (read_exact(label, fp, buf, n, crc) != 0)
            return -1;
        left -= n;
    }
    return 0;
}

int npy_read_stream(const char *label, FILE *fp, uint64_t avail, uint32_t *crc,
                    struct npy_array *out)
{
    memset(out, 0, sizeof *out);
    uint64_t offset = 0;
    int64_t nbytes = 0;
    if (read_header(label, fp, avail, crc, out, &offset, &nbytes) != 0)
        return -1;
    if ((uint64_t)nbytes > avail - offset) {
        char s[NPY_SHAPE_TEXT];
        return err("%s: truncated: shape %s of '%s' needs %lld bytes of data, found %llu", label,
                   shape_text(s, out->ndim, out->shape), DESCR[out->dtype], (long long)nbytes,
                   (unsigned long long)(avail - offset));
    }
    out->data = malloc(nbytes ? (size_t)nbytes : 1);
    if (!out->data)
        return err("%s: out of memory for %lld bytes", label, (long long)nbytes);
    if (read_exact(label, fp, out->data, (size_t)nbytes, crc) != 0 ||
        (crc && consume_rest(label, fp, avail - offset - (uint64_t)nbytes, crc) != 0)) {
        npy_free(out);
        return -1;
    }
    return 0;
}

static FILE *open_sized(const char *path, uint64_t *size)
{
    FILE *fp = fopen(path, "rb");
    struct stat st;
    if (!fp) {
        err("cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(fp), &st) != 0) {
        err("cannot read '%s': %s", path, strerror(errno));
        fclose(fp);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        err("cannot read '%s': not a regular file", path);
        fclose(fp);
        return NULL;
    }
    *size = (uint64_t)st.st_size;
    return fp;
}

int npy_read(const char *path, struct npy_array *out)
{
    memset(out, 0, sizeof *out);
    uint64_t size = 0;
    FILE *fp = open_sized(path, &size);
    if (!fp)
        return -1;
    char label[4096];
    snprintf(label, sizeof label, "'%s'", path);
    int rc = npy_read_stream(label, fp, size, NULL, out);
    fclose(fp);
    return rc;
}

int npy_read_header(const char *path, struct npy_array *out, int64_t *data_offset)
{
    memset(out, 0, sizeof *out);
    uint64_t size = 0, offset = 0;
    int64_t nbytes = 0;
    FILE *fp = open_sized(path, &size);
    if (!fp)
        return -1;
    char label[4096];
    snprintf(label, sizeof label, "'%s'", path);
    int rc = read_header(label, fp, size, NULL, out, &offset, &nbytes);
    fclose(fp);
    if (rc == 0 && (uint64_t)nbytes > size - offset)
        return err("%s: truncated: needs %lld bytes of data, found %llu", label,
                   (long long)nbytes, (unsigned long long)(size - offset));
    *data_offset = (int64_t)offset;
    return rc;
}

// ---- conversions ----

float *npy_to_f32(const struct npy_array *a)
{
    float *out = malloc(a->count ? (size_t)a->count * sizeof *out : 1);
    if (!out) {
        err("out of memory converting %lld values to float", (long long)a->count);
        return NULL;
    }
    for (int64_t i = 0; i < a->count; i++) {
        switch (a->dtype) {
        case NPY_F32: out[i] = ((const float *)a->data)[i]; break;
        case NPY_F64: out[i] = (float)((const double *)a->data)[i]; break;
        case NPY_I64: out[i] = (float)((const int64_t *)a->data)[i]; break;
        case NPY_I32: out[i] = (float)((const int32_t *)a->data)[i]; break;
        case NPY_U8: out[i] = ((const uint8_t *)a->data)[i]; break;
        }
    }
    return out;
}

static double element_f64(const struct npy_array *a, int64_t i)
{
    return a->dtype == NPY_F32 ? ((const float *)a->data)[i] : ((const double *)a->data)[i];
}

// Floats convert only when they hold whole numbers (labels stored as floats); anything else
// would silently truncate.
int64_t *npy_to_i64(const struct npy_array *a)
{
    int64_t *out = malloc(a->count ? (size_t)a->count * sizeof *out : 1);
    if (!out) {
        err("out of memory converting %lld values to int64", (long long)a->count);
        return NULL;
    }
    for (int64_t i = 0; i < a->count; i++) {
        if (a->dtype == NPY_I64) {
            out[i] = ((const int64_t *)a->data)[i];
        } else if (a->dtype == NPY_I32) {
            out[i] = ((const int32_t *)a->data)[i];
        } else if (a->dtype == NPY_U8) {
            out[i] = ((const uint8_t *)a->data)[i];
        } else {
            double v = element_f64(a, i);
            if (!(fabs(v) < 0x1p63) || v != floor(v)) {
                free(out);
                err("element %lld (%g) is not an integer", (long long)i, v);
                return NULL;
            }
            out[i] = (int64_t)v;
        }
    }
    return out;
}

void npy_free(struct npy_array *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}

// ---- writing ----

size_t npy_preamble_encode(const char *label, char out[NPY_PREAMBLE_MAX], enum npy_dtype dtype,
                           int ndim, const int64_t *shape, int64_t *nbytes)
{
    int64_t count;
    if ((unsigned)dtype > NPY_U8) {
        err("%s: unknown dtype %d", label, (int)dtype);
        return 0;
    }
    if (shape_size(label, dtype, ndim, shape, &count, nbytes) != 0)
        return 0;
    char s[NPY_SHAPE_TEXT];
    int dict = snprintf(out + 10, NPY_PREAMBLE_MAX - 10,
                        "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", DESCR[dtype],
                        shape_text(s, ndim, shape));
    size_t total = 10 + (size_t)dict + 1;
    total += (NPY_ALIGN - total % NPY_ALIGN) % NPY_ALIGN;
    if (total > NPY_PREAMBLE_MAX)
        BUG("npy preamble of %zu bytes exceeds its buffer", total);
    memcpy(out, NPY_MAGIC, 6);
    out[6] = 1, out[7] = 0;
    out[8] = (char)((total - 10) & 0xff), out[9] = (char)((total - 10) >> 8);
    memset(out + 10 + dict, ' ', total - 10 - (size_t)dict - 1);
    out[total - 1] = '\n';
    return total;
}

int npy_write(const char *path, enum npy_dtype dtype, int ndim, const int64_t *shape,
              const void *data)
{
    char label[4096], preamble[NPY_PREAMBLE_MAX];
    snprintf(label, sizeof label, "cannot write '%s'", path);
    int64_t nbytes = 0;
    size_t len = npy_preamble_encode(label, preamble, dtype, ndim, shape, &nbytes);
    if (len == 0)
        return -1;
    struct atomic_file af;
    if (atomic_open(&af, path) != 0)
        return -1;
    if (atomic_write(&af, preamble, len) != 0 || atomic_write(&af, data, (size_t)nbytes) != 0) {
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af);
}
