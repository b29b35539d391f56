-- promoe results database, schema version 1 (ECOSYSTEM.md 2.3). Embedded into the library with
-- `ld -r -b binary` and run by src/store/migrate.c inside one BEGIN IMMEDIATE transaction, which
-- also sets PRAGMA application_id and user_version. Later versions are migrations in migrate.c;
-- this file stays the version-1 schema.
-- Times are Unix milliseconds (*_ms) or seconds (*_s); a NULL metric value is a NaN.

CREATE TABLE sweeps (
  sweep       TEXT PRIMARY KEY,            -- name from the sweep file
  spec_yaml   TEXT NOT NULL,               -- file as read
  spec_sha256 TEXT NOT NULL,
  created_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE runs (
  run_id        TEXT PRIMARY KEY,          -- 16 hex of config_sha256
  config_sha256 TEXT NOT NULL UNIQUE,      -- over canonical, result-affecting keys only
  config_yaml   TEXT NOT NULL,             -- full canonical resolved config (all keys, sorted)
  label         TEXT,
  seed          INTEGER NOT NULL,
  status        TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued','running','done','failed','nan','interrupted')),
  error         TEXT,                      -- named error + message when failed
  code_commit   TEXT, code_dirty INTEGER, code_diff_sha256 TEXT,
  build_info    TEXT,                      -- compiler, SQLite version
  host TEXT, pid INTEGER, threads INTEGER, world_size INTEGER,
  params_total INTEGER, params_active INTEGER,
  step_done     INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL, started_ms INTEGER, heartbeat_ms INTEGER, ended_ms INTEGER,
  train_s REAL, img_per_s REAL
) STRICT;
CREATE INDEX runs_status ON runs(status);

CREATE TABLE sweep_runs (                  -- a run can belong to several sweeps (dedupe)
  sweep  TEXT NOT NULL REFERENCES sweeps,
  idx    INTEGER NOT NULL,                 -- expansion position = Slurm array index
  run_id TEXT NOT NULL REFERENCES runs,
  PRIMARY KEY (sweep, idx), UNIQUE (sweep, run_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX sweep_runs_run ON sweep_runs(run_id);

CREATE TABLE params (                      -- flattened resolved config, one row per key
  run_id TEXT NOT NULL REFERENCES runs, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX params_kv ON params(key, value);

CREATE TABLE attempts (                    -- every start/resume/retry
  run_id TEXT NOT NULL REFERENCES runs, attempt INTEGER NOT NULL,
  host TEXT, pid INTEGER, from_step INTEGER NOT NULL,
  started_ms INTEGER NOT NULL, ended_ms INTEGER, outcome TEXT,
  PRIMARY KEY (run_id, attempt)
) STRICT, WITHOUT ROWID;

CREATE TABLE metrics (
  run_id TEXT NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL,
  value  REAL,                             -- NULL = NaN
  wall_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, name, step)         -- upsert: a resumed run overwrites, never duplicates
) STRICT, WITHOUT ROWID;

CREATE TABLE routing (
  run_id TEXT NOT NULL, step INTEGER NOT NULL, layer INTEGER NOT NULL, expert INTEGER NOT NULL,
  t_bin  INTEGER NOT NULL DEFAULT -1,      -- diffusion-time bin, -1 = all t
  tokens_cond INTEGER NOT NULL, tokens_uncond INTEGER NOT NULL,
  gate_sum REAL, gate_sumsq REAL,          -- gates of the tokens it received (mean/std derivable)
  score_mean REAL, score_max REAL,         -- router scores for this expert over all tokens
  dropped INTEGER NOT NULL DEFAULT 0,      -- capacity overflow (EC / DiffMoE)
  PRIMARY KEY (run_id, step, layer, expert, t_bin)
) STRICT, WITHOUT ROWID;

CREATE TABLE class_routing (
  run_id TEXT NOT NULL, step INTEGER NOT NULL, layer INTEGER NOT NULL,
  class_id INTEGER NOT NULL, expert INTEGER NOT NULL, tokens INTEGER NOT NULL,
  PRIMARY KEY (run_id, step, layer, class_id, expert)
) STRICT, WITHOUT ROWID;

CREATE TABLE evals (
  run_id TEXT NOT NULL, step INTEGER NOT NULL, weights TEXT NOT NULL DEFAULT 'ema',
  cfg_scale REAL NOT NULL, sampler TEXT NOT NULL, sampler_steps INTEGER NOT NULL,
  n_samples INTEGER NOT NULL, reference TEXT NOT NULL,   -- 'fmnist-train', 'VIRTUAL_imagenet256_labeled'
  metric TEXT NOT NULL,                    -- 'fid','sfid','is','precision','recall', or harness names
  value REAL, source TEXT NOT NULL DEFAULT 'harness',   -- or 'adm-evaluator'
  sample_seed INTEGER, wall_s REAL, created_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, step, weights, cfg_scale, sampler, sampler_steps, n_samples, reference, metric)
) STRICT, WITHOUT ROWID;
CREATE INDEX evals_metric ON evals(metric, cfg_scale);

CREATE TABLE diversity (
  run_id TEXT NOT NULL, step INTEGER NOT NULL, layer INTEGER NOT NULL,
  k INTEGER NOT NULL, variant TEXT NOT NULL DEFAULT 'out', value REAL NOT NULL,
  PRIMARY KEY (run_id, step, layer, k, variant)
) STRICT, WITHOUT ROWID;

CREATE TABLE checkpoints (
  run_id TEXT NOT NULL, step INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('train','ema','weights')),
  path TEXT NOT NULL, bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, step, kind)
) STRICT, WITHOUT ROWID;

CREATE TABLE merged_shards (
  shard_sha256 TEXT PRIMARY KEY, path TEXT, rows INTEGER, merged_ms INTEGER
) STRICT;

-- Per run and metric name, the row of the largest step. SQLite takes the bare columns of an
-- aggregate query with one max() from the row that holds the maximum.
CREATE VIEW latest_metrics AS
  SELECT run_id, name, max(step) AS step, value, wall_ms
  FROM metrics GROUP BY run_id, name;

-- Per run and evaluation setting (weights, cfg scale, sampler, sample count, reference, metric),
-- the evaluation of the largest step.
CREATE VIEW final_evals AS
  SELECT run_id, max(step) AS step, weights, cfg_scale, sampler, sampler_steps, n_samples,
         reference, metric, value, source, sample_seed, wall_s, created_ms
  FROM evals
  GROUP BY run_id, weights, cfg_scale, sampler, sampler_steps, n_samples, reference, metric;

-- Load balance per run, step and layer over all t (t_bin = -1): coefficient of variation
-- (population std / mean) of tokens_cond over the experts recorded in `routing`. 0 = perfectly
-- balanced; NULL when no conditional token was routed.
CREATE VIEW routing_balance AS
  SELECT run_id, step, layer, count(*) AS n_experts,
         avg(tokens_cond) AS tokens_mean,
         min(tokens_cond) AS tokens_min, max(tokens_cond) AS tokens_max,
         sqrt(max(avg(tokens_cond * tokens_cond) - avg(tokens_cond) * avg(tokens_cond), 0.0))
           / nullif(avg(tokens_cond), 0) AS cv
  FROM routing WHERE t_bin = -1
  GROUP BY run_id, step, layer;

-- The training loss of each run, for plots.
CREATE VIEW loss_curve AS
  SELECT run_id, step, value FROM metrics WHERE name = 'loss';
