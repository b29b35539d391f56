// Balanced, deterministic probe images from the test set (Fashion-MNIST) or the training latents.
#include "data/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "data/idx.h"

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

// One example into x [C, S, S], centred in the padded frame; stored [C, s, s] is scratch.
static void copy_example(const struct dataset *ds, int64_t example, int S, real *stored, real *x)
{
    int s = ds->stored_size, margin = (S - s) / 2;
    dataset_stored_example(ds, example, 0, NULL, stored);
    for (int c = 0; c < ds->channels; c++)
        for (int row = 0; row < S; row++)
            for (int col = 0; col < S; col++) {
                int r = row - margin, q = col - margin;
                int inside = r >= 0 && r < s && q >= 0 && q < s;
                x[((size_t)c * S + row) * S + col] = inside ? stored[((size_t)c * s + r) * s + q] : (real)PROBE_PAD_VALUE;
            }
}

// Image i: class i mod C, that class's (i / C)-th example.
static int select_examples(const struct dataset *ds, const struct config *cfg, int n, real *images, int *labels)
{
    int C = cfg->num_classes, S = cfg->pad_to ? cfg->pad_to : cfg->image_size;
    size_t per_image = (size_t)cfg->channels * S * S;
    real *stored = malloc(sizeof(real) * ds->channels * ds->stored_size * ds->stored_size);
    if (!stored) return err("out of memory for a probe image");
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        int cls = i % C, wanted = i / C, seen = 0;
        int64_t example = -1;
        for (int64_t j = 0; j < ds->n && example < 0; j++)
            if (ds->labels[j] == cls && seen++ == wanted) example = j;
        if (example < 0) {
            rc = err("'%s': class %d has %d examples, %d wanted (lower --n)", cfg->data_path, cls, seen, wanted + 1);
            break;
        }
        copy_example(ds, example, S, stored, images + i * per_image);
        labels[i] = cls;
    }
    free(stored);
    return rc;
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
