// Loads a checkpoint's config, builds the network for max_batch and binds its EMA weights
// (*weights is allocated; the caller frees it and destroys the model).
#ifndef PROMOE_CLI_MODEL_LOAD_H
#define PROMOE_CLI_MODEL_LOAD_H

#include "config/config.h"
#include "model/dit.h"

int cli_load_model(const char *path, int max_batch, struct config *cfg, struct dit *m, real **weights);

#endif
