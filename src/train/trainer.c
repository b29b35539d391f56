// One training run from a resolved config. All buffers are allocated before the first step;
// the step itself allocates nothing.
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/blas.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/processors.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "data/dataset.h"
#include "diffusion/ddpm.h"
#include "diffusion/rf.h"
#include "diffusion/sampler.h"
#include "eval/evaluate.h"
#include "eval/validation.h"
#include "io/path.h"
#include "model/checkpoint.h"
#include "model/dit.h"
#include "optim/adamw.h"
#include "store/db.h"
#include "train/dist.h"
#include "train/routing_stats.h"
#include "train/run_lock.h"
#include "train/schedule.h"

enum { CONFIG_TEXT_MAX = 16384 };

// The stop signal caught (SIGINT, SIGTERM, SIGHUP), 0 while none: the loop ends at the next step.
static volatile sig_atomic_t stop_signal;

struct batch {
    real *x0, *x_t, *target, *t, *d_out;   // [B, C S S] x3, [B], [B, C_out S S]
    int *labels, *t_index;                  // [B]
};

struct run {
    const struct config *cfg;
    const struct train_options *o;
    struct train_result *res;
    struct dataset data;
    struct dit model;
    struct train_state state;
    real *grads;
    struct dist_slice slice;   // this rank's samples of each global batch
    struct ddpm_schedule ddpm;
    struct batch batch;
    struct validation validation;   // held-out loss inputs (n = 0: off)
    struct store *db;
    struct run_lock lock;      // the run's owner lock (rank 0; fd -1 elsewhere)
    char config_text[CONFIG_TEXT_MAX];
    char config_sha[65];
    double interval_start;
    int64_t interval_images;
    int64_t interval_bytes;    // bytes put into reductions over ranks at the interval's start
    int64_t interval_gathered; // bytes put into all-gathers over ranks at the interval's start
};

static real *alloc_reals(size_t n)
{
    real *p = aligned_alloc(64, ((n * sizeof(real) + 63) / 64) * 64);
    if (p) memset(p, 0, n * sizeof(real));
    return p;
}

void train_checkpoint_path(const struct config *cfg, const char *run_id, char *path)
{
    snprintf(path, IO_PATH_MAX, "%s/%s/latest.safetensors", cfg->ckpt_dir, run_id);
}

// eval.val_every, or eval.every when that is 0; 0 = no validation loss.
static int validation_every(const struct config *cfg)
{
    if (cfg->val_n <= 0) return 0;
    return cfg->val_every > 0 ? cfg->val_every : cfg->eval_every;
}

static int allocate(struct run *r)
{
    const struct config *cfg = r->cfg;
    int B = cfg->batch_size;
    if (dataset_open(&r->data, cfg) < 0) return err_context("data set");
    if (dist_slice_of(cfg, &r->slice) < 0 || dit_create(&r->model, cfg, r->slice.count) < 0) return -1;
    size_t total = r->model.table.total;
    struct train_state *s = &r->state;
    s->weights = alloc_reals(total);
    s->ema = alloc_reals(total);
    s->adam_m = alloc_reals(total);
    s->adam_v = alloc_reals(total);
    r->grads = alloc_reals(total);
    size_t image = (size_t)cfg->channels * r->data.size * r->data.size;
    size_t out = (size_t)r->model.shape.out_channels * r->data.size * r->data.size;
    struct batch *b = &r->batch;
    b->x0 = alloc_reals(B * image);
    b->x_t = alloc_reals(B * image);
    b->target = alloc_reals(B * image);
    b->t = alloc_reals(B);
    b->d_out = alloc_reals(B * out);
    b->labels = calloc(B, sizeof(int));
    b->t_index = calloc(B, sizeof(int));
    if (!s->weights || !s->ema || !s->adam_m || !s->adam_v || !r->grads || !b->x0 || !b->x_t ||
        !b->target || !b->t || !b->d_out || !b->labels || !b->t_index)
        return err("out of memory for %zu parameters and a batch of %d", total, B);
    if (cfg->objective == OBJECTIVE_DDPM && ddpm_schedule_linear(&r->ddpm, cfg->ddpm_steps) < 0) return -1;
    if (dist_prepare(cfg, total) < 0) return -1;
    if (validation_every(cfg) > 0 && validation_open(&r->validation, cfg, r->model.max_batch) < 0) return -1;
    dit_bind_grads(&r->model, r->grads);
    dit_bind_weights(&r->model, s->weights);
    return 0;
}

static void release(struct run *r)
{
    struct batch *b = &r->batch;
    free(b->x0); free(b->x_t); free(b->target); free(b->t); free(b->d_out);
    free(b->labels); free(b->t_index);
    free(r->state.weights); free(r->state.ema); free(r->state.adam_m); free(r->state.adam_v);
    free(r->grads);
    ddpm_schedule_free(&r->ddpm);
    validation_free(&r->validation);
    dit_destroy(&r->model);
    dataset_close(&r->data);
    store_close(r->db);
    run_lock_release(&r->lock);
}

// Fresh weights, or the run's checkpoint when resuming.
static int restore(struct run *r)
{
    const struct param_table *t = &r->model.table;
    char path[IO_PATH_MAX];
    train_checkpoint_path(r->cfg, r->res->run_id, path);
    if (r->o->resume && !r->o->force && access(path, F_OK) == 0) {
        struct checkpoint_expect expect = {r->res->run_id, r->cfg->steps};
        if (checkpoint_load_train(path, t, &r->state, &expect) < 0) return -1;
        note("resuming run %s from step %lld (%s)", r->res->run_id, (long long)r->state.step, path);
        return 0;
    }
    if (r->o->resume) note("run %s has no checkpoint yet: starting from step 0", r->res->run_id);
    params_init(t, r->state.weights, r->cfg->seed);
    memcpy(r->state.ema, r->state.weights, sizeof(real) * t->total);
    r->state.step = 0;
    return 0;
}

static void drop_labels(struct run *r, int64_t step, int B)
{
    for (int b = 0; b < B; b++) {
        struct rng g;
        rng_init(&g, r->cfg->seed, (uint64_t)step, RNG_LABEL_DROP, (uint32_t)b);
        if (rng_uniform(&g) < r->cfg->class_dropout) r->batch.labels[b] = r->cfg->num_classes;
    }
}

// loss is the diffusion objective (comparable across models); aux the weighted MoE losses.
struct step_figures {
    double loss, mse, vb, grad_norm, aux_total, aux[AUX_COUNT];
};

// Loss figures of this rank's slice become those of the global batch.
static void average_over_ranks(const struct run *r, struct step_figures *f)
{
    enum { LOSSES = 4 };
    double v[LOSSES + AUX_COUNT] = {f->loss, f->mse, f->vb, f->aux_total};
    memcpy(v + LOSSES, f->aux, sizeof f->aux);
    dist_average_figures(&r->slice, v, LOSSES + AUX_COUNT);
    f->loss = v[0], f->mse = v[1], f->vb = v[2], f->aux_total = v[3];
    memcpy(f->aux, v + LOSSES, sizeof f->aux);
}

// One optimisation step on the batch of `step` (0-based); returns its figures.
static struct step_figures train_step(struct run *r, int64_t step)
{
    const struct config *cfg = r->cfg;
    struct batch *b = &r->batch;
    struct dit *m = &r->model;
    int B = cfg->batch_size, C = cfg->channels, S = r->data.size, C_out = m->shape.out_channels;
    int image = C * S * S;
    struct step_figures f = {0};
    dataset_batch(&r->data, step, B, b->x0, b->labels);
    drop_labels(r, step, B);
    if (cfg->objective == OBJECTIVE_RF)
        rf_make_batch(b->x_t, b->target, b->t, b->x0, B, image, cfg->seed, step, cfg->rf_logit_mean,
                      cfg->rf_logit_std);
    else
        ddpm_make_batch(&r->ddpm, b->x_t, b->target, b->t_index, b->t, b->x0, B, image, cfg->seed, step);
    m->training = 1;
    m->update_buffers = 1;
    m->step = step;
    int n = r->slice.count;   // this rank's slice of the global batch, from sample `first`
    size_t first = (size_t)r->slice.offset, at = first * image;
    m->aux_target = b->target + at;   // per-layer regularisation heads predict the same target
    const real *out = dit_forward(m, b->x_t + at, b->t + first, b->labels + first, n);
    f.aux_total = dit_aux_losses(m, f.aux);
    if (cfg->objective == OBJECTIVE_RF) {
        f.loss = f.mse = rf_loss(b->d_out, out, b->target + at, n, C, C_out, S * S);
    } else {
        struct ddpm_loss_parts p = ddpm_loss(&r->ddpm, b->d_out, out, b->target + at, b->x0 + at, b->x_t + at,
                                             b->t_index + first, n, C, C_out, S * S, cfg->ddpm_hybrid_loss);
        f.loss = p.loss, f.mse = p.mse, f.vb = p.vb;
    }
    size_t total = m->table.total;
    memset(r->grads, 0, sizeof(real) * total);
    dit_backward(m, b->d_out, n);
    dist_reduce_gradients(&r->slice, r->grads, total);
    average_over_ranks(r, &f);
    f.grad_norm = grad_global_norm(r->grads, total);
    if (!isfinite(f.loss) || !isfinite(f.aux_total) || !isfinite(f.grad_norm)) return f;
    if (cfg->grad_clip > 0) grad_clip(r->grads, total, f.grad_norm, cfg->grad_clip);
    struct adamw_hparams h = {schedule_lr(cfg, step), cfg->beta1, cfg->beta2, cfg->adam_eps, cfg->weight_decay};
    adamw_update(&m->table, r->state.weights, r->grads, r->state.adam_m, r->state.adam_v, &h, step + 1);
    ema_update(&m->table, r->state.ema, r->state.weights, schedule_ema_decay(cfg, step));
    return f;
}

// Routing rows are many (layers x classes x experts): at log.routing_every, the first and the last step.
static int routing_due(const struct config *cfg, int64_t step_done)
{
    int every = cfg->routing_every > 0 ? cfg->routing_every : cfg->log_every;
    return step_done % every == 0 || step_done == 1 || step_done == cfg->steps;
}

static int log_figures(struct run *r, int64_t step_done, const struct step_figures *f)
{
    const char *id = r->res->run_id;
    double now = clock_seconds(), elapsed = now - r->interval_start;
    double img_per_s = elapsed > 0 ? (double)r->interval_images / elapsed : 0;
    int64_t bytes = dist_reduced_bytes(), steps = r->interval_images / r->cfg->batch_size;
    int64_t gathered = dist_gathered_bytes();
    double bytes_per_step = steps > 0 ? (double)(bytes - r->interval_bytes) / (double)steps : 0;
    double gathered_per_step = steps > 0 ? (double)(gathered - r->interval_gathered) / (double)steps : 0;
    r->interval_start = now;
    r->interval_images = 0;
    r->interval_bytes = bytes;
    r->interval_gathered = gathered;
    r->res->img_per_s = img_per_s;
    // routing counts are summed over ranks (a collective), then rank 0 alone writes
    if (moe_enabled(r->cfg) && routing_due(r->cfg, step_done) && routing_stats_write(r->db, id, step_done, &r->model) < 0)
        return -1;
    if (!dist_is_writer()) return 0;
    int rc = store_metric(r->db, id, "loss", step_done, f->loss);
    if (dist_ranks() > 1) {
        rc |= store_metric(r->db, id, "reduced_bytes_per_step", step_done, bytes_per_step);
        rc |= store_metric(r->db, id, "gathered_bytes_per_step", step_done, gathered_per_step);
    }
    rc |= store_metric(r->db, id, "grad_norm", step_done, f->grad_norm);
    rc |= store_metric(r->db, id, "lr", step_done, schedule_lr(r->cfg, step_done - 1));
    rc |= store_metric(r->db, id, "img_per_s", step_done, img_per_s);
    if (r->cfg->objective == OBJECTIVE_DDPM) {
        rc |= store_metric(r->db, id, "mse", step_done, f->mse);
        rc |= store_metric(r->db, id, "vb", step_done, f->vb);
    }
    if (moe_enabled(r->cfg)) {
        char name[64];
        rc |= store_metric(r->db, id, "loss_total", step_done, f->loss + f->aux_total);
        for (int k = 0; k < AUX_COUNT; k++) {
            snprintf(name, sizeof name, "aux/%s", moe_aux_names[k]);
            rc |= store_metric(r->db, id, name, step_done, f->aux[k]);
        }
    }
    if (rc) return -1;
    return store_flush(r->db, id, step_done);
}

static int save_checkpoint(struct run *r)
{
    char *path = r->res->checkpoint;
    train_checkpoint_path(r->cfg, r->res->run_id, path);
    if (!dist_is_writer()) return 0;   // the replicas hold the same state
    if (io_make_parent_folders(path) < 0) return -1;
    int64_t bytes = 0;
    if (checkpoint_save(path, &r->model.table, &r->state, r->config_text, r->res->run_id, &bytes) < 0)
        return -1;
    return store_checkpoint(r->db, r->res->run_id, r->state.step, "train", path, bytes, "");
}

// The checkpoint a run resumes from is recorded again: a process killed between writing the file
// and recording it would otherwise leave that checkpoints row missing for good.
static int record_resumed_checkpoint(struct run *r)
{
    char path[IO_PATH_MAX];
    struct stat st;
    train_checkpoint_path(r->cfg, r->res->run_id, path);
    if (stat(path, &st) != 0) return err("cannot read checkpoint '%s': %s", path, strerror(errno));
    return store_checkpoint(r->db, r->res->run_id, r->state.step, "train", path, (int64_t)st.st_size, "");
}

static int refuse_busy(struct run *r, const struct run_owner *owner)
{
    r->res->busy = 1;
    return err("run %s is being trained by process %lld on host %s (lock '%s'): one writer per run; "
               "wait for it to end or stop it", r->res->run_id, (long long)owner->pid,
               owner->host[0] ? owner->host : "unknown", r->lock.path);
}

// Rank 0: takes the run's owner lock (making its checkpoint folder, so an unwritable one stops
// the run before it is recorded) and reads its status. 0 train, 1 nothing to do (done, and
// --resume asked to continue it), -1 refused (another owner, or a done run without --force).
static int claim_run(struct run *r)
{
    char checkpoint[IO_PATH_MAX], folder[IO_PATH_MAX], status[16] = "";
    train_checkpoint_path(r->cfg, r->res->run_id, checkpoint);
    if (io_make_parent_folders(checkpoint) < 0) return -1;
    snprintf(folder, sizeof folder, "%s/%s", r->cfg->ckpt_dir, r->res->run_id);
    struct run_owner owner = {"", 0};
    int held = run_lock_take(&r->lock, folder, &owner);
    if (held) return held < 0 ? -1 : refuse_busy(r, &owner);
    int64_t step_done = 0;
    if (store_run_status(r->db, r->res->run_id, status, &step_done) < 0) return -1;
    if (strcmp(status, "done") != 0 || r->o->force) return 0;
    if (r->o->resume) return 1;
    return err("run %s is done (%lld steps): train leaves a finished run as it is; --force trains it "
               "again from step 0 as a new attempt (earlier attempts stay in the attempts table)",
               r->res->run_id, (long long)step_done);
}

static int start_run(struct run *r)
{
    config_canonical(r->cfg, r->config_text, sizeof r->config_text);
    config_run_id(r->cfg, r->res->run_id);
    sha256_hex(r->config_text, strlen(r->config_text), r->config_sha);
    if (r->cfg->eval_every > 0) {
        struct eval_request check;
        if (eval_supported(r->cfg) < 0 || eval_parse_cfg_list(r->cfg->eval_cfg, "eval.cfg", &check) < 0)
            return err_context("eval.every is set");
    }
    if (r->cfg->eval_every > 0 || r->cfg->sample_n > 0) {
        struct dist_slice slice;   // the training model's batch holds the end-of-run sampler's passes
        if (dist_slice_of(r->cfg, &slice) < 0 || sample_check_batch(r->cfg, slice.count) < 0) return -1;
    }
    int opened = dist_is_writer() ? store_open(&r->db, r->o->db_path) : 0;
    if (dist_broadcast_int(opened) < 0) return opened < 0 ? -1 : err("rank 0 could not open '%s'", r->o->db_path);
    int mine = dist_is_writer() ? claim_run(r) : 0, claim = dist_broadcast_int(mine);
    if (claim < 0) return mine < 0 ? -1 : err("rank 0 could not claim run %s", r->res->run_id);
    if (claim == 1) {
        r->res->already_done = 1;
        return 0;
    }
    if (allocate(r) < 0 || restore(r) < 0) return -1;
    if (!dist_is_writer()) return 0;
    struct run_info info = {r->res->run_id, r->config_sha, r->config_text, r->o->label,
                            (int64_t)r->cfg->seed, omp_get_max_threads(),
                            params_count_total(&r->model.table),
                            params_count_activated(&r->model.table), r->state.step, dist_ranks()};
    if (store_run_begin(r->db, &info) < 0) return -1;
    return r->state.step > 0 ? record_resumed_checkpoint(r) : 0;
}

static int fail_run(struct run *r, const char *status)
{
    char message[4096];
    snprintf(message, sizeof message, "%s", err_message());
    if (r->db) store_run_end(r->db, r->res->run_id, status, message, 0, r->res->img_per_s);
    err("%s", message);
    return -1;
}

static int write_grid(struct run *r)
{
    const struct config *cfg = r->cfg;
    if (cfg->sample_n <= 0 || (cfg->channels != 1 && cfg->channels != 3) || !dist_is_writer()) return 0;
    int n = cfg->sample_n, S = r->data.size;
    real *images = alloc_reals((size_t)n * cfg->channels * S * S);
    int *labels = calloc(n, sizeof(int));
    if (!images || !labels) {
        free(images);
        free(labels);
        return err("out of memory for %d samples", n);
    }
    int per_row = grid_labels(labels, n, cfg->num_classes);
    struct sample_options so = {n, cfg->sample_steps, cfg->sample_cfg, cfg->sample_cfg_channels, cfg->seed, labels};
    dit_bind_weights(&r->model, r->state.ema);
    r->model.training = 0;
    int rc = sample_images(&r->model, cfg, &so, images);
    dit_bind_weights(&r->model, r->state.weights);
    snprintf(r->res->grid, sizeof r->res->grid, "%s/%s/samples.png", cfg->ckpt_dir, r->res->run_id);
    if (!rc) rc = write_image_grid(r->res->grid, images, n, cfg->channels, S, per_row);
    free(images);
    free(labels);
    return rc;
}

// eval.every: evaluations at every multiple of it and at the final step.
static int eval_due(const struct config *cfg, int64_t step)
{
    return cfg->eval_every > 0 && (step % cfg->eval_every == 0 || step == cfg->steps);
}

// Sample quality of the EMA weights at the current step (after its checkpoint is written), into
// the run's database; outside the training step, which stays allocation-free.
// Rank 0 alone evaluates and writes; the other ranks wait for it at the next step's reduction.
static int evaluate_now(struct run *r)
{
    const struct config *cfg = r->cfg;
    if (!r->db) return 0;
    char featnet_dir[IO_PATH_MAX];
    struct eval_request q = {.run_id = r->res->run_id, .step = r->state.step, .n = cfg->eval_n,
                             .steps = cfg->eval_steps, .seed = cfg->seed, .featnet_dir = featnet_dir};
    eval_featnet_dir(r->o->db_path, featnet_dir);
    if (eval_parse_cfg_list(cfg->eval_cfg, "eval.cfg", &q) < 0) return -1;
    dit_bind_weights(&r->model, r->state.ema);
    int rc = eval_model(&r->model, cfg, &q, r->db, NULL, NULL);
    dit_bind_weights(&r->model, r->state.weights);
    return rc < 0 ? err_context("evaluation at step %lld", (long long)r->state.step) : 0;
}

static int validation_due(const struct config *cfg, int64_t step)
{
    int every = validation_every(cfg);
    return every > 0 && (step % every == 0 || step == cfg->steps);
}

// val_loss and val_loss/t<bin> of the EMA weights at the current step (rank 0 only: the other
// ranks hold the same weights).
static int validate_now(struct run *r)
{
    if (!r->db) return 0;
    double per_bin[VALIDATION_MAX_BINS];
    char name[32];
    const char *id = r->res->run_id;
    dit_bind_weights(&r->model, r->state.ema);
    double loss = validation_loss(&r->validation, &r->model, per_bin);
    dit_bind_weights(&r->model, r->state.weights);
    int rc = store_metric(r->db, id, "val_loss", r->state.step, loss);
    for (int k = 0; k < r->validation.bins; k++) {
        snprintf(name, sizeof name, "val_loss/t%d", k);
        rc |= store_metric(r->db, id, name, r->state.step, per_bin[k]);
    }
    return rc ? -1 : store_flush(r->db, id, r->state.step);
}

// A sweep gives its last runs the cores that finished runs freed by writing a thread count into
// <ckpt.dir>/<run id>/threads. Results do not depend on the thread count, so the run switches
// between steps (at most to the threads its activations are sized for).
static void follow_thread_file(struct run *r)
{
    char path[IO_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/threads", r->cfg->ckpt_dir, r->res->run_id);
    FILE *f = fopen(path, "r");
    if (!f) return;
    int n = 0;
    if (fscanf(f, "%d", &n) == 1 && n > 0) {
        if (n > r->model.max_threads) n = r->model.max_threads;
        if (n != omp_get_max_threads()) {
            omp_set_num_threads(n);
            blas_set_threads(n);
        }
    }
    fclose(f);
}

// A stop signal ended the loop at a step boundary, after its checkpoint: the run is resumable.
static int stop_by_signal(struct run *r, int sig, double seconds, double img_per_s)
{
    char why[128];
    snprintf(why, sizeof why, "stopped by signal %d (%s) at step %lld", sig, strsignal(sig), (long long)r->state.step);
    if (store_run_end(r->db, r->res->run_id, "interrupted", why, seconds, img_per_s) < 0) return -1;
    return err("%s: the checkpoint is written; train again with --resume to continue", why);
}

// The stop signal to act on before the next step: rank 0's, so that every rank of a data-parallel
// job stops at the same step (a rank leaving the loop alone would hang the others' reductions).
static int stop_requested(void)
{
    return dist_ranks() > 1 ? dist_broadcast_int(stop_signal) : stop_signal;
}

// Steps until the end, the stop_after budget, a stop signal, or a non-finite loss.
static int loop(struct run *r)
{
    const struct config *cfg = r->cfg;
    struct progress bar;
    int64_t first = r->state.step, stop = cfg->steps;
    if (r->o->stop_after > 0 && first + r->o->stop_after < stop) stop = first + r->o->stop_after;
    progress_begin(&bar, first, cfg->steps);
    r->interval_start = clock_seconds();
    double started = r->interval_start;
    int stopped = 0;
    for (int64_t step = first; step < stop && !(stopped = stop_requested()); step++) {
        follow_thread_file(r);
        struct step_figures f = train_step(r, step);
        r->interval_images += cfg->batch_size;
        if (step == first) r->res->first_loss = f.loss;
        r->res->last_loss = f.loss;
        if (!isfinite(f.loss) || !isfinite(f.aux_total) || !isfinite(f.grad_norm)) {
            progress_end(&bar);
            log_figures(r, step + 1, &f);
            err("loss is %s at step %lld (grad norm %g): stopped; the last good checkpoint is kept",
                isnan(f.loss) ? "nan" : !isfinite(f.loss) ? "infinite" : "finite but the gradient is not",
                (long long)step + 1, f.grad_norm);
            return fail_run(r, "failed");
        }
        r->state.step = step + 1;
        int log_now = (step + 1) % cfg->log_every == 0 || step == 0 || step + 1 == stop;
        if (log_now && log_figures(r, step + 1, &f) < 0) return fail_run(r, "failed");
        int ckpt_now = cfg->ckpt_every > 0 && (step + 1) % cfg->ckpt_every == 0 && step + 1 < stop;
        int eval_now = eval_due(cfg, step + 1) && step + 1 < stop;
        int validate = validation_due(cfg, step + 1) && step + 1 < stop;
        if ((ckpt_now || eval_now) && save_checkpoint(r) < 0) return fail_run(r, "failed");
        if (eval_now || validate) {
            double eval_started = clock_seconds();
            if (validate && validate_now(r) < 0) return fail_run(r, "failed");
            if (eval_now && evaluate_now(r) < 0) return fail_run(r, "failed");
            // Evaluation time is not training time: keep it out of img_per_s.
            r->interval_start += clock_seconds() - eval_started;
            started += clock_seconds() - eval_started;
        }
        progress_update(&bar, step + 1, f.loss, r->res->img_per_s);
    }
    progress_end(&bar);
    r->res->steps_done = r->state.step;
    double seconds = clock_seconds() - started;
    if (save_checkpoint(r) < 0) return fail_run(r, "failed");
    if (stopped) r->res->stopped_by = stopped;
    if (!r->db) return stopped ? err("stopped by signal %d", stopped) : 0;   // ranks other than 0 write nothing
    follow_thread_file(r);
    if (!stopped && validation_due(cfg, r->state.step) && validate_now(r) < 0) return fail_run(r, "failed");
    if (!stopped && eval_due(cfg, r->state.step) && evaluate_now(r) < 0) return fail_run(r, "failed");
    double img_per_s = seconds > 0 ? (double)(r->state.step - first) * cfg->batch_size / seconds : 0;
    r->res->img_per_s = img_per_s;
    if (stopped) return stop_by_signal(r, stopped, seconds, img_per_s);
    if (r->state.step < cfg->steps) return store_run_end(r->db, r->res->run_id, "interrupted", NULL, seconds, img_per_s);
    if (write_grid(r) < 0) return fail_run(r, "failed");
    return store_run_end(r->db, r->res->run_id, "done", NULL, seconds, img_per_s);
}

// ---- stop signals and threads --------------------------------------------------------------------

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
enum { STOP_SIGNALS = sizeof stop_signals / sizeof *stop_signals };

// The loop stops at the next step boundary; a second signal ends the process at once.
static void request_stop(int sig)
{
    if (stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    stop_signal = sig;
}

static void catch_stop_signals(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = request_stop;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    for (int i = 0; i < STOP_SIGNALS; i++) sigaction(stop_signals[i], &sa, &old[i]);
}

static void restore_signals(const struct sigaction *old)
{
    for (int i = 0; i < STOP_SIGNALS; i++) sigaction(stop_signals[i], &old[i], NULL);
}

// train.threads, capped at the processors available: more threads than cores only wait on each
// other (results do not depend on the thread count).
static void set_threads(const struct config *cfg)
{
    int threads = cfg->threads, available = processors_available();
    if (threads > available) {
        note("train.threads %d exceeds the %d processors available: using %d", threads, available, available);
        threads = available;
    }
    if (threads > 0) omp_set_num_threads(threads);
    blas_set_threads(omp_get_max_threads());
}

int train_run(const struct config *cfg, const struct train_options *o, struct train_result *res)
{
    memset(res, 0, sizeof *res);
    if (config_validate(cfg) < 0) return -1;
    set_threads(cfg);
    struct sigaction old[STOP_SIGNALS];
    catch_stop_signals(old);
    struct run r = {.cfg = cfg, .o = o, .res = res, .lock = {.fd = -1}};
    int rc = start_run(&r);
    if (!rc && !res->already_done) rc = loop(&r);
    else if (rc && r.db && r.model.table.n) fail_run(&r, "failed");
    release(&r);
    restore_signals(old);
    return rc;
}
