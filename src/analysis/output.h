// The token table the analysis commands write (CSV, one header line:
// index,class,expert,cluster,x,y; expert -1 = dense block or unrouted token; x, y = t-SNE).
#ifndef PROMOE_ANALYSIS_OUTPUT_H
#define PROMOE_ANALYSIS_OUTPUT_H

#include "analysis/tokens.h"

// clusters [n], embedding [n, 2].
int output_tokens_csv(const char *path, const struct token_set *s, const int *clusters, const double *embedding);

#endif
