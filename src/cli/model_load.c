// Rebuilding a model from a checkpoint: its stored config, the network, and its EMA weights.
#include "cli/model_load.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/blas.h"
#include "core/error.h"
#include "diffusion/sampler.h"
#include "io/path.h"
#include "model/checkpoint.h"

int cli_checkpoint_config(const char *path, struct config *cfg)
{
    char *text = NULL, origin[IO_PATH_MAX + 64];
    if (checkpoint_read_config(path, &text) < 0) return -1;
    snprintf(origin, sizeof origin, "config stored in checkpoint '%s'", path);
    config_defaults(cfg);
    int rc = config_load_text(cfg, text, origin);
    free(text);
    return rc < 0 || config_validate(cfg) < 0 ? -1 : 0;
}

// The network of a loaded config for max_batch samples, with the checkpoint's EMA weights bound.
static int build(const char *path, int max_batch, const char *precision, struct config *cfg, struct dit *m,
                 real **weights)
{
    if (precision && config_set_key(cfg, "train.precision", precision) < 0) return err_context("--precision");
    if (cfg->threads > 0) omp_set_num_threads(cfg->threads);
    blas_set_threads(omp_get_max_threads());
    if (dit_create(m, cfg, max_batch) < 0) return -1;
    *weights = calloc(m->table.total, sizeof(real));
    if (!*weights) return err("out of memory for the weights of '%s'", path);
    if (checkpoint_load_ema(path, &m->table, *weights) < 0) return -1;
    dit_bind_weights(m, *weights);
    return 0;
}

int cli_load_model(const char *path, int max_batch, const char *precision, struct config *cfg, struct dit *m, real **weights)
{
    if (cli_checkpoint_config(path, cfg) < 0) return -1;
    return build(path, max_batch, precision, cfg, m, weights);
}

int cli_load_sampler(const char *path, int pass, int default_pass, const char *precision, struct config *cfg,
                     struct dit *m, real **weights)
{
    if (cli_checkpoint_config(path, cfg) < 0) return -1;
    cfg->sample_batch = pass > 0 ? pass : cfg->sample_batch > 0 ? cfg->sample_batch : default_pass;
    return build(path, sample_forward_batch(cfg, cfg->sample_batch), precision, cfg, m, weights);
}
