// The dashboard's JSON endpoints. Each request opens its own read-only connection (cheap in
// SQLite, and no state shared between the server's threads), checks its arguments (400 with the
// argument, the value and what is allowed), asks src/store/dashboard_queries.c, and closes.
//   /api/overview                         sweeps' progress, runs per status
//   /api/runs?sweep=S&status=X&param=K=V  runs with progress and key figures
//   /api/runs/ID                          one run: summary, config, evaluations, attempts
//   /api/runs/ID/routing                  expert shares over steps, class-by-expert counts, analyses
//   /api/runs/ID/samples.png              its sample grid
//   /api/metrics?runs=A,B                 metric names of those runs
//   /api/curves?runs=A,B&metric=M         their curves of one metric
//   /api/tables, /api/tables/NAME, /api/claims
#include "core/error.h"
#include "serve/serve_internal.h"
#include "store/dashboard_queries.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RUN_ID_MAX = 64, METRIC_NAME_MAX = 128, RUN_FOLDER_MAX = 4096 };

static const char *const statuses[] = {"queued", "running", "done", "failed", "nan", "interrupted"};

// An answer computed from an open connection: 0 with *status/*json set, or -1 with err().
typedef int (*db_answer)(const struct serve_request *request, struct store *db, const char *run_id,
                         unsigned *status, cJSON **json);

static void answer_with_db(const struct serve_request *request, const char *run_id, db_answer body,
                           struct serve_reply *reply)
{
    struct store *db;
    if (dash_open(request->options->db_path, &db) < 0) {
        reply_error(reply, 503, "%s", err_message());
        return;
    }
    unsigned status = 200;
    cJSON *json = NULL;
    int exists = run_id ? dash_run_exists(db, run_id) : 1;
    int rc = exists < 0 ? -1 : exists ? body(request, db, run_id, &status, &json) : 0;
    dash_close(db);
    if (rc < 0) reply_error(reply, 500, "%s", err_message());
    else if (!exists) reply_error(reply, 404, "no run '%s' in the database", run_id);
    else if (!json) reply_error(reply, status, "%s", err_message());
    else reply_json(reply, status, json);
}

static cJSON *wrap(const char *name, cJSON *value)
{
    cJSON *object = cJSON_CreateObject();
    if (object) cJSON_AddItemToObject(object, name, value);
    else cJSON_Delete(value);
    return object;
}

static int answer_overview(const struct serve_request *request, struct store *db, const char *run_id,
                           unsigned *status, cJSON **json)
{
    (void)run_id, (void)status;
    if (dash_overview(db, json) < 0) return -1;
    cJSON_AddStringToObject(*json, "db", request->options->db_path);
    return 0;
}

static int is_status(const char *text)
{
    for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++)
        if (!strcmp(text, statuses[i])) return 1;
    return 0;
}

// `param=key` or `param=key=value`: key into key (capacity SERVE_ARG_MAX + 1), value points into it.
static int split_param(const char *text, char *key, const char **value)
{
    snprintf(key, SERVE_ARG_MAX + 1, "%s", text);
    char *equals = strchr(key, '=');
    *value = NULL;
    if (equals) *equals = '\0', *value = equals + 1;
    return serve_plain_name(key, SERVE_ARG_MAX) ? 0 : -1;
}

static int answer_runs(const struct serve_request *request, struct store *db, const char *run_id,
                       unsigned *status, cJSON **json)
{
    (void)run_id;
    struct dash_run_filter filter = {request->arg(request->arg_ctx, "sweep"),
                                     request->arg(request->arg_ctx, "status"), NULL, NULL};
    const char *param = request->arg(request->arg_ctx, "param");
    char key[SERVE_ARG_MAX + 1];
    *status = 400;
    if (filter.sweep && !filter.sweep[0]) filter.sweep = NULL;
    if (filter.status && !filter.status[0]) filter.status = NULL;
    if (filter.status && !is_status(filter.status))
        return err("status '%.64s' is not one of queued, running, done, failed, nan, interrupted", filter.status), 0;
    if (param && param[0]) {
        if (split_param(param, key, &filter.param_value) < 0)
            return err("param '%.64s' is not KEY or KEY=VALUE with a config key such as model.moe.router", param), 0;
        filter.param_key = key;
    }
    cJSON *runs;
    if (dash_runs(db, &filter, &runs) < 0) return -1;
    *status = 200;
    *json = wrap("runs", runs);
    return 0;
}

static int answer_run(const struct serve_request *request, struct store *db, const char *run_id,
                      unsigned *status, cJSON **json)
{
    (void)request, (void)status;
    char folder[RUN_FOLDER_MAX];
    if (dash_run_detail(db, run_id, json) < 0) return -1;
    int found = dash_run_folder(db, run_id, folder, sizeof folder);
    if (found < 0) return cJSON_Delete(*json), *json = NULL, -1;
    char samples[RUN_FOLDER_MAX + 32];
    snprintf(samples, sizeof samples, "%s/samples.png", folder);
    FILE *f = found ? fopen(samples, "rb") : NULL;
    cJSON_AddBoolToObject(*json, "has_samples", f != NULL);
    if (f) fclose(f);
    return 0;
}

static int answer_routing(const struct serve_request *request, struct store *db, const char *run_id,
                          unsigned *status, cJSON **json)
{
    (void)request, (void)status;
    cJSON *share = NULL, *classes = NULL, *analysis = NULL;
    if (dash_routing_share(db, run_id, &share) < 0 || dash_class_routing(db, run_id, &classes) < 0 ||
        dash_analysis_rows(db, run_id, &analysis) < 0) {
        cJSON_Delete(share), cJSON_Delete(classes);
        return -1;
    }
    *json = cJSON_CreateObject();
    cJSON_AddStringToObject(*json, "run_id", run_id);
    cJSON_AddItemToObject(*json, "share", share);
    cJSON_AddItemToObject(*json, "class_routing", classes);
    cJSON_AddItemToObject(*json, "analysis", analysis);
    return 0;
}

// The `runs` argument: 1..SERVE_CURVE_RUNS_MAX run ids separated by commas, copied into ids.
static int parse_run_list(const char *text, char storage[][RUN_ID_MAX + 1], const char **ids, int *n)
{
    *n = 0;
    if (!text || !text[0]) return err("argument 'runs' is missing: give run ids separated by commas");
    const char *p = text;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (*n == SERVE_CURVE_RUNS_MAX) return err("argument 'runs' names more than %d runs", SERVE_CURVE_RUNS_MAX);
        if (len == 0 || len > RUN_ID_MAX) return err("argument 'runs': '%.*s' is not a run id", (int)(len % 80), p);
        snprintf(storage[*n], RUN_ID_MAX + 1, "%.*s", (int)len, p);
        if (!serve_plain_name(storage[*n], RUN_ID_MAX)) return err("argument 'runs': '%s' is not a run id", storage[*n]);
        ids[*n] = storage[*n];
        (*n)++;
        if (!p[len]) return 0;
        p += len + 1;
    }
}

static int answer_metrics(const struct serve_request *request, struct store *db, const char *run_id,
                          unsigned *status, cJSON **json)
{
    (void)run_id;
    char storage[SERVE_CURVE_RUNS_MAX][RUN_ID_MAX + 1];
    const char *ids[SERVE_CURVE_RUNS_MAX];
    int n;
    cJSON *names;
    if (parse_run_list(request->arg(request->arg_ctx, "runs"), storage, ids, &n) < 0) return *status = 400, 0;
    if (dash_metric_names(db, ids, n, &names) < 0) return -1;
    *json = wrap("metrics", names);
    return 0;
}

static int check_metric(const char *metric)
{
    if (!metric || !metric[0]) return err("argument 'metric' is missing (loss, val_loss, ...)");
    if (strlen(metric) > METRIC_NAME_MAX) return err("argument 'metric' is longer than %d characters", METRIC_NAME_MAX);
    for (const char *c = metric; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) return err("argument 'metric' holds a control character");
    return 0;
}

static int answer_curves(const struct serve_request *request, struct store *db, const char *run_id,
                         unsigned *status, cJSON **json)
{
    (void)run_id;
    char storage[SERVE_CURVE_RUNS_MAX][RUN_ID_MAX + 1];
    const char *ids[SERVE_CURVE_RUNS_MAX];
    const char *metric = request->arg(request->arg_ctx, "metric");
    int n;
    if (parse_run_list(request->arg(request->arg_ctx, "runs"), storage, ids, &n) < 0 || check_metric(metric) < 0)
        return *status = 400, 0;
    cJSON *series = cJSON_CreateArray();
    for (int i = 0; series && i < n; i++) {
        cJSON *points, *one = cJSON_CreateObject();
        if (dash_curve(db, ids[i], metric, DASH_CURVE_POINTS_MAX, &points) < 0) return cJSON_Delete(series), cJSON_Delete(one), -1;
        cJSON_AddStringToObject(one, "run_id", ids[i]);
        cJSON_AddItemToObject(one, "points", points);
        cJSON_AddItemToArray(series, one);
    }
    *json = wrap("series", series);
    cJSON_AddStringToObject(*json, "metric", metric);
    return 0;
}

static int answer_tables(const struct serve_request *request, struct store *db, const char *run_id,
                         unsigned *status, cJSON **json)
{
    (void)db, (void)run_id, (void)status;
    cJSON *tables;
    if (tables_list_json(request->options->tables_dir, &tables) < 0) return -1;
    *json = wrap("tables", tables);
    return 0;
}

static int answer_table(const struct serve_request *request, struct store *db, const char *run_id,
                        unsigned *status, cJSON **json)
{
    (void)run_id;
    const char *name = request->path + strlen("/api/tables/");
    int missing = 0;
    if (!serve_plain_name(name, 64)) return *status = 400, err("'%.64s' is not a table name such as table1", name), 0;
    if (table_json(request->options->tables_dir, name, db, json, &missing) < 0) {
        if (!missing) return -1;
        *status = 404;
    }
    return 0;
}

static int answer_claims(const struct serve_request *request, struct store *db, const char *run_id,
                         unsigned *status, cJSON **json)
{
    (void)run_id, (void)status;
    cJSON *claims;
    if (claims_json(request->options->claims_path, db, &claims) < 0) return -1;
    *json = wrap("claims", claims);
    return 0;
}

// /api/runs/ID[/what]: the id into run_id; what points at "" or the part after the id's slash.
static int split_run_path(const char *path, char *run_id, const char **what)
{
    const char *id = path + strlen("/api/runs/");
    size_t len = strcspn(id, "/");
    if (len == 0 || len > RUN_ID_MAX) return -1;
    snprintf(run_id, RUN_ID_MAX + 1, "%.*s", (int)len, id);
    *what = id[len] ? id + len + 1 : "";
    return serve_plain_name(run_id, RUN_ID_MAX) ? 0 : -1;
}

static void answer_samples(const struct serve_request *request, const char *run_id, struct serve_reply *reply)
{
    struct store *db;
    char folder[RUN_FOLDER_MAX];
    if (dash_open(request->options->db_path, &db) < 0) {
        reply_error(reply, 503, "%s", err_message());
        return;
    }
    int found = dash_run_folder(db, run_id, folder, sizeof folder);
    dash_close(db);
    if (found < 0) reply_error(reply, 500, "%s", err_message());
    else if (!found) reply_error(reply, 404, "no run '%s' with a ckpt.dir in the database", run_id);
    else files_answer_samples(folder, reply);
}

static void answer_run_path(const struct serve_request *request, struct serve_reply *reply)
{
    char run_id[RUN_ID_MAX + 1];
    const char *what;
    if (split_run_path(request->path, run_id, &what) < 0)
        reply_error(reply, 400, "'%.80s' does not name a run id (letters, digits, '_', '-', '.')", request->path);
    else if (!what[0]) answer_with_db(request, run_id, answer_run, reply);
    else if (!strcmp(what, "routing")) answer_with_db(request, run_id, answer_routing, reply);
    else if (!strcmp(what, "samples.png")) answer_samples(request, run_id, reply);
    else reply_error(reply, 404, "no endpoint '%.80s' (a run has routing and samples.png)", request->path);
}

void api_answer(const struct serve_request *request, struct serve_reply *reply)
{
    static const struct {
        const char *path;
        db_answer body;
    } exact[] = {
        {"/api/overview", answer_overview}, {"/api/runs", answer_runs},     {"/api/metrics", answer_metrics},
        {"/api/curves", answer_curves},     {"/api/tables", answer_tables}, {"/api/claims", answer_claims},
    };
    const char *path = request->path;
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (!strcmp(path, exact[i].path)) {
            answer_with_db(request, NULL, exact[i].body, reply);
            return;
        }
    if (!strncmp(path, "/api/runs/", strlen("/api/runs/")))
        answer_run_path(request, reply);
    else if (!strncmp(path, "/api/tables/", strlen("/api/tables/")))
        answer_with_db(request, NULL, answer_table, reply);
    else
        reply_error(reply, 404, "no endpoint '%.80s'", path);
}
