import FluoroCore
import Foundation

/// A run stored as a folder of image files, one frame each, read in name order: JPEG, BMP and PGM through
/// libjpeg-turbo, PNG through libpng (`FrameImageDecoder`). Public angiography datasets come this way.
///
/// Every frame must have the first frame's size; colour images are converted to grey. The frame rate is not in the
/// files: it is given (`frameRate`), else the graph's default applies. Files are read into a buffer sized once for
/// the largest file, so reading a frame allocates nothing in FluoroStream's code.
public final class FrameFolderSource: FrameSource {
    public let name: String
    public let geometry: FrameGeometry
    public let frameInterval: Double?
    public var frameCount: Int? { files.count }
    /// The frame files, in the order they are read.
    public let files: [String]

    private let decoder: FrameImageDecoder
    private let fileBytes: UnsafeMutableRawBufferPointer
    private let grey: UnsafeMutableBufferPointer<UInt8>
    private var nextIndex = 0

    /// The file name endings read as frames (case-insensitive).
    public static let extensions = ["jpg", "jpeg", "png", "bmp", "pgm"]

    /// Lists `folder`'s frame files; `frameRate` in frames per second (0.1...1000) when known.
    public init(folder: String, frameRate: Double? = nil) throws {
        let trimmed = folder.count > 1 && folder.hasSuffix("/") ? String(folder.dropLast()) : folder
        name = trimmed
        if let frameRate {
            guard (0.1...1000).contains(frameRate) else {
                throw FluoroError.invalidArgument("frame rate \(frameRate) is outside 0.1...1000 frames/s")
            }
        }
        frameInterval = frameRate.map { 1 / $0 }
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: trimmed)
        } catch {
            throw FluoroError.cannotOpen(path: trimmed, reason: "not a readable folder")
        }
        files = entries.filter { entry in
            guard !entry.hasPrefix("."), let dot = entry.lastIndex(of: ".") else { return false }
            return Self.extensions.contains(entry[entry.index(after: dot)...].lowercased())
        }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { trimmed + "/" + $0 }
        guard let first = files.first else {
            throw FluoroError.malformed(
                path: trimmed, detail: "no frame files (\(Self.extensions.joined(separator: ", "))) in the folder")
        }
        var largest = 0
        for file in files {
            var info = stat()
            guard stat(file, &info) == 0 else { throw FluoroError.cannotOpen(path: file, reason: String(cString: strerror(errno))) }
            largest = max(largest, Int(info.st_size))
        }
        guard largest <= 256 << 20 else {
            throw FluoroError.unsupported(path: trimmed, detail: "a frame file is larger than 256 MiB")
        }
        fileBytes = .allocate(byteCount: max(largest, 1), alignment: 64)
        decoder = try FrameImageDecoder()
        let size = try Self.read(first, into: fileBytes)
        let (width, height) = try decoder.size(of: UnsafeRawBufferPointer(rebasing: fileBytes[..<size]), path: first)
        geometry = try FrameGeometry(width: width, height: height, format: .grey8)
        grey = .allocate(capacity: geometry.pixelCount)
    }

    deinit {
        fileBytes.deallocate()
        grey.deallocate()
    }

    public func read(into frame: Frame) throws -> Bool {
        guard nextIndex < files.count else { return false }
        let path = files[nextIndex]
        let size = try Self.read(path, into: fileBytes)
        try decoder.decode(
            UnsafeRawBufferPointer(rebasing: fileBytes[..<size]), path: path, width: geometry.width, height: geometry.height,
            into: grey)
        for i in 0..<geometry.pixelCount { frame.pixels[i] = UInt16(grey[i]) }
        frame.index = nextIndex
        frame.sourceTime = Double(nextIndex) * (frameInterval ?? 0)
        nextIndex += 1
        return true
    }

    /// Reads the whole file at `path` into `buffer`; returns its size.
    private static func read(_ path: String, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FluoroError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var total = 0
        while total < buffer.count {
            let got = Glibc.read(descriptor, buffer.baseAddress! + total, buffer.count - total)
            if got < 0, errno == EINTR { continue }
            guard got >= 0 else { throw FluoroError.readFailed(path: path, reason: String(cString: strerror(errno))) }
            if got == 0 { break }
            total += got
        }
        return total
    }
}
