// Checkpoints as safetensors: the EMA weights under DiT's state-dict names (so a PyTorch DiT loads
// them as they are), the live weights under "train.", AdamW moments under "adam.exp_avg." and
// "adam.exp_avg_sq.", and metadata: the resolved config, run id and step. The RNG needs no state:
// every draw is keyed by (seed, step). A SHA-256 over run id, step and the config text
// ("promoe.meta_sha256") covers the metadata as the CRC covers the tensors. Written atomically;
// read with every shape checked.
#ifndef PROMOE_CHECKPOINT_H
#define PROMOE_CHECKPOINT_H

#include <stdint.h>

#include "nn/params.h"

struct train_state {
    real *weights, *ema, *adam_m, *adam_v;   // each [table total]
    int64_t step;                            // steps completed
};

// Writes path (via path.tmp + rename). bytes may be NULL.
int checkpoint_save(const char *path, const struct param_table *t, const struct train_state *s,
                    const char *config_text, const char *run_id, int64_t *bytes);
// What a resumed run requires of its checkpoint.
struct checkpoint_expect {
    const char *run_id;   // the run id in the metadata and that of the stored config
    int64_t max_step;     // train.steps: the step lies in [0, max_step]
};

// Restores every buffer and the step. Refused, naming the file: metadata that fails its checksum,
// a checkpoint of another run (run id, or a stored config of another run id), a step that is not
// a whole number in [0, expect->max_step], a missing tensor or another shape.
int checkpoint_load_train(const char *path, const struct param_table *t, struct train_state *s,
                          const struct checkpoint_expect *expect);
// Loads only the EMA weights (for sampling and forward).
int checkpoint_load_ema(const char *path, const struct param_table *t, real *ema);
// The config text stored in the checkpoint (caller frees).
int checkpoint_read_config(const char *path, char **config_text);

// Weights alone, as a state dict of the model's official class (README, Checkpoint layout).
enum checkpoint_weights { CHECKPOINT_WEIGHTS_EMA, CHECKPOINT_WEIGHTS_ONLINE };

// Writes one group of the checkpoint at path (EMA: its unprefixed tensors; online: "train.") to
// out under the table's names, without prefix: every tensor of the model and nothing else, so
// load_state_dict(strict=True) takes it as it is. A checkpoint from before the rename
// (legacy_names.h) is written under the current names. Metadata: the checkpoint's promoe.config,
// promoe.run_id, promoe.step, and promoe.weights ("ema" or "online").
int checkpoint_export(const char *path, const struct param_table *t, enum checkpoint_weights which,
                      const char *out, int64_t *bytes);

// Reads a state dict (safetensors, float32, names as the table's or as before the rename) into
// w [t->total]: every tensor of the table with its shape, and no other tensor, else an error
// naming the file and the tensor.
int checkpoint_import_weights(const char *path, const struct param_table *t, real *w);

// One tensor of a table entry from an open file, under prefix + its name (or its name before the
// rename), shape and finiteness checked; errors name path and tensor.
struct st_file;
int checkpoint_read_tensor(const struct st_file *f, const char *path, const char *prefix,
                           const struct param_entry *e, real *w);

#endif
