/// The parts of ZMTP 3.0 (ZeroMQ's wire protocol, RFC 23) that a PUB socket with NULL security speaks:
/// the greeting, the READY command, and the framing of message parts.
enum ZMTPWire {
    static let greetingSize = 64

    /// Our greeting: signature, version 3.0, mechanism NULL, not a server (ignored by NULL), filler.
    /// Version 3.0 rather than 3.1 keeps libzmq peers on subscriptions as messages (`\x01` + prefix); the
    /// SUBSCRIBE and CANCEL commands of 3.1 are understood too.
    static let greeting: [UInt8] = {
        var bytes = [UInt8](repeating: 0, count: greetingSize)
        bytes[0] = 0xFF
        bytes[8] = 1  // the "identity length + 1" of ZMTP 1.0 peers, as libzmq writes it
        bytes[9] = 0x7F
        bytes[10] = 3
        bytes[11] = 0
        for (offset, byte) in "NULL".utf8.enumerated() { bytes[12 + offset] = byte }
        return bytes
    }()

    /// The READY command announcing a PUB socket.
    static let ready: [UInt8] = command(name: "READY", body: property(name: "Socket-Type", value: "PUB"))

    /// What a peer's greeting says is wrong with it for us, or nil when it is a ZMTP 3 peer with NULL security.
    static func problem(withGreeting bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes[0] == 0xFF, bytes[9] & 1 == 1 else { return "not a ZMTP 3 peer (no ZeroMQ signature)" }
        guard bytes[10] >= 3 else { return "ZMTP version \(bytes[10]) is too old (3 or later needed)" }
        let mechanism = String(decoding: bytes[12..<32].prefix { $0 != 0 }, as: UTF8.self)
        guard mechanism == "NULL" else {
            return "it asks for \(mechanism) security; this publisher is plain text (a CURVE publisher needs --curve-secret)"
        }
        return nil
    }

    /// The bytes before a part's body: flags (more, long, command) and the size, 1 or 8 bytes, big-endian.
    /// Returns how many bytes were written (2 or 9).
    static func writePartHeader(size: Int, more: Bool, command: Bool = false, to destination: UnsafeMutableRawPointer) -> Int {
        let long = size > 255
        destination.storeBytes(of: UInt8((more ? 1 : 0) | (long ? 2 : 0) | (command ? 4 : 0)), as: UInt8.self)
        guard long else {
            destination.storeBytes(of: UInt8(size), toByteOffset: 1, as: UInt8.self)
            return 2
        }
        destination.storeBytes(of: UInt64(size).bigEndian, toByteOffset: 1, as: UInt64.self)
        return 9
    }

    /// The most bytes `writePartHeader` writes.
    static let maximumPartHeaderSize = 9

    /// A command part: flags, size, the name (length-prefixed) and `body`.
    static func command(name: String, body: [UInt8]) -> [UInt8] {
        let content = [UInt8(name.utf8.count)] + Array(name.utf8) + body
        var bytes = [UInt8](repeating: 0, count: maximumPartHeaderSize + content.count)
        let headerSize = bytes.withUnsafeMutableBytes { writePartHeader(size: content.count, more: false, command: true, to: $0.baseAddress!) }
        return Array(bytes[0..<headerSize]) + content
    }

    /// A metadata property of READY: a 1-byte name length, the name, a 4-byte big-endian value length, the value.
    static func property(name: String, value: String) -> [UInt8] {
        let count = UInt32(value.utf8.count)
        return [UInt8(name.utf8.count)] + Array(name.utf8)
            + [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)] + Array(value.utf8)
    }

    /// The properties of a READY command's body after its name, or nil when they are malformed.
    static func properties(in body: UnsafeRawBufferPointer) -> [String: String]? {
        var result: [String: String] = [:]
        var at = 0
        while at < body.count {
            let nameLength = Int(body[at])
            guard at + 1 + nameLength + 4 <= body.count else { return nil }
            let name = String(decoding: body[(at + 1)..<(at + 1 + nameLength)], as: UTF8.self)
            at += 1 + nameLength
            let valueLength = Int(body[at]) << 24 | Int(body[at + 1]) << 16 | Int(body[at + 2]) << 8 | Int(body[at + 3])
            at += 4
            guard at + valueLength <= body.count else { return nil }
            result[name] = String(decoding: body[at..<(at + valueLength)], as: UTF8.self)
            at += valueLength
        }
        return result
    }
}
