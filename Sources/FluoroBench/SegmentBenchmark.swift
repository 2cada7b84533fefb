import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

/// Segments a Y4M run (`segment FILE.y4m`, one JSON line per frame for tools/benchmarks/bench_segment.py) or a synthetic
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
