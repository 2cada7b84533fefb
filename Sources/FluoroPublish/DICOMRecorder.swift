import CTurboJPEG
import FluoroCore
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The attributes that identify a patient, a study or the source images, copied into a recording only when the
/// user asks (`--keep-phi`).
public struct RecordedPatient: Sendable {
    public var name = "", id = "", birthDate = "", sex = ""
    public var studyInstanceUID: String?
    public var studyDate = "", studyTime = "", studyID = "", accessionNumber = "", referringPhysician = ""
    /// The source run's series and instance, referenced from the recording (DICOM sources).
    public var sourceSeriesInstanceUID: String?
    public var sourceSOPClassUID: String?, sourceSOPInstanceUID: String?
    public init() {}

    /// Whether every copied text is ASCII (else the recording declares UTF-8, ISO_IR 192).
    var isASCII: Bool {
        [name, id, birthDate, sex, studyDate, studyTime, studyID, accessionNumber, referringPhysician]
            .allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
    }
}

/// Records the processed run as one DICOM file: Multi-frame True Colour Secondary Capture (the annotated RGB
/// frames, as subscribers see them; Burned In Annotation YES), uncompressed, RLE Lossless or JPEG baseline
/// (`RecordingCompression`), with each frame's measurements — the same JSON header the publisher sends — in a private
/// element (`(0029,1000)` UT, a JSON array, creator "FLUOROSTREAM 1"). Patient and study identifiers are left empty,
/// the file is marked Patient Identity Removed and new UIDs are made, unless `patient` is given; then they are
/// copied, and the source series and instance are referenced.
///
/// Frames stream to unnamed scratch files beside the output while the run goes (nothing is kept in memory, nothing is
/// allocated per frame); `finish` compresses them and writes the DICOM file through `OutputFile`, and `commit` names
/// it once the run has succeeded.
/// The target is checked when the recorder is made: an existing file is refused unless `replace`, an input or a
/// non-regular file always.
public final class DICOMRecorder: Stage {
    public let name = "record"
    public let path: String
    public private(set) var recorded = 0

    private let patient: RecordedPatient?
    private let frameTimeMilliseconds: Double?
    private let compression: RecordingCompression
    private let modality: String
    private var header: FrameHeader
    private let output: OutputFile
    private var pixels: Int32 = -1
    private var measurements: Int32 = -1
    private var geometry: FrameGeometry?
    private var finished = false
    /// Bytes of the measurements' JSON array so far.
    private var measurementBytes = 0

    /// - Parameters:
    ///   - upstreamStages: names of the stages before this one, in order (their latencies go in the measurements).
    ///   - imaging: the run's pixel spacing and C-arm position, recorded in each frame's measurements.
    ///   - frameTimeMilliseconds: the run's frame interval, recorded as Frame Time.
    ///   - modality: the source's modality (XA, RF), else OT.
    ///   - replace: an existing file at `path` may be replaced.
    ///   - inputs: the run's input files, which `path` may not name.
    public init(
        path: String, upstreamStages: [String], imaging: ImagingGeometry = .unknown, frameTimeMilliseconds: Double?,
        patient: RecordedPatient? = nil,
        compression: RecordingCompression = .none, modality: String? = nil, replace: Bool = false, inputs: [String] = []
    ) throws {
        self.path = path
        self.patient = patient
        self.frameTimeMilliseconds = frameTimeMilliseconds
        self.compression = compression
        self.modality = modality.flatMap { Self.isCodeString($0) ? $0 : nil } ?? "OT"
        output = try OutputFile(path: path, mode: 0o600, replace: replace, inputs: inputs)
        header = FrameHeader(streamName: "fluorostream", upstreamStages: upstreamStages, imaging: imaging)
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
        // A DICOM element holds at most 2^32 - 2 bytes: the uncompressed pixel data and the measurements must fit.
        let limit = 0xFFFF_FFFE
        if compression == .none, (recorded + 1) * frame.display.count > limit {
            throw FluoroError.writeFailed(
                path: path,
                reason: "an uncompressed recording holds at most 4 GiB of frames (\(recorded) here); "
                    + "use --record-compression jpeg or rle for longer runs")
        }
        guard measurementBytes + bytes.count + 2 <= limit else {
            throw FluoroError.writeFailed(path: path, reason: "the frames' measurements exceed 4 GiB after \(recorded) frames")
        }
        measurementBytes += bytes.count + 1
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
        if compression == .none {
            let pixelBytes = recorded * frameBytes
            try output.write(Array(dataSetHeader(geometry: geometry, measurements: json, pixelLength: pixelBytes + pixelBytes % 2)))
            try copy(pixels)
            if pixelBytes % 2 == 1 { try output.write([0]) }
        } else {
            try writeEncapsulated(geometry: geometry, measurements: json)
        }
        close(pixels)
        close(measurements)
        (pixels, measurements) = (-1, -1)
        finished = true
    }

    /// Compresses the frames one by one into a scratch file as pixel data fragments (one a frame), then writes the
    /// data set, a Basic Offset Table, the fragments and the sequence delimiter.
    private func writeEncapsulated(geometry: FrameGeometry, measurements json: Data) throws {
        let encoded = try OutputFile.scratch(beside: path)
        defer { close(encoded) }
        let frameBytes = geometry.width * geometry.height * 3
        let frame = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: frameBytes)
        defer { frame.deallocate() }
        let jpeg =
            compression == .jpeg
            ? try DisplayJPEGEncoder(
                width: geometry.width, height: geometry.height, quality: RecordingCompression.jpegQuality,
                subsampling: TJSAMP_422) : nil
        let rle = compression == .rle ? DICOMRLEEncoder(width: geometry.width, height: geometry.height) : nil
        var offsets: [UInt32] = [], fragmentBytes = 0, compressedBytes = 0
        for index in 0..<recorded {
            try Self.read(pixels, into: UnsafeMutableRawBufferPointer(frame), at: index * frameBytes, path: path)
            let bytes = try jpeg?.encode(UnsafeBufferPointer(frame)) ?? rle!.encode(UnsafeBufferPointer(frame))
            var item = DICOMElements()
            item.addItemHeader(length: bytes.count + bytes.count % 2)
            if let offset = UInt32(exactly: fragmentBytes) { offsets.append(offset) }
            try item.data.withUnsafeBytes { try Self.write($0, to: encoded, path: path) }
            try Self.write(bytes, to: encoded, path: path)
            if bytes.count % 2 == 1 { try [UInt8(0)].withUnsafeBytes { try Self.write($0, to: encoded, path: path) } }
            fragmentBytes += 8 + bytes.count + bytes.count % 2
            compressedBytes += bytes.count
        }
        let ratio = compressedBytes > 0 ? Double(recorded * frameBytes) / Double(compressedBytes) : 1
        try output.write(Array(dataSetHeader(geometry: geometry, measurements: json, pixelLength: nil, compressionRatio: ratio)))
        // The offset table is left empty when an offset would not fit its 32 bits.
        var table = DICOMElements()
        let tableBytes =
            offsets.count == recorded ? offsets.flatMap { offset in (0..<4).map { UInt8(truncatingIfNeeded: offset >> (8 * $0)) } } : []
        table.addItem(Data(tableBytes))
        try output.write(Array(table.data))
        try copy(encoded)
        var delimiter = DICOMElements()
        delimiter.addSequenceDelimiter()
        try output.write(Array(delimiter.data))
    }

    /// Copies a scratch file into the output in chunks.
    private func copy(_ descriptor: Int32) throws {
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 22, alignment: 64)
        defer { chunk.deallocate() }
        var offset: off_t = 0
        while true {
            let got = pread(descriptor, chunk.baseAddress, chunk.count, offset)
            if got < 0, errno == EINTR { continue }
            guard got >= 0 else { throw FluoroError.readFailed(path: path, reason: String(cString: strerror(errno))) }
            if got == 0 { break }
            try output.write(UnsafeRawBufferPointer(rebasing: chunk[..<got]))
            offset += off_t(got)
        }
    }

    /// Fills `buffer` from a scratch file at `offset`.
    private static func read(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws {
        var done = 0
        while done < buffer.count {
            let got = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if got < 0, errno == EINTR { continue }
            guard got > 0 else {
                let reason = got == 0 ? "the scratch file ended early" : String(cString: strerror(errno))
                throw FluoroError.readFailed(path: path, reason: reason)
            }
            done += got
        }
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

    /// The file meta information and the data set up to the pixel data element's header; `pixelLength` nil for
    /// encapsulated (compressed) pixel data.
    private func dataSetHeader(
        geometry: FrameGeometry, measurements: Data, pixelLength: Int?, compressionRatio: Double? = nil
    ) -> Data {
        let sopClass = "1.2.840.10008.5.1.4.1.1.7.4"  // Multi-frame True Color Secondary Capture Image Storage
        let instance = Self.newUID(), series = Self.newUID()
        let study = patient?.studyInstanceUID.flatMap { Self.isUID($0) ? $0 : nil } ?? Self.newUID()
        var meta = DICOMElements()
        meta.add(0x0002, 0x0001, "OB", Data([0, 1]))
        meta.add(0x0002, 0x0002, "UI", sopClass)
        meta.add(0x0002, 0x0003, "UI", instance)
        meta.add(0x0002, 0x0010, "UI", compression.transferSyntax)
        meta.add(0x0002, 0x0012, "UI", "2.25.1130718237410931412")
        meta.add(0x0002, 0x0013, "SH", "FLUOROSTREAM")
        var file = Data(count: 128)
        file.append(Data("DICM".utf8))
        var group = DICOMElements()
        group.add(0x0002, 0x0000, "UL", UInt32(meta.data.count))
        file.append(group.data)
        file.append(meta.data)

        var set = DICOMElements()
        if let patient, !patient.isASCII { set.add(0x0008, 0x0005, "CS", "ISO_IR 192") }  // UTF-8 names
        set.add(0x0008, 0x0008, "CS", "DERIVED\\SECONDARY")
        set.add(0x0008, 0x0016, "UI", sopClass)
        set.add(0x0008, 0x0018, "UI", instance)
        set.addCopied(0x0008, 0x0020, "DA", patient?.studyDate ?? "")
        set.addCopied(0x0008, 0x0030, "TM", patient?.studyTime ?? "")
        set.addCopied(0x0008, 0x0050, "SH", patient?.accessionNumber ?? "")
        set.add(0x0008, 0x0060, "CS", modality)
        set.add(0x0008, 0x0064, "CS", "WSD")
        set.addCopied(0x0008, 0x0090, "PN", patient?.referringPhysician ?? "")
        set.add(0x0008, 0x103E, "LO", "FluoroStream annotated run")
        // The source instance (Source Image Sequence) and its series (Referenced Series Sequence), with --keep-phi.
        var sourceImage: DICOMElements?
        if let sopClass = patient?.sourceSOPClassUID, let sopInstance = patient?.sourceSOPInstanceUID, Self.isUID(sopClass),
            Self.isUID(sopInstance)
        {
            var image = DICOMElements()
            image.add(0x0008, 0x1150, "UI", sopClass)
            image.add(0x0008, 0x1155, "UI", sopInstance)
            sourceImage = image
        }
        if let sourceImage, let seriesUID = patient?.sourceSeriesInstanceUID, Self.isUID(seriesUID) {
            var series = DICOMElements()
            series.addSequence(0x0008, 0x114A, items: [sourceImage])  // Referenced Instance Sequence
            series.add(0x0020, 0x000E, "UI", seriesUID)
            set.addSequence(0x0008, 0x1115, items: [series])
        }
        set.add(
            0x0008, 0x2111, "ST", "Annotated by FluoroStream: devices, roadmap and measurements drawn on the frames")
        if let sourceImage { set.addSequence(0x0008, 0x2112, items: [sourceImage]) }
        set.addCopied(0x0010, 0x0010, "PN", patient?.name ?? "")
        set.addCopied(0x0010, 0x0020, "LO", patient?.id ?? "")
        set.addCopied(0x0010, 0x0030, "DA", patient?.birthDate ?? "")
        set.addCopied(0x0010, 0x0040, "CS", patient?.sex ?? "")
        if patient == nil {
            set.add(0x0012, 0x0062, "CS", "YES")  // Patient Identity Removed
            set.add(0x0012, 0x0063, "LO", "FluoroStream: identifiers left empty, new UIDs")
        }
        // Frames are indexed by Frame Time, or by a Frame Label Vector of their numbers where the run has no frame
        // rate (while the labels fit the element's 16-bit length).
        var frameIncrementPointer: Data?
        if let frameTimeMilliseconds {
            set.add(0x0018, 0x1063, "DS", String(format: "%.4g", frameTimeMilliseconds))
            frameIncrementPointer = Data([0x18, 0x00, 0x63, 0x10])
        } else if recorded > 0 {
            let labels = (1...recorded).map(String.init).joined(separator: "\\")
            if labels.utf8.count < 65534 {
                set.add(0x0018, 0x2002, "SH", labels)
                frameIncrementPointer = Data([0x18, 0x00, 0x02, 0x20])
            }
        }
        set.add(0x0020, 0x000D, "UI", study)
        set.add(0x0020, 0x000E, "UI", series)
        set.addCopied(0x0020, 0x0010, "SH", patient?.studyID ?? "")
        set.add(0x0020, 0x0011, "IS", "1")
        set.add(0x0020, 0x0013, "IS", "1")
        set.add(0x0020, 0x0020, "CS", "")
        set.add(0x0020, 0x0060, "CS", "")
        set.add(0x0028, 0x0002, "US", UInt16(3))
        set.add(0x0028, 0x0004, "CS", compression.photometricInterpretation)
        set.add(0x0028, 0x0006, "US", UInt16(0))
        set.add(0x0028, 0x0008, "IS", String(recorded))
        if let frameIncrementPointer { set.add(0x0028, 0x0009, "AT", frameIncrementPointer) }
        set.add(0x0028, 0x0010, "US", UInt16(geometry.height))
        set.add(0x0028, 0x0011, "US", UInt16(geometry.width))
        set.add(0x0028, 0x0100, "US", UInt16(8))
        set.add(0x0028, 0x0101, "US", UInt16(8))
        set.add(0x0028, 0x0102, "US", UInt16(7))
        set.add(0x0028, 0x0103, "US", UInt16(0))
        set.add(0x0028, 0x0301, "CS", "YES")  // Burned In Annotation: the overlays are drawn into the pixels
        if compression == .jpeg, let compressionRatio {
            set.add(0x0028, 0x2110, "CS", "01")
            set.add(0x0028, 0x2112, "DS", String(format: "%.4g", compressionRatio))
            set.add(0x0028, 0x2114, "CS", "ISO_10918_1")
        }
        set.add(0x0029, 0x0010, "LO", "FLUOROSTREAM 1")
        set.add(0x0029, 0x1000, "UT", measurements)
        set.addHeader(0x7FE0, 0x0010, "OB", length: pixelLength)
        file.append(set.data)
        return file
    }

    /// Whether `text` is a valid DICOM UID (UI: up to 64 digits and dots).
    static func isUID(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || $0 == 0x2E }
    }

    /// Whether `text` is a valid DICOM code string (CS: up to 16 upper-case letters, digits, space, underscore).
    static func isCodeString(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 16
            && text.utf8.allSatisfy { (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x20 || $0 == 0x5F }
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
