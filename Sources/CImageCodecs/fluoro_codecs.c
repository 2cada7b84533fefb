#include "fluoro_codecs.h"
#include <charls/charls.h>
#include <openjpeg.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *error, size_t error_size, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error, error_size, format, arguments);
    va_end(arguments);
    return -1;
}

int fluoro_jpegls_decode(const void *data, size_t size, void *output, int width, int height, int bytes_per_sample,
                         char *error, size_t error_size) {
    charls_jpegls_decoder *decoder = charls_jpegls_decoder_create();
    if (!decoder) return fail(error, error_size, "CharLS could not create a decoder");
    charls_jpegls_errc code = charls_jpegls_decoder_set_source_buffer(decoder, data, size);
    if (code == CHARLS_JPEGLS_ERRC_SUCCESS) code = charls_jpegls_decoder_read_header(decoder);
    charls_frame_info info;
    if (code == CHARLS_JPEGLS_ERRC_SUCCESS) code = charls_jpegls_decoder_get_frame_info(decoder, &info);
    if (code != CHARLS_JPEGLS_ERRC_SUCCESS) {
        int result = fail(error, error_size, "JPEG-LS: %s", charls_get_error_message(code));
        charls_jpegls_decoder_destroy(decoder);
        return result;
    }
    if ((int)info.width != width || (int)info.height != height || info.component_count != 1 ||
        (info.bits_per_sample > 8) != (bytes_per_sample == 2)) {
        charls_jpegls_decoder_destroy(decoder);
        return fail(error, error_size, "JPEG-LS stream is %ux%u, %d component(s) of %d bits; expected %dx%d grey",
                    info.width, info.height, info.component_count, info.bits_per_sample, width, height);
    }
    code = charls_jpegls_decoder_decode_to_buffer(decoder, output, (size_t)width * height * bytes_per_sample, 0);
    charls_jpegls_decoder_destroy(decoder);
    if (code != CHARLS_JPEGLS_ERRC_SUCCESS) return fail(error, error_size, "JPEG-LS: %s", charls_get_error_message(code));
    return 0;
}

/* OpenJPEG reads from memory through these callbacks. */
typedef struct { const uint8_t *data; size_t size; size_t position; } memory_stream;

static OPJ_SIZE_T stream_read(void *buffer, OPJ_SIZE_T count, void *user) {
    memory_stream *stream = user;
    size_t left = stream->size - stream->position;
    if (left == 0) return (OPJ_SIZE_T)-1;
    if (count > left) count = left;
    memcpy(buffer, stream->data + stream->position, count);
    stream->position += count;
    return count;
}

static OPJ_OFF_T stream_skip(OPJ_OFF_T count, void *user) {
    memory_stream *stream = user;
    if (count < 0) {
        if ((size_t)(-count) > stream->position) count = -(OPJ_OFF_T)stream->position;
    } else if ((size_t)count > stream->size - stream->position) {
        count = (OPJ_OFF_T)(stream->size - stream->position);
    }
    stream->position += count;
    return count;
}

static OPJ_BOOL stream_seek(OPJ_OFF_T position, void *user) {
    memory_stream *stream = user;
    if (position < 0 || (size_t)position > stream->size) return OPJ_FALSE;
    stream->position = (size_t)position;
    return OPJ_TRUE;
}

typedef struct { char *error; size_t error_size; } error_sink;

static void record_error(const char *message, void *user) {
    error_sink *sink = user;
    if (sink->error[0] == 0) snprintf(sink->error, sink->error_size, "JPEG 2000: %s", message);
    size_t length = strlen(sink->error);
    if (length > 0 && sink->error[length - 1] == '\n') sink->error[length - 1] = 0;
}

static void ignore_message(const char *message, void *user) { (void)message; (void)user; }

int fluoro_jpeg2000_decode(const void *data, size_t size, void *output, int width, int height, int bytes_per_sample,
                           char *error, size_t error_size) {
    error[0] = 0;
    const uint8_t *bytes = data;
    /* A raw codestream starts with SOC (FF 4F FF 51); a JP2 file with its signature box. */
    int is_jp2 = size >= 12 && bytes[4] == 'j' && bytes[5] == 'P' && bytes[6] == ' ' && bytes[7] == ' ';
    opj_codec_t *codec = opj_create_decompress(is_jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
    if (!codec) return fail(error, error_size, "OpenJPEG could not create a decoder");
    error_sink sink = { error, error_size };
    opj_set_error_handler(codec, record_error, &sink);
    opj_set_warning_handler(codec, ignore_message, NULL);
    opj_set_info_handler(codec, ignore_message, NULL);
    opj_dparameters_t parameters;
    opj_set_default_decoder_parameters(&parameters);
    memory_stream memory = { bytes, size, 0 };
    opj_stream_t *stream = opj_stream_create(1 << 16, OPJ_TRUE);
    opj_stream_set_user_data(stream, &memory, NULL);
    opj_stream_set_user_data_length(stream, size);
    opj_stream_set_read_function(stream, stream_read);
    opj_stream_set_skip_function(stream, stream_skip);
    opj_stream_set_seek_function(stream, stream_seek);

    opj_image_t *image = NULL;
    int ok = opj_setup_decoder(codec, &parameters) && opj_read_header(stream, codec, &image) &&
             opj_decode(codec, stream, image) && opj_end_decompress(codec, stream);
    int result = 0;
    if (!ok || !image) {
        result = error[0] ? -1 : fail(error, error_size, "JPEG 2000: the codestream could not be decoded");
    } else if (image->numcomps != 1 || (int)image->comps[0].w != width || (int)image->comps[0].h != height ||
               image->comps[0].prec > (OPJ_UINT32)(bytes_per_sample * 8)) {
        result = fail(error, error_size, "JPEG 2000 image is %ux%u, %u component(s) of %u bits; expected %dx%d grey",
                      image->comps[0].w, image->comps[0].h, image->numcomps, image->comps[0].prec, width, height);
    } else {
        const OPJ_INT32 *samples = image->comps[0].data;
        unsigned mask = image->comps[0].prec >= 32 ? 0xFFFFFFFFu : ((1u << image->comps[0].prec) - 1);
        size_t count = (size_t)width * height;
        if (bytes_per_sample == 1) {
            uint8_t *out = output;
            for (size_t i = 0; i < count; i++) out[i] = (uint8_t)((unsigned)samples[i] & mask);
        } else {
            uint16_t *out = output;
            for (size_t i = 0; i < count; i++) out[i] = (uint16_t)((unsigned)samples[i] & mask);
        }
    }
    if (image) opj_image_destroy(image);
    opj_stream_destroy(stream);
    opj_destroy_codec(codec);
    return result;
}
