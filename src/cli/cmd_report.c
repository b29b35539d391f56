// promoe report [--db PATH] [--out DIR]
// Writes the mini study's report (REPORT.md with its tables as CSV, figures and sample grids) from
// the results database (report/study.h).
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "core/error.h"
#include "report/study.h"
#include "store/db.h"

static const char *const report_usage = "promoe report [--db PATH] [--out DIR]";

int cmd_report(int argc, char **argv)
{
    const char *db_path = "results/mini-study/study.db", *out_dir = "results/mini-study";
    const struct cli_option options[] = {CLI_OPT_STRING("--db", &db_path), CLI_OPT_STRING("--out", &out_dir)};
    const struct cli_command_line line = {report_usage, CLI_TABLE(options), NULL, 0, 0, NULL};
    int parsed = cli_parse(argc, argv, &line);
    if (parsed) return parsed < 0 ? 0 : parsed;
    if (access(db_path, F_OK) != 0) return err("no results database '%s'", db_path), EXIT_FAILED;
    struct store *db;
    if (store_open(&db, db_path) < 0) return EXIT_FAILED;
    struct study_layout layout;
    study_layout_mini(&layout, db_path, out_dir);
    int rc = study_report(db, &layout);
    store_close(db);
    if (rc < 0) return EXIT_FAILED;
    printf("wrote %s/REPORT.md\n", out_dir);
    return 0;
}
