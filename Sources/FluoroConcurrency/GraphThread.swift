#if canImport(Glibc)
    import Glibc
#endif
import CFluoroLinux

/// A joinable POSIX thread running one closure: how the graph makes its source and stage threads, and a
/// `HelperThread` or `WorkSplitter` its helper thread. The publisher makes none: libzmq runs its own I/O threads.
public final class GraphThread {
    private var thread = pthread_t()

    /// Starts `body` on a new thread named `name` (visible in `top -H` and debuggers).
    public init(name: String, body: @escaping @Sendable () -> Void) {
        final class Box { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
        let context = Unmanaged.passRetained(
            Box {
                fluoro_set_thread_name(name); body()
            }
        ).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                fluoro_set_thread_timer_slack_ns(1_000)
                box.body()
                return nil
            }, context)
        precondition(result == 0, "pthread_create failed: \(result)")
    }

    /// Waits for the thread to finish.
    public func join() { pthread_join(thread, nil) }
}
