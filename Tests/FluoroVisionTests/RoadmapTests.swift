import FluoroCore
import FluoroSources
import FluoroVision
import Foundation
import Testing

/// Builds a roadmap from a synthetic run (registration feeding it as in the graph); returns the builder, the
/// source and the registration estimates per frame.
func buildSyntheticRoadmap(size: Int, frames: Int, seed: UInt64, contrast: SyntheticParameters.ContrastWindow)
    throws -> (builder: VesselMapBuilder, source: SyntheticSource, shifts: [(Float, Float)], completedAt: Int?) {
    var parameters = SyntheticParameters()
    parameters.size = size
    parameters.frameCount = frames
    parameters.seed = seed
    parameters.contrast = contrast
    let source = try SyntheticSource(parameters: parameters)
    let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
    let registration = Registration(geometry: source.geometry)
    let builder = VesselMapBuilder(geometry: source.geometry)
    var shifts: [(Float, Float)] = [], completedAt: Int?
    while try source.read(into: frame) {
        let motion = registration.estimate(UnsafeBufferPointer(frame.pixels))
        shifts.append((motion.dx, motion.dy))
        builder.add(UnsafeBufferPointer(frame.pixels), dx: motion.dx, dy: motion.dy)
        if builder.phase == .complete, completedAt == nil { completedAt = frame.index }
    }
    return (builder, source, shifts, completedAt)
}

/// The true vessel mask in the coordinates of frame 0 (the motion reference): the reference mask moved by
/// frame 0's true shift (nearest pixel of the bilinear position).
func trueMaskInFrameZero(_ source: SyntheticSource) -> [Bool] {
    let size = source.geometry.width
    let reference = source.referenceVesselMask()
    let shift = source.truth(forFrame: 0)
    var mask = [Bool](repeating: false, count: size * size)
    for y in 0..<size {
        for x in 0..<size {
            let sx = Int((Double(x) - shift.dx).rounded()), sy = Int((Double(y) - shift.dy).rounded())
            if sx >= 0, sy >= 0, sx < size, sy < size { mask[y * size + x] = reference[sy * size + sx] != 0 }
        }
    }
    return mask
}

@Suite struct RoadmapTests {
    /// Seeds 4201+ were never used while developing or tuning the roadmap (that used seeds 4001–4003 and 4101–4103).
    /// At 1024² the map reaches IoU ≥ 0.8; at 512² the thinnest branches (2.4 px wide) are partly missed and their
    /// borders are a pixel off, which holds IoU near 0.75 (see the README): that size is held to ≥ 0.7.
    @Test(arguments: [(512, [4201, 4202] as [UInt64], 0.7), (1024, [4203, 4204] as [UInt64], 0.8)])
    func vesselMapMatchesTheTrueVessels(size: Int, seeds: [UInt64], required: Double) throws {
        for seed in seeds {
            let run = try buildSyntheticRoadmap(size: size, frames: 40, seed: seed, contrast: .init(start: 10, peak: 18, washedOut: 30))
            #expect(run.builder.phase == .complete, "seed \(seed): the map was not completed (share \(run.builder.lastShare))")
            let truth = trueMaskInFrameZero(run.source)
            var intersection = 0, union = 0
            for i in 0..<truth.count {
                let ours = run.builder.map[i] > 0
                if ours && truth[i] { intersection += 1 }
                if ours || truth[i] { union += 1 }
            }
            let iou = Double(intersection) / Double(max(union, 1))
            var picture = [UInt8](repeating: 0, count: truth.count * 3)
            for i in 0..<truth.count {
                let ours = run.builder.map[i] > 0
                picture[3 * i] = ours ? 255 : 0
                picture[3 * i + 1] = truth[i] ? 255 : 0
            }
            try Data(PNGEncoder.encode(picture, width: size, height: size, channels: 3))
                .write(to: URL(fileURLWithPath: figuresDirectory + "/roadmap-synthetic-\(size)-seed\(seed).png"))
            print(String(format: "roadmap %d² seed %d: IoU %.3f against the true vessel mask (%d vs %d true pixels), completed at frame %@, %d contrast frames",
                         size, seed, iou, run.builder.vesselPixels, truth.filter { $0 }.count, run.completedAt.map(String.init) ?? "-", run.builder.contrastFrames))
            #expect(iou >= required, "seed \(seed): IoU \(iou)")
        }
    }
}
