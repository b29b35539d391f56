// The trained feature network, cached: weights, the training set's feature statistics (mean and
// covariance, double) and the test accuracy in one safetensors file under a results folder,
// named by a hash of the architecture, the training recipe and the data. When the file is missing
// or unreadable the network is trained (fixed seed, AdamW, a few epochs on the 60k training
// images), measured on the 10k test images and written atomically.
#ifndef PROMOE_FEATNET_CACHE_H
#define PROMOE_FEATNET_CACHE_H

#include "eval/featnet.h"
#include "io/path.h"

struct feature_model {
    struct featnet net;
    real *weights;                        // [net.table.total], owned
    double train_mean[FEATNET_FEATURES];
    double *train_cov;                    // [FEATNET_FEATURES, FEATNET_FEATURES], owned
    double test_accuracy;                 // fraction of the test set classified correctly
    char path[IO_PATH_MAX];               // the cache file
    int trained;                          // 1 when this call trained it (not read from the cache)
};

// Reads dir/featnet-<key>.safetensors, or trains and writes it, from the Fashion-MNIST idx files
// in data_dir. max_batch bounds later featnet_features calls' chunks. Free with feature_model_free.
int feature_model_obtain(struct feature_model *fm, const char *dir, const char *data_dir);
void feature_model_free(struct feature_model *fm);

// features [n, 128] (may be NULL) and class probabilities probs [n, 10] (may be NULL) of
// images [n, 28, 28] in [-1, 1], computed in chunks.
void feature_model_apply(struct feature_model *fm, const real *images, int n, real *features, real *probs);

// Fashion-MNIST images [n, 28, 28] in [-1, 1] and labels [n] of "train" or "test" from data_dir
// (allocated; the caller frees both).
int fmnist_load(const char *data_dir, const char *split, real **images, int **labels, int *n);

#endif
