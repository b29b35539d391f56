// Mutual information of a class-by-expert contingency table, in bits.
#include "analysis/specialisation.h"

#include <math.h>
#include <stdlib.h>

static double entropy_bits(const double *p, int n)
{
    double h = 0;
    for (int i = 0; i < n; i++)
        if (p[i] > 0) h -= p[i] * log2(p[i]);
    return h;
}

struct specialisation specialisation_of(const int64_t *counts, int classes, int experts)
{
    struct specialisation s = {0, 0, 0, 0, NAN, NAN};
    double p_class[classes], p_expert[experts];
    for (int c = 0; c < classes; c++) p_class[c] = 0;
    for (int e = 0; e < experts; e++) p_expert[e] = 0;
    for (int c = 0; c < classes; c++)
        for (int e = 0; e < experts; e++) s.tokens += counts[c * experts + e];
    if (s.tokens == 0) return s;
    for (int c = 0; c < classes; c++)
        for (int e = 0; e < experts; e++) {
            double p = (double)counts[c * experts + e] / s.tokens;
            p_class[c] += p;
            p_expert[e] += p;
        }
    for (int c = 0; c < classes; c++)
        for (int e = 0; e < experts; e++) {
            double p = (double)counts[c * experts + e] / s.tokens;
            if (p > 0) s.mi_bits += p * log2(p / (p_class[c] * p_expert[e]));
        }
    s.mi_bits = s.mi_bits > 0 ? s.mi_bits : 0;   // rounding can leave -1e-17 for independence
    s.h_class_bits = entropy_bits(p_class, classes);
    s.h_expert_bits = entropy_bits(p_expert, experts);
    if (s.h_class_bits > 0) s.mi_over_h_class = s.mi_bits / s.h_class_bits;
    if (s.h_expert_bits > 0) s.mi_over_h_expert = s.mi_bits / s.h_expert_bits;
    return s;
}

void specialisation_row_fractions(const int64_t *counts, int classes, int experts, double *fractions)
{
    for (int c = 0; c < classes; c++) {
        int64_t total = 0;
        for (int e = 0; e < experts; e++) total += counts[c * experts + e];
        for (int e = 0; e < experts; e++)
            fractions[c * experts + e] = total ? (double)counts[c * experts + e] / total : 0;
    }
}
