// The HTTP side of the dashboard, on libmicrohttpd: binding (127.0.0.1 unless told otherwise), a
// small thread pool with a connection limit and timeouts, GET/HEAD only, size limits on the path
// and arguments, and the reply (JSON body or file) with headers that keep the browser to the
// page's own files. What to answer is decided in api.c and files.c.
#include "serve/serve.h"

#include "core/error.h"
#include "serve/serve_internal.h"
#include "store/dashboard_queries.h"

#include <microhttpd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    SERVE_THREADS = 2,               // answering threads: a page polls a few requests at a time
    SERVE_CONNECTIONS_MAX = 64,      // more are refused at once rather than queued
    SERVE_TIMEOUT_S = 15,            // an idle or slow connection is closed after this
    SERVE_REQUEST_MEMORY = 32 * 1024 // headers and path of one request (more: 431/414 from the library)
};

struct serve {
    struct MHD_Daemon *daemon;
    struct serve_options options;
    int port;
    int loopback;   // bound to a loopback address: only loopback Host headers are answered
};

static const char *connection_arg(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

// Refuses an argument longer than SERVE_ARG_MAX (counted while iterating the request's arguments).
static enum MHD_Result check_arg(void *too_long, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    if (strlen(key) > SERVE_ARG_MAX || (value && strlen(value) > SERVE_ARG_MAX)) *(int *)too_long = 1;
    return MHD_YES;
}

// A page on another site cannot reach a server bound to loopback through a name that resolves
// there (DNS rebinding): its requests carry that name as Host, and are refused.
static int loopback_host(const char *host)
{
    static const char *const names[] = {"127.0.0.1", "localhost", "[::1]"};
    if (!host) return 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t n = strlen(names[i]);
        if (!strncmp(host, names[i], n) && (host[n] == '\0' || host[n] == ':')) return 1;
    }
    return 0;
}

static void answer(const struct serve *server, struct MHD_Connection *connection, const char *url,
                   const char *method, struct serve_reply *reply)
{
    int too_long = 0;
    const char *host = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Host");
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, check_arg, &too_long);
    if (server->loopback && !loopback_host(host))
        reply_error(reply, 403, "host '%.64s' is not this machine's loopback name (127.0.0.1, localhost, [::1])",
                    host ? host : "");
    else if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        reply_error(reply, 405, "method '%.32s' is not allowed: the dashboard only reads (GET, HEAD)", method);
    else if (strlen(url) > SERVE_PATH_MAX)
        reply_error(reply, 414, "request path longer than %d characters", SERVE_PATH_MAX);
    else if (url[0] != '/')
        reply_error(reply, 400, "request path '%.64s' does not start with '/'", url);
    else if (too_long)
        reply_error(reply, 400, "a query argument is longer than %d characters", SERVE_ARG_MAX);
    else {
        struct serve_request request = {&server->options, url, connection_arg, connection};
        if (!strncmp(url, "/api/", 5)) api_answer(&request, reply);
        else files_answer_page(&request, reply);
    }
}

static struct MHD_Response *make_response(struct serve_reply *reply)
{
    struct MHD_Response *response;
    if (reply->fd >= 0) {
        response = MHD_create_response_from_fd64(reply->file_size, reply->fd);
        if (!response) close(reply->fd);
    } else {
        response = MHD_create_response_from_buffer(reply->size, reply->body, MHD_RESPMEM_MUST_FREE);
        if (!response) free(reply->body);
    }
    if (!response) return NULL;
    MHD_add_response_header(response, "Content-Type", reply->content_type);
    MHD_add_response_header(response, "Cache-Control", "no-store");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                            "frame-ancestors 'none'");
    return response;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *connection, const char *url,
                                      const char *method, const char *version, const char *upload_data,
                                      size_t *upload_data_size, void **state)
{
    (void)version, (void)upload_data, (void)upload_data_size, (void)state;
    struct serve_reply reply = {.status = 500, .content_type = "application/json", .fd = -1};
    err_clear();
    answer(cls, connection, url, method, &reply);
    if (!reply.body && reply.fd < 0) reply_error(&reply, 500, "no reply");
    struct MHD_Response *response = make_response(&reply);
    if (!response) return MHD_NO;
    enum MHD_Result result = MHD_queue_response(connection, reply.status, response);
    MHD_destroy_response(response);
    return result;
}

// The first address of host (numeric or a name) with the port set.
static int resolve(const char *host, int port, struct sockaddr_storage *address)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *found = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &found);
    if (rc != 0) return err("--host '%s': %s", host, gai_strerror(rc));
    memcpy(address, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    return 0;
}

static int is_loopback(const struct sockaddr_storage *address)
{
    if (address->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)address)->sin_addr.s_addr) >> 24) == 127;
    return address->ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)address)->sin6_addr);
}

static int check_folder(const char *option, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return err("%s '%s' is not a folder (run from the repository root, or give the option)", option, path);
    return 0;
}

static int check_options(const struct serve_options *o)
{
    struct store *db;
    if (o->port < 0 || o->port > 65535) return err("--port %d is out of range (0 to 65535)", o->port);
    if (dash_open(o->db_path, &db) < 0) return -1;
    dash_close(db);
    return check_folder("--web", o->web_root);
}

int serve_start(const struct serve_options *options, struct serve **out)
{
    *out = NULL;
    struct sockaddr_storage address;
    if (check_options(options) < 0 || resolve(options->host, options->port, &address) < 0) return -1;
    struct serve *server = calloc(1, sizeof *server);
    if (!server) return err("out of memory");
    server->options = *options;
    server->loopback = is_loopback(&address);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | (address.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    server->daemon = MHD_start_daemon(flags, (uint16_t)options->port, NULL, NULL, handle_request, server,
                                      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
                                      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)SERVE_THREADS,
                                      MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVE_CONNECTIONS_MAX,
                                      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVE_TIMEOUT_S,
                                      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVE_REQUEST_MEMORY,
                                      MHD_OPTION_END);
    if (!server->daemon) {
        free(server);
        return err("cannot listen on %s port %d (in use, or not an address of this machine)", options->host,
                   options->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    server->port = info ? info->port : options->port;
    *out = server;
    return 0;
}

int serve_port(const struct serve *server) { return server->port; }

void serve_stop(struct serve *server)
{
    if (!server) return;
    MHD_stop_daemon(server->daemon);
    free(server);
}
