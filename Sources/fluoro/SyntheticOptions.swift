import ArgumentParser
import FluoroSources

/// Options describing a synthetic run, shared by `fluoro synth` and `fluoro run synthetic`.
struct SyntheticOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Frame width and height in pixels.")
    var size = 512
    @Option(name: .customLong("synthetic-frames"), help: "Frames in the synthetic run.")
    var syntheticFrames = 90
    @Option(
        parsing: .unconditional, help: "Frames per second: of the simulated acquisition (default 15), or of a frame folder (default 30).")
    var fps: Double?
    @Option(parsing: .unconditional, help: "Seed of every random choice; the same seed gives the same run.")
    var seed: UInt64 = 1
    @Option(parsing: .unconditional, help: "Mean X-ray quanta per pixel without attenuation (lower: noisier).")
    var dose = 1000.0
    @Option(parsing: .unconditional, help: "Bits stored per sample.")
    var bits = 12
    @Flag(help: "No contrast injection.")
    var noContrast = false
    @Option(help: "Contrast injection as START:PEAK:WASHED_OUT frames.")
    var contrast = "30:45:75"
    @Option(help: "A table move as FRAME:DX:DY (pixels), e.g. 40:25:-10.")
    var tableJump: String?
    @Option(
        help:
            "intervention (a guidewire through a catheter in the vessel) or diagnostic (a contrast-filled catheter at the vessel's ostium, no guidewire)."
    )
    var procedure = "intervention"
    @Option(parsing: .unconditional, help: "The catheter's radius in pixels at 512² (scaled with the size).")
    var catheterRadius = 2.8
    @Option(parsing: .unconditional, help: "Attenuation of the catheter's wall along its centre line (ln of the intensity drop).")
    var catheterWall = 0.5
    @Option(help: "A collimated field as SHAPE:RADIUS, SHAPE circle or octagon, RADIUS a share of half the frame (e.g. octagon:0.95).")
    var collimator: String?

    func parameters() throws -> SyntheticParameters {
        var parameters = SyntheticParameters()
        parameters.size = size
        parameters.frameCount = syntheticFrames
        parameters.frameRate = fps ?? 15
        parameters.seed = seed
        parameters.dose = dose
        parameters.bitsStored = bits
        if noContrast {
            parameters.contrast = nil
        } else {
            let parts = contrast.split(separator: ":").compactMap { Int($0) }
            guard parts.count == 3 else { throw ValidationError("--contrast takes START:PEAK:WASHED_OUT, got '\(contrast)'") }
            parameters.contrast = .init(start: parts[0], peak: parts[1], washedOut: parts[2])
        }
        if let tableJump {
            let parts = tableJump.split(separator: ":")
            guard parts.count == 3, let frame = Int(parts[0]), let dx = Double(parts[1]), let dy = Double(parts[2]) else {
                throw ValidationError("--table-jump takes FRAME:DX:DY, got '\(tableJump)'")
            }
            parameters.tableJump = .init(frame: frame, dx: dx, dy: dy)
        }
        guard let procedure = SyntheticParameters.Procedure(rawValue: procedure) else {
            throw ValidationError("--procedure takes intervention or diagnostic, got '\(procedure)'")
        }
        parameters.procedure = procedure
        parameters.catheterRadius = catheterRadius
        parameters.catheterWall = catheterWall
        if let collimator {
            let parts = collimator.split(separator: ":")
            guard parts.count == 2, let shape = SyntheticParameters.Collimator.Shape(rawValue: String(parts[0])),
                let radius = Double(parts[1])
            else {
                throw ValidationError("--collimator takes SHAPE:RADIUS with SHAPE circle or octagon, got '\(collimator)'")
            }
            parameters.collimator = .init(shape: shape, radius: radius)
        }
        try parameters.validate()
        return parameters
    }
}
