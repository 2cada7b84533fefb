import CFluoroLinux
#if canImport(Glibc)
    import Glibc
#endif

/// A file the program writes (a recording, statistics, a converted run, a key), made so that nothing a user has is
/// destroyed and nothing half-written is ever left under the target's name.
///
/// - The target is refused before anything is written when it names one of the run's inputs, is not a regular file
///   (a device node, a symbolic link, a folder, a FIFO), or already exists and `replace` was not asked for.
/// - The bytes go to an unnamed temporary file in the target's folder (`O_TMPFILE`), created with the final
///   permissions from its first byte; `commit()` gives it the target's name in one step. On an error, a signal or a
///   crash before that, the kernel discards it: the target is untouched and no scratch file remains.
/// - Where the file system has no unnamed files, a hidden named file beside the target takes its place and is
///   removed on failure.
public final class OutputFile {
    /// The target path, as given.
    public let path: String
    /// The open file: write or read it directly (`write(_:)` writes all of a buffer).
    public let descriptor: Int32
    private let replace: Bool
    /// The hidden named file used where unnamed ones are not supported.
    private var namedTemporary: String?
    private var committed = false

    /// Opens a temporary file for `path` after checking that it may be written.
    /// - Parameters:
    ///   - mode: the permissions of the finished file (0o600 for a secret: no other user can read it at any time).
    ///   - replace: an existing regular file at `path` may be replaced (`--force`).
    ///   - inputs: the paths the run reads; `path` may not name any of them, even under another name.
    public init(path: String, mode: mode_t = 0o644, replace: Bool = false, inputs: [String] = []) throws {
        self.path = path
        self.replace = replace
        var target = stat()
        if lstat(path, &target) == 0 {
            let kind = target.st_mode & S_IFMT
            guard kind == S_IFREG else {
                let what =
                    kind == S_IFLNK
                    ? "a symbolic link"
                    : kind == S_IFDIR
                        ? "a folder"
                        : kind == S_IFCHR || kind == S_IFBLK ? "a device node" : kind == S_IFIFO ? "a FIFO" : "not a regular file"
                throw FluoroError.writeFailed(path: path, reason: "is \(what); refusing to replace it with a file")
            }
            for input in inputs {
                var source = stat()
                if stat(input, &source) == 0, source.st_dev == target.st_dev, source.st_ino == target.st_ino {
                    throw FluoroError.writeFailed(path: path, reason: "is the input \(input); writing it would destroy it")
                }
            }
            guard replace else {
                throw FluoroError.writeFailed(path: path, reason: "exists; pass --force to replace it")
            }
        }
        let folder = Self.folder(of: path)
        var descriptor = open(folder, fluoro_o_tmpfile() | O_RDWR | O_CLOEXEC, mode)
        if descriptor < 0, errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL {
            let base = path.split(separator: "/").last.map(String.init) ?? "output"
            let hidden = folder + "/." + base + ".\(getpid()).partial"
            descriptor = open(hidden, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, mode)
            if descriptor >= 0 { namedTemporary = hidden }
        }
        guard descriptor >= 0 else {
            throw FluoroError.writeFailed(path: path, reason: "cannot create a file in \(folder): \(Self.errnoText())")
        }
        _ = fchmod(descriptor, mode)  // the process umask may have narrowed it
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
        if !committed, let namedTemporary { unlink(namedTemporary) }
    }

    /// Writes all of `bytes` at the current offset (no allocation).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { throw FluoroError.writeFailed(path: path, reason: Self.errnoText()) }
            offset += written
        }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Flushes the file to disk and gives it the target's name (replacing an existing file only when allowed).
    public func commit() throws {
        guard !committed else { return }
        guard fsync(descriptor) == 0 else { throw FluoroError.writeFailed(path: path, reason: Self.errnoText()) }
        if let namedTemporary {
            if replace {
                guard rename(namedTemporary, path) == 0 else { throw FluoroError.writeFailed(path: path, reason: Self.errnoText()) }
            } else {
                guard link(namedTemporary, path) == 0 else { throw linkFailure() }
                unlink(namedTemporary)
            }
        } else {
            let handle = "/proc/self/fd/\(descriptor)"
            if replace {
                // Named beside the target first, then renamed over it: readers see the old file or the new one.
                let staging =
                    Self.folder(of: path) + "/." + (path.split(separator: "/").last.map(String.init) ?? "output")
                    + ".\(getpid()).new"
                unlink(staging)
                guard linkat(AT_FDCWD, handle, AT_FDCWD, staging, AT_SYMLINK_FOLLOW) == 0 else { throw linkFailure() }
                guard rename(staging, path) == 0 else {
                    unlink(staging)
                    throw FluoroError.writeFailed(path: path, reason: Self.errnoText())
                }
            } else {
                guard linkat(AT_FDCWD, handle, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 else { throw linkFailure() }
            }
        }
        committed = true
    }

    /// An unnamed scratch file in `path`'s folder, read and written through its descriptor (close it when done): it
    /// has no name at any time, so no crash or signal can leave it behind.
    public static func scratch(beside path: String) throws -> Int32 {
        let folder = folder(of: path)
        var descriptor = open(folder, fluoro_o_tmpfile() | O_RDWR | O_CLOEXEC, 0o600)
        if descriptor < 0, errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL {
            let named = folder + "/.fluoro-scratch.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
            descriptor = open(named, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0o600)
            if descriptor >= 0 { unlink(named) }  // open and nameless from here on
        }
        guard descriptor >= 0 else {
            throw FluoroError.writeFailed(path: path, reason: "cannot create a scratch file in \(folder): \(errnoText())")
        }
        return descriptor
    }

    private func linkFailure() -> FluoroError {
        errno == EEXIST
            ? .writeFailed(path: path, reason: "appeared while it was being written; pass --force to replace it")
            : .writeFailed(path: path, reason: Self.errnoText())
    }

    private static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
