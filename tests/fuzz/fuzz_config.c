// Fuzzes the YAML config loader: any text either loads or fails with a message; a text that loads
// and validates has a canonical form that loads back to the same canonical form.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"

enum { CANONICAL_MAX = 65536 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct config cfg;
    config_defaults(&cfg);
    if (config_load_text(&cfg, text, "fuzz") == 0 && config_validate(&cfg) == 0) {
        static char first[CANONICAL_MAX], second[CANONICAL_MAX];
        config_canonical(&cfg, first, sizeof first);
        struct config again;
        config_defaults(&again);
        if (config_load_text(&again, first, "canonical") != 0) abort();
        config_canonical(&again, second, sizeof second);
        if (strcmp(first, second) != 0) abort();
    }
    err_clear();
    free(text);
    return 0;
}
