// Runs a shell command line for the tests that drive the promoe program as a user would: its
// standard output and error (together, up to SHELL_OUTPUT_MAX - 1 bytes) land in `output`, and
// the exit status is returned (-1 when it did not exit normally). One copy per test program.
#ifndef PROMOE_TESTS_SHELL_H
#define PROMOE_TESTS_SHELL_H

#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>

enum { SHELL_OUTPUT_MAX = 65536, SHELL_COMMAND_MAX = 4096 };

static char output[SHELL_OUTPUT_MAX];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[SHELL_COMMAND_MAX], full[SHELL_COMMAND_MAX + 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    // A subshell, so that every command of a list has its errors captured.
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(output, 1, sizeof output - 1, p);
    output[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#endif
