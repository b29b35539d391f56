// Atomic whole-file writes shared by every writer in promoe (npy, npz, safetensors, png): write to
// PATH.tmp, fflush + fsync, rename to PATH, fsync the directory so the rename itself is durable.
// Errors name PATH and carry strerror (a full disk reads "No space left on device"); the temporary
// file never survives a failure.
#include "io/atomic.h"

#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void atomic_release(struct atomic_file *af)
{
    free(af->path);
    free(af->tmp_path);
    af->fp = NULL;
    af->path = af->tmp_path = NULL;
}

int atomic_open(struct atomic_file *af, const char *path)
{
    size_t len = strlen(path);
    af->fp = NULL;
    af->path = strdup(path);
    af->tmp_path = malloc(len + 5);
    if (!af->path || !af->tmp_path) {
        atomic_release(af);
        return err("cannot write '%s': out of memory", path);
    }
    memcpy(af->tmp_path, path, len);
    memcpy(af->tmp_path + len, ".tmp", 5);
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        int e = errno;
        err("cannot write '%s': cannot create '%s': %s", path, af->tmp_path, strerror(e));
        atomic_release(af);
        return -1;
    }
    return 0;
}

int atomic_write(struct atomic_file *af, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    errno = 0;
    if (fwrite(data, 1, n, af->fp) != n)
        return err("cannot write '%s': %s", af->path, strerror(errno ? errno : EIO));
    return 0;
}

// fsync of the directory makes the rename durable; file systems that cannot fsync a directory
// report EINVAL, which is not a failure of this write.
static int fsync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return err("cannot write '%s': out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rc = 0;
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
        rc = err("cannot write '%s': cannot sync directory '%s': %s", path, dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

int atomic_commit(struct atomic_file *af)
{
    errno = 0;
    if (fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0) {
        err("cannot write '%s': %s", af->path, strerror(errno ? errno : EIO));
        atomic_abort(af);
        return -1;
    }
    FILE *fp = af->fp;
    af->fp = NULL;
    if (fclose(fp) != 0) {
        err("cannot write '%s': %s", af->path, strerror(errno ? errno : EIO));
        atomic_abort(af);
        return -1;
    }
    if (rename(af->tmp_path, af->path) != 0) {
        err("cannot write '%s': cannot rename '%s': %s", af->path, af->tmp_path, strerror(errno));
        atomic_abort(af);
        return -1;
    }
    int rc = fsync_parent_dir(af->path);
    atomic_release(af);
    return rc;
}

void atomic_abort(struct atomic_file *af)
{
    if (af->fp)
        fclose(af->fp);
    if (af->tmp_path)
        unlink(af->tmp_path);
    atomic_release(af);
}

int atomic_write_file(const char *path, const void *data, size_t n)
{
    struct atomic_file af;
    if (atomic_open(&af, path) != 0)
        return -1;
    if (atomic_write(&af, data, n) != 0) {
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af);
}
