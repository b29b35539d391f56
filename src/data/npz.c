// NumPy .npz archives: a ZIP file with one "NAME.npy" member per array. The writer stores members
// (method 0, like np.savez) with CRC-32 and switches to ZIP64 records when a member, an offset or
// the central directory passes 4 GiB (an ADM sample batch is 9.8 GB). The reader walks the central
// directory (ZIP64 included), takes the local extra length from the local header (numpy's
// force_zip64 puts an extra there only), and accepts stored and deflated (np.savez_compressed) members.
#include "data/npy.h"
#include "data/npy_internal.h"

#include "core/error.h"
#include "io/atomic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum {
    SIG_LOCAL = 0x04034b50,
    SIG_CENTRAL = 0x02014b50,
    SIG_END = 0x06054b50,
    SIG_END64 = 0x06064b50,
    SIG_LOCATOR64 = 0x07064b50,
    LOCAL_SIZE = 30,
    CENTRAL_SIZE = 46,
    END_SIZE = 22,
    END64_SIZE = 56,
    LOCATOR64_SIZE = 20,
    ZIP64_EXTRA_ID = 0x0001,
    VERSION_ZIP = 20,          // 2.0: deflate, directories
    VERSION_ZIP64 = 45,        // 4.5: ZIP64 records
    MADE_BY_UNIX = 3 << 8,
    DOS_DATE_1980 = 0x21,      // 1980-01-01, fixed so identical arrays give identical files
    FLAG_ENCRYPTED = 1,
    METHOD_STORED = 0,
    METHOD_DEFLATED = 8,
    MAX_COMMENT = 65535,
    LABEL_MAX = 4200,
};
static const uint64_t ZIP32_MAX = 0xFFFFFFFFu;  // also the "see the ZIP64 extra" marker
static const uint16_t ZIP16_MAX = 0xFFFF;
static const uint64_t CENTRAL_DIR_LIMIT = (uint64_t)1 << 30;
// Deflate cannot expand data more than about 1032 times; a larger claim is a corrupt directory.
static const uint64_t DEFLATE_MAX_RATIO = 1100;

static void put16(uint8_t *p, uint64_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint64_t v) { put16(p, v), put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, v), put32(p + 4, v >> 32); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

// ---- writing ----

struct zip_entry {
    char *name;           // "NAME.npy"
    uint32_t crc;
    uint64_t size;        // stored: compressed size == uncompressed size
    uint64_t offset;      // of the local header
    int zip64_size, zip64_offset;
};

struct zip_writer {
    struct atomic_file af;
    uint64_t pos;
    int force_zip64;
};

static int zw_write(struct zip_writer *w, const void *data, size_t n)
{
    if (atomic_write(&w->af, data, n) != 0)
        return -1;
    w->pos += n;
    return 0;
}

static int write_local_header(struct zip_writer *w, const struct zip_entry *e)
{
    uint8_t h[LOCAL_SIZE], extra[20];
    size_t name_len = strlen(e->name), extra_len = e->zip64_size ? sizeof extra : 0;
    put32(h, SIG_LOCAL);
    put16(h + 4, e->zip64_size ? VERSION_ZIP64 : VERSION_ZIP);
    put16(h + 6, 0);
    put16(h + 8, METHOD_STORED);
    put16(h + 10, 0);
    put16(h + 12, DOS_DATE_1980);
    put32(h + 14, e->crc);
    put32(h + 18, e->zip64_size ? ZIP32_MAX : e->size);
    put32(h + 22, e->zip64_size ? ZIP32_MAX : e->size);
    put16(h + 26, name_len);
    put16(h + 28, extra_len);
    put16(extra, ZIP64_EXTRA_ID);
    put16(extra + 2, 16);
    put64(extra + 4, e->size);  // uncompressed, then compressed
    put64(extra + 12, e->size);
    return zw_write(w, h, sizeof h) || zw_write(w, e->name, name_len) ||
                   zw_write(w, extra, extra_len)
               ? -1
               : 0;
}

// Writes one member: local header, .npy preamble, array bytes. The CRC is computed first so the
// file is written front to back without seeking.
static int write_member(struct zip_writer *w, const struct npz_member *m, struct zip_entry *e)
{
    char label[LABEL_MAX], preamble[NPY_PREAMBLE_MAX];
    snprintf(label, sizeof label, "cannot write '%s' member '%s'", w->af.path, e->name);
    int64_t nbytes;
    size_t len = npy_preamble_encode(label, preamble, m->dtype, m->ndim, m->shape, &nbytes);
    if (len == 0)
        return -1;
    e->crc = (uint32_t)crc32_z(crc32_z(0, (const Bytef *)preamble, len), m->data, (size_t)nbytes);
    e->size = len + (uint64_t)nbytes;
    e->offset = w->pos;
    e->zip64_size = w->force_zip64 || e->size >= ZIP32_MAX;
    e->zip64_offset = w->force_zip64 || e->offset >= ZIP32_MAX;
    if (write_local_header(w, e) != 0 || zw_write(w, preamble, len) != 0)
        return -1;
    return zw_write(w, m->data, (size_t)nbytes);
}

static int write_central_header(struct zip_writer *w, const struct zip_entry *e)
{
    uint8_t h[CENTRAL_SIZE], extra[28];
    size_t name_len = strlen(e->name), extra_len = 0;
    int zip64 = e->zip64_size || e->zip64_offset;
    put16(extra, ZIP64_EXTRA_ID);
    if (e->zip64_size) {
        put64(extra + 4, e->size), put64(extra + 12, e->size);
        extra_len = 16;
    }
    if (e->zip64_offset) {
        put64(extra + 4 + extra_len, e->offset);
        extra_len += 8;
    }
    put16(extra + 2, extra_len);
    extra_len = extra_len ? extra_len + 4 : 0;
    put32(h, SIG_CENTRAL);
    put16(h + 4, MADE_BY_UNIX | VERSION_ZIP64);
    put16(h + 6, zip64 ? VERSION_ZIP64 : VERSION_ZIP);
    put16(h + 8, 0), put16(h + 10, METHOD_STORED);
    put16(h + 12, 0), put16(h + 14, DOS_DATE_1980);
    put32(h + 16, e->crc);
    put32(h + 20, e->zip64_size ? ZIP32_MAX : e->size);
    put32(h + 24, e->zip64_size ? ZIP32_MAX : e->size);
    put16(h + 28, name_len), put16(h + 30, extra_len), put16(h + 32, 0);
    put16(h + 34, 0), put16(h + 36, 0);
    put32(h + 38, (uint64_t)(S_IFREG | 0644) << 16);
    put32(h + 42, e->zip64_offset ? ZIP32_MAX : e->offset);
    return zw_write(w, h, sizeof h) || zw_write(w, e->name, name_len) ||
                   zw_write(w, extra, extra_len)
               ? -1
               : 0;
}

static int write_end_records(struct zip_writer *w, uint64_t n, uint64_t cd_offset, uint64_t cd_size)
{
    int zip64 = w->force_zip64 || n >= ZIP16_MAX || cd_offset >= ZIP32_MAX || cd_size >= ZIP32_MAX;
    uint8_t end64[END64_SIZE], locator[LOCATOR64_SIZE], end[END_SIZE];
    if (zip64) {
        put32(end64, SIG_END64);
        put64(end64 + 4, END64_SIZE - 12);
        put16(end64 + 12, MADE_BY_UNIX | VERSION_ZIP64), put16(end64 + 14, VERSION_ZIP64);
        put32(end64 + 16, 0), put32(end64 + 20, 0);
        put64(end64 + 24, n), put64(end64 + 32, n);
        put64(end64 + 40, cd_size), put64(end64 + 48, cd_offset);
        put32(locator, SIG_LOCATOR64);
        put32(locator + 4, 0), put64(locator + 8, w->pos), put32(locator + 16, 1);
        if (zw_write(w, end64, sizeof end64) != 0 || zw_write(w, locator, sizeof locator) != 0)
            return -1;
    }
    put32(end, SIG_END);
    put16(end + 4, 0), put16(end + 6, 0);
    put16(end + 8, zip64 ? ZIP16_MAX : n), put16(end + 10, zip64 ? ZIP16_MAX : n);
    put32(end + 12, zip64 ? ZIP32_MAX : cd_size);
    put32(end + 16, zip64 ? ZIP32_MAX : cd_offset);
    put16(end + 20, 0);
    return zw_write(w, end, sizeof end);
}

static int name_entries(const char *path, const struct npz_member *members, int n,
                        struct zip_entry *entries)
{
    for (int i = 0; i < n; i++) {
        const char *name = members[i].name;
        if (!name || !*name || strlen(name) > ZIP16_MAX - 4)
            return err("cannot write '%s': member %d has an empty or too long name", path, i);
        for (int j = 0; j < i; j++)
            if (strcmp(members[j].name, name) == 0)
                return err("cannot write '%s': member name '%s' appears twice", path, name);
        entries[i].name = malloc(strlen(name) + 5);
        if (!entries[i].name)
            return err("cannot write '%s': out of memory", path);
        strcpy(entries[i].name, name);
        strcat(entries[i].name, ".npy");
    }
    return 0;
}

static int write_archive(struct zip_writer *w, const struct npz_member *members, int n,
                         struct zip_entry *entries)
{
    for (int i = 0; i < n; i++)
        if (write_member(w, &members[i], &entries[i]) != 0)
            return -1;
    uint64_t cd_offset = w->pos;
    for (int i = 0; i < n; i++)
        if (write_central_header(w, &entries[i]) != 0)
            return -1;
    return write_end_records(w, (uint64_t)n, cd_offset, w->pos - cd_offset);
}

static int npz_write_impl(const char *path, const struct npz_member *members, int n_members,
                          int force_zip64)
{
    if (n_members < 0)
        return err("cannot write '%s': negative member count", path);
    struct zip_entry *entries = calloc(n_members ? (size_t)n_members : 1, sizeof *entries);
    if (!entries)
        return err("cannot write '%s': out of memory", path);
    struct zip_writer w = {.pos = 0, .force_zip64 = force_zip64};
    int rc = name_entries(path, members, n_members, entries);
    if (rc == 0 && (rc = atomic_open(&w.af, path)) == 0) {
        rc = write_archive(&w, members, n_members, entries);
        if (rc != 0)
            atomic_abort(&w.af);
        else
            rc = atomic_commit(&w.af);
    }
    for (int i = 0; i < n_members; i++)
        free(entries[i].name);
    free(entries);
    return rc;
}

int npz_write(const char *path, const struct npz_member *members, int n_members)
{
    return npz_write_impl(path, members, n_members, 0);
}

int npz_write_zip64(const char *path, const struct npz_member *members, int n_members)
{
    return npz_write_impl(path, members, n_members, 1);
}

// ---- reading ----

struct zip_reader {
    const char *path;
    FILE *fp;
    uint64_t size;
};

struct zip_member {
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, usize, offset;
};

static int read_at(const struct zip_reader *r, uint64_t offset, void *buf, size_t n)
{
    if (offset > r->size || n > r->size - offset)
        return err("'%s': truncated: a ZIP record at offset %llu runs past the end of the file",
                   r->path, (unsigned long long)offset);
    errno = 0;
    if (fseeko(r->fp, (off_t)offset, SEEK_SET) != 0 || fread(buf, 1, n, r->fp) != n)
        return err("cannot read '%s': %s", r->path, strerror(errno ? errno : EIO));
    return 0;
}

// The ZIP64 end record, found through the locator just before the classic end record.
static int read_end64(const struct zip_reader *r, uint64_t end_pos, uint64_t *n,
                      uint64_t *cd_offset, uint64_t *cd_size)
{
    uint8_t loc[LOCATOR64_SIZE], rec[END64_SIZE];
    if (end_pos < LOCATOR64_SIZE || read_at(r, end_pos - LOCATOR64_SIZE, loc, sizeof loc) != 0 ||
        get32(loc) != SIG_LOCATOR64)
        return err("'%s': corrupt ZIP: ZIP64 end locator missing", r->path);
    if (read_at(r, get64(loc + 8), rec, sizeof rec) != 0 || get32(rec) != SIG_END64)
        return err("'%s': corrupt ZIP: ZIP64 end record missing", r->path);
    *n = get64(rec + 32);
    *cd_size = get64(rec + 40);
    *cd_offset = get64(rec + 48);
    return 0;
}

static int find_end(const struct zip_reader *r, uint64_t *n, uint64_t *cd_offset,
                    uint64_t *cd_size)
{
    size_t tail = r->size < END_SIZE + MAX_COMMENT ? (size_t)r->size : END_SIZE + MAX_COMMENT;
    if (tail < END_SIZE)
        return err("'%s': not a ZIP archive (%zu bytes)", r->path, tail);
    uint8_t *buf = malloc(tail);
    if (!buf)
        return err("'%s': out of memory", r->path);
    int rc = read_at(r, r->size - tail, buf, tail);
    size_t i = tail - END_SIZE + 1;
    while (rc == 0 && i-- > 0)
        if (get32(buf + i) == SIG_END && i + END_SIZE + get16(buf + i + 20) <= tail)
            break;
    if (rc == 0 && i == (size_t)-1)
        rc = err("'%s': not a ZIP archive (no end of central directory record)", r->path);
    if (rc == 0) {
        const uint8_t *e = buf + i;
        *n = get16(e + 10), *cd_size = get32(e + 12), *cd_offset = get32(e + 16);
        if (*n == ZIP16_MAX || *cd_size == ZIP32_MAX || *cd_offset == ZIP32_MAX)
            rc = read_end64(r, r->size - tail + i, n, cd_offset, cd_size);
    }
    free(buf);
    if (rc == 0 && (*cd_offset > r->size || *cd_size > r->size - *cd_offset))
        rc = err("'%s': truncated: central directory runs past the end of the file", r->path);
    return rc;
}

// Values the 32-bit fields mark 0xFFFFFFFF come, in this order, from the ZIP64 extra field.
static int apply_zip64_extra(const char *path, const uint8_t *extra, size_t len,
                             struct zip_member *m)
{
    while (len >= 4) {
        uint16_t id = get16(extra), size = get16(extra + 2);
        if ((size_t)size + 4 > len)
            break;
        if (id == ZIP64_EXTRA_ID) {
            uint64_t *fields[3] = {&m->usize, &m->csize, &m->offset};
            size_t at = 4;
            for (int f = 0; f < 3; f++) {
                if (*fields[f] != ZIP32_MAX)
                    continue;
                if (at + 8 > (size_t)size + 4)
                    return err("'%s': corrupt ZIP: ZIP64 extra field too short", path);
                *fields[f] = get64(extra + at);
                at += 8;
            }
        }
        extra += size + 4, len -= size + 4u;
    }
    return 0;
}

// Appends a member name to the list quoted when the wanted one is missing.
static void list_name(char *list, size_t cap, const uint8_t *name, size_t len)
{
    size_t used = strlen(list);
    if (used + len + 8 >= cap) {
        if (used + 4 < cap && !strstr(list, "..."))
            strcat(list, " ...");
        return;
    }
    snprintf(list + used, cap - used, "%s%.*s", used ? ", " : "", (int)len, (const char *)name);
}

static int scan_central(const struct zip_reader *r, const uint8_t *cd, uint64_t cd_size,
                        uint64_t n, const char *want, struct zip_member *m)
{
    char names[512] = "";
    uint64_t at = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *h = cd + at;
        if (at + CENTRAL_SIZE > cd_size || get32(h) != SIG_CENTRAL)
            return err("'%s': corrupt ZIP: bad central directory entry %llu", r->path,
                       (unsigned long long)i);
        size_t name_len = get16(h + 28), extra_len = get16(h + 30), comment_len = get16(h + 32);
        if (at + CENTRAL_SIZE + name_len + extra_len + comment_len > cd_size)
            return err("'%s': corrupt ZIP: central directory entry %llu overruns", r->path,
                       (unsigned long long)i);
        const uint8_t *name = h + CENTRAL_SIZE;
        if (name_len == strlen(want) && memcmp(name, want, name_len) == 0) {
            *m = (struct zip_member){get16(h + 8), get16(h + 10), get32(h + 16), get32(h + 20),
                                     get32(h + 24), get32(h + 42)};
            return apply_zip64_extra(r->path, name + name_len, extra_len, m);
        }
        list_name(names, sizeof names, name, name_len);
        at += CENTRAL_SIZE + name_len + extra_len + comment_len;
    }
    return err("'%s': no member '%s' (members: %s)", r->path, want, *names ? names : "none");
}

static int find_member(const struct zip_reader *r, const char *want, struct zip_member *m)
{
    uint64_t n = 0, cd_offset = 0, cd_size = 0;
    if (find_end(r, &n, &cd_offset, &cd_size) != 0)
        return -1;
    if (cd_size > CENTRAL_DIR_LIMIT)
        return err("'%s': central directory of %llu bytes is too large", r->path,
                   (unsigned long long)cd_size);
    uint8_t *cd = malloc(cd_size ? (size_t)cd_size : 1);
    if (!cd)
        return err("'%s': out of memory", r->path);
    int rc = read_at(r, cd_offset, cd, (size_t)cd_size);
    if (rc == 0)
        rc = scan_central(r, cd, cd_size, n, want, m);
    free(cd);
    return rc;
}

// The local header's own name and extra lengths decide where the data starts.
static int member_data_start(const struct zip_reader *r, const char *label,
                             const struct zip_member *m, uint64_t *start)
{
    uint8_t h[LOCAL_SIZE];
    if (read_at(r, m->offset, h, sizeof h) != 0)
        return -1;
    if (get32(h) != SIG_LOCAL)
        return err("%s: corrupt ZIP: bad local header", label);
    if (m->flags & FLAG_ENCRYPTED)
        return err("%s: encrypted members are not supported", label);
    if (m->method != METHOD_STORED && m->method != METHOD_DEFLATED)
        return err("%s: compression method %d is not supported (only stored and deflated)",
                   label, m->method);
    *start = m->offset + LOCAL_SIZE + get16(h + 26) + get16(h + 28);
    if (*start > r->size || m->csize > r->size - *start)
        return err("%s: truncated: member of %llu bytes runs past the end of the file", label,
                   (unsigned long long)m->csize);
    return 0;
}

static int check_crc(const char *label, uint32_t got, uint32_t want)
{
    if (got != want)
        return err("%s: checksum mismatch: member is corrupt (crc32 %08x, directory says %08x)",
                   label, got, want);
    return 0;
}

static int read_stored(const struct zip_reader *r, const char *label, const struct zip_member *m,
                       struct npy_array *out)
{
    uint32_t crc = 0;
    if (m->csize != m->usize)
        return err("%s: corrupt ZIP: stored member sizes differ", label);
    if (npy_read_stream(label, r->fp, m->csize, &crc, out) != 0)
        return -1;
    if (check_crc(label, crc, m->crc) != 0) {
        npy_free(out);
        return -1;
    }
    return 0;
}

static uInt chunk(uint64_t left) { return left > UINT32_MAX ? UINT32_MAX : (uInt)left; }

// Raw deflate (no zlib header: windowBits -15), in chunks since zlib counts in 32 bits.
static int inflate_raw(const char *label, const uint8_t *in, uint64_t in_len, uint8_t *out,
                       uint64_t out_len)
{
    z_stream zs = {0};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
        return err("%s: cannot initialise zlib", label);
    zs.next_in = (Bytef *)in;
    zs.next_out = out;
    uint64_t in_left = in_len, out_left = out_len;
    int zr;
    do {
        uInt give = chunk(in_left), room = chunk(out_left);
        zs.avail_in = give, zs.avail_out = room;
        zr = inflate(&zs, Z_NO_FLUSH);
        in_left -= give - zs.avail_in, out_left -= room - zs.avail_out;
    } while (zr == Z_OK);
    const char *why = zr == Z_STREAM_END ? "size differs from the directory"
                      : zs.msg           ? zs.msg
                                         : "unexpected end of data";
    inflateEnd(&zs);
    if (zr != Z_STREAM_END || out_left != 0)
        return err("%s: corrupt deflate data: %s", label, why);
    return 0;
}

static int read_deflated(const struct zip_reader *r, const char *label,
                         const struct zip_member *m, struct npy_array *out)
{
    if (m->usize > m->csize * DEFLATE_MAX_RATIO + 1024)
        return err("%s: corrupt ZIP: implausible sizes %llu -> %llu", label,
                   (unsigned long long)m->csize, (unsigned long long)m->usize);
    uint8_t *packed = malloc(m->csize ? m->csize : 1), *plain = malloc(m->usize ? m->usize : 1);
    int rc = packed && plain ? 0 : err("%s: out of memory", label);
    if (rc == 0 && fread(packed, 1, m->csize, r->fp) != m->csize)
        rc = err("cannot read %s: %s", label, strerror(errno ? errno : EIO));
    if (rc == 0)
        rc = inflate_raw(label, packed, m->csize, plain, m->usize);
    if (rc == 0)
        rc = check_crc(label, (uint32_t)crc32_z(0, plain, m->usize), m->crc);
    FILE *mem = rc == 0 && m->usize ? fmemopen(plain, m->usize, "rb") : NULL;
    if (rc == 0 && !mem)
        rc = m->usize ? err("%s: %s", label, strerror(errno)) : err("%s: empty member", label);
    if (rc == 0)
        rc = npy_read_stream(label, mem, m->usize, NULL, out);
    if (mem)
        fclose(mem);
    free(packed);
    free(plain);
    return rc;
}

int npz_read(const char *path, const char *name, struct npy_array *out)
{
    memset(out, 0, sizeof *out);
    struct zip_reader r = {path, fopen(path, "rb"), 0};
    struct stat st;
    if (!r.fp)
        return err("cannot open '%s': %s", path, strerror(errno));
    if (fstat(fileno(r.fp), &st) != 0) {
        fclose(r.fp);
        return err("cannot read '%s': %s", path, strerror(errno));
    }
    r.size = (uint64_t)st.st_size;
    char want[LABEL_MAX], label[2 * LABEL_MAX];
    snprintf(want, sizeof want, "%s.npy", name);
    snprintf(label, sizeof label, "'%s' member '%s'", path, want);
    struct zip_member m = {0};
    uint64_t start = 0;
    int rc = find_member(&r, want, &m);
    if (rc == 0)
        rc = member_data_start(&r, label, &m, &start);
    if (rc == 0 && fseeko(r.fp, (off_t)start, SEEK_SET) != 0)
        rc = err("cannot read '%s': %s", path, strerror(errno));
    if (rc == 0)
        rc = m.method == METHOD_STORED ? read_stored(&r, label, &m, out)
                                       : read_deflated(&r, label, &m, out);
    fclose(r.fp);
    return rc;
}
