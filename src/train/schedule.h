// Learning-rate and EMA-decay schedules as pure functions of the step, so a resumed run follows
// the same curve as an uninterrupted one (nothing about the schedule is kept in a checkpoint).
#ifndef PROMOE_SCHEDULE_H
#define PROMOE_SCHEDULE_H

#include <stdint.h>

#include "config/config.h"

// Learning rate of 0-based step `step`: linear warm-up over train.warmup steps (lr (step+1)/warmup),
// then constant or a cosine decay to zero at train.steps (train.lr_schedule).
double schedule_lr(const struct config *cfg, int64_t step);

// EMA decay of the update after 0-based step `step`: train.ema_decay, or with train.ema_warmup
// min(ema_decay, (1 + step) / (10 + step)), so the average of a short run is not dominated by
// its random initial weights.
double schedule_ema_decay(const struct config *cfg, int64_t step);

#endif
