// Errors about a node of a YAML spec file (table specs, claims): "path:line:column: message", the
// position 1-based as editors show it.
#ifndef PROMOE_REPORT_YAML_ERROR_H
#define PROMOE_REPORT_YAML_ERROR_H

#include <yaml.h>

// Records the message (core/error.h) and returns -1.
int yaml_error_at(const char *path, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
