// promoe merge MAIN.db SHARD.db ...
// Folds shard databases (one per Slurm array task, written by `promoe sweep --index`) into the
// main database, one transaction per shard, printing one line per shard. Merging a shard again
// adds nothing; a shard of another schema version is refused and the merge stops there (the
// shards merged before it stay merged).
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "core/error.h"
#include "store/merge.h"

static const char *const merge_usage = "promoe merge MAIN.db SHARD.db ...";

enum { SHA_SHOWN = 12, MERGE_PATHS_MAX = 4096 };

static int merge_one(struct store *db, const char *shard)
{
    struct store_merge_result r;
    if (store_merge_shard(db, shard, &r) < 0) return -1;
    if (r.already_merged)
        printf("skip    %s  %.*s  already merged\n", shard, SHA_SHOWN, r.shard_sha256);
    else
        printf("merged  %s  %.*s  %lld rows from %d tables\n", shard, SHA_SHOWN, r.shard_sha256,
               (long long)r.rows, r.tables);
    fflush(stdout);
    return 0;
}

int cmd_merge(int argc, char **argv)
{
    const char *paths[MERGE_PATHS_MAX];
    int n = 0;
    const struct cli_command_line line = {merge_usage, NULL, 0, paths, 2, MERGE_PATHS_MAX, &n};
    int parsed = cli_parse(argc, argv, &line);
    if (parsed) return parsed < 0 ? 0 : parsed;
    struct store *db;
    if (store_open(&db, paths[0]) < 0) return EXIT_FAILED;
    int rc = 0;
    for (int i = 1; rc == 0 && i < n; i++) rc = merge_one(db, paths[i]);
    store_close(db);
    if (rc < 0) return EXIT_FAILED;
    printf("database %s\n", paths[0]);
    return 0;
}
