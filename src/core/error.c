// One message buffer per thread: the last error recorded by err() and its added context.
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ERR_CAPACITY = 4096 };
static _Thread_local char err_buffer[ERR_CAPACITY];

int err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buffer, sizeof err_buffer, fmt, ap);
    va_end(ap);
    return -1;
}

int err_context(const char *fmt, ...)
{
    char old[ERR_CAPACITY];
    memcpy(old, err_buffer, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err_buffer, sizeof err_buffer, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof err_buffer) return -1;
    size_t len = (size_t)n;
    // Keep "context: old", cut to the buffer.
    snprintf(err_buffer + len, sizeof err_buffer - len, ": %.*s", (int)(sizeof err_buffer - len), old);
    return -1;
}

const char *err_message(void) { return err_buffer; }

void err_clear(void) { err_buffer[0] = '\0'; }

void bug_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "BUG %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
