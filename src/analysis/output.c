// Output folders and the token CSV.
#include "analysis/output.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

enum { OUTPUT_PATH_CAPACITY = 1100 };

int output_make_dirs(const char *path)
{
    char buf[OUTPUT_PATH_CAPACITY];
    if (strlen(path) >= sizeof buf) return err("folder name '%s' is too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1;; p++) {
        int end = *p == '\0';
        if (*p != '/' && !end) continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && access(buf, F_OK) != 0) return err("cannot create folder '%s'", buf);
        if (end) return 0;
        *p = '/';
    }
}

int output_tokens_csv(const char *path, const struct token_set *s, const int *clusters, const double *embedding)
{
    FILE *f = fopen(path, "w");
    if (!f) return err("cannot write '%s'", path);
    fprintf(f, "index,class,expert,cluster,x,y\n");
    for (int i = 0; i < s->n; i++)
        fprintf(f, "%d,%d,%d,%d,%.6g,%.6g\n", i, s->classes[i], s->experts[i], clusters[i], embedding[2 * i],
                embedding[2 * i + 1]);
    if (fclose(f) != 0) return err("cannot write '%s'", path);
    return 0;
}
