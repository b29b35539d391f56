// Capturing one block's output tokens for probe images at a fixed diffusion time.
#include "analysis/tokens.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "diffusion/ddpm.h"

#define RF_TIME_SCALE 1000.0   // model time = 1000 sigma (diffusion/rf.c)

// x_t [B, n_elem] of images x0 at model time t (t_model [B] gets the time the model sees).
static int noise_batch(const struct dit *m, const struct token_probe *p, const real *x0, int first, int B, int n_elem,
                       real *x_t, real *t_model)
{
    double keep, noise, time = p->t;
    if (m->cfg.objective == OBJECTIVE_DDPM) {
        struct ddpm_schedule s;
        if (ddpm_schedule_linear(&s, m->cfg.ddpm_steps) < 0) return -1;
        int step = (int)lround(p->t);
        step = step < 0 ? 0 : step >= s.n ? s.n - 1 : step;
        keep = sqrt(s.abar[step]), noise = sqrt(1 - s.abar[step]), time = step;
        ddpm_schedule_free(&s);
    } else {
        double sigma = p->t / RF_TIME_SCALE;
        keep = 1 - sigma, noise = sigma;
    }
    for (int b = 0; b < B; b++) {
        struct rng r;
        rng_init(&r, p->seed, 0, RNG_NOISE, (uint32_t)(first + b));
        t_model[b] = (real)time;
        for (int i = 0; i < n_elem; i++)
            x_t[(size_t)b * n_elem + i] = (real)(keep * x0[(size_t)b * n_elem + i] + noise * rng_normal(&r));
    }
    return 0;
}

// experts [B*T]: the expert of the largest gate of each token in layer L's last plan, else -1.
static void token_experts(const struct moe_layer *L, int n_tokens, int *experts)
{
    real best_gate[n_tokens];
    for (int i = 0; i < n_tokens; i++) experts[i] = -1, best_gate[i] = 0;
    if (!L) return;
    const struct routing_plan *plan = &L->plan;
    for (int e = 0; e < plan->n_experts; e++)
        for (int s = plan->offset[e]; s < plan->offset[e + 1]; s++) {
            int token = plan->token[s];
            if (experts[token] < 0 || plan->gate[s] > best_gate[token]) experts[token] = e, best_gate[token] = plan->gate[s];
        }
}

// all [n*T, D] tokens with classes and experts, batch by batch.
static int forward_all(struct dit *m, const real *images, const int *labels, int n, const struct token_probe *p,
                       struct token_set *all)
{
    int T = m->shape.tokens, D = m->shape.hidden, n_elem = m->shape.channels * m->shape.size * m->shape.size;
    real *x_t = malloc(sizeof(real) * (size_t)p->batch * n_elem), t_model[p->batch];
    if (!x_t) return err("out of memory for a batch of %d probe images", p->batch);
    int rc = 0;
    for (int first = 0; !rc && first < n; first += p->batch) {
        int B = n - first < p->batch ? n - first : p->batch;
        rc = noise_batch(m, p, images + (size_t)first * n_elem, first, B, n_elem, x_t, t_model);
        if (rc) break;
        dit_forward(m, x_t, t_model, labels + first, B);
        // resid holds depth + 1 arrays of this forward's B * T tokens each (dit_forward).
        const real *out = m->acts.resid + (size_t)(p->layer + 1) * B * T * D;
        size_t base = (size_t)first * T;
        for (size_t i = 0; i < (size_t)B * T * D; i++) all->x[base * D + i] = (float)out[i];
        for (int i = 0; i < B * T; i++) all->classes[base + i] = labels[first + i / T];
        token_experts(m->moe[p->layer], B * T, all->experts + base);
    }
    free(x_t);
    return rc;
}

static int token_set_alloc(struct token_set *s, int n, int D)
{
    s->n = n, s->D = D;
    s->x = malloc(sizeof(float) * (size_t)n * D);
    s->classes = malloc(sizeof(int) * n);
    s->experts = malloc(sizeof(int) * n);
    if (s->x && s->classes && s->experts) return 0;
    token_set_free(s);
    return err("out of memory for %d tokens of width %d", n, D);
}

// out = the tokens of all at evenly spaced positions k * all.n / out.n.
static void subsample(const struct token_set *all, struct token_set *out)
{
    for (int k = 0; k < out->n; k++) {
        int i = (int)((long long)k * all->n / out->n);
        memcpy(out->x + (size_t)k * all->D, all->x + (size_t)i * all->D, sizeof(float) * all->D);
        out->classes[k] = all->classes[i];
        out->experts[k] = all->experts[i];
    }
}

int tokens_collect(struct dit *m, const real *images, const int *labels, int n, const struct token_probe *p,
                   struct token_set *out)
{
    memset(out, 0, sizeof *out);
    if (p->layer < 0 || p->layer >= m->shape.depth)
        return err("layer %d is outside the model's blocks [0, %d)", p->layer, m->shape.depth);
    if (p->batch < 1 || p->batch > m->max_batch) return err("probe batch %d is outside [1, %d]", p->batch, m->max_batch);
    struct token_set all;
    int T = m->shape.tokens, D = m->shape.hidden;
    if (token_set_alloc(&all, n * T, D) < 0) return -1;
    m->training = 0;
    m->update_buffers = 0;
    int rc = forward_all(m, images, labels, n, p, &all);
    int kept = all.n > p->max_tokens ? p->max_tokens : all.n;
    if (!rc) rc = token_set_alloc(out, kept, D);
    if (!rc) subsample(&all, out);
    token_set_free(&all);
    return rc;
}

void token_set_free(struct token_set *s)
{
    free(s->x), free(s->classes), free(s->experts);
    s->x = NULL, s->classes = NULL, s->experts = NULL;
}
