// The token CSV of the analysis commands.
#include "analysis/output.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

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
