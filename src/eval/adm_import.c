// Line matcher for the evaluator's output: a line is a result when it is exactly
// "<label>: <number>" (trailing whitespace and a carriage return allowed); every other line
// (TensorFlow logs, progress) is skipped.
#include "eval/adm_import.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum { LINE_MAX_BYTES = 4096 };

const char *const adm_labels[ADM_METRICS] = {"Inception Score", "FID", "sFID", "Precision", "Recall"};
const char *const adm_metric_names[ADM_METRICS] = {"is", "fid", "sfid", "precision", "recall"};
// What each figure can be: an Inception Score is exp(mean KL) >= 1, a Frechet distance >= 0,
// precision and recall are fractions.
static const double metric_min[ADM_METRICS] = {1, 0, 0, 0, 0};
static const double metric_max[ADM_METRICS] = {INFINITY, INFINITY, INFINITY, 1, 1};

// 1 and *value when line is "<label>: <number>", 0 when it is another line, -1 on a bad number.
static int match(const char *line, const char *label, double *value)
{
    size_t n = strlen(label);
    if (strncmp(line, label, n) != 0 || line[n] != ':' || line[n + 1] != ' ') return 0;
    const char *text = line + n + 2;
    char *end;
    errno = 0;
    *value = strtod(text, &end);
    while (isspace((unsigned char)*end)) end++;
    if (end == text || *end || errno) return -1;
    return 1;
}

int adm_parse_file(const char *path, struct adm_results *out)
{
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "r");
    if (!fp) return err("cannot read '%s': %s", path, strerror(errno));
    char line[LINE_MAX_BYTES];
    int line_no = 0, any = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, fp)) {
        line_no++;
        for (int i = 0; i < ADM_METRICS; i++) {
            double v;
            int m = match(line, adm_labels[i], &v);
            if (m < 0) rc = err("'%s' line %d: '%s' is not followed by a number", path, line_no, adm_labels[i]);
            if (m <= 0) continue;
            if (!isfinite(v) || v < metric_min[i] || v > metric_max[i]) {
                rc = err("'%s' line %d: %s %g is out of range [%g, %g]", path, line_no, adm_labels[i], v,
                         metric_min[i], metric_max[i]);
                continue;
            }
            out->value[i] = v;
            out->found[i] = 1;
            any = 1;
        }
    }
    fclose(fp);
    if (!rc && !any)
        rc = err("'%s': no evaluator result line (Inception Score, FID, sFID, Precision, Recall) found", path);
    return rc;
}
