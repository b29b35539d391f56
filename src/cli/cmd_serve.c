// promoe serve [--db PATH] [--port 8080] [--host 127.0.0.1] [--web DIR] [--tables DIR] [--claims FILE]
// The results dashboard: a local web page over the results database (runs, curves, routing, sample
// grids, the paper tables and claims), updating while sweeps run. The database is opened read-only;
// the server runs at a lower CPU priority than the trainings beside it. Stops on Ctrl-C.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/error.h"
#include "serve/serve.h"

static const char *const serve_usage =
    "promoe serve [--db PATH] [--port 8080] [--host 127.0.0.1] [--web DIR] [--tables DIR] [--claims FILE]";

enum { SERVE_DEFAULT_PORT = 8080, SERVE_NICE = 10 };

static int parse_options(int argc, char **argv, struct serve_options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        long long port;
        if (!value) return -1;
        if (!strcmp(a, "--db")) o->db_path = value;
        else if (!strcmp(a, "--host")) o->host = value;
        else if (!strcmp(a, "--web")) o->web_root = value;
        else if (!strcmp(a, "--tables")) o->tables_dir = value;
        else if (!strcmp(a, "--claims")) o->claims_path = value;
        else if (!strcmp(a, "--port")) {
            if (cli_int("--port", value, &port) < 0) return -2;
            if (port < 0 || port > 65535) return err("option '--port': %lld is out of range (0 to 65535)", port), -2;
            o->port = (int)port;
        } else return -1;
        i++;
    }
    return 0;
}

// Waits for SIGINT or SIGTERM (blocked in every thread, so they arrive here).
static void wait_for_stop(const sigset_t *stop)
{
    int signal_number;
    sigwait(stop, &signal_number);
}

int cmd_serve(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--help")) return printf("usage: %s\n", serve_usage), 0;
    struct serve_options o = {.db_path = "results/promoe.db", .host = "127.0.0.1", .port = SERVE_DEFAULT_PORT,
                              .web_root = "web", .tables_dir = "analysis/tables",
                              .claims_path = "analysis/claims.yaml"};
    int rc = parse_options(argc, argv, &o);
    if (rc == -2) return EXIT_FAILED;
    if (rc < 0) return cli_usage(serve_usage);
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
