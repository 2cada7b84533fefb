import ArgumentParser
import FluoroCore
import FluoroPipeline
import FluoroSources
import Foundation

/// `fluoro inspect`: a one-screen summary of a recorded run, without patient identifiers.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise a recorded run (DICOM or Y4M) on one screen.",
        discussion: "Patient identifiers (name, ID, birth date, sex, accession number, institution, referring "
            + "physician, study date) are never printed unless --show-phi is given.")

    @Argument(help: "A DICOM (.dcm) or Y4M file.")
    var file: String
    @Flag(help: "Also print the attributes that identify the patient.")
    var showPHI = false

    func run() throws {
        if isDICOM(file) {
            try summarise(try DICOMFile(path: file))
            return
        }
        let source = try openRecordedSource(file)
        print("file:          \(file)")
        print("format:        YUV4MPEG2")
        print("frames:        \(source.geometry)")
        if let interval = source.frameInterval { print(String(format: "frame rate:    %.3f frames/s", 1 / interval)) }
    }

    private func summarise(_ run: DICOMFile) throws {
        func show(_ label: String, _ value: String?) {
            print((label + ":").padding(toLength: 15, withPad: " ", startingAt: 0) + (value ?? "-"))
        }
        show("file", file)
        show("modality", run.modality)
        show("SOP class", run.sopClassUID.map { $0 + (Self.sopClassNames[$0].map { " (\($0))" } ?? "") })
        show("manufacturer", run.manufacturer)
        show(
            "size",
            "\(run.columns) x \(run.rows), \(run.bitsStored) of \(run.bitsAllocated) bits"
                + (run.isMonochrome1 ? ", MONOCHROME1 (inverted on reading)" : "")
                + (run.isColour ? ", colour \(run.photometricInterpretation) (inspected only, not processed)" : ""))
        show("frames", String(run.numberOfFrames))
        show("syntax", "\(run.transferSyntax.name) (\(run.transferSyntax.rawValue))")
        show(
            "frame rate",
            run.frameTimeMilliseconds.map { String(format: "%.2f frames/s (%.1f ms per frame)", 1000 / $0, $0) }
                .map { $0 + (run.frameTimeVector != nil ? ", variable (Frame Time Vector)" : "") })
        show(
            "pixel spacing",
            run.imagerPixelSpacing.isEmpty
                ? nil : run.imagerPixelSpacing.map { String(format: "%.4g", $0) }.joined(separator: " x ") + " mm (imager)")
        show("angles", run.positionerAngles.map { String(format: "primary %.1f°, secondary %.1f°", $0.primary, $0.secondary) })
        show("window", run.windowCenterWidth.map { String(format: "centre %.1f, width %.1f", $0.center, $0.width) })
        show("VOI LUT", run.voiLookUpTable.map { "\($0.entries.count) entries from \($0.firstMapped), \($0.bits) bits (used for display)" })
        show(
            "cardiac",
            run.rWavePointer.isEmpty && !run.hasECG
                ? nil
                : "R waves at frames \(run.rWavePointer.map(String.init).joined(separator: ", "))"
                    + (run.hasECG ? "; ECG present" + (run.ecgCurve.map { " (\($0.samples.count) samples)" } ?? "") : ""))
        if run.dataSet.string(DICOMTag(0x0029, 0x0010)) == "FLUOROSTREAM 1",
            let text = run.dataSet.string(DICOMTag(0x0029, 0x1000)),
            let entries = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any]
        {
            show("measurements", "\(entries.count) frames (FluoroStream recording, private element (0029,1000))")
        }
        if showPHI {
            for (tag, name) in DICOMDictionary.identifying { show(name, run.dataSet.string(tag, all: true)) }
        } else {
            print("(patient identifiers hidden; --show-phi prints them)")
        }
    }

    static let sopClassNames = [
        "1.2.840.10008.5.1.4.1.1.12.1": "X-Ray Angiographic Image",
        "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image",
        "1.2.840.10008.5.1.4.1.1.12.2": "X-Ray Radiofluoroscopic Image",
        "1.2.840.10008.5.1.4.1.1.12.1.1": "Enhanced XA Image",
        "1.2.840.10008.5.1.4.1.1.12.2.1": "Enhanced XRF Image",
        "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image",
    ]
}
