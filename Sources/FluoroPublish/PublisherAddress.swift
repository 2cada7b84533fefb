import FluoroCore

/// Where a publisher binds, and whether that stays on this machine.
public struct PublisherAddress: Sendable, Equatable, CustomStringConvertible {
    /// The ZeroMQ endpoint, e.g. `tcp://127.0.0.1:5555` (the default) or `ipc:///tmp/fluoro`.
    public let endpoint: String

    public static let defaultEndpoint = "tcp://127.0.0.1:5555"

    public init(_ endpoint: String) throws {
        guard endpoint.hasPrefix("tcp://") || endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") else {
            throw FluoroError.invalidArgument("publish address '\(endpoint)' must start with tcp://, ipc:// or inproc://")
        }
        self.endpoint = endpoint
    }

    /// True when only processes on this machine can connect: ipc, inproc, or tcp on a loopback address.
    public var isLocalOnly: Bool {
        guard endpoint.hasPrefix("tcp://") else { return true }
        var host = String(endpoint.dropFirst("tcp://".count))
        if host.hasPrefix("[") {
            host = String(host.dropFirst().prefix { $0 != "]" })
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        return host == "localhost" || host == "::1" || host == "lo" || host.hasPrefix("127.")
    }

    public var description: String { endpoint }
}
