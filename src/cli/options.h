// One option parser for every subcommand (git's parse-options is the model): a command lists its
// options in a table of descriptors (name, type, target, allowed range) and cli_parse walks argv
// once. Every numeric value is checked whole: trailing characters, integer overflow, NaN and
// infinity and values outside the descriptor's range are refused with a message that names the
// option, the value and the allowed range (exit status 1); an unknown option, a missing value or
// a surplus argument is a usage error (129).
#ifndef PROMOE_CLI_OPTIONS_H
#define PROMOE_CLI_OPTIONS_H

enum cli_option_type {
    CLI_INT,      // long long in [min, max]
    CLI_DOUBLE,   // finite double in [lo, hi]
    CLI_STRING,   // const char *, a non-empty value
    CLI_FLAG,     // int set to 1, takes no value
    CLI_LIST,     // repeated: const char *list[capacity], int count
    CLI_ASSIGN,   // not an option: positional "key=value" arguments go to this list
};

struct cli_option {
    const char *name;            // "--n"; NULL for CLI_ASSIGN
    enum cli_option_type type;
    void *target;                // long long *, double *, const char **, int *, const char **list
    long long min, max;          // CLI_INT range; CLI_LIST: max is the list's capacity
    double lo, hi;               // CLI_DOUBLE range
    int *count;                  // CLI_LIST / CLI_ASSIGN: entries so far
};

#define CLI_OPT_INT(n, t, a, b) {(n), CLI_INT, (t), (a), (b), 0, 0, 0}
#define CLI_OPT_DOUBLE(n, t, a, b) {(n), CLI_DOUBLE, (t), 0, 0, (a), (b), 0}
#define CLI_OPT_STRING(n, t) {(n), CLI_STRING, (t), 0, 0, 0, 0, 0}
#define CLI_OPT_FLAG(n, t) {(n), CLI_FLAG, (t), 0, 0, 0, 0, 0}
#define CLI_OPT_LIST(n, t, cap, c) {(n), CLI_LIST, (t), 0, (cap), 0, 0, (c)}
#define CLI_OPT_ASSIGN(t, cap, c) {0, CLI_ASSIGN, (t), 0, (cap), 0, 0, (c)}

// Seeds and other counters stored as uint64 are given as integers in [0, CLI_SEED_MAX].
#define CLI_SEED_MAX 9007199254740991LL   // 2^53 - 1: exact in a double and in SQLite REAL
#define CLI_COUNT_MAX 2147483647LL        // INT_MAX: counts that become ints

// A table and its length, for cli_command_line.
#define CLI_TABLE(table) (table), (int)(sizeof(table) / sizeof *(table))

struct cli_command_line {
    const char *usage;                    // printed for --help and usage errors
    const struct cli_option *options;
    int n_options;
    const char **positional;              // filled in order
    int min_positional, max_positional;
    int *n_positional;                    // how many were given (may be NULL)
};

// Parses argv[1..argc-1]. Returns 0 when parsed, -1 after printing the usage for --help (the
// caller exits 0), EXIT_USAGE or EXIT_FAILED (message recorded with err()) otherwise.
int cli_parse(int argc, char **argv, const struct cli_command_line *c);

// The checks alone, for values that do not come from argv (environment, other parsers).
int cli_int_in(const char *option, const char *text, long long min, long long max, long long *out);
int cli_double_in(const char *option, const char *text, double lo, double hi, double *out);

#endif
