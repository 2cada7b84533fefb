import CZeroMQ
import FluoroCore
import Foundation

/// A CURVE key pair (Z85 text, 40 characters each) in the certificate files pyzmq's `zmq.auth` writes and reads:
/// `NAME.key` holds the public key only (hand it to the other side: a client's goes into the publisher's allow-list
/// folder, the publisher's to each client) and `NAME.key_secret` both (keep it; it is written readable by its owner
/// only).
public struct CurveCertificate: Sendable, Equatable {
    public let publicKey: String
    /// Nil for a public certificate.
    public let secretKey: String?

    /// A new key pair from libzmq (libsodium's random source).
    public static func generate() throws -> CurveCertificate {
        var publicKey = [CChar](repeating: 0, count: 41), secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else {
            throw FluoroError.messaging(detail: "zmq_curve_keypair: \(ZeroMQSocket.lastError()) (libzmq without CURVE?)")
        }
        func text(_ key: [CChar]) -> String { String(decoding: key.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return CurveCertificate(publicKey: text(publicKey), secretKey: text(secretKey))
    }

    public init(publicKey: String, secretKey: String?) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Reads a certificate file (`public-key = "…"` and, in a secret certificate, `secret-key = "…"`).
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw FluoroError.cannotOpen(path: path, reason: "no such file or not readable")
        }
        var keys: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { continue }
            let name = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
            keys[name] = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t\"'"))
        }
        guard let publicKey = keys["public-key"], Self.isKey(publicKey) else {
            throw FluoroError.malformed(path: path, detail: "no valid public-key (40 Z85 characters) in this CURVE certificate")
        }
        if let secret = keys["secret-key"], !Self.isKey(secret) {
            throw FluoroError.malformed(path: path, detail: "secret-key is not 40 Z85 characters")
        }
        self.init(publicKey: publicKey, secretKey: keys["secret-key"])
    }

    /// Writes `NAME.key` and, for a pair, `NAME.key_secret` into `directory`; returns their paths. The secret file is
    /// readable by its owner only from its first byte (`OutputFile`); existing certificates are never replaced unless
    /// `replace` (a key pair in use would be lost).
    @discardableResult
    public func write(directory: String, name: String, replace: Bool = false) throws -> [String] {
        let stamp = ISO8601DateFormatter().string(from: Date())
        let paths = [".key", ".key_secret"].map { (directory as NSString).appendingPathComponent(name + $0) }
        // Both targets are checked before either is written, so a refusal leaves no half pair.
        let outputs =
            try [OutputFile(path: paths[0], mode: 0o644, replace: replace)]
            + (secretKey == nil ? [] : [OutputFile(path: paths[1], mode: 0o600, replace: replace)])
        for (index, output) in outputs.enumerated() {
            let secret = index == 1
            var text = "#   ****  Generated on \(stamp) by fluoro keys  ****\n"
            text +=
                secret
                ? "#   ZeroMQ CURVE **Secret** Certificate\n#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n"
                : "#   ZeroMQ CURVE Public Certificate\n#   Exchange securely, or verify its contents after exchange.\n\n"
            text += "metadata\ncurve\n    public-key = \"\(publicKey)\"\n"
            if secret, let secretKey { text += "    secret-key = \"\(secretKey)\"\n" }
            try output.write(Array(text.utf8))
        }
        for output in outputs { try output.commit() }
        return Array(paths.prefix(outputs.count))
    }

    /// The public keys of every `*.key` certificate in `directory` (the allow-list of clients).
    public static func publicKeys(inDirectory directory: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw FluoroError.cannotOpen(path: directory, reason: "not a readable folder of client certificates")
        }
        let keys = try names.filter { $0.hasSuffix(".key") }.sorted().map {
            try CurveCertificate(path: (directory as NSString).appendingPathComponent($0)).publicKey
        }
        guard !keys.isEmpty else {
            throw FluoroError.invalidArgument("\(directory): no client certificates (*.key) to allow; make them with fluoro keys")
        }
        return keys
    }

    /// 40 characters of the Z85 alphabet.
    static func isKey(_ text: String) -> Bool {
        let alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
        return text.count == 40 && text.allSatisfy(alphabet.contains)
    }

    /// The 32 key bytes of a Z85 key.
    static func binary(_ key: String) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 32)
        _ = zmq_z85_decode(&bytes, key)
        return bytes
    }
}
