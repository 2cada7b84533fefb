import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPipeline
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

/// The roadmap stage's added latency, per method (`--method vesselness|subtraction`, default both), on a synthetic
/// run with a contrast injection (frames 8–30), or on a recorded run (`fluoro-bench roadmap RUN`: a frame folder,
/// DICOM or Y4M file), each frame's pixels repeated to `--size` when that is a multiple of the run's. Frames go
/// through motion, render and roadmap; the roadmap stage is timed on every frame, after the render stage as in the
/// graph, split by what it did (building; drawing a live, stored or subtraction map). A subtraction map's
/// completion is timed once, apart.
func roadmapBenchmark() throws {
    let methods =
        try textOption("--method").map { text in
            guard let method = RoadmapMethod(rawValue: text) else {
                throw FluoroError.invalidArgument("--method \(text): expected vesselness or subtraction")
            }
            return [method]
        } ?? RoadmapMethod.allCases
    let run = arguments.dropFirst().first { !$0.hasPrefix("--") && Int($0) == nil && RoadmapMethod(rawValue: $0) == nil }
    for method in methods {
        let source = try roadmapBenchmarkSource(run: run)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        let registration = Registration(geometry: source.geometry)
        var settings = RoadmapParameters()
        settings.method = method
        let renderer = DisplayRenderer(), overlay = RoadmapOverlay(parameters: settings)
        try renderer.prepare(for: source.geometry)
        try overlay.prepare(for: source.geometry)
        var times: [String: [Double]] = [:]
        var completion: Double?
        while try source.read(into: frame) {
            frame.annotations.reset()
            frame.annotations.motion = registration.estimate(UnsafeBufferPointer(frame.pixels))
            try renderer.process(frame)
            let start = MonotonicClock.now()
            try overlay.process(frame)
            let milliseconds = Double(MonotonicClock.now() - start) / 1e6
            let roadmap = frame.annotations.roadmap
            if method == .subtraction, roadmap.drawn, completion == nil {
                completion = milliseconds
                continue
            }
            times[roadmap.drawn ? roadmap.mapSource?.rawValue ?? "drawn" : "building", default: []].append(milliseconds)
        }
        let parts = times.keys.sorted().map { key in
            let values = times[key]!
            return String(
                format: "%@ median %.2f ms, p99 %.2f, max %.2f (%d frames)", key, percentile(values, 50), percentile(values, 99),
                values.max()!, values.count)
        }
        let completed = completion.map { String(format: "; completing the map %.2f ms (once)", $0) } ?? ""
        let size = source.geometry.width
        print("roadmap \(method.rawValue) \(size)x\(size) \(run ?? "synthetic"): " + parts.joined(separator: "; ") + completed)
    }
}

/// The benchmark's frames: a synthetic run of `--size` (default 1024), or `run` scaled up to `--size` by repeating
/// each pixel.
private func roadmapBenchmarkSource(run: String?) throws -> FrameSource {
    guard let run else {
        var parameters = SyntheticParameters()
        parameters.size = option("--size", 1024)
        parameters.frameCount = option("--frames", 120)
        parameters.seed = 1001
        parameters.contrast = .init(start: 8, peak: 16, washedOut: 30)
        return try SyntheticSource(parameters: parameters)
    }
    let recorded = try openRecordedSource(run, frameRate: 7.5)
    let factor = max(option("--size", recorded.geometry.width) / recorded.geometry.width, 1)
    return try RepeatedPixels(recorded, factor: factor)
}

/// A recorded run with each pixel repeated `factor` × `factor` times.
private final class RepeatedPixels: FrameSource {
    let source: FrameSource
    let factor: Int
    let geometry: FrameGeometry
    private let original: Frame
    var name: String { source.name }
    var frameInterval: Double? { source.frameInterval }
    var frameCount: Int? { source.frameCount }

    init(_ source: FrameSource, factor: Int) throws {
        self.source = source
        self.factor = factor
        let inner = source.geometry
        geometry = try FrameGeometry(
            width: inner.width * factor, height: inner.height * factor, format: inner.format, bitsStored: inner.bitsStored)
        original = Frame(slot: 0, geometry: inner, stageCount: 1)
    }

    func read(into frame: Frame) throws -> Bool {
        guard try source.read(into: original) else { return false }
        let width = geometry.width, innerWidth = source.geometry.width
        for y in 0..<geometry.height {
            let row = original.pixels.baseAddress! + (y / factor) * innerWidth
            for x in 0..<width { frame.pixels[y * width + x] = row[x / factor] }
        }
        frame.index = original.index
        frame.sourceTime = original.sourceTime
        return true
    }
}
