// The paper's claims decided by the results database. A claims file (analysis/claims.yaml) lists
// each claim as a comparison between two rows of a table spec on one metric: `better` should beat
// `than`. For every seed that both rows have, the paired difference d = improvement of `better`
// over `than` (than - better for metrics where lower is better, better - than otherwise); over the
// pairs, the mean of d and its Student t 95% interval give the verdict: agrees (the interval lies
// above 0), disagrees (below 0), inconclusive (it holds 0), or too few pairs for an interval. A
// claim the mini scale cannot test carries `untestable: reason` and is reported as such.
#ifndef PROMOE_REPORT_CLAIMS_H
#define PROMOE_REPORT_CLAIMS_H

#include <stdio.h>

#include "report/table.h"

enum { CLAIMS_MAX = 64, CLAIM_TEXT_MAX = 256 };

struct claim {
    char id[CLAIM_TEXT_MAX], text[CLAIM_TEXT_MAX], source[CLAIM_TEXT_MAX];
    char table[CLAIM_TEXT_MAX], better[CLAIM_TEXT_MAX], than[CLAIM_TEXT_MAX];
    char untestable[CLAIM_TEXT_MAX * 2];   // non-empty: not decided here, and why
    struct spec_column column;
};

enum claim_verdict { VERDICT_AGREES, VERDICT_DISAGREES, VERDICT_INCONCLUSIVE, VERDICT_TOO_FEW, VERDICT_UNTESTABLE };

struct claim_result {
    const struct claim *claim;
    enum table_scale scale;
    int n;                             // seeds with both rows evaluated
    double better_mean, than_mean;     // over those seeds
    double diff, half;                 // mean improvement and its 95% half-width (n >= 2)
    enum claim_verdict verdict;
};

struct claims {
    char path[CLAIM_TEXT_MAX];
    struct claim items[CLAIMS_MAX];
    int n;
};

// Reads a claims file; errors name file:line:column.
int claims_load(struct claims *c, const char *path);
// Decides every claim against the database; results [c->n].
int claims_decide(const struct claims *c, struct store *db, struct claim_result *results);
const char *claim_verdict_name(enum claim_verdict v);
// Markdown table or long CSV (id,source,metric,cfg,scale,n,better_mean,than_mean,diff,ci_low,ci_high,verdict).
void claims_write(const struct claim_result *results, int n, enum table_format format, FILE *out);

#endif
