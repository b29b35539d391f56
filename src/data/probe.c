// Balanced, deterministic probe images from the test set (Fashion-MNIST) or the training latents.
#include "data/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "data/idx.h"

#define PROBE_PIXEL_SCALE 127.5   // bytes to [-1, 1], as in training (data/dataset.c)
#define PROBE_PAD_VALUE -1.0

// The test split: labels and pixels in ds (labels, pixels, n, sizes).
static int open_test_split(struct dataset *ds, const struct config *cfg)
{
    char images_path[CONFIG_STRING_MAX + 64], labels_path[CONFIG_STRING_MAX + 64];
    snprintf(images_path, sizeof images_path, "%s/t10k-images-idx3-ubyte.gz", cfg->data_path);
    snprintf(labels_path, sizeof labels_path, "%s/t10k-labels-idx1-ubyte.gz", cfg->data_path);
    struct idx_array images = {0}, labels = {0};
    if (idx_read(images_path, &images) < 0) return -1;
    if (idx_read(labels_path, &labels) < 0) return idx_free(&images), -1;
    int rc = 0;
    if (images.ndim != 3 || labels.ndim != 1 || labels.dims[0] != images.dims[0] || images.dims[1] != cfg->image_size)
        rc = err("'%s': expected [n, %d, %d] images with n labels in '%s'", images_path, cfg->image_size,
                 cfg->image_size, labels_path);
    memset(ds, 0, sizeof *ds);
    ds->labels = rc ? NULL : malloc(sizeof(int64_t) * labels.dims[0]);
    if (!rc && !ds->labels) rc = err("out of memory for the labels of '%s'", labels_path);
    if (!rc) {
        ds->n = images.dims[0];
        ds->channels = 1;
        ds->stored_size = cfg->image_size;
        ds->pixels = images.data;
        images.data = NULL;
        for (int64_t i = 0; i < ds->n; i++) ds->labels[i] = labels.data[i];
    }
    idx_free(&images);
    idx_free(&labels);
    return rc;
}

static real stored_value(const struct dataset *ds, int64_t example, int c, int row, int col)
{
    size_t s = (size_t)ds->stored_size, k = (((size_t)example * ds->channels + c) * s + row) * s + col;
    if (ds->latents) return ds->latents[k];
    return (real)(ds->pixels[k] / PROBE_PIXEL_SCALE - 1.0);
}

// One example into x [C, S, S], centred in the padded frame.
static void copy_example(const struct dataset *ds, int64_t example, int S, real *x)
{
    int s = ds->stored_size, margin = (S - s) / 2;
    for (int c = 0; c < ds->channels; c++)
        for (int row = 0; row < S; row++)
            for (int col = 0; col < S; col++) {
                int r = row - margin, q = col - margin;
                int inside = r >= 0 && r < s && q >= 0 && q < s;
                x[((size_t)c * S + row) * S + col] = inside ? stored_value(ds, example, c, r, q) : (real)PROBE_PAD_VALUE;
            }
}

// Image i: class i mod C, that class's (i / C)-th example.
static int select_examples(const struct dataset *ds, const struct config *cfg, int n, real *images, int *labels)
{
    int C = cfg->num_classes, S = cfg->pad_to ? cfg->pad_to : cfg->image_size;
    size_t per_image = (size_t)cfg->channels * S * S;
    for (int i = 0; i < n; i++) {
        int cls = i % C, wanted = i / C, seen = 0;
        int64_t example = -1;
        for (int64_t j = 0; j < ds->n && example < 0; j++)
            if (ds->labels[j] == cls && seen++ == wanted) example = j;
        if (example < 0)
            return err("'%s': class %d has %d examples, %d wanted (lower --n)", cfg->data_path, cls, seen, wanted + 1);
        copy_example(ds, example, S, images + i * per_image);
        labels[i] = cls;
    }
    return 0;
}

int probe_images(const struct config *cfg, int n, real *images, int *labels)
{
    struct dataset ds;
    int is_npy = strcmp(cfg->data_name, "npy") == 0;
    if ((is_npy ? dataset_open(&ds, cfg) : open_test_split(&ds, cfg)) < 0) return -1;
    int rc = select_examples(&ds, cfg, n, images, labels);
    if (is_npy) dataset_close(&ds);
    else free(ds.pixels), free(ds.labels);
    return rc;
}
