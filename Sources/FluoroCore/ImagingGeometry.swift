/// Where a run's pixels lie in the world, as far as its source says: the spacing of the pixels and the C-arm's
/// position. Published in every frame header (`geometry`) so that subscribers can measure in millimetres and place
/// the image; every value is nil when the source does not tell it.
public struct ImagingGeometry: Sendable, Equatable {
    /// Where `pixelSpacing` holds: at the detector (Imager Pixel Spacing as stored), at the isocentre (the
    /// detector's spacing scaled by source-to-patient over source-to-detector distance), or in the patient
    /// (Pixel Spacing, calibrated by the modality).
    public enum SpacingPlane: String, Sendable { case detector, isocenter, patient }

    /// Millimetres between the centres of neighbouring rows and of neighbouring columns.
    public var rowSpacing: Double?
    public var columnSpacing: Double?
    public var spacingPlane: SpacingPlane?
    /// The positioner's primary (LAO positive, RAO negative) and secondary (cranial positive) angles in degrees.
    public var primaryAngle: Double?
    public var secondaryAngle: Double?
    /// Millimetres from the X-ray source to the detector and to the patient (isocentre).
    public var sourceToDetector: Double?
    public var sourceToPatient: Double?

    public init() {}

    /// Nothing known.
    public static let unknown = ImagingGeometry()
}
