// Folding shard databases into a main one (ECOSYSTEM.md 2.5 item 4): each Slurm array task
// writes its own shard, and `promoe merge` copies every table of each shard into the main
// database, one BEGIN IMMEDIATE transaction per shard, so a merge is atomic per shard and can be
// repeated: rows are keyed, and the shard's SHA-256 is recorded in merged_shards.
#ifndef PROMOE_STORE_MERGE_H
#define PROMOE_STORE_MERGE_H

#include <stdint.h>

#include "store/db.h"

struct store_merge_result {
    char shard_sha256[65];
    int already_merged;   // 1: a shard with this SHA-256 was merged before, nothing was copied
    int64_t rows;         // rows inserted or updated in the main database
    int tables;           // tables of the shard that were copied
};

// Merges the shard at shard_path into db. The shard must be a promoe database of the same
// schema version as this program (a message names the file and both versions otherwise); its
// WAL is checkpointed into the file first, so the SHA-256 covers everything it holds. Every table
// of the shard is copied (tables added by later migrations too): rows with the key of an existing
// row replace it, except in `runs`, where a row only replaces one of lower status precedence
// (done > running, interrupted, failed, nan > queued; among equals the more recent one).
int store_merge_shard(struct store *db, const char *shard_path, struct store_merge_result *out);

#endif
