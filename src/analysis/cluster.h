// K-means of tokens (Fig. 1a's 10-cluster colouring): Lloyd iterations from a deterministic
// start (the tokens at evenly spaced positions), a fixed iteration count or until no assignment
// changes. An empty cluster keeps its previous centroid.
#ifndef PROMOE_CLUSTER_H
#define PROMOE_CLUSTER_H

// assign [N] in [0, K) for tokens [N, D]; K <= N. Returns the iterations run, or -1.
int cluster_kmeans(const float *tokens, int N, int D, int K, int max_iterations, int *assign);

#endif
