// promoe serve [--db PATH] [--port 8080] [--host 127.0.0.1] [--web DIR] [--tables DIR] [--claims FILE]
// The results dashboard: a local web page over the results database (runs, curves, routing, sample
// grids, the paper tables and claims), updating while sweeps run. The database is opened read-only;
// the server runs at a lower CPU priority than the trainings beside it. Stops on Ctrl-C.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "core/error.h"
#include "serve/serve.h"

static const char *const serve_usage =
    "promoe serve [--db PATH] [--port 8080] [--host 127.0.0.1] [--web DIR] [--tables DIR] [--claims FILE]";

enum { SERVE_DEFAULT_PORT = 8080, SERVE_NICE = 10, SERVE_PORT_MAX = 65535 };

// Waits for SIGINT or SIGTERM (blocked in every thread, so they arrive here).
static void wait_for_stop(const sigset_t *stop)
{
    int signal_number;
    sigwait(stop, &signal_number);
}

int cmd_serve(int argc, char **argv)
{
    struct serve_options o = {.db_path = CLI_DEFAULT_DB, .host = "127.0.0.1", .port = SERVE_DEFAULT_PORT,
                              .web_root = "web", .tables_dir = "analysis/tables",
                              .claims_path = "analysis/claims.yaml"};
    long long port = SERVE_DEFAULT_PORT;   // 0: a free port, printed
    const struct cli_option options[] = {
        CLI_OPT_STRING("--db", &o.db_path),
        CLI_OPT_STRING("--host", &o.host),
        CLI_OPT_STRING("--web", &o.web_root),
        CLI_OPT_STRING("--tables", &o.tables_dir),
        CLI_OPT_STRING("--claims", &o.claims_path),
        CLI_OPT_INT("--port", &port, 0, SERVE_PORT_MAX),
    };
    const struct cli_command_line line = {serve_usage, CLI_TABLE(options), NULL, 0, 0, NULL};
    int parsed = cli_parse(argc, argv, &line);
    if (parsed) return parsed < 0 ? 0 : parsed;
    o.port = (int)port;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);   // before the server's threads start, which inherit it
    (void)nice(SERVE_NICE);                    // a training beside it keeps the CPU; failure is harmless
    struct serve *server;
    if (serve_start(&o, &server) < 0) return EXIT_FAILED;
    int v6 = strchr(o.host, ':') != NULL;   // an IPv6 address goes in brackets in a URL
    printf("promoe serve: http://%s%s%s:%d/ (database %s, read-only; Ctrl-C stops)\n", v6 ? "[" : "", o.host,
           v6 ? "]" : "", serve_port(server), o.db_path);
    fflush(stdout);
    wait_for_stop(&stop);
    serve_stop(server);
    return 0;
}
