// One message format for every YAML spec reader of report/ (yaml_error.h).
#include "report/yaml_error.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/error.h"

int yaml_error_at(const char *path, const yaml_node_t *n, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return err("%s:%zu:%zu: %s", path, n->start_mark.line + 1, n->start_mark.column + 1, message);
}
