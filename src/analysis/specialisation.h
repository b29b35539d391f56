// Routing specialisation from class-by-expert token counts: the mutual information between a
// token's class and its expert, I(C; E) = sum p(c, e) log2(p(c, e) / (p(c) p(e))) in bits, with
// the entropies H(C) and H(E) that bound it. 0 = experts ignore the class; log2(classes) = each
// class has its own experts.
#ifndef PROMOE_SPECIALISATION_H
#define PROMOE_SPECIALISATION_H

#include <stdint.h>

struct specialisation {
    int64_t tokens;
    double mi_bits, h_class_bits, h_expert_bits;
    double mi_over_h_class, mi_over_h_expert;   // NaN when the entropy is 0
};

// counts [classes, experts] (non-negative).
struct specialisation specialisation_of(const int64_t *counts, int classes, int experts);

// fractions [classes, experts] = counts divided by their row total (0 for an empty row).
void specialisation_row_fractions(const int64_t *counts, int classes, int experts, double *fractions);

#endif
