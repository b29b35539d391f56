// The cluster side of `promoe sweep` (ECOSYSTEM.md 5.1): the options --index, --slurm,
// --partition, --time, --cpus, --array-parallel and --out; which run an array task trains
// (`--index I`, or `--index env` for $SLURM_ARRAY_TASK_ID); the shard database it writes
// (`{index}` in --db replaced by I, by default results/shards/<sweep>/{index}.db); and how many
// cores it has ($SLURM_CPUS_PER_TASK when Slurm set it).
#ifndef PROMOE_SWEEP_CLUSTER_H
#define PROMOE_SWEEP_CLUSTER_H

#include <stddef.h>

#include "config/sweep.h"
#include "io/path.h"


#define SWEEP_SHARD_FOLDER "results/shards"
#define SWEEP_SHARD_PATTERN SWEEP_SHARD_FOLDER "/%s/{index}.db"
#define SWEEP_SLURM_OUT "results/slurm"

struct sweep_cluster_options {
    int index;                         // the one run to train; -1: every run (no --index)
    int slurm;                         // --slurm: write sbatch scripts instead of training
    const char *partition, *time;      // NULL: the cluster's defaults
    const char *out_dir;               // where --slurm writes scripts and logs
    int cpus, parallel;                // --cpus-per-task, the array's %P; 0: not set
};

void sweep_cluster_defaults(struct sweep_cluster_options *c);

// Ranges of --index and --array-parallel, and of --cpus.
enum { SWEEP_MAX_INDEX = 1 << 30, SWEEP_MAX_CPUS = 1 << 16 };

// --index: an integer in [0, SWEEP_MAX_INDEX], or "env" for $SLURM_ARRAY_TASK_ID; errors name the
// option (or the variable), the value and the range.
int sweep_cluster_parse_index(const char *text, int *index);

// Checks that c->index names a run of sw (message names the sweep and its range).
int sweep_cluster_check_index(const struct sweep_cluster_options *c, const struct sweep *sw);

// The shard database of run index: pattern with every {index} replaced, or the default pattern
// for the sweep when pattern is NULL.
int sweep_shard_path(const char *pattern, const char *sweep, int index, char *out, size_t size);

// Cores this process may use: $SLURM_CPUS_PER_TASK when set, else its affinity mask (taskset).
long sweep_cores(void);

#endif
