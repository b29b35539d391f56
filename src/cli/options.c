// The option parser of every subcommand (see options.h). Values are checked whole, as the config
// key table checks YAML values: an integer is all digits (strtoll to the end, no overflow), a
// number is finite, and both lie in the descriptor's range.
#include "cli/options.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"

int cli_int_in(const char *option, const char *text, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (end == text || *end) return err("option '%s': expected an integer, got '%s'", option, text);
    if (errno == ERANGE || n < min || n > max)
        return err("option '%s': %s is out of range [%lld, %lld]", option, text, min, max);
    *out = n;
    return 0;
}

int cli_double_in(const char *option, const char *text, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(text, &end);
    if (end == text || *end) return err("option '%s': expected a number, got '%s'", option, text);
    if (!isfinite(x) || errno == ERANGE) return err("option '%s': expected a finite number, got '%s'", option, text);
    if (x < lo || x > hi) return err("option '%s': %s is out of range [%g, %g]", option, text, lo, hi);
    *out = x;
    return 0;
}

static const struct cli_option *find(const struct cli_command_line *c, const char *name)
{
    for (int i = 0; i < c->n_options; i++)
        if (c->options[i].name && !strcmp(c->options[i].name, name)) return &c->options[i];
    return NULL;
}

static const struct cli_option *find_assign(const struct cli_command_line *c)
{
    for (int i = 0; i < c->n_options; i++)
        if (c->options[i].type == CLI_ASSIGN) return &c->options[i];
    return NULL;
}

static int append(const struct cli_option *o, const char *what, const char *value)
{
    const char **list = o->target;
    if (*o->count >= o->max) return err("%s: at most %lld are accepted", what, o->max), EXIT_FAILED;
    list[(*o->count)++] = value;
    return 0;
}

// Stores value into o's target; 0 or the exit status.
static int take_value(const struct cli_option *o, const char *value)
{
    switch (o->type) {
    case CLI_INT:
        return cli_int_in(o->name, value, o->min, o->max, o->target) < 0 ? EXIT_FAILED : 0;
    case CLI_DOUBLE:
        return cli_double_in(o->name, value, o->lo, o->hi, o->target) < 0 ? EXIT_FAILED : 0;
    case CLI_STRING:
        if (!value[0]) return err("option '%s': empty value", o->name), EXIT_FAILED;
        *(const char **)o->target = value;
        return 0;
    case CLI_LIST:
        return append(o, o->name, value);
    default:
        BUG("option '%s' of type %d takes no value", o->name, (int)o->type);
    }
}

static int usage_error(const struct cli_command_line *c, const char *what, const char *arg)
{
    fprintf(stderr, "promoe: %s '%s'\n", what, arg);
    return cli_usage(c->usage);
}

static int positional(const struct cli_command_line *c, const char *arg, int *n_positional)
{
    const struct cli_option *assign = find_assign(c);
    if (assign && strchr(arg, '=')) return append(assign, "key=value arguments", arg);
    if (*n_positional >= c->max_positional) return usage_error(c, "unexpected argument", arg);
    c->positional[(*n_positional)++] = arg;
    return 0;
}

int cli_parse(int argc, char **argv, const struct cli_command_line *c)
{
    int n_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return printf("usage: %s\n", c->usage), -1;
        int status;
        if (arg[0] != '-' || !arg[1]) {
            status = positional(c, arg, &n_positional);
        } else {
            const struct cli_option *o = find(c, arg);
            if (!o) return usage_error(c, "unknown option", arg);
            if (o->type == CLI_FLAG) {
                *(int *)o->target = 1;
                continue;
            }
            if (i + 1 >= argc) return usage_error(c, "no value after option", arg);
            status = take_value(o, argv[++i]);
        }
        if (status) return status;
    }
    if (c->n_positional) *c->n_positional = n_positional;
    if (n_positional < c->min_positional) return cli_usage(c->usage);
    return 0;
}
