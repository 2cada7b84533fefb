#if canImport(Glibc)
    import Glibc
#endif

/// Wakes every input reader of the process that is waiting for data (a stalled pipe, a FIFO with no writer, a slow
/// stream), so a SIGINT or SIGTERM ends a run whose input has gone quiet, even while a source is still being
/// opened (one reader alone is woken by its source's `cancel()`).
///
/// Readers wait on the read end of a pipe as well as on their input; `interrupt()` writes a byte that is never
/// read, so the pipe stays readable for good. It is async-signal-safe: a SIGINT or SIGTERM handler may call it.
public enum InputInterruption {
    /// The pipe's read end (readable once `interrupt()` has been called) and its write end.
    private static let ends: (read: Int32, write: Int32) = {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return (-1, -1) }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC); _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        return (fds[0], fds[1])
    }()
    static var descriptor: Int32 { ends.read }

    /// Makes the pipe exist before any signal handler can run (its creation is not async-signal-safe).
    public static func prepare() { _ = ends }

    /// Wakes every waiting reader now and every later wait at once.
    public static func interrupt() {
        var one: UInt8 = 1
        _ = write(ends.write, &one, 1)
    }

    /// Waits until `input` can be read (true), or an interruption was requested or `wake` became readable (false).
    static func waitReadable(_ input: Int32, orWake wake: Int32) -> Bool {
        var fds = (
            pollfd(fd: input, events: Int16(POLLIN), revents: 0), pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wake, events: Int16(POLLIN), revents: 0)
        )
        return withUnsafeMutableBytes(of: &fds) { raw in
            let fd = raw.bindMemory(to: pollfd.self)
            while true {
                let ready = poll(fd.baseAddress, 3, -1)
                if ready < 0, errno == EINTR { continue }
                if fd[1].revents != 0 || fd[2].revents != 0 { return false }
                return true  // readable, hung up or in error: the read that follows says which
            }
        }
    }
}
