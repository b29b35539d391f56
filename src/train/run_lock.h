// One writer per run: a run's trainer holds <ckpt.dir>/<run id>/owner.lock with flock(2) for as
// long as it trains, and writes "host pid" into it so that a refused process can name the owner.
// The kernel drops the lock when its holder dies, however it dies, so a lock file left behind
// never blocks a later run; on a shared file system (NFS) flock is carried to the server, so a
// process on another host is refused too.
#ifndef PROMOE_RUN_LOCK_H
#define PROMOE_RUN_LOCK_H

#include <stdint.h>

#include "io/path.h"

enum { RUN_LOCK_HOST_MAX = 256 };

struct run_lock {
    int fd;                          // -1 when not held
    char path[IO_PATH_MAX];
};

struct run_owner {
    char host[RUN_LOCK_HOST_MAX];
    int64_t pid;
};

// Takes the lock of the run whose checkpoint folder is folder (which must exist). 0 held, 1 held
// by another process (owner filled, lock not taken), -1 error (message names the file).
int run_lock_take(struct run_lock *lock, const char *folder, struct run_owner *owner);
// Releases a held lock (the file stays: removing it would race with a new taker).
void run_lock_release(struct run_lock *lock);
// 1 when a live process holds the lock of folder (owner filled), 0 when none does or there is no
// lock file, -1 error.
int run_lock_probe(const char *folder, struct run_owner *owner);

enum { OWNER_GONE = 0, OWNER_ALIVE = 1, OWNER_UNKNOWN = 2 };
// Whether the owner recorded for a 'running' run (host, pid) still trains it: when folder holds
// a lock file, whether it is held; else whether pid is alive when host is this one; a process of
// another host without a lock file to probe is OWNER_UNKNOWN.
int run_owner_state(const char *folder, const char *host, int64_t pid);

// Whether process pid of this host is alive (a zombie, killed but not reaped, is not).
int run_process_alive(int64_t pid);
// This host's name (capacity RUN_LOCK_HOST_MAX).
void run_host_name(char *host);

#endif
