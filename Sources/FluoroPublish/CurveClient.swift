import CZeroMQ
import FluoroCore

/// A CURVE client's settings: its own key pair and the public key of the server it connects to (a publisher or a
/// relay). `fluoro subscribe` and the upstream side of `fluoro relay` use it.
public struct CurveClient: Sendable {
    public let client: CurveCertificate
    public let server: CurveCertificate

    /// `client` must carry its secret key; `server` needs only its public one.
    public init(client: CurveCertificate, server: CurveCertificate) throws {
        guard client.secretKey != nil else {
            throw FluoroError.invalidArgument(
                "the client's CURVE certificate (--curve-secret, or --in-curve-secret for a relay) must be the secret one "
                    + "(NAME.key_secret)")
        }
        self.client = client
        self.server = server
    }

    /// Makes `socket` a CURVE client of `server` (before it connects).
    func apply(to socket: ZeroMQSocket) throws {
        try socket.setOption(ZMQ_CURVE_PUBLICKEY, string: client.publicKey)
        try socket.setOption(ZMQ_CURVE_SECRETKEY, string: client.secretKey!)
        try socket.setOption(ZMQ_CURVE_SERVERKEY, string: server.publicKey)
    }
}
