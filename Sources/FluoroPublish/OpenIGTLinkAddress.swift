#if canImport(Glibc)
    import Glibc
#endif
import FluoroCore

/// Where the OpenIGTLink server listens: `--igtl [HOST:]PORT`, HOST an IPv4 address or `localhost` (the default,
/// 127.0.0.1), PORT 1–65535 (18944 is OpenIGTLink's usual port).
public struct OpenIGTLinkAddress: Sendable, CustomStringConvertible {
    /// The IPv4 address in network byte order.
    public let host: in_addr
    public let hostText: String
    public let port: UInt16

    public init(_ text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let portText = parts.last, let port = Int(portText), (1...65_535).contains(port) else {
            throw FluoroError.invalidArgument("--igtl '\(text)': expected [HOST:]PORT with PORT 1-65535 (e.g. 18944 or 127.0.0.1:18944)")
        }
        let hostText = parts.count == 2 ? String(parts[0]) : "127.0.0.1"
        var address = in_addr()
        guard inet_pton(AF_INET, hostText == "localhost" ? "127.0.0.1" : hostText, &address) == 1 else {
            throw FluoroError.invalidArgument("--igtl '\(text)': '\(hostText)' is not an IPv4 address")
        }
        self.host = address
        self.hostText = hostText
        self.port = UInt16(port)
    }

    /// Whether only this machine can connect (127.0.0.0/8).
    public var isLoopback: Bool { UInt32(bigEndian: host.s_addr) >> 24 == 127 }

    public var description: String { "\(hostText):\(port)" }
}
