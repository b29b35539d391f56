// Terminal progress line, redrawn at most ten times a second.
#include "core/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/clock.h"

#define REDRAW_INTERVAL 0.1

void progress_begin(struct progress *p, int64_t first_step, int64_t total)
{
    const char *ci = getenv("CI");
    p->enabled = isatty(STDERR_FILENO) && !(ci && *ci && ci[0] != '0');
    p->start_seconds = clock_seconds();
    p->last_draw = 0;
    p->first_step = first_step;
    p->total = total;
}

void progress_update(struct progress *p, int64_t step, double loss, double img_per_s)
{
    if (!p->enabled) return;
    double now = clock_seconds();
    if (now - p->last_draw < REDRAW_INTERVAL && step < p->total) return;
    p->last_draw = now;
    double done = (double)(step - p->first_step), elapsed = now - p->start_seconds;
    double left = done > 0 ? elapsed / done * (double)(p->total - step) : 0;
    fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.1f img/s  %dm%02ds left   ", (long long)step,
            (long long)p->total, loss, img_per_s, (int)left / 60, (int)left % 60);
    fflush(stderr);
}

void progress_end(struct progress *p)
{
    if (p->enabled) fputc('\n', stderr);
}

void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("promoe: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
