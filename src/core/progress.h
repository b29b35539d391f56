// Progress for people: a self-updating line on a terminal (step, loss, img/s, time left); nothing
// when stderr is not a terminal or CI is set, so logs and CI stay quiet.
#ifndef PROMOE_PROGRESS_H
#define PROMOE_PROGRESS_H

#include <stdint.h>

struct progress {
    int enabled;
    double start_seconds, last_draw;
    int64_t first_step, total;
};

void progress_begin(struct progress *p, int64_t first_step, int64_t total);
void progress_update(struct progress *p, int64_t step, double loss, double img_per_s);
void progress_end(struct progress *p);

// A line for people on stderr ("promoe: ..."), e.g. where results were written.
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
