// `promoe sweep SWEEP.yaml --slurm`: writes <out>/<sweep>.sbatch, a job array with one task per
// run (task I runs `promoe sweep SWEEP.yaml --index I` into its own shard database), and
// <out>/<sweep>-merge.sbatch, which folds the shards into the main database once the array has
// ended (submitted with --dependency=afterany). Paths in the scripts are absolute.
#ifndef PROMOE_SWEEP_SLURM_H
#define PROMOE_SWEEP_SLURM_H

#include "cli/sweep_cluster.h"
#include "config/sweep.h"

struct sweep_slurm_scripts {
    char array[IO_PATH_MAX], merge[IO_PATH_MAX];  // the two files written
    char shards[IO_PATH_MAX];                        // folder of the shard databases
};

// Writes both scripts for the sweep loaded from sweep_path; db_path is the main database.
int sweep_slurm_write(const struct sweep *sw, const char *sweep_path, const char *db_path,
                      const struct sweep_cluster_options *c, struct sweep_slurm_scripts *out);

#endif
