import FluoroCore
import FluoroSources
import FluoroVision

/// How frames are shown: as a DICOM run asks (its VOI LUT, else its Window Centre/Width), a window chosen on the
/// first frame for other sources, or a fixed window around mid-grey for subtraction images.
enum DisplayChoice {
    /// The renderer for `source`'s frames, in the pipeline's MONOCHROME2 unsigned samples.
    static func recorded(of source: FrameSource, splitting: Bool) -> DisplayRenderer {
        guard let run = (source as? DICOMSource)?.file else { return DisplayRenderer(splitting: splitting) }
        let signedOffset = run.isSigned ? 1 << (run.bitsStored - 1) : 0
        let maximum = (1 << run.bitsStored) - 1
        /// The stored value a pipeline sample came from.
        func stored(_ sample: Int) -> Int { (run.isMonochrome1 ? maximum - sample : sample) - signedOffset }
        if let table = run.voiLookUpTable {
            let levels = (0...maximum).map { sample -> UInt8 in
                let level = table.level(for: stored(sample))
                return UInt8(clampingFinite: ((run.isMonochrome1 ? 1 - level : level) * 255).rounded())
            }
            return DisplayRenderer(levels: levels, splitting: splitting)
        }
        guard let window = run.windowCenterWidth else { return DisplayRenderer(splitting: splitting) }
        var center = window.center + Double(signedOffset)
        if run.isMonochrome1 { center = Double(maximum) - center }
        return DisplayRenderer(window: DisplayWindow(center: center, width: window.width), splitting: splitting)
    }

    /// Subtraction images are centred on mid-grey; show ±¼ of the range.
    static func subtraction(of geometry: FrameGeometry, splitting: Bool) -> DisplayRenderer {
        DisplayRenderer(
            window: DisplayWindow(center: Double(1 << (geometry.bitsStored - 1)), width: Double(geometry.maximumValue) / 2),
            splitting: splitting)
    }
}
