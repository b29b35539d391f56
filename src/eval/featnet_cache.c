// Training and caching the feature network. Training: FEATNET_EPOCHS passes over the 60k
// training images in a fresh permutation per epoch (stream (FEATNET_SEED, epoch, SHUFFLE)), AdamW
// at a constant rate; weights from params_init with FEATNET_SEED. Every draw is keyed and every
// product goes through BLIS, so the network is the same for any thread count.
#include "eval/featnet_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "data/idx.h"
#include "eval/frechet.h"
#include "io/path.h"
#include "model/safetensors.h"
#include "optim/adamw.h"

enum { FEATNET_BATCH = 128, FEATNET_EPOCHS = 3 };
static const uint64_t FEATNET_SEED = 20240917;
// AdamW as commonly used for small CNNs: lr 1e-3, no weight decay.
static const struct adamw_hparams FEATNET_ADAMW = {1e-3, 0.9, 0.999, 1e-8, 0};
#define PIXEL_SCALE 127.5   // pixels p -> p / 127.5 - 1, as the data set scales them
// Bumped whenever the network, the recipe or the file layout changes (part of the cache key).
static const char FEATNET_VERSION[] = "featnet-v1 conv3x3-32 pool conv3x3-64 pool fc128 fc10 nhwc";

int fmnist_load(const char *data_dir, const char *split, real **images, int **labels, int *n)
{
    char ipath[IO_PATH_MAX], lpath[IO_PATH_MAX];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", data_dir, split);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", data_dir, split);
    struct idx_array im = {0}, lb = {0};
    if (idx_read(ipath, &im) < 0) return -1;
    if (idx_read(lpath, &lb) < 0) return idx_free(&im), -1;
    int rc = 0;
    if (im.ndim != 3 || im.dims[1] != FEATNET_SIZE || im.dims[2] != FEATNET_SIZE || lb.ndim != 1 ||
        lb.dims[0] != im.dims[0])
        rc = err("'%s' and '%s': expected [n, 28, 28] images and [n] labels", ipath, lpath);
    *n = rc ? 0 : (int)im.dims[0];
    *images = rc ? NULL : malloc(sizeof(real) * im.count);
    *labels = rc ? NULL : malloc(sizeof(int) * *n);
    if (!rc && (!*images || !*labels)) rc = err("out of memory reading '%s'", ipath);
    for (int64_t i = 0; !rc && i < im.count; i++) (*images)[i] = (real)(im.data[i] / PIXEL_SCALE - 1);
    for (int i = 0; !rc && i < *n; i++) {
        if (lb.data[i] >= FEATNET_CLASSES) rc = err("'%s': label %d at %d is not below 10", lpath, lb.data[i], i);
        else (*labels)[i] = lb.data[i];
    }
    idx_free(&im);
    idx_free(&lb);
    if (rc) {
        free(*images);
        free(*labels);
        *images = NULL, *labels = NULL;
    }
    return rc;
}

void feature_model_apply(struct feature_model *fm, const real *images, int n, real *features, real *probs)
{
    const size_t image = FEATNET_SIZE * FEATNET_SIZE;
    for (int start = 0; start < n; start += fm->net.max_batch) {
        int B = n - start < fm->net.max_batch ? n - start : fm->net.max_batch;
        featnet_forward(&fm->net, images + start * image, B);
        if (features)
            memcpy(features + (size_t)start * FEATNET_FEATURES, fm->net.features, sizeof(real) * B * FEATNET_FEATURES);
        for (int b = 0; probs && b < B; b++) {
            const real *z = fm->net.logits + (size_t)b * FEATNET_CLASSES;
            real *p = probs + ((size_t)start + b) * FEATNET_CLASSES;
            double max = z[0], sum = 0;
            for (int k = 1; k < FEATNET_CLASSES; k++) max = fmax(max, z[k]);
            for (int k = 0; k < FEATNET_CLASSES; k++) sum += exp(z[k] - max);
            for (int k = 0; k < FEATNET_CLASSES; k++) p[k] = (real)(exp(z[k] - max) / sum);
        }
    }
}

// One epoch's order: Fisher-Yates from the stream (seed, epoch, SHUFFLE).
static void shuffle(uint32_t *order, int n, int epoch)
{
    struct rng g;
    rng_init(&g, FEATNET_SEED, (uint64_t)epoch, RNG_SHUFFLE, 0);
    for (int i = 0; i < n; i++) order[i] = (uint32_t)i;
    for (int i = n - 1; i > 0; i--) {
        uint32_t j = rng_below(&g, (uint32_t)i + 1), t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

static int train(struct feature_model *fm, const real *images, const int *labels, int n)
{
    const size_t image = FEATNET_SIZE * FEATNET_SIZE, total = fm->net.table.total;
    real *grads = calloc(total, sizeof(real)), *m = calloc(total, sizeof(real)), *v = calloc(total, sizeof(real));
    real *x = malloc(sizeof(real) * FEATNET_BATCH * image), *d_logits = malloc(sizeof(real) * FEATNET_BATCH * FEATNET_CLASSES);
    uint32_t *order = malloc(sizeof(uint32_t) * n);
    int *y = malloc(sizeof(int) * FEATNET_BATCH);
    int rc = grads && m && v && x && d_logits && order && y ? 0 : err("out of memory training the feature network");
    params_init(&fm->net.table, fm->weights, FEATNET_SEED);
    featnet_bind(&fm->net, fm->weights, grads);
    int64_t step = 0, steps_per_epoch = n / FEATNET_BATCH;
    for (int epoch = 0; !rc && epoch < FEATNET_EPOCHS; epoch++) {
        shuffle(order, n, epoch);
        for (int64_t s = 0; s < steps_per_epoch; s++) {
            for (int b = 0; b < FEATNET_BATCH; b++) {
                uint32_t i = order[s * FEATNET_BATCH + b];
                memcpy(x + b * image, images + i * image, sizeof(real) * image);
                y[b] = labels[i];
            }
            featnet_forward(&fm->net, x, FEATNET_BATCH);
            featnet_loss(&fm->net, y, FEATNET_BATCH, d_logits);
            memset(grads, 0, sizeof(real) * total);
            featnet_backward(&fm->net, d_logits, FEATNET_BATCH);
            adamw_update(&fm->net.table, fm->weights, grads, m, v, &FEATNET_ADAMW, ++step);
        }
    }
    featnet_bind(&fm->net, fm->weights, NULL);
    free(grads); free(m); free(v); free(x); free(d_logits); free(order); free(y);
    return rc;
}

static double accuracy(struct feature_model *fm, const real *images, const int *labels, int n)
{
    real *probs = malloc(sizeof(real) * n * FEATNET_CLASSES);
    if (!probs) return err("out of memory measuring the feature network"), -1;
    feature_model_apply(fm, images, n, NULL, probs);
    int correct = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < FEATNET_CLASSES; k++)
            if (probs[i * FEATNET_CLASSES + k] > probs[i * FEATNET_CLASSES + best]) best = k;
        correct += best == labels[i];
    }
    free(probs);
    return (double)correct / n;
}

// Mean and unbiased covariance (double) of the features of images [n, 28, 28].
static int feature_statistics(struct feature_model *fm, const real *images, int n, double *mean, double *cov)
{
    const int D = FEATNET_FEATURES;
    real *features = malloc(sizeof(real) * (size_t)n * D);
    if (!features) return err("out of memory for the features of %d images", n);
    feature_model_apply(fm, images, n, features, NULL);
    gaussian_fit(features, n, D, mean, cov);
    free(features);
    return 0;
}

// Cache key: SHA-256 of the recipe text and of the training data's bytes.
static void cache_key(const real *images, const int *labels, int n, char key[17])
{
    char data_sha[65], labels_sha[65], text[512], full[65];
    sha256_hex(images, sizeof(real) * (size_t)n * FEATNET_SIZE * FEATNET_SIZE, data_sha);
    sha256_hex(labels, sizeof(int) * (size_t)n, labels_sha);
    snprintf(text, sizeof text, "%s seed %llu epochs %d batch %d lr %g real %s data %s labels %s", FEATNET_VERSION,
             (unsigned long long)FEATNET_SEED, FEATNET_EPOCHS, FEATNET_BATCH, FEATNET_ADAMW.lr, REAL_DTYPE,
             data_sha, labels_sha);
    sha256_hex(text, strlen(text), full);
    memcpy(key, full, 16);
    key[16] = '\0';
}

static int save(const struct feature_model *fm)
{
    const struct param_table *t = &fm->net.table;
    struct st_tensor tensors[16];
    int n = 0;
    for (int i = 0; i < t->n; i++) {
        const struct param_entry *e = &t->entries[i];
        tensors[n] = (struct st_tensor){e->name, REAL_DTYPE, e->ndim, {0}, fm->weights + e->offset};
        memcpy(tensors[n].shape, e->shape, sizeof(int64_t) * e->ndim);
        n++;
    }
    tensors[n++] = (struct st_tensor){"train_mean", "F64", 1, {FEATNET_FEATURES}, fm->train_mean};
    tensors[n++] = (struct st_tensor){"train_cov", "F64", 2, {FEATNET_FEATURES, FEATNET_FEATURES}, fm->train_cov};
    char accuracy_text[32];
    snprintf(accuracy_text, sizeof accuracy_text, "%.17g", fm->test_accuracy);
    struct st_meta meta[2] = {{"test_accuracy", accuracy_text}, {"recipe", FEATNET_VERSION}};
    return st_write(fm->path, tensors, n, meta, 2, NULL);
}

// Copies tensor `name` of f (dtype and count must match) into dst.
static int load_tensor(const struct st_file *f, const char *path, const char *name, const char *dtype,
                       size_t count, size_t elem, void *dst)
{
    const char *dt;
    int ndim;
    int64_t shape[8];
    const void *data = st_get(f, name, &dt, &ndim, shape);
    size_t have = 1;
    for (int d = 0; data && d < ndim; d++) have *= (size_t)shape[d];
    if (!data || strcmp(dt, dtype) != 0 || have != count)
        return err("'%s': tensor '%s' is missing or not %s with %zu values", path, name, dtype, count);
    memcpy(dst, data, count * elem);
    return 0;
}

static int load(struct feature_model *fm)
{
    struct st_file *f;
    if (st_open(fm->path, &f) < 0) return -1;
    const struct param_table *t = &fm->net.table;
    int rc = 0;
    for (int i = 0; !rc && i < t->n; i++)
        rc = load_tensor(f, fm->path, t->entries[i].name, REAL_DTYPE, t->entries[i].count, sizeof(real),
                         fm->weights + t->entries[i].offset);
    if (!rc) rc = load_tensor(f, fm->path, "train_mean", "F64", FEATNET_FEATURES, sizeof(double), fm->train_mean);
    if (!rc)
        rc = load_tensor(f, fm->path, "train_cov", "F64", FEATNET_FEATURES * FEATNET_FEATURES, sizeof(double),
                         fm->train_cov);
    const char *acc = rc ? NULL : st_meta_get(f, "test_accuracy");
    if (!rc && !acc) rc = err("'%s': metadata 'test_accuracy' is missing", fm->path);
    if (!rc) fm->test_accuracy = atof(acc);
    st_close(f);
    return rc;
}

static int build(struct feature_model *fm, const char *dir, const char *data_dir, const real *images,
                 const int *labels, int n)
{
    real *test_images = NULL;
    int *test_labels = NULL, n_test = 0;
    if (fmnist_load(data_dir, "t10k", &test_images, &test_labels, &n_test) < 0) return -1;
    int rc = train(fm, images, labels, n);
    if (!rc) fm->test_accuracy = accuracy(fm, test_images, test_labels, n_test);
    if (!rc && fm->test_accuracy < 0) rc = -1;
    if (!rc) rc = feature_statistics(fm, images, n, fm->train_mean, fm->train_cov);
    if (!rc) rc = io_make_folders(dir);
    if (!rc) rc = save(fm);
    fm->trained = !rc;
    free(test_images);
    free(test_labels);
    return rc;
}

int feature_model_obtain(struct feature_model *fm, const char *dir, const char *data_dir)
{
    memset(fm, 0, sizeof *fm);
    if (featnet_create(&fm->net, FEATNET_BATCH) < 0) return -1;
    fm->weights = calloc(fm->net.table.total, sizeof(real));
    fm->train_cov = calloc(FEATNET_FEATURES * FEATNET_FEATURES, sizeof(double));
    if (!fm->weights || !fm->train_cov) return feature_model_free(fm), err("out of memory for the feature network");
    featnet_bind(&fm->net, fm->weights, NULL);
    real *images;
    int *labels, n;
    if (fmnist_load(data_dir, "train", &images, &labels, &n) < 0) return feature_model_free(fm), -1;
    char key[17];
    cache_key(images, labels, n, key);
    snprintf(fm->path, sizeof fm->path, "%s/featnet-%s.safetensors", dir, key);
    int rc = 0;
    if (access(fm->path, F_OK) != 0) {
        note("training the feature network (%d epochs on %d images) into '%s'", FEATNET_EPOCHS, n, fm->path);
        rc = build(fm, dir, data_dir, images, labels, n);
    } else if (load(fm) < 0) {
        note("the cached feature network is unreadable (%s): rebuilding '%s'", err_message(), fm->path);
        err_clear();
        rc = build(fm, dir, data_dir, images, labels, n);
    }
    free(images);
    free(labels);
    if (rc) feature_model_free(fm);
    return rc;
}

void feature_model_free(struct feature_model *fm)
{
    featnet_destroy(&fm->net);
    free(fm->weights);
    free(fm->train_cov);
    fm->weights = NULL, fm->train_cov = NULL;
}
