import ArgumentParser
import Foundation
import FluoroCore
import FluoroPublish
import FluoroVision

/// `fluoro subscribe`: a subscriber that saves PNG snapshots and records the measurements it receives.
struct Subscribe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Subscribe to a FluoroStream publisher: save PNG snapshots and record the measurements.",
        discussion: """
            Prints a summary per frame with --print, writes every N-th annotated frame as DIR/frame-NNNNNN.png \
            (frame-NNNNNN.jpg as sent from a --jpeg publisher) with \
            --snapshots DIR, and appends each frame's JSON header as one line to --measurements FILE. Ends after \
            --frames frames, at the publisher's end-of-stream message, or when nothing arrives for --timeout \
            seconds; reports frames received and frames lost (before the first frame received, from its sequence \
            number; in gaps of the sequence; after the last received, from the end-of-stream message). Exits with \
            an error when no frame arrives at all.
            """)

    @Argument(help: "The publisher's address: tcp://HOST:PORT (HOST:PORT for short), ipc://PATH.")
    var address = PublisherAddress.defaultEndpoint
    @Option(help: "Folder for PNG snapshots of the annotated frames.")
    var snapshots: String?
    @Option(parsing: .unconditional, help: "Save every N-th frame received as a snapshot.")
    var every = 30
    @Option(help: "Append each frame's measurements (its JSON header) as one line to this file.")
    var measurements: String?
    @Option(parsing: .unconditional, help: "Stop after this many frames.")
    var frames: Int?
    @Option(parsing: .unconditional, help: "Stop when no frame arrives for this many seconds (up to 86400).")
    var timeout = 10.0
    @Flag(help: "Replace an existing --measurements file or snapshot.")
    var force = false
    @Flag(help: "Print one line per frame (frame, sequence, latency, motion, wire tip, roadmap state).")
    var print = false
    @Option(help: "This subscriber's CURVE certificate (NAME.key_secret), for an encrypted publisher.")
    var curveSecret: String?
    @Option(help: "The publisher's public CURVE certificate (server.key).")
    var curveServer: String?

    func run() throws {
        guard every > 0 else { throw ValidationError("--every must be positive") }
        guard timeout > 0, timeout <= 86_400 else { throw ValidationError("--timeout \(timeout) is outside (0, 86400] seconds") }
        if let frames, frames <= 0 { throw ValidationError("--frames must be positive") }
        ShutdownSignal.install()
        let client = try curveSecret.map { try CurveCertificate(path: $0) }
        let server = try curveServer.map { try CurveCertificate(path: $0) }
        let endpoint = try PublisherAddress.subscriberEndpoint(address)
        let subscriber = try ZeroMQSubscriber(address: endpoint, client: client, server: server)
        defer { subscriber.close() }
        if let snapshots { try FileManager.default.createDirectory(atPath: snapshots, withIntermediateDirectories: true) }
        // Named when the subscription ends (after --frames, the timeout or Ctrl-C).
        let log = try measurements.map { try OutputFile(path: $0, replace: force) }

        var received = 0, lost = 0, lostBeforeFirst = 0, saved = 0
        var lastSequence: Int?
        /// The publisher's frame count from its end-of-stream message.
        var streamFrames: Int?
        var silentSince = MonotonicClock.now()
        receiving: while frames.map({ received < $0 }) ?? true, !ShutdownSignal.requested {
            // In slices, so Ctrl-C is seen while the publisher is quiet.
            guard let parts = subscriber.receive(timeoutMilliseconds: 200) else {
                if Double(MonotonicClock.now() - silentSince) / 1e9 >= timeout { break receiving }
                continue
            }
            silentSince = MonotonicClock.now()
            guard parts.count == 2, let (header, headerText) = Self.header(of: parts[0]) else {
                throw FluoroError.malformed(path: address, detail: "a message that is not a FluoroStream frame (JSON header and RGB image)")
            }
            if header["end_of_stream"] as? Bool == true {
                streamFrames = (header["frames"] as? Int).map { min(max($0, 0), Self.largestCount) } ?? 0
                break receiving
            }
            // A raw image has exactly its shape's bytes; a JPEG (`--jpeg`) starts with the JPEG marker.
            let isJPEG = header["encoding"] as? String == "jpeg"
            guard let shape = header["shape"] as? [Int], shape.count == 3, shape[2] == 3,
                (1...FrameGeometry.maximumSide).contains(shape[0]), (1...FrameGeometry.maximumSide).contains(shape[1]),
                isJPEG ? parts[1].starts(with: [0xFF, 0xD8]) : parts[1].count == shape[0] * shape[1] * 3
            else {
                throw FluoroError.malformed(path: address, detail: "a message that is not a FluoroStream frame (JSON header and RGB image)")
            }
            received += 1
            // Numbers from the publisher are bounded before any arithmetic on them.
            if let sequence = (header["sequence"] as? Int).map({ min(max($0, 0), Self.largestCount) }) {
                if let lastSequence {
                    if sequence > lastSequence + 1 { lost += sequence - lastSequence - 1 }
                } else {
                    lostBeforeFirst = max(sequence, 0)
                }
                lastSequence = sequence
            }
            let index = (header["frame"] as? Int).map { min(max($0, 0), Self.largestCount) } ?? received - 1
            if let log { try log.write(headerText + [0x0A]) }
            if let snapshots, (received - 1) % every == 0 {
                let name = String(format: isJPEG ? "frame-%06d.jpg" : "frame-%06d.png", index)
                let snapshot = try OutputFile(path: (snapshots as NSString).appendingPathComponent(name), replace: force)
                if isJPEG {
                    try snapshot.write(parts[1])  // the publisher's JPEG as it came
                } else {
                    let rgb = header["channels"] as? String == "BGR" ? Self.swapRedAndBlue(parts[1]) : parts[1]
                    try snapshot.write(PNGEncoder.encode(rgb, width: shape[1], height: shape[0], channels: 3))
                }
                try snapshot.commit()
                saved += 1
            }
            if print { Swift.print(Self.summary(of: header)) }
        }
        try log?.commit()
        guard received > 0 else {
            if let streamFrames {
                throw FluoroError.messaging(detail: "\(endpoint): the stream ended (\(streamFrames) frames) before a frame arrived")
            }
            throw FluoroError.messaging(detail: "\(endpoint): no frame arrived within \(timeout) s")
        }
        let lostAfterLast = streamFrames.map { max($0 - (lastSequence ?? -1) - 1, 0) } ?? 0
        Swift.print(
            "\(endpoint): \(received) frames received, \(lostBeforeFirst + lost + lostAfterLast) lost (\(lostBeforeFirst) "
                + "before the first received, \(lost) in sequence gaps, \(lostAfterLast) after the last received), "
                + "\(saved) snapshots saved" + (streamFrames != nil ? "; the stream ended" : ""))
    }

    /// A message's FluoroStream header and its JSON text: the first part itself, or (`fluoro run --imagezmq`) the
    /// JSON text carried as imagezmq's `msg`.
    static func header(of part: [UInt8]) -> ([String: Any], [UInt8])? {
        guard let outer = try? JSONSerialization.jsonObject(with: Data(part)) as? [String: Any] else { return nil }
        if let text = outer["msg"] as? String, text.hasPrefix("{"),
            let inner = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        {
            return (inner, Array(text.utf8))
        }
        return (outer, part)
    }

    /// An interleaved three-channel image with its first and third channels exchanged (BGR to RGB).
    static func swapRedAndBlue(_ image: [UInt8]) -> [UInt8] {
        var swapped = image
        for index in stride(from: 0, to: image.count - 2, by: 3) {
            swapped[index] = image[index + 2]
            swapped[index + 2] = image[index]
        }
        return swapped
    }

    /// The largest sequence number or frame count taken from a message (2^52: beyond any stream's length).
    static let largestCount = 1 << 52

    /// One line for a frame's header.
    static func summary(of header: [String: Any]) -> String {
        var text = "frame \(header["frame"] ?? "?") seq \(header["sequence"] ?? "?")"
        if let latency = header["latency_ms"] as? [String: Double], let age = latency["age_at_publish"] {
            text += String(format: " age %.1f ms", age)
        }
        if let motion = header["motion"] as? [String: Any], let state = motion["state"] as? String {
            text += " motion \(state)"
            if let dx = motion["dx"] as? Double, let dy = motion["dy"] as? Double { text += String(format: " (%.2f, %.2f)", dx, dy) }
        }
        if let wire = header["guidewire"] as? [String: Any], let tip = wire["tip"] as? [Double], tip.count == 2 {
            text += String(format: " wire tip (%.1f, %.1f)", tip[0], tip[1])
        }
        if let roadmap = header["roadmap"] as? [String: Any], let state = roadmap["state"] as? String { text += " roadmap \(state)" }
        return text
    }
}
