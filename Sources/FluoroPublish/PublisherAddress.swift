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

    /// The endpoint a subscriber connects to: a ZeroMQ endpoint as given, or `HOST:PORT` read as
    /// `tcp://HOST:PORT`; anything else is refused by name.
    public static func subscriberEndpoint(_ text: String) throws -> String {
        if text.contains("://") { return try PublisherAddress(text).endpoint }
        let port = text.lastIndex(of: ":").map { text[text.index(after: $0)...] }
        guard let port, let number = Int(port), (1...65_535).contains(number), text.count > port.count + 1 else {
            throw FluoroError.invalidArgument(
                "address '\(text)' is neither HOST:PORT nor an endpoint starting with tcp://, ipc:// or inproc://")
        }
        return "tcp://" + text
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

    /// Refuses a non-loopback address that would carry frames in plain text: frames are patient images. `encrypted`:
    /// CURVE is on; `allowPlaintext`: `--insecure-plaintext` was given.
    public func checkExposure(encrypted: Bool, allowPlaintext: Bool) throws {
        guard isLocalOnly || encrypted || allowPlaintext else {
            throw FluoroError.cannotBind(
                address: endpoint,
                reason: "not a loopback address; frames are patient images "
                    + "and would be sent in plain text to the network (use 127.0.0.1, encrypt with "
                    + "--curve-secret and --curve-clients (see fluoro keys), or pass "
                    + "--insecure-plaintext to do it anyway)")
        }
    }

    public var description: String { endpoint }
}
