// Expert-string parsing and the MoE placement rule (every `every` blocks from `first`; the
// paper's interleaving is first 1, every 2: blocks 1, 3, 5, ...).
#include "moe/spec.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "moe/registry.h"

// Reads "<letter><digits>" at *p; returns the number or -1.
static int field(const char **p, const char *letters)
{
    if (!**p || !strchr(letters, **p)) return -1;
    (*p)++;
    if (!isdigit((unsigned char)**p)) return -1;
    long v = strtol(*p, (char **)p, 10);
    return v > 100000 ? -1 : (int)v;
}

int moe_spec_parse(const char *text, struct moe_spec *out)
{
    memset(out, 0, sizeof *out);
    const char *p = text;
    out->total = field(&p, "E");
    out->active = field(&p, "A");
    out->shared = field(&p, "S");
    out->uncond = field(&p, "UN");
    if (out->total < 0 || out->active < 0 || out->shared < 0 || out->uncond < 0 || *p)
        return err("model.moe.experts '%s' does not parse: expected E<total>A<top-k>S<shared>U<unconditional>, "
                   "e.g. E14A1S1U1", text);
    out->routed = out->total - out->shared - out->uncond;
    if (out->routed < 1)
        return err("model.moe.experts '%s': %d total experts leave no routed expert after %d shared and %d "
                   "unconditional", text, out->total, out->shared, out->uncond);
    if (out->active < 1 || out->active > out->routed)
        return err("model.moe.experts '%s': top-k %d must be between 1 and the %d routed experts", text,
                   out->active, out->routed);
    return 0;
}

int moe_enabled(const struct config *cfg) { return cfg->moe_experts[0] != '\0'; }

// model.moe.pool_scope samples needs model.moe.pool_samples, a divisor of the batch; other
// scopes pool the whole batch and leave it 0.
static int check_pool(const struct config *cfg)
{
    int P = cfg->moe_pool_samples;
    if (cfg->moe_pool_scope != POOL_SAMPLES) {
        if (P != 0)
            return err("model.moe.pool_samples %d is only read with model.moe.pool_scope samples; set it to 0 "
                       "or set the scope to samples", P);
        return 0;
    }
    if (P < 1)
        return err("model.moe.pool_scope samples needs model.moe.pool_samples >= 1 (samples per pool), got %d", P);
    if (cfg->batch_size % P)
        return err("model.moe.pool_samples %d does not divide train.batch_size %d: pools are groups of "
                   "pool_samples consecutive samples", P, cfg->batch_size);
    return 0;
}

int moe_spec_from_config(const struct config *cfg, struct moe_spec *out)
{
    if (moe_spec_parse(cfg->moe_experts, out) < 0) return -1;
    out->hidden = cfg->moe_hidden ? cfg->moe_hidden : cfg->mlp_ratio * cfg->hidden / (1 + out->shared);
    const struct router_ops *router = router_lookup(cfg->moe_router);
    if (!router) return err("model.moe.router %d has no registry row", cfg->moe_router);
    out->router = cfg->moe_router;
    out->activation = cfg->moe_activation == ACTIVATION_DEFAULT ? router->default_activation
                                                                : cfg->moe_activation;
    out->conditional = cfg->moe_conditional;
    out->alpha = cfg->moe_alpha;
    out->capacity = cfg->moe_capacity;
    out->threshold_momentum = cfg->moe_threshold_momentum;
    if (check_pool(cfg) < 0) return -1;
    if (out->conditional && out->uncond < 1)
        return err("model.moe.conditional needs at least one unconditional expert, but model.moe.experts "
                   "'%s' has U0", cfg->moe_experts);
    if (!out->conditional && out->uncond > 0)
        return err("model.moe.experts '%s' has %d unconditional experts but model.moe.conditional is false: "
                   "nothing would route to them", cfg->moe_experts, out->uncond);
    return router->check ? router->check(out, cfg) : 0;
}

int moe_is_layer(const struct config *cfg, int block)
{
    return moe_enabled(cfg) && block >= cfg->moe_first && (block - cfg->moe_first) % cfg->moe_every == 0;
}
