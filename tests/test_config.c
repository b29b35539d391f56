// Tests of the config module: defaults, YAML loading (nested, dotted, flow), every error with its
// file:line:column and key, --set, cross-key validation, the canonical text's round trip, the run
// id (which keys change it) and SHA-256. Fixtures live in tests/data/config/; run from the root.
#include "check.h"
#include "config/config.h"
#include "core/error.h"
#include "core/sha256.h"

#include <stdlib.h>
#include <string.h>

#define FIXTURE(name) "tests/data/config/" name

static int contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

static int same_config(const struct config *a, const struct config *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

// A load that must fail with `expected` in its message and leave the config untouched.
static void expect_file_error(const char *path, const char *expected)
{
    struct config cfg, before;
    config_defaults(&cfg);
    before = cfg;
    err_clear();
    int rc = config_load_file(&cfg, path);
    CHECK(rc == -1, "%s: loaded, expected an error", path);
    CHECK(contains(err_message(), expected), "%s: got '%s', expected '%s'", path, err_message(),
          expected);
    CHECK(same_config(&cfg, &before), "%s: a failed load changed the config", path);
}

static void expect_text_error(const char *text, const char *expected)
{
    struct config cfg, before;
    config_defaults(&cfg);
    before = cfg;
    err_clear();
    int rc = config_load_text(&cfg, text, "inline");
    CHECK(rc == -1, "'%s': loaded, expected an error", text);
    CHECK(contains(err_message(), expected), "'%s': got '%s', expected '%s'", text, err_message(),
          expected);
    CHECK(same_config(&cfg, &before), "'%s': a failed load changed the config", text);
}

static void expect_set_error(const char *assignment, const char *expected)
{
    struct config cfg, before;
    config_defaults(&cfg);
    before = cfg;
    err_clear();
    int rc = config_set(&cfg, assignment);
    CHECK(rc == -1, "--set '%s': accepted, expected an error", assignment);
    CHECK(strcmp(err_message(), expected) == 0, "--set '%s': got '%s', expected '%s'", assignment,
          err_message(), expected);
    CHECK(same_config(&cfg, &before), "--set '%s': a failed override changed the config",
          assignment);
}

static void test_defaults(void)
{
    struct config cfg;
    config_defaults(&cfg);
    CHECK(cfg.hidden == 192 && cfg.depth == 6 && cfg.heads == 6 && cfg.patch == 4,
          "model defaults");
    CHECK(cfg.mlp_ratio == 4 && cfg.learn_sigma == 1 && cfg.class_dropout == 0.1, "model defaults");
    CHECK(cfg.objective == OBJECTIVE_RF && cfg.rf_logit_mean == 0.0 && cfg.rf_logit_std == 1.0,
          "rf");
    CHECK(cfg.ddpm_steps == 1000 && cfg.ddpm_hybrid_loss == 1, "ddpm defaults");
    CHECK(strcmp(cfg.data_name, "fashion-mnist") == 0, "data.name '%s'", cfg.data_name);
    CHECK(strcmp(cfg.data_path, "/usr/share/datasets/fashion-mnist") == 0, "data.path '%s'",
          cfg.data_path);
    CHECK(cfg.data_labels[0] == '\0' && cfg.channels == 1 && cfg.image_size == 28, "data defaults");
    CHECK(cfg.num_classes == 10 && cfg.pad_to == 0 && cfg.flip == 1, "data defaults");
    CHECK(cfg.steps == 1000 && cfg.batch_size == 128 && cfg.lr == 1e-4 && cfg.weight_decay == 0,
          "train");
    CHECK(cfg.beta1 == 0.9 && cfg.beta2 == 0.999 && cfg.adam_eps == 1e-8 && cfg.grad_clip == 0,
          "adam");
    CHECK(cfg.ema_decay == 0.9999 && cfg.seed == 0 && cfg.threads == 0, "train defaults");
    CHECK(cfg.log_every == 10 && cfg.ckpt_every == 0 &&
              strcmp(cfg.ckpt_dir, "results/checkpoints") == 0,
          "log/ckpt defaults");
    CHECK(cfg.sample_steps == 50 && cfg.sample_cfg == 1.0 && cfg.sample_cfg_channels == 0 &&
              cfg.sample_n == 100,
          "sample defaults");
    CHECK(config_validate(&cfg) == 0, "defaults do not validate: %s", err_message());
}

static void check_nested_values(const struct config *cfg, const char *what)
{
    CHECK(cfg->hidden == 384 && cfg->depth == 4 && cfg->learn_sigma == 0, "%s: model", what);
    CHECK(cfg->heads == 6 && cfg->patch == 4, "%s: untouched keys keep defaults", what);
    CHECK(cfg->objective == OBJECTIVE_DDPM && cfg->ddpm_steps == 500, "%s: objective", what);
    CHECK(cfg->pad_to == 32 && cfg->flip == 0, "%s: data", what);
    CHECK(cfg->lr == 3e-4 && cfg->steps == 1000000, "%s: lr %g steps %lld", what, cfg->lr,
          (long long)cfg->steps);
    CHECK(cfg->seed == UINT64_MAX, "%s: seed", what);
}

static void test_load_forms(void)
{
    struct config nested, dotted, mixed, empty, defaults;
    config_defaults(&nested), config_defaults(&dotted), config_defaults(&mixed);
    config_defaults(&empty), config_defaults(&defaults);
    CHECK(config_load_file(&nested, FIXTURE("nested.yaml")) == 0, "nested: %s", err_message());
    CHECK(config_load_file(&dotted, FIXTURE("dotted.yaml")) == 0, "dotted: %s", err_message());
    CHECK(config_load_file(&mixed, FIXTURE("mixed.yaml")) == 0, "mixed: %s", err_message());
    CHECK(config_load_file(&empty, FIXTURE("empty.yaml")) == 0, "empty: %s", err_message());
    check_nested_values(&nested, "nested");
    CHECK(same_config(&nested, &dotted), "nested and dotted forms differ");
    CHECK(same_config(&nested, &mixed), "nested and flow forms differ");
    CHECK(same_config(&empty, &defaults), "an empty file changed the config");
    CHECK(config_validate(&nested) == 0, "nested.yaml does not validate: %s", err_message());

    struct config cfg;
    config_defaults(&cfg);
    CHECK(config_load_text(&cfg, "", "inline") == 0, "empty text: %s", err_message());
    CHECK(config_load_text(&cfg, "---\n", "inline") == 0, "bare document: %s", err_message());
    CHECK(config_load_text(&cfg, "~\n", "inline") == 0, "null document: %s", err_message());
    CHECK(config_load_text(&cfg, "model:\n# all commented out\n", "inline") == 0,
          "empty section: %s", err_message());
    CHECK(same_config(&cfg, &defaults), "empty documents changed the config");
    CHECK(config_load_text(&cfg, "model: {depth: 3}\nmodel: {heads: 3}\n", "inline") == 0,
          "a section split in two: %s", err_message());
    CHECK(cfg.depth == 3 && cfg.heads == 3, "split section");
    CHECK(config_load_text(&cfg, "data.labels:\nsample: {n: 0}\n", "inline") == 0, "%s",
          err_message());
    CHECK(cfg.data_labels[0] == '\0' && cfg.sample_n == 0, "empty string and zero");
}

static void test_file_errors(void)
{
    expect_file_error(FIXTURE("bad_key.yaml"),
                      "tests/data/config/bad_key.yaml:3:3: key 'model.hiden': unknown key "
                      "(did you mean 'model.hidden'?)");
    expect_file_error(
        FIXTURE("duplicate.yaml"),
        "duplicate.yaml:4:1: key 'model.hidden': given twice (first at line 2, column 3)");
    expect_file_error(FIXTURE("wrong_type.yaml"),
                      "wrong_type.yaml:2:7: key 'train.lr': expected a number, got 'fast'");
    expect_file_error(FIXTURE("out_of_range.yaml"),
                      "out_of_range.yaml:2:10: key 'model.depth': 0 is out of range [1, 256]");
    expect_file_error(FIXTURE("int_float.yaml"),
                      "int_float.yaml:1:15: key 'model.hidden': expected an integer, got '1.5'");
    expect_file_error(FIXTURE("malformed.yaml"),
                      "malformed.yaml:3:2: malformed YAML: did not find expected key");
    expect_file_error(
        FIXTURE("sequence.yaml"),
        "sequence.yaml:2:11: key 'model.hidden': expected a single value, got a sequence");
    expect_file_error(
        FIXTURE("mapping_value.yaml"),
        "mapping_value.yaml:3:5: key 'model.hidden': expected a single value, got a mapping");
    expect_file_error(FIXTURE("top_list.yaml"),
                      "top_list.yaml:1:1: the top level must be a mapping");
    expect_file_error(FIXTURE("unknown_nested_dotted.yaml"),
                      "unknown_nested_dotted.yaml:3:3: key 'model.moe.routr': unknown key (did you mean 'model.moe.router'?)");
    expect_file_error(
        FIXTURE("section_scalar.yaml"),
        "section_scalar.yaml:1:1: key 'model': expected a mapping of model.* keys, got '3'");
    expect_file_error(FIXTURE("missing.yaml"),
                      "cannot open 'tests/data/config/missing.yaml': No such file or directory");
    expect_file_error("tests/data/config", "cannot read 'tests/data/config': Is a directory");
}

static void test_text_errors(void)
{
    expect_text_error("model:\n  depth: 4\n  hidden: abc\n",
                      "inline:3:11: key 'model.hidden': expected an integer, got 'abc'");
    expect_text_error("model.depth: 1e9\n",
                      "inline:1:14: key 'model.depth': 1e9 is out of range [1, 256]");
    expect_text_error("train.steps: 1e13\n",
                      "key 'train.steps': 1e13 is out of range [0, 1000000000000]");
    expect_text_error("train.steps: 99999999999999999999\n", "is out of range [0, 1000000000000]");
    expect_text_error("train.seed: -1\n",
                      "key 'train.seed': -1 is out of range [0, 18446744073709551615]");
    expect_text_error("train.seed: 18446744073709551616\n",
                      "key 'train.seed': 18446744073709551616 is out of range");
    expect_text_error("train.seed: 1.5\n",
                      "key 'train.seed': expected a non-negative integer, got '1.5'");
    expect_text_error("train.beta1: 1\n", "key 'train.beta1': 1 is out of range [0, 1)");
    expect_text_error("train.eps: 0\n", "key 'train.eps': 0 is out of range (0, inf)");
    expect_text_error("rf.logit_mean: .nan\n",
                      "key 'rf.logit_mean': expected a number, got '.nan'");
    expect_text_error("rf.logit_mean: inf\n", "key 'rf.logit_mean': expected a number, got 'inf'");
    expect_text_error("objective: flow\n",
                      "inline:1:12: key 'objective': expected one of rf|ddpm, got 'flow'");
    expect_text_error("data.name: cifar\n",
                      "key 'data.name': expected one of fashion-mnist|npy, got 'cifar'");
    expect_text_error("model.learn_sigma: maybe\n",
                      "key 'model.learn_sigma': expected true or false, got 'maybe'");
    expect_text_error("model.learn_sigma: 1\n", "expected true or false, got '1'");
    expect_text_error("depth: 3\n",
                      "inline:1:1: key 'depth': unknown key (did you mean 'model.depth'?)");
    expect_text_error("zzzzzzzz: 3\n", "inline:1:1: key 'zzzzzzzz': unknown key");
    expect_text_error("trian:\n  lr: 0.1\n",
                      "inline:2:3: key 'trian.lr': unknown key (did you mean 'train.lr'?)");
    expect_text_error("model.hidden: 192\nmodel:\n  hidden: 192\n",
                      "inline:3:3: key 'model.hidden': given twice");
    expect_text_error("a: &x 1\nb: *x\n", "inline:1:1: key 'a': unknown key");
    expect_text_error("model:\n  hidden: &x 192\n  depth: *x\n",
                      "inline:3:10: key 'model.depth': expected a single value, got an alias "
                      "(aliases are not supported)");
    expect_text_error(
        "model: [1]\n",
        "inline:1:8: key 'model': expected a mapping of model.* keys, got a sequence");
    expect_text_error("model: 1\n---\nmodel: 2\n", "inline:1:1: key 'model'");
    expect_text_error("model.depth: 1\n---\nmodel.depth: 2\n",
                      "inline:2:1: only one YAML document is allowed");
    expect_text_error("192\n", "inline:1:1: the top level must be a mapping of keys");
    expect_text_error("[a]: 1\n", "inline:1:1: mapping keys must be plain names");
    expect_text_error("model: {hidden: 192\n",
                      "inline:2:1: malformed YAML: did not find expected ',' or '}'");
    expect_text_error("data.path: \"abc\n",
                      "inline:2:1: malformed YAML: found unexpected end of stream");
    expect_text_error("data.path: \"a\\0b\"\n",
                      "inline:1:12: key 'data.path': contains a NUL character");

    char long_value[CONFIG_STRING_MAX + 32];
    memset(long_value, 0, sizeof long_value);
    memcpy(long_value, "data.path: ", 11);
    memset(long_value + 11, 'x', CONFIG_STRING_MAX);
    expect_text_error(long_value,
                      "key 'data.path': value is 512 bytes, more than the limit of 511");
}

static void test_bool(void)
{
    static const char *const truths[] = {"true", "True", "TRUE", "on", "yes", "Yes"};
    static const char *const lies[] = {"false", "False", "off", "OFF", "no", "No"};
    char text[64];
    for (size_t i = 0; i < 6; i++) {
        struct config cfg;
        config_defaults(&cfg);
        snprintf(text, sizeof text, "data.flip: %s\n", lies[i]);
        CHECK(config_load_text(&cfg, text, "inline") == 0 && cfg.flip == 0, "'%s' is false",
              lies[i]);
        snprintf(text, sizeof text, "data: {flip: %s}\n", truths[i]);
        CHECK(config_load_text(&cfg, text, "inline") == 0 && cfg.flip == 1, "'%s' is true",
              truths[i]);
    }
}

static void test_set(void)
{
    struct config cfg;
    config_defaults(&cfg);
    CHECK(config_set(&cfg, "model.hidden=256") == 0 && cfg.hidden == 256, "%s", err_message());
    CHECK(config_set(&cfg, " train.lr = 2e-4 ") == 0 && cfg.lr == 2e-4, "%s", err_message());
    CHECK(config_set(&cfg, "objective=ddpm") == 0 && cfg.objective == OBJECTIVE_DDPM, "%s",
          err_message());
    CHECK(config_set(&cfg, "data.path=/tmp/a=b c") == 0 && strcmp(cfg.data_path, "/tmp/a=b c") == 0,
          "data.path '%s'", cfg.data_path);
    CHECK(config_set(&cfg, "data.labels=") == 0 && cfg.data_labels[0] == '\0', "%s", err_message());
    CHECK(config_set(&cfg, "train.steps=1e6") == 0 && cfg.steps == 1000000, "%s", err_message());
    CHECK(config_set(&cfg, "train.seed=12345678901234567890") == 0 &&
              cfg.seed == 12345678901234567890ull,
          "%s", err_message());
    CHECK(config_set(&cfg, "data.flip=no") == 0 && cfg.flip == 0, "%s", err_message());
    CHECK(cfg.moe_pool_scope == POOL_GLOBAL && !cfg.deterministic, "data-parallel defaults");
    CHECK(config_set(&cfg, "model.moe.pool_scope=rank") == 0 && cfg.moe_pool_scope == POOL_RANK, "%s",
          err_message());
    CHECK(config_set(&cfg, "train.deterministic=true") == 0 && cfg.deterministic == 1, "%s", err_message());

    expect_set_error("model.hidn=3",
                     "--set 'model.hidn=3': unknown key (did you mean 'model.hidden'?)");
    expect_set_error("model.hidden", "--set 'model.hidden': expected key=value");
    expect_set_error("model.depth=0", "--set 'model.depth=0': 0 is out of range [1, 256]");
    expect_set_error("model.depth=", "--set 'model.depth=': expected an integer, got ''");
    expect_set_error("model.depth=1.5", "--set 'model.depth=1.5': expected an integer, got '1.5'");
    expect_set_error("train.lr=fast", "--set 'train.lr=fast': expected a number, got 'fast'");
    expect_set_error("objective=flow",
                     "--set 'objective=flow': expected one of rf|ddpm, got 'flow'");
    expect_set_error("model.moe.pool_scope=node",
                     "--set 'model.moe.pool_scope=node': expected one of global|rank|samples, got 'node'");
    expect_set_error("model=3", "--set 'model=3': 'model' is a section, not a key");
    expect_set_error("=3", "--set '=3': unknown key");
}

static void expect_invalid(const char *const *assignments, size_t n, const char *expected)
{
    struct config cfg;
    config_defaults(&cfg);
    for (size_t i = 0; i < n; i++)
        CHECK(config_set(&cfg, assignments[i]) == 0, "--set '%s': %s", assignments[i],
              err_message());
    err_clear();
    CHECK(config_validate(&cfg) == -1, "'%s...' validated, expected '%s'", assignments[0],
          expected);
    CHECK(strcmp(err_message(), expected) == 0, "got '%s', expected '%s'", err_message(), expected);
}

#define INVALID(expected, ...)                                                                     \
    do {                                                                                           \
        const char *const list[] = {__VA_ARGS__};                                                  \
        expect_invalid(list, sizeof list / sizeof list[0], expected);                              \
    } while (0)

static void test_validate(void)
{
    INVALID("model.hidden 100 is not divisible by model.heads 6", "model.hidden=100");
    INVALID("model.hidden 18 is not divisible by 4 (the 2-D sin-cos position embedding needs it)",
            "model.hidden=18");
    INVALID("data.image_size 28 is not divisible by model.patch 8", "model.patch=8");
    INVALID("data.pad_to 30 is not divisible by model.patch 4", "data.pad_to=30");
    INVALID("data.pad_to 20 is smaller than data.image_size 28", "data.pad_to=20");
    INVALID("data.name npy needs data.labels (the labels .npy)", "data.name=npy",
            "data.path=x.npy");
    INVALID("data.path is empty", "data.path=");
    INVALID("data.name fashion-mnist needs data.channels 1, got 3", "data.channels=3");
    INVALID("sample.cfg_channels 2 exceeds data.channels 1", "sample.cfg_channels=2");
    INVALID("sample.steps 2000 exceeds ddpm.steps 1000 (objective ddpm)", "objective=ddpm",
            "sample.steps=2000");
    INVALID("ckpt.dir is empty", "ckpt.dir=");

    struct config cfg;
    config_defaults(&cfg);
    CHECK(config_set(&cfg, "data.pad_to=32") == 0 && config_set(&cfg, "model.patch=8") == 0, "%s",
          err_message());
    CHECK(config_validate(&cfg) == 0, "padded 32 with patch 8: %s", err_message());
    CHECK(config_set(&cfg, "data.name=npy") == 0 && config_set(&cfg, "data.labels=y.npy") == 0 &&
              config_set(&cfg, "data.channels=4") == 0 &&
              config_set(&cfg, "data.image_size=32") == 0,
          "%s", err_message());
    CHECK(config_validate(&cfg) == 0, "npy latents: %s", err_message());

    config_defaults(&cfg); // a struct filled by code is range-checked too
    cfg.depth = 0;
    CHECK(config_validate(&cfg) == -1 &&
              strcmp(err_message(), "model.depth: 0 is out of range [1, 256]") == 0,
          "got '%s'", err_message());
    config_defaults(&cfg);
    cfg.lr = NAN;
    CHECK(config_validate(&cfg) == -1 && contains(err_message(), "train.lr: ") &&
              contains(err_message(), "nan is not a finite number"),
          "got '%s'", err_message());
    config_defaults(&cfg);
    memset(cfg.data_labels, 'x', sizeof cfg.data_labels);
    CHECK(config_validate(&cfg) == -1 &&
              strcmp(err_message(), "data.labels: not NUL-terminated") == 0,
          "got '%s'", err_message());
    config_defaults(&cfg);
    cfg.objective = 7;
    CHECK(config_validate(&cfg) == -1 &&
              contains(err_message(), "objective: expected one of rf|ddpm, got '7'"),
          "got '%s'", err_message());
}

static void test_canonical(void)
{
    struct config cfg, back;
    static char text[16384], again[16384];
    config_defaults(&cfg);
    int n = config_canonical(&cfg, text, sizeof text);
    CHECK(n > 0 && (size_t)n == strlen(text), "canonical length %d", n);
    CHECK(contains(text, "model.hidden: 192\n") && contains(text, "objective: rf\n"), "%s", text);
    CHECK(contains(text, "data.name: \"fashion-mnist\"\n") &&
              contains(text, "model.learn_sigma: true\n"),
          "%s", text);
    CHECK(contains(text, "train.lr: 0.0001\n") && contains(text, "train.seed: 0\n"), "%s", text);

    int lines = 0;
    const char *previous = NULL;
    for (char *line = text; *line; line = strchr(line, '\n') + 1, lines++) {
        CHECK(!previous || strcmp(previous, line) < 0, "not sorted at '%.20s'", line);
        previous = line;
    }
    CHECK(lines == 69, "%d canonical lines (keys added later left out at their defaults)", lines);

    char small[10];
    CHECK(config_canonical(&cfg, small, sizeof small) == n && strlen(small) == 9,
          "truncated canonical");
    CHECK(config_canonical(&cfg, NULL, 0) == n, "canonical length only");

    const char *const changes[] = {
        "model.hidden=384",
        "model.class_dropout=0.1234567890123",
        "objective=ddpm",
        "rf.logit_mean=-0.0",
        "rf.logit_std=1e-300",
        "data.name=npy",
        "data.path=/a \"quoted\" \\back\\slash: #x\ttab",
        "data.labels=caf\xc3\xa9\x01.npy",
        "train.steps=1000000000000",
        "train.lr=0.1",
        "train.seed=18446744073709551615",
        "data.flip=off",
        "sample.cfg=4.5",
        "ckpt.dir=   ",
        "train.eps=3e-17",
        "train.beta2=0.99999999999999989",
    };
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++)
        CHECK(config_set(&cfg, changes[i]) == 0, "--set '%s': %s", changes[i], err_message());
    strcpy(cfg.ckpt_dir, "line1\nline2\r\\"); // characters --set cannot give
    config_canonical(&cfg, text, sizeof text);
    config_defaults(&back);
    CHECK(config_load_text(&back, text, "canonical") == 0, "round trip: %s\n%s", err_message(),
          text);
    CHECK(same_config(&cfg, &back), "round trip changed the config:\n%s", text);
    config_canonical(&back, again, sizeof again);
    CHECK(strcmp(text, again) == 0, "canonical text changed on a round trip");
}

static void run_id_of(const char *assignment, char id[17])
{
    struct config cfg;
    config_defaults(&cfg);
    if (assignment) CHECK(config_set(&cfg, assignment) == 0, "%s", err_message());
    config_run_id(&cfg, id);
}

static void test_run_id(void)
{
    char base[17], again[17], other[17];
    run_id_of(NULL, base);
    run_id_of(NULL, again);
    CHECK(strlen(base) == 16 && strspn(base, "0123456789abcdef") == 16, "run id '%s'", base);
    CHECK(strcmp(base, again) == 0, "run id not stable: %s vs %s", base, again);
    // Pinned: keys added later enter the id only when set, so the defaults' id never moves (nor
    // that of any recorded run).
    CHECK(strcmp(base, "2dbd5bbc05b348b0") == 0, "the defaults' run id moved: %s", base);
    static const char *const changing[] = {"train.lr=2e-4",  "model.depth=4",
                                           "train.seed=1",   "data.flip=false",
                                           "objective=ddpm", "data.path=/elsewhere",
                                           "data.latents.scale=0.18215",
                                           "data.latents.moments=logvar",
                                           "data.latents.sample=mean",
                                           "train.precision=bf16"};
    static const char *const neutral[] = {
        "train.threads=8", "log.every=10",          "ckpt.every=100",
        "ckpt.dir=x",      "sample.steps=10",       "sample.cfg=3",
        "sample.n=0",      "sample.cfg_channels=1", "train.lr=0.0001",
        "data.latents.scale=1", "data.latents.moments=none",
        "train.precision=fp32"};
    for (size_t i = 0; i < sizeof changing / sizeof changing[0]; i++) {
        run_id_of(changing[i], other);
        CHECK(strcmp(base, other) != 0, "--set '%s' did not change the run id", changing[i]);
    }
    for (size_t i = 0; i < sizeof neutral / sizeof neutral[0]; i++) {
        run_id_of(neutral[i], other);
        CHECK(strcmp(base, other) == 0, "--set '%s' changed the run id", neutral[i]);
    }

    // The defaults' id as computed before model.moe.pool_samples existed: a key that enters the id
    // only when set leaves every earlier run's id as it was.
    CHECK(strcmp(base, "2dbd5bbc05b348b0") == 0, "default run id %s, recorded runs have 2dbd5bbc05b348b0", base);
    run_id_of("model.moe.pool_samples=0", other);
    CHECK(strcmp(base, other) == 0, "model.moe.pool_samples at its default changed the run id");
    struct config pooled;
    config_defaults(&pooled);
    CHECK(config_set(&pooled, "model.moe.pool_scope=samples") == 0 &&
              config_set(&pooled, "model.moe.pool_samples=64") == 0, "%s", err_message());
    config_run_id(&pooled, other);
    char scope_only[17];
    run_id_of("model.moe.pool_scope=samples", scope_only);
    CHECK(strcmp(other, scope_only) != 0 && strcmp(other, base) != 0,
          "model.moe.pool_samples 64 did not change the run id");

    struct config nested, dotted;
    config_defaults(&nested), config_defaults(&dotted);
    config_load_file(&nested, FIXTURE("nested.yaml"));
    config_load_file(&dotted, FIXTURE("dotted.yaml"));
    config_run_id(&nested, base);
    config_run_id(&dotted, other);
    CHECK(strcmp(base, other) == 0, "nested and dotted files give different run ids");
}

// train.precision came after the first runs: at its default (fp32) it is in neither the canonical
// text nor the run id (the defaults' id is pinned in test_run_id), so those runs keep their ids and
// checkpoints; bf16 is in both.
static void test_precision(void)
{
    struct config cfg;
    static char text[16384];
    config_defaults(&cfg);
    CHECK(cfg.precision == PRECISION_FP32, "default precision %d", cfg.precision);
    config_canonical(&cfg, text, sizeof text);
    CHECK(!contains(text, "train.precision"), "fp32 in the canonical text:\n%s", text);
    CHECK(config_set(&cfg, "train.precision=bf16") == 0 && cfg.precision == PRECISION_BF16, "%s", err_message());
    config_canonical(&cfg, text, sizeof text);
    CHECK(contains(text, "train.precision: bf16\n"), "bf16 missing from the canonical text");
    struct config back;
    config_defaults(&back);
    CHECK(config_load_text(&back, text, "canonical") == 0 && back.precision == PRECISION_BF16,
          "bf16 lost on a round trip");
    CHECK(config_set(&cfg, "train.precision=fp16") < 0, "fp16 accepted");
    const char *msg = err_message();
    CHECK(contains(msg, "train.precision") && contains(msg, "'fp16'") && contains(msg, "fp32") &&
              contains(msg, "bf16"),
          "message does not name the key, the value and the choices: %s", msg);
}

static void test_sha256(void)
{
    char hex[65];
    sha256_hex("abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
          "sha256(abc) %s", hex);
    sha256_hex("", 0, hex);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0,
          "sha256('') %s", hex);
}

static void test_print_list(void)
{
    char *listing = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&listing, &n);
    CHECK(out != NULL, "open_memstream");
    if (!out) return;
    config_print_list(out);
    fclose(out);
    CHECK(contains(listing, "model.hidden") && contains(listing, "[1, 16384]"), "model.hidden row");
    CHECK(contains(listing, "rf|ddpm") && contains(listing, "\"fashion-mnist\""),
          "enum and string rows");
    CHECK(contains(listing, "(0, inf)") && contains(listing, "[0, 1)"), "open bounds");
    int rows = 0;
    for (const char *p = listing; (p = strchr(p, '\n')); p++) rows++;
    CHECK(rows == 82, "%d rows (header + 81 keys)", rows);
    free(listing);
}

int main(void)
{
    test_defaults();
    test_load_forms();
    test_file_errors();
    test_text_errors();
    test_bool();
    test_set();
    test_validate();
    test_canonical();
    test_run_id();
    test_precision();
    test_sha256();
    test_print_list();
    return test_summary("test_config");
}
