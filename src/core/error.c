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
    char prefix[ERR_CAPACITY], old[ERR_CAPACITY];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_buffer, sizeof old);
    snprintf(err_buffer, sizeof err_buffer, "%s: %s", prefix, old);
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
