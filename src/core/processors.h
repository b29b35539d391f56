// The processors this process may run on: its affinity mask, as taskset, cgroups and Slurm's
// binding set it (all online processors when the mask cannot be read).
#ifndef PROMOE_PROCESSORS_H
#define PROMOE_PROCESSORS_H

int processors_available(void);

#endif
