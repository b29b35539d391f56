// PNG output (sample grids, per-image samples) through libpng: 8-bit gray or RGB, written to
// PATH.tmp and renamed by io/atomic. libpng reports errors by longjmp; the handler records libpng's
// message with the path, and nothing is printed (warnings are dropped: library code never prints).
#include "io/png.h"

#include "core/error.h"
#include "io/atomic.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>

struct png_context {
    char message[256];
    int io_errno;  // errno at the time of a failed write, 0 otherwise
};

static void png_on_error(png_structp png, png_const_charp message)
{
    struct png_context *ctx = png_get_error_ptr(png);
    ctx->io_errno = errno;
    snprintf(ctx->message, sizeof ctx->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message)
{
    (void)png, (void)message;
}

// Runs libpng over the open temporary file. Returns 0, or -1 after a libpng error (ctx filled).
// No local that changes after setjmp is read after the longjmp, so none needs to be volatile.
static int png_encode(FILE *fp, struct png_context *ctx, int width, int height, int channels,
                      const uint8_t *pixels)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, png_on_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(ctx->message, sizeof ctx->message, "out of memory");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * (size_t)channels;
    for (int y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int png_write(const char *path, int width, int height, int channels, const uint8_t *pixels)
{
    if (channels != 1 && channels != 3)
        return err("cannot write '%s': %d channels (1 = gray or 3 = RGB)", path, channels);
    if (width <= 0 || height <= 0 || !pixels)
        return err("cannot write '%s': bad image size %dx%d", path, width, height);
    struct atomic_file af;
    if (atomic_open(&af, path) != 0)
        return -1;
    struct png_context ctx = {"", 0};
    if (png_encode(af.fp, &ctx, width, height, channels, pixels) != 0) {
        int io_failed = ferror(af.fp) && ctx.io_errno;
        if (io_failed)
            err("cannot write '%s': %s", path, strerror(ctx.io_errno));
        else
            err("cannot write '%s': libpng: %s", path, ctx.message);
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af);
}
