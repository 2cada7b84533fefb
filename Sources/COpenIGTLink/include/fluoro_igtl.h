#ifndef FLUORO_IGTL_H
#define FLUORO_IGTL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Packs OpenIGTLink messages with libOpenIGTLink. Each kind of message is kept between calls, so a frame's
/// messages reuse the library's buffers; a returned pointer stays valid until the next call of the same kind.
typedef struct fluoro_igtl_packer fluoro_igtl_packer;

fluoro_igtl_packer *fluoro_igtl_packer_create(void);
void fluoro_igtl_packer_destroy(fluoro_igtl_packer *packer);

/// An IMAGE message of an interleaved 8-bit image of `components` (1 or 3) per pixel. `spacing`: millimetres
/// per column, row and slice; `matrix`: 4 × 4 row-major, the image's axes (unit columns) and its centre in RAS
/// millimetres. Returns the message and sets `size`, or NULL.
const void *fluoro_igtl_pack_image(
    fluoro_igtl_packer *packer, const char *device, int width, int height, int components, const uint8_t *pixels,
    const float spacing[3], const float matrix[16], uint32_t seconds, uint32_t nanoseconds, size_t *size);

/// A POLYDATA message of one polyline through `count` points (x, y, z in RAS millimetres); with fewer than two
/// points it has no cells (and with none, one point at the origin: libOpenIGTLink does not write an empty body).
const void *fluoro_igtl_pack_polyline(
    fluoro_igtl_packer *packer, const char *device, const float *points, int count, uint32_t seconds,
    uint32_t nanoseconds, size_t *size);

/// A POINT message of `count` named points (x, y, z), each with a colour (RGBA) and a diameter in millimetres.
const void *fluoro_igtl_pack_points(
    fluoro_igtl_packer *packer, const char *device, const char *const *names, const float *points,
    const uint8_t *colours, float diameter, int count, uint32_t seconds, uint32_t nanoseconds, size_t *size);

/// A STRING message (UTF-8, at most 65535 bytes).
const void *fluoro_igtl_pack_string(
    fluoro_igtl_packer *packer, const char *device, const char *text, uint32_t seconds, uint32_t nanoseconds,
    size_t *size);

#ifdef __cplusplus
}
#endif

#endif
