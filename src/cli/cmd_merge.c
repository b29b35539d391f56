// promoe merge MAIN.db SHARD.db ...
// Folds shard databases (one per Slurm array task, written by `promoe sweep --index`) into the
// main database, one transaction per shard, printing one line per shard. Merging a shard again
// adds nothing; a shard of another schema version is refused and the merge stops there (the
// shards merged before it stay merged).
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "store/merge.h"

static const char *const merge_usage = "promoe merge MAIN.db SHARD.db ...";

enum { SHA_SHOWN = 12 };

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
    if (argc == 2 && !strcmp(argv[1], "--help")) {
        printf("usage: %s\n", merge_usage);
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-') {
            fprintf(stderr, "promoe merge: unknown option '%s'\n", argv[i]);
            return cli_usage(merge_usage);
        }
    if (argc < 3) return cli_usage(merge_usage);
    struct store *db;
    if (store_open(&db, argv[1]) < 0) return EXIT_FAILED;
    int rc = 0;
    for (int i = 2; rc == 0 && i < argc; i++) rc = merge_one(db, argv[i]);
    store_close(db);
    if (rc < 0) return EXIT_FAILED;
    printf("database %s\n", argv[1]);
    return 0;
}
