// `mkdir -p` once for the whole harness: results databases, checkpoints, figures, sweep and
// Slurm folders, the feature-network cache.
#include "io/path.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

// ENOTDIR from mkdir: the first entry above folder that exists but is not a folder is named.
static int not_a_folder_above(const char *folder)
{
    char above[IO_PATH_MAX];
    snprintf(above, sizeof above, "%s", folder);
    struct stat st;
    for (char *p = above + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (stat(above, &st) == 0 && !S_ISDIR(st.st_mode))
            return err("cannot create folder '%s': '%s' is not a folder (%s)", folder, above, strerror(ENOTDIR));
        *p = '/';
    }
    return err("cannot create folder '%s': %s", folder, strerror(ENOTDIR));
}

// mkdir of one folder; an existing entry is left for the final check (a component of the path
// may be an existing folder that mkdir refuses with another errno, such as EACCES).
static int make_one(const char *folder)
{
    if (mkdir(folder, 0777) == 0) return 0;
    int mkdir_errno = errno;
    if (mkdir_errno == EEXIST || access(folder, F_OK) == 0) return 0;
    if (mkdir_errno == ENOTDIR) return not_a_folder_above(folder);
    return err("cannot create folder '%s': %s", folder, strerror(mkdir_errno));
}

int io_make_folders(const char *path)
{
    char buf[IO_PATH_MAX];
    if (!path[0]) return err("empty folder name");
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return err("folder name '%s' is too long (%d bytes at most)", path, IO_PATH_MAX - 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int rc = make_one(buf);
        *p = '/';
        if (rc < 0) return -1;
    }
    if (make_one(buf) < 0) return -1;
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return err("'%s' is not a folder", buf);
    return 0;
}

int io_make_parent_folders(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return 0;
    if (slash == path) return io_make_folders("/");
    char folder[IO_PATH_MAX];
    int length = (int)(slash - path);
    if (length >= (int)sizeof folder)
        return err("folder name of '%s' is too long (%d bytes at most)", path, IO_PATH_MAX - 1);
    snprintf(folder, sizeof folder, "%.*s", length, path);
    return io_make_folders(folder);
}
