import CFluoroLinux

/// Lets a consumer that found its ring empty sleep until the producer pushes (a futex event count).
///
/// Ringing costs an atomic increment and a load when nobody sleeps; no lock is taken on either side.
public final class Doorbell: @unchecked Sendable {
    private let bell: UnsafeMutablePointer<fluoro_doorbell>

    public init() {
        bell = .allocate(capacity: 1)
        fluoro_doorbell_init(bell)
    }

    deinit { bell.deallocate() }

    /// Wakes every thread sleeping in `wait(until:timeoutNanoseconds:)`.
    @inline(__always)
    public func ring() { fluoro_doorbell_ring(bell) }

    /// Returns as soon as `ready()` is true, sleeping between rings; gives up after `timeoutNanoseconds`
    /// of sleep and returns `ready()` then, so a caller can check for shutdown.
    public func wait(until ready: () -> Bool, timeoutNanoseconds: Int64) -> Bool {
        for _ in 0..<32 { if ready() { return true } }
        let seen = fluoro_doorbell_prepare(bell)
        if ready() {
            fluoro_doorbell_cancel(bell)
            return true
        }
        fluoro_doorbell_wait(bell, seen, timeoutNanoseconds)
        return ready()
    }
}
