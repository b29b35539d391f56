// Wall-clock time for throughput figures and database timestamps.
#ifndef PROMOE_CLOCK_H
#define PROMOE_CLOCK_H
#include <stdint.h>
double clock_seconds(void);   // monotonic
int64_t clock_unix_ms(void);  // wall clock, milliseconds since the epoch
#endif
