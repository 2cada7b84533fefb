/// Wraps a frame header in imagezmq's own header for `--imagezmq`: `{"msg": HEADER, "dtype", "shape"}`, with the
/// whole FluoroStream header as the JSON text of `msg`, so that a stock `ImageHub.recv_image()` (or `recv_jpg()`)
/// returns it as the name. Its buffer is allocated once; wrapping allocates nothing.
struct ImagezmqEnvelope {
    private var writer: JSONHeaderWriter

    /// Room for a header of at most `headerCapacity` bytes, every byte of it escaped.
    init(headerCapacity: Int) { writer = JSONHeaderWriter(capacity: 2 * headerCapacity + 128) }

    func deallocate() { writer.deallocate() }

    /// imagezmq's header carrying `header` for an image of `height` × `width` × 3 uint8; valid until the next call.
    mutating func wrap(_ header: UnsafeRawBufferPointer, height: Int, width: Int) -> UnsafeRawBufferPointer {
        writer.reset()
        writer.key("msg"); writer.string(bytes: header)
        writer.key("dtype"); writer.literal("\"uint8\"")
        writer.key("shape"); writer.beginArray()
        writer.element(); writer.integer(height)
        writer.element(); writer.integer(width)
        writer.element(); writer.integer(3)
        writer.endArray()
        writer.finish()
        return writer.bytes
    }

    /// The bytes every wrapped header of a stream named `streamName` starts with, which a subscriber to the whole
    /// stream is matched on.
    static func lead(streamName: String) -> [UInt8] {
        let inner = FrameHeader.lead(streamName: streamName)
        var envelope = ImagezmqEnvelope(headerCapacity: inner.count)
        defer { envelope.deallocate() }
        let wrapped = inner.withUnsafeBytes { Array(envelope.wrap($0, height: 0, width: 0)) }
        // Up to the end of the escaped lead: `{"msg":"` and the escaped bytes.
        let escaped = inner.reduce(0) { $0 + ($1 == 0x22 || $1 == 0x5C ? 2 : 1) }
        return Array(wrapped[..<(8 + escaped)])
    }
}
