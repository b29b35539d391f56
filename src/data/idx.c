// IDX reader for the MNIST family (Fashion-MNIST images and labels). zlib's gzread reads .gz and
// plain files alike. The format: two zero bytes, an element-type byte (only 0x08, unsigned byte, is
// used by these datasets), a dimension count, big-endian int32 sizes, then the data; the data length
// must equal the product of the sizes exactly, so a truncated download is reported, not half-used.
#include "data/idx.h"

#include "core/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { IDX_TYPE_UBYTE = 0x08, IDX_MAX_DIMS = 4, IDX_READ_CHUNK = 1 << 30, IDX_FIRST_BUFFER = 1 << 20 };
// Largest element count accepted (1 TiB): guards the allocation against a corrupt header.
static const int64_t IDX_MAX_COUNT = (int64_t)1 << 40;

// Reads up to n bytes; returns the count read (short only at end of data) or -1 with the error set.
static int64_t gz_read_all(gzFile gz, const char *path, uint8_t *buf, int64_t n)
{
    int64_t got = 0;
    while (got < n) {
        int64_t want = n - got < IDX_READ_CHUNK ? n - got : IDX_READ_CHUNK;
        int r = gzread(gz, buf + got, (unsigned)want);
        if (r < 0) {
            int code;
            const char *msg = gzerror(gz, &code);
            return err("cannot read '%s': %s", path, code == Z_ERRNO ? strerror(errno) : msg);
        }
        if (r == 0)
            break;
        got += r;
    }
    return got;
}

static int parse_magic(const char *path, const uint8_t magic[4], int64_t got, int *ndim)
{
    if (got < 4)
        return err("'%s': truncated: %lld bytes, too short for an IDX header", path, (long long)got);
    if (magic[0] != 0 || magic[1] != 0)
        return err("'%s': bad magic %02x %02x %02x %02x: not an IDX file", path, magic[0],
                   magic[1], magic[2], magic[3]);
    if (magic[2] != IDX_TYPE_UBYTE)
        return err("'%s': unsupported element type 0x%02x (only unsigned byte 0x08)", path,
                   magic[2]);
    if (magic[3] < 1 || magic[3] > IDX_MAX_DIMS)
        return err("'%s': unsupported number of dimensions %d (1 to %d)", path, magic[3],
                   IDX_MAX_DIMS);
    *ndim = magic[3];
    return 0;
}

static int parse_dims(gzFile gz, const char *path, struct idx_array *out)
{
    uint8_t raw[IDX_MAX_DIMS * 4];
    int64_t want = 4 * out->ndim, got = gz_read_all(gz, path, raw, want);
    if (got < 0)
        return -1;
    if (got < want)
        return err("'%s': truncated header: %d dimensions need %lld bytes, found %lld", path,
                   out->ndim, (long long)want, (long long)got);
    out->count = 1;
    for (int i = 0; i < out->ndim; i++) {
        const uint8_t *b = raw + 4 * i;
        uint32_t d = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (d > INT32_MAX)
            return err("'%s': dimension %d is negative (%d)", path, i, (int)(int32_t)d);
        out->dims[i] = d;
        if (d && out->count > IDX_MAX_COUNT / (int64_t)d)
            return err("'%s': dimensions are implausibly large", path);
        out->count *= d;
    }
    return 0;
}

// Reads up to count bytes into a buffer that grows (doubling) as data arrives, so a header that
// claims more than the file holds costs at most twice the data actually there, not the claim.
static int64_t read_growing(gzFile gz, const char *path, struct idx_array *out)
{
    int64_t capacity = 0, got = 0;
    do {
        int64_t next = capacity ? 2 * capacity : IDX_FIRST_BUFFER;
        capacity = next < out->count ? next : out->count;
        uint8_t *grown = realloc(out->data, capacity ? (size_t)capacity : 1);
        if (!grown)
            return err("'%s': out of memory for %lld bytes", path, (long long)capacity);
        out->data = grown;
        int64_t r = gz_read_all(gz, path, out->data + got, capacity - got);
        if (r < 0)
            return -1;
        got += r;
    } while (got == capacity && got < out->count);
    return got;
}

// Reads exactly count bytes and makes sure nothing follows them.
static int read_data(gzFile gz, const char *path, struct idx_array *out)
{
    int64_t got = read_growing(gz, path, out);
    if (got < 0)
        return -1;
    if (got < out->count)
        return err("'%s': truncated: expected %lld bytes of data, found %lld", path,
                   (long long)out->count, (long long)got);
    uint8_t extra[4096];
    int64_t more = 0, r;
    while ((r = gz_read_all(gz, path, extra, sizeof extra)) > 0)
        more += r;
    if (r < 0)
        return -1;
    if (more)
        return err("'%s': sizes disagree with the header: expected %lld bytes of data, found %lld",
                   path, (long long)out->count, (long long)(out->count + more));
    return 0;
}

int idx_read(const char *path, struct idx_array *out)
{
    memset(out, 0, sizeof *out);
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return err("cannot open '%s': %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(gz, 1 << 20);
    uint8_t magic[4];
    int64_t got = gz_read_all(gz, path, magic, 4);
    int rc = got < 0 ? -1 : parse_magic(path, magic, got, &out->ndim);
    if (rc == 0)
        rc = parse_dims(gz, path, out);
    if (rc == 0)
        rc = read_data(gz, path, out);
    gzclose(gz);
    if (rc != 0)
        idx_free(out);
    return rc;
}

void idx_free(struct idx_array *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}
