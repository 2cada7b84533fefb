import CFluoroLinux
import FluoroConcurrency
import FluoroCore
import Synchronization

/// What happens when a stage cannot keep up.
public enum DeliveryPolicy: String, Sendable, CaseIterable {
    /// The newest frame wins: a stage works only on the newest frame waiting for it, older waiting frames
    /// are dropped (counted) and the source discards frames when every slot is in use. Latency stays bounded.
    case live
    /// Nothing is lost: the source waits for a free slot and every stage processes every frame.
    case replay
}

/// How the source is paced.
public enum Pacing: Sendable, Equatable {
    /// Read the next frame as soon as a slot is free.
    case asFastAsPossible
    /// Follow the recording's frame times, `speed` times faster (1 = real time).
    case recorded(speed: Double)
}

/// How a graph is built.
public struct GraphConfiguration: Sendable {
    public var policy: DeliveryPolicy
    public var pacing: Pacing
    /// Stop after this many frames from the source (nil: until the end of input).
    public var frameLimit: Int?
    /// Frame slots in the pool (nil: two per stage plus four).
    public var poolSize: Int?
    /// Frame interval used for pacing when the source does not know its own.
    public var defaultFrameInterval: Double
    /// Run the graph's threads under SCHED_FIFO at this priority (1-99), so a frame arriving wakes its
    /// stage at once even when other processes are busy; nil keeps the normal scheduler. Needs
    /// CAP_SYS_NICE (or an RLIMIT_RTPRIO allowance); without it the graph runs normally and says so in
    /// `RunStatistics.realtime`.
    public var realtimePriority: Int32?

    public init(
        policy: DeliveryPolicy = .replay, pacing: Pacing = .recorded(speed: 1), frameLimit: Int? = nil,
        poolSize: Int? = nil, defaultFrameInterval: Double = 1.0 / 30, realtimePriority: Int32? = nil
    ) {
        self.policy = policy
        self.pacing = pacing
        self.frameLimit = frameLimit
        self.poolSize = poolSize
        self.defaultFrameInterval = defaultFrameInterval
        self.realtimePriority = realtimePriority
    }
}

/// Runs a source and a chain of stages, each on its own thread, linked by SPSC rings of pool slot
/// indices: source → stage 0 → … → stage n-1 → back to the source. Frames are written once into a
/// preallocated slot and read in place by every stage; nothing is copied or allocated per frame.
public final class FrameGraph: @unchecked Sendable {
    /// Passed through the rings after the last frame.
    static let endOfStream = -1

    private let source: FrameSource
    private let stages: [Stage]
    private let configuration: GraphConfiguration
    private let pool: [Frame]
    /// `links[i]` feeds stage i; `links[stages.count]` returns slots to the source.
    private let links: [SPSCRing<Int>]
    private let doorbells: [Doorbell]
    /// A slot outside the pool, for frames the source must read but cannot keep (live overrun).
    private let discardFrame: Frame

    private let stopRequested = Atomic<Bool>(false)
    private let delivered = Atomic<Int>(0)
    private let settled = Atomic<Int>(0)

    /// Builds the pool and the rings and lets every stage prepare for the source's geometry.
    public init(source: FrameSource, stages: [Stage], configuration: GraphConfiguration = GraphConfiguration()) throws {
        guard !stages.isEmpty else { throw FluoroError.invalidArgument("a graph needs at least one stage") }
        let poolSize = configuration.poolSize ?? (2 * stages.count + 4)
        guard poolSize >= 2 else { throw FluoroError.invalidArgument("the frame pool needs at least 2 slots") }
        self.source = source
        self.stages = stages
        self.configuration = configuration
        pool = (0..<poolSize).map { Frame(slot: $0, geometry: source.geometry, stageCount: stages.count) }
        discardFrame = Frame(slot: poolSize, geometry: source.geometry, stageCount: stages.count)
        // A ring can hold the whole pool, so a push never finds it full.
        links = (0...stages.count).map { _ in SPSCRing<Int>(minimumCapacity: poolSize + 1) }
        doorbells = (0...stages.count).map { _ in Doorbell() }
        for slot in 0..<poolSize { _ = links[stages.count].push(slot) }
        for stage in stages { try stage.prepare(for: source.geometry) }
    }

    /// Frames that have left the last stage so far (safe to read from any thread).
    public var deliveredCount: Int { delivered.load(ordering: .relaxed) }

    /// Frames that have left the last stage so far, delivered or dropped there as late or after a failure (safe to
    /// read from any thread); frames dropped at the source are not counted.
    public var settledCount: Int { settled.load(ordering: .relaxed) }

    /// Asks the graph to stop reading; frames in flight still drain. Safe from any thread.
    public func requestStop() {
        stopRequested.store(true, ordering: .relaxed)
        source.cancel()
    }

    /// Runs until the input ends, the frame limit is reached or a stop is requested, then drains and
    /// returns the statistics; rethrows the first source or stage failure after the drain.
    /// `onTick` runs on the calling thread about every 100 ms while the graph runs.
    public func run(onTick: (() -> Void)? = nil) throws -> RunStatistics {
        let started = MonotonicClock.now()
        let stageResults = Mutex<[StageOutcome?]>(Array(repeating: nil, count: stages.count))
        let sourceResult = Mutex<SourceOutcome?>(nil)
        let finishedThreads = Atomic<Int>(0)
        let realtimeRefusals = Atomic<Int>(0)
        let priority = configuration.realtimePriority
        var threads: [GraphThread] = []
        for position in stages.indices {
            threads.append(
                GraphThread(name: "fl-\(stages[position].name)") { [self] in
                    if let priority, fluoro_set_thread_realtime(priority) != 0 { realtimeRefusals.add(1, ordering: .relaxed) }
                    let outcome = runStage(at: position)
                    stageResults.withLock { $0[position] = outcome }
                    finishedThreads.add(1, ordering: .releasing)
                })
        }
        threads.append(
            GraphThread(name: "fl-source") { [self] in
                if let priority, fluoro_set_thread_realtime(priority) != 0 { realtimeRefusals.add(1, ordering: .relaxed) }
                let outcome = runSource()
                sourceResult.withLock { $0 = outcome }
                finishedThreads.add(1, ordering: .releasing)
            })
        if let onTick {
            while finishedThreads.load(ordering: .acquiring) < threads.count {
                MonotonicClock.sleep(until: MonotonicClock.now() + 100_000_000)
                onTick()
            }
        }
        for thread in threads { thread.join() }
        let wall = Double(MonotonicClock.now() - started) / 1e9

        let sourceOutcome = sourceResult.withLock { $0! }
        let outcomes = stageResults.withLock { $0.map { $0! } }
        let statistics = RunStatistics(
            framesRead: sourceOutcome.read, droppedAtSource: sourceOutcome.dropped,
            framesDelivered: outcomes.last!.delivered,
            stages: outcomes.enumerated().map { position, outcome in
                StageStatistics(name: stages[position].name, latency: outcome.latency, busy: outcome.busy)
            },
            endToEnd: outcomes.last!.endToEnd, sourceLateness: sourceOutcome.lateness, wallSeconds: wall,
            policy: configuration.policy.rawValue,
            realtime: priority == nil
                ? "off"
                : (realtimeRefusals.load(ordering: .relaxed) == 0
                    ? "SCHED_FIFO \(priority!)"
                    : "refused by the system (needs CAP_SYS_NICE)"))
        if let failure = sourceOutcome.failure ?? outcomes.lazy.compactMap({ $0.failure }).first {
            throw GraphFailure(error: failure, statistics: statistics)
        }
        return statistics
    }

    // MARK: - Source thread

    private struct SourceOutcome: Sendable {
        var read = 0, dropped = 0
        var failure: FluoroError?
        /// Paced sources: how late each frame was handed to the first stage against its scheduled time
        /// (the operating system's wake-up jitter plus any slow read).
        var lateness: LatencySummary?
    }

    /// A pacing delay in nanoseconds: negative and NaN delays are none, and none is longer than a day (a frame time
    /// or speed from a file or option can make the quotient absurd).
    static func nanoseconds(_ seconds: Double) -> UInt64 {
        UInt64(clampingFinite: min(max(seconds.isNaN ? 0 : seconds, 0), 86_400) * 1e9)
    }

    private func runSource() -> SourceOutcome {
        var outcome = SourceOutcome()
        let free = links[stages.count], freeBell = doorbells[stages.count]
        let first = links[0], firstBell = doorbells[0]
        let interval = source.frameInterval ?? configuration.defaultFrameInterval
        var start: UInt64 = 0
        var firstSourceTime = 0.0
        var lateness = LatencyRecorder()
        var paced = false
        /// One bit per recent read (newest lowest): did it take longer than a frame interval?
        var slowReads: UInt8 = 0

        readLoop: while !stopRequested.load(ordering: .relaxed) {
            if let limit = configuration.frameLimit, outcome.read >= limit { break }
            // Take a free slot; in live mode never wait for one.
            var slot = free.pop()
            if slot == nil, configuration.policy == .replay {
                while slot == nil {
                    if stopRequested.load(ordering: .relaxed) { break readLoop }
                    _ = freeBell.wait(until: { free.hasElement }, timeoutNanoseconds: 20_000_000)
                    slot = free.pop()
                }
            }
            let frame = slot.map { pool[$0] } ?? discardFrame
            frame.recycle()
            let readStarted = MonotonicClock.now()
            do {
                guard try source.read(into: frame) else { break }
            } catch let error as FluoroError {
                outcome.failure = error
                if let slot { _ = free.push(slot) }
                break
            } catch {
                outcome.failure = .stageFailed(stage: "source", frame: outcome.read, detail: "\(error)")
                break
            }
            let readDone = MonotonicClock.now()
            if outcome.read == 0 {
                start = readDone
                firstSourceTime = frame.sourceTime
            }
            outcome.read += 1

            // A capture source stamps the frame with its capture time; latencies start there.
            var availableAt = frame.availableAt != 0 ? min(frame.availableAt, readDone) : readDone
            if case let .recorded(speed) = configuration.pacing, speed > 0 {
                // Is the source slower than the recording plays? Judged by the majority of the last eight reads
                // before this one, so one stall does not count as a slow source.
                let recentReads = min(outcome.read - 1, 8)
                let sourceIsSlow = recentReads > 0 && 2 * slowReads.nonzeroBitCount > recentReads
                slowReads = slowReads << 1 | (Double(readDone &- readStarted) / 1e9 > interval / speed ? 1 : 0)
                let offset = (frame.sourceTime - firstSourceTime) / speed
                let deadline = start &+ Self.nanoseconds(offset)
                if configuration.policy == .live, readDone > deadline &+ Self.nanoseconds(interval / speed), !sourceIsSlow {
                    // More than a frame behind the recording (a newer frame is due) and the source reads faster
                    // than the recording plays, so reading on catches up: a live feed would have moved on. A
                    // source slower than the recording never catches up; the frame just read is the newest
                    // there can be, and it goes on (its latency counts from the end of its read).
                    outcome.dropped += 1
                    if let slot { _ = free.push(slot) }
                    continue
                }
                // In slices, so a stop request is seen while a slow recording waits for its next frame time.
                while MonotonicClock.now() < deadline, !stopRequested.load(ordering: .relaxed) {
                    MonotonicClock.sleep(until: min(deadline, MonotonicClock.now() &+ 50_000_000))
                }
                availableAt = max(deadline, readDone)
                paced = true
            }
            guard let slot else {
                outcome.dropped += 1  // live, every slot in use: the newest frame cannot be kept
                continue
            }
            frame.availableAt = availableAt
            if paced { lateness.record(nanoseconds: MonotonicClock.now() &- availableAt) }
            _ = first.push(slot)
            firstBell.ring()
        }
        _ = first.push(Self.endOfStream)
        firstBell.ring()
        if paced { outcome.lateness = lateness.summary() }
        return outcome
    }

    // MARK: - Stage threads

    private struct StageOutcome: Sendable {
        var latency: LatencySummary
        var busy: LatencySummary
        var endToEnd: LatencySummary
        var delivered: Int
        var failure: FluoroError?
    }

    private func runStage(at position: Int) -> StageOutcome {
        let stage = stages[position]
        let input = links[position], inputBell = doorbells[position]
        let output = links[position + 1], outputBell = doorbells[position + 1]
        let isLast = position == stages.count - 1
        var latency = LatencyRecorder(), busy = LatencyRecorder(), endToEnd = LatencyRecorder()
        var delivered = 0
        var failure: FluoroError?

        func forward(_ slot: Int) {
            _ = output.push(slot)
            outputBell.ring()
            if isLast { settled.wrappingAdd(1, ordering: .relaxed) }
        }

        while true {
            guard let slot = input.pop() else {
                _ = inputBell.wait(until: { input.hasElement }, timeoutNanoseconds: 50_000_000)
                continue
            }
            if slot == Self.endOfStream {
                do { try stage.finish() } catch { failure = failure ?? Self.wrap(error, stage: stage.name, frame: -1) }
                if !isLast { forward(slot) }
                break
            }
            let frame = pool[slot]
            // Live: a newer frame is already waiting, so this one is stale.
            if !frame.isSkipped, configuration.policy == .live, let next = input.peek(), next != Self.endOfStream {
                frame.isSkipped = true
            }
            if frame.isSkipped || failure != nil {
                frame.isSkipped = true  // after a failure, later stages pass frames on untouched too
                latency.countDrop()
                if isLast { endToEnd.countDrop() }
                forward(slot)
                continue
            }
            let begin = MonotonicClock.now()
            do {
                try stage.process(frame)
            } catch {
                failure = Self.wrap(error, stage: stage.name, frame: frame.index)
                requestStop()
                frame.isSkipped = true
                latency.countDrop()
                if isLast { endToEnd.countDrop() }
                forward(slot)
                continue
            }
            let end = MonotonicClock.now()
            frame.stageExit[position] = end
            let previous = position == 0 ? frame.availableAt : frame.stageExit[position - 1]
            latency.record(nanoseconds: end &- previous)
            busy.record(nanoseconds: end &- begin)
            if isLast {
                endToEnd.record(nanoseconds: end &- frame.availableAt)
                delivered += 1
                self.delivered.store(delivered, ordering: .relaxed)
            }
            forward(slot)
        }
        return StageOutcome(
            latency: latency.summary(), busy: busy.summary(), endToEnd: endToEnd.summary(),
            delivered: delivered, failure: failure)
    }

    private static func wrap(_ error: Error, stage: String, frame: Int) -> FluoroError {
        if let error = error as? FluoroError { return error }
        return .stageFailed(stage: stage, frame: frame, detail: "\(error)")
    }
}

/// A run that failed part way: the error, and what was measured until then.
public struct GraphFailure: Error, CustomStringConvertible {
    public let error: FluoroError
    public let statistics: RunStatistics
    public var description: String { error.description }
}
