#ifndef FLUORO_CODECS_H
#define FLUORO_CODECS_H
#include <stddef.h>
#include <stdint.h>

/// Greyscale decoding through CharLS (JPEG-LS) and OpenJPEG (JPEG 2000), behind plain C calls.
/// Each returns 0 on success, or -1 with a message in `error` (at most `error_size` bytes, NUL-terminated).
/// `output` receives width × height samples; `bytes_per_sample` is 1 (8-bit) or 2 (up to 16-bit).
/// Signed samples are returned as stored (two's complement in `bits` bits).

int fluoro_jpegls_decode(const void *data, size_t size, void *output, int width, int height, int bytes_per_sample,
                         char *error, size_t error_size);

int fluoro_jpeg2000_decode(const void *data, size_t size, void *output, int width, int height, int bytes_per_sample,
                           char *error, size_t error_size);

#endif
