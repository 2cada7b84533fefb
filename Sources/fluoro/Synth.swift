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
        mask). The README's "Synthetic runs" section documents the truth format.
        """)

    @Option(name: .shortAndLong, help: "Output .y4m path.")
    var out: String
    @OptionGroup var synthetic: SyntheticOptions

    func run() throws {
        let parameters = try synthetic.parameters()
        let source = try SyntheticSource(parameters: parameters)
        let base = out.hasSuffix(".y4m") ? String(out.dropLast(4)) : out
        let rate = frameRateFraction(parameters.frameRate)
        let writer = try Y4MWriter(path: out, geometry: source.geometry, frameRate: rate)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        while try source.read(into: frame) { try writer.append(frame) }

        let maskName = (base as NSString).lastPathComponent + ".vessels.pgm"
        try writePGM(mask: source.referenceVesselMask(), size: parameters.size, to: base + ".vessels.pgm")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let truth = try encoder.encode(source.runTruth(vesselMaskFileName: maskName))
        guard FileManager.default.createFile(atPath: base + ".truth.json", contents: truth) else {
            throw FluoroError.writeFailed(path: base + ".truth.json", reason: "cannot create the file")
        }
        print("wrote \(out) (\(parameters.frameCount) frames, \(source.geometry)), \(base).truth.json, \(base).vessels.pgm")
    }

    private func frameRateFraction(_ rate: Double) -> (numerator: Int, denominator: Int) {
        let denominator = rate == rate.rounded() ? 1 : 1000
        return (Int((rate * Double(denominator)).rounded()), denominator)
    }

    private func writePGM(mask: [UInt8], size: Int, to path: String) throws {
        var data = Data("P5\n\(size) \(size)\n255\n".utf8)
        data.append(contentsOf: mask.map { $0 == 0 ? 0 : 255 })
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw FluoroError.writeFailed(path: path, reason: "cannot create the file")
        }
    }
}
