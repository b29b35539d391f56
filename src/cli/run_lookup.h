// The run an analysis command names: a unique prefix of its id in the results database, and the
// latest checkpoint the run recorded there.
#ifndef PROMOE_CLI_RUN_LOOKUP_H
#define PROMOE_CLI_RUN_LOOKUP_H

#include <stdint.h>

#include "io/path.h"
#include "store/analysis.h"

// A file inside an output folder: the folder name plus room for the file name.
enum { CLI_FILE_CAPACITY = IO_PATH_MAX + 64 };

struct run_ref {
    struct store *db;                      // open; the caller closes it
    char run_id[STORE_RUN_ID_CAPACITY];
    char checkpoint[IO_PATH_MAX];    // "" with need_checkpoint = 0 and none recorded
    int64_t step;                          // the checkpoint's step
};

// Opens db_path and resolves prefix; with need_checkpoint, a run without checkpoint is an error.
int cli_open_run(const char *db_path, const char *prefix, int need_checkpoint, struct run_ref *out);

#endif
