// The feature network's layers: im2col convolutions, max-pooling and linear layers as forward /
// backward pairs over the NHWC activations sized once in featnet_create. Every product goes
// through the BLIS wrapper; the per-channel bias sums run in a fixed order (thread-count
// independent).
#include "eval/featnet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/error.h"

enum {
    POOLED1 = FEATNET_SIZE / 2,                      // 14
    POOLED2 = FEATNET_SIZE / 4,                      // 7
    K1 = FEATNET_KERNEL * FEATNET_KERNEL,            // conv1 im2col width (1 input channel)
    K2 = FEATNET_KERNEL * FEATNET_KERNEL * FEATNET_C1,
    FLAT = POOLED2 * POOLED2 * FEATNET_C2            // 3136
};

// Tensor indices in the table, in the order they are added.
enum { W_CONV1, B_CONV1, W_CONV2, B_CONV2, W_FC1, B_FC1, W_FC2, B_FC2, N_TENSORS };

static int add(struct param_table *t, const char *name, int ndim, int64_t a, int64_t b, int64_t c,
               int64_t d, double fan_in)
{
    int64_t shape[4] = {a, b, c, d};
    // He-uniform weights (bound sqrt(6 / fan_in), for ReLU layers); zero biases.
    if (ndim == 1) return params_add(t, name, 1, shape, INIT_ZERO, 0, 1);
    return params_add(t, name, ndim, shape, INIT_UNIFORM, sqrt(6.0 / fan_in), 1);
}

static real *alloc_reals(size_t n) { return calloc(n ? n : 1, sizeof(real)); }

int featnet_create(struct featnet *f, int max_batch)
{
    memset(f, 0, sizeof *f);
    struct param_table *t = &f->table;
    int rc = 0;
    rc |= add(t, "conv1.weight", 4, FEATNET_C1, FEATNET_KERNEL, FEATNET_KERNEL, 1, K1) < 0;
    rc |= add(t, "conv1.bias", 1, FEATNET_C1, 0, 0, 0, 0) < 0;
    rc |= add(t, "conv2.weight", 4, FEATNET_C2, FEATNET_KERNEL, FEATNET_KERNEL, FEATNET_C1, K2) < 0;
    rc |= add(t, "conv2.bias", 1, FEATNET_C2, 0, 0, 0, 0) < 0;
    rc |= add(t, "fc1.weight", 2, FEATNET_FEATURES, FLAT, 0, 0, FLAT) < 0;
    rc |= add(t, "fc1.bias", 1, FEATNET_FEATURES, 0, 0, 0, 0) < 0;
    rc |= add(t, "fc2.weight", 2, FEATNET_CLASSES, FEATNET_FEATURES, 0, 0, FEATNET_FEATURES) < 0;
    rc |= add(t, "fc2.bias", 1, FEATNET_CLASSES, 0, 0, 0, 0) < 0;
    size_t B = (size_t)max_batch, hw1 = FEATNET_SIZE * FEATNET_SIZE, hw2 = POOLED1 * POOLED1;
    f->max_batch = max_batch;
    f->col1 = alloc_reals(B * hw1 * K1);
    f->a1 = alloc_reals(B * hw1 * FEATNET_C1);
    f->p1 = alloc_reals(B * hw2 * FEATNET_C1);
    f->arg1 = calloc(B * hw2 * FEATNET_C1, sizeof(int));
    f->col2 = alloc_reals(B * hw2 * K2);
    f->a2 = alloc_reals(B * hw2 * FEATNET_C2);
    f->p2 = alloc_reals(B * FLAT);
    f->arg2 = calloc(B * FLAT, sizeof(int));
    f->features = alloc_reals(B * FEATNET_FEATURES);
    f->logits = alloc_reals(B * FEATNET_CLASSES);
    f->d_features = alloc_reals(B * FEATNET_FEATURES);
    f->d_p2 = alloc_reals(B * FLAT);
    f->d_a2 = alloc_reals(B * hw2 * FEATNET_C2);
    f->d_col2 = alloc_reals(B * hw2 * K2);
    f->d_p1 = alloc_reals(B * hw2 * FEATNET_C1);
    f->d_a1 = alloc_reals(B * hw1 * FEATNET_C1);
    if (rc || !f->col1 || !f->a1 || !f->p1 || !f->arg1 || !f->col2 || !f->a2 || !f->p2 || !f->arg2 ||
        !f->features || !f->logits || !f->d_features || !f->d_p2 || !f->d_a2 || !f->d_col2 ||
        !f->d_p1 || !f->d_a1) {
        featnet_destroy(f);
        return err("out of memory for the feature network (batch %d)", max_batch);
    }
    return 0;
}

void featnet_destroy(struct featnet *f)
{
    params_free(&f->table);
    free(f->col1); free(f->a1); free(f->p1); free(f->arg1); free(f->col2); free(f->a2);
    free(f->p2); free(f->arg2); free(f->features); free(f->logits); free(f->d_features);
    free(f->d_p2); free(f->d_a2); free(f->d_col2); free(f->d_p1); free(f->d_a1);
    memset(f, 0, sizeof *f);
}

void featnet_bind(struct featnet *f, real *weights, real *grads)
{
    f->weights = weights;
    f->grads = grads;
}

static real *w_of(const struct featnet *f, int i) { return f->weights + f->table.entries[i].offset; }
static real *g_of(const struct featnet *f, int i) { return f->grads + f->table.entries[i].offset; }

// col [B*H*W, 9*C] from in [B, H, W, C], zero padding 1; column order (ky, kx, c).
static void im2col(const real *in, int B, int H, int W, int C, real *col)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                real *row = col + (((size_t)b * H + y) * W + x) * K1 * C;
                for (int ky = 0; ky < FEATNET_KERNEL; ky++)
                    for (int kx = 0; kx < FEATNET_KERNEL; kx++) {
                        int sy = y + ky - 1, sx = x + kx - 1;
                        real *dst = row + (ky * FEATNET_KERNEL + kx) * C;
                        if (sy < 0 || sy >= H || sx < 0 || sx >= W) memset(dst, 0, sizeof(real) * C);
                        else memcpy(dst, in + (((size_t)b * H + sy) * W + sx) * C, sizeof(real) * C);
                    }
            }
}

// d_in [B, H, W, C] += the transpose of im2col applied to d_col [B*H*W, 9*C].
static void col2im_add(const real *d_col, int B, int H, int W, int C, real *d_in)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const real *row = d_col + (((size_t)b * H + y) * W + x) * K1 * C;
                for (int ky = 0; ky < FEATNET_KERNEL; ky++)
                    for (int kx = 0; kx < FEATNET_KERNEL; kx++) {
                        int sy = y + ky - 1, sx = x + kx - 1;
                        if (sy < 0 || sy >= H || sx < 0 || sx >= W) continue;
                        const real *src = row + (ky * FEATNET_KERNEL + kx) * C;
                        real *dst = d_in + (((size_t)b * H + sy) * W + sx) * C;
                        for (int c = 0; c < C; c++) dst[c] += src[c];
                    }
            }
}

// out [rows, n] = act(in [rows, k] W^T + bias), W [n, k]; relu != 0 applies ReLU.
static void linear_forward(const real *in, const real *w, const real *bias, int rows, int n, int k,
                           int relu, real *out)
{
    gemm(NO_TRANS, TRANS, rows, n, k, 1, in, k, w, k, 0, out, n);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) {
            real v = out[(size_t)r * n + j] + bias[j];
            out[(size_t)r * n + j] = relu && v < 0 ? 0 : v;
        }
}

// Given d_out [rows, n] of linear_forward (ReLU already applied to d_out): accumulates
// gW [n, k] += d_out^T in, gb [n] += column sums, and writes d_in [rows, k] = d_out W (if d_in).
static void linear_backward(const real *d_out, const real *in, const real *w, int rows, int n, int k,
                            real *gw, real *gb, real *d_in)
{
    gemm(TRANS, NO_TRANS, n, k, rows, 1, d_out, n, in, k, 1, gw, k);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < n; j++) {
        real s = 0;
        for (int r = 0; r < rows; r++) s += d_out[(size_t)r * n + j];
        gb[j] += s;
    }
    if (d_in) gemm(NO_TRANS, NO_TRANS, rows, k, n, 1, d_out, n, w, k, 0, d_in, k);
}

// d [n] *= (activation [n] > 0): the ReLU's derivative from its output.
static void relu_mask(real *d, const real *activation, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        if (activation[i] <= 0) d[i] = 0;
}

// out [B, H/2, W/2, C] = 2x2 max of in [B, H, W, C]; arg holds each maximum's index into in.
static void maxpool_forward(const real *in, int B, int H, int W, int C, real *out, int *arg)
{
    int Ho = H / 2, Wo = W / 2;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++)
                for (int c = 0; c < C; c++) {
                    size_t o = (((size_t)b * Ho + y) * Wo + x) * C + c;
                    size_t best = (((size_t)b * H + 2 * y) * W + 2 * x) * C + c;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            size_t i = (((size_t)b * H + 2 * y + dy) * W + 2 * x + dx) * C + c;
                            if (in[i] > in[best]) best = i;
                        }
                    out[o] = in[best];
                    arg[o] = (int)best;
                }
}

// d_in [n_in] = the pooled gradients d_out [n_out] routed back to their maxima (zero elsewhere).
static void maxpool_backward(const real *d_out, const int *arg, size_t n_out, real *d_in, size_t n_in)
{
    memset(d_in, 0, sizeof(real) * n_in);
    for (size_t o = 0; o < n_out; o++) d_in[arg[o]] += d_out[o];
}

void featnet_forward(struct featnet *f, const real *x, int B)
{
    int S = FEATNET_SIZE, hw1 = S * S, hw2 = POOLED1 * POOLED1;
    im2col(x, B, S, S, 1, f->col1);
    linear_forward(f->col1, w_of(f, W_CONV1), w_of(f, B_CONV1), B * hw1, FEATNET_C1, K1, 1, f->a1);
    maxpool_forward(f->a1, B, S, S, FEATNET_C1, f->p1, f->arg1);
    im2col(f->p1, B, POOLED1, POOLED1, FEATNET_C1, f->col2);
    linear_forward(f->col2, w_of(f, W_CONV2), w_of(f, B_CONV2), B * hw2, FEATNET_C2, K2, 1, f->a2);
    maxpool_forward(f->a2, B, POOLED1, POOLED1, FEATNET_C2, f->p2, f->arg2);
    linear_forward(f->p2, w_of(f, W_FC1), w_of(f, B_FC1), B, FEATNET_FEATURES, FLAT, 1, f->features);
    linear_forward(f->features, w_of(f, W_FC2), w_of(f, B_FC2), B, FEATNET_CLASSES, FEATNET_FEATURES, 0,
                   f->logits);
}

void featnet_backward(struct featnet *f, const real *d_logits, int B)
{
    size_t hw1 = FEATNET_SIZE * FEATNET_SIZE, hw2 = POOLED1 * POOLED1;
    linear_backward(d_logits, f->features, w_of(f, W_FC2), B, FEATNET_CLASSES, FEATNET_FEATURES,
                    g_of(f, W_FC2), g_of(f, B_FC2), f->d_features);
    relu_mask(f->d_features, f->features, (size_t)B * FEATNET_FEATURES);
    linear_backward(f->d_features, f->p2, w_of(f, W_FC1), B, FEATNET_FEATURES, FLAT, g_of(f, W_FC1),
                    g_of(f, B_FC1), f->d_p2);
    maxpool_backward(f->d_p2, f->arg2, (size_t)B * FLAT, f->d_a2, B * hw2 * FEATNET_C2);
    relu_mask(f->d_a2, f->a2, B * hw2 * FEATNET_C2);
    linear_backward(f->d_a2, f->col2, w_of(f, W_CONV2), (int)(B * hw2), FEATNET_C2, K2, g_of(f, W_CONV2),
                    g_of(f, B_CONV2), f->d_col2);
    memset(f->d_p1, 0, sizeof(real) * B * hw2 * FEATNET_C1);
    col2im_add(f->d_col2, B, POOLED1, POOLED1, FEATNET_C1, f->d_p1);
    maxpool_backward(f->d_p1, f->arg1, B * hw2 * FEATNET_C1, f->d_a1, B * hw1 * FEATNET_C1);
    relu_mask(f->d_a1, f->a1, B * hw1 * FEATNET_C1);
    linear_backward(f->d_a1, f->col1, w_of(f, W_CONV1), (int)(B * hw1), FEATNET_C1, K1, g_of(f, W_CONV1),
                    g_of(f, B_CONV1), NULL);
}

double featnet_loss(const struct featnet *f, const int *labels, int B, real *d_logits)
{
    double total = 0;
    for (int b = 0; b < B; b++) {
        const real *z = f->logits + (size_t)b * FEATNET_CLASSES;
        real *d = d_logits + (size_t)b * FEATNET_CLASSES;
        double max = z[0], sum = 0;
        for (int k = 1; k < FEATNET_CLASSES; k++) max = fmax(max, z[k]);
        for (int k = 0; k < FEATNET_CLASSES; k++) sum += exp(z[k] - max);
        total += log(sum) + max - z[labels[b]];
        for (int k = 0; k < FEATNET_CLASSES; k++)
            d[k] = (real)((exp(z[k] - max) / sum - (k == labels[b])) / B);
    }
    return total / B;
}
