// Exact t-SNE (van der Maaten and Hinton, 2008) for a few thousand points: Gaussian affinities
// calibrated to a perplexity by bisection, symmetrised; Student-t similarities in 2-D; gradient
// descent with momentum, per-coordinate gains and early exaggeration; initialised by the top two
// principal components (LAPACK dsyev) scaled to a standard deviation of 1e-4, as scikit-learn's
// PCA initialisation. O(N^2) per iteration; deterministic and independent of the thread count.
#ifndef PROMOE_TSNE_H
#define PROMOE_TSNE_H

struct tsne_options {
    double perplexity;
    int iterations;
    int exaggeration_iterations;   // the first iterations with exaggerated affinities
    double exaggeration;
};

// y [N, 2] = embedding of x [N, D]. Needs N > 3 * perplexity.
int tsne_embed(const float *x, int N, int D, const struct tsne_options *o, double *y);

#endif
