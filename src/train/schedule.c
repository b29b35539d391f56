// Learning-rate and EMA-decay schedules (see schedule.h).
#include "train/schedule.h"

#include <math.h>

double schedule_lr(const struct config *cfg, int64_t step)
{
    int64_t warmup = cfg->warmup;
    if (step < warmup) return cfg->lr * (double)(step + 1) / (double)warmup;
    if (cfg->lr_schedule == LR_CONSTANT || cfg->steps <= warmup) return cfg->lr;
    double progress = (double)(step - warmup) / (double)(cfg->steps - warmup);
    if (progress > 1) progress = 1;
    return cfg->lr * 0.5 * (1 + cos(M_PI * progress));
}

double schedule_ema_decay(const struct config *cfg, int64_t step)
{
    if (!cfg->ema_warmup) return cfg->ema_decay;
    double warm = (1.0 + (double)step) / (10.0 + (double)step);
    return warm < cfg->ema_decay ? warm : cfg->ema_decay;
}
