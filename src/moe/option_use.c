// Finds model options that would do nothing for the chosen model: a key that no part of the
// network reads still enters the run id, so a run would be recorded as something it is not (a
// dense run "with" a router, token choice "with" a routing contrastive loss).
#include "moe/option_use.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "moe/registry.h"
#include "moe/spec.h"

// A router-dependent key: read by the routers whose `reads` has the bit, or whose auxiliary
// losses include `aux` (-1: none).
struct router_key {
    const char *name;
    unsigned reads;
    int aux;
};

static const struct router_key router_keys[] = {
    {"model.moe.activation", ROUTER_READS_ACTIVATION, -1},
    {"model.moe.alpha", ROUTER_READS_ALPHA, -1},
    {"model.moe.capacity", ROUTER_READS_CAPACITY, -1},
    {"model.moe.threshold_momentum", ROUTER_READS_THRESHOLD_MOMENTUM, -1},
    {"model.moe.superclasses", ROUTER_READS_SUPERCLASSES, -1},
    {"model.moe.race_momentum", ROUTER_READS_RACE_MOMENTUM, -1},
    {"model.moe.kmeans.distance", ROUTER_READS_KMEANS, -1},
    {"model.moe.kmeans.gate", ROUTER_READS_KMEANS, -1},
    {"model.moe.kmeans.momentum", ROUTER_READS_KMEANS, -1},
    {"loss.rcl.weight", 0, AUX_RCL},
    {"loss.rcl.tau", 0, AUX_RCL},
    {"loss.balance.weight", 0, AUX_BALANCE},
    {"loss.router_sim.weight", 0, AUX_ROUTER_SIM},
    {"loss.router_sim.off_diagonal", 0, AUX_ROUTER_SIM},
    {"loss.router_sim.divide", 0, AUX_ROUTER_SIM},
    {"loss.cls.weight", 0, AUX_CLS},
    {"loss.capacity.weight", 0, AUX_CAPACITY},
};

enum { VALUE_TEXT_MAX = CONFIG_STRING_MAX + 8 };

// 1 when key `name` holds its default; *value gets the key's text.
static int at_default(const struct config *cfg, const struct config *defaults, const char *name,
                      char value[VALUE_TEXT_MAX])
{
    char def[VALUE_TEXT_MAX];
    config_value_text(cfg, name, value, VALUE_TEXT_MAX);
    config_value_text(defaults, name, def, sizeof def);
    return strcmp(value, def) == 0;
}

// A loss weight set to 0 switches a loss off: harmless wherever that loss does not exist.
static int is_switched_off_weight(const char *name, const char *value)
{
    size_t n = strlen(name);
    return n > 7 && strcmp(name + n - 7, ".weight") == 0 && strtod(value, NULL) == 0;
}

static int router_uses(const struct router_ops *r, const struct router_key *k)
{
    return (r->reads & k->reads) != 0 || (k->aux >= 0 && (r->aux & AUX_BIT(k->aux)));
}

// "prototype, token_choice": the routers that read key k.
static void users_text(const struct router_key *k, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < ROUTER_COUNT && len < size; i++)
        if (router_uses(router_lookup(i), k))
            len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "", router_name(i));
}

// Appends a finding unless the list is full.
static void add(struct unused_options *u, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(struct unused_options *u, const char *key, const char *fmt, ...)
{
    if (u->n >= UNUSED_OPTIONS_MAX) return;
    struct unused_option *o = &u->found[u->n++];
    o->key = key;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->why, sizeof o->why, fmt, ap);
    va_end(ap);
}

static void find_dense(const struct config *cfg, const struct config *defaults, struct unused_options *u)
{
    char value[VALUE_TEXT_MAX];
    for (size_t i = 0; config_key_name(i); i++) {
        const char *name = config_key_name(i);
        int moe_key = strncmp(name, "model.moe.", 10) == 0 && strcmp(name, "model.moe.experts") != 0;
        if (!moe_key && strncmp(name, "loss.", 5) != 0) continue;
        if (at_default(cfg, defaults, name, value) || is_switched_off_weight(name, value)) continue;
        add(u, name, "%s is %s but the model is dense (model.moe.experts is empty): no layer reads it", name, value);
    }
}

static void find_router(const struct config *cfg, const struct config *defaults, struct unused_options *u)
{
    const struct router_ops *r = router_lookup(cfg->moe_router);
    char value[VALUE_TEXT_MAX], users[256];
    for (size_t i = 0; i < sizeof router_keys / sizeof router_keys[0]; i++) {
        const struct router_key *k = &router_keys[i];
        if (router_uses(r, k) || at_default(cfg, defaults, k->name, value) || is_switched_off_weight(k->name, value))
            continue;
        users_text(k, users, sizeof users);
        add(u, k->name, "%s is %s but model.moe.router '%s' does not read it (read by: %s)", k->name, value,
            router_name(cfg->moe_router), users);
    }
    if (cfg->rcl_weight == 0 && (r->aux & AUX_BIT(AUX_RCL)) && !at_default(cfg, defaults, "loss.rcl.tau", value))
        add(u, "loss.rcl.tau", "loss.rcl.tau is %s but loss.rcl.weight is 0: the routing contrastive loss is off",
            value);
}

int moe_find_unused_options(const struct config *cfg, struct unused_options *u)
{
    u->n = 0;
    struct config *defaults = malloc(sizeof *defaults);  // some kB of strings: not on the stack
    if (!defaults) return err("out of memory");
    config_defaults(defaults);
    if (moe_enabled(cfg)) find_router(cfg, defaults, u);
    else find_dense(cfg, defaults, u);
    free(defaults);
    return u->n;
}
