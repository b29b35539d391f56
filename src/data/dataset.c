// Fashion-MNIST (IDX, gzip) or NumPy latents + labels, batched deterministically.
#include "data/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/idx.h"
#include "data/npy.h"

#define PIXEL_SCALE 127.5
#define PAD_VALUE -1.0

static int check_shape(const char *path, int64_t got, int64_t want, const char *what, const char *key)
{
    if (got == want) return 0;
    return err("'%s': %s is %lld, but %s is %lld", path, what, (long long)got, key, (long long)want);
}

static int open_fashion_mnist(struct dataset *ds, const struct config *cfg)
{
    char images_path[CONFIG_STRING_MAX + 64], labels_path[CONFIG_STRING_MAX + 64];
    snprintf(images_path, sizeof images_path, "%s/train-images-idx3-ubyte.gz", cfg->data_path);
    snprintf(labels_path, sizeof labels_path, "%s/train-labels-idx1-ubyte.gz", cfg->data_path);
    struct idx_array images = {0}, labels = {0};
    if (idx_read(images_path, &images) < 0) return -1;
    if (idx_read(labels_path, &labels) < 0) {
        idx_free(&images);
        return -1;
    }
    int rc = 0;
    if (images.ndim != 3 || labels.ndim != 1 || labels.dims[0] != images.dims[0])
        rc = err("'%s': expected [n, 28, 28] images with n labels in '%s'", images_path, labels_path);
    if (!rc) rc = check_shape(images_path, images.dims[1], cfg->image_size, "the image size", "data.image_size");
    if (!rc) rc = check_shape(images_path, 1, cfg->channels, "the channel count", "data.channels");
    if (!rc) {
        ds->n = images.dims[0];
        ds->pixels = images.data;
        ds->labels = malloc(sizeof(int64_t) * ds->n);
        for (int64_t i = 0; i < ds->n; i++) ds->labels[i] = labels.data[i];
        images.data = NULL;
    }
    idx_free(&images);
    idx_free(&labels);
    return rc;
}

// Latents memory-mapped (data/latents.h), labels read whole.
static int open_npy(struct dataset *ds, const struct config *cfg)
{
    if (latents_open(&ds->latents, cfg) < 0) return -1;
    struct npy_array labels = {0};
    if (npy_read(cfg->data_labels, &labels) < 0) return -1;
    int rc = 0;
    if (labels.ndim != 1 || labels.shape[0] != ds->latents.n)
        rc = err("'%s': expected %lld labels, one per latent in '%s'", cfg->data_labels,
                 (long long)ds->latents.n, cfg->data_path);
    if (!rc) {
        ds->n = ds->latents.n;
        ds->labels = npy_to_i64(&labels);
        if (!ds->labels) rc = err("'%s': unsupported dtype", cfg->data_labels);
    }
    npy_free(&labels);
    return rc;
}

static int check_labels(const struct dataset *ds, const struct config *cfg)
{
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->labels[i] < 0 || ds->labels[i] >= cfg->num_classes)
            return err("label %lld of example %lld is outside [0, %d) (data.num_classes)",
                       (long long)ds->labels[i], (long long)i, cfg->num_classes);
    return 0;
}

int dataset_open(struct dataset *ds, const struct config *cfg)
{
    memset(ds, 0, sizeof *ds);
    ds->channels = cfg->channels;
    ds->stored_size = cfg->image_size;
    ds->size = cfg->pad_to ? cfg->pad_to : cfg->image_size;
    ds->num_classes = cfg->num_classes;
    ds->flip = cfg->flip;
    ds->seed = cfg->seed;
    ds->order_epoch = -1;
    int rc = strcmp(cfg->data_name, "npy") == 0 ? open_npy(ds, cfg) : open_fashion_mnist(ds, cfg);
    if (!rc && ds->n == 0) rc = err("data set '%s' is empty", cfg->data_path);
    if (!rc) rc = check_labels(ds, cfg);
    if (!rc) {
        ds->order = malloc(sizeof(uint32_t) * ds->n);
        ds->stored = malloc(sizeof(real) * ds->channels * ds->stored_size * ds->stored_size);
        if (!ds->order || !ds->stored) rc = err("out of memory for the data order");
    }
    if (rc) dataset_close(ds);
    return rc;
}

void dataset_close(struct dataset *ds)
{
    free(ds->pixels);
    latents_close(&ds->latents);
    free(ds->labels);
    free(ds->order);
    free(ds->stored);
    memset(ds, 0, sizeof *ds);
}

// Fisher-Yates shuffle of 0..n-1 for one epoch.
static void shuffle_epoch(struct dataset *ds, int64_t epoch)
{
    struct rng r;
    rng_init(&r, ds->seed, (uint64_t)epoch, RNG_SHUFFLE, 0);
    for (int64_t i = 0; i < ds->n; i++) ds->order[i] = (uint32_t)i;
    for (int64_t i = ds->n - 1; i > 0; i--) {
        uint32_t j = rng_below(&r, (uint32_t)(i + 1)), tmp = ds->order[i];
        ds->order[i] = ds->order[j];
        ds->order[j] = tmp;
    }
    ds->order_epoch = epoch;
}

void dataset_stored_example(const struct dataset *ds, int64_t example, int view, struct rng *noise,
                            real *out)
{
    if (ds->latents.map) {
        latents_example(&ds->latents, example, view, noise, out);
        return;
    }
    size_t count = (size_t)ds->channels * ds->stored_size * ds->stored_size;
    const uint8_t *pixels = ds->pixels + (size_t)example * count;
    for (size_t k = 0; k < count; k++) out[k] = (real)(pixels[k] / PIXEL_SCALE - 1.0);
}

// The stored example ds->stored [C, s, s] into x [C, size, size]: centred in the padded frame,
// mirrored when asked.
static void place_example(const struct dataset *ds, int mirrored, real *x)
{
    int S = ds->size, s = ds->stored_size, margin = (S - s) / 2;
    for (int c = 0; c < ds->channels; c++)
        for (int row = 0; row < S; row++)
            for (int col = 0; col < S; col++) {
                int r = row - margin, q = col - margin;
                if (mirrored) q = s - 1 - q;
                real value = (real)PAD_VALUE;
                if (r >= 0 && r < s && q >= 0 && q < s) value = ds->stored[((size_t)c * s + r) * s + q];
                x[((size_t)c * S + row) * S + col] = value;
            }
}

// A flip takes the flipped image's latents where the file holds them (ProMoE's latent_flip; a
// mirrored latent is not the latent of the mirrored image), else mirrors the example.
void dataset_batch(struct dataset *ds, int64_t step, int B, real *x, int *labels)
{
    size_t per_example = (size_t)ds->channels * ds->size * ds->size;
    for (int b = 0; b < B; b++) {
        int64_t position = step * B + b, epoch = position / ds->n;
        if (epoch != ds->order_epoch) shuffle_epoch(ds, epoch);
        int64_t example = ds->order[position % ds->n];
        struct rng flip, noise;
        rng_init(&flip, ds->seed, (uint64_t)step, RNG_FLIP, (uint32_t)b);
        rng_init(&noise, ds->seed, (uint64_t)step, RNG_LATENT, (uint32_t)b);
        int flipped = ds->flip && (rng_u32(&flip) & 1);
        int flipped_view = flipped && ds->latents.views == 2;
        dataset_stored_example(ds, example, flipped_view, &noise, ds->stored);
        place_example(ds, flipped && !flipped_view, x + b * per_example);
        labels[b] = (int)ds->labels[example];
    }
}
