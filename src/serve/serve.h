// The results dashboard's HTTP server (`promoe serve`): JSON over the results database, opened
// read-only per request, and the page's static files. Built on libmicrohttpd with a small thread
// pool, a connection limit and timeouts, so a browser left open (or many) cannot starve a training
// that writes the same database. GET and HEAD only; nothing it serves writes anywhere.
#ifndef PROMOE_SERVE_H
#define PROMOE_SERVE_H

struct serve_options {
    const char *db_path;      // results database (must exist)
    const char *host;         // numeric address or name to bind; 127.0.0.1 unless told otherwise
    int port;                 // 0 = any free port (serve_port says which)
    const char *web_root;     // the page's files (index.html, app.js, style.css)
    const char *tables_dir;   // table specs (analysis/tables)
    const char *claims_path;  // claims file (analysis/claims.yaml)
};

struct serve;

// Checks the database and folders, binds and starts answering in background threads.
int serve_start(const struct serve_options *options, struct serve **out);
// The port it listens on.
int serve_port(const struct serve *server);
// Stops answering, closes the socket and frees the server.
void serve_stop(struct serve *server);

#endif
