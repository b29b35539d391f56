// The printed results of the guided-diffusion evaluator (openai/guided-diffusion
// evaluations/evaluator.py): lines "Inception Score: X", "FID: X", "sFID: X", "Precision: X",
// "Recall: X" among progress lines that are ignored. Read into the `evals` metric names
// is, fid, sfid, precision, recall.
#ifndef PROMOE_ADM_IMPORT_H
#define PROMOE_ADM_IMPORT_H

enum { ADM_METRICS = 5 };

// Metric i: the printed label adm_labels[i], stored as adm_metric_names[i].
extern const char *const adm_labels[ADM_METRICS];
extern const char *const adm_metric_names[ADM_METRICS];

struct adm_results {
    double value[ADM_METRICS];
    int found[ADM_METRICS];   // 1 where the line was present
};

// Parses the evaluator output in path. Fails, naming the file, when it cannot be read, when a
// result line's number does not parse, or when none of the five lines is present.
int adm_parse_file(const char *path, struct adm_results *out);

#endif
