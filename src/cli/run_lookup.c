// Resolving RUN arguments of the analysis commands.
#include "cli/run_lookup.h"

#include <string.h>

#include "core/error.h"

int cli_open_run(const char *db_path, const char *prefix, int need_checkpoint, struct run_ref *out)
{
    memset(out, 0, sizeof *out);
    out->step = -1;
    if (store_open(&out->db, db_path) < 0) return -1;
    if (store_resolve_run(out->db, prefix, out->run_id) < 0) return -1;
    int found = store_latest_checkpoint(out->db, out->run_id, "train", out->checkpoint, &out->step);
    if (found < 0) return -1;
    if (!found && need_checkpoint)
        return err("run '%s' has no checkpoint in database '%s'", out->run_id, db_path);
    return 0;
}
