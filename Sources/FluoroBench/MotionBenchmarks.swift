import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

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

/// Registers every frame of a Y4M run to its first frame; one JSON line per frame (for tools/benchmarks/bench_motion.py).
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
