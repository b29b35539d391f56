// Class separation of tokens (Fig. 1a, ROUTERS.md 4.2): the ratio of inter-class to intra-class
// distance. Centroid form (the main one): intra = mean over tokens of the Euclidean distance to
// the own class centroid, inter = mean over unordered pairs of present classes of the distance
// between centroids. Pairwise form: mean distance over token pairs of different classes over the
// mean over token pairs of the same class. Sums in double, in a fixed order (thread-independent).
#ifndef PROMOE_SEPARATION_H
#define PROMOE_SEPARATION_H

struct class_separation {
    double inter, intra, ratio;   // ratio = inter / intra (NaN when undefined)
};

// tokens [N, D], classes [N] in [0, C). Errors: a class outside [0, C), fewer than 2 classes.
int separation_centroid(const float *tokens, const int *classes, int N, int D, int C, struct class_separation *out);
int separation_pairwise(const float *tokens, const int *classes, int N, int D, int C, struct class_separation *out);

#endif
