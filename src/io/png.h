// PNG output through libpng.
#ifndef PROMOE_PNG_H
#define PROMOE_PNG_H

#include <stdint.h>

// Writes an 8-bit image (channels 1 = gray, 3 = RGB, interleaved rows) atomically.
int png_write(const char *path, int width, int height, int channels, const uint8_t *pixels);

#endif
