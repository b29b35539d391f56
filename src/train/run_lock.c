// The owner lock of a run (see run_lock.h): flock on <folder>/owner.lock, its holder's host and pid
// written into the file after the lock is taken, read back by whoever is refused.
#include "train/run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/error.h"

static const char LOCK_NAME[] = "owner.lock";

void run_host_name(char *host)
{
    if (gethostname(host, RUN_LOCK_HOST_MAX) != 0) strcpy(host, "unknown");
    host[RUN_LOCK_HOST_MAX - 1] = '\0';
}

int run_process_alive(int64_t pid)
{
    if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM)) return 0;
    char stat_path[64], line[256];
    snprintf(stat_path, sizeof stat_path, "/proc/%lld/stat", (long long)pid);
    FILE *f = fopen(stat_path, "r");
    if (!f) return 1;
    const char *state = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
    fclose(f);
    return !(state && (state[2] == 'Z' || state[2] == 'X'));
}

// "host pid" from the lock file (empty and 0 when it holds nothing readable).
static void read_owner(int fd, struct run_owner *owner)
{
    char text[RUN_LOCK_HOST_MAX + 32] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    owner->host[0] = '\0';
    owner->pid = 0;
    long long pid = 0;
    if (sscanf(text, "%255s %lld", owner->host, &pid) == 2) owner->pid = pid;
}

static int write_owner(int fd, const char *path)
{
    char host[RUN_LOCK_HOST_MAX], text[RUN_LOCK_HOST_MAX + 32];
    run_host_name(host);
    int n = snprintf(text, sizeof text, "%s %lld\n", host, (long long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n)
        return err("cannot write the owner of the run into '%s': %s", path, strerror(errno));
    return 0;
}

int run_lock_take(struct run_lock *lock, const char *folder, struct run_owner *owner)
{
    lock->fd = -1;
    snprintf(lock->path, sizeof lock->path, "%s/%s", folder, LOCK_NAME);
    int fd = open(lock->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return err("cannot open the run's lock file '%s': %s", lock->path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) read_owner(fd, owner);
        close(fd);
        if (e == EWOULDBLOCK) return 1;
        return err("cannot lock '%s': %s", lock->path, strerror(e));
    }
    if (write_owner(fd, lock->path) < 0) return close(fd), -1;
    lock->fd = fd;
    return 0;
}

void run_lock_release(struct run_lock *lock)
{
    if (lock->fd < 0) return;
    ftruncate(lock->fd, 0);   // a stale "host pid" would name a process that no longer owns the run
    close(lock->fd);          // drops the flock
    lock->fd = -1;
}

int run_lock_probe(const char *folder, struct run_owner *owner)
{
    char path[IO_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", folder, LOCK_NAME);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT || errno == ENOTDIR ? 0 : err("cannot open '%s': %s", path, strerror(errno));
    int held = flock(fd, LOCK_SH | LOCK_NB) != 0;
    if (held && errno != EWOULDBLOCK) {
        int e = errno;
        close(fd);
        return err("cannot probe the lock '%s': %s", path, strerror(e));
    }
    if (held) read_owner(fd, owner);
    close(fd);
    return held;
}

int run_owner_state(const char *folder, const char *host, int64_t pid)
{
    char path[IO_PATH_MAX], my_host[RUN_LOCK_HOST_MAX];
    struct run_owner owner;
    snprintf(path, sizeof path, "%s/%s", folder, LOCK_NAME);
    if (folder[0] && access(path, F_OK) == 0) {
        int held = run_lock_probe(folder, &owner);
        if (held >= 0) return held ? OWNER_ALIVE : OWNER_GONE;
        err_clear();
    }
    run_host_name(my_host);
    if (strcmp(host, my_host) != 0) return OWNER_UNKNOWN;
    return run_process_alive(pid) ? OWNER_ALIVE : OWNER_GONE;
}
