// Finite-difference checks (double precision, machinery in gradcheck.h) of the feature network's
// backward: every tensor's gradient through both convolutions, max-pools, ReLUs and linear layers
// on random weights and inputs (a perturbation that flips a ReLU or a pooled maximum has no
// derivative to compare and is skipped), backward accumulating, and the cross-entropy gradient.
#include "gradcheck.h"
#include "eval/featnet.h"

enum { FB = 2 };

struct featnet_ctx { struct featnet *f; real *x; };
static void featnet_fwd(void *p)
{
    struct featnet_ctx *c = p;
    featnet_forward(c->f, c->x, FB);
}

// FNV-1a over the pooled maxima's positions and the ReLU patterns.
static uint64_t featnet_signature(void *p)
{
    const struct featnet *f = ((struct featnet_ctx *)p)->f;
    uint64_t h = 1469598103934665603ull;
    size_t n1 = (size_t)FB * 14 * 14 * FEATNET_C1, n2 = (size_t)FB * 7 * 7 * FEATNET_C2;
    size_t a1 = (size_t)FB * 28 * 28 * FEATNET_C1, a2 = (size_t)FB * 14 * 14 * FEATNET_C2;
    for (size_t i = 0; i < n1; i++) h = (h ^ (uint64_t)f->arg1[i]) * 1099511628211ull;
    for (size_t i = 0; i < n2; i++) h = (h ^ (uint64_t)f->arg2[i]) * 1099511628211ull;
    for (size_t i = 0; i < a1; i++) h = (h ^ (uint64_t)(f->a1[i] > 0)) * 1099511628211ull;
    for (size_t i = 0; i < a2; i++) h = (h ^ (uint64_t)(f->a2[i] > 0)) * 1099511628211ull;
    for (size_t i = 0; i < (size_t)FB * FEATNET_FEATURES; i++)
        h = (h ^ (uint64_t)(f->features[i] > 0)) * 1099511628211ull;
    return h;
}

static void test_network(void)
{
    struct featnet f;
    CHECK(featnet_create(&f, FB) == 0, "featnet_create: %s", err_message());
    size_t n = f.table.total;
    real *w = calloc(n, sizeof(real)), *g = calloc(n, sizeof(real)), *g2 = calloc(n, sizeof(real));
    real x[FB * 28 * 28], r[FB * FEATNET_CLASSES];
    params_init(&f.table, w, 3);
    // Non-zero biases, so that their gradients are exercised away from the init.
    for (int i = 0; i < f.table.n; i++)
        if (f.table.entries[i].ndim == 1) fill_normal(w + f.table.entries[i].offset, f.table.entries[i].count, 0.1);
    fill_normal(x, FB * 28 * 28, 1);
    fill_normal(r, FB * FEATNET_CLASSES, 1);
    featnet_bind(&f, w, g);
    struct featnet_ctx ctx = {&f, x};
    struct fd_case c = {"featnet", featnet_fwd, &ctx, f.logits, r, FB * FEATNET_CLASSES, NULL, featnet_signature};
    loss_of(&c);
    featnet_backward(&f, r, FB);
    for (int i = 0; i < f.table.n; i++) {
        const struct param_entry *e = &f.table.entries[i];
        check_variable(&c, e->name, w + e->offset, g + e->offset, e->count);
    }
    // Backward accumulates: a second call doubles every gradient.
    memcpy(g2, g, sizeof(real) * n);
    featnet_forward(&f, x, FB);
    featnet_backward(&f, r, FB);
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(g[i] - 2 * g2[i]));
    CHECK(worst < 1e-12, "featnet backward does not accumulate: worst %.3g", worst);
    free(w); free(g); free(g2);
    featnet_destroy(&f);
}

// Cross-entropy: loss and gradient against finite differences of the logits.
struct ce_ctx { struct featnet *f; int *labels; real *d; double loss; };
static void ce_fwd(void *p)
{
    struct ce_ctx *c = p;
    c->loss = featnet_loss(c->f, c->labels, FB, c->d);
}
static double ce_loss(void *p) { return ((struct ce_ctx *)p)->loss; }

static void test_cross_entropy(void)
{
    struct featnet f;
    CHECK(featnet_create(&f, FB) == 0, "featnet_create: %s", err_message());
    int labels[FB] = {3, 7};
    real d[FB * FEATNET_CLASSES], zero[FB * FEATNET_CLASSES] = {0}, grad[FB * FEATNET_CLASSES];
    fill_normal(f.logits, FB * FEATNET_CLASSES, 2);
    struct ce_ctx ctx = {&f, labels, d, 0};
    struct fd_case c = {"cross_entropy", ce_fwd, &ctx, d, zero, FB * FEATNET_CLASSES, ce_loss, NULL};
    loss_of(&c);
    memcpy(grad, d, sizeof grad);
    check_variable(&c, "logits", f.logits, grad, FB * FEATNET_CLASSES);
    // Uniform logits: loss log(10).
    memset(f.logits, 0, sizeof(real) * FB * FEATNET_CLASSES);
    CHECK_NEAR(featnet_loss(&f, labels, FB, d), log(FEATNET_CLASSES), 1e-12, "uniform cross-entropy");
    featnet_destroy(&f);
}

int main(void)
{
    (void)gradcheck_dit;   // the whole-DiT check of gradcheck.h is not used here
    rng_init(&test_rng, 11, 0, RNG_TEST, 0);
    test_network();
    test_cross_entropy();
    return test_summary("f64_featnet");
}
