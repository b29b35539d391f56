// Internals of src/serve/: a request as the handlers see it (decoded path and query arguments,
// with no HTTP library type in sight) and the reply they fill (a body or an open file).
// server.c owns the HTTP side; api.c, tables_json.c and files.c answer.
#ifndef PROMOE_SERVE_INTERNAL_H
#define PROMOE_SERVE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "serve/serve.h"

struct store;

enum {
    SERVE_PATH_MAX = 1024,     // longer request paths get 414
    SERVE_ARG_MAX = 1024,      // longer query arguments get 400
    SERVE_CURVE_RUNS_MAX = 64, // runs in one curves or metrics request
};

struct serve_request {
    const struct serve_options *options;
    const char *path;                                       // decoded, starts with '/'
    const char *(*arg)(void *ctx, const char *name);        // a query argument, NULL if absent
    void *arg_ctx;
};

struct serve_reply {
    unsigned status;
    const char *content_type;
    char *body;        // owned (malloc), or NULL when a file is sent
    size_t size;
    int fd;            // an open file to send (owned), or -1
    uint64_t file_size;
};

// A JSON body (json is consumed) or an error body {"error": message}.
void reply_json(struct serve_reply *reply, unsigned status, cJSON *json);
void reply_error(struct serve_reply *reply, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// The JSON endpoints under /api/ (api.c), and the files: the page's and a run's sample grid (files.c).
void api_answer(const struct serve_request *request, struct serve_reply *reply);
void files_answer_page(const struct serve_request *request, struct serve_reply *reply);
void files_answer_samples(const char *run_folder, struct serve_reply *reply);

// The table specs in the tables folder: [{name, title}] by name (tables_json.c).
int tables_list_json(const char *tables_dir, cJSON **out);
// One table filled from the database, every cell with the runs behind it; name is the spec file's
// name without .yaml. 0, or -1 with a message (no such spec: *missing = 1).
int table_json(const char *tables_dir, const char *name, struct store *db, cJSON **out, int *missing);
// The claims decided from the database, with the runs of both sides.
int claims_json(const char *claims_path, struct store *db, cJSON **out);

// 1 when text is 1..max characters of [A-Za-z0-9_.-] (run ids, table names; not "." or "..").
int serve_plain_name(const char *text, size_t max);

#endif
