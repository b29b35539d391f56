// safetensors reader and writer (Hugging Face format; ECOSYSTEM.md 4.1). The writer lays tensors out
// in the caller's order, lists them in the JSON header sorted by name, pads the header with spaces to
// a multiple of 8 and adds metadata "format": "pt" and "promoe.crc32" (CRC-32 of the data section).
// The reader validates like the reference implementation: bounded header, known dtypes, offsets that
// tile the data section exactly, unique names; plus the CRC when present. Messages name the file.
#include "model/safetensors.h"

#include "core/error.h"
#include "io/atomic.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum { ST_MAX_DIMS = 8, ST_HEADER_ALIGN = 8, ST_LENGTH_BYTES = 8, ST_LABEL_MAX = 4200 };
static const uint64_t ST_HEADER_LIMIT = 100000000;  // the reference reader's MAX_HEADER_SIZE
static const double ST_MAX_INTEGER = 9007199254740992.0;  // 2^53: JSON numbers arrive as doubles
static const char ST_CRC_KEY[] = "promoe.crc32";
static const char ST_METADATA_KEY[] = "__metadata__";

struct st_dtype_info {
    const char *name;
    uint64_t size;
};
static const struct st_dtype_info ST_DTYPES[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};

static const struct st_dtype_info *dtype_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof ST_DTYPES / sizeof ST_DTYPES[0]; i++)
        if (strcmp(ST_DTYPES[i].name, name) == 0)
            return &ST_DTYPES[i];
    return NULL;
}

// Bytes of a tensor, or -1 with the error set (unknown dtype, bad rank or shape, overflow).
// `label` names the file in messages: "'PATH'" when reading, "cannot write 'PATH'" when writing.
static int tensor_nbytes(const char *label, const char *name, const char *dtype, int ndim,
                         const int64_t *shape, uint64_t *nbytes)
{
    const struct st_dtype_info *info = dtype_find(dtype);
    if (!info)
        return err("%s: tensor '%s': unknown dtype '%s'", label, name, dtype ? dtype : "(null)");
    if (ndim < 0 || ndim > ST_MAX_DIMS)
        return err("%s: tensor '%s': %d dimensions (at most %d)", label, name, ndim, ST_MAX_DIMS);
    uint64_t n = info->size;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || __builtin_mul_overflow(n, (uint64_t)shape[i], &n))
            return err("%s: tensor '%s': bad shape (dimension %d is %lld)", label, name, i,
                       (long long)shape[i]);
    *nbytes = n;
    return 0;
}

// ---- writing ----

static int compare_tensor_names(const void *a, const void *b)
{
    return strcmp((*(const struct st_tensor *const *)a)->name,
                  (*(const struct st_tensor *const *)b)->name);
}

// Offsets in the caller's order; names checked for emptiness and duplicates.
static int plan_layout(const char *path, const struct st_tensor *tensors, int n, uint64_t *begin,
                       const struct st_tensor **sorted, uint64_t *total)
{
    char label[ST_LABEL_MAX];
    snprintf(label, sizeof label, "cannot write '%s'", path);
    *total = 0;
    for (int i = 0; i < n; i++) {
        const char *name = tensors[i].name;
        uint64_t nbytes;
        if (!name || !*name || strcmp(name, ST_METADATA_KEY) == 0)
            return err("cannot write '%s': tensor %d has an empty or reserved name", path, i);
        if (tensor_nbytes(label, name, tensors[i].dtype, tensors[i].ndim, tensors[i].shape,
                          &nbytes) != 0)
            return -1;
        if (nbytes && !tensors[i].data)
            return err("cannot write '%s': tensor '%s' has no data", path, name);
        begin[i] = *total;
        *total += nbytes;
        sorted[i] = &tensors[i];
    }
    qsort(sorted, (size_t)n, sizeof *sorted, compare_tensor_names);
    for (int i = 1; i < n; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
            return err("cannot write '%s': tensor name '%s' appears twice", path, sorted[i]->name);
    return 0;
}

static uint32_t data_crc(const struct st_tensor *tensors, int n, const uint64_t *begin,
                         uint64_t total)
{
    uLong crc = crc32_z(0, NULL, 0);
    for (int i = 0; i < n; i++) {
        uint64_t end = i + 1 < n ? begin[i + 1] : total;
        crc = crc32_z(crc, tensors[i].data, (size_t)(end - begin[i]));
    }
    return (uint32_t)crc;
}

// Integers go in as raw JSON text: cJSON would print large doubles in exponent form.
static cJSON *json_integer(uint64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    return cJSON_CreateRaw(text);
}

static cJSON *tensor_json(const struct st_tensor *t, uint64_t begin, uint64_t end)
{
    cJSON *entry = cJSON_CreateObject(), *shape = cJSON_CreateArray(),
          *offsets = cJSON_CreateArray();
    int ok = entry && shape && offsets && cJSON_AddStringToObject(entry, "dtype", t->dtype);
    for (int d = 0; ok && d < t->ndim; d++)
        ok = cJSON_AddItemToArray(shape, json_integer((uint64_t)t->shape[d]));
    ok = ok && cJSON_AddItemToArray(offsets, json_integer(begin)) &&
         cJSON_AddItemToArray(offsets, json_integer(end));
    if (!ok) {
        cJSON_Delete(entry), cJSON_Delete(shape), cJSON_Delete(offsets);
        return NULL;
    }
    cJSON_AddItemToObject(entry, "shape", shape);
    cJSON_AddItemToObject(entry, "data_offsets", offsets);
    return entry;
}

// "format": "pt" unless the caller gives "format"; the caller's "promoe.crc32" is replaced by
// the checksum of the data actually written.
static cJSON *metadata_json(const char *path, const struct st_meta *meta, int n_meta, uint32_t crc)
{
    cJSON *obj = cJSON_CreateObject();
    int has_format = 0, ok = obj != NULL;
    for (int i = 0; ok && i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value || cJSON_GetObjectItemCaseSensitive(obj, meta[i].key)) {
            cJSON_Delete(obj);
            err("cannot write '%s': metadata entry %d is missing or repeated", path, i);
            return NULL;
        }
        has_format |= strcmp(meta[i].key, "format") == 0;
        if (strcmp(meta[i].key, ST_CRC_KEY) != 0)
            ok = cJSON_AddStringToObject(obj, meta[i].key, meta[i].value) != NULL;
    }
    char crc_text[16];
    snprintf(crc_text, sizeof crc_text, "%" PRIu32, crc);
    ok = ok && (has_format || cJSON_AddStringToObject(obj, "format", "pt")) &&
         cJSON_AddStringToObject(obj, ST_CRC_KEY, crc_text);
    if (!ok) {
        cJSON_Delete(obj);
        err("cannot write '%s': out of memory", path);
        return NULL;
    }
    return obj;
}

// The JSON header padded with spaces to a multiple of 8; caller frees.
static char *header_text(const char *path, const struct st_tensor *tensors,
                         const struct st_tensor **sorted, int n, const uint64_t *begin,
                         uint64_t total, cJSON *meta, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root && cJSON_AddItemToObject(root, ST_METADATA_KEY, meta);
    if (!ok)
        cJSON_Delete(meta);
    for (int s = 0; ok && s < n; s++) {
        int i = (int)(sorted[s] - tensors);
        uint64_t end = i + 1 < n ? begin[i + 1] : total;
        cJSON *entry = tensor_json(&tensors[i], begin[i], end);
        ok = entry && cJSON_AddItemToObject(root, tensors[i].name, entry);
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    size_t json_len = json ? strlen(json) : 0;
    *len = json_len + (ST_HEADER_ALIGN - json_len % ST_HEADER_ALIGN) % ST_HEADER_ALIGN;
    char *padded = json ? realloc(json, *len + 1) : NULL;
    if (!padded) {
        free(json);
        err("cannot write '%s': out of memory building the header", path);
        return NULL;
    }
    memset(padded + json_len, ' ', *len - json_len);
    padded[*len] = '\0';
    return padded;
}

static int write_file(const char *path, const char *header, size_t header_len,
                      const struct st_tensor *tensors, int n, const uint64_t *begin,
                      uint64_t total)
{
    uint8_t length[ST_LENGTH_BYTES];
    for (int b = 0; b < ST_LENGTH_BYTES; b++)
        length[b] = (uint8_t)((uint64_t)header_len >> (8 * b));
    struct atomic_file af;
    if (atomic_open(&af, path) != 0)
        return -1;
    int rc = atomic_write(&af, length, sizeof length) || atomic_write(&af, header, header_len);
    for (int i = 0; rc == 0 && i < n; i++) {
        uint64_t end = i + 1 < n ? begin[i + 1] : total;
        rc = atomic_write(&af, tensors[i].data, (size_t)(end - begin[i]));
    }
    if (rc != 0) {
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af);
}

int st_write(const char *path, const struct st_tensor *tensors, int n_tensors,
             const struct st_meta *meta, int n_meta, int64_t *bytes_out)
{
    if (n_tensors < 0 || n_meta < 0)
        return err("cannot write '%s': negative tensor or metadata count", path);
    size_t n = n_tensors ? (size_t)n_tensors : 1, header_len = 0;
    uint64_t *begin = malloc(n * sizeof *begin), total = 0;
    const struct st_tensor **sorted = malloc(n * sizeof *sorted);
    char *header = NULL;
    int rc = begin && sorted ? 0 : err("cannot write '%s': out of memory", path);
    if (rc == 0)
        rc = plan_layout(path, tensors, n_tensors, begin, sorted, &total);
    cJSON *meta_obj = NULL;
    if (rc == 0 && !(meta_obj = metadata_json(path, meta, n_meta,
                                              data_crc(tensors, n_tensors, begin, total))))
        rc = -1;
    if (rc == 0 && !(header = header_text(path, tensors, sorted, n_tensors, begin, total,
                                          meta_obj, &header_len)))
        rc = -1;
    if (rc == 0)
        rc = write_file(path, header, header_len, tensors, n_tensors, begin, total);
    if (rc == 0 && bytes_out)
        *bytes_out = (int64_t)(ST_LENGTH_BYTES + header_len + total);
    free(header);
    free(begin);
    free(sorted);
    return rc;
}

// ---- reading ----

struct st_entry {
    char *name;
    const char *dtype;  // points into ST_DTYPES
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end;
};

struct st_file {
    char *path;
    uint8_t *bytes;         // allocation holding the file, shifted so the data is 8-byte aligned
    const uint8_t *header;  // header_len bytes of JSON
    uint64_t header_len;
    const uint8_t *data;    // the data section
    uint64_t data_size;
    int n_tensors;
    struct st_entry *tensors;  // header order
    int *by_name;              // indices into tensors, sorted by name
    int n_meta;
    char **meta_keys, **meta_values;
};

static int read_length(struct st_file *f, FILE *fp, uint64_t size)
{
    uint8_t b[ST_LENGTH_BYTES];
    if (size < ST_LENGTH_BYTES)
        return err("'%s': truncated: %llu bytes, too short for a safetensors header", f->path,
                   (unsigned long long)size);
    if (fread(b, 1, sizeof b, fp) != sizeof b)
        return err("cannot read '%s': %s", f->path, strerror(errno ? errno : EIO));
    f->header_len = 0;
    for (int i = ST_LENGTH_BYTES - 1; i >= 0; i--)
        f->header_len = f->header_len << 8 | b[i];
    if (f->header_len > ST_HEADER_LIMIT)
        return err("'%s': header length %llu exceeds the limit of %llu bytes (not a safetensors "
                   "file?)", f->path, (unsigned long long)f->header_len,
                   (unsigned long long)ST_HEADER_LIMIT);
    if (f->header_len > size - ST_LENGTH_BYTES)
        return err("'%s': truncated: header length is %llu bytes, file has %llu after it",
                   f->path, (unsigned long long)f->header_len,
                   (unsigned long long)(size - ST_LENGTH_BYTES));
    return 0;
}

// Reads the whole file, placed so that the data section starts on an 8-byte boundary even when
// another writer did not pad the header.
static int read_file(struct st_file *f)
{
    FILE *fp = fopen(f->path, "rb");
    struct stat st;
    if (!fp)
        return err("cannot open '%s': %s", f->path, strerror(errno));
    int rc = fstat(fileno(fp), &st) == 0 ? 0 : err("cannot read '%s': %s", f->path, strerror(errno));
    uint64_t size = rc == 0 ? (uint64_t)st.st_size : 0;
    if (rc == 0)
        rc = read_length(f, fp, size);
    size_t shift = (ST_HEADER_ALIGN - (ST_LENGTH_BYTES + f->header_len) % ST_HEADER_ALIGN) %
                   ST_HEADER_ALIGN;
    if (rc == 0 && !(f->bytes = malloc(size + shift)))
        rc = err("'%s': out of memory for %llu bytes", f->path, (unsigned long long)size);
    errno = 0;
    if (rc == 0 && (fseeko(fp, 0, SEEK_SET) != 0 || fread(f->bytes + shift, 1, size, fp) != size))
        rc = err("cannot read '%s': %s", f->path, errno ? strerror(errno) : "file changed size");
    fclose(fp);
    if (rc == 0) {
        f->header = f->bytes + shift + ST_LENGTH_BYTES;
        f->data = f->header + f->header_len;
        f->data_size = size - ST_LENGTH_BYTES - f->header_len;
    }
    return rc;
}

static int json_uint(const cJSON *item, uint64_t *v)
{
    if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0) || item->valuedouble > ST_MAX_INTEGER ||
        item->valuedouble != (double)(uint64_t)item->valuedouble)
        return -1;
    *v = (uint64_t)item->valuedouble;
    return 0;
}

static int parse_shape(struct st_file *f, const cJSON *shape, struct st_entry *e)
{
    int n = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : -1;
    if (n < 0 || n > ST_MAX_DIMS)
        return err("'%s': tensor '%s': shape must be a list of at most %d integers", f->path,
                   e->name, ST_MAX_DIMS);
    e->ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        uint64_t v;
        if (json_uint(d, &v) != 0)
            return err("'%s': tensor '%s': shape holds a value that is not a non-negative integer",
                       f->path, e->name);
        e->shape[e->ndim++] = (int64_t)v;
    }
    return 0;
}

static int parse_tensor(struct st_file *f, const cJSON *item, struct st_entry *e)
{
    if (!(e->name = strdup(item->string)))
        return err("'%s': out of memory", f->path);
    if (!cJSON_IsObject(item))
        return err("'%s': tensor '%s': entry is not an object", f->path, e->name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const struct st_dtype_info *info = dtype_find(cJSON_GetStringValue(dtype));
    if (!info)
        return err("'%s': tensor '%s': unknown or missing dtype '%s'", f->path, e->name,
                   cJSON_IsString(dtype) ? dtype->valuestring : "(none)");
    e->dtype = info->name;
    if (parse_shape(f, cJSON_GetObjectItemCaseSensitive(item, "shape"), e) != 0)
        return -1;
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        json_uint(offsets->child, &e->begin) != 0 || json_uint(offsets->child->next, &e->end) != 0)
        return err("'%s': tensor '%s': data_offsets must be two non-negative integers", f->path,
                   e->name);
    uint64_t nbytes;
    char label[ST_LABEL_MAX];
    snprintf(label, sizeof label, "'%s'", f->path);
    if (tensor_nbytes(label, e->name, e->dtype, e->ndim, e->shape, &nbytes) != 0)
        return -1;
    if (e->end < e->begin || e->end - e->begin != nbytes)
        return err("'%s': tensor '%s': data_offsets [%llu, %llu] do not match %llu bytes of "
                   "shape and dtype %s", f->path, e->name, (unsigned long long)e->begin,
                   (unsigned long long)e->end, (unsigned long long)nbytes, e->dtype);
    return 0;
}

static int parse_metadata(struct st_file *f, const cJSON *obj)
{
    if (!cJSON_IsObject(obj))
        return err("'%s': __metadata__ is not an object", f->path);
    int n = cJSON_GetArraySize(obj);
    f->meta_keys = calloc((size_t)n + 1, sizeof *f->meta_keys);
    f->meta_values = calloc((size_t)n + 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return err("'%s': out of memory", f->path);
    for (const cJSON *m = obj->child; m; m = m->next) {
        if (!cJSON_IsString(m))
            return err("'%s': metadata '%s' is not a string", f->path, m->string);
        f->meta_keys[f->n_meta] = strdup(m->string);
        f->meta_values[f->n_meta] = strdup(m->valuestring);
        if (!f->meta_keys[f->n_meta++] || !f->meta_values[f->n_meta - 1])
            return err("'%s': out of memory", f->path);
    }
    return 0;
}

static int parse_entries(struct st_file *f, const cJSON *root)
{
    int n = cJSON_GetArraySize(root);
    if (!(f->tensors = calloc((size_t)n + 1, sizeof *f->tensors)))
        return err("'%s': out of memory", f->path);
    int seen_meta = 0;
    for (const cJSON *item = root->child; item; item = item->next) {
        int rc;
        if (strcmp(item->string, ST_METADATA_KEY) != 0)
            rc = parse_tensor(f, item, &f->tensors[f->n_tensors++]);
        else if (seen_meta++)
            rc = err("'%s': __metadata__ appears twice", f->path);
        else
            rc = parse_metadata(f, item);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int parse_header(struct st_file *f)
{
    const char *text = (const char *)f->header, *end = NULL;
    if (f->header_len == 0 || text[0] != '{')
        return err("'%s': header is not a JSON object (not a safetensors file?)", f->path);
    cJSON *root = cJSON_ParseWithLengthOpts(text, f->header_len, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err("'%s': header is not valid JSON (error near byte %lld)", f->path,
                   end ? (long long)(end - text) : -1LL);
    }
    while (end < text + f->header_len && (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r'))
        end++;
    int rc = end == text + f->header_len
                 ? parse_entries(f, root)
                 : err("'%s': header has bytes after the JSON object", f->path);
    cJSON_Delete(root);
    return rc;
}

// qsort has no context argument in C11; thread-local so files can be opened in parallel.
static _Thread_local const struct st_file *sort_context;

static int compare_by_begin(const void *a, const void *b)
{
    const struct st_entry *x = &sort_context->tensors[*(const int *)a],
                          *y = &sort_context->tensors[*(const int *)b];
    return x->begin != y->begin ? (x->begin < y->begin ? -1 : 1)
                                : (x->end < y->end ? -1 : x->end > y->end);
}

static int compare_by_name(const void *a, const void *b)
{
    return strcmp(sort_context->tensors[*(const int *)a].name,
                  sort_context->tensors[*(const int *)b].name);
}

static void sort_indices(const struct st_file *f, int *order, int (*compare)(const void *, const void *))
{
    for (int i = 0; i < f->n_tensors; i++)
        order[i] = i;
    sort_context = f;
    qsort(order, (size_t)f->n_tensors, sizeof *order, compare);
    sort_context = NULL;
}

// Tensors sorted by offset must tile [0, data_size) with no gap and no overlap.
static int check_layout(struct st_file *f)
{
    if (!(f->by_name = malloc(((size_t)f->n_tensors + 1) * sizeof *f->by_name)))
        return err("'%s': out of memory", f->path);
    sort_indices(f, f->by_name, compare_by_begin);
    uint64_t expect = 0;
    for (int k = 0; k < f->n_tensors; k++) {
        const struct st_entry *e = &f->tensors[f->by_name[k]];
        if (e->begin != expect)
            return err("'%s': tensor '%s': data_offsets [%llu, %llu] %s the previous tensor, "
                       "which ends at %llu", f->path, e->name, (unsigned long long)e->begin,
                       (unsigned long long)e->end, e->begin < expect ? "overlap" : "leave a gap after",
                       (unsigned long long)expect);
        expect = e->end;
    }
    if (expect > f->data_size)
        return err("'%s': truncated: header says %llu bytes of data, file has %llu", f->path,
                   (unsigned long long)expect, (unsigned long long)f->data_size);
    if (expect < f->data_size)
        return err("'%s': %llu bytes of data, but the tensors cover only %llu", f->path,
                   (unsigned long long)f->data_size, (unsigned long long)expect);
    sort_indices(f, f->by_name, compare_by_name);
    for (int k = 1; k < f->n_tensors; k++)
        if (strcmp(f->tensors[f->by_name[k - 1]].name, f->tensors[f->by_name[k]].name) == 0)
            return err("'%s': tensor '%s' appears twice", f->path, f->tensors[f->by_name[k]].name);
    return 0;
}

static int check_crc(const struct st_file *f)
{
    const char *want = st_meta_get(f, ST_CRC_KEY);
    if (!want)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(want, &end, 10);
    if (!*want || *end || errno || v > UINT32_MAX)
        return err("'%s': metadata %s '%s' is not a CRC-32 value", f->path, ST_CRC_KEY, want);
    uint32_t got = (uint32_t)crc32_z(crc32_z(0, NULL, 0), f->data, (size_t)f->data_size);
    if (got != v)
        return err("'%s': checksum mismatch: file is corrupt (data crc32 %" PRIu32
                   ", header says %s)", f->path, got, want);
    return 0;
}

int st_open(const char *path, struct st_file **out)
{
    *out = NULL;
    struct st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return err("cannot open '%s': out of memory", path);
    }
    int rc = read_file(f);
    if (rc == 0)
        rc = parse_header(f);
    if (rc == 0)
        rc = check_layout(f);
    if (rc == 0)
        rc = check_crc(f);
    if (rc != 0) {
        st_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

void st_close(struct st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++)
        free(f->meta_keys[i]), free(f->meta_values[i]);
    free(f->tensors);
    free(f->by_name);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->bytes);
    free(f->path);
    free(f);
}

// Binary search over the name-sorted index.
const void *st_get(const struct st_file *f, const char *name, const char **dtype, int *ndim,
                   int64_t shape[8])
{
    int lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(name, f->tensors[f->by_name[mid]].name);
        if (c == 0) {
            const struct st_entry *e = &f->tensors[f->by_name[mid]];
            if (dtype)
                *dtype = e->dtype;
            if (ndim)
                *ndim = e->ndim;
            if (shape)
                memcpy(shape, e->shape, sizeof e->shape);
            return f->data + e->begin;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *st_meta_get(const struct st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}

int st_count(const struct st_file *f) { return f->n_tensors; }

const char *st_name(const struct st_file *f, int i)
{
    return i >= 0 && i < f->n_tensors ? f->tensors[i].name : NULL;
}
