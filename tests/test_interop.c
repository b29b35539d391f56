// Interoperability of checkpoints with the official PyTorch classes: the baselines' tensor names
// (TC-DiT, EC-DiT, DiffMoE experts fc1/fc2, EC-DiT and DiffMoE gate_weight, DiffMoE expert_threshold
// and ema_decay), the rename map of older checkpoints (loaded bit for bit, ema_decay filled), and
// `promoe export` / `promoe import`: export -> import gives back the same weights bit for bit, the
// export holds the model's tensors and nothing else, and bad input names the option or tensor.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "shell.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/checkpoint.h"
#include "model/dit.h"
#include "model/legacy_names.h"
#include "model/safetensors.h"

static char dir[] = "/tmp/promoe_test_interop_XXXXXX";

static const char *path(const char *name)
{
    static char buffers[8][512];
    static int next;
    char *b = buffers[next++ % 8];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static int tiny(struct dit *m, struct config *cfg, const char *router, const char *experts)
{
    char r[64], e[64];
    snprintf(r, sizeof r, "model.moe.router=%s", router);
    snprintf(e, sizeof e, "model.moe.experts=%s", experts);
    const char *sets[] = {"model.hidden=32", "model.depth=2", "model.heads=4", "model.patch=7", r, e,
                          "model.moe.threshold_momentum=0.9"};
    config_defaults(cfg);
    for (int i = 0; i < 7; i++)
        if (config_set(cfg, sets[i]) < 0) {
            CHECK(0, "%s", err_message());
            return -1;
        }
    int rc = dit_create(m, cfg, 0);
    CHECK(rc == 0, "%s", err_message());
    return rc;
}

static int has(const struct dit *m, const char *name) { return params_find(&m->table, name) != NULL; }

// Every baseline with an official class carries that class's names; ProMoE keeps its own.
static void test_official_names(void)
{
    struct config cfg;
    struct dit m;
    if (tiny(&m, &cfg, "token_choice", "E4A1S0U0") == 0) {
        CHECK(has(&m, "blocks.1.mlp.experts.3.fc1.weight") && has(&m, "blocks.1.mlp.experts.0.fc2.bias") &&
                  has(&m, "blocks.1.mlp.gate.weight") && !has(&m, "blocks.1.mlp.experts.0.up_proj.weight"),
              "TC-DiT: experts fc1/fc2, MoEGate gate.weight");
        dit_destroy(&m);
    }
    if (tiny(&m, &cfg, "expert_choice", "E4A1S0U0") == 0) {
        CHECK(has(&m, "blocks.1.mlp.experts.3.fc2.weight") && has(&m, "blocks.1.mlp.gate_weight") &&
                  !has(&m, "blocks.1.mlp.gate.weight"), "EC-DiT: experts fc1/fc2, gate_weight");
        dit_destroy(&m);
    }
    if (tiny(&m, &cfg, "diffmoe", "E4A1S0U0") == 0) {
        const struct param_entry *tau = params_find(&m.table, "blocks.1.mlp.expert_threshold");
        const struct param_entry *decay = params_find(&m.table, "blocks.1.mlp.ema_decay");
        CHECK(has(&m, "blocks.1.mlp.experts.0.fc1.weight") && has(&m, "blocks.1.mlp.gate_weight") &&
                  has(&m, "blocks.1.mlp.capacity_predictor.2.bias") && !has(&m, "blocks.1.mlp.capacity_thresholds"),
              "DiffMoE: experts fc1/fc2, gate_weight, capacity_predictor");
        CHECK(tau && !tau->trainable && tau->ndim == 1 && tau->shape[0] == 4, "expert_threshold: buffer [4]");
        CHECK(decay && !decay->trainable && decay->ndim == 1 && decay->shape[0] == 1, "ema_decay: buffer [1]");
        real *w = calloc(m.table.total, sizeof(real));
        params_init(&m.table, w, 1);
        CHECK(decay && w[decay->offset] == (real)0.9, "ema_decay holds model.moe.threshold_momentum: %g",
              decay ? (double)w[decay->offset] : -1.0);
        free(w);
        dit_destroy(&m);
    }
    if (tiny(&m, &cfg, "prototype", "E4A1S1U0") == 0) {
        CHECK(has(&m, "blocks.1.mlp.experts.2.up_proj.weight") && has(&m, "blocks.1.mlp.shared_expert.down_proj.bias") &&
                  has(&m, "blocks.1.mlp.cluster_centers") && has(&m, "blocks.0.mlp.fc1.weight"),
              "ProMoE: experts and shared expert up_proj/down_proj, cluster_centers; dense blocks fc1/fc2");
        dit_destroy(&m);
    }
}

static void test_rename_map(void)
{
    char out[128];
    const char *cases[][2] = {
        {"blocks.3.mlp.experts.12.fc1.weight", "blocks.3.mlp.experts.12.up_proj.weight"},
        {"blocks.1.mlp.experts.0.fc2.bias", "blocks.1.mlp.experts.0.down_proj.bias"},
        {"blocks.1.mlp.gate_weight", "blocks.1.mlp.gate.weight"},
        {"blocks.27.mlp.expert_threshold", "blocks.27.mlp.capacity_thresholds"},
    };
    for (int i = 0; i < 4; i++) {
        int renamed = legacy_tensor_name(cases[i][0], out, sizeof out);
        CHECK(renamed && strcmp(out, cases[i][1]) == 0, "%s -> %s, want %s", cases[i][0], renamed ? out : "(none)", cases[i][1]);
    }
    const char *kept[] = {"blocks.0.mlp.fc1.weight", "blocks.1.mlp.shared_expert.up_proj.weight",
                          "blocks.1.mlp.gate.weight", "final_layer.linear.weight", "blocks.1.mlp.ema_decay"};
    for (int i = 0; i < 5; i++) CHECK(!legacy_tensor_name(kept[i], out, sizeof out), "%s has no old name, got %s", kept[i], out);
    CHECK(legacy_added_marker("blocks.5.mlp.ema_decay", out, sizeof out) && strcmp(out, "blocks.5.mlp.capacity_thresholds") == 0,
          "ema_decay's marker: %s", out);
    CHECK(!legacy_added_marker("blocks.5.mlp.expert_threshold", out, sizeof out), "expert_threshold was not added");
}

// The old name of a current one (with its group prefix), or the name itself.
static void old_name(const char *name, char *out, size_t size)
{
    const char *prefixes[] = {"adam.exp_avg_sq.", "adam.exp_avg.", "train.", ""};
    for (int p = 0; p < 4; p++) {
        size_t n = strlen(prefixes[p]);
        char old[128];
        if (strncmp(name, prefixes[p], n) != 0) continue;
        if (legacy_tensor_name(name + n, old, sizeof old)) snprintf(out, size, "%s%s", prefixes[p], old);
        else snprintf(out, size, "%s", name);
        return;
    }
}

// Rewrites checkpoint `from` as one written before the rename: old names, no ema_decay.
static void write_legacy(const char *from, const char *to)
{
    struct st_file *f;
    if (st_open(from, &f) < 0) {
        CHECK(0, "%s", err_message());
        return;
    }
    int n = st_count(f), kept = 0;
    struct st_tensor *t = calloc(n, sizeof *t);
    char (*names)[160] = calloc(n, 160);
    for (int i = 0; i < n; i++) {
        const char *name = st_name(f, i);
        if (strstr(name, "ema_decay")) continue;
        old_name(name, names[kept], 160);
        t[kept].name = names[kept];
        t[kept].data = st_get(f, name, &t[kept].dtype, &t[kept].ndim, t[kept].shape);
        kept++;
    }
    const char *keys[] = {"promoe.config", "promoe.run_id", "promoe.step", "promoe.meta_sha256"};
    struct st_meta meta[4];
    for (int k = 0; k < 4; k++) meta[k] = (struct st_meta){keys[k], st_meta_get(f, keys[k])};
    CHECK(st_write(to, t, kept, meta, 4, NULL) == 0, "%s", err_message());
    free(t);
    free(names);
    st_close(f);
}

static void fill(real *w, size_t n, uint32_t stream)
{
    struct rng r;
    rng_init(&r, 17, 0, RNG_TEST, stream);
    for (size_t i = 0; i < n; i++) w[i] = (real)rng_normal(&r);
}

// A DiffMoE and an EC-DiT checkpoint under the old names load into the renamed model bit for bit;
// ema_decay, absent then, takes the config's momentum; export writes the current names.
static void test_legacy_checkpoint(const char *router)
{
    struct config cfg;
    struct dit m;
    if (tiny(&m, &cfg, router, "E4A1S0U0") < 0) return;
    size_t n = m.table.total;
    real *buf[8];
    for (int i = 0; i < 8; i++) buf[i] = calloc(n, sizeof(real));
    for (int i = 0; i < 4; i++) fill(buf[i], n, (uint32_t)i);
    const struct param_entry *decay = params_find(&m.table, "blocks.1.mlp.ema_decay");
    for (int i = 0; decay && i < 4; i++) buf[i][decay->offset] = i < 2 ? (real)0.9 : 0;   // a buffer: no moments
    struct train_state s = {buf[0], buf[1], buf[2], buf[3], 7}, back = {buf[4], buf[5], buf[6], buf[7], 0};
    char text[16384], id[17];
    config_canonical(&cfg, text, sizeof text);
    config_run_id(&cfg, id);
    CHECK(checkpoint_save(path("new.safetensors"), &m.table, &s, text, id, NULL) == 0, "%s", err_message());
    write_legacy(path("new.safetensors"), path("old.safetensors"));
    struct checkpoint_expect expect = {id, 100};
    int rc = checkpoint_load_train(path("old.safetensors"), &m.table, &back, &expect);
    CHECK(rc == 0, "%s: legacy checkpoint refused: %s", router, err_message());
    int same = rc == 0 && back.step == 7;
    for (int i = 0; i < 4 && same; i++)   // tensor by tensor: the gaps between aligned offsets are not saved
        for (int k = 0; k < m.table.n && same; k++) {
            const struct param_entry *e = &m.table.entries[k];
            same = memcmp(buf[i] + e->offset, buf[4 + i] + e->offset, sizeof(real) * e->count) == 0;
        }
    CHECK(same, "%s: legacy checkpoint restores every buffer bit for bit", router);
    CHECK(checkpoint_export(path("old.safetensors"), &m.table, CHECKPOINT_WEIGHTS_EMA, path("exp.safetensors"), NULL) == 0,
          "%s", err_message());
    struct st_file *f;
    if (st_open(path("exp.safetensors"), &f) == 0) {
        int current = st_count(f) == m.table.n;
        for (int i = 0; i < m.table.n && current; i++) current = st_get(f, m.table.entries[i].name, &(const char *){0}, &(int){0}, (int64_t[8]){0}) != NULL;
        CHECK(current, "%s: export of a legacy checkpoint holds the %d tensors under current names", router, m.table.n);
        st_close(f);
    }
    remove(path("old.safetensors"));
    CHECK(checkpoint_load_train(path("old.safetensors"), &m.table, &back, &expect) < 0, "a missing file is refused");
    for (int i = 0; i < 8; i++) free(buf[i]);
    dit_destroy(&m);
}

static const char TINY[] =
    "model: {hidden: 32, depth: 2, heads: 2, patch: 7, moe: {experts: E4A1S0U0, router: diffmoe}}\n"
    "train: {steps: 3, batch_size: 8}\n"
    "sample: {n: 0}\n";

// 1 when tensor a of file fa equals tensor b of file fb byte for byte.
static int same_tensor(const struct st_file *fa, const char *a, const struct st_file *fb, const char *b)
{
    const char *da, *db;
    int na, nb;
    int64_t sa[8], sb[8];
    const void *x = st_get(fa, a, &da, &na, sa), *y = st_get(fb, b, &db, &nb, sb);
    if (!x || !y || na != nb || strcmp(da, db) != 0) return 0;
    size_t count = 1;
    for (int d = 0; d < na; d++) {
        if (sa[d] != sb[d]) return 0;
        count *= (size_t)sa[d];
    }
    return memcmp(x, y, count * 4) == 0;
}

// Every tensor of `exported` equals prefix + its name in checkpoint `ckpt`, and nothing else is there.
static int matches_group(const char *exported, const char *ckpt, const char *prefix, int want_count)
{
    struct st_file *e, *c;
    if (st_open(exported, &e) < 0) return 0;
    if (st_open(ckpt, &c) < 0) return st_close(e), 0;
    int ok = st_count(e) == want_count;
    for (int i = 0; i < st_count(e) && ok; i++) {
        char full[256];
        snprintf(full, sizeof full, "%s%s", prefix, st_name(e, i));
        ok = strncmp(st_name(e, i), "train.", 6) != 0 && strncmp(st_name(e, i), "adam.", 5) != 0 &&
             same_tensor(e, st_name(e, i), c, full);
    }
    st_close(e);
    st_close(c);
    return ok;
}

static void test_export_import_commands(void)
{
    FILE *f = fopen(path("tiny.yaml"), "w");
    if (f) fputs(TINY, f), fclose(f);
    int rc = run("build/promoe train %s --db %s --set ckpt.dir=%s", path("tiny.yaml"), path("r.db"), path("a"));
    CHECK(rc == 0, "train failed (%d): %s", rc, output);
    char ckpt[1024] = "";
    const char *at = strstr(output, "checkpoint ");
    if (at) sscanf(at + 11, "%1023s", ckpt);
    struct config cfg;
    struct dit m;
    if (tiny(&m, &cfg, "diffmoe", "E4A1S0U0") < 0) return;
    int n = m.table.n;
    dit_destroy(&m);

    rc = run("build/promoe export %s --out %s", ckpt, path("ema.safetensors"));
    CHECK(rc == 0, "export (%d): %s", rc, output);
    CHECK(matches_group(path("ema.safetensors"), ckpt, "", n), "export: the %d EMA tensors alone, bit for bit", n);
    rc = run("build/promoe export %s --out %s --weights online", ckpt, path("online.safetensors"));
    CHECK(rc == 0 && matches_group(path("online.safetensors"), ckpt, "train.", n), "export --weights online: %s", output);

    rc = run("build/promoe import %s %s --db %s --set ckpt.dir=%s", path("ema.safetensors"), path("tiny.yaml"),
             path("i.db"), path("b"));
    CHECK(rc == 0, "import (%d): %s", rc, output);
    char imported[1024] = "";
    at = strstr(output, "checkpoint ");
    if (at) sscanf(at + 11, "%1023s", imported);
    CHECK(matches_group(path("ema.safetensors"), imported, "", n) && matches_group(path("ema.safetensors"), imported, "train.", n),
          "export -> import: EMA and online weights of the imported checkpoint are the exported ones bit for bit");
    rc = run("build/promoe export %s --out %s", imported, path("again.safetensors"));
    CHECK(rc == 0 && matches_group(path("again.safetensors"), path("ema.safetensors"), "", n), "import -> export round trip: %s", output);
    rc = run("OMP_NUM_THREADS=1 build/promoe sample %s --n 4 --steps 2 --out %s", imported, path("s.npy"));
    CHECK(rc == 0 && access(path("s.npy"), F_OK) == 0, "sample of the imported checkpoint: %s", output);
    rc = run("build/promoe runs --db %s", path("i.db"));
    CHECK(rc == 0 && strstr(output, "done"), "the imported run is recorded done: %s", output);
    rc = run("build/promoe import %s %s --db %s --set ckpt.dir=%s", path("ema.safetensors"), path("tiny.yaml"),
             path("i.db"), path("b"));
    CHECK(rc == 1 && strstr(output, "already in"), "a second import of the same run is refused: %s", output);

    // Bad input: an unknown --weights value, a training checkpoint given as weights, another model.
    rc = run("build/promoe export %s --out %s --weights best", ckpt, path("x.safetensors"));
    CHECK(rc == 1 && strstr(output, "--weights") && strstr(output, "'best'") && strstr(output, "ema, online"),
          "export --weights best (%d): %s", rc, output);
    rc = run("build/promoe export %s", ckpt);
    CHECK(rc == 129, "export without --out is a usage error (%d): %s", rc, output);
    rc = run("build/promoe import %s %s --db %s --set ckpt.dir=%s", ckpt, path("tiny.yaml"), path("i2.db"), path("c"));
    CHECK(rc == 1 && strstr(output, "train.") && strstr(output, "export it first"), "import of a checkpoint (%d): %s", rc, output);
    rc = run("build/promoe import %s %s --db %s --set ckpt.dir=%s --set model.moe.router=expert_choice",
             path("ema.safetensors"), path("tiny.yaml"), path("i3.db"), path("d"));
    CHECK(rc == 1 && strstr(output, "capacity_predictor"), "import under another router's config (%d): %s", rc, output);
    rc = run("build/promoe import %s %s --db %s --set ckpt.dir=%s --set model.moe.threshold_momentum=0.5",
             path("ema.safetensors"), path("tiny.yaml"), path("i4.db"), path("e"));
    CHECK(rc == 1 && strstr(output, "ema_decay") && strstr(output, "model.moe.threshold_momentum"),
          "import with another threshold momentum (%d): %s", rc, output);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    test_official_names();
    test_rename_map();
    test_legacy_checkpoint("diffmoe");
    test_legacy_checkpoint("expert_choice");
    test_export_import_commands();
    if (check_failed == 0 && run("rm -rf %s", dir) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_interop");
}
