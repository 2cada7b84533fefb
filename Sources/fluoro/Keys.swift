import ArgumentParser
import Foundation
import FluoroPublish

/// `fluoro keys`: makes a CURVE key pair for the publisher or for a subscriber.
struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a CURVE key pair (certificates pyzmq's zmq.auth reads) for encrypted publishing.",
        discussion: """
            Writes FOLDER/NAME.key (the public certificate: give it to the other side) and FOLDER/NAME.key_secret \
            (keep it; readable by you only). The publisher runs with --curve-secret server.key_secret and \
            --curve-clients FOLDER_OF_CLIENT_KEYS; a pyzmq subscriber sets curve_secretkey/curve_publickey from its own \
            certificate and curve_serverkey from server.key.
            """)

    @Option(name: .shortAndLong, help: "Folder to write the certificates into (made if missing).")
    var out: String
    @Option(help: "Certificate name, e.g. server or the subscriber's name.")
    var name: String
    @Flag(help: "Replace an existing key pair of this name (clients holding the old public key lose access).")
    var force = false

    func run() throws {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw ValidationError("--name must be a plain file name, got '\(name)'")
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let certificate = try CurveCertificate.generate()
        for path in try certificate.write(directory: out, name: name, replace: force) { print("wrote \(path)") }
    }
}
