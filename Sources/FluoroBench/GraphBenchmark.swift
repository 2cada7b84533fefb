import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

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
