// A latents .npy mapped into memory, and the draw of one example's z from its views and moments.
#include "data/latents.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

// diffusers' DiagonalGaussianDistribution clamps the log-variance to this range before exp.
#define LOGVAR_MIN -30.0
#define LOGVAR_MAX 20.0

static const char *moments_name(int moments)
{
    return moments == MOMENTS_LOGVAR ? "logvar" : moments == MOMENTS_STD ? "std" : "none";
}

// Views and channel axis from [N, K, H, W] or [N, V, K, H, W]; checks them against the config.
static int read_layout(struct latents_file *f, const struct npy_array *h, const struct config *cfg)
{
    const char *path = cfg->data_path;
    if (h->ndim != 4 && h->ndim != 5)
        return err("'%s': expected latents of shape [N, K, H, W] or [N, V, K, H, W], found %d axes",
                   path, h->ndim);
    const int64_t *s = h->shape + (h->ndim - 3);   // [K, H, W] after N (and V)
    f->views = h->ndim == 5 ? (int)h->shape[1] : 1;
    if (h->ndim == 5 && h->shape[1] != 1 && h->shape[1] != 2)
        return err("'%s': axis 1 of [N, V, K, H, W] holds the views (1, or 2 with the flipped "
                   "image's latents), found V = %lld",
                   path, (long long)h->shape[1]);
    int per_channel = cfg->latents_moments == MOMENTS_NONE ? 1 : 2;
    if (s[0] != (int64_t)per_channel * cfg->channels)
        return err("'%s': the channel axis K holds %lld, but data.latents.moments %s with "
                   "data.channels %d needs K = %d%s",
                   path, (long long)s[0], moments_name(cfg->latents_moments), cfg->channels,
                   per_channel * cfg->channels,
                   s[0] == 2LL * cfg->channels ? " (posterior moments: set data.latents.moments "
                                                 "logvar or std)" : "");
    if (s[1] != s[2])
        return err("'%s': expected square latents, found H %lld and W %lld", path,
                   (long long)s[1], (long long)s[2]);
    if (s[1] != cfg->image_size)
        return err("'%s': the latent size is %lld, but data.image_size is %d", path,
                   (long long)s[1], cfg->image_size);
    f->n = h->shape[0];
    f->stored_channels = (int)s[0];
    f->channels = cfg->channels;
    f->size = cfg->image_size;
    f->dtype = h->dtype;
    f->item = npy_dtype_size(h->dtype);
    return 0;
}

// Maps the whole file; the header's data must lie inside what fstat reports now.
static int map_file(struct latents_file *f, const char *path, int64_t offset, int64_t nbytes)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err("'%s': cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? err("'%s': cannot stat: %s", path, strerror(errno)) : 0;
    if (!rc && (uint64_t)st.st_size < (uint64_t)offset + (uint64_t)nbytes)
        rc = err("'%s': truncated: the header promises %lld bytes of data from byte %lld, the file "
                 "has %lld bytes",
                 path, (long long)nbytes, (long long)offset, (long long)st.st_size);
    if (!rc) {
        f->map_size = (size_t)st.st_size;
        f->map = mmap(NULL, f->map_size, PROT_READ, MAP_SHARED, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            rc = err("'%s': cannot map %lld bytes: %s", path, (long long)st.st_size, strerror(errno));
        }
    }
    close(fd);
    if (!rc) f->data = (const unsigned char *)f->map + offset;
    return rc;
}

int latents_open(struct latents_file *f, const struct config *cfg)
{
    memset(f, 0, sizeof *f);
    f->moments = cfg->latents_moments;
    f->sample = cfg->latents_sample;
    f->scale = cfg->latents_scale;
    struct npy_array header;
    int64_t offset = 0;
    if (npy_read_header(cfg->data_path, &header, &offset) < 0) return -1;
    if (read_layout(f, &header, cfg) < 0) return -1;
    return map_file(f, cfg->data_path, offset, header.count * (int64_t)f->item);
}

void latents_close(struct latents_file *f)
{
    if (f->map) munmap(f->map, f->map_size);
    memset(f, 0, sizeof *f);
}

// Stored value number k of the file (any numeric dtype; memcpy as the data offset need not be
// aligned to the value size).
static double stored(const struct latents_file *f, size_t k)
{
    const unsigned char *p = f->data + k * f->item;
    switch (f->dtype) {
    case NPY_F32: { float v; memcpy(&v, p, sizeof v); return v; }
    case NPY_F64: { double v; memcpy(&v, p, sizeof v); return v; }
    case NPY_I64: { int64_t v; memcpy(&v, p, sizeof v); return (double)v; }
    case NPY_I32: { int32_t v; memcpy(&v, p, sizeof v); return v; }
    case NPY_U8: return *p;
    }
    return 0;
}

static double std_of(const struct latents_file *f, double moment)
{
    if (f->moments == MOMENTS_STD) return moment;
    return exp(0.5 * fmin(fmax(moment, LOGVAR_MIN), LOGVAR_MAX));
}

void latents_example(const struct latents_file *f, int64_t example, int view, struct rng *noise,
                     real *z)
{
    size_t plane = (size_t)f->size * f->size, per_channel = (size_t)f->channels * plane;
    size_t base = ((size_t)example * f->views + view) * f->stored_channels * plane;
    int draw = f->moments != MOMENTS_NONE && f->sample == LATENTS_POSTERIOR && noise;
    for (size_t k = 0; k < per_channel; k++) {
        double value = stored(f, base + k);   // the latent, or the mean with moments
        if (draw) value += std_of(f, stored(f, base + per_channel + k)) * rng_normal(noise);
        z[k] = (real)(f->scale * value);
    }
}
