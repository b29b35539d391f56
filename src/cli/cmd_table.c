// promoe table SPEC [--format md|latex|csv] [--db PATH] [--scale mini|paper]
// Prints one of the paper's tables with our figures beside the paper's, at the scale whose sweep
// the database holds (paper if its sweep has runs, else mini) unless --scale says otherwise.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "core/error.h"
#include "report/table.h"
#include "store/db.h"

static const char *const table_usage =
    "promoe table SPEC.yaml [--format md|latex|csv] [--db PATH] [--scale mini|paper]";

struct table_options {
    const char *spec_path, *db_path, *scale;
    enum table_format format;
};

// 0 parsed, -1 after --help, else the exit status.
static int parse_options(int argc, char **argv, struct table_options *o)
{
    const char *format = NULL;
    const struct cli_option options[] = {
        CLI_OPT_STRING("--format", &format),
        CLI_OPT_STRING("--db", &o->db_path),
        CLI_OPT_STRING("--scale", &o->scale),
    };
    const struct cli_command_line line = {table_usage, CLI_TABLE(options), &o->spec_path, 1, 1, NULL};
    int status = cli_parse(argc, argv, &line);
    if (!status && format && table_format_parse(format, &o->format) < 0)
        return err("option '--format': '%s' is not md, latex or csv", format), EXIT_FAILED;
    return status;
}

static int print_table(const struct table_spec *spec, struct store *db, const struct table_options *o)
{
    enum table_scale scale = table_detect_scale(spec, db);
    if (o->scale && table_scale_parse(o->scale, &scale) < 0) return EXIT_FAILED;
    struct table_result *result = malloc(sizeof *result);
    if (!result) return err("out of memory"), EXIT_FAILED;
    int rc = table_build(spec, db, scale, result);
    if (rc == 0) table_write(result, o->format, stdout);
    free(result);
    return rc < 0 ? EXIT_FAILED : 0;
}

int cmd_table(int argc, char **argv)
{
    struct table_options o = {.db_path = CLI_DEFAULT_DB, .format = FORMAT_MARKDOWN};
    int parsed = parse_options(argc, argv, &o);
    if (parsed) return parsed < 0 ? 0 : parsed;
    struct table_spec *spec = malloc(sizeof *spec);
    if (!spec) return err("out of memory"), EXIT_FAILED;
    int status = EXIT_FAILED;
    struct store *db = NULL;
    if (table_spec_load(spec, o.spec_path) < 0) goto done;
    if (access(o.db_path, F_OK) != 0) {
        err("no results database '%s'", o.db_path);
        goto done;
    }
    if (store_open(&db, o.db_path) < 0) goto done;
    status = print_table(spec, db, &o);
done:
    if (db) store_close(db);
    free(spec);
    return status;
}
