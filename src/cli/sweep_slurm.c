// The two sbatch scripts of `promoe sweep --slurm` (see sweep_slurm.h). The array task replaces
// its shell with promoe (exec), so the early warning that --signal=B:TERM@<s> sends to the batch
// shell reaches the sweep process, which forwards it to the training run and leaves the run
// resumable from its last checkpoint; a task run again (requeue, resubmission) continues it.
#include "cli/sweep_slurm.h"

#include "core/error.h"
#include "io/atomic.h"
#include "io/path.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { SCRIPT_CAPACITY = 8192, WARN_SECONDS = 120 };

// path as an absolute path (relative ones are taken from the current folder).
static int absolute(const char *path, char *out)
{
    char cwd[IO_PATH_MAX];
    if (path[0] == '/') return snprintf(out, IO_PATH_MAX, "%s", path) < IO_PATH_MAX ? 0 : err("path '%s' is too long", path);
    if (!getcwd(cwd, sizeof cwd)) return err("cannot read the current folder: %s", strerror(errno));
    const char *rest = strncmp(path, "./", 2) == 0 ? path + 2 : path;
    if (snprintf(out, IO_PATH_MAX, "%s/%s", cwd, rest) >= IO_PATH_MAX) return err("path '%s' is too long", path);
    return 0;
}

// Slurm reads #SBATCH lines without a shell: a path there cannot be quoted.
static int plain_path(const char *path)
{
    if (strpbrk(path, " \t\n'\"\\$`"))
        return err("path '%s' has spaces or quotes, which #SBATCH lines cannot hold", path);
    return 0;
}

struct script {
    char text[SCRIPT_CAPACITY];
    size_t len;
};

static void add(struct script *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct script *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (s->len < sizeof s->text) {
        int n = vsnprintf(s->text + s->len, sizeof s->text - s->len, fmt, ap);
        s->len += n > 0 ? (size_t)n : 0;
    }
    va_end(ap);
}

static void add_resources(struct script *s, const struct sweep_cluster_options *c, int cpus)
{
    if (cpus > 0) add(s, "#SBATCH --cpus-per-task=%d\n", cpus);
    if (c->time) add(s, "#SBATCH --time=%s\n", c->time);
    if (c->partition) add(s, "#SBATCH --partition=%s\n", c->partition);
}

struct paths {
    char program[IO_PATH_MAX], sweep[IO_PATH_MAX], db[IO_PATH_MAX], out[IO_PATH_MAX],
        cwd[IO_PATH_MAX];
};

static int array_script(const struct sweep *sw, const struct paths *p, const struct sweep_slurm_scripts *o,
                        const struct sweep_cluster_options *c, struct script *s)
{
    add(s, "#!/bin/bash\n# promoe sweep '%s': %d runs, one per array task; task I trains run I into the "
           "shard %s/I.db.\n# Written by `promoe sweep --slurm`; submit it with the merge job (README, "
           "\"Running on a cluster: Slurm\").\n", sw->name, sw->n_runs, o->shards);
    add(s, "#SBATCH --job-name=promoe-%s\n", sw->name);
    add(s, "#SBATCH --array=0-%d", sw->n_runs - 1);
    if (c->parallel > 0) add(s, "%%%d", c->parallel);
    add(s, "\n");
    add_resources(s, c, c->cpus);
    add(s, "#SBATCH --chdir=%s\n#SBATCH --output=%s/logs/%%A_%%a.out\n", p->cwd, p->out);
    add(s, "#SBATCH --signal=B:TERM@%d\n", WARN_SECONDS);
    add(s, "set -eu\nexec '%s' sweep '%s' --index \"$SLURM_ARRAY_TASK_ID\" --db '%s/'\"$SLURM_ARRAY_TASK_ID\".db\n",
        p->program, p->sweep, o->shards);
    return s->len < sizeof s->text ? 0 : err("sbatch script of sweep '%s' is too long", sw->name);
}

static int merge_script(const struct sweep *sw, const struct paths *p, const struct sweep_slurm_scripts *o,
                        const struct sweep_cluster_options *c, struct script *s)
{
    add(s, "#!/bin/bash\n# Folds the shards of sweep '%s' into %s once its array has ended\n"
           "# (submitted with --dependency=afterany:<array job id>). Merging again adds nothing.\n",
        sw->name, p->db);
    add(s, "#SBATCH --job-name=promoe-%s-merge\n", sw->name);
    add_resources(s, c, 1);
    add(s, "#SBATCH --chdir=%s\n#SBATCH --output=%s/logs/%%j-merge.out\n", p->cwd, p->out);
    add(s, "set -eu\nexec '%s' merge '%s' '%s'/*.db\n", p->program, p->db, o->shards);
    return s->len < sizeof s->text ? 0 : err("merge script of sweep '%s' is too long", sw->name);
}

static int resolve_paths(const char *sweep_path, const char *db_path, const struct sweep_cluster_options *c,
                         const struct sweep *sw, struct paths *p, struct sweep_slurm_scripts *o)
{
    ssize_t n = readlink("/proc/self/exe", p->program, sizeof p->program - 1);
    if (n < 0) return err("cannot find this program's path: %s", strerror(errno));
    p->program[n] = '\0';
    char shards[IO_PATH_MAX];
    snprintf(shards, sizeof shards, "%s/%s", SWEEP_SHARD_FOLDER, sw->name);
    if (!getcwd(p->cwd, sizeof p->cwd)) return err("cannot read the current folder: %s", strerror(errno));
    if (absolute(sweep_path, p->sweep) < 0 || absolute(db_path, p->db) < 0 ||
        absolute(c->out_dir, p->out) < 0 || absolute(shards, o->shards) < 0)
        return -1;
    const char *all[] = {p->program, p->sweep, p->db, p->out, p->cwd, o->shards};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (plain_path(all[i]) < 0) return -1;
    if (snprintf(o->array, sizeof o->array, "%s/%s.sbatch", p->out, sw->name) >= (int)sizeof o->array ||
        snprintf(o->merge, sizeof o->merge, "%s/%s-merge.sbatch", p->out, sw->name) >= (int)sizeof o->merge)
        return err("script path in '%s' is too long", p->out);
    return 0;
}

int sweep_slurm_write(const struct sweep *sw, const char *sweep_path, const char *db_path,
                      const struct sweep_cluster_options *c, struct sweep_slurm_scripts *out)
{
    static struct paths p;
    static struct script array, merge;
    memset(&array, 0, sizeof array);
    memset(&merge, 0, sizeof merge);
    char logs[IO_PATH_MAX];
    if (resolve_paths(sweep_path, db_path, c, sw, &p, out) < 0) return -1;
    if (snprintf(logs, sizeof logs, "%s/logs", p.out) >= (int)sizeof logs) return err("path '%s' is too long", p.out);
    // Slurm opens the log files before the job starts: their folder must exist.
    if (io_make_folders(logs) < 0 || io_make_folders(out->shards) < 0) return -1;
    if (array_script(sw, &p, out, c, &array) < 0 || merge_script(sw, &p, out, c, &merge) < 0) return -1;
    if (atomic_write_file(out->array, array.text, array.len) < 0 ||
        atomic_write_file(out->merge, merge.text, merge.len) < 0)
        return -1;
    return 0;
}
