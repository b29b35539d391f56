// AdamW as torch.optim.AdamW (decoupled weight decay, bias-corrected moments), the global
// gradient norm and clipping, over flat buffers of the parameter table's layout.
#ifndef PROMOE_ADAMW_H
#define PROMOE_ADAMW_H

#include <stdint.h>

#include "nn/params.h"

struct adamw_hparams {
    double lr, beta1, beta2, eps, weight_decay;
};

// One update at 1-based step number `step`, trainable tensors only.
void adamw_update(const struct param_table *t, real *w, const real *g, real *m, real *v,
                  const struct adamw_hparams *h, int64_t step);
// L2 norm of g [total], summed in fixed chunks and then in chunk order (thread-count independent).
double grad_global_norm(const real *g, size_t total);
// Scales g by max_norm / (norm + 1e-6) when that is below 1 (torch.nn.utils.clip_grad_norm_).
void grad_clip(real *g, size_t total, double norm, double max_norm);
// ema = decay * ema + (1 - decay) * w over trainable tensors; frozen ones are copied.
void ema_update(const struct param_table *t, real *ema, const real *w, double decay);

#endif
