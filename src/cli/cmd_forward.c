// promoe forward CHECKPOINT --x X.npy --t T.npy --y Y.npy --out OUT.npy
// The network's raw output (EMA weights) for given inputs, so any other implementation can be
// checked against this one: x [B, C, S, S], t [B] (model time), y [B] (labels; num_classes = null).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_load.h"
#include "cli/options.h"
#include "core/error.h"
#include "data/npy.h"

static const char *const forward_usage =
    "promoe forward CHECKPOINT --x X.npy --t T.npy --y Y.npy --out OUT.npy";

struct forward_inputs {
    struct npy_array x, t, y;
    float *xf, *tf;
    int64_t *yi;
};

// One forward pass holds the whole batch in the activations: at most this many rows.
enum { FORWARD_BATCH_MAX = 65536 };
#define RF_MODEL_TIME_MAX 1000.0   // model time = 1000 sigma (diffusion/rf.c)

static int check_finite(const char *path, const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return err("'%s': element %lld is %g: inputs must be finite", path, (long long)i, v[i]);
    return 0;
}

static int read_inputs(struct forward_inputs *in, const char *px, const char *pt, const char *py)
{
    if (npy_read(px, &in->x) < 0 || npy_read(pt, &in->t) < 0 || npy_read(py, &in->y) < 0) return -1;
    if (in->x.ndim != 4) return err("'%s': expected x of shape [B, C, S, S]", px);
    int64_t B = in->x.shape[0];
    if (B < 1 || B > FORWARD_BATCH_MAX)
        return err("'%s': batch of %lld rows is out of range [1, %d]", px, (long long)B, FORWARD_BATCH_MAX);
    if (in->t.ndim != 1 || in->t.count != B) return err("'%s': expected shape [%lld], one timestep per row of '%s'", pt, (long long)B, px);
    if (in->y.ndim != 1 || in->y.count != B) return err("'%s': expected shape [%lld], one label per row of '%s'", py, (long long)B, px);
    if (!(in->xf = npy_to_f32(&in->x))) return err_context("'%s'", px);
    if (!(in->tf = npy_to_f32(&in->t))) return err_context("'%s'", pt);
    if (!(in->yi = npy_to_i64(&in->y))) return err_context("'%s'", py);
    if (check_finite(px, in->xf, in->x.count) < 0 || check_finite(pt, in->tf, B) < 0) return -1;
    return 0;
}

static int check_model_inputs(const struct dit *m, const struct forward_inputs *in, const char *px, const char *pt,
                              const char *py)
{
    const struct dit_shape *s = &m->shape;
    if (in->x.shape[1] != s->channels || in->x.shape[2] != s->size || in->x.shape[3] != s->size)
        return err("'%s': shape [%lld, %lld, %lld, %lld] does not match the model's [B, %d, %d, %d]", px,
                   (long long)in->x.shape[0], (long long)in->x.shape[1], (long long)in->x.shape[2],
                   (long long)in->x.shape[3], s->channels, s->size, s->size);
    for (int64_t b = 0; b < in->y.count; b++)
        if (in->yi[b] < 0 || in->yi[b] > s->num_classes)
            return err("'%s': label %lld is outside [0, %d]", py, (long long)in->yi[b], s->num_classes);
    // model time: 1000 sigma under rf, a step of [0, ddpm.steps) under ddpm
    double t_max = m->cfg.objective == OBJECTIVE_DDPM ? m->cfg.ddpm_steps - 1 : RF_MODEL_TIME_MAX;
    for (int64_t b = 0; b < in->t.count; b++)
        if (in->tf[b] < 0 || in->tf[b] > t_max)
            return err("'%s': timestep %g is out of range [0, %g] for this model's objective", pt, in->tf[b], t_max);
    return 0;
}

static int run_forward(const char *checkpoint, struct forward_inputs *in, const char *out, const char *px, const char *pt,
                       const char *py)
{
    struct config cfg;
    struct dit m;
    real *weights = NULL;
    memset(&m, 0, sizeof m);   // a load that fails before dit_create leaves nothing to destroy
    int B = (int)in->x.shape[0], rc = cli_load_model(checkpoint, B, NULL, &cfg, &m, &weights);
    if (!rc) rc = check_model_inputs(&m, in, px, pt, py);
    real *x = NULL, *t = NULL;
    int *y = NULL;
    if (!rc) {
        size_t n = (size_t)in->x.count;
        x = malloc(sizeof(real) * n), t = malloc(sizeof(real) * B), y = malloc(sizeof(int) * B);
        for (size_t i = 0; i < n; i++) x[i] = in->xf[i];
        for (int b = 0; b < B; b++) t[b] = in->tf[b], y[b] = (int)in->yi[b];
        const real *o = dit_forward(&m, x, t, y, B);
        int64_t shape[4] = {B, m.shape.out_channels, m.shape.size, m.shape.size};
        rc = npy_write(out, sizeof(real) == 4 ? NPY_F32 : NPY_F64, 4, shape, o);
    }
    free(x); free(t); free(y); free(weights);
    if (m.table.n) dit_destroy(&m);
    return rc;
}

int cmd_forward(int argc, char **argv)
{
    const char *checkpoint = NULL, *px = NULL, *pt = NULL, *py = NULL, *out = NULL;
    const struct cli_option options[] = {
        CLI_OPT_STRING("--x", &px), CLI_OPT_STRING("--t", &pt), CLI_OPT_STRING("--y", &py),
        CLI_OPT_STRING("--out", &out),
    };
    const struct cli_command_line line = {forward_usage, CLI_TABLE(options), &checkpoint, 1, 1, NULL};
    int status = cli_parse(argc, argv, &line);
    if (status) return status < 0 ? 0 : status;
    if (!px || !pt || !py || !out) return cli_usage(forward_usage);
    struct forward_inputs in;
    memset(&in, 0, sizeof in);
    int rc = read_inputs(&in, px, pt, py);
    if (!rc) rc = run_forward(checkpoint, &in, out, px, pt, py);
    npy_free(&in.x); npy_free(&in.t); npy_free(&in.y);
    free(in.xf); free(in.tf); free(in.yi);
    return rc ? EXIT_FAILED : 0;
}
