// promoe sample CHECKPOINT [--n N] [--cfg S] [--steps N] [--seed S] [--batch B] [--precision P] --out FILE
// FILE.png: a grid with one row per class; FILE.npy: float32 [n, C, S, S] in [-1, 1];
// FILE.npz: the guided-diffusion evaluator's layout (arr_0 uint8 [n, S, S, C], arr_1 labels).
// --batch B: images per sampler pass (default: the run's sample.batch, else 64).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_load.h"
#include "cli/options.h"
#include "core/error.h"
#include "data/npy.h"
#include "diffusion/sampler.h"

static const char *const sample_usage =
    "promoe sample CHECKPOINT [--n N] [--cfg S] [--steps N] [--seed S] [--batch B] [--precision fp32|bf16]\n"
    "              --out FILE.{png,npy,npz}";

enum { DEFAULT_SAMPLE_PASS = 64 };

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

// arr_0: uint8 NHWC in [0, 255]; arr_1: int64 labels.
static int write_npz(const char *path, const real *images, const int *labels, int n, int C, int S)
{
    uint8_t *pixels = malloc((size_t)n * C * S * S);
    int64_t *classes = malloc(sizeof(int64_t) * n);
    if (!pixels || !classes) {
        free(pixels);
        free(classes);
        return err("out of memory writing '%s'", path);
    }
    for (int i = 0; i < n; i++) {
        classes[i] = labels[i];
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                for (int c = 0; c < C; c++)
                    pixels[(((size_t)i * S + y) * S + x) * C + c] =
                        sample_to_byte(images[(((size_t)i * C + c) * S + y) * S + x]);
    }
    int64_t shape0[4] = {n, S, S, C}, shape1[1] = {n};
    struct npz_member members[2] = {{"arr_0", NPY_U8, 4, shape0, pixels}, {"arr_1", NPY_I64, 1, shape1, classes}};
    int rc = npz_write(path, members, 2);
    free(pixels);
    free(classes);
    return rc;
}

static int write_output(const char *out, const struct config *cfg, const real *images, const int *labels, int n, int S)
{
    int C = cfg->channels;
    if (has_suffix(out, ".png")) return write_image_grid(out, images, n, C, S, n >= cfg->num_classes ? n / cfg->num_classes : n);
    if (has_suffix(out, ".npz")) return write_npz(out, images, labels, n, C, S);
    if (has_suffix(out, ".npy")) {
        int64_t shape[4] = {n, C, S, S};
        return npy_write(out, sizeof(real) == 4 ? NPY_F32 : NPY_F64, 4, shape, images);
    }
    return err("output '%s': the name must end in .png, .npy or .npz", out);
}

// Ranges of the sampler options as those of sample.steps and sample.cfg in the config key table.
enum { SAMPLE_N_MAX = 1000000, SAMPLE_BATCH_MAX = 65536, SAMPLE_STEPS_MAX = 100000 };
#define SAMPLE_CFG_MAX 100.0

int cmd_sample(int argc, char **argv)
{
    const char *checkpoint = NULL, *out = NULL, *precision = NULL;
    long long n = 100, steps = -1, seed = 0, batch = 0;   // 0: the run's sample.batch
    double cfg_scale = -1;
    const struct cli_option options[] = {
        CLI_OPT_INT("--n", &n, 1, SAMPLE_N_MAX),
        CLI_OPT_INT("--steps", &steps, 1, SAMPLE_STEPS_MAX),
        CLI_OPT_INT("--seed", &seed, 0, CLI_SEED_MAX),
        CLI_OPT_INT("--batch", &batch, 1, SAMPLE_BATCH_MAX),
        CLI_OPT_DOUBLE("--cfg", &cfg_scale, 0, SAMPLE_CFG_MAX),
        CLI_OPT_STRING("--out", &out),
        CLI_OPT_STRING("--precision", &precision),
    };
    const struct cli_command_line line = {sample_usage, CLI_TABLE(options), &checkpoint, 1, 1, NULL};
    int status = cli_parse(argc, argv, &line);
    if (status) return status < 0 ? 0 : status;
    if (!out) return cli_usage(sample_usage);
    struct config cfg;
    struct dit m;
    real *weights = NULL;
    if (cli_load_sampler(checkpoint, (int)batch, DEFAULT_SAMPLE_PASS, precision, &cfg, &m, &weights) < 0)
        return EXIT_FAILED;
    struct sample_options o = {(int)n, steps > 0 ? (int)steps : cfg.sample_steps,
                               cfg_scale >= 0 ? cfg_scale : cfg.sample_cfg, cfg.sample_cfg_channels,
                               (uint64_t)seed, NULL};
    int S = m.shape.size;
    real *images = malloc(sizeof(real) * (size_t)n * cfg.channels * S * S);
    int *labels = malloc(sizeof(int) * n);
    int rc = images && labels ? 0 : err("out of memory for %lld samples", n);
    // A PNG grid shows one class per row; raw samples cycle through the classes.
    for (int i = 0; labels && i < n; i++) labels[i] = i % cfg.num_classes;
    if (labels && has_suffix(out, ".png")) grid_labels(labels, (int)n, cfg.num_classes);
    o.labels = labels;
    if (!rc) rc = sample_images(&m, &cfg, &o, images);
    if (!rc) rc = write_output(out, &cfg, images, labels, (int)n, S);
    if (!rc) printf("wrote %lld samples (cfg %.2f, %d steps) to %s\n", n, o.cfg, o.steps, out);
    free(images);
    free(labels);
    free(weights);
    dit_destroy(&m);
    return rc ? EXIT_FAILED : 0;
}
