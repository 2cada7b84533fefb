import FluoroCore
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The attributes that identify a patient, copied into a recording only when the user asks (`--keep-phi`).
public struct RecordedPatient: Sendable {
    public var name = "", id = "", birthDate = "", sex = ""
    public var studyInstanceUID: String?
    public init() {}
}

/// Records the processed run as one DICOM file: Multi-frame True Colour Secondary Capture (the annotated RGB
/// frames, as subscribers see them), Explicit VR Little Endian, with each frame's measurements — the same JSON
/// header the publisher sends — in a private element (`(0029,1000)` UT, a JSON array, creator "FLUOROSTREAM 1").
/// Patient identifiers are left empty and new UIDs are made, unless `patient` is given.
///
/// Frames stream to unnamed scratch files beside the output while the run goes (nothing is kept in memory, nothing is
/// allocated per frame); `finish` writes the DICOM file through `OutputFile`, and `commit` names it once the run has
/// succeeded.
/// The target is checked when the recorder is made: an existing file is refused unless `replace`, an input or a
/// non-regular file always.
public final class DICOMRecorder: Stage {
    public let name = "record"
    public let path: String
    public private(set) var recorded = 0

    private let patient: RecordedPatient?
    private let frameTimeMilliseconds: Double?
    private var header: FrameHeader
    private let output: OutputFile
    private var pixels: Int32 = -1
    private var measurements: Int32 = -1
    private var geometry: FrameGeometry?
    private var finished = false

    /// - Parameters:
    ///   - upstreamStages: names of the stages before this one, in order (their latencies go in the measurements).
    ///   - frameTimeMilliseconds: the run's frame interval, recorded as Frame Time.
    ///   - replace: an existing file at `path` may be replaced.
    ///   - inputs: the run's input files, which `path` may not name.
    public init(
        path: String, upstreamStages: [String], frameTimeMilliseconds: Double?, patient: RecordedPatient? = nil,
        replace: Bool = false, inputs: [String] = []
    ) throws {
        self.path = path
        self.patient = patient
        self.frameTimeMilliseconds = frameTimeMilliseconds
        output = try OutputFile(path: path, mode: 0o600, replace: replace, inputs: inputs)
        header = FrameHeader(streamName: "fluorostream", upstreamStages: upstreamStages)
    }

    deinit {
        header.deallocate()
        if pixels >= 0 { close(pixels) }
        if measurements >= 0 { close(measurements) }
    }

    public func prepare(for geometry: FrameGeometry) throws {
        self.geometry = geometry
        pixels = try OutputFile.scratch(beside: path)
        measurements = try OutputFile.scratch(beside: path)
    }

    public func process(_ frame: Frame) throws {
        let bytes = header.write(for: frame, sequence: recorded, now: MonotonicClock.now())
        var separator: UInt8 = recorded == 0 ? 0x5B : 0x2C  // "[" before the first header, "," between
        try Self.write(UnsafeRawBufferPointer(frame.display), to: pixels, path: path)
        try withUnsafeBytes(of: &separator) { try Self.write($0, to: measurements, path: path) }
        try Self.write(bytes, to: measurements, path: path)
        recorded += 1
    }

    /// Writes all of `bytes` to `descriptor` (POSIX: no copies, no allocation).
    private static func write(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                throw FluoroError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
            offset += written
        }
    }

    public func finish() throws {
        guard let geometry, pixels >= 0, measurements >= 0 else { return }
        let end = recorded == 0 ? "[]" : "]"
        try end.utf8CString.withUnsafeBytes {
            try Self.write(UnsafeRawBufferPointer(rebasing: $0.dropLast()), to: measurements, path: path)
        }
        let json = try Self.readAll(measurements, path: path)
        let frameBytes = geometry.width * geometry.height * 3
        try output.write(Array(dataSetHeader(geometry: geometry, measurements: json, pixelBytes: recorded * frameBytes)))
        // The frames, copied from the scratch file in chunks.
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 22, alignment: 64)
        defer { chunk.deallocate() }
        var offset: off_t = 0
        while true {
            let got = pread(pixels, chunk.baseAddress, chunk.count, offset)
            if got < 0, errno == EINTR { continue }
            guard got >= 0 else { throw FluoroError.readFailed(path: path, reason: String(cString: strerror(errno))) }
            if got == 0 { break }
            try output.write(UnsafeRawBufferPointer(rebasing: chunk[..<got]))
            offset += off_t(got)
        }
        if (recorded * frameBytes) % 2 == 1 { try output.write([0]) }
        close(pixels)
        close(measurements)
        (pixels, measurements) = (-1, -1)
        finished = true
    }

    /// Names the finished recording at `path`. Call it when the run succeeded or was stopped on request; a run that
    /// failed leaves no recording (the unnamed file is discarded with the recorder).
    public func commit() throws {
        guard finished else { throw FluoroError.writeFailed(path: path, reason: "the recording was not finished") }
        try output.commit()
    }

    /// The whole content of a scratch file.
    private static func readAll(_ descriptor: Int32, path: String) throws -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var offset: off_t = 0
        while true {
            let got = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
            if got < 0, errno == EINTR { continue }
            guard got >= 0 else { throw FluoroError.readFailed(path: path, reason: String(cString: strerror(errno))) }
            if got == 0 { return data }
            data.append(contentsOf: buffer[..<got])
            offset += off_t(got)
        }
    }

    private func dataSetHeader(geometry: FrameGeometry, measurements: Data, pixelBytes: Int) -> Data {
        let sopClass = "1.2.840.10008.5.1.4.1.1.7.4"  // Multi-frame True Color Secondary Capture Image Storage
        let instance = Self.newUID(), series = Self.newUID()
        let study = patient?.studyInstanceUID ?? Self.newUID()
        var meta = DICOMElements()
        meta.add(0x0002, 0x0001, "OB", Data([0, 1]))
        meta.add(0x0002, 0x0002, "UI", sopClass)
        meta.add(0x0002, 0x0003, "UI", instance)
        meta.add(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1")  // Explicit VR Little Endian
        meta.add(0x0002, 0x0012, "UI", "2.25.1130718237410931412")
        meta.add(0x0002, 0x0013, "SH", "FLUOROSTREAM")
        var file = Data(count: 128)
        file.append(Data("DICM".utf8))
        var group = DICOMElements()
        group.add(0x0002, 0x0000, "UL", UInt32(meta.data.count))
        file.append(group.data)
        file.append(meta.data)

        var set = DICOMElements()
        set.add(0x0008, 0x0016, "UI", sopClass)
        set.add(0x0008, 0x0018, "UI", instance)
        set.add(0x0008, 0x0060, "CS", "OT")
        set.add(0x0008, 0x0064, "CS", "WSD")
        set.add(0x0008, 0x103E, "LO", "FluoroStream annotated run")
        set.add(0x0010, 0x0010, "PN", patient?.name ?? "")
        set.add(0x0010, 0x0020, "LO", patient?.id ?? "")
        set.add(0x0010, 0x0030, "DA", patient?.birthDate ?? "")
        set.add(0x0010, 0x0040, "CS", patient?.sex ?? "")
        if let frameTimeMilliseconds { set.add(0x0018, 0x1063, "DS", String(format: "%.4g", frameTimeMilliseconds)) }
        set.add(0x0020, 0x000D, "UI", study)
        set.add(0x0020, 0x000E, "UI", series)
        set.add(0x0020, 0x0010, "SH", "")
        set.add(0x0020, 0x0011, "IS", "1")
        set.add(0x0020, 0x0013, "IS", "1")
        set.add(0x0020, 0x0020, "CS", "")
        set.add(0x0028, 0x0002, "US", UInt16(3))
        set.add(0x0028, 0x0004, "CS", "RGB")
        set.add(0x0028, 0x0006, "US", UInt16(0))
        set.add(0x0028, 0x0008, "IS", String(recorded))
        if frameTimeMilliseconds != nil { set.add(0x0028, 0x0009, "AT", Data([0x18, 0x00, 0x63, 0x10])) }
        set.add(0x0028, 0x0010, "US", UInt16(geometry.height))
        set.add(0x0028, 0x0011, "US", UInt16(geometry.width))
        set.add(0x0028, 0x0100, "US", UInt16(8))
        set.add(0x0028, 0x0101, "US", UInt16(8))
        set.add(0x0028, 0x0102, "US", UInt16(7))
        set.add(0x0028, 0x0103, "US", UInt16(0))
        set.add(0x0029, 0x0010, "LO", "FLUOROSTREAM 1")
        set.add(0x0029, 0x1000, "UT", measurements)
        set.addHeader(0x7FE0, 0x0010, "OB", length: pixelBytes + pixelBytes % 2)
        file.append(set.data)
        return file
    }

    /// A UID under the 2.25 root (a random UUID as a decimal integer), so no organisation root is needed.
    static func newUID() -> String {
        let uuid = UUID().uuid
        let bytes = withUnsafeBytes(of: uuid) { Array($0) }
        // 128-bit value to decimal by repeated division.
        var digits: [UInt8] = [], number = bytes
        while number.contains(where: { $0 != 0 }) {
            var remainder = 0
            for index in number.indices {
                let value = remainder * 256 + Int(number[index])
                number[index] = UInt8(value / 10)
                remainder = value % 10
            }
            digits.append(UInt8(remainder))
        }
        return "2.25." + (digits.isEmpty ? "0" : String(digits.reversed().map { Character(String($0)) }))
    }

}

/// Explicit VR Little Endian data elements, in the order added (callers add them in ascending tag order).
struct DICOMElements {
    private(set) var data = Data()

    mutating func add(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: String) {
        var bytes = Data(value.utf8)
        if bytes.count % 2 == 1 { bytes.append(vr == "UI" ? 0 : 0x20) }
        add(group, element, vr, bytes)
    }

    mutating func add(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: UInt16) {
        add(group, element, vr, withUnsafeBytes(of: value.littleEndian) { Data($0) })
    }

    mutating func add(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: UInt32) {
        add(group, element, vr, withUnsafeBytes(of: value.littleEndian) { Data($0) })
    }

    mutating func add(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: Data) {
        var value = value
        if value.count % 2 == 1 { value.append(vr == "UT" ? 0x20 : 0) }
        addHeader(group, element, vr, length: value.count)
        data.append(value)
    }

    /// The element's tag, VR and length (4 bytes after two reserved ones for OB, OW, UT, UN, SQ).
    mutating func addHeader(_ group: UInt16, _ element: UInt16, _ vr: String, length: Int) {
        withUnsafeBytes(of: group.littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: element.littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(vr.utf8))
        if ["OB", "OW", "UT", "UN", "SQ", "OF"].contains(vr) {
            data.append(contentsOf: [0, 0])
            withUnsafeBytes(of: UInt32(length).littleEndian) { data.append(contentsOf: $0) }
        } else {
            withUnsafeBytes(of: UInt16(length).littleEndian) { data.append(contentsOf: $0) }
        }
    }
}
