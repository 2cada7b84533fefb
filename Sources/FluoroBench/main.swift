import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

/// Benchmarks of the frame graph. Run through tools/bench (which preloads the allocation counter):
///   fluoro-bench ring  [--items N] [--repeats R]
///   fluoro-bench graph [--size 1024] [--frames 600] [--fps 30] [--stages 3] [--realtime 0] [--publish] [--motion] [--segment]
///                      [--method ridge|learned]
///   fluoro-bench segment [FILE.y4m | --size 1024] [--json] [--method ridge|learned]
///   fluoro-bench pipeline [--size 1024] [--frames 3000] [--fps 30] [--replay] [--method ridge|learned] [--no-split] [--no-overlap] [--json]
///                         [--realtime 0] [--run-frames 150] [--no-publish] [--max-allocations-per-frame X]
OpenBLASKernel.restartWithBetterKernelIfNeeded()
let arguments = CommandLine.arguments.dropFirst()
func option(_ name: String, _ fallback: Int) -> Int {
    guard let index = arguments.firstIndex(of: name), arguments.index(after: index) < arguments.endIndex,
        let value = Int(arguments[arguments.index(after: index)])
    else { return fallback }
    return value
}

/// The segmentation settings `--method ridge|learned` asks for (ridge when absent).
func segmentationParameters() -> SegmentationParameters {
    var parameters = SegmentationParameters()
    if let index = arguments.firstIndex(of: "--method"), arguments.index(after: index) < arguments.endIndex,
        let method = SegmentationMethod(rawValue: arguments[arguments.index(after: index)])
    {
        parameters.method = method
    }
    return parameters
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1)]
}

// MARK: - Ring

/// The same hand-off through a queue guarded by a lock, as the baseline.
final class LockedQueue: @unchecked Sendable {
    private let storage = Mutex<[Int]>([])
    init() { storage.withLock { $0.reserveCapacity(1 << 16) } }
    func push(_ value: Int) -> Bool {
        storage.withLock { queue in
            guard queue.count < 1024 else { return false }
            queue.append(value)
            return true
        }
    }
    func pop(into batch: inout [Int]) {
        storage.withLock { queue in
            batch.append(contentsOf: queue)
            queue.removeAll(keepingCapacity: true)
        }
    }
}

func measureRing(items: Int) -> Double {
    let ring = SPSCRing<Int>(minimumCapacity: 1024)
    let producer = Thread {
        var next = 0
        while next < items { if ring.push(next) { next &+= 1 } }
    }
    let start = MonotonicClock.now()
    producer.start()
    var expected = 0, checksum = 0
    while expected < items {
        if let value = ring.pop() {
            checksum &+= value
            expected &+= 1
        }
    }
    let seconds = Double(MonotonicClock.now() - start) / 1e9
    precondition(checksum == items * (items - 1) / 2, "lost or duplicated items")
    return Double(items) / seconds / 1e6
}

func measureLockedQueue(items: Int) -> Double {
    let queue = LockedQueue()
    let producer = Thread {
        var next = 0
        while next < items { if queue.push(next) { next &+= 1 } }
    }
    let start = MonotonicClock.now()
    producer.start()
    var received = 0, checksum = 0
    var batch: [Int] = []
    batch.reserveCapacity(2048)
    while received < items {
        batch.removeAll(keepingCapacity: true)
        queue.pop(into: &batch)
        for value in batch { checksum &+= value }
        received += batch.count
    }
    let seconds = Double(MonotonicClock.now() - start) / 1e9
    precondition(checksum == items * (items - 1) / 2, "lost or duplicated items")
    return Double(items) / seconds / 1e6
}

func ringBenchmark() {
    let items = option("--items", 50_000_000), repeats = option("--repeats", 7)
    print("ring: \(items) slot hand-offs between two threads, \(repeats) repeats (M hand-offs/s)")
    var spsc: [Double] = [], locked: [Double] = []
    for _ in 0..<repeats {
        spsc.append(measureRing(items: items))
        locked.append(measureLockedQueue(items: items / 10))
    }
    let median = percentile(spsc, 50), lockedMedian = percentile(locked, 50)
    print(String(format: "  SPSCRing (Atomic, acquire/release): median %.1f  min %.1f  max %.1f", median, spsc.min()!, spsc.max()!))
    print(
        String(format: "  Mutex-guarded queue (baseline):     median %.1f  min %.1f  max %.1f", lockedMedian, locked.min()!, locked.max()!))
    print(String(format: "  ratio SPSCRing / baseline: %.1fx", median / lockedMedian))
}

// MARK: - Graph overhead

/// Replays a few prerendered frames in a loop (a memcpy per frame), so only the graph is measured.
final class LoopingSource: FrameSource {
    let name = "looping"
    let geometry: FrameGeometry
    let frameInterval: Double?
    let frameCount: Int?
    private let frames: [[UInt16]]
    private var next = 0

    init(size: Int, frames count: Int, fps: Double) throws {
        geometry = try FrameGeometry(width: size, height: size, format: .grey16, bitsStored: 12)
        frameInterval = 1 / fps
        frameCount = count
        frames = (0..<4).map { seed in (0..<(size * size)).map { UInt16(truncatingIfNeeded: ($0 &* 2654435761 &+ seed) >> 20) & 4095 } }
    }

    func read(into frame: Frame) throws -> Bool {
        guard next < frameCount! else { return false }
        frames[next % frames.count].withUnsafeBufferPointer { source in
            frame.pixels.baseAddress!.update(from: source.baseAddress!, count: source.count)
        }
        frame.index = next
        frame.sourceTime = Double(next) * frameInterval!
        next += 1
        return true
    }
}

/// Touches one pixel and passes the frame on.
final class PassThroughStage: Stage {
    let name: String
    private(set) var checksum = 0
    init(name: String) { self.name = name }
    func process(_ frame: Frame) throws { checksum &+= Int(frame.pixels[frame.index % frame.geometry.pixelCount]) }
}

func graphBenchmark() throws {
    let size = option("--size", 1024), frames = option("--frames", 600), fps = option("--fps", 30)
    let stageCount = option("--stages", 3), warmUp = min(60, frames / 4)
    let priority = option("--realtime", 0)
    let passThrough = (0..<stageCount).map { PassThroughStage(name: "pass\($0)") }
    var stages: [Stage] = passThrough
    // With --segment, registration and segmentation in one stage as `fluoro run --segmenter` runs them.
    if arguments.contains("--segment") {
        stages.insert(RegisteredSegmentation(segmentation: segmentationParameters()), at: 0)
    } else if arguments.contains("--motion") {
        stages.insert(MotionCompensation(), at: 0)
    }
    if arguments.contains("--publish") {
        // The real output end: render to RGB and publish on loopback to a subscriber that keeps up.
        stages.append(DisplayRenderer())
        let port = 40_000 + Int.random(in: 0..<10_000)
        let address = try PublisherAddress("tcp://127.0.0.1:\(port)")
        let publisher = try ZeroMQPublisher(address: address, policy: .live, upstreamStages: stages.map(\.name))
        stages.append(publisher)
        startDrainingSubscriber(address.endpoint)
        guard publisher.waitForSubscribers(1, timeoutSeconds: 5) else { fatalError("the subscriber did not connect") }
    }
    let source = try LoopingSource(size: size, frames: frames, fps: Double(fps))
    let graph = try FrameGraph(
        source: source, stages: stages,
        configuration: GraphConfiguration(
            policy: .live, pacing: .recorded(speed: 1),
            realtimePriority: priority > 0 ? Int32(priority) : nil))
    print("graph: \(size)x\(size) 16-bit, stages \(stages.map(\.name).joined(separator: " → ")), live at \(fps) fps, \(frames) frames")

    let allocations = SteadyStateAllocations(warmUp: warmUp, end: frames - 10)
    let rssBefore = residentMegabytes()
    let statistics = try graph.run { allocations.tick(settled: graph.settledCount) }
    allocations.stop(settled: graph.settledCount)
    let rssAfter = residentMegabytes()
    print(statistics.formattedTable())
    allocations.report()
    print(String(format: "resident memory: %.1f MiB before the run, %.1f MiB after", rssBefore, rssAfter))
    _ = passThrough.reduce(0) { $0 &+ $1.checksum }
}

/// A subscriber in another process reads and discards every frame, as a display would.
func startDrainingSubscriber(_ endpoint: String) {
    let script =
        "import zmq\ns = zmq.Context().socket(zmq.SUB)\ns.connect('\(endpoint)')\ns.setsockopt(zmq.SUBSCRIBE, b'')\n"
        + "s.setsockopt(zmq.RCVTIMEO, 5000)\ntry:\n    while True: s.recv_multipart()\nexcept zmq.Again: pass\n"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [ProcessInfo.processInfo.environment["FLUORO_PYTHON"] ?? "python3", "-c", script]
    process.environment = ProcessInfo.processInfo.environment.filter { $0.key != "LD_PRELOAD" }
    do { try process.run() } catch { fatalError("cannot start the subscriber: \(error)") }
}

/// The process's resident memory (`VmRSS`, or another /proc/self/status field such as `VmHWM`, the peak) in MiB.
func residentMegabytes(field: String = "VmRSS:") -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
    else { return 0 }
    return kilobytes / 1024
}

// MARK: - DICOM decoding

/// Decodes every frame of each file `--repeats` times on one thread; prints the median time per frame.
func decodeBenchmark() throws {
    let repeats = option("--repeats", 5)
    for path in arguments.dropFirst().filter({ !$0.hasPrefix("--") && Int($0) == nil }) {
        let source = try DICOMSource(path: path)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        var perFrame: [Double] = []
        var checksum = 0
        for _ in 0..<repeats {
            let start = MonotonicClock.now()
            for index in 0..<source.file.numberOfFrames {
                try source.decode(frameAt: index, into: frame.pixels)
                checksum &+= Int(frame.pixels[index % frame.pixels.count])
            }
            perFrame.append(Double(MonotonicClock.now() - start) / 1e6 / Double(source.file.numberOfFrames))
        }
        // One more pass with the allocation counter on (it counts only under tools/bench's LD_PRELOAD).
        MallocInterposerSwift.initialize()
        MallocInterposerSwift.hook()
        for index in 0..<source.file.numberOfFrames { try source.decode(frameAt: index, into: frame.pixels) }
        MallocInterposerSwift.unhook()
        let allocations = Double(MallocInterposerSwift.getStatistics().mallocCount) / Double(source.file.numberOfFrames)
        let median = percentile(perFrame, 50)
        print(
            String(
                format: "decode %@: %d frames %@, %@: median %.3f ms per frame (%.0f frames/s), %.1f allocations per frame [checksum %d]",
                path, source.file.numberOfFrames, source.geometry.description, source.file.transferSyntax.name,
                median, 1000 / median, allocations, checksum))
    }
}

// MARK: - Motion estimation

/// Registers synthetic runs with known shifts to their first frame: error statistics and time per frame.
func motionBenchmark() throws {
    let size = option("--size", 512), frames = option("--frames", 60), seeds = option("--seeds", 3)
    var errors: [Double] = [], perFrame: [Double] = []
    for seed in 1...seeds {
        var parameters = SyntheticParameters()
        parameters.size = size
        parameters.frameCount = frames
        parameters.seed = UInt64(1000 + seed)
        parameters.contrast = .init(start: frames / 3, peak: frames / 2, washedOut: frames - 5)
        let source = try SyntheticSource(parameters: parameters)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        let registration = Registration(geometry: source.geometry)
        let reference = source.truth(forFrame: 0)
        while try source.read(into: frame) {
            let start = MonotonicClock.now()
            let estimate = registration.estimate(UnsafeBufferPointer(frame.pixels))
            perFrame.append(Double(MonotonicClock.now() - start) / 1e6)
            guard frame.index > 0 else { continue }
            let truth = source.truth(forFrame: frame.index)
            let ex = Double(estimate.dx) - (truth.dx - reference.dx), ey = Double(estimate.dy) - (truth.dy - reference.dy)
            if arguments.contains("--verbose") {
                print(
                    String(
                        format: "  frame %3d truth (%7.3f, %7.3f) estimate (%7.3f, %7.3f) confidence %.3f %@", frame.index,
                        truth.dx - reference.dx, truth.dy - reference.dy, estimate.dx, estimate.dy, estimate.confidence,
                        estimate.state.rawValue))
            }
            errors.append((ex * ex + ey * ey).squareRoot())
        }
    }
    let rms = (errors.map { $0 * $0 }.reduce(0, +) / Double(errors.count)).squareRoot()
    print(
        String(
            format: "motion %dx%d, %d frames x %d seeds: RMS error %.3f px, max %.3f px, median time %.2f ms, p99 %.2f ms",
            size, size, frames, seeds, rms, errors.max() ?? 0, percentile(perFrame, 50), percentile(perFrame, 99)))
}

/// Segments a Y4M run (`segment FILE.y4m`, one JSON line per frame for tools/bench_segment.py) or a synthetic
/// one (`segment --size S`), registration feeding the tracker as in the graph: time of the segmenter alone.
func segmentBenchmark() throws {
    let source: FrameSource
    if let path = arguments.dropFirst().first, !path.hasPrefix("--") {
        source = try Y4MReader(path: path)
    } else {
        let frames = option("--frames", 60)
        var parameters = SyntheticParameters()
        parameters.size = option("--size", 1024)
        parameters.frameCount = frames
        parameters.seed = 1001
        parameters.contrast = .init(start: frames / 3, peak: frames / 2, washedOut: frames - 5)
        source = try SyntheticSource(parameters: parameters)
    }
    let json = arguments.contains("--json")
    let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
    let registration = Registration(geometry: source.geometry)
    let segmenter = try DeviceSegmenter(geometry: source.geometry, parameters: segmentationParameters())
    // The same frames through a segmenter that splits its filtering over two threads, as the graph's stage does.
    let split = try DeviceSegmenter(
        geometry: source.geometry, parameters: segmentationParameters(),
        splitter: WorkSplitter(name: "segment-helper"))
    var perFrame: [Double] = [], perFrameSplit: [Double] = []
    var splitAnnotations = FrameAnnotations()
    // Registration and segmentation of each frame as the graph runs them: two stages one after the other, against
    // the stage that runs them side by side.
    let chain: [Stage] = [MotionCompensation(), DeviceSegmentation(parameters: segmentationParameters())]
    let sideBySide = RegisteredSegmentation(segmentation: segmentationParameters())
    for stage in chain + [sideBySide] { try stage.prepare(for: source.geometry) }
    let twin = Frame(slot: 1, geometry: source.geometry, stageCount: 1)
    var perFrameChain: [Double] = [], perFrameSideBySide: [Double] = []
    while try source.read(into: frame) {
        _ = twin.pixels.update(fromContentsOf: frame.pixels)
        let chainStart = MonotonicClock.now()
        for stage in chain { try stage.process(twin) }
        perFrameChain.append(Double(MonotonicClock.now() - chainStart) / 1e6)
        let sideBySideStart = MonotonicClock.now()
        try sideBySide.process(twin)
        perFrameSideBySide.append(Double(MonotonicClock.now() - sideBySideStart) / 1e6)
        frame.annotations.motion = registration.estimate(UnsafeBufferPointer(frame.pixels))
        splitAnnotations.motion = frame.annotations.motion
        let start = MonotonicClock.now()
        segmenter.segment(UnsafeBufferPointer(frame.pixels), into: &frame.annotations)
        let milliseconds = Double(MonotonicClock.now() - start) / 1e6
        perFrame.append(milliseconds)
        let splitStart = MonotonicClock.now()
        split.segment(UnsafeBufferPointer(frame.pixels), into: &splitAnnotations)
        perFrameSplit.append(Double(MonotonicClock.now() - splitStart) / 1e6)
        if json {
            let tip = frame.annotations.guidewire.tip
            print("{\"frame\": \(frame.index), \"ms\": \(milliseconds), \"tip\": [\(tip?.x ?? -1), \(tip?.y ?? -1)]}")
        }
    }
    if !json {
        print(
            String(
                format: "segment %@ %dx%d, %d frames: one thread median %.2f ms, p99 %.2f ms; split over two median %.2f ms, p99 %.2f ms",
                source.name, source.geometry.width, source.geometry.height, perFrame.count, percentile(perFrame, 50),
                percentile(perFrame, 99), percentile(perFrameSplit, 50), percentile(perFrameSplit, 99)))
        print(
            String(
                format:
                    "with registration: motion stage then segment stage median %.2f ms, p99 %.2f ms; side by side (motion+segment) median %.2f ms, p99 %.2f ms",
                percentile(perFrameChain, 50), percentile(perFrameChain, 99),
                percentile(perFrameSideBySide, 50), percentile(perFrameSideBySide, 99)))
    }
}

/// The roadmap stage's added latency: a synthetic run builds the map (contrast over frames 8–30), then the
/// overlay (blend + device lines) is timed on every later frame, after the render stage as in the graph.
func roadmapBenchmark() throws {
    let size = option("--size", 1024), frames = option("--frames", 120)
    var parameters = SyntheticParameters()
    parameters.size = size
    parameters.frameCount = frames
    parameters.seed = 1001
    parameters.contrast = .init(start: 8, peak: 16, washedOut: 30)
    let source = try SyntheticSource(parameters: parameters)
    let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
    let registration = Registration(geometry: source.geometry)
    let renderer = DisplayRenderer(), overlay = RoadmapOverlay()
    try renderer.prepare(for: source.geometry)
    try overlay.prepare(for: source.geometry)
    var building: [Double] = [], drawing: [Double] = [], completion = 0.0
    while try source.read(into: frame) {
        frame.annotations.reset()
        frame.annotations.motion = registration.estimate(UnsafeBufferPointer(frame.pixels))
        try renderer.process(frame)
        let start = MonotonicClock.now()
        try overlay.process(frame)
        let milliseconds = Double(MonotonicClock.now() - start) / 1e6
        if !frame.annotations.roadmap.drawn {
            building.append(milliseconds)
        } else if completion == 0 {
            completion = milliseconds
        } else {
            drawing.append(milliseconds)
        }
    }
    print(
        String(
            format:
                "roadmap %dx%d: building median %.2f ms (max %.2f, %d frames); completing the map %.2f ms (once); overlay median %.2f ms, p99 %.2f ms, max %.2f ms (%d frames)",
            size, size, percentile(building, 50), building.max() ?? 0, building.count, completion,
            percentile(drawing, 50), percentile(drawing, 99), drawing.max() ?? 0, drawing.count))
}

/// Registers every frame of a Y4M run to its first frame; one JSON line per frame (for tools/bench_motion.py).
func registerBenchmark() throws {
    guard let path = arguments.dropFirst().first else { throw FluoroError.invalidArgument("register needs a .y4m path") }
    let source = try Y4MReader(path: path)
    let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
    let registration = Registration(geometry: source.geometry)
    while try source.read(into: frame) {
        let start = MonotonicClock.now()
        let estimate = registration.estimate(UnsafeBufferPointer(frame.pixels))
        let milliseconds = Double(MonotonicClock.now() - start) / 1e6
        print(
            "{\"frame\": \(frame.index), \"dx\": \(estimate.dx), \"dy\": \(estimate.dy), \"ms\": \(milliseconds), "
                + "\"state\": \"\(estimate.state.rawValue)\"}")
    }
}

/// Times the 256² FFT used by registration.
func fftBenchmark() {
    let size = option("--size", 256)
    let fft = FFT2D(size: size)
    let real = UnsafeMutablePointer<Float>.allocate(capacity: size * size),
        imaginary = UnsafeMutablePointer<Float>.allocate(capacity: size * size)
    for i in 0..<(size * size) { real[i] = Float(i % 7); imaginary[i] = 0 }
    var times: [Double] = []
    for _ in 0..<50 {
        let start = MonotonicClock.now()
        fft.transform(real: real, imaginary: imaginary)
        times.append(Double(MonotonicClock.now() - start) / 1e6)
    }
    print(String(format: "fft %dx%d: median %.3f ms [%f]", size, size, percentile(times, 50), real[1]))
}

printMachineLine(json: arguments.contains("--json"))
switch arguments.first {
case "fft": fftBenchmark()
case "ring": ringBenchmark()
case "register": try registerBenchmark()
case "motion": try motionBenchmark()
case "segment": try segmentBenchmark()
case "roadmap": try roadmapBenchmark()
case "graph": try graphBenchmark()
case "pipeline": try pipelineBenchmark()
case "decode": try decodeBenchmark()
default:
    print(
        "usage: fluoro-bench ring [--items N] [--repeats R] | decode FILE.dcm... [--repeats R] | graph [--size S] [--frames N] [--fps F] [--stages K] [--realtime PRIORITY] [--publish] [--motion] [--segment [--method ridge|learned]] | motion | segment [FILE.y4m] [--method ridge|learned] | roadmap [--size S] | pipeline [--size S] [--frames N] [--fps F] [--replay] [--method ridge|learned] [--no-split] [--no-overlap] [--json]"
    )
}
