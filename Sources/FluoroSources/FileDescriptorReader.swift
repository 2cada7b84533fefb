#if canImport(Glibc)
    import Glibc
#endif
import FluoroCore

/// Buffered reading from a file descriptor (a file or a pipe such as stdin) without per-read allocation.
final class FileDescriptorReader {
    /// The file's path, or "stdin", for error messages.
    let path: String
    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private let buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    /// A stop was requested while this reader waited for input (`interrupt()` or `InputInterruption`): reads end as
    /// at end of input.
    private(set) var interrupted = false
    /// Written by `interrupt()` to wake a read that waits.
    private let wake: (read: Int32, write: Int32)

    /// Opens `path` for reading; "-" means standard input.
    init(path: String) throws {
        if path == "-" {
            self.path = "stdin"
            descriptor = STDIN_FILENO
            ownsDescriptor = false
        } else {
            self.path = path
            // Without O_NONBLOCK, opening a FIFO waits for a writer, out of reach of a stop request; reads wait in
            // `waitForInput` instead, where a stop wakes them.
            descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            guard descriptor >= 0 else { throw FluoroError.cannotOpen(path: path, reason: Self.errnoText()) }
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
            ownsDescriptor = true
            var info = stat()
            if fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
                close(descriptor)
                throw FluoroError.cannotOpen(path: path, reason: "is a directory")
            }
        }
        buffer = .allocate(byteCount: 1 << 16, alignment: 64)
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            buffer.deallocate()
            if ownsDescriptor { close(descriptor) }
            throw FluoroError.cannotOpen(path: self.path, reason: "pipe: \(Self.errnoText())")
        }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC); _ = fcntl(end, F_SETFL, O_NONBLOCK) }
        wake = (ends[0], ends[1])
    }

    deinit {
        buffer.deallocate()
        if ownsDescriptor { close(descriptor) }
        close(wake.read)
        close(wake.write)
    }

    /// Wakes a read that waits for input and makes every later read end as at end of input. Any thread may call it.
    func interrupt() {
        var one: UInt8 = 1
        _ = Glibc.write(wake.write, &one, 1)
    }

    /// Reads up to and excluding the next newline into `line`. Returns false at a clean end of input;
    /// throws if the input ends inside the line or the line is longer than `limit`.
    func readLine(limit: Int, into line: inout [UInt8]) throws -> Bool {
        line.removeAll(keepingCapacity: true)
        while true {
            if start == end {
                guard try fill() else {
                    if line.isEmpty { return false }
                    throw FluoroError.truncated(path: path, detail: "input ends inside a header line")
                }
            }
            while start < end {
                let byte = buffer[start]
                start += 1
                if byte == 0x0A { return true }
                guard line.count < limit else {
                    throw FluoroError.malformed(path: path, detail: "header line longer than \(limit) bytes")
                }
                line.append(byte)
            }
        }
    }

    /// Reads exactly `count` bytes into `destination`; returns the number read, which is less than
    /// `count` only at the end of input.
    func read(into destination: UnsafeMutableRawPointer, count: Int) throws -> Int {
        var done = 0
        let buffered = min(end - start, count)
        if buffered > 0 {
            destination.copyMemory(from: buffer.baseAddress! + start, byteCount: buffered)
            start += buffered
            done = buffered
        }
        while done < count {
            guard waitForInput() else { break }
            let got = Glibc.read(descriptor, destination + done, count - done)
            if got > 0 { done += got; continue }
            if got == 0 { break }
            if errno == EINTR { continue }
            throw FluoroError.readFailed(path: path, reason: Self.errnoText())
        }
        return done
    }

    private func fill() throws -> Bool {
        start = 0
        end = 0
        while true {
            guard waitForInput() else { return false }
            let got = Glibc.read(descriptor, buffer.baseAddress!, buffer.count)
            if got > 0 { end = got; return true }
            if got == 0 { return false }
            if errno == EINTR { continue }
            throw FluoroError.readFailed(path: path, reason: Self.errnoText())
        }
    }

    /// Waits for data or an interruption; false (and `interrupted`) after an interruption.
    private func waitForInput() -> Bool {
        if !interrupted, InputInterruption.waitReadable(descriptor, orWake: wake.read) { return true }
        interrupted = true
        return false
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
