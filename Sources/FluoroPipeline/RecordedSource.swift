import FluoroCore
import FluoroSources
import Foundation

/// Opens a recorded run by its name: a folder of frame images (at `frameRate` frames/s when given), DICOM (.dcm
/// or a DICM prefix) or Y4M (.y4m, or - for stdin).
public func openRecordedSource(_ path: String, frameRate: Double? = nil) throws -> FrameSource {
    if path == "-" || path.lowercased().hasSuffix(".y4m") { return try Y4MReader(path: path) }
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
        throw FluoroError.cannotOpen(path: path, reason: "no such file")
    }
    if isFolder.boolValue { return try FrameFolderSource(folder: path, frameRate: frameRate) }
    // A FIFO or other stream cannot be probed without consuming it: it is read as Y4M, the one streamed format.
    guard isRegularFile(path) else { return try Y4MReader(path: path) }
    if isDICOM(path) { return try DICOMSource(path: path) }
    throw FluoroError.unsupported(
        path: path, detail: "unknown source type (expected synthetic, a .y4m or DICOM file, a folder of frames, or -)")
}

/// A .dcm name, or the 'DICM' prefix at byte 128.
public func isDICOM(_ path: String) -> Bool {
    path.lowercased().hasSuffix(".dcm") || hasDICOMPrefix(path)
}

/// Whether `path` is a regular file (not a FIFO, device or socket, which a probe would block on or consume).
private func isRegularFile(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
}

private func hasDICOMPrefix(_ path: String) -> Bool {
    guard isRegularFile(path), let handle = FileHandle(forReadingAtPath: path) else { return false }
    defer { try? handle.close() }
    guard let head = try? handle.read(upToCount: 132), head.count == 132 else { return false }
    return head.suffix(4).elementsEqual("DICM".utf8)
}
