import FluoroCore
import FluoroSources

/// Whether the C-arm moved between the run a roadmap is built from and the live run (a roadmap from another view
/// would mark the wrong places).
enum CArmCheck {
    /// The largest angle change tolerated, in degrees.
    static let toleranceDegrees = 1.0

    /// A description of the movement when both runs are DICOM with positioner angles that differ by more than
    /// `toleranceDegrees`; nil otherwise.
    static func movement(between earlier: FrameSource?, and live: FrameSource) -> String? {
        guard let earlierRun = (earlier as? DICOMSource)?.file, let before = earlierRun.positionerAngles,
            let after = (live as? DICOMSource)?.file.positionerAngles,
            max(abs(before.primary - after.primary), abs(before.secondary - after.secondary)) > toleranceDegrees
        else { return nil }
        return "the C-arm moved between \(earlierRun.path) (\(before.primary)°, \(before.secondary)°) and the live run "
            + "(\(after.primary)°, \(after.secondary)°)"
    }
}
