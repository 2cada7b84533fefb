import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

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
