// promoe claims CLAIMS.yaml [--format md|csv] [--db PATH]
// Decides the paper's claims listed in a claims file from the runs in the database: for each, the
// paired difference over seeds, its 95% interval and a verdict (report/claims.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "core/error.h"
#include "report/claims.h"
#include "store/db.h"

static const char *const claims_usage = "promoe claims CLAIMS.yaml [--format md|csv] [--db PATH]";

struct claims_options {
    const char *path, *db_path;
    enum table_format format;
};

// 0 parsed, -1 after --help, else the exit status.
static int parse_options(int argc, char **argv, struct claims_options *o)
{
    const char *format = NULL;
    const struct cli_option options[] = {
        CLI_OPT_STRING("--format", &format),
        CLI_OPT_STRING("--db", &o->db_path),
    };
    const struct cli_command_line line = {claims_usage, CLI_TABLE(options), &o->path, 1, 1, NULL};
    int status = cli_parse(argc, argv, &line);
    if (status || !format) return status;
    if (table_format_parse(format, &o->format) < 0 || o->format == FORMAT_LATEX)
        return err("option '--format': '%s' is not md or csv (claims are printed as md or csv)", format), EXIT_FAILED;
    return 0;
}

int cmd_claims(int argc, char **argv)
{
    struct claims_options o = {.db_path = CLI_DEFAULT_DB, .format = FORMAT_MARKDOWN};
    int parsed = parse_options(argc, argv, &o);
    if (parsed) return parsed < 0 ? 0 : parsed;
    struct claims *c = malloc(sizeof *c);
    struct claim_result *results = malloc(sizeof *results * CLAIMS_MAX);
    struct store *db = NULL;
    int rc = c && results ? 0 : err("out of memory");
    if (!rc) rc = claims_load(c, o.path);
    if (!rc && access(o.db_path, F_OK) != 0) rc = err("no results database '%s'", o.db_path);
    if (!rc) rc = store_open(&db, o.db_path);
    if (!rc) rc = claims_decide(c, db, results);
    if (!rc) claims_write(results, c->n, o.format, stdout);
    if (db) store_close(db);
    free(c);
    free(results);
    return rc < 0 ? EXIT_FAILED : 0;
}
