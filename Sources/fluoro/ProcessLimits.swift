import Foundation

/// Limits of the `fluoro` process itself.
enum ProcessLimits {
    /// Raises the soft limit on open files to the hard limit: each subscriber connection costs a descriptor, and a
    /// burst of connections (docs/security.md) should meet the system's limit, not the default 1024.
    static func allowAllDescriptors() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
