// Atomic file replacement: data goes to a temporary file of this writer alone,
// "PATH.tmp.<host>.<pid>.<random>", which is flushed, fsync'd and renamed over PATH,
// then the directory is fsync'd. A reader (or a crash) sees either the old file or the whole new one.
// On any failure the temporary file is removed and the error names PATH and the system's reason;
// temporary files of PATH left by killed writers of this host are removed by the next open.
#ifndef PROMOE_ATOMIC_H
#define PROMOE_ATOMIC_H

#include <stddef.h>
#include <stdio.h>

struct atomic_file {
    FILE *fp;        // open on tmp_path while writing; callers may hand it to libraries (libpng)
    char *path;      // final name (owned copy)
    char *tmp_path;  // path + ".tmp.<host>.<pid>.<random>" (owned)
};

// Creates the temporary file for writing. On failure nothing is left open or allocated.
int atomic_open(struct atomic_file *af, const char *path);
// Writes n bytes; on failure the caller must still call atomic_abort.
int atomic_write(struct atomic_file *af, const void *data, size_t n);
// Flushes, fsyncs, closes, renames over PATH and fsyncs the directory. On failure removes the temporary file.
// Either way af is released.
int atomic_commit(struct atomic_file *af);
// Closes and removes the temporary file, releasing af (no error: used on the failure path).
void atomic_abort(struct atomic_file *af);
// One-shot: the whole file from one buffer.
int atomic_write_file(const char *path, const void *data, size_t n);

#endif
