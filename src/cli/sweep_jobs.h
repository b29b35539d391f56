// The process side of `promoe sweep`: each run is a child `promoe train` (this program, through
// /proc/self/exe) with its resolved config written to <ckpt.dir>/<run id>/sweep-config.yaml, its
// output in <ckpt.dir>/<run id>/train.log, and --resume --db --label; N children at once.
// SIGINT/SIGTERM/SIGHUP are forwarded to the children and no new run starts: every run stays
// resumable. A run that another live process owns (a second sweep sharing it) is skipped, not
// waited for: its child is refused by `train` and counted as skipped.
#ifndef PROMOE_SWEEP_JOBS_H
#define PROMOE_SWEEP_JOBS_H

#include "config/sweep.h"
#include "store/db.h"

struct sweep_tally {
    int done, failed, interrupted, skipped;
    int stopped_by_signal;  // the signal number, 0 if none
};

// Runs the runs of sw whose indexes are listed in todo (n_todo of them), jobs at a time,
// printing one line as each starts and ends. Child failures are counted, not returned; -1 only
// when the sweep itself cannot go on (no fork, no database).
int sweep_jobs_run(const struct sweep *sw, const int *todo, int n_todo, int jobs, const char *db_path,
                   struct store *db, struct sweep_tally *tally);

#endif
