import FluoroCore

/// What the `igtl` stage hands its sender thread for one frame, laid out in a byte block of a `TripleBuffer`: the
/// time stamp, the annotated RGB image, the device lines and tips already in RAS millimetres, and the JSON header.
/// Copying these is all the frame path does; packing the messages (and OpenIGTLink's CRC over the image) happens on
/// the sender's thread.
///
/// Layout: eight `UInt32` (width, height, guidewire points, catheter points, tips, JSON bytes, seconds,
/// nanoseconds), the image, then `Float` triples (guidewire, catheter, tips), one byte per tip (0 guidewire,
/// 1 catheter), and the JSON ending in NUL; each part starts on a 4-byte boundary.
struct OpenIGTLinkSnapshot {
    let width: Int, height: Int
    let seconds: UInt32, nanoseconds: UInt32
    let image: UnsafeRawBufferPointer
    let guidewire: UnsafeRawBufferPointer, catheter: UnsafeRawBufferPointer, tips: UnsafeRawBufferPointer
    let tipKinds: UnsafeRawBufferPointer
    /// The JSON header, NUL-terminated.
    let json: UnsafeRawPointer

    /// Reads the snapshot `block` holds (written by `write`).
    init(_ block: UnsafeRawBufferPointer) {
        func field(_ index: Int) -> Int { Int(block.load(fromByteOffset: 4 * index, as: UInt32.self)) }
        (width, height) = (field(0), field(1))
        let (wireCount, catheterCount, tipCount) = (field(2), field(3), field(4))
        (seconds, nanoseconds) = (UInt32(field(6)), UInt32(field(7)))
        var offset = 32
        func take(_ count: Int) -> UnsafeRawBufferPointer {
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: block[offset..<(offset + count)])
        }
        image = take(width * height * 3)
        offset = Self.aligned(offset)
        guidewire = take(12 * wireCount)
        catheter = take(12 * catheterCount)
        tips = take(12 * tipCount)
        tipKinds = take(tipCount)
        offset = Self.aligned(offset)
        json = block.baseAddress! + offset
    }

    /// The bytes a snapshot of a `width` × `height` frame takes at most.
    static func capacity(width: Int, height: Int) -> Int {
        32 + aligned(width * height * 3) + 12 * (2 * DeviceTrace.capacity + 2) + 4 + FrameHeader.maximumSize + 1
    }

    private static func aligned(_ count: Int) -> Int { (count + 3) & ~3 }

    /// Writes `frame`'s snapshot into `out` and returns its length: lines and tips through `toWorld`, `json` the
    /// frame's header (shorter than `FrameHeader.maximumSize`). Allocates nothing.
    static func write(
        _ frame: Frame, json: UnsafeRawBufferPointer, toWorld: ImageToWorld, seconds: UInt32, nanoseconds: UInt32,
        into out: UnsafeMutableRawBufferPointer
    ) -> Int {
        let wire = frame.annotations.guidewire, catheter = frame.annotations.catheter
        var offset = 0
        func put(_ value: Int) {
            out.storeBytes(of: UInt32(truncatingIfNeeded: value), toByteOffset: offset, as: UInt32.self)
            offset += 4
        }
        put(frame.geometry.width)
        put(frame.geometry.height)
        put(min(wire.centerline.count, DeviceTrace.capacity))
        put(min(catheter.centerline.count, DeviceTrace.capacity))
        put((wire.tip != nil ? 1 : 0) + (catheter.tip != nil ? 1 : 0))
        put(json.count)
        put(Int(seconds))
        put(Int(nanoseconds))
        let display = UnsafeRawBufferPointer(frame.display)
        UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + display.count)]).copyMemory(from: display)
        offset = aligned(offset + display.count)
        func putPoint(_ point: Point2) {
            let world = toWorld.world(x: point.x, y: point.y)
            out.storeBytes(of: world.x, toByteOffset: offset, as: Float.self)
            out.storeBytes(of: world.y, toByteOffset: offset + 4, as: Float.self)
            out.storeBytes(of: world.z, toByteOffset: offset + 8, as: Float.self)
            offset += 12
        }
        for point in wire.centerline.prefix(DeviceTrace.capacity) { putPoint(point) }
        for point in catheter.centerline.prefix(DeviceTrace.capacity) { putPoint(point) }
        if let tip = wire.tip { putPoint(tip) }
        if let tip = catheter.tip { putPoint(tip) }
        if wire.tip != nil { out[offset] = 0; offset += 1 }
        if catheter.tip != nil { out[offset] = 1; offset += 1 }
        offset = aligned(offset)
        UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + json.count)]).copyMemory(from: json)
        out[offset + json.count] = 0
        return offset + json.count + 1
    }
}
