// The resolved configuration of a run, and the one key table that drives YAML parsing, --set
// overrides, validation, `promoe config --list`, the canonical text and the run id.
// Keys are dotted ("model.hidden"); in YAML they may be nested mappings or dotted at top level.
#ifndef PROMOE_CONFIG_H
#define PROMOE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/routers.h"

enum objective { OBJECTIVE_RF, OBJECTIVE_DDPM };
enum lr_schedule { LR_CONSTANT, LR_COSINE };   // train.lr_schedule

// model.moe.router: the index of a row of config/routers.h (the router registry's order).
#define PROMOE_ROUTER_COUNT_ROW(name) +1
enum { ROUTER_COUNT = 0 PROMOE_ROUTERS(PROMOE_ROUTER_COUNT_ROW) };
// model.moe.activation: "default" picks the router's own (softmax for the linear routers,
// identity for prototypes and Expert Race).
enum moe_activation { ACTIVATION_DEFAULT, ACTIVATION_SOFTMAX, ACTIVATION_SIGMOID, ACTIVATION_IDENTITY };

enum pool_scope { POOL_GLOBAL, POOL_RANK, POOL_SAMPLES };
enum sim_off_diagonal { SIM_OFF_DIAGONAL_PAIRS, SIM_OFF_DIAGONAL_ALL };   // loss.router_sim.off_diagonal
enum kmeans_distance { KMEANS_EUCLIDEAN, KMEANS_COSINE };    // model.moe.kmeans.distance
enum kmeans_gate { KMEANS_GATE_ONE, KMEANS_GATE_SOFTMAX };    // model.moe.kmeans.gate
enum sim_divide { SIM_DIVIDE_TOKENS, SIM_DIVIDE_EXPERTS };                 // loss.router_sim.divide
// data.latents.moments: what the channel axis of a latents file holds (src/data/latents.h)
enum latents_moments { MOMENTS_NONE, MOMENTS_LOGVAR, MOMENTS_STD };
enum latents_sample { LATENTS_POSTERIOR, LATENTS_MEAN };   // data.latents.sample
enum precision { PRECISION_FP32, PRECISION_BF16 };   // train.precision
enum { CONFIG_STRING_MAX = 512 };

struct config {
    // model.*
    int hidden;            // model.hidden: width D
    int depth;             // model.depth: number of blocks
    int heads;             // model.heads
    int patch;             // model.patch: p
    int mlp_ratio;         // model.mlp_ratio: dense MLP width = ratio * D
    int learn_sigma;       // model.learn_sigma: output 2*C channels (DiT default, also for rf)
    double class_dropout;  // model.class_dropout: label dropout probability for CFG

    // model.moe.* (ROUTERS.md section 3)
    char moe_experts[CONFIG_STRING_MAX];  // model.moe.experts: "" = dense, else E<total>A<top-k>S<shared>U<uncond>
    int moe_every;         // model.moe.every: MoE in blocks first, first + every, ...
    int moe_first;         // model.moe.first
    int moe_hidden;        // model.moe.hidden: expert width, 0 = mlp_ratio * D / (1 + shared)
    int moe_router;        // model.moe.router: row of config/routers.h
    int moe_activation;    // model.moe.activation: enum moe_activation
    int moe_conditional;   // model.moe.conditional: null-label tokens to the unconditional experts
    double moe_alpha;      // model.moe.alpha: prototype score scale
    double moe_capacity;   // model.moe.capacity: expert-choice / DiffMoE capacity factor
    int moe_pool_scope;    // model.moe.pool_scope: enum pool_scope, data-parallel scope of pools
    int moe_pool_samples;  // model.moe.pool_samples: samples per pool with scope samples
    double moe_threshold_momentum;  // model.moe.threshold_momentum: EMA of inference thresholds
    double moe_race_momentum;  // model.moe.race_momentum: Expert Race threshold EMA, -1 = the above
    int moe_kmeans_distance;   // model.moe.kmeans.distance: enum kmeans_distance
    int moe_kmeans_gate;       // model.moe.kmeans.gate: enum kmeans_gate
    double moe_kmeans_momentum;    // model.moe.kmeans.momentum: centroid update momentum
    char moe_superclasses[CONFIG_STRING_MAX];  // model.moe.superclasses: class -> superclass file

    // loss.* (auxiliary losses, each summed over MoE layers with its weight)
    double rcl_weight;     // loss.rcl.weight: routing contrastive loss (prototype router)
    double rcl_tau;        // loss.rcl.tau
    double balance_weight; // loss.balance.weight: Switch load-balancing loss
    double router_sim_weight;  // loss.router_sim.weight: Expert Race router similarity
    int router_sim_off_diagonal;   // loss.router_sim.off_diagonal: enum sim_off_diagonal
    int router_sim_divide;         // loss.router_sim.divide: enum sim_divide
    double cls_weight;     // loss.cls.weight: classification router cross-entropy
    double capacity_weight;    // loss.capacity.weight: DiffMoE capacity predictor BCE
    double plr_weight;     // loss.plr.weight: per-layer regularisation heads on MoE blocks (Expert Race)

    // objective, diffusion.*
    int objective;         // objective: rf | ddpm
    double rf_logit_mean;  // rf.logit_mean
    double rf_logit_std;   // rf.logit_std
    int ddpm_steps;        // ddpm.steps: training diffusion steps (1000)
    int ddpm_hybrid_loss;  // ddpm.hybrid_loss: mse + vb when model.learn_sigma (DiT's hybrid)

    // data.*
    char data_name[CONFIG_STRING_MAX];    // data.name: fashion-mnist | npy
    char data_path[CONFIG_STRING_MAX];    // data.path: folder (fashion-mnist) or latents .npy
    char data_labels[CONFIG_STRING_MAX];  // data.labels: labels .npy (npy only)
    int channels;          // data.channels: C
    int image_size;        // data.image_size: stored H = W (before data.pad_to)
    int num_classes;       // data.num_classes
    int pad_to;            // data.pad_to: 0 (none) or a size >= the stored size, zero-padded (-1 after scaling)
    int flip;              // data.flip: random horizontal flip
    int latents_moments;   // data.latents.moments: enum latents_moments (none = latents as stored)
    int latents_sample;    // data.latents.sample: enum latents_sample, posterior draw or its mean
    double latents_scale;  // data.latents.scale: factor on every latent (SD-VAE: 0.18215)

    // train.*
    int64_t steps;         // train.steps
    int batch_size;        // train.batch_size
    double lr;             // train.lr
    int warmup;            // train.warmup: steps of linear learning-rate warm-up
    int lr_schedule;       // train.lr_schedule: enum lr_schedule
    double weight_decay;   // train.weight_decay
    double beta1;          // train.beta1
    double beta2;          // train.beta2
    double adam_eps;       // train.eps
    double grad_clip;      // train.grad_clip: max global L2 norm, 0 = off
    double ema_decay;      // train.ema_decay
    int ema_warmup;        // train.ema_warmup: decay min(ema_decay, (1 + n) / (10 + n))
    uint64_t seed;         // train.seed
    int deterministic;     // train.deterministic: fixed-order gradient sum over ranks
    int precision;         // train.precision: enum precision of the matrix products (sampling too)
    int threads;           // train.threads: 0 = all cores (does not affect results)

    // log.*, ckpt.* (do not affect results)
    int log_every;         // log.every: steps between metric rows
    int routing_every;     // log.routing_every: steps between routing rows (0 = log.every)
    int ckpt_every;        // ckpt.every: steps between checkpoints (0 = only at the end)
    char ckpt_dir[CONFIG_STRING_MAX];     // ckpt.dir: checkpoints go to ckpt.dir/<run id>/

    // sample.* (defaults for `promoe sample` and the end-of-run grid; do not affect training)
    int sample_steps;      // sample.steps
    double sample_cfg;     // sample.cfg
    int sample_cfg_channels; // sample.cfg_channels: number of channels guided, 0 = all
    int sample_n;          // sample.n: images in the end-of-run grid (0 = none)
    int sample_batch;      // sample.batch: images per sampler pass (0 = the model's batch)

    // eval.* (sample quality during training; do not affect training)
    int eval_every;        // eval.every: steps between evaluations (0 = off; also at the final step)
    int eval_n;            // eval.n: samples per cfg scale
    char eval_cfg[CONFIG_STRING_MAX];     // eval.cfg: comma-separated cfg scales
    int eval_steps;        // eval.steps: sampler steps
    int val_every;         // eval.val_every: steps between validation losses (0 = with eval.every)
    int val_n;             // eval.val_n: held-out test images of the validation loss (0 = off)
    int val_bins;          // eval.val_bins: timestep bins of the validation loss
};

// Fills every key with its default.
void config_defaults(struct config *cfg);

// Reads a YAML file over cfg. Errors name the file, line and column, and the key.
int config_load_file(struct config *cfg, const char *path);

// Reads YAML text over cfg; `origin` names the text in errors (a file name, "checkpoint").
int config_load_text(struct config *cfg, const char *text, const char *origin);

// Applies one override "key=value" (value parsed by the key's type).
int config_set(struct config *cfg, const char *assignment);

// Sets one key from its value text, typed by the key table. Errors name no position or key:
// unknown key (with "did you mean"), a section, wrong type, out of range.
int config_set_key(struct config *cfg, const char *name, const char *value);

// The value of a key as text (strings unquoted, other types as in the canonical text); returns
// the length as snprintf, or -1 with a message for an unknown key.
int config_value_text(const struct config *cfg, const char *name, char *buf, size_t size);

// The name of key i (0, 1, ... in the key table's order), NULL past the last key: for checks
// that walk a section ("model.moe.").
const char *config_key_name(size_t i);

// Cross-key checks: heads divide hidden, patch divides image_size, hidden % 4 == 0, ...
int config_validate(const struct config *cfg);

// Canonical text: every key (a key added after runs were recorded only when away from its default),
// sorted by name, one "key: value" line, values in a fixed format
// (doubles with %.17g). Returns the number of bytes written (as snprintf).
int config_canonical(const struct config *cfg, char *buf, size_t size);

// Run id: the first 16 hex digits of SHA-256 over the canonical text restricted to the keys that
// affect results (threads, log.*, ckpt.*, sample.* excluded). Keys added to the table after run ids
// were fixed count only when away from their default, as in the canonical text, so earlier runs
// keep their ids. out must
// hold 17 bytes.
void config_run_id(const struct config *cfg, char out[17]);

// Prints every key with its type, default and one-line doc (for `promoe config --list`).
void config_print_list(FILE *out);

// Levenshtein distance between any text a and a short name b (below 64 characters), for
// "did you mean" suggestions of keys and sweep sections.
size_t config_edit_distance(const char *a, const char *b);

#endif
