import ArgumentParser
import Foundation
import FluoroCore
import FluoroSources

/// `fluoro synth`: writes a synthetic run as Y4M with its ground truth beside it.
struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a synthetic fluoroscopy run (Y4M) with its exact ground truth.",
        discussion: """
            Writes OUT (YUV4MPEG2, Cmono12 for 12 bits), OUT-without-extension.truth.json (per-frame shift, \
            guidewire and catheter centre lines and tips, contrast level) and .vessels.pgm (the reference vessel \
            mask). docs/sources.md ("Synthetic runs") documents the truth format.
            """)

    @Option(name: .shortAndLong, help: "Output .y4m path.")
    var out: String
    @Flag(help: "Replace existing output files.")
    var force = false
    @OptionGroup var synthetic: SyntheticOptions

    func run() throws {
        let parameters = try synthetic.parameters()
        let source = try SyntheticSource(parameters: parameters)
        let base = out.hasSuffix(".y4m") ? String(out.dropLast(4)) : out
        let rate = frameRateFraction(parameters.frameRate)
        // All three outputs are checked before the run is generated.
        let writer = try Y4MWriter(path: out, geometry: source.geometry, frameRate: rate, replace: force)
        let maskOutput = try OutputFile(path: base + ".vessels.pgm", replace: force)
        let truthOutput = try OutputFile(path: base + ".truth.json", replace: force)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        while try source.read(into: frame) { try writer.append(frame) }

        let maskName = (base as NSString).lastPathComponent + ".vessels.pgm"
        let mask = source.referenceVesselMask().map { $0 == 0 ? UInt8(0) : 255 }
        try maskOutput.write(Array("P5\n\(parameters.size) \(parameters.size)\n255\n".utf8) + mask)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try truthOutput.write(Array(try encoder.encode(source.runTruth(vesselMaskFileName: maskName))))
        try writer.finish()
        try maskOutput.commit()
        try truthOutput.commit()
        print("wrote \(out) (\(parameters.frameCount) frames, \(source.geometry)), \(base).truth.json, \(base).vessels.pgm")
    }

    private func frameRateFraction(_ rate: Double) -> (numerator: Int, denominator: Int) {
        let denominator = rate == rate.rounded() ? 1 : 1000
        return (Int(clampingFinite: (rate * Double(denominator)).rounded()), denominator)
    }
}
