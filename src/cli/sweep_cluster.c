// Options and task-side helpers of `promoe sweep` on a cluster (see sweep_cluster.h). An index
// comes from the command line or, with `--index env`, from SLURM_ARRAY_TASK_ID, which Slurm sets
// in each task of a job array; tests set it by hand to emulate an array.
#include "cli/sweep_cluster.h"

#include "cli/cli.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/processors.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INDEX_FROM_ENV "env"
#define TASK_ID_VARIABLE "SLURM_ARRAY_TASK_ID"
#define CPUS_VARIABLE "SLURM_CPUS_PER_TASK"
#define INDEX_FIELD "{index}"

void sweep_cluster_defaults(struct sweep_cluster_options *c)
{
    *c = (struct sweep_cluster_options){.index = -1, .out_dir = SWEEP_SLURM_OUT};
}

static int parse_count(const char *option, const char *text, int min, int max, int *out)
{
    long long n;
    if (cli_int_in(option, text, min, max, &n) < 0) return -1;
    *out = (int)n;
    return 0;
}

int sweep_cluster_parse_index(const char *text, int *index)
{
    if (strcmp(text, INDEX_FROM_ENV) != 0) return parse_count("--index", text, 0, SWEEP_MAX_INDEX, index);
    const char *value = getenv(TASK_ID_VARIABLE);
    if (!value || !value[0])
        return err("option '--index env': %s is not set (it is set in each task of a Slurm job array)",
                   TASK_ID_VARIABLE);
    if (parse_count(TASK_ID_VARIABLE, value, 0, SWEEP_MAX_INDEX, index) < 0)
        return err_context("option '--index env'");
    return 0;
}

int sweep_cluster_check_index(const struct sweep_cluster_options *c, const struct sweep *sw)
{
    if (c->index >= sw->n_runs)
        return err("--index %d: sweep '%s' has %d runs (indexes 0 to %d)", c->index, sw->name, sw->n_runs,
                   sw->n_runs - 1);
    return 0;
}

int sweep_shard_path(const char *pattern, const char *sweep, int index, char *out, size_t size)
{
    char fallback[IO_PATH_MAX];
    if (!pattern) {
        snprintf(fallback, sizeof fallback, SWEEP_SHARD_PATTERN, sweep);
        pattern = fallback;
    }
    size_t used = 0, field = strlen(INDEX_FIELD);
    out[0] = '\0';
    for (const char *p = pattern; *p && used < size; ) {
        int n = !strncmp(p, INDEX_FIELD, field) ? snprintf(out + used, size - used, "%d", index)
                                                : snprintf(out + used, size - used, "%c", *p);
        p += !strncmp(p, INDEX_FIELD, field) ? field : 1;
        used += (size_t)n;
    }
    if (used >= size) return err("shard path '%s' is too long", pattern);
    return 0;
}

long sweep_cores(void)
{
    const char *slurm_cpus = getenv(CPUS_VARIABLE);
    long cpus = slurm_cpus ? strtol(slurm_cpus, NULL, 10) : 0;
    return cpus > 0 ? cpus : processors_available();
}
