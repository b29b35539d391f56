// Paths and folders (path.c): the one size limit of a path buffer in the harness, and `mkdir -p`.
#ifndef PROMOE_IO_PATH_H
#define PROMOE_IO_PATH_H

// Bytes of a path buffer, its terminating NUL included: a longer path is refused, never cut.
enum { IO_PATH_MAX = 1200 };

// Creates the folder path and every missing folder above it (mode 0777 less the umask). An
// existing folder is fine. Errors: "cannot create folder '<folder>': <reason>" (where a file
// stands in the way: "'<file>' is not a folder (Not a directory)"), "'<path>' is not a folder",
// or the path is too long.
int io_make_folders(const char *path);

// Creates the folder that holds the file path and the folders above it, as io_make_folders; a
// path without '/' needs none.
int io_make_parent_folders(const char *path);

#endif
