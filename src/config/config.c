// The config key table (after Redis's static_configs[]): one row per key with its type, field,
// default, bounds and doc line. The same table drives YAML loading (libyaml events, nested or
// dotted keys, scalars typed by the table and not by YAML), --set overrides, range checks, the
// canonical text, the run id (SHA-256 over the keys that affect results) and `config --list`.
// Loads are all-or-nothing: a load or override that fails leaves the struct as it was.
#include "config/config.h"

#include "core/error.h"
#include "core/sha256.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

enum key_type { KEY_INT, KEY_INT64, KEY_UINT64, KEY_DOUBLE, KEY_BOOL, KEY_STRING, KEY_ENUM };

enum key_flag {
    KEY_RESULTS = 1,  // part of the run id: changing it changes what training computes
    KEY_MIN_OPEN = 2, // the lower bound itself is excluded
    KEY_MAX_OPEN = 4, // the upper bound itself is excluded
    KEY_ADDED = 8,    // a key added after run ids were fixed: in the canonical text (and the id, for a
                      // results key) only when away from its default, so every earlier run keeps its
                      // id, its stored config and its checkpoint bytes
};

struct config_key {
    const char *name;
    enum key_type type;
    size_t offset, size;
    const char *default_text; // parsed exactly like a value from YAML or --set
    double min, max;          // bounds of numeric keys, inclusive unless KEY_*_OPEN
    unsigned flags;
    const char *const *choices; // enum names (index = value) or allowed strings; NULL-terminated
    const char *doc;
};

enum {
    NAME_CAPACITY = 256,                         // longest dotted name accepted from input
    KEY_NAME_CAPACITY = 64,                      // longest name in the key table, plus one
    LINE_CAPACITY = 4 * CONFIG_STRING_MAX + 128, // one canonical line, strings fully escaped
    SUGGEST_DISTANCE = 3,                        // "did you mean" only for names this close
};

static const char *const objective_names[] = {"rf", "ddpm", NULL}; // index = enum objective
static const char *const lr_schedule_names[] = {"constant", "cosine", NULL}; // enum lr_schedule
static const char *const data_names[] = {"fashion-mnist", "npy", NULL};
static const char *const moments_names[] = {"none", "logvar", "std", NULL}; // enum latents_moments
static const char *const latents_sample_names[] = {"posterior", "mean", NULL}; // enum latents_sample
#define ROUTER_NAME_ROW(name) #name,
static const char *const router_names[] = {PROMOE_ROUTERS(ROUTER_NAME_ROW) NULL}; // config/routers.h
static const char *const pool_scope_names[] = {"global", "rank", "samples", NULL};   // enum pool_scope
static const char *const sim_off_diagonal_names[] = {"pairs", "all", NULL};   // enum sim_off_diagonal
static const char *const sim_divide_names[] = {"tokens", "experts", NULL};     // enum sim_divide
static const char *const kmeans_distance_names[] = {"euclidean", "cosine", NULL};   // enum kmeans_distance
static const char *const kmeans_gate_names[] = {"one", "softmax", NULL};            // enum kmeans_gate
static const char *const activation_names[] = {"default", "softmax", "sigmoid", "identity", NULL};
static const char *const precision_names[] = {"fp32", "bf16", NULL};   // enum precision

// clang-format off
#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define INT_KEY(name, f, def, lo, hi, flags, doc) \
    {name, KEY_INT, FIELD(f), def, lo, hi, flags, NULL, doc}
#define INT64_KEY(name, f, def, lo, hi, flags, doc) \
    {name, KEY_INT64, FIELD(f), def, lo, hi, flags, NULL, doc}
#define UINT64_KEY(name, f, def, flags, doc) \
    {name, KEY_UINT64, FIELD(f), def, 0, INFINITY, flags, NULL, doc}
#define DOUBLE_KEY(name, f, def, lo, hi, flags, doc) \
    {name, KEY_DOUBLE, FIELD(f), def, lo, hi, flags, NULL, doc}
#define BOOL_KEY(name, f, def, flags, doc) {name, KEY_BOOL, FIELD(f), def, 0, 1, flags, NULL, doc}
#define STRING_KEY(name, f, def, choices, flags, doc) \
    {name, KEY_STRING, FIELD(f), def, 0, 0, flags, choices, doc}
#define ENUM_KEY(name, f, def, choices, flags, doc) \
    {name, KEY_ENUM, FIELD(f), def, 0, 0, flags, choices, doc}
// clang-format on

// Row flags: RESULTS keys form the run id; OPERATIONAL keys change how a run goes, not its numbers.
enum {
    RESULTS = KEY_RESULTS,
    RESULTS_MIN_OPEN = KEY_RESULTS | KEY_MIN_OPEN,
    RESULTS_MAX_OPEN = KEY_RESULTS | KEY_MAX_OPEN,
    ADDED = KEY_RESULTS | KEY_ADDED,
    ADDED_MIN_OPEN = KEY_RESULTS | KEY_ADDED | KEY_MIN_OPEN,
    OPERATIONAL = 0,
    OPERATIONAL_ADDED = KEY_ADDED,
};

static const struct config_key keys[] = {
    INT_KEY("model.hidden", hidden, "192", 1, 16384, RESULTS, "width D of every token"),
    INT_KEY("model.depth", depth, "6", 1, 256, RESULTS, "number of transformer blocks"),
    INT_KEY("model.heads", heads, "6", 1, 256, RESULTS,
            "attention heads; must divide model.hidden"),
    INT_KEY("model.patch", patch, "4", 1, 64, RESULTS,
            "patch size p; must divide the (padded) image size"),
    INT_KEY("model.mlp_ratio", mlp_ratio, "4", 1, 16, RESULTS,
            "dense MLP width as a multiple of D"),
    BOOL_KEY("model.learn_sigma", learn_sigma, "true", RESULTS,
             "also predict the variance: 2*C outputs (DiT)"),
    DOUBLE_KEY("model.class_dropout", class_dropout, "0.1", 0, 1, RESULTS,
               "probability a label is replaced by the null class (trains CFG)"),
    STRING_KEY("model.moe.experts", moe_experts, "", NULL, RESULTS,
               "MoE expert set E<total>A<top-k>S<shared>U<unconditional>, e.g. E14A1S1U1; empty = dense"),
    INT_KEY("model.moe.every", moe_every, "2", 1, 256, RESULTS, "a MoE layer every this many blocks"),
    INT_KEY("model.moe.first", moe_first, "1", 0, 255, RESULTS, "index of the first MoE block"),
    INT_KEY("model.moe.hidden", moe_hidden, "0", 0, 1 << 20, RESULTS,
            "expert FFN width; 0 = mlp_ratio * hidden / (1 + shared experts)"),
    ENUM_KEY("model.moe.router", moe_router, "prototype", router_names, RESULTS,
             "routing method of the routed experts"),
    ENUM_KEY("model.moe.activation", moe_activation, "default", activation_names, RESULTS,
             "router score activation; default = the router's own"),
    BOOL_KEY("model.moe.conditional", moe_conditional, "false", RESULTS,
             "conditional routing: null-label tokens go to the unconditional experts"),
    DOUBLE_KEY("model.moe.alpha", moe_alpha, "1.0", 0, INFINITY, RESULTS_MIN_OPEN,
               "scale of the prototype cosine scores"),
    DOUBLE_KEY("model.moe.capacity", moe_capacity, "1.0", 0, 64, RESULTS_MIN_OPEN,
               "capacity factor of expert choice and DiffMoE"),
    ENUM_KEY("model.moe.pool_scope", moe_pool_scope, "global", pool_scope_names, RESULTS,
             "batch-level router quantities: global (whole batch over ranks), rank (own slice) or "
             "samples (groups of model.moe.pool_samples samples, as per-device pools)"),
    INT_KEY("model.moe.pool_samples", moe_pool_samples, "0", 0, 1e6, ADDED,
            "samples per pool with pool_scope samples (must divide train.batch_size); 0 otherwise"),
    DOUBLE_KEY("model.moe.threshold_momentum", moe_threshold_momentum, "0.95", 0, 1, RESULTS,
               "momentum of the EMA inference thresholds (DiffMoE, Expert Race)"),
    DOUBLE_KEY("model.moe.race_momentum", moe_race_momentum, "-1", -1, 1, ADDED,
               "momentum of Expert Race's EMA inference threshold (ROUTERS.md 3.4: 0.99); "
               "-1 = model.moe.threshold_momentum"),
    ENUM_KEY("model.moe.kmeans.distance", moe_kmeans_distance, "euclidean", kmeans_distance_names,
             ADDED, "k-means assignment: squared Euclidean distance, or cosine distance 1 - cos"),
    ENUM_KEY("model.moe.kmeans.gate", moe_kmeans_gate, "one", kmeans_gate_names, ADDED,
             "k-means gate: 1, or softmax(-d^2) over the centroids at the chosen one"),
    DOUBLE_KEY("model.moe.kmeans.momentum", moe_kmeans_momentum, "0", 0, 1, ADDED | KEY_MAX_OPEN,
               "k-means update c <- m c + (1 - m) mean of its tokens; 0 = replace by the mean"),
    STRING_KEY("model.moe.superclasses", moe_superclasses, "", NULL, RESULTS,
               "class -> superclass map of the classification router (one 'class superclass' per line)"),
    DOUBLE_KEY("loss.rcl.weight", rcl_weight, "1.0", 0, INFINITY, RESULTS,
               "routing contrastive loss weight (prototype router)"),
    DOUBLE_KEY("loss.rcl.tau", rcl_tau, "0.07", 0, INFINITY, RESULTS_MIN_OPEN,
               "routing contrastive loss temperature"),
    DOUBLE_KEY("loss.balance.weight", balance_weight, "0", 0, INFINITY, RESULTS,
               "load-balancing loss weight (DiT-MoE uses 0.01)"),
    DOUBLE_KEY("loss.router_sim.weight", router_sim_weight, "0", 0, INFINITY, RESULTS,
               "router similarity loss weight (Expert Race)"),
    ENUM_KEY("loss.router_sim.off_diagonal", router_sim_off_diagonal, "pairs", sim_off_diagonal_names,
             ADDED, "router similarity W_ij (i != j) over the co-selections of expert pairs, or all of M'"),
    ENUM_KEY("loss.router_sim.divide", router_sim_divide, "tokens", sim_divide_names, ADDED,
             "router similarity sum divided by the pool's routed tokens or by the number of experts"),
    DOUBLE_KEY("loss.cls.weight", cls_weight, "1.0", 0, INFINITY, RESULTS,
               "classification router cross-entropy weight"),
    DOUBLE_KEY("loss.plr.weight", plr_weight, "0", 0, INFINITY, RESULTS,
               "per-layer regularisation (Expert Race): a head per MoE block predicts the target"),
    DOUBLE_KEY("loss.capacity.weight", capacity_weight, "0.01", 0, INFINITY, RESULTS,
               "DiffMoE capacity predictor BCE weight"),
    ENUM_KEY("objective", objective, "rf", objective_names, RESULTS,
             "training objective: rectified flow or DDPM"),
    DOUBLE_KEY("rf.logit_mean", rf_logit_mean, "0.0", -INFINITY, INFINITY, RESULTS,
               "mean of the logit-normal timestep density"),
    DOUBLE_KEY("rf.logit_std", rf_logit_std, "1.0", 0, INFINITY, RESULTS_MIN_OPEN,
               "standard deviation of the logit-normal timestep density"),
    INT_KEY("ddpm.steps", ddpm_steps, "1000", 2, 100000, RESULTS, "training diffusion steps T"),
    BOOL_KEY("ddpm.hybrid_loss", ddpm_hybrid_loss, "true", RESULTS,
             "add the variational bound to the MSE when model.learn_sigma"),
    STRING_KEY("data.name", data_name, "fashion-mnist", data_names, RESULTS,
               "dataset reader: fashion-mnist idx files or npy arrays"),
    STRING_KEY("data.path", data_path, "/usr/share/datasets/fashion-mnist", NULL, RESULTS,
               "fashion-mnist folder, or the images/latents .npy"),
    STRING_KEY("data.labels", data_labels, "", NULL, RESULTS, "labels .npy (data.name npy only)"),
    INT_KEY("data.channels", channels, "1", 1, 64, RESULTS, "channels C of a stored image"),
    INT_KEY("data.image_size", image_size, "28", 1, 4096, RESULTS,
            "height = width of a stored image"),
    INT_KEY("data.num_classes", num_classes, "10", 1, 100000, RESULTS, "number of class labels"),
    INT_KEY("data.pad_to", pad_to, "0", 0, 4096, RESULTS,
            "zero-pad images to this size (0 = no padding)"),
    BOOL_KEY("data.flip", flip, "true", RESULTS, "random horizontal flips"),
    ENUM_KEY("data.latents.moments", latents_moments, "none", moments_names, ADDED,
             "npy latents file holds: none = latents as stored, or posterior moments "
             "[mean, logvar] / [mean, std] on 2C channels"),
    ENUM_KEY("data.latents.sample", latents_sample, "posterior", latents_sample_names, ADDED,
             "with moments: z = mean + std * eps per step (posterior) or z = mean"),
    DOUBLE_KEY("data.latents.scale", latents_scale, "1", 0, INFINITY, ADDED_MIN_OPEN,
               "factor on every npy latent (0.18215 for SD-VAE moments)"),
    INT64_KEY("train.steps", steps, "1000", 0, 1e12, RESULTS, "optimizer steps"),
    INT_KEY("train.batch_size", batch_size, "128", 1, 1e6, RESULTS, "images per step"),
    DOUBLE_KEY("train.lr", lr, "1e-4", 0, 10, RESULTS, "AdamW learning rate"),
    INT_KEY("train.warmup", warmup, "0", 0, INT_MAX, RESULTS,
            "steps of linear learning-rate warm-up (lr (step + 1) / warmup), 0 = none"),
    ENUM_KEY("train.lr_schedule", lr_schedule, "constant", lr_schedule_names, RESULTS,
             "learning rate after the warm-up: constant, or cosine decay to 0 at train.steps"),
    DOUBLE_KEY("train.weight_decay", weight_decay, "0", 0, 10, RESULTS,
               "AdamW decoupled weight decay"),
    DOUBLE_KEY("train.beta1", beta1, "0.9", 0, 1, RESULTS_MAX_OPEN, "AdamW first-moment decay"),
    DOUBLE_KEY("train.beta2", beta2, "0.999", 0, 1, RESULTS_MAX_OPEN, "AdamW second-moment decay"),
    DOUBLE_KEY("train.eps", adam_eps, "1e-8", 0, INFINITY, RESULTS_MIN_OPEN,
               "AdamW denominator epsilon"),
    DOUBLE_KEY("train.grad_clip", grad_clip, "0", 0, INFINITY, RESULTS,
               "clip the global gradient L2 norm to this (0 = off)"),
    DOUBLE_KEY("train.ema_decay", ema_decay, "0.9999", 0, 1, RESULTS, "decay of the EMA weights"),
    BOOL_KEY("train.ema_warmup", ema_warmup, "false", RESULTS,
             "EMA decay min(ema_decay, (1 + n) / (10 + n)) at update n, for short runs"),
    UINT64_KEY("train.seed", seed, "0", RESULTS, "seed of every random stream"),
    ENUM_KEY("train.precision", precision, "fp32", precision_names, ADDED,
             "matrix products: fp32, or bf16 operands with fp32 accumulation (weights, optimizer, EMA, "
             "losses and reductions stay fp32; needs AVX512-BF16)"),
    INT_KEY("train.threads", threads, "0", 0, 1024, OPERATIONAL, "worker threads (0 = all cores)"),
    BOOL_KEY("train.deterministic", deterministic, "false", OPERATIONAL,
             "sum gradients over ranks in rank order (bit-identical repeats, any MPI algorithm)"),
    INT_KEY("log.every", log_every, "10", 1, INT_MAX, OPERATIONAL, "steps between metric rows"),
    INT_KEY("log.routing_every", routing_every, "0", 0, INT_MAX, OPERATIONAL,
            "steps between routing rows (routing, class_routing, moe/*), a multiple of log.every; 0 = log.every"),
    INT_KEY("ckpt.every", ckpt_every, "0", 0, INT_MAX, OPERATIONAL,
            "steps between checkpoints (0 = only at the end)"),
    STRING_KEY("ckpt.dir", ckpt_dir, "results/checkpoints", NULL, OPERATIONAL,
               "checkpoints go to ckpt.dir/<run id>/"),
    INT_KEY("sample.steps", sample_steps, "50", 1, 100000, OPERATIONAL, "sampler steps"),
    DOUBLE_KEY("sample.cfg", sample_cfg, "1.0", 0, 100, OPERATIONAL,
               "classifier-free guidance scale (1 = no guidance)"),
    INT_KEY("sample.cfg_channels", sample_cfg_channels, "0", 0, 64, OPERATIONAL,
            "number of channels guided (0 = all)"),
    INT_KEY("sample.batch", sample_batch, "0", 0, 65536, OPERATIONAL_ADDED,
            "images per sampler pass, each of the cond and null passes (0 = as many as the model's batch "
            "holds); DiffMoE's inference depends on it (official: 128 for rf, DiT's 32 for ddpm)"),
    INT_KEY("sample.n", sample_n, "100", 0, 100000, OPERATIONAL,
            "images in the end-of-run grid (0 = none)"),
    INT_KEY("eval.every", eval_every, "0", 0, INT_MAX, OPERATIONAL,
            "evaluate sample quality every this many steps and at the end (0 = off)"),
    INT_KEY("eval.n", eval_n, "1000", 4, 100000, OPERATIONAL, "samples per cfg scale in an evaluation"),
    STRING_KEY("eval.cfg", eval_cfg, "1.0,1.5", NULL, OPERATIONAL, "cfg scales of an evaluation, comma-separated"),
    INT_KEY("eval.steps", eval_steps, "50", 1, 100000, OPERATIONAL, "sampler steps of an evaluation"),
    INT_KEY("eval.val_every", val_every, "0", 0, INT_MAX, OPERATIONAL,
            "steps between validation losses, also at the end (0 = at eval.every)"),
    INT_KEY("eval.val_n", val_n, "1000", 0, 10000, OPERATIONAL,
            "held-out test images of the validation loss, balanced over classes (0 = off)"),
    INT_KEY("eval.val_bins", val_bins, "10", 1, 100, OPERATIONAL,
            "timestep bins of the validation loss: every image is noised at each bin's midpoint"),
};

enum { KEY_COUNT = sizeof keys / sizeof keys[0] };

// ---------------------------------------------------------------------------------------------
// Key lookup and "did you mean"

static const struct config_key *find_key(const char *name)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

// The name of key i of the table (in table order), or NULL past the last one.
const char *config_key_name(size_t i) { return i < KEY_COUNT ? keys[i].name : NULL; }

// True when name is the section of some key: "model" for "model.hidden".
static int is_section(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strncmp(keys[i].name, name, n) == 0 && keys[i].name[n] == '.') return 1;
    return 0;
}

// Levenshtein distance; b is a key name (short), a may be anything.
size_t config_edit_distance(const char *a, const char *b)
{
    size_t row[KEY_NAME_CAPACITY], nb = strlen(b);
    if (nb >= KEY_NAME_CAPACITY) BUG("key name '%s' is too long", b);
    for (size_t j = 0; j <= nb; j++) row[j] = j;
    for (size_t i = 1; a[i - 1]; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t above = row[j], best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best) best = above + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[nb];
}

static const char *last_part(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

// The closest key by edit distance, or else the only key with the same last part ("hidden").
static const char *suggest_key(const char *name)
{
    const char *best = NULL, *same_tail = NULL;
    size_t best_distance = SUGGEST_DISTANCE + 1;
    int tail_matches = 0;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        size_t d = config_edit_distance(name, keys[i].name);
        if (d < best_distance) {
            best_distance = d;
            best = keys[i].name;
        }
        if (strcmp(last_part(name), last_part(keys[i].name)) == 0) {
            tail_matches++;
            same_tail = keys[i].name;
        }
    }
    if (best) return best;
    return tail_matches == 1 ? same_tail : NULL;
}

static int unknown_key(const char *name)
{
    const char *suggestion = suggest_key(name);
    if (suggestion) return err("unknown key (did you mean '%s'?)", suggestion);
    return err("unknown key");
}

// ---------------------------------------------------------------------------------------------
// Values: text -> field, typed by the key table. Errors do not name the key: callers add it.

static void *field_of(struct config *cfg, const struct config_key *key)
{
    return (char *)cfg + key->offset;
}

static const void *const_field_of(const struct config *cfg, const struct config_key *key)
{
    return (const char *)cfg + key->offset;
}

static int in_bounds(const struct config_key *key, double v)
{
    int above_min = (key->flags & KEY_MIN_OPEN) ? v > key->min : v >= key->min;
    int below_max = (key->flags & KEY_MAX_OPEN) ? v < key->max : v <= key->max;
    return above_min && below_max;
}

static void format_bound(double v, char *buf, size_t size)
{
    if (isinf(v))
        snprintf(buf, size, "%sinf", v < 0 ? "-" : "");
    else
        snprintf(buf, size, "%.17g", v);
}

// The range or allowed values of a key as text: "[1, 256]", "(0, inf)", "rf|ddpm", "" for none.
static void format_range(const struct config_key *key, char *buf, size_t size)
{
    char lo[32], hi[32];
    buf[0] = '\0';
    switch (key->type) {
    case KEY_INT:
    case KEY_INT64: snprintf(buf, size, "[%.0f, %.0f]", key->min, key->max); break;
    case KEY_UINT64: snprintf(buf, size, "[0, %" PRIu64 "]", UINT64_MAX); break;
    case KEY_DOUBLE:
        if (isinf(key->min) && isinf(key->max)) break;
        format_bound(key->min, lo, sizeof lo);
        format_bound(key->max, hi, sizeof hi);
        snprintf(buf, size, "%c%s, %s%c",
                 (key->flags & KEY_MIN_OPEN) || isinf(key->min) ? '(' : '[', lo, hi,
                 (key->flags & KEY_MAX_OPEN) || isinf(key->max) ? ')' : ']');
        break;
    case KEY_BOOL: snprintf(buf, size, "true|false"); break;
    case KEY_STRING:
    case KEY_ENUM:
        for (size_t i = 0; key->choices && key->choices[i]; i++)
            snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? "|" : "", key->choices[i]);
        break;
    }
}

static int out_of_range(const struct config_key *key, const char *value_text)
{
    char range[128];
    format_range(key, range, sizeof range);
    return err("%s is out of range %s", value_text, range);
}

static int parse_finite(const char *text, double *out)
{
    char *end;
    if (!*text || isspace((unsigned char)*text)) return -1;
    *out = strtod(text, &end);
    return *end == '\0' && isfinite(*out) ? 0 : -1;
}

// Decimal integers; also numbers written as exact integers ("1e6", "2.0"). Values past int64
// saturate, so the range check reports them.
static int parse_integer(const char *text, int64_t *out)
{
    char *end;
    double d;
    if (!*text || isspace((unsigned char)*text)) return -1;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*end == '\0') {
        *out = v;
        return 0;
    }
    if (parse_finite(text, &d) < 0 || d != trunc(d)) return -1;
    *out = d >= 0x1p62 ? INT64_MAX : d <= -0x1p62 ? INT64_MIN : (int64_t)d;
    return 0;
}

static int set_integer(struct config *cfg, const struct config_key *key, const char *text)
{
    int64_t v;
    if (parse_integer(text, &v) < 0) return err("expected an integer, got '%s'", text);
    if (!in_bounds(key, (double)v)) return out_of_range(key, text);
    if (key->type == KEY_INT)
        *(int *)field_of(cfg, key) = (int)v;
    else
        *(int64_t *)field_of(cfg, key) = v;
    return 0;
}

static int set_uint64(struct config *cfg, const struct config_key *key, const char *text)
{
    char *end;
    int64_t negative;
    if (text[0] == '-' && parse_integer(text, &negative) == 0) return out_of_range(key, text);
    if (!isdigit((unsigned char)text[0]))
        return err("expected a non-negative integer, got '%s'", text);
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0') return err("expected a non-negative integer, got '%s'", text);
    if (errno == ERANGE) return out_of_range(key, text);
    *(uint64_t *)field_of(cfg, key) = v;
    return 0;
}

static int set_double(struct config *cfg, const struct config_key *key, const char *text)
{
    double v;
    if (parse_finite(text, &v) < 0) return err("expected a number, got '%s'", text);
    if (!in_bounds(key, v)) return out_of_range(key, text);
    *(double *)field_of(cfg, key) = v;
    return 0;
}

static int set_bool(struct config *cfg, const struct config_key *key, const char *text)
{
    static const char *const words[] = {"false", "true", "off", "on", "no", "yes"}; // even = false
    for (int i = 0; i < 6; i++) {
        if (strcasecmp(text, words[i]) == 0) {
            *(int *)field_of(cfg, key) = i % 2;
            return 0;
        }
    }
    return err("expected true or false, got '%s'", text);
}

static int choice_index(const struct config_key *key, const char *text)
{
    for (int i = 0; key->choices[i]; i++)
        if (strcmp(key->choices[i], text) == 0) return i;
    return -1;
}

static int bad_choice(const struct config_key *key, const char *text)
{
    char allowed[128];
    format_range(key, allowed, sizeof allowed);
    return err("expected one of %s, got '%s'", allowed, text);
}

static int set_string(struct config *cfg, const struct config_key *key, const char *text)
{
    size_t n = strlen(text);
    if (key->choices && choice_index(key, text) < 0) return bad_choice(key, text);
    if (n >= key->size)
        return err("value is %zu bytes, more than the limit of %zu", n, key->size - 1);
    memset(field_of(cfg, key), 0, key->size); // whole field, so equal configs compare equal
    memcpy(field_of(cfg, key), text, n);
    return 0;
}

static int set_enum(struct config *cfg, const struct config_key *key, const char *text)
{
    int i = choice_index(key, text);
    if (i < 0) return bad_choice(key, text);
    *(int *)field_of(cfg, key) = i;
    return 0;
}

// Parses text by the key's type and stores it; on error the field is unchanged.
static int set_value(struct config *cfg, const struct config_key *key, const char *text)
{
    switch (key->type) {
    case KEY_INT:
    case KEY_INT64: return set_integer(cfg, key, text);
    case KEY_UINT64: return set_uint64(cfg, key, text);
    case KEY_DOUBLE: return set_double(cfg, key, text);
    case KEY_BOOL: return set_bool(cfg, key, text);
    case KEY_STRING: return set_string(cfg, key, text);
    case KEY_ENUM: return set_enum(cfg, key, text);
    }
    BUG("key '%s' has type %d", key->name, (int)key->type);
}

static size_t type_size(enum key_type type)
{
    switch (type) {
    case KEY_INT64:
    case KEY_UINT64: return sizeof(int64_t);
    case KEY_DOUBLE: return sizeof(double);
    case KEY_STRING: return CONFIG_STRING_MAX;
    default: return sizeof(int);
    }
}

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (keys[i].size != type_size(keys[i].type))
            BUG("key '%s': field size %zu does not fit its type", keys[i].name, keys[i].size);
        if (set_value(cfg, &keys[i], keys[i].default_text) < 0)
            BUG("key '%s': bad default: %s", keys[i].name, err_message());
    }
}

// ---------------------------------------------------------------------------------------------
// YAML: a stream of libyaml events walked by recursive descent over nested mappings.

struct loader {
    yaml_parser_t parser;
    struct config *cfg;
    const char *origin;
    yaml_mark_t given_at[KEY_COUNT];
    unsigned char given[KEY_COUNT];
};

static int at_key(const struct loader *ld, yaml_mark_t mark, const char *name)
{
    return err_context("%s:%zu:%zu: key '%s'", ld->origin, mark.line + 1, mark.column + 1, name);
}

static int at_mark(const struct loader *ld, yaml_mark_t mark, const char *message)
{
    return err("%s:%zu:%zu: %s", ld->origin, mark.line + 1, mark.column + 1, message);
}

static int malformed(const struct loader *ld)
{
    const yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem ? p->problem : "out of memory";
    if (p->error == YAML_READER_ERROR)
        return err("%s: malformed YAML: %s at byte %zu", ld->origin, problem, p->problem_offset);
    if (p->context)
        return err("%s:%zu:%zu: malformed YAML: %s (%s at line %zu, column %zu)", ld->origin,
                   p->problem_mark.line + 1, p->problem_mark.column + 1, problem, p->context,
                   p->context_mark.line + 1, p->context_mark.column + 1);
    return err("%s:%zu:%zu: malformed YAML: %s", ld->origin, p->problem_mark.line + 1,
               p->problem_mark.column + 1, problem);
}

static int next_event(struct loader *ld, yaml_event_t *event)
{
    return yaml_parser_parse(&ld->parser, event) ? 0 : malformed(ld);
}

static const char *scalar_text(const yaml_event_t *event)
{
    return (const char *)event->data.scalar.value;
}

// An empty value, "~" or "null" written plainly: an empty document or an emptied section.
static int is_null(const yaml_event_t *event)
{
    if (event->type != YAML_SCALAR_EVENT || event->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *text = scalar_text(event);
    return !*text || strcmp(text, "~") == 0 || strcasecmp(text, "null") == 0;
}

static int join_name(const struct loader *ld, const char *prefix, const yaml_event_t *key_event,
                     char name[NAME_CAPACITY])
{
    int n =
        snprintf(name, NAME_CAPACITY, "%s%s%s", prefix, *prefix ? "." : "", scalar_text(key_event));
    if (n < 0 || n >= NAME_CAPACITY) return at_mark(ld, key_event->start_mark, "key is too long");
    return 0;
}

static int load_scalar(struct loader *ld, const char *name, yaml_mark_t key_mark,
                       const yaml_event_t *value)
{
    const struct config_key *key = find_key(name);
    if (!key && is_section(name)) {
        if (is_null(value)) return 0;
        err("expected a mapping of %s.* keys, got '%s'", name, scalar_text(value));
        return at_key(ld, key_mark, name);
    }
    if (!key) {
        unknown_key(name);
        return at_key(ld, key_mark, name);
    }
    size_t index = (size_t)(key - keys);
    if (ld->given[index]) {
        err("given twice (first at line %zu, column %zu)", ld->given_at[index].line + 1,
            ld->given_at[index].column + 1);
        return at_key(ld, key_mark, name);
    }
    ld->given[index] = 1;
    ld->given_at[index] = key_mark;
    if (strlen(scalar_text(value)) != value->data.scalar.length)
        err("contains a NUL character");
    else if (set_value(ld->cfg, key, scalar_text(value)) == 0)
        return 0;
    return at_key(ld, value->start_mark, name);
}

static int load_mapping(struct loader *ld, const char *prefix);

// A key that is not a scalar key: a section given a mapping, or an error.
static int load_collection(struct loader *ld, const char *name, yaml_mark_t key_mark,
                           const yaml_event_t *value)
{
    int is_key = find_key(name) != NULL;
    if (!is_key && value->type == YAML_MAPPING_START_EVENT) return load_mapping(ld, name);
    if (!is_key && !is_section(name)) {
        unknown_key(name);
        return at_key(ld, key_mark, name);
    }
    const char *got = value->type == YAML_ALIAS_EVENT ? "an alias (aliases are not supported)"
                      : value->type == YAML_SEQUENCE_START_EVENT ? "a sequence"
                                                                 : "a mapping";
    if (is_key)
        err("expected a single value, got %s", got);
    else
        err("expected a mapping of %s.* keys, got %s", name, got);
    return at_key(ld, value->start_mark, name);
}

static int load_entry(struct loader *ld, const char *prefix, const yaml_event_t *key_event)
{
    char name[NAME_CAPACITY];
    yaml_event_t value;
    if (key_event->type != YAML_SCALAR_EVENT)
        return at_mark(ld, key_event->start_mark, "mapping keys must be plain names");
    if (join_name(ld, prefix, key_event, name) < 0 || next_event(ld, &value) < 0) return -1;
    int rc = value.type == YAML_SCALAR_EVENT
                 ? load_scalar(ld, name, key_event->start_mark, &value)
                 : load_collection(ld, name, key_event->start_mark, &value);
    yaml_event_delete(&value);
    return rc;
}

// Reads key/value pairs up to the end of the mapping whose start event was just read.
static int load_mapping(struct loader *ld, const char *prefix)
{
    for (;;) {
        yaml_event_t key_event;
        if (next_event(ld, &key_event) < 0) return -1;
        int end = key_event.type == YAML_MAPPING_END_EVENT;
        int rc = end ? 0 : load_entry(ld, prefix, &key_event);
        yaml_event_delete(&key_event);
        if (rc < 0 || end) return rc;
    }
}

// Reads the next event, which must be of the given type, and deletes it.
static int expect_event(struct loader *ld, yaml_event_type_t type, const char *message)
{
    yaml_event_t event;
    if (next_event(ld, &event) < 0) return -1;
    int rc = event.type == type ? 0 : at_mark(ld, event.start_mark, message);
    yaml_event_delete(&event);
    return rc;
}

static int load_document(struct loader *ld)
{
    yaml_event_t root;
    if (next_event(ld, &root) < 0) return -1;
    int rc = 0;
    if (root.type == YAML_MAPPING_START_EVENT)
        rc = load_mapping(ld, "");
    else if (!is_null(&root))
        rc = at_mark(ld, root.start_mark, "the top level must be a mapping of keys");
    yaml_event_delete(&root);
    if (rc < 0) return -1;
    return expect_event(ld, YAML_DOCUMENT_END_EVENT, "expected the end of the document");
}

static int load_stream(struct loader *ld)
{
    yaml_event_t event;
    if (expect_event(ld, YAML_STREAM_START_EVENT, "expected the start of the stream") < 0)
        return -1;
    if (next_event(ld, &event) < 0) return -1;
    yaml_event_type_t type = event.type;
    yaml_event_delete(&event);
    if (type == YAML_STREAM_END_EVENT) return 0; // no document at all: every key keeps its value
    if (load_document(ld) < 0) return -1;
    return expect_event(ld, YAML_STREAM_END_EVENT, "only one YAML document is allowed");
}

static int load_bytes(struct config *cfg, const char *text, size_t n, const char *origin)
{
    struct config work = *cfg;
    struct loader ld = {.cfg = &work, .origin = origin};
    if (!yaml_parser_initialize(&ld.parser)) return err("%s: out of memory", origin);
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, n);
    int rc = load_stream(&ld);
    yaml_parser_delete(&ld.parser);
    if (rc == 0) *cfg = work;
    return rc;
}

int config_load_text(struct config *cfg, const char *text, const char *origin)
{
    return load_bytes(cfg, text, strlen(text), origin);
}

// Reads a whole file into a malloc'ed buffer the caller frees.
static int read_file(const char *path, char **out, size_t *n_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err("cannot open '%s': %s", path, strerror(errno));
    size_t n = 0, capacity = 4096;
    char *buf = malloc(capacity);
    while (buf && (n += fread(buf + n, 1, capacity - n, f)) == capacity) {
        char *grown = realloc(buf, capacity *= 2);
        if (!grown) free(buf);
        buf = grown;
    }
    int saved_errno = buf ? errno : ENOMEM, failed = !buf || ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return err("cannot read '%s': %s", path, strerror(saved_errno));
    }
    *out = buf;
    *n_out = n;
    return 0;
}

int config_load_file(struct config *cfg, const char *path)
{
    char *text = NULL;
    size_t n = 0;
    if (read_file(path, &text, &n) < 0) return -1;
    int rc = load_bytes(cfg, text, n, path);
    free(text);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// --set key=value

static void trim(const char **begin, const char **end)
{
    while (*begin < *end && isspace((unsigned char)**begin)) (*begin)++;
    while (*end > *begin && isspace((unsigned char)(*end)[-1])) (*end)--;
}

static char *copy_trimmed(const char *begin, const char *end)
{
    trim(&begin, &end);
    char *copy = malloc((size_t)(end - begin) + 1);
    if (!copy) return NULL;
    memcpy(copy, begin, (size_t)(end - begin));
    copy[end - begin] = '\0';
    return copy;
}

int config_set_key(struct config *cfg, const char *name, const char *value)
{
    const struct config_key *key = find_key(name);
    if (!key && is_section(name)) return err("'%s' is a section, not a key", name);
    if (!key) return unknown_key(name);
    return set_value(cfg, key, value);
}

int config_set(struct config *cfg, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    if (!eq) return err("--set '%s': expected key=value", assignment);
    char *name = copy_trimmed(assignment, eq), *value = copy_trimmed(eq + 1, eq + strlen(eq));
    int rc = -1;
    const struct config_key *key = name ? find_key(name) : NULL;
    if (!name || !value)
        err("out of memory");
    else if (!key && is_section(name))
        err("'%s' is a section, not a key", name);
    else if (!key)
        unknown_key(name);
    else
        rc = set_value(cfg, key, value);
    free(name);
    free(value);
    return rc < 0 ? err_context("--set '%s'", assignment) : 0;
}

// ---------------------------------------------------------------------------------------------
// Canonical text, run id, SHA-256

// An snprintf-like writer: counts every byte, stores what fits.
struct text {
    char *buf;
    size_t size, len;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = t->len < t->size ? vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap)
                             : vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) BUG("vsnprintf failed on '%s'", fmt);
    t->len += (size_t)n;
}

// A YAML double-quoted scalar that libyaml reads back byte for byte.
static void add_quoted(struct text *t, const char *s, size_t max)
{
    text_add(t, "\"");
    for (size_t i = 0; i < max && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            text_add(t, "\\%c", c);
        else if (c == '\n')
            text_add(t, "\\n");
        else if (c == '\t')
            text_add(t, "\\t");
        else if (c < 0x20 || c == 0x7f)
            text_add(t, "\\x%02x", c);
        else
            text_add(t, "%c", c);
    }
    text_add(t, "\"");
}

static int choice_count(const struct config_key *key)
{
    int n = 0;
    while (key->choices[n]) n++;
    return n;
}

static void add_value(struct text *t, const struct config *cfg, const struct config_key *key)
{
    const void *p = const_field_of(cfg, key);
    switch (key->type) {
    case KEY_INT: text_add(t, "%d", *(const int *)p); break;
    case KEY_INT64: text_add(t, "%" PRId64, *(const int64_t *)p); break;
    case KEY_UINT64: text_add(t, "%" PRIu64, *(const uint64_t *)p); break;
    case KEY_DOUBLE: text_add(t, "%.17g", *(const double *)p); break;
    case KEY_BOOL: text_add(t, "%s", *(const int *)p ? "true" : "false"); break;
    case KEY_STRING: add_quoted(t, p, key->size); break;
    case KEY_ENUM: {
        int i = *(const int *)p;
        if (i >= 0 && i < choice_count(key))
            text_add(t, "%s", key->choices[i]);
        else
            text_add(t, "%d", i); // invalid: printed as a number, config_validate rejects it
        break;
    }
    }
}

int config_value_text(const struct config *cfg, const char *name, char *buf, size_t size)
{
    const struct config_key *key = find_key(name);
    if (!key) return unknown_key(name);
    struct text t = {buf, size, 0};
    if (size) buf[0] = '\0';
    if (key->type == KEY_STRING)
        text_add(&t, "%.*s", (int)key->size, (const char *)const_field_of(cfg, key));
    else
        add_value(&t, cfg, key);
    return (int)t.len;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((*(const struct config_key *const *)a)->name,
                  (*(const struct config_key *const *)b)->name);
}

static void sorted_keys(const struct config_key *out[KEY_COUNT])
{
    for (size_t i = 0; i < KEY_COUNT; i++) out[i] = &keys[i];
    qsort(out, KEY_COUNT, sizeof out[0], compare_names);
}

// 1 when key holds the same value in a and b (as canonical text).
static int same_value(const struct config *a, const struct config *b, const struct config_key *key)
{
    char va[LINE_CAPACITY], vb[LINE_CAPACITY];
    struct text ta = {va, sizeof va, 0}, tb = {vb, sizeof vb, 0};
    add_value(&ta, a, key);
    add_value(&tb, b, key);
    return ta.len == tb.len && memcmp(va, vb, ta.len) == 0;
}

// The keys of the canonical text and the run id, sorted by name (results_only: the run id's).
// A KEY_ADDED key at its default is left out of both, so a run recorded before the key existed
// keeps its canonical text, its run id and its checkpoint bytes.
static size_t canonical_keys(const struct config *cfg, int results_only, const struct config_key *out[KEY_COUNT])
{
    const struct config_key *sorted[KEY_COUNT];
    sorted_keys(sorted);
    struct config *defaults = malloc(sizeof *defaults);
    if (!defaults) BUG("out of memory for the defaults of the canonical text");
    config_defaults(defaults);
    size_t n = 0;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (results_only && !(sorted[i]->flags & KEY_RESULTS)) continue;
        if ((sorted[i]->flags & KEY_ADDED) && same_value(cfg, defaults, sorted[i])) continue;
        out[n++] = sorted[i];
    }
    free(defaults);
    return n;
}

int config_canonical(const struct config *cfg, char *buf, size_t size)
{
    const struct config_key *keys_used[KEY_COUNT];
    struct text t = {buf, size, 0};
    if (buf && size) buf[0] = '\0';
    size_t n = canonical_keys(cfg, 0, keys_used);
    for (size_t i = 0; i < n; i++) {
        text_add(&t, "%s: ", keys_used[i]->name);
        add_value(&t, cfg, keys_used[i]);
        text_add(&t, "\n");
    }
    return (int)t.len;
}

void config_run_id(const struct config *cfg, char out[17])
{
    const struct config_key *keys_used[KEY_COUNT];
    char line[LINE_CAPACITY], digest_hex[SHA256_HEX_CAPACITY];
    struct sha256_stream digest;
    sha256_begin(&digest);
    size_t n = canonical_keys(cfg, 1, keys_used);
    for (size_t i = 0; i < n; i++) {
        struct text t = {line, sizeof line, 0};
        text_add(&t, "%s: ", keys_used[i]->name);
        add_value(&t, cfg, keys_used[i]);
        text_add(&t, "\n");
        if (t.len >= sizeof line) BUG("canonical line of '%s' is too long", keys_used[i]->name);
        sha256_add(&digest, line, t.len);
    }
    sha256_end_hex(&digest, digest_hex);
    memcpy(out, digest_hex, 16);
    out[16] = '\0';
}

// ---------------------------------------------------------------------------------------------
// Cross-key checks

// The value of a numeric, bool or enum key as a double (bounds checks); 0 for the others.
static double numeric_value(const struct config *cfg, const struct config_key *key)
{
    const void *p = const_field_of(cfg, key);
    switch (key->type) {
    case KEY_INT:
    case KEY_BOOL:
    case KEY_ENUM: return *(const int *)p;
    case KEY_INT64: return (double)*(const int64_t *)p;
    case KEY_DOUBLE: return *(const double *)p;
    default: return 0;
    }
}

// The struct may have been filled by code rather than parsed: every key is checked again.
// Errors do not name the key; check_key_ranges adds it.
static int check_key(const struct config *cfg, const struct config_key *key)
{
    char value[LINE_CAPACITY];
    struct text t = {value, sizeof value, 0};
    const char *s = const_field_of(cfg, key);
    double v = numeric_value(cfg, key);
    add_value(&t, cfg, key);
    switch (key->type) {
    case KEY_UINT64: return 0;
    case KEY_STRING:
        if (!memchr(s, '\0', key->size)) return err("not NUL-terminated");
        return key->choices && choice_index(key, s) < 0 ? bad_choice(key, s) : 0;
    case KEY_ENUM: return v < 0 || v >= choice_count(key) ? bad_choice(key, value) : 0;
    case KEY_DOUBLE:
        if (!isfinite(v)) return err("%s is not a finite number", value);
        break;
    default: break;
    }
    return in_bounds(key, v) ? 0 : out_of_range(key, value);
}

static int check_key_ranges(const struct config *cfg)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (check_key(cfg, &keys[i]) < 0) return err_context("%s", keys[i].name);
    return 0;
}

static int check_model(const struct config *cfg)
{
    if (cfg->hidden % cfg->heads)
        return err("model.hidden %d is not divisible by model.heads %d", cfg->hidden, cfg->heads);
    if (cfg->hidden % 4)
        return err("model.hidden %d is not divisible by 4 (the 2-D sin-cos position embedding "
                   "needs it)",
                   cfg->hidden);
    if (cfg->pad_to && cfg->pad_to < cfg->image_size)
        return err("data.pad_to %d is smaller than data.image_size %d", cfg->pad_to,
                   cfg->image_size);
    if (cfg->pad_to && cfg->pad_to % cfg->patch)
        return err("data.pad_to %d is not divisible by model.patch %d", cfg->pad_to, cfg->patch);
    if (!cfg->pad_to && cfg->image_size % cfg->patch)
        return err("data.image_size %d is not divisible by model.patch %d", cfg->image_size,
                   cfg->patch);
    return 0;
}

// The data.latents.* keys act on npy latents only, and sample mean needs moments to take the mean of.
static int check_latents(const struct config *cfg)
{
    if (strcmp(cfg->data_name, "npy") != 0) {
        if (cfg->latents_moments != MOMENTS_NONE)
            return err("data.latents.moments %s applies to data.name npy only, got data.name %s "
                       "(allowed for it: none)",
                       moments_names[cfg->latents_moments], cfg->data_name);
        if (cfg->latents_scale != 1.0)
            return err("data.latents.scale %.15g applies to data.name npy only, got data.name %s "
                       "(allowed for it: 1)",
                       cfg->latents_scale, cfg->data_name);
    }
    if (cfg->latents_moments == MOMENTS_NONE && cfg->latents_sample != LATENTS_POSTERIOR)
        return err("data.latents.sample %s needs posterior moments in the file (data.latents.moments "
                   "logvar or std), got data.latents.moments none (allowed with it: posterior)",
                   latents_sample_names[cfg->latents_sample]);
    return 0;
}

static int check_data(const struct config *cfg)
{
    if (!cfg->data_path[0]) return err("data.path is empty");
    if (strcmp(cfg->data_name, "npy") == 0 && !cfg->data_labels[0])
        return err("data.name npy needs data.labels (the labels .npy)");
    if (check_latents(cfg) < 0) return -1;
    if (strcmp(cfg->data_name, "fashion-mnist") == 0) {
        if (cfg->channels != 1)
            return err("data.name fashion-mnist needs data.channels 1, got %d", cfg->channels);
        if (cfg->image_size != 28)
            return err("data.name fashion-mnist needs data.image_size 28, got %d", cfg->image_size);
        if (cfg->num_classes != 10)
            return err("data.name fashion-mnist needs data.num_classes 10, got %d",
                       cfg->num_classes);
    }
    if (!cfg->ckpt_dir[0]) return err("ckpt.dir is empty");
    return 0;
}

static int check_sampling(const struct config *cfg)
{
    if (cfg->sample_cfg_channels > cfg->channels)
        return err("sample.cfg_channels %d exceeds data.channels %d", cfg->sample_cfg_channels,
                   cfg->channels);
    if (cfg->objective == OBJECTIVE_DDPM && cfg->sample_steps > cfg->ddpm_steps)
        return err("sample.steps %d exceeds ddpm.steps %d (objective ddpm)", cfg->sample_steps,
                   cfg->ddpm_steps);
    return 0;
}

int config_validate(const struct config *cfg)
{
    if (check_key_ranges(cfg) < 0 || check_model(cfg) < 0 || check_data(cfg) < 0 ||
        check_sampling(cfg) < 0)
        return -1;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// config --list

static const char *type_name(enum key_type type)
{
    static const char *const names[] = {"int",  "int64",  "uint64", "double",
                                        "bool", "string", "enum"};
    return names[type];
}

static void format_default(const struct config_key *key, char *buf, size_t size)
{
    if (key->type == KEY_STRING)
        snprintf(buf, size, "\"%s\"", key->default_text);
    else
        snprintf(buf, size, "%s", key->default_text);
}

static int max_int(int a, int b) { return a > b ? a : b; }

void config_print_list(FILE *out)
{
    char def[128], range[128];
    int name_width = 3, default_width = 7, range_width = 5;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        format_default(&keys[i], def, sizeof def);
        format_range(&keys[i], range, sizeof range);
        name_width = max_int(name_width, (int)strlen(keys[i].name));
        default_width = max_int(default_width, (int)strlen(def));
        range_width = max_int(range_width, (int)strlen(range));
    }
    fprintf(out, "%-*s  %-6s  %-*s  %-*s  %s\n", name_width, "key", "type", default_width,
            "default", range_width, "range", "doc");
    for (size_t i = 0; i < KEY_COUNT; i++) {
        format_default(&keys[i], def, sizeof def);
        format_range(&keys[i], range, sizeof range);
        fprintf(out, "%-*s  %-6s  %-*s  %-*s  %s%s\n", name_width, keys[i].name,
                type_name(keys[i].type), default_width, def, range_width, range, keys[i].doc,
                !(keys[i].flags & KEY_RESULTS) ? " (not in the run id)"
                : keys[i].flags & KEY_ADDED  ? " (in the run id when not the default)"
                                             : "");
    }
}
