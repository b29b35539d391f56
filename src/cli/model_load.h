// Loads a checkpoint's config, builds the network for max_batch and binds its EMA weights
// (*weights is allocated; the caller frees it and destroys the model). The products run in the
// run's train.precision, or in `precision` ("fp32" or "bf16", from --precision) when not NULL.
#ifndef PROMOE_CLI_MODEL_LOAD_H
#define PROMOE_CLI_MODEL_LOAD_H

#include "config/config.h"
#include "model/dit.h"

// Reads the config stored in a checkpoint (defaults under it) and validates it; errors name the file.
int cli_checkpoint_config(const char *path, struct config *cfg);

int cli_load_model(const char *path, int max_batch, const char *precision, struct config *cfg, struct dit *m, real **weights);
// As cli_load_model for sampling: passes of `pass` images (--batch; 0 = the run's sample.batch, else
// default_pass), set as cfg->sample_batch; the network holds one guided pass (sample_forward_batch).
int cli_load_sampler(const char *path, int pass, int default_pass, const char *precision, struct config *cfg,
                     struct dit *m, real **weights);

#endif
