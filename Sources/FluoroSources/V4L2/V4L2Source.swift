import FluoroCore
import Synchronization

/// Live frames from a V4L2 frame grabber as a `FrameSource`.
///
/// Each frame's capture time is the kernel's buffer timestamp (`Frame.availableAt`, so the pipeline's
/// latencies start when the frame was captured, not when it was read). Frames the device dropped are counted
/// from gaps in its sequence numbers. With `newestWins` (live), when several frames are waiting only the newest
/// is kept. With `reconnect`, a device that disappears, fails or stops delivering is reopened with back-off.
public final class V4L2Source: FrameSource {
    /// What happened during capture.
    public struct Counters: Sendable, Equatable {
        /// Frames handed to the pipeline.
        public var delivered = 0
        /// Frames the device itself dropped (gaps in its sequence numbers).
        public var lostByDevice = 0
        /// Frames overtaken by a newer one before they were read (live: the newest frame wins).
        public var overtaken = 0
        /// Frames the driver flagged as corrupt, not delivered.
        public var corrupt = 0
        /// Times the device was reopened after a fault.
        public var reconnects = 0
    }

    public let name: String
    public let geometry: FrameGeometry
    /// The device's frame interval (capture is paced by the device itself).
    public let frameInterval: Double?
    public var frameCount: Int? { nil }
    /// Counted so far; read them after the run (the source thread writes them).
    public private(set) var counters = Counters()

    private let settings: CaptureSettings
    private let newestWins: Bool
    private let reconnect: Bool
    private let log: @Sendable (String) -> Void
    private var capture: V4L2Capture?
    private var lastSequence: UInt32?
    private var position = -1
    private var firstTimestamp: UInt64?
    private let cancelled = Atomic<Bool>(false)

    /// Opens the device and starts streaming; fails with a message naming the device when it is missing, busy,
    /// or cannot give the format, size or rate asked for. `log` receives reconnection messages.
    public init(
        settings: CaptureSettings, newestWins: Bool, reconnect: Bool = false,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        guard settings.bufferCount >= 2, settings.bufferCount <= 32 else {
            throw FluoroError.invalidArgument("capture buffers must be 2...32, got \(settings.bufferCount)")
        }
        guard settings.timeout > 0 else { throw FluoroError.invalidArgument("the capture timeout must be positive") }
        self.settings = settings
        self.newestWins = newestWins
        self.reconnect = reconnect
        self.log = log
        let capture = try V4L2Capture(settings: settings)
        self.capture = capture
        name = capture.device.label
        geometry = try capture.geometry()
        frameInterval = capture.frameInterval
    }

    public func cancel() { cancelled.store(true, ordering: .relaxed) }

    public func read(into frame: Frame) throws -> Bool {
        let timeout = UInt64(clampingFinite: settings.timeout * 1e9)
        while !cancelled.load(ordering: .relaxed) {
            guard let capture else {
                try reopen()
                continue
            }
            do {
                // Wait in short slices so a stop request is noticed.
                let waitStarted = MonotonicClock.now()
                var next: CapturedBuffer?
                while next == nil {
                    if cancelled.load(ordering: .relaxed) { return false }
                    let waited = MonotonicClock.now() &- waitStarted
                    guard waited < timeout else {
                        throw FluoroError.deviceFailed(
                            device: settings.device,
                            detail: "no frame for \(settings.timeout) s: "
                                + "the device stopped delivering (is the video signal connected?)")
                    }
                    next = try capture.dequeue(timeoutNanoseconds: min(timeout - waited, 100_000_000))
                }
                var buffer = next!
                count(buffer)
                if newestWins {
                    while let newer = try capture.dequeue(timeoutNanoseconds: 0) {
                        try capture.requeue(buffer)
                        counters.overtaken += 1
                        buffer = newer
                        count(buffer)
                    }
                }
                if buffer.isCorrupt {
                    counters.corrupt += 1
                    try capture.requeue(buffer)
                    continue
                }
                guard buffer.bytesUsed == 0 || buffer.bytesUsed >= capture.frameBytes else {
                    try capture.requeue(buffer)
                    throw FluoroError.deviceFailed(
                        device: settings.device,
                        detail: "delivered a frame of \(buffer.bytesUsed) "
                            + "bytes; \(capture.width)x\(capture.height) '\(capture.pixelFormat.rawValue)' "
                            + "needs \(capture.frameBytes)")
                }
                capture.pixelFormat.copyLuma(
                    from: capture.data(of: buffer), bytesPerLine: capture.bytesPerLine,
                    width: capture.width, height: capture.height,
                    into: frame.pixels.baseAddress!)
                try capture.requeue(buffer)
                let first = firstTimestamp ?? buffer.timestamp
                firstTimestamp = first
                frame.index = position
                frame.sourceTime = Double(buffer.timestamp &- first) / 1e9
                // A stamp ahead of the clock is taken as now: a latency never starts in the future (vivid stamps a
                // frame with its nominal time, which can fall a few milliseconds after it is delivered).
                frame.availableAt = min(buffer.timestamp, MonotonicClock.now())
                counters.delivered += 1
                return true
            } catch let error as FluoroError {
                guard reconnect else { throw error }
                log("\(error); reconnecting")
                self.capture = nil
            }
        }
        return false
    }

    /// Books a dequeued buffer's place in the device's sequence: gaps are frames the device dropped.
    private func count(_ buffer: CapturedBuffer) {
        if let lastSequence {
            let gap = Int(buffer.sequence &- lastSequence) - 1
            if gap > 0, gap < 1 << 30 { counters.lostByDevice += gap; position += gap }
        }
        lastSequence = buffer.sequence
        position += 1
    }

    /// Opens the device again with back-off (0.25 s doubling to 4 s) until it streams or the run is stopped;
    /// the frame size and format must be what they were.
    private func reopen() throws {
        var delay = 0.25
        while !cancelled.load(ordering: .relaxed) {
            let deadline = MonotonicClock.now() + UInt64(clampingFinite: delay * 1e9)
            while MonotonicClock.now() < deadline, !cancelled.load(ordering: .relaxed) {
                MonotonicClock.sleep(until: min(deadline, MonotonicClock.now() + 50_000_000))
            }
            if cancelled.load(ordering: .relaxed) { return }
            let reopened: V4L2Capture
            do {
                reopened = try V4L2Capture(settings: settings)
            } catch let error as FluoroError {
                delay = min(delay * 2, 4)
                log("\(error); retrying in \(String(format2: delay)) s")
                continue
            }
            guard try reopened.geometry() == geometry else {
                throw FluoroError.unsupported(
                    path: settings.device,
                    detail: "after reconnecting the device gives "
                        + "\(try reopened.geometry()), not \(geometry)")
            }
            capture = reopened
            lastSequence = nil  // the driver's counter restarts
            counters.reconnects += 1
            log("\(settings.device): reconnected")
            return
        }
    }
}
