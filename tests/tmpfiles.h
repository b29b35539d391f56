// Temporary files of atomic writes (io/atomic.h): each writer writes PATH.tmp.<host>.<pid>.<random>,
// so the tests look for any "PATH.tmp*" rather than one fixed name.
#ifndef PROMOE_TESTS_TMPFILES_H
#define PROMOE_TESTS_TMPFILES_H

#include <glob.h>
#include <stdio.h>

// How many temporary files of path exist.
static int tmp_files_of(const char *path)
{
    char pattern[4096];
    snprintf(pattern, sizeof pattern, "%s.tmp*", path);
    glob_t g;
    int n = glob(pattern, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
    globfree(&g);
    return n;
}

#endif
