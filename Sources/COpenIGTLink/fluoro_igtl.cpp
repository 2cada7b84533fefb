// Packs OpenIGTLink messages through libOpenIGTLink (Debian's libopenigtlink-dev): the protocol comes from its
// library; FluoroStream only chooses the content.
#include "fluoro_igtl.h"

#include <cstring>

#include <igtlImageMessage.h>
#include <igtlPointMessage.h>
#include <igtlPolyDataMessage.h>
#include <igtlStringMessage.h>

struct fluoro_igtl_packer {
    igtl::ImageMessage::Pointer image = igtl::ImageMessage::New();
    igtl::PolyDataMessage::Pointer polyline = igtl::PolyDataMessage::New();
    igtl::PointMessage::Pointer points = igtl::PointMessage::New();
    igtl::StringMessage::Pointer text = igtl::StringMessage::New();
    int width = 0, height = 0, components = 0;
};

// OpenIGTLink time stamps carry the fraction of a second in units of 2^-32 s.
static uint32_t fraction(uint32_t nanoseconds) {
    return static_cast<uint32_t>((static_cast<uint64_t>(nanoseconds) << 32) / 1000000000ULL);
}

template <typename Message>
static const void *packed(Message &message, size_t *size) {
    if (message->Pack() == 0) return nullptr;
    *size = static_cast<size_t>(message->GetPackSize());
    return message->GetPackPointer();
}

extern "C" {

fluoro_igtl_packer *fluoro_igtl_packer_create(void) {
    try {
        return new fluoro_igtl_packer();
    } catch (...) {
        return nullptr;
    }
}

void fluoro_igtl_packer_destroy(fluoro_igtl_packer *packer) { delete packer; }

const void *fluoro_igtl_pack_image(
    fluoro_igtl_packer *packer, const char *device, int width, int height, int components, const uint8_t *pixels,
    const float spacing[3], const float matrix[16], uint32_t seconds, uint32_t nanoseconds, size_t *size) {
    try {
        auto &image = packer->image;
        if (width != packer->width || height != packer->height || components != packer->components) {
            image->SetDimensions(width, height, 1);
            image->SetScalarTypeToUint8();
            image->SetNumComponents(components);
            image->SetEndian(igtl::ImageMessage::ENDIAN_LITTLE);
            image->AllocateScalars();
            packer->width = width;
            packer->height = height;
            packer->components = components;
        }
        image->SetDeviceName(device);
        image->SetSpacing(spacing[0], spacing[1], spacing[2]);
        igtl::Matrix4x4 axes;
        for (int row = 0; row < 4; ++row)
            for (int column = 0; column < 4; ++column) axes[row][column] = matrix[row * 4 + column];
        image->SetMatrix(axes);
        image->SetTimeStamp(seconds, fraction(nanoseconds));
        std::memcpy(image->GetScalarPointer(), pixels, static_cast<size_t>(width) * height * components);
        return packed(image, size);
    } catch (...) {
        return nullptr;
    }
}

const void *fluoro_igtl_pack_polyline(
    fluoro_igtl_packer *packer, const char *device, const float *points, int count, uint32_t seconds,
    uint32_t nanoseconds, size_t *size) {
    try {
        auto &message = packer->polyline;
        message->Clear();
        auto array = igtl::PolyDataPointArray::New();
        auto lines = igtl::PolyDataCellArray::New();
        igtl::PolyDataCellArray::Pointer empty = igtl::PolyDataCellArray::New();
        std::list<igtlUint32> line;
        for (int index = 0; index < count; ++index) {
            array->AddPoint(points[3 * index], points[3 * index + 1], points[3 * index + 2]);
            line.push_back(static_cast<igtlUint32>(index));
        }
        // libOpenIGTLink leaves the body of a POLYDATA without points unwritten: an absent line is one point at the
        // origin and no cells.
        if (count == 0) array->AddPoint(0.0f, 0.0f, 0.0f);
        if (count > 1) lines->AddCell(line);
        message->SetPoints(array);
        message->SetLines(lines);
        message->SetVertices(empty);
        message->SetPolygons(empty);
        message->SetTriangleStrips(empty);
        message->SetDeviceName(device);
        message->SetTimeStamp(seconds, fraction(nanoseconds));
        return packed(message, size);
    } catch (...) {
        return nullptr;
    }
}

const void *fluoro_igtl_pack_points(
    fluoro_igtl_packer *packer, const char *device, const char *const *names, const float *points,
    const uint8_t *colours, float diameter, int count, uint32_t seconds, uint32_t nanoseconds, size_t *size) {
    try {
        auto &message = packer->points;
        message->ClearPointElement();
        for (int index = 0; index < count; ++index) {
            auto element = igtl::PointElement::New();
            element->SetName(names[index]);
            element->SetGroupName("Tip");
            element->SetRGBA(colours[4 * index], colours[4 * index + 1], colours[4 * index + 2], colours[4 * index + 3]);
            element->SetPosition(points[3 * index], points[3 * index + 1], points[3 * index + 2]);
            element->SetRadius(diameter / 2);
            element->SetOwner(device);
            message->AddPointElement(element);
        }
        message->SetDeviceName(device);
        message->SetTimeStamp(seconds, fraction(nanoseconds));
        return packed(message, size);
    } catch (...) {
        return nullptr;
    }
}

const void *fluoro_igtl_pack_string(
    fluoro_igtl_packer *packer, const char *device, const char *text, uint32_t seconds, uint32_t nanoseconds,
    size_t *size) {
    try {
        if (std::strlen(text) > 65535) return nullptr;
        auto &message = packer->text;
        message->SetDeviceName(device);
        message->SetEncoding(106);  // UTF-8 (IANA MIBenum)
        message->SetString(text);
        message->SetTimeStamp(seconds, fraction(nanoseconds));
        return packed(message, size);
    } catch (...) {
        return nullptr;
    }
}
}
