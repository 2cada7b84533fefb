import COpenIGTLink
import FluoroCore

#if canImport(Glibc)
    import Glibc
#endif

/// Turns a frame's `OpenIGTLinkSnapshot` into its five OpenIGTLink messages with libOpenIGTLink (`COpenIGTLink`):
/// IMAGE `Image`, POLYDATA `Guidewire` and `Catheter`, POINT `Tips`, STRING `Measurements`
/// (docs/wire-format.md, "OpenIGTLink"). Used on the sender's thread only.
final class OpenIGTLinkPacker {
    private let packer: OpaquePointer
    private let spacing = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3)
    private let matrix = UnsafeMutableBufferPointer<Float>.allocate(capacity: 16)
    private let tipNames = UnsafeMutableBufferPointer<UnsafePointer<CChar>?>.allocate(capacity: 2)
    private let tipColours = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 8)
    private let names: [UnsafeMutablePointer<CChar>] = [strdup("guidewire tip")!, strdup("catheter tip")!]
    /// Messages the library could not pack (a STRING over 65535 bytes).
    private(set) var failed = 0

    /// A packer for images placed by `toWorld`.
    init(toWorld: ImageToWorld) throws {
        guard let packer = fluoro_igtl_packer_create() else {
            throw FluoroError.messaging(detail: "OpenIGTLink: the message packer could not be made")
        }
        self.packer = packer
        (spacing[0], spacing[1], spacing[2]) = (Float(toWorld.spacing.column), Float(toWorld.spacing.row), 1)
        _ = matrix.update(fromContentsOf: toWorld.matrix)
    }

    deinit {
        fluoro_igtl_packer_destroy(packer)
        spacing.deallocate()
        matrix.deallocate()
        tipNames.deallocate()
        tipColours.deallocate()
        for name in names { free(name) }
    }

    /// Calls `each` with every message of the frame in `snapshot`, in order (each valid during the call).
    func pack(_ snapshot: OpenIGTLinkSnapshot, each: (UnsafeRawBufferPointer) -> Void) {
        let (seconds, nanoseconds) = (snapshot.seconds, snapshot.nanoseconds)
        var size = 0
        func emit(_ message: UnsafeRawPointer?) {
            guard let message else {
                failed += 1
                return
            }
            each(UnsafeRawBufferPointer(start: message, count: size))
        }
        emit(
            fluoro_igtl_pack_image(
                packer, "Image", Int32(snapshot.width), Int32(snapshot.height), 3,
                snapshot.image.baseAddress?.assumingMemoryBound(to: UInt8.self), spacing.baseAddress, matrix.baseAddress,
                seconds, nanoseconds, &size))
        for (device, line) in [("Guidewire", snapshot.guidewire), ("Catheter", snapshot.catheter)] {
            emit(
                fluoro_igtl_pack_polyline(
                    packer, device, line.baseAddress?.assumingMemoryBound(to: Float.self), Int32(line.count / 12), seconds,
                    nanoseconds, &size))
        }
        for (index, kind) in snapshot.tipKinds.enumerated() {
            tipNames[index] = UnsafePointer(names[Int(kind)])
            let colour: (UInt8, UInt8, UInt8) = kind == 0 ? (255, 220, 0) : (0, 220, 255)  // yellow wire, cyan catheter
            (tipColours[4 * index], tipColours[4 * index + 1], tipColours[4 * index + 2], tipColours[4 * index + 3]) =
                (colour.0, colour.1, colour.2, 255)
        }
        emit(
            fluoro_igtl_pack_points(
                packer, "Tips", tipNames.baseAddress, snapshot.tips.baseAddress?.assumingMemoryBound(to: Float.self),
                tipColours.baseAddress, 3, Int32(snapshot.tipKinds.count), seconds, nanoseconds, &size))
        emit(
            fluoro_igtl_pack_string(
                packer, "Measurements", snapshot.json.assumingMemoryBound(to: CChar.self), seconds, nanoseconds, &size))
    }
}
