import ArgumentParser
import FluoroCore
import FluoroPipeline
import FluoroSources

/// `fluoro convert`: decodes a run and writes its frames as Y4M (for ffmpeg, or for checking a decode).
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode a run (DICOM, Y4M or synthetic) and write its grey frames as Y4M.",
        discussion: """
            8-bit runs are written as Cmono, others as CmonoN with N bits stored (16-bit little-endian samples); \
            with --chroma 420, as C420jpeg or C420pN with neutral chroma (GStreamer's y4mdec reads 8-bit 4:2:0).
            """)

    @Argument(help: "A DICOM or Y4M file, - for Y4M on standard input, or synthetic.")
    var input: String
    @Option(name: .shortAndLong, help: "Output .y4m path.")
    var out: String
    @Option(help: "Colour space: mono (luma only) or 420 (neutral 4:2:0 chroma, for GStreamer and players).")
    var chroma: Y4MChroma = .mono
    @Flag(help: "Replace an existing output file (never the input).")
    var force = false
    @OptionGroup(title: "Synthetic source") var synthetic: SyntheticOptions

    func run() throws {
        let source: FrameSource =
            input == "synthetic"
            ? try SyntheticSource(parameters: try synthetic.parameters()) : try openRecordedSource(input, frameRate: synthetic.fps)
        let interval = source.frameInterval ?? 1.0 / 30
        let writer = try Y4MWriter(
            path: out, geometry: source.geometry,
            frameRate: (Int(clampingFinite: (1000 / interval).rounded()), 1000), chroma: chroma,
            replace: force, inputs: [input])
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        var count = 0
        while try source.read(into: frame) {
            try writer.append(frame)
            count += 1
        }
        try writer.finish()
        print("wrote \(count) frames (\(source.geometry)) to \(out)")
    }
}

extension Y4MChroma: ExpressibleByArgument {}
