// promoe claims CLAIMS.yaml [--format md|csv] [--db PATH]
// Decides the paper's claims listed in a claims file from the runs in the database: for each, the
// paired difference over seeds, its 95% interval and a verdict (report/claims.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/error.h"
#include "report/claims.h"
#include "store/db.h"

static const char *const claims_usage = "promoe claims CLAIMS.yaml [--format md|csv] [--db PATH]";

struct claims_options {
    const char *path, *db_path;
    enum table_format format;
};

static int parse_options(int argc, char **argv, struct claims_options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--format") && has_value) {
            if (table_format_parse(argv[++i], &o->format) < 0) return -1;
            if (o->format == FORMAT_LATEX) return err("--format: claims are printed as md or csv"), -1;
        } else if (!strcmp(a, "--db") && has_value) {
            o->db_path = argv[++i];
        } else if (a[0] != '-' && !o->path) {
            o->path = a;
        } else {
            return -1;
        }
    }
    return o->path ? 0 : -1;
}

int cmd_claims(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--help")) return printf("usage: %s\n", claims_usage), 0;
    struct claims_options o = {.db_path = "results/promoe.db", .format = FORMAT_MARKDOWN};
    if (parse_options(argc, argv, &o) < 0) return cli_usage(claims_usage);
    struct claims *c = malloc(sizeof *c);
    struct claim_result *results = malloc(sizeof *results * CLAIMS_MAX);
    struct store *db = NULL;
    int rc = c && results ? 0 : err("out of memory");
    if (!rc) rc = claims_load(c, o.path);
    if (!rc && access(o.db_path, F_OK) != 0) rc = err("no results database '%s'", o.db_path);
    if (!rc) rc = store_open(&db, o.db_path);
    if (!rc) rc = claims_decide(c, store_handle(db), results);
    if (!rc) claims_write(results, c->n, o.format, stdout);
    if (db) store_close(db);
    free(c);
    free(results);
    return rc < 0 ? EXIT_FAILED : 0;
}
