// Errors as values: a failing function records one message and returns -1; callers add context
// with err_context() and pass the -1 up; only main() prints the message and picks the exit status.
// BUG() is for broken invariants (a bug in promoe), never for bad input.
#ifndef PROMOE_ERROR_H
#define PROMOE_ERROR_H

// Records the message (printf-style, lower case, no full stop) and returns -1.
int err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Prefixes "context: " to the recorded message and returns -1.
int err_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *err_message(void);
void err_clear(void);

_Noreturn void bug_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define BUG(...) bug_at(__FILE__, __LINE__, __VA_ARGS__)

#endif
