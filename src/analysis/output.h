// Files the analysis commands write: their folder, and the token table (CSV, one header line:
// index,class,expert,cluster,x,y; expert -1 = dense block or unrouted token; x, y = t-SNE).
#ifndef PROMOE_ANALYSIS_OUTPUT_H
#define PROMOE_ANALYSIS_OUTPUT_H

#include "analysis/tokens.h"

// Creates path and its parents (existing folders are fine).
int output_make_dirs(const char *path);

// clusters [n], embedding [n, 2].
int output_tokens_csv(const char *path, const struct token_set *s, const int *clusters, const double *embedding);

#endif
