#if canImport(Glibc)
    import Glibc
#endif
import FluoroCore

/// A read-only memory map of a whole file, so a multi-gigabyte run is paged in as frames are decoded
/// instead of being read into memory.
final class MappedFile: @unchecked Sendable {
    let path: String
    let bytes: UnsafeRawBufferPointer

    init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FluoroError.cannotOpen(path: path, reason: FileDescriptorReader.errnoText()) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw FluoroError.readFailed(path: path, reason: FileDescriptorReader.errnoText()) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FluoroError.cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        guard size > 0 else { throw FluoroError.truncated(path: path, detail: "the file is empty") }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), base != MAP_FAILED else {
            throw FluoroError.readFailed(path: path, reason: "mmap: " + FileDescriptorReader.errnoText())
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count) }
}
