// The training loop: data -> objective -> DiT forward/backward -> clip -> AdamW -> EMA, with
// metrics to the database every log.every steps, atomic checkpoints every ckpt.every steps and at
// the end, bit-identical resume, and a stop with status 'failed' on a non-finite loss.
// One writer per run: the trainer holds the run's owner lock (run_lock.h) while it trains, and a
// run that another live process owns is refused. A finished run is left as it is unless `force`.
// SIGINT, SIGTERM and SIGHUP stop the loop at the next step boundary: the checkpoint is written and
// the run recorded 'interrupted'; every other failure after the run is recorded marks it 'failed'
// with the message.
#ifndef PROMOE_TRAINER_H
#define PROMOE_TRAINER_H

#include <stdint.h>

#include "config/config.h"
#include "io/path.h"

struct train_options {
    const char *db_path;      // results database
    int resume;               // continue from the run's checkpoint when there is one
    int64_t stop_after;       // stop resumably after this many steps of this attempt (0 = never)
    const char *label;        // display name in the database (may be NULL)
    int force;                // train a done run again from step 0, as a new attempt
};

struct train_result {
    char run_id[17];
    int64_t steps_done;
    double first_loss, last_loss;
    double img_per_s;
    int already_done;         // resume found the run finished
    int busy;                 // refused: another live process owns the run
    int stopped_by;           // the signal that stopped the run (0: none)
    char checkpoint[IO_PATH_MAX];
    char grid[IO_PATH_MAX];          // sample grid written at the end ("" if none)
};

int train_run(const struct config *cfg, const struct train_options *o, struct train_result *res);

// Checkpoint path of a run: <ckpt.dir>/<run id>/latest.safetensors (capacity 1024).
void train_checkpoint_path(const struct config *cfg, const char *run_id, char *path);   // path: IO_PATH_MAX bytes

#endif
