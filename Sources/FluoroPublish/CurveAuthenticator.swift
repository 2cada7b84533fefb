import CZeroMQ
import FluoroCore
import Foundation
import Synchronization

/// A CURVE server's settings (a publisher's or a relay's): its own key pair and the public keys of the clients it
/// admits.
public struct CurveSecurity: Sendable {
    public let server: CurveCertificate
    public let allowedClients: [String]

    /// `server` must carry its secret key; `allowedClients` are Z85 public keys.
    public init(server: CurveCertificate, allowedClients: [String]) throws {
        guard server.secretKey != nil else {
            throw FluoroError.invalidArgument("the serving CURVE certificate (--curve-secret) must be the secret one (NAME.key_secret)")
        }
        self.server = server
        self.allowedClients = allowedClients
    }
}

/// ZeroMQ's authentication protocol (ZAP, RFC 27) for the publisher: a handler on `inproc://zeromq.zap.01` in the
/// publisher's context that admits CURVE clients whose public key is on the allow-list and refuses everything
/// else (other keys, plain-text peers). libzmq asks it once per connection handshake, so it runs on its own small
/// thread, away from the frame path.
final class CurveAuthenticator: @unchecked Sendable {
    private var service: SocketServiceThread?
    /// Handshakes admitted and refused so far.
    let admitted = Atomic<Int>(0)
    let refused = Atomic<Int>(0)

    /// Binds the handler in `publisher`'s context; call before the publisher binds.
    init(sharingContextOf publisher: ZeroMQSocket, allowedKeys: [String]) throws {
        let socket = try ZeroMQSocket(type: ZMQ_REP, sharingContextOf: publisher)
        try socket.bind("inproc://zeromq.zap.01")
        let allowed = Set(allowedKeys.map(CurveCertificate.binary))
        // The closure holds this authenticator until `stop` lets the service go.
        service = SocketServiceThread(name: "fluoro-zap", socket: socket) { [self] request in
            // version, request id, domain, address, routing id, mechanism, credentials (CURVE: the client's key).
            // A REP socket must answer every request, a malformed one too.
            let admit =
                request.count >= 7 && String(decoding: request[0], as: UTF8.self) == "1.0"
                && String(decoding: request[5], as: UTF8.self) == "CURVE" && allowed.contains(request[6])
            if admit {
                admitted.add(1, ordering: .relaxed)
            } else {
                refused.add(1, ordering: .relaxed)
            }
            let status = admit ? "200" : "400", text = admit ? "OK" : "client key not allowed"
            try? socket.sendMessage([
                Array("1.0".utf8), request.count > 1 ? request[1] : [], Array(status.utf8), Array(text.utf8), [], [],
            ])
        }
    }

    /// Stops the handler and closes its socket (before the publisher's context is terminated).
    func stop() {
        service?.stop()
        service = nil
    }
}
