// Atomic whole-file writes shared by every writer in promoe (npy, npz, safetensors, png): write to
// a temporary file of this writer alone (PATH.tmp.<host>.<pid>.<random>, so two processes writing
// one path never share it), fflush + fsync, rename to PATH, fsync the directory so the rename itself is durable.
// Errors name PATH and carry strerror (a full disk reads "No space left on device"); the temporary
// file never survives a failure.
#include "io/atomic.h"

#include "core/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { HOST_NAME_CAPACITY = 256, TMP_SUFFIX_MAX = HOST_NAME_CAPACITY + 64 };

static void atomic_release(struct atomic_file *af)
{
    free(af->path);
    free(af->tmp_path);
    af->fp = NULL;
    af->path = af->tmp_path = NULL;
}

// This host's name with '/' replaced, so it can be part of a file name.
static void host_name(char *host)
{
    if (gethostname(host, HOST_NAME_CAPACITY) != 0) strcpy(host, "localhost");
    host[HOST_NAME_CAPACITY - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '/') *p = '_';
}

// ".tmp.<host>.<pid>.<random>": the random part tells apart two writers of one process.
static void tmp_suffix(char *suffix)
{
    static unsigned counter;
    char host[HOST_NAME_CAPACITY];
    struct timespec now;
    host_name(host);
    clock_gettime(CLOCK_REALTIME, &now);
    uint32_t mix = (uint32_t)now.tv_nsec * 2654435761u ^ (uint32_t)getpid() ^ (++counter * 40503u);
    snprintf(suffix, TMP_SUFFIX_MAX, ".tmp.%s.%ld.%08x", host, (long)getpid(), mix);
}

// Temporary files of PATH left by writers of this host that died (killed mid-write) are removed:
// "<name>.tmp.<host>.<pid>.<random>" whose pid no longer exists. Others' files are left alone.
static void remove_stale_tmp(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096], prefix[1024], host[HOST_NAME_CAPACITY];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1, slash ? path : ".");
    host_name(host);
    int n = snprintf(prefix, sizeof prefix, "%s.tmp.%s.", slash ? slash + 1 : path, host);
    if (n < 0 || (size_t)n >= sizeof prefix) return;
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, (size_t)n) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + n, &end, 10);
        if (pid <= 0 || *end != '.' || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char stale[4096 + 512];
        snprintf(stale, sizeof stale, "%s/%s", dir, e->d_name);
        unlink(stale);
    }
    closedir(d);
}

int atomic_open(struct atomic_file *af, const char *path)
{
    size_t len = strlen(path);
    char suffix[TMP_SUFFIX_MAX];
    tmp_suffix(suffix);
    af->fp = NULL;
    af->path = strdup(path);
    af->tmp_path = malloc(len + strlen(suffix) + 1);
    if (!af->path || !af->tmp_path) {
        atomic_release(af);
        return err("cannot write '%s': out of memory", path);
    }
    memcpy(af->tmp_path, path, len);
    memcpy(af->tmp_path + len, suffix, strlen(suffix) + 1);
    remove_stale_tmp(path);
    int fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL, 0666);
    af->fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!af->fp) {
        int e = errno;
        if (fd >= 0) close(fd), unlink(af->tmp_path);
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
