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

#endif
