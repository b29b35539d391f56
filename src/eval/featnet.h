// The feature network of the mini-scale sample-quality metrics: a small CNN classifier of
// Fashion-MNIST. conv3x3 1->32 + ReLU + 2x2 max-pool, conv3x3 32->64 + ReLU + max-pool, linear
// 3136->128 + ReLU (the features), linear 128->10 (class logits). Activations are channel-last
// (NHWC), so each convolution is one im2col product over the whole batch; weights live in one
// parameter table (its own names: conv1.weight [32,3,3,1], ...), trained with the harness's AdamW.
#ifndef PROMOE_FEATNET_H
#define PROMOE_FEATNET_H

#include "core/real.h"
#include "nn/params.h"

enum {
    FEATNET_SIZE = 28,        // input H = W
    FEATNET_C1 = 32,          // conv1 channels
    FEATNET_C2 = 64,          // conv2 channels
    FEATNET_FEATURES = 128,   // feature width (the fc1 output)
    FEATNET_CLASSES = 10,
    FEATNET_KERNEL = 3
};

struct featnet {
    struct param_table table;
    real *weights, *grads;    // bound buffers [table.total] (not owned)
    int max_batch;
    // Activations for max_batch images (owned), NHWC:
    real *col1;               // [B*28*28, 9]
    real *a1;                 // [B, 28, 28, 32] after ReLU
    real *p1;                 // [B, 14, 14, 32]
    int *arg1;                // [B*14*14*32] index into a1 of each pooled maximum
    real *col2;               // [B*14*14, 288]
    real *a2;                 // [B, 14, 14, 64] after ReLU
    real *p2;                 // [B, 7*7*64]
    int *arg2;
    real *features;           // [B, 128] after ReLU
    real *logits;             // [B, 10]
    // Backward scratch (owned):
    real *d_features, *d_p2, *d_a2, *d_col2, *d_p1, *d_a1;
};

// Builds the table and activation buffers for up to max_batch images. Free with featnet_destroy.
int featnet_create(struct featnet *f, int max_batch);
void featnet_destroy(struct featnet *f);
void featnet_bind(struct featnet *f, real *weights, real *grads);

// x [B, 28, 28] in [-1, 1] -> f->features [B, 128], f->logits [B, 10].
void featnet_forward(struct featnet *f, const real *x, int B);
// d_logits [B, 10] -> accumulates (+=) into the bound gradient buffer; uses the activations of
// the last forward. d_logits is not modified.
void featnet_backward(struct featnet *f, const real *d_logits, int B);
// Mean softmax cross-entropy of f->logits [B, 10] against labels [B]; writes its gradient into
// d_logits [B, 10] (already divided by B). Returns the loss.
double featnet_loss(const struct featnet *f, const int *labels, int B, real *d_logits);

#endif
