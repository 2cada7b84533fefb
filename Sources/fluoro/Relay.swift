import ArgumentParser
import FluoroCore
import FluoroPublish
import Foundation

/// `fluoro relay IN OUT`: passes a publisher's stream on to displays elsewhere on the network.
struct Relay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Relay a publisher's stream to many subscribers (libzmq's proxy, XSUB to XPUB).",
        discussion: """
            Connects to the publisher at IN and serves every message it sends, unchanged, to the subscribers that \
            connect to OUT, so displays across a network subscribe to the relay instead of the processing host. \
            OUT binds a loopback address unless the subscribers' side is encrypted (--curve-secret and \
            --curve-clients) or --insecure-plaintext is given; --in-curve-secret and --in-curve-server-key connect \
            to a CURVE publisher. The relay never waits for a display: one that falls --queue messages behind \
            loses later ones (gaps in `sequence`). Runs until Ctrl-C (or SIGTERM), then prints what it relayed.
            """)

    @Argument(help: ArgumentHelp("The publisher's address: tcp://HOST:PORT (HOST:PORT for short), ipc://PATH.", valueName: "in"))
    var input: String
    @Argument(
        help: ArgumentHelp(
            "The ZeroMQ address subscribers connect to, e.g. tcp://0.0.0.0:5556 (loopback unless encrypted or --insecure-plaintext).",
            valueName: "out"))
    var output: String

    @Flag(help: "Bind a non-loopback OUT without encryption (anyone on the network can read the frames).")
    var insecurePlaintext = false
    @Option(help: "Encrypt OUT with CURVE using this relay certificate (NAME.key_secret from fluoro keys); needs --curve-clients.")
    var curveSecret: String?
    @Option(help: "Folder of the client certificates (*.key) allowed to subscribe to OUT; every other client gets nothing.")
    var curveClients: String?
    @Option(help: "The relay's own CURVE client certificate (NAME.key_secret) for an encrypted publisher at IN.")
    var inCurveSecret: String?
    @Option(help: "The public CURVE certificate (NAME.key) of the publisher at IN.")
    var inCurveServerKey: String?
    @Option(
        parsing: .unconditional,
        help: "Messages queued for each subscriber (and from the publisher), 1 to 1000; beyond that, later ones are dropped for it.")
    var queue = 8
    @Option(parsing: .unconditional, help: "Subscribers served at once, 1 to 4096; connections beyond are shut down.")
    var maxSubscribers = ZeroMQRelay.defaultMaximumSubscribers

    func validate() throws {
        guard (1...1000).contains(queue) else { throw ValidationError("--queue \(queue) is outside 1...1000 messages") }
        guard (1...4096).contains(maxSubscribers) else {
            throw ValidationError("--max-subscribers \(maxSubscribers) is outside 1...4096")
        }
        guard (inCurveSecret == nil) == (inCurveServerKey == nil) else {
            throw ValidationError(
                "--in-curve-secret and --in-curve-server-key go together (the relay's secret certificate and the publisher's public one)")
        }
        guard (curveSecret == nil) == (curveClients == nil) else {
            throw ValidationError(
                "--curve-secret and --curve-clients go together (the relay's secret certificate and the allowed clients)")
        }
    }

    func run() throws {
        ShutdownSignal.install()
        ProcessLimits.allowAllDescriptors()
        let upstream = try PublisherAddress.subscriberEndpoint(input)
        let address = try PublisherAddress(output)
        let upstreamCurve = try inCurveSecret.map { secret in
            try CurveClient(client: CurveCertificate(path: secret), server: CurveCertificate(path: inCurveServerKey!))
        }
        let curve = try curveSecret.map { secret in
            try CurveSecurity(
                server: CurveCertificate(path: secret), allowedClients: CurveCertificate.publicKeys(inDirectory: curveClients!))
        }
        let relay = try ZeroMQRelay(
            upstream: upstream, address: address, upstreamCurve: upstreamCurve, curve: curve,
            allowPlaintextNonLoopback: insecurePlaintext, queue: Int32(clamping: queue), maximumSubscribers: maxSubscribers)
        FileHandle.standardError.write(Data("relaying \(upstream) to \(address); Ctrl-C stops\n".utf8))
        let statistics = try relay.run { ShutdownSignal.requested }
        print(
            "relayed \(statistics.messages) messages (\(String(format: "%.1f", Double(statistics.bytes) / 1e6)) MB) from "
                + "\(upstream) to \(address); \(statistics.subscriptionMessages) subscription message(s) from subscribers"
                + (relay.handshakes.map { "; CURVE: \($0.admitted) client(s) admitted, \($0.refused) refused" } ?? "")
                + (relay.refusedConnections.count > 0
                    ? "; \(relay.refusedConnections.count) connection(s) shut down (at most \(relay.refusedConnections.maximum) at once)"
                    : ""))
    }
}
