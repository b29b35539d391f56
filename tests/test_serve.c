// promoe serve against a synthetic database (sweep study-mini: dense and ProMoE runs over seeds,
// one ProMoE run still going with a long loss curve, routing and class routing, evaluations, a
// sample grid in its run folder): every JSON endpoint's figures, 4xx for malformed requests, path
// traversal and writes, a database that stays byte-identical, a writer that is never refused while
// many requests run, the command's options and exit statuses, and the page rendered by headless
// Chromium (a run row, a curve's points, a class-by-expert heat map, a table cell linking to its runs).
#include "check.h"
#include "scratch.h"
#include "core/error.h"
#include "io/png.h"
#include "report/stats.h"
#include "serve/serve.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/promoe_test_serve_XXXXXX";
static int port;

enum { LONG_CURVE = 9000, CLIENT_THREADS = 8, CLIENT_REQUESTS = 20, WRITER_COMMITS = 50, RESPONSE_MAX = 1 << 20 };

static const char *path_in(const char *name) { return scratch_path(dir, name); }

// Dense d0, d1 and ProMoE p0, p1 done (FD at cfg 1.5: 30, 31 and 25, 27); p2 ProMoE running, with
// LONG_CURVE loss points, routing of layer 1 over three experts and class routing of two classes.
static const char DATA_SQL[] =
    "INSERT INTO sweeps VALUES ('study-mini','','x',0);"
    "INSERT INTO runs (run_id, config_sha256, config_yaml, label, seed, status, step_done, created_ms) VALUES"
    " ('d0','h0','train.seed: 0\n','dense',0,'done',20,1), ('d1','h1','','dense',1,'done',20,2),"
    " ('p0','h2','','promoe',0,'done',20,3), ('p1','h3','','promoe',1,'done',20,4),"
    " ('p2','h4','','promoe',2,'running',9000,5);"
    "INSERT INTO sweep_runs VALUES ('study-mini',0,'d0'), ('study-mini',1,'d1'), ('study-mini',2,'p0'),"
    " ('study-mini',3,'p1'), ('study-mini',4,'p2');"
    "INSERT INTO params SELECT run_id, 'train.seed', CAST(seed AS TEXT) FROM runs;"
    "INSERT INTO params SELECT run_id, 'train.steps', '10000' FROM runs;"
    "INSERT INTO params SELECT run_id, 'model.moe.experts', '\"\"' FROM runs WHERE label = 'dense';"
    "INSERT INTO params SELECT run_id, 'model.moe.experts', '\"E14A1S1U1\"' FROM runs WHERE label = 'promoe';"
    "INSERT INTO params SELECT run_id, 'model.moe.router', 'prototype' FROM runs WHERE label = 'promoe';"
    "INSERT INTO params SELECT run_id, 'model.moe.activation', 'identity' FROM runs WHERE label = 'promoe';"
    "INSERT INTO params SELECT run_id, 'loss.balance.weight', '0' FROM runs WHERE label = 'promoe';"
    "INSERT INTO evals (run_id, step, cfg_scale, sampler, sampler_steps, n_samples, reference, metric, value,"
    " sample_seed, wall_s, created_ms) VALUES"
    " ('d0',20,1.5,'euler',25,1000,'fmnist-train','fd',30,0,60,0), ('d1',20,1.5,'euler',25,1000,'fmnist-train','fd',31,1,60,0),"
    " ('p0',20,1.5,'euler',25,1000,'fmnist-train','fd',25,0,60,0), ('p1',20,1.5,'euler',25,1000,'fmnist-train','fd',27,1,60,0);"
    "INSERT INTO metrics VALUES ('d0','loss',10,0.5,0), ('d0','loss',20,0.4,0), ('p0','loss',10,0.45,0),"
    " ('p0','loss',20,0.35,0), ('d0','val_loss',20,0.3,0);"
    "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 9000)"
    " INSERT INTO metrics SELECT 'p2', 'loss', i, 1.0 / i, 0 FROM s;"
    "INSERT INTO routing (run_id, step, layer, expert, tokens_cond, tokens_uncond) VALUES"
    " ('p2',10,1,0,50,0), ('p2',10,1,1,25,0), ('p2',10,1,2,25,0), ('p2',20,1,0,10,0), ('p2',20,1,1,30,0), ('p2',20,1,2,60,0);"
    "INSERT INTO class_routing VALUES ('p2',10,1,0,0,1), ('p2',20,1,0,0,7), ('p2',20,1,0,1,1), ('p2',20,1,0,2,0),"
    " ('p2',20,1,1,0,2), ('p2',20,1,1,1,3), ('p2',20,1,1,2,5);"
    "INSERT INTO diversity VALUES ('p2',20,-1,8,'out',0.25);";

static int make_database(void)
{
    char sql[sizeof DATA_SQL + 256];
    // The run folders live under the test's folder (ckpt.dir), with a sample grid for d0 only.
    snprintf(sql, sizeof sql, "%sINSERT INTO params SELECT run_id, 'ckpt.dir', '\"%s/ckpt\"' FROM runs;", DATA_SQL, dir);
    uint8_t pixels[4 * 4] = {0, 255};
    char folder[512];
    snprintf(folder, sizeof folder, "mkdir -p %s/ckpt/d0", dir);
    if (system(folder) != 0 || png_write(path_in("ckpt/d0/samples.png"), 4, 4, 1, pixels) < 0) return -1;
    return scratch_database(path_in("study.db"), sql);
}

// ---- a plain HTTP client ----

struct response {
    int status;
    char head[4096];
    char *body;      // points into the buffer, after the blank line
    cJSON *json;     // parsed body when it is JSON, else NULL
};

static char *buffer_for(struct response *r)
{
    static _Thread_local char buffer[RESPONSE_MAX];
    (void)r;
    return buffer;
}

// Sends raw request text to the server and reads the whole answer (the server closes).
static int exchange(const char *request, struct response *r)
{
    memset(r, 0, sizeof *r);
    char *buffer = buffer_for(r);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) return close(fd), -1;
    size_t len = strlen(request);
    if (send(fd, request, len, 0) != (ssize_t)len) return close(fd), -1;
    size_t used = 0;
    ssize_t n;
    while (used < RESPONSE_MAX - 1 && (n = recv(fd, buffer + used, RESPONSE_MAX - 1 - used, 0)) > 0) used += (size_t)n;
    close(fd);
    buffer[used] = '\0';
    char *blank = strstr(buffer, "\r\n\r\n");
    if (sscanf(buffer, "HTTP/1.%*d %d", &r->status) != 1 || !blank) return -1;
    snprintf(r->head, sizeof r->head, "%.*s", (int)(blank - buffer), buffer);
    r->body = blank + 4;
    r->json = strstr(r->head, "application/json") ? cJSON_Parse(r->body) : NULL;
    return 0;
}

static int get(const char *path, struct response *r)
{
    char request[8192];
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    return exchange(request, r);
}

static cJSON *item(cJSON *object, const char *name) { return cJSON_GetObjectItem(object, name); }
static double number(cJSON *object, const char *name) { return cJSON_GetNumberValue(item(object, name)); }
static const char *text(cJSON *object, const char *name)
{
    const char *s = cJSON_GetStringValue(item(object, name));
    return s ? s : "";
}

// The element of an array of objects whose `key` is `value`.
static cJSON *find(cJSON *array, const char *key, const char *value)
{
    cJSON *entry;
    cJSON_ArrayForEach(entry, array) if (!strcmp(text(entry, key), value)) return entry;
    return NULL;
}

// The 200 JSON answer to path (NULL, with a failed check, otherwise); the caller deletes it.
static cJSON *get_json(const char *path)
{
    struct response r;
    int rc = get(path, &r);
    CHECK(rc == 0 && r.status == 200 && r.json, "GET %s: status %d, body %.300s", path, r.status, r.body ? r.body : "");
    return r.json;
}

static void expect_status(const char *request, int expected, const char *what)
{
    struct response r;
    int rc = exchange(request, &r);
    CHECK(rc == 0 && r.status == expected, "%s: status %d (want %d), body %.200s", what, r.status, expected,
          r.body ? r.body : "");
    if (expected >= 400 && expected != 431 && rc == 0)
        CHECK(r.json && text(r.json, "error")[0], "%s: a JSON error message, got %.200s", what, r.body ? r.body : "");
    cJSON_Delete(r.json);
}

static void expect_get_status(const char *path, int expected, const char *what)
{
    char request[8192];
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    expect_status(request, expected, what);
}

// ---- the endpoints ----

static void test_overview_and_runs(void)
{
    cJSON *o = get_json("/api/overview");
    cJSON *sweep = find(item(o, "sweeps"), "sweep", "study-mini");
    CHECK(sweep && number(sweep, "runs") == 5 && number(sweep, "done") == 4 && number(sweep, "running") == 1,
          "sweep progress of study-mini");
    cJSON_Delete(o);
    cJSON *runs = get_json("/api/runs");
    cJSON *list = item(runs, "runs"), *d0 = find(list, "run_id", "d0"), *p2 = find(list, "run_id", "p2");
    CHECK(cJSON_GetArraySize(list) == 5, "5 runs, got %d", cJSON_GetArraySize(list));
    CHECK(d0 && number(d0, "loss") == 0.4 && number(d0, "val_loss") == 0.3 && number(d0, "fd") == 30,
          "d0's last loss 0.4, val_loss 0.3, FD 30");
    CHECK(d0 && !strcmp(text(d0, "sweeps"), "study-mini") && number(d0, "steps") == 10000, "d0's sweep and steps");
    CHECK(p2 && !strcmp(text(p2, "status"), "running") && number(p2, "step_done") == 9000, "p2 running at 9000");
    cJSON *params = p2 ? item(p2, "params") : NULL;
    CHECK(params && !strcmp(text(params, "model.moe.router"), "prototype") && !strcmp(text(params, "train.seed"), "2"),
          "p2's varying params: router and seed");
    CHECK(d0 && !item(item(d0, "params"), "train.steps"), "train.steps is the same for every run: not shown");
    cJSON_Delete(runs);
    static const struct {
        const char *query;
        int n;
    } filters[] = {
        {"/api/runs?status=running", 1},
        {"/api/runs?param=model.moe.router=prototype", 3},
        {"/api/runs?param=model.moe.experts=E14A1S1U1", 3},           // a string matches without its quotes
        {"/api/runs?param=model.moe.experts=%22E14A1S1U1%22", 3},     // and as stored
        {"/api/runs?param=model.moe.router", 3},                      // a key alone: runs that have it
        {"/api/runs?sweep=study-mini&status=done&param=train.seed=1", 2},
        {"/api/runs?sweep=other", 0},
    };
    for (size_t i = 0; i < sizeof filters / sizeof *filters; i++) {
        cJSON *j = get_json(filters[i].query);
        CHECK(cJSON_GetArraySize(item(j, "runs")) == filters[i].n, "%s: %d runs (want %d)", filters[i].query,
              cJSON_GetArraySize(item(j, "runs")), filters[i].n);
        cJSON_Delete(j);
    }
}

static void test_run_and_files(void)
{
    cJSON *d0 = get_json("/api/runs/d0");
    CHECK(!strcmp(text(d0, "config_yaml"), "train.seed: 0\n") && cJSON_IsTrue(item(d0, "has_samples")),
          "d0's config and sample grid");
    cJSON *evals = item(d0, "evals");
    CHECK(cJSON_GetArraySize(evals) == 1 && number(cJSON_GetArrayItem(evals, 0), "value") == 30, "d0's evaluation");
    cJSON_Delete(d0);
    cJSON *p0 = get_json("/api/runs/p0");
    CHECK(cJSON_IsFalse(item(p0, "has_samples")), "p0 has no sample grid");
    cJSON_Delete(p0);
    struct response r;
    CHECK(get("/api/runs/d0/samples.png", &r) == 0 && r.status == 200 && !memcmp(r.body, "\x89PNG", 4) &&
          strstr(r.head, "image/png"), "d0's sample grid as PNG: %d", r.status);
    expect_get_status("/api/runs/p0/samples.png", 404, "a run without a sample grid");
    CHECK(get("/", &r) == 0 && r.status == 200 && strstr(r.head, "text/html") && strstr(r.body, "<title>promoe dashboard"),
          "the page at /: %d", r.status);
    CHECK(get("/app.js", &r) == 0 && r.status == 200 && strstr(r.head, "text/javascript"), "app.js: %d", r.status);
    CHECK(strstr(r.head, "Content-Security-Policy: default-src 'self'"), "the page may fetch only from the server");
}

static void test_curves(void)
{
    cJSON *j = get_json("/api/curves?runs=d0,p0&metric=loss");
    cJSON *series = item(j, "series");
    char *d0 = cJSON_PrintUnformatted(item(find(series, "run_id", "d0"), "points"));
    CHECK(d0 && !strcmp(d0, "[[10,0.5],[20,0.4]]"), "d0's loss points: %s", d0 ? d0 : "none");
    free(d0);
    cJSON_Delete(j);
    // 9000 points thinned to every 3rd (stride ceil(9000 / 4000)) and the last: 3001.
    j = get_json("/api/curves?runs=p2&metric=loss");
    cJSON *points = item(cJSON_GetArrayItem(item(j, "series"), 0), "points");
    int n = cJSON_GetArraySize(points);
    CHECK(n == 3001, "a long curve thinned to 3001 points, got %d", n);
    cJSON *second = cJSON_GetArrayItem(points, 1), *last = cJSON_GetArrayItem(points, n - 1);
    CHECK(cJSON_GetNumberValue(cJSON_GetArrayItem(second, 0)) == 4 && cJSON_GetNumberValue(cJSON_GetArrayItem(last, 0)) == 9000,
          "every third step from 1, and the last one");
    cJSON_Delete(j);
    j = get_json("/api/metrics?runs=d0,p2");
    char *names = cJSON_PrintUnformatted(item(j, "metrics"));
    CHECK(names && !strcmp(names, "[\"loss\",\"val_loss\"]"), "metric names: %s", names ? names : "none");
    free(names);
    cJSON_Delete(j);
}

static void test_routing(void)
{
    cJSON *j = get_json("/api/runs/p2/routing");
    cJSON *layer = cJSON_GetArrayItem(item(j, "share"), 0);
    char *steps = cJSON_PrintUnformatted(item(layer, "steps")), *share = cJSON_PrintUnformatted(item(layer, "share"));
    CHECK(number(layer, "layer") == 1 && steps && !strcmp(steps, "[10,20]"), "routing steps: %s", steps ? steps : "none");
    CHECK(share && !strcmp(share, "[[0.5,0.25,0.25],[0.1,0.3,0.6]]"), "expert shares: %s", share ? share : "none");
    free(steps), free(share);
    cJSON *classes = cJSON_GetArrayItem(item(j, "class_routing"), 0);
    char *tokens = cJSON_PrintUnformatted(item(classes, "tokens"));
    CHECK(number(classes, "step") == 20 && tokens && !strcmp(tokens, "[[7,1,0],[2,3,5]]"),
          "class-by-expert tokens of the last step: %s", tokens ? tokens : "none");
    free(tokens);
    cJSON *diversity = cJSON_GetArrayItem(item(item(j, "analysis"), "diversity"), 0);
    CHECK(diversity && number(diversity, "value") == 0.25 && number(diversity, "k") == 8, "diversity row");
    cJSON_Delete(j);
}

static void test_tables_and_claims(void)
{
    cJSON *j = get_json("/api/tables");
    CHECK(find(item(j, "tables"), "name", "table1"), "table1 in the list of specs");
    cJSON_Delete(j);
    j = get_json("/api/tables/table1");
    cJSON *dense = find(item(j, "rows"), "label", "Dense-DiT-B-Flow"), *columns = item(j, "columns");
    int fid15 = -1;
    for (int c = 0; c < cJSON_GetArraySize(columns); c++)
        if (!strcmp(text(cJSON_GetArrayItem(columns, c), "metric"), "fid") && number(cJSON_GetArrayItem(columns, c), "cfg") == 1.5)
            fid15 = c;
    cJSON *cell = dense && fid15 >= 0 ? cJSON_GetArrayItem(item(dense, "cells"), fid15) : NULL;
    double half = stats_t975(1) * sqrt(0.5) / sqrt(2);
    CHECK(cell && number(cell, "n") == 2 && number(cell, "mean") == 30.5 && fabs(number(cell, "half") - half) < 1e-9,
          "dense FD at cfg 1.5: 30.5 +- %.4f over 2 seeds", half);
    char *runs = cell ? cJSON_PrintUnformatted(item(cell, "runs")) : NULL;
    CHECK(runs && (!strcmp(runs, "[\"d0\",\"d1\"]") || !strcmp(runs, "[\"d1\",\"d0\"]")), "the cell's runs: %s", runs ? runs : "none");
    free(runs);
    cJSON_Delete(j);
    j = get_json("/api/claims");
    cJSON *claim = find(item(j, "claims"), "id", "t1-promoe-vs-dense-fd");
    // Paired by seed: improvements 30 - 25 = 5 and 31 - 27 = 4; n = 2, so the interval holds 0.
    CHECK(claim && number(claim, "n") == 2 && number(claim, "diff") == 4.5 && !strcmp(text(claim, "verdict"), "inconclusive"),
          "claim ProMoE vs dense on FD");
    CHECK(claim && cJSON_GetArraySize(item(claim, "better_runs")) == 2 && cJSON_GetArraySize(item(claim, "than_runs")) == 2,
          "the claim's runs on both sides");
    cJSON_Delete(j);
}

// ---- malformed and forbidden requests ----

static void test_refusals(void)
{
    char long_path[3000] = "/api/runs/";
    memset(long_path + 10, 'a', 2000);
    long_path[2010] = '\0';
    expect_get_status("/api/runs?status=bogus", 400, "unknown status");
    expect_get_status("/api/runs?param=bad;key=1", 400, "param key with odd characters");
    expect_get_status("/api/curves?runs=d0", 400, "curves without a metric");
    expect_get_status("/api/curves?runs=d0,a%3Bb&metric=loss", 400, "a run id with odd characters");
    expect_get_status("/api/curves?metric=loss", 400, "curves without runs");
    expect_get_status("/api/runs/zz", 404, "no such run");
    expect_get_status("/api/runs/d0/other", 404, "no such run endpoint");
    expect_get_status("/api/nothing", 404, "no such endpoint");
    expect_get_status("/api/tables/nothing", 404, "no such table");
    expect_get_status("/api/tables/..%2F..%2Fetc%2Fpasswd", 400, "a table name with slashes");
    expect_get_status("/../../etc/passwd", 403, "'..' in the path");
    expect_get_status("/%2e%2e/%2e%2e/etc/passwd", 403, "encoded '..'");
    expect_get_status("/.hidden", 403, "a hidden file");
    expect_get_status("/api/runs/..%2F..%2Fetc/samples.png", 400, "a run id with '..'");
    expect_get_status(long_path, 414, "a 2000-character path");
    expect_status("POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", 405, "POST");
    expect_status("DELETE /api/runs/d0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 405, "DELETE");
    expect_status("GET /api/runs HTTP/1.1\r\nHost: attacker.example:8080\r\nConnection: close\r\n\r\n", 403,
                  "a foreign Host on a loopback server (DNS rebinding)");
    expect_status("GET /api/runs HTTP/1.1\r\nHost: localhost:8080\r\nConnection: close\r\n\r\n", 200, "Host localhost");
    struct response r;
    CHECK(exchange("GARBAGE\r\n\r\n", &r) != 0 || (r.status >= 400 && r.status < 500), "a malformed request line: %d", r.status);
}

// A web root with a link that points out of it: the resolved path is checked, not just the name.
static void test_link_out_of_web_root(struct serve_options options)
{
    char command[1024];
    snprintf(command, sizeof command, "mkdir -p %s/web && echo page > %s/web/index.html && ln -sf /etc/hostname %s/web/leak.txt",
             dir, dir, dir);
    CHECK(system(command) == 0, "web root with a link");
    options.web_root = path_in("web");
    struct serve *server;
    int saved = port;
    CHECK(serve_start(&options, &server) == 0, "second server: %s", err_message());
    if (!server) return;
    port = serve_port(server);
    expect_get_status("/leak.txt", 403, "a link out of the web root");
    expect_get_status("/index.html", 200, "a file inside it");
    serve_stop(server);
    port = saved;
}

// ---- read-only and concurrent ----

static void *client(void *arg)
{
    int *failures = arg;
    for (int i = 0; i < CLIENT_REQUESTS; i++) {
        struct response r;
        const char *path = i % 2 ? "/api/runs" : "/api/curves?runs=p2,d0&metric=loss";
        if (get(path, &r) != 0 || r.status != 200) (*failures)++;
        cJSON_Delete(r.json);
    }
    return NULL;
}

// A writer with no busy timeout commits while many requests read: WAL readers never block it.
static void test_writer_beside_readers(void)
{
    sqlite3 *db;
    CHECK(sqlite3_open(path_in("study.db"), &db) == SQLITE_OK, "writer connection");
    sqlite3_busy_timeout(db, 0);
    pthread_t threads[CLIENT_THREADS];
    int failures[CLIENT_THREADS] = {0}, refused = 0;
    for (int t = 0; t < CLIENT_THREADS; t++) pthread_create(&threads[t], NULL, client, &failures[t]);
    for (int i = 0; i < WRITER_COMMITS; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; INSERT INTO metrics VALUES ('p2', 'live', %d, %d, 0); "
                 "UPDATE runs SET step_done = step_done + 1 WHERE run_id = 'p2'; COMMIT;", i, i);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) refused++, sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    int failed = 0;
    for (int t = 0; t < CLIENT_THREADS; t++) pthread_join(threads[t], NULL), failed += failures[t];
    sqlite3_close(db);
    CHECK(refused == 0, "%d of %d commits refused beside the readers", refused, WRITER_COMMITS);
    CHECK(failed == 0, "%d of %d concurrent requests failed", failed, CLIENT_THREADS * CLIENT_REQUESTS);
    // The next request sees every committed row: what a polling page shows without a reload.
    cJSON *j = get_json("/api/curves?runs=p2&metric=live");
    CHECK(cJSON_GetArraySize(item(cJSON_GetArrayItem(item(j, "series"), 0), "points")) == WRITER_COMMITS,
          "the live metric's %d points", WRITER_COMMITS);
    cJSON_Delete(j);
    j = get_json("/api/runs?status=running");
    CHECK(number(cJSON_GetArrayItem(item(j, "runs"), 0), "step_done") == 9000 + WRITER_COMMITS, "progress updated");
    cJSON_Delete(j);
}

static void test_missing_database_not_created(struct serve_options options)
{
    struct serve *server = NULL;
    options.db_path = path_in("missing.db");
    CHECK(serve_start(&options, &server) < 0 && strstr(err_message(), "missing.db"), "a missing database: %s",
          err_message());
    CHECK(access(path_in("missing.db"), F_OK) != 0, "the missing database was not created");
    options.db_path = path_in("web/index.html");
    CHECK(serve_start(&options, &server) < 0, "a file that is not a database is refused");
    options.db_path = path_in("study.db");
    options.port = 70000;
    CHECK(serve_start(&options, &server) < 0 && strstr(err_message(), "70000"), "port out of range: %s", err_message());
}

// ---- the command ----

// Exit status of a shell command, its output in dir/cli.log.
static int shell(const char *fmt, const char *arg)
{
    char command[2048], line[1600];
    snprintf(line, sizeof line, fmt, arg);
    snprintf(command, sizeof command, "(%s) > %s/cli.log 2>&1", line, dir);
    int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_command(void)
{
    CHECK(shell("build/promoe serve --db %s/missing.db --port 0", dir) == 1 &&
          strstr(scratch_slurp(path_in("cli.log")), "missing.db"), "a missing database: %s", scratch_slurp(path_in("cli.log")));
    CHECK(shell("build/promoe serve --db %s/study.db --port 99999", dir) == 1 &&
          strstr(scratch_slurp(path_in("cli.log")), "out of range"), "port 99999: %s", scratch_slurp(path_in("cli.log")));
    CHECK(shell("build/promoe serve --db %s/study.db --bogus 1", dir) == 129, "an unknown option is a usage error");
    CHECK(shell("build/promoe serve --db %s/study.db --port", dir) == 129, "an option without its value");
    // Started for real, it prints its address and stops cleanly on SIGINT.
    CHECK(shell("timeout --preserve-status -s INT 2 build/promoe serve --db %s/study.db --port 0", dir) == 0 &&
          strstr(scratch_slurp(path_in("cli.log")), "promoe serve: http://127.0.0.1:"),
          "serve until SIGINT: %s", scratch_slurp(path_in("cli.log")));
}

// ---- the page in a browser ----

static int count(const char *haystack, const char *needle)
{
    int n = 0;
    for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void test_browser(void)
{
    char command[2048];
    CHECK(system("command -v chromium > /dev/null") == 0, "chromium is installed (scripts/install-deps.sh)");
    // Virtual time runs the page's scripts and fetches to the end before the DOM is written.
    snprintf(command, sizeof command,
             "timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=%s/chromium "
             "--virtual-time-budget=8000 --dump-dom 'http://127.0.0.1:%d/?poll=60' > %s/dom.html 2> %s/chromium.log",
             dir, port, dir, dir);
    CHECK(system(command) == 0, "chromium: %s", scratch_slurp(path_in("chromium.log")));
    const char *dom = scratch_slurp(path_in("dom.html"));
    CHECK(strstr(dom, "data-ready=\"true\""), "the page finished loading:\n%.2000s", dom);
    CHECK(strstr(dom, "<tr class=\"run-row status-done\" data-run-id=\"d0\">"), "a run row for d0");
    CHECK(count(dom, "class=\"run-row ") == 5, "5 run rows, got %d", count(dom, "class=\"run-row "));
    // The running run is overlaid by default: raw and smoothed curves of its 3001 (thinned) points.
    CHECK(count(dom, "data-run-id=\"p2\" data-points=\"3001\"") == 2, "p2's loss curve: %d polylines",
          count(dom, "data-run-id=\"p2\" data-points=\"3001\""));
    CHECK(strstr(dom, "<polyline points=\"64.0,"), "a polyline with its points from the left axis");
    // The running run is opened: its class-by-expert heat map of 2 classes by 3 experts.
    CHECK(strstr(dom, "class=\"heatmap\" data-layer=\"1\""), "a heat map of layer 1");
    CHECK(count(dom, "class=\"cell\"") == 6, "6 heat map cells, got %d", count(dom, "class=\"cell\""));
    CHECK(strstr(dom, "class 1, expert 2: 5 tokens (50.0%)"), "a heat map cell's counts");
    CHECK(strstr(dom, "30.50 ± 6.35 (n=2)"), "table 1's dense FD cell");
    CHECK(strstr(dom, "href=\"#runs=d0,d1\"") || strstr(dom, "href=\"#runs=d1,d0\""), "the cell links to its runs");
}

// The database file's bytes, to show that serving never wrote to it.
static char *file_bytes(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    char *bytes = NULL;
    *size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (*size = ftell(f)) >= 0 && (bytes = malloc((size_t)*size + 1))) {
        rewind(f);
        if (fread(bytes, 1, (size_t)*size, f) != (size_t)*size) *size = -1;
    }
    if (f) fclose(f);
    return bytes;
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    CHECK(make_database() == 0, "synthetic database");
    struct serve_options options = {.db_path = path_in("study.db"), .host = "127.0.0.1", .port = 0,
                                    .web_root = "web", .tables_dir = "analysis/tables",
                                    .claims_path = "analysis/claims.yaml"};
    options.db_path = strdup(options.db_path);
    struct serve *server;
    long size_before, size_after;
    char *before = file_bytes(options.db_path, &size_before);
    if (serve_start(&options, &server) < 0) {
        CHECK(0, "serve_start: %s", err_message());
        return test_summary("test_serve");
    }
    port = serve_port(server);
    CHECK(port > 0, "a free port");
    test_overview_and_runs();
    test_run_and_files();
    test_curves();
    test_routing();
    test_tables_and_claims();
    test_refusals();
    test_browser();
    char *after = file_bytes(options.db_path, &size_after);
    CHECK(before && after && size_before == size_after && !memcmp(before, after, (size_t)size_before),
          "the database is byte-identical after serving");
    free(before), free(after);
    test_writer_beside_readers();
    test_link_out_of_web_root(options);
    test_missing_database_not_created(options);
    test_command();
    serve_stop(server);
    free((char *)options.db_path);
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (check_failed == 0 && system(command) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return test_summary("test_serve");
}
