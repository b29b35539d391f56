// Latents files of data.name npy (data/latents.h), written here small and synthetic: files as
// stored load unchanged (4-D and with a view axis), the scale factor, posterior moments (logvar
// and std) drawn as z = scale * (mean + std * eps) from the keyed stream (seed, step, LATENT,
// sample) element for element, the same key twice identical, the draws' mean and std over many
// keys, sample mean, flips taking the flipped view where the file has one and mirroring otherwise,
// the mapping itself, probe images, and clear errors for truncated or inconsistent files and keys.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/npy.h"
#include "data/probe.h"

enum { N = 24, C = 2, S = 4, PLANE = S * S, Z = C * PLANE, CLASSES = 3 };
#define SD_VAE_SCALE 0.18215

static char tmp_dir[] = "/tmp/promoe_test_latents_XXXXXX";

static const char *tmp(const char *name)
{
    static char paths[4][512];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", tmp_dir, name);
    return p;
}

// A config for the file tmp(latents) with labels tmp("y.npy"), plus assignments.
static void latents_config(struct config *cfg, const char *latents, const char *const *sets, int n_sets)
{
    config_defaults(cfg);
    const char *base[] = {"data.name=npy", "data.channels=2", "data.image_size=4", "data.num_classes=3",
                          "model.patch=2", "data.flip=false"};
    for (size_t i = 0; i < sizeof base / sizeof *base; i++)
        if (config_set(cfg, base[i]) < 0) fprintf(stderr, "config_set: %s\n", err_message());
    for (int i = 0; i < n_sets; i++)
        if (config_set(cfg, sets[i]) < 0) fprintf(stderr, "config_set %s: %s\n", sets[i], err_message());
    snprintf(cfg->data_path, sizeof cfg->data_path, "%s", tmp(latents));
    snprintf(cfg->data_labels, sizeof cfg->data_labels, "%s", tmp("y.npy"));
    CHECK(config_validate(cfg) == 0, "config: %s", err_message());
}

static void write_labels(int n)
{
    int64_t y[64], shape[1] = {n};
    for (int i = 0; i < n; i++) y[i] = i % CLASSES;
    CHECK(npy_write(tmp("y.npy"), NPY_I64, 1, shape, y) == 0, "labels: %s", err_message());
}

// Value k of view v of example i: distinct everywhere, the view adds 100.
static float stored_value(int i, int v, int k) { return (float)(i * 1000 + v * 100) + (float)k / 16.0f; }

// Moments [N, V, 2C, S, S]: means as stored_value, second moments from `second` (logvar or std).
static void write_moments(const char *name, int views, double (*second)(int i, int k))
{
    static float m[N * 2 * 2 * Z];
    for (int i = 0; i < N; i++)
        for (int v = 0; v < views; v++)
            for (int k = 0; k < Z; k++) {
                float *at = m + ((size_t)i * views + v) * 2 * Z;
                at[k] = stored_value(i, v, k);
                at[Z + k] = (float)second(i, k);
            }
    int64_t shape[5] = {N, views, 2 * C, S, S};
    CHECK(npy_write(tmp(name), NPY_F32, 5, shape, m) == 0, "%s: %s", name, err_message());
}

// Latents as stored, [N, C, S, S] (views 0) or [N, V, C, S, S].
static void write_plain(const char *name, int views)
{
    static float x[N * 2 * Z];
    for (int i = 0; i < N; i++)
        for (int v = 0; v < (views ? views : 1); v++)
            for (int k = 0; k < Z; k++) x[((size_t)i * (views ? views : 1) + v) * Z + k] = stored_value(i, v, k);
    int64_t shape4[4] = {N, C, S, S}, shape5[5] = {N, views, C, S, S};
    int rc = views ? npy_write(tmp(name), NPY_F32, 5, shape5, x) : npy_write(tmp(name), NPY_F32, 4, shape4, x);
    CHECK(rc == 0, "%s: %s", name, err_message());
}

// Log-variances spanning the clamp [-30, 20] of diffusers: -100 and 100 are clamped.
static double logvar_of(int i, int k) { return k == 3 ? 100.0 : k == 4 ? -100.0 : -2.0 + 0.25 * ((i + k) % 9); }
static double std_of(int i, int k) { return 0.05 + 0.1 * ((i * 3 + k) % 7); }

static int open_ok(struct dataset *ds, const struct config *cfg)
{
    int rc = dataset_open(ds, cfg);
    CHECK(rc == 0, "dataset_open '%s': %s", cfg->data_path, err_message());
    return rc == 0;
}

// Files as stored: 4-D and 5-D with one view load unchanged; data.latents.scale multiplies.
static void test_as_stored(void)
{
    write_plain("plain4.npy", 0);
    write_plain("plain5.npy", 1);
    const char *files[] = {"plain4.npy", "plain5.npy"};
    const char *halve[] = {"data.latents.scale=0.5"};
    for (int f = 0; f < 2; f++)
        for (int scaled = 0; scaled < 2; scaled++) {
            struct config cfg;
            struct dataset ds;
            latents_config(&cfg, files[f], halve, scaled);
            if (!open_ok(&ds, &cfg)) continue;
            real z[Z];
            int exact = ds.n == N && ds.latents.views == 1;
            for (int i = 0; i < N; i++) {
                dataset_stored_example(&ds, i, 0, NULL, z);
                for (int k = 0; k < Z; k++) exact &= z[k] == (real)(stored_value(i, 0, k) * (scaled ? 0.5 : 1.0));
            }
            CHECK(exact, "%s scale %g: values differ from the file's", files[f], scaled ? 0.5 : 1.0);
            dataset_close(&ds);
        }
}

// The mapping covers the whole file and the data start at the header's offset.
static void test_mapped(void)
{
    struct config cfg;
    struct dataset ds;
    latents_config(&cfg, "plain4.npy", NULL, 0);
    if (!open_ok(&ds, &cfg)) return;
    FILE *f = fopen(cfg.data_path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    struct npy_array header;
    int64_t offset = -1;
    npy_read_header(cfg.data_path, &header, &offset);
    CHECK(ds.latents.map != NULL && (long)ds.latents.map_size == size, "map %p of %zu bytes, file %ld",
          ds.latents.map, ds.latents.map_size, size);
    CHECK(ds.latents.data == (const unsigned char *)ds.latents.map + offset, "data at %td, header says %lld",
          ds.latents.data - (const unsigned char *)ds.latents.map, (long long)offset);
    dataset_close(&ds);
}

// z = scale * (mean + std * eps), eps the stream's normals in [C, S, S] order, std from logvar
// clamped to [-30, 20] or as stored; exact to the last bit.
static void test_posterior_exact(int moments)
{
    const char *name = moments == MOMENTS_LOGVAR ? "logvar.npy" : "std.npy";
    write_moments(name, 2, moments == MOMENTS_LOGVAR ? logvar_of : std_of);
    const char *sets[] = {moments == MOMENTS_LOGVAR ? "data.latents.moments=logvar" : "data.latents.moments=std",
                          "data.latents.scale=0.18215"};
    struct config cfg;
    struct dataset ds;
    latents_config(&cfg, name, sets, 2);
    if (!open_ok(&ds, &cfg)) return;
    int exact = 1;
    for (int i = 0; i < N; i++)
        for (int view = 0; view < 2; view++) {
            struct rng noise, replay;
            rng_init(&noise, 7, 11, RNG_LATENT, (uint32_t)i);
            rng_init(&replay, 7, 11, RNG_LATENT, (uint32_t)i);
            real z[Z];
            dataset_stored_example(&ds, i, view, &noise, z);
            for (int k = 0; k < Z; k++) {
                double second = moments == MOMENTS_LOGVAR ? (double)(float)logvar_of(i, k) : (double)(float)std_of(i, k);
                double sd = moments == MOMENTS_LOGVAR ? exp(0.5 * fmin(fmax(second, -30.0), 20.0)) : second;
                double want = SD_VAE_SCALE * ((double)stored_value(i, view, k) + sd * rng_normal(&replay));
                exact &= z[k] == (real)want;
            }
        }
    CHECK(exact, "%s: z differs from scale * (mean + std * eps)", name);
    dataset_close(&ds);
}

// z of `example`, view 0, drawn with the stream (seed, step, LATENT, sample).
static void draw(const struct dataset *ds, int64_t example, uint64_t seed, uint64_t step, uint32_t sample, real *z)
{
    struct rng r;
    rng_init(&r, seed, step, RNG_LATENT, sample);
    dataset_stored_example(ds, example, 0, &r, z);
}

// One key twice gives the same z; another step or sample another; sample mean is scale * mean.
static void test_keys_and_mean(void)
{
    const char *sets[] = {"data.latents.moments=logvar", "data.latents.scale=0.18215"};
    const char *mean_sets[] = {"data.latents.moments=logvar", "data.latents.scale=0.18215",
                               "data.latents.sample=mean"};
    struct config cfg;
    struct dataset ds;
    latents_config(&cfg, "logvar.npy", sets, 2);
    if (!open_ok(&ds, &cfg)) return;
    real a[Z], b[Z], other_step[Z], other_sample[Z], no_noise[Z];
    draw(&ds, 1, 3, 5, 2, a);
    draw(&ds, 1, 3, 5, 2, b);
    draw(&ds, 1, 3, 6, 2, other_step);
    draw(&ds, 1, 3, 5, 3, other_sample);
    dataset_stored_example(&ds, 1, 0, NULL, no_noise);
    CHECK(memcmp(a, b, sizeof a) == 0, "the same key gave two draws");
    CHECK(memcmp(a, other_step, sizeof a) != 0 && memcmp(a, other_sample, sizeof a) != 0,
          "another step or sample gave the same draw");
    dataset_close(&ds);
    latents_config(&cfg, "logvar.npy", mean_sets, 3);
    if (!open_ok(&ds, &cfg)) return;
    real mean[Z];
    draw(&ds, 1, 3, 5, 2, mean);
    int exact = 1;
    for (int k = 0; k < Z; k++)
        exact &= mean[k] == (real)(SD_VAE_SCALE * stored_value(1, 0, k)) && no_noise[k] == mean[k];
    CHECK(exact, "sample mean (and no noise stream) is not scale * mean");
    dataset_close(&ds);
}

// Over 4000 keys the draws of each element have mean scale * mean and std scale * std: within
// 5 standard errors (mean: std / sqrt(n); std: std / sqrt(2n)).
static void test_statistics(void)
{
    enum { DRAWS = 4000 };
    const char *sets[] = {"data.latents.moments=std", "data.latents.scale=0.18215"};
    struct config cfg;
    struct dataset ds;
    latents_config(&cfg, "std.npy", sets, 2);
    if (!open_ok(&ds, &cfg)) return;
    static double sum[Z], sum_sq[Z];
    for (int step = 0; step < DRAWS; step++) {
        struct rng r;
        real z[Z];
        rng_init(&r, 1, (uint64_t)step, RNG_LATENT, 0);
        dataset_stored_example(&ds, 4, 1, &r, z);
        for (int k = 0; k < Z; k++) sum[k] += z[k], sum_sq[k] += (double)z[k] * z[k];
    }
    double worst_mean = 0, worst_std = 0;
    for (int k = 0; k < Z; k++) {
        double want_mean = SD_VAE_SCALE * stored_value(4, 1, k), want_std = SD_VAE_SCALE * (float)std_of(4, k);
        double mean = sum[k] / DRAWS, std = sqrt(fmax(sum_sq[k] / DRAWS - mean * mean, 0));
        worst_mean = fmax(worst_mean, fabs(mean - want_mean) / (want_std / sqrt(DRAWS)));
        worst_std = fmax(worst_std, fabs(std - want_std) / (want_std / sqrt(2.0 * DRAWS)));
    }
    CHECK(worst_mean < 5, "draw means are %.2f standard errors off", worst_mean);
    CHECK(worst_std < 5, "draw stds are %.2f standard errors off", worst_std);
    dataset_close(&ds);
}

// Whether sample b of step `step` is flipped: the first word of (seed, step, FLIP, b) is odd.
static int flipped_at(const struct config *cfg, int64_t step, int b)
{
    struct rng r;
    rng_init(&r, cfg->seed, (uint64_t)step, RNG_FLIP, (uint32_t)b);
    return rng_u32(&r) & 1;
}

// A batch of a file with two views takes view 1 for flipped samples (not mirrored); of a file with
// one view mirrors view 0. Both kinds of sample occur in the batch.
static void test_flips(void)
{
    enum { B = 12 };
    write_plain("views2.npy", 2);
    const char *flip_on[] = {"data.flip=true"};
    const char *files[] = {"views2.npy", "plain4.npy"};
    for (int f = 0; f < 2; f++) {
        struct config cfg;
        struct dataset ds;
        latents_config(&cfg, files[f], flip_on, 1);
        if (!open_ok(&ds, &cfg)) continue;
        static real x[B * Z];
        int labels[B], right = 1, flips = 0;
        dataset_batch(&ds, 3, B, x, labels);
        for (int b = 0; b < B; b++) {
            int64_t example = ds.order[(3 * B + b) % N];
            int flipped = flipped_at(&cfg, 3, b), view = flipped && f == 0, mirror = flipped && f == 1;
            flips += flipped;
            right &= labels[b] == (int)(example % CLASSES);
            for (int c = 0; c < C; c++)
                for (int row = 0; row < S; row++)
                    for (int col = 0; col < S; col++) {
                        int k = (c * S + row) * S + (mirror ? S - 1 - col : col);
                        right &= x[(size_t)b * Z + (c * S + row) * S + col] == (real)stored_value((int)example, view, k);
                    }
        }
        CHECK(right, "%s: a sample is not its example's %s", files[f], f == 0 ? "flipped view" : "mirror");
        CHECK(flips > 0 && flips < B, "%s: %d of %d samples flipped; the check needs both kinds", files[f], flips, B);
        dataset_close(&ds);
    }
}

// A batch draws each sample's z from (seed, step, LATENT, sample), so it repeats exactly.
static void test_batch_keyed(void)
{
    enum { B = 8 };
    const char *sets[] = {"data.latents.moments=logvar", "data.latents.scale=0.18215", "data.flip=true"};
    struct config cfg;
    struct dataset ds;
    latents_config(&cfg, "logvar.npy", sets, 3);
    if (!open_ok(&ds, &cfg)) return;
    static real x[B * Z], again[B * Z], z[Z];
    int labels[B];
    dataset_batch(&ds, 9, B, x, labels);
    dataset_batch(&ds, 2, B, again, labels);
    dataset_batch(&ds, 9, B, again, labels);
    CHECK(memcmp(x, again, sizeof x) == 0, "step 9 drawn twice differs");
    int right = 1;
    for (int b = 0; b < B; b++) {
        struct rng r;
        rng_init(&r, cfg.seed, 9, RNG_LATENT, (uint32_t)b);
        dataset_stored_example(&ds, ds.order[(9 * B + b) % N], flipped_at(&cfg, 9, b), &r, z);
        right &= memcmp(z, x + (size_t)b * Z, sizeof z) == 0;
    }
    CHECK(right, "a batch sample is not the draw of (seed, step, LATENT, sample)");
    dataset_close(&ds);
}

// Probe images of a moments file are view 0 at its mean, scaled.
static void test_probe(void)
{
    const char *sets[] = {"data.latents.moments=logvar", "data.latents.scale=0.18215"};
    struct config cfg;
    latents_config(&cfg, "logvar.npy", sets, 2);
    static real images[4 * Z];
    int labels[4];
    int rc = probe_images(&cfg, 4, images, labels);
    CHECK(rc == 0, "probe_images: %s", err_message());
    int right = rc == 0;
    for (int i = 0; i < 4 && rc == 0; i++) {
        int example = i;   // class i mod 3, and its (i / 3)-th example in file order (labels e mod 3)
        right &= labels[i] == i % CLASSES;
        for (int k = 0; k < Z; k++) right &= images[(size_t)i * Z + k] == (real)(SD_VAE_SCALE * stored_value(example, 0, k));
    }
    CHECK(right, "probe images are not view 0's scaled means");
}

// dataset_open fails with a message holding every fragment.
static void expect_open_error(const struct config *cfg, const char *const *fragments, int n)
{
    struct dataset ds;
    int rc = dataset_open(&ds, cfg);
    CHECK(rc < 0, "'%s' opened", cfg->data_path);
    if (rc == 0) dataset_close(&ds);
    for (int i = 0; i < n && rc < 0; i++)
        CHECK(strstr(err_message(), fragments[i]) != NULL, "message lacks '%s': %s", fragments[i], err_message());
}

static void test_file_errors(void)
{
    struct config cfg;
    // Truncated: the header promises more data than the file holds.
    write_moments("cut.npy", 2, logvar_of);
    if (truncate(tmp("cut.npy"), 1000) < 0) perror("truncate");
    const char *logvar[] = {"data.latents.moments=logvar"};
    latents_config(&cfg, "cut.npy", logvar, 1);
    const char *cut[] = {"cut.npy", "truncated"};
    expect_open_error(&cfg, cut, 2);
    // Moments read as plain latents: the message says which key to set.
    latents_config(&cfg, "logvar.npy", NULL, 0);
    const char *moments[] = {"logvar.npy", "K holds 4", "data.latents.moments none", "needs K = 2", "logvar or std"};
    expect_open_error(&cfg, moments, 5);
    // Plain latents read as moments.
    latents_config(&cfg, "plain4.npy", logvar, 1);
    const char *plain[] = {"plain4.npy", "K holds 2", "needs K = 4"};
    expect_open_error(&cfg, plain, 3);
    // Three views.
    static float three[N * 3 * Z];
    int64_t shape[5] = {N, 3, C, S, S};
    npy_write(tmp("three.npy"), NPY_F32, 5, shape, three);
    latents_config(&cfg, "three.npy", NULL, 0);
    const char *views[] = {"three.npy", "V = 3", "1, or 2"};
    expect_open_error(&cfg, views, 3);
    // Another latent size, and labels that do not match.
    const char *size8[] = {"data.image_size=8"};
    latents_config(&cfg, "plain4.npy", size8, 1);
    const char *size[] = {"plain4.npy", "latent size is 4", "data.image_size is 8"};
    expect_open_error(&cfg, size, 3);
    write_labels(N - 1);
    latents_config(&cfg, "plain4.npy", NULL, 0);
    const char *labels[] = {"y.npy", "expected 24 labels", "plain4.npy"};
    expect_open_error(&cfg, labels, 3);
    write_labels(N);
}

// Keys: bounds and combinations, each error naming key, value and what is allowed.
static void test_key_errors(void)
{
    struct config cfg;
    config_defaults(&cfg);
    CHECK(config_set(&cfg, "data.latents.scale=0") < 0 && strstr(err_message(), "data.latents.scale"),
          "scale 0 accepted: %s", err_message());
    CHECK(config_set(&cfg, "data.latents.moments=mean") < 0 && strstr(err_message(), "logvar"),
          "moments 'mean' accepted or the choices not named: %s", err_message());
    CHECK(config_set(&cfg, "data.latents.sample=mode") < 0 && strstr(err_message(), "posterior"),
          "sample 'mode' accepted or the choices not named: %s", err_message());
    config_defaults(&cfg);
    config_set(&cfg, "data.latents.scale=0.18215");
    CHECK(config_validate(&cfg) < 0 && strstr(err_message(), "data.latents.scale 0.18215") &&
              strstr(err_message(), "data.name fashion-mnist"),
          "scale with fashion-mnist: %s", err_message());
    config_defaults(&cfg);
    config_set(&cfg, "data.latents.moments=std");
    CHECK(config_validate(&cfg) < 0 && strstr(err_message(), "data.latents.moments std"),
          "moments with fashion-mnist: %s", err_message());
    config_defaults(&cfg);
    config_set(&cfg, "data.latents.sample=mean");
    CHECK(config_validate(&cfg) < 0 && strstr(err_message(), "data.latents.sample mean") &&
              strstr(err_message(), "data.latents.moments none"),
          "sample mean without moments: %s", err_message());
}

int main(void)
{
    if (!mkdtemp(tmp_dir)) return perror("mkdtemp"), 1;
    write_labels(N);
    test_as_stored();
    test_mapped();
    test_posterior_exact(MOMENTS_LOGVAR);
    test_posterior_exact(MOMENTS_STD);
    test_keys_and_mean();
    test_statistics();
    test_flips();
    test_batch_keyed();
    test_probe();
    test_file_errors();
    test_key_errors();
    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", tmp_dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_summary("test_latents");
}
