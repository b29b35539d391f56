// Files the dashboard sends: the page's own (index.html, app.js, style.css under the web root)
// and each run's sample grid (samples.png in the run's folder, found from the database, never
// from the request). A request path is refused unless every part of it is a plain name and the
// resolved file lies inside the web root, so '..', hidden files and links out are not served.
#include "core/error.h"
#include "serve/serve_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { SEGMENT_MAX = 128 };

static const struct {
    const char *extension, *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},   {".png", "image/png"},
    {".svg", "image/svg+xml"},             {".txt", "text/plain; charset=utf-8"},
};

static const char *content_type(const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < sizeof content_types / sizeof *content_types; i++) {
        size_t n = strlen(content_types[i].extension);
        if (len > n && !strcmp(path + len - n, content_types[i].extension)) return content_types[i].type;
    }
    return NULL;
}

// 1 when each '/'-separated part of relative is a plain name that does not start with a dot.
static int plain_relative_path(const char *relative)
{
    char segment[SEGMENT_MAX + 1];
    for (const char *p = relative;;) {
        size_t len = strcspn(p, "/");
        if (len == 0 || len > SEGMENT_MAX) return 0;
        snprintf(segment, sizeof segment, "%.*s", (int)len, p);
        if (segment[0] == '.' || !serve_plain_name(segment, SEGMENT_MAX)) return 0;
        if (!p[len]) return 1;
        p += len + 1;
    }
}

// Opens a regular file for the reply (404 when absent, 403 when not a regular file).
static void send_file(const char *path, const char *type, struct serve_reply *reply)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        reply_error(reply, errno == ENOENT ? 404 : 403, "cannot read '%s': %s", path, strerror(errno));
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        reply_error(reply, 403, "'%s' is not a file", path);
        return;
    }
    reply->status = 200;
    reply->content_type = type;
    reply->fd = fd;
    reply->file_size = (uint64_t)st.st_size;
}

// 1 when path resolves (links followed) to a place inside root.
static int inside(const char *root, const char *path)
{
    char real_root[PATH_MAX], real_path[PATH_MAX];
    if (!realpath(root, real_root) || !realpath(path, real_path)) return 0;
    size_t n = strlen(real_root);
    return !strncmp(real_path, real_root, n) && real_path[n] == '/';
}

void files_answer_page(const struct serve_request *request, struct serve_reply *reply)
{
    const char *relative = strcmp(request->path, "/") ? request->path + 1 : "index.html";
    char path[PATH_MAX];
    const char *type = content_type(relative);
    if (!plain_relative_path(relative)) {
        reply_error(reply, 403, "'%.80s' is not one of the page's files", request->path);
        return;
    }
    if (!type || (size_t)snprintf(path, sizeof path, "%s/%s", request->options->web_root, relative) >= sizeof path) {
        reply_error(reply, 404, "no file '%.80s'", request->path);
        return;
    }
    if (access(path, F_OK) != 0) {
        reply_error(reply, 404, "no file '%.80s'", request->path);
        return;
    }
    if (!inside(request->options->web_root, path)) {
        reply_error(reply, 403, "'%.80s' lies outside the page's files", request->path);
        return;
    }
    send_file(path, type, reply);
}

void files_answer_samples(const char *run_folder, struct serve_reply *reply)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/samples.png", run_folder) >= sizeof path) {
        reply_error(reply, 404, "run folder path too long");
        return;
    }
    send_file(path, "image/png", reply);
}
