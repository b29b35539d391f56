// Sample-quality scores from a classifier's outputs and features: the inception-style score
// (Salimans et al. 2016) and k-nearest-neighbour precision and recall (Kynkaanniemi et al. 2019).
#ifndef PROMOE_SAMPLE_SCORES_H
#define PROMOE_SAMPLE_SCORES_H

#include "core/real.h"

// Neighbourhood size of the k-NN manifolds (the paper's and the ADM evaluator's k = 3).
enum { PR_NEIGHBOURS = 3 };

// exp(mean_x KL(p(y|x) || p(y))) over probs [n, classes], p(y) the mean over all n: one split
// (the ADM evaluator splits into chunks of 5000 and averages; for n <= 5000 the two agree).
// Between 1 (every row the same) and classes (one-hot rows, classes equally often).
double inception_score(const real *probs, int n, int classes);

// Share of rows of probs [n, classes] whose largest entry is at the row's label: labels [n], or
// with labels NULL label i % classes (the order in which the sampler cycles through the classes).
double class_accuracy(const real *probs, const int *labels, int n, int classes);

// Precision: the fraction of fake [n_fake, d] within the k-NN ball (radius: distance to the k-th
// nearest other point) of at least one real [n_real, d] point; recall: the same with the roles
// swapped. Distances from BLIS products in row blocks. Needs n_real, n_fake > k.
int knn_precision_recall(const real *real_x, int n_real, const real *fake_x, int n_fake, int d, int k,
                         double *precision, double *recall);

#endif
