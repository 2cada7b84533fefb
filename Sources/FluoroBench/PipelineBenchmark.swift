import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPipeline
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift

/// A synthetic run with a contrast injection, generated once before the clock starts (so generating it costs the
/// pipeline nothing), played forward and then back and forth over its frames after the contrast has washed out:
/// the stream lasts as long as asked, with continuous motion and, once built, an active roadmap.
final class CachedRunSource: FrameSource {
    let name: String
    let geometry: FrameGeometry
    let frameInterval: Double?
    let frameCount: Int?
    private let frames: [[UInt16]]
    private let loopStart: Int
    private var position = 0

    init(size: Int, runFrames: Int, total: Int, fps: Double, seed: UInt64) throws {
        var parameters = SyntheticParameters()
        parameters.size = size
        parameters.frameCount = runFrames
        parameters.frameRate = fps
        parameters.seed = seed
        parameters.contrast = .init(start: runFrames / 6, peak: runFrames / 4, washedOut: runFrames / 2)
        let synthetic = try SyntheticSource(parameters: parameters)
        geometry = synthetic.geometry
        let frame = Frame(slot: 0, geometry: geometry, stageCount: 1)
        var frames: [[UInt16]] = []
        while try synthetic.read(into: frame) { frames.append(Array(frame.pixels)) }
        self.frames = frames
        loopStart = runFrames / 2 + 5
        name = "synthetic run (seed \(seed), \(runFrames) frames, then back and forth over frames \(loopStart)-\(runFrames - 1))"
        frameInterval = 1 / fps
        frameCount = total
    }

    /// A recorded run (`fluoro-bench pipeline --run RUN`), each pixel repeated to `size` when that is a multiple of the
    /// run's side, played forward and then back and forth over its second half.
    init(recorded: FrameSource, size: Int, total: Int, fps: Double) throws {
        let inner = recorded.geometry
        let factor = max(size / inner.width, 1)
        geometry = try FrameGeometry(
            width: inner.width * factor, height: inner.height * factor, format: inner.format, bitsStored: inner.bitsStored)
        let frame = Frame(slot: 0, geometry: inner, stageCount: 1)
        var frames: [[UInt16]] = []
        while try recorded.read(into: frame) {
            var pixels = [UInt16](repeating: 0, count: geometry.pixelCount)
            for y in 0..<geometry.height {
                for x in 0..<geometry.width { pixels[y * geometry.width + x] = frame.pixels[(y / factor) * inner.width + x / factor] }
            }
            frames.append(pixels)
        }
        guard frames.count >= 4 else { throw FluoroError.invalidArgument("\(recorded.name) has fewer than 4 frames to loop over") }
        self.frames = frames
        loopStart = frames.count / 2
        name =
            "\(recorded.name) (\(frames.count) frames, pixels repeated \(factor)×\(factor), then back and forth over frames \(loopStart)-\(frames.count - 1))"
        frameInterval = 1 / fps
        frameCount = total
    }

    /// The run's frame shown at stream position `position`.
    private func runFrame(at position: Int) -> Int {
        let count = frames.count, span = count - loopStart
        guard position >= count else { return position }
        let period = 2 * (span - 1), phase = (position - count) % period
        return phase < span - 1 ? count - 2 - phase : loopStart + 1 + (phase - (span - 1))
    }

    func read(into frame: Frame) throws -> Bool {
        guard position < frameCount! else { return false }
        frames[runFrame(at: position)].withUnsafeBufferPointer { source in
            frame.pixels.baseAddress!.update(from: source.baseAddress!, count: source.count)
        }
        frame.index = position
        frame.sourceTime = Double(position) * frameInterval!
        position += 1
        return true
    }
}

/// What `fluoro-bench pipeline --json` prints.
struct PipelineReport: Encodable {
    var size: Int, mode: String, method: String, frames: Int
    var statistics: RunStatistics
    var throughput: Double
    var allocationsPerFrame: Double?
    var residentMiB: [String: Double]
    var stolenPercent: Double
    /// Frames the publisher sent by copy because the subscriber still held every zero-copy buffer (nil: not publishing).
    var copiedFrames: Int?

    enum CodingKeys: String, CodingKey {
        case size, mode, method, frames, statistics, throughput = "throughput_fps"
        case allocationsPerFrame = "allocations_per_frame", residentMiB = "resident_mib", stolenPercent = "cpu_stolen_percent"
        case copiedFrames = "publisher_copied_frames"
    }
}

/// Every stage of `fluoro run --segmenter … --roadmap` (motion, segmentation, rendering, roadmap overlay,
/// publishing to a subscriber in another process that reads every frame) on a synthetic 16-bit run (or a recorded
/// one with `--run`), live at
/// `--fps` or replayed as fast as possible: per stage and end-to-end latency, throughput, drops, allocations per
/// frame in the steady state and resident memory.
func pipelineBenchmark() throws {
    let size = option("--size", 1024), frames = option("--frames", 3000), fps = option("--fps", 30)
    let live = !arguments.contains("--replay"), json = arguments.contains("--json")
    let priority = option("--realtime", 0)
    let parameters = segmentationParameters()
    // --run RUN: a recorded run (a frame folder, DICOM or Y4M) instead of the synthetic one.
    let source =
        try textOption("--run").map {
            try CachedRunSource(recorded: try openRecordedSource($0, frameRate: Double(fps)), size: size, total: frames, fps: Double(fps))
        }
        ?? CachedRunSource(size: size, runFrames: option("--run-frames", 150), total: frames, fps: Double(fps), seed: 2301)
    // --no-split: every stage on its own thread only (no helper thread sharing a frame's rows).
    let splitting = !arguments.contains("--no-split")
    // --no-overlap: motion and segmentation as two stages, one after the other on each frame.
    let overlapping = !arguments.contains("--no-overlap")
    let port = 40_000 + Int.random(in: 0..<10_000)
    let address = try PublisherAddress("tcp://127.0.0.1:\(port)")
    // The pipeline `fluoro run --segmenter METHOD --roadmap` composes, publishing to a subscriber in another process.
    var options = PipelineOptions()
    options.policy = live ? .live : .replay
    options.segmentation = parameters
    options.overlapMotionAndSegmentation = overlapping
    options.splitting = splitting
    // --roadmap-method subtraction: the subtraction roadmap instead of the dynamic one.
    var roadmap = RoadmapParameters()
    if let text = textOption("--roadmap-method") {
        guard let method = RoadmapMethod(rawValue: text) else {
            throw FluoroError.invalidArgument("--roadmap-method \(text): expected vesselness or subtraction")
        }
        roadmap.method = method
    }
    options.roadmap = roadmap
    // --no-publish: the stages alone, so the allocation count is FluoroStream's code only (libzmq allocates a record
    // per message part it sends).
    let publishing = !arguments.contains("--no-publish")
    if publishing { options.publishing = PipelineOptions.Publishing(address: address) }
    let pipeline = try PipelineBuilder.build(for: source, options: options)
    let stages = pipeline.stages, publisher = pipeline.publisher
    if let publisher {
        startDrainingSubscriber(address.endpoint)
        guard publisher.waitForSubscribers(1, timeoutSeconds: 5) else { fatalError("the subscriber did not connect") }
    }
    let graph = try FrameGraph(
        source: source, stages: stages,
        configuration: GraphConfiguration(
            policy: live ? .live : .replay, pacing: live ? .recorded(speed: 1) : .asFastAsPossible,
            realtimePriority: priority > 0 ? Int32(priority) : nil))
    let mode = live ? "live at \(fps) fps" : "replay as fast as possible"
    if !json {
        print(
            "pipeline: \(source.geometry.width)x\(source.geometry.height) \(source.geometry.format == .grey8 ? "8" : "16")-bit, roadmap \(roadmap.method.rawValue), \(stages.map(\.name).joined(separator: " → ")), \(mode), \(frames) frames, "
                + "segmenter \(parameters.method.rawValue), \(splitting ? "stages split over two threads" : "one thread per stage"); "
                + "source: \(source.name)")
    }

    var resident: [String: Double] = ["before": residentMegabytes()]
    let cpuBefore = CPUTimes.read()
    // The window closes 10 frames before the end; in replay the first stages run a pool's worth of frames ahead
    // (2 per stage + 4), finish early and summarise their statistics (which allocates): close it before that.
    let windUp = live ? 10 : 2 * stages.count + 4 + 10
    let allocations = SteadyStateAllocations(warmUp: min(150, frames / 4), end: frames - windUp) {
        resident["after warm-up"] = residentMegabytes()
    }
    let statistics = try graph.run { allocations.tick(settled: graph.settledCount) }
    allocations.stop(settled: graph.settledCount)
    let stolen = CPUTimes.read().stolenShare(since: cpuBefore)
    resident["end"] = residentMegabytes()
    resident["peak"] = residentMegabytes(field: "VmHWM:")
    let allocationsPerFrame = allocations.perFrame
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let report = PipelineReport(
            size: size, mode: live ? "live" : "replay", method: parameters.method.rawValue,
            frames: frames, statistics: statistics, throughput: statistics.throughput,
            allocationsPerFrame: allocationsPerFrame, residentMiB: resident, stolenPercent: stolen * 100,
            copiedFrames: publisher?.copied)
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    } else {
        printPipelineReport(statistics: statistics, allocations: allocations, publisher: publisher, resident: resident, stolen: stolen)
    }
    try checkAllocationCeiling(allocationsPerFrame)
}

/// `--max-allocations-per-frame X`: fails the benchmark (exit status 1) when the steady state allocated more, or
/// when allocations could not be counted (no interposer preloaded). CI runs it as the frame path's allocation check.
private func checkAllocationCeiling(_ perFrame: Double?) throws {
    guard let index = arguments.firstIndex(of: "--max-allocations-per-frame"), arguments.index(after: index) < arguments.endIndex,
        let ceiling = Double(arguments[arguments.index(after: index)]), ceiling.isFinite, ceiling >= 0
    else { return }
    guard let perFrame else {
        print("allocation check: allocations were not counted (run through tools/bench, which preloads the counter)")
        exit(1)
    }
    guard perFrame <= ceiling else {
        print(String(format: "allocation check FAILED: %.3f allocations per frame, ceiling %.3f", perFrame, ceiling))
        exit(1)
    }
    print(String(format: "allocation check passed: %.3f allocations per frame, ceiling %.3f", perFrame, ceiling))
}

/// The benchmark's table and counters on the terminal.
private func printPipelineReport(
    statistics: RunStatistics, allocations: SteadyStateAllocations, publisher: ZeroMQPublisher?, resident: [String: Double],
    stolen: Double
) {
    print(statistics.formattedTable())
    print(
        String(
            format: "throughput %.1f frames/s; dropped: %d at the source, %d in the stages", statistics.throughput,
            statistics.droppedAtSource, statistics.stages.reduce(0) { $0 + $1.latency.dropped }))
    allocations.report()
    if let publisher {
        print("publisher: \(publisher.copied) frames sent by copy (every zero-copy buffer still held by the subscriber)")
    }
    print(
        String(
            format: "resident memory: %.1f MiB before, %.1f MiB after the warm-up, %.1f MiB at the end, peak %.1f MiB",
            resident["before"]!, resident["after warm-up"] ?? 0, resident["end"]!, resident["peak"]!))
    print(String(format: "CPU time stolen by the hypervisor during the run: %.1f %% (a noisy neighbour lengthens the tail)", stolen * 100))
}

/// The machine's CPU time counters (/proc/stat, all CPUs, in clock ticks): how much time the hypervisor gave to
/// other guests while ours wanted it ("steal").
struct CPUTimes {
    var total: Double = 0
    var stolen: Double = 0

    static func read() -> CPUTimes {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return CPUTimes() }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
        return CPUTimes(total: fields.prefix(8).reduce(0, +), stolen: fields.count > 7 ? fields[7] : 0)
    }

    /// The share (0…1) of the CPU time since `earlier` that was stolen.
    func stolenShare(since earlier: CPUTimes) -> Double {
        let total = self.total - earlier.total
        return total > 0 ? (stolen - earlier.stolen) / total : 0
    }
}

/// Counts allocations (all threads) between a warm-up and the end of a run, from the graph's 100 ms tick, by the
/// frames that have left the graph (delivered or dropped as late: a run that drops frames still reaches its end
/// before the graph winds down, whose own allocations are not the steady state's).
/// Counting works only with the interposer library preloaded (tools/bench does it); `perFrame` is nil otherwise.
final class SteadyStateAllocations {
    private let warmUp: Int, end: Int
    private let onStart: () -> Void
    private let countingWorks: Bool
    private var window: (startFrame: Int, endFrame: Int)?
    private var counting = false

    /// Counts from `warmUp` frames out of the graph to `end`; `onStart` runs when counting starts.
    init(warmUp: Int, end: Int, onStart: @escaping () -> Void = {}) {
        self.warmUp = warmUp
        self.end = end
        self.onStart = onStart
        // Allocate once while hooked: the count moves only when the interposer is preloaded.
        MallocInterposerSwift.initialize()
        MallocInterposerSwift.hook()
        let probe = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        probe.deallocate()
        MallocInterposerSwift.unhook()
        countingWorks = MallocInterposerSwift.getStatistics().mallocCount > 0
    }

    /// Called from the graph's tick with the frames out of the graph so far.
    func tick(settled: Int) {
        if !counting, window == nil, settled >= warmUp {
            onStart()
            MallocInterposerSwift.initialize()  // reset the counters
            MallocInterposerSwift.hook()
            counting = true
            window = (settled, settled)
        } else if counting, settled >= end {
            stop(settled: settled)
        }
    }

    /// Stops counting (if it still is) at `settled` frames out of the graph.
    func stop(settled: Int) {
        guard counting else { return }
        MallocInterposerSwift.unhook()
        counting = false
        window!.endFrame = settled
    }

    /// Frames in the counted window.
    var frames: Int { window.map { $0.endFrame - $0.startFrame } ?? 0 }

    /// Allocations per frame in the window, when counting worked.
    var perFrame: Double? {
        guard countingWorks, frames > 0 else { return nil }
        return Double(MallocInterposerSwift.getStatistics().mallocCount) / Double(frames)
    }

    func report() {
        if let perFrame {
            print(
                String(
                    format:
                        "allocations in steady state: %.3f per frame over %d frames (the 100 ms progress tick on the main thread included)",
                    perFrame, frames))
        } else {
            print("allocations: not counted (run through tools/bench, which preloads libMallocInterposerSwift.so)")
        }
    }
}
