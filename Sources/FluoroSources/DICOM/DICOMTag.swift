/// A DICOM attribute tag (group, element).
public struct DICOMTag: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let group: UInt16
    public let element: UInt16

    public init(_ group: UInt16, _ element: UInt16) { self.group = group; self.element = element }

    public var description: String { "(" + hex(group) + "," + hex(element) + ")" }
    public static func < (a: DICOMTag, b: DICOMTag) -> Bool { (a.group, a.element) < (b.group, b.element) }

    private func hex(_ value: UInt16) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - text.count) + text
    }
}

/// The attributes FluoroStream reads, kept as data (name and VR), not scattered through the parser.
public enum DICOMDictionary {
    public static let transferSyntaxUID = DICOMTag(0x0002, 0x0010)
    public static let sopClassUID = DICOMTag(0x0008, 0x0016)
    public static let studyDate = DICOMTag(0x0008, 0x0020)
    public static let accessionNumber = DICOMTag(0x0008, 0x0050)
    public static let modality = DICOMTag(0x0008, 0x0060)
    public static let manufacturer = DICOMTag(0x0008, 0x0070)
    public static let institutionName = DICOMTag(0x0008, 0x0080)
    public static let referringPhysicianName = DICOMTag(0x0008, 0x0090)
    public static let recommendedDisplayFrameRate = DICOMTag(0x0008, 0x2144)
    public static let patientName = DICOMTag(0x0010, 0x0010)
    public static let patientID = DICOMTag(0x0010, 0x0020)
    public static let patientBirthDate = DICOMTag(0x0010, 0x0030)
    public static let patientSex = DICOMTag(0x0010, 0x0040)
    public static let cineRate = DICOMTag(0x0018, 0x0040)
    public static let frameTime = DICOMTag(0x0018, 0x1063)
    public static let frameTimeVector = DICOMTag(0x0018, 0x1065)
    public static let distanceSourceToDetector = DICOMTag(0x0018, 0x1110)
    public static let distanceSourceToPatient = DICOMTag(0x0018, 0x1111)
    public static let imagerPixelSpacing = DICOMTag(0x0018, 0x1164)
    public static let positionerPrimaryAngle = DICOMTag(0x0018, 0x1510)
    public static let positionerSecondaryAngle = DICOMTag(0x0018, 0x1511)
    public static let samplesPerPixel = DICOMTag(0x0028, 0x0002)
    public static let pixelSpacing = DICOMTag(0x0028, 0x0030)
    public static let planarConfiguration = DICOMTag(0x0028, 0x0006)
    public static let photometricInterpretation = DICOMTag(0x0028, 0x0004)
    public static let numberOfFrames = DICOMTag(0x0028, 0x0008)
    public static let rows = DICOMTag(0x0028, 0x0010)
    public static let columns = DICOMTag(0x0028, 0x0011)
    public static let bitsAllocated = DICOMTag(0x0028, 0x0100)
    public static let bitsStored = DICOMTag(0x0028, 0x0101)
    public static let highBit = DICOMTag(0x0028, 0x0102)
    public static let pixelRepresentation = DICOMTag(0x0028, 0x0103)
    public static let windowCenter = DICOMTag(0x0028, 0x1050)
    public static let windowWidth = DICOMTag(0x0028, 0x1051)
    public static let voiLUTSequence = DICOMTag(0x0028, 0x3010)
    public static let lutDescriptor = DICOMTag(0x0028, 0x3002)
    public static let lutData = DICOMTag(0x0028, 0x3006)
    public static let rWavePointer = DICOMTag(0x0028, 0x6040)
    public static let curveNumberOfPoints = DICOMTag(0x5000, 0x0010)
    public static let curveTypeOfData = DICOMTag(0x5000, 0x0020)
    public static let curveAxisUnits = DICOMTag(0x5000, 0x0030)
    public static let curveDataValueRepresentation = DICOMTag(0x5000, 0x0103)
    public static let curveCoordinateStartValue = DICOMTag(0x5000, 0x0112)
    public static let curveCoordinateStepValue = DICOMTag(0x5000, 0x0114)
    public static let curveData = DICOMTag(0x5000, 0x3000)
    public static let extendedOffsetTable = DICOMTag(0x7FE0, 0x0001)
    public static let pixelData = DICOMTag(0x7FE0, 0x0010)
    static let item = DICOMTag(0xFFFE, 0xE000)
    static let itemDelimitation = DICOMTag(0xFFFE, 0xE00D)
    static let sequenceDelimitation = DICOMTag(0xFFFE, 0xE0DD)

    /// Attributes that identify the patient or the visit: never printed or published unless asked for.
    public static let identifying: [(DICOMTag, String)] = [
        (patientName, "Patient's Name"), (patientID, "Patient ID"), (patientBirthDate, "Patient's Birth Date"),
        (patientSex, "Patient's Sex"), (accessionNumber, "Accession Number"), (institutionName, "Institution Name"),
        (referringPhysicianName, "Referring Physician's Name"), (studyDate, "Study Date"),
    ]

    /// Value representations of attributes, for Implicit VR files (which do not carry them). Sequences are
    /// the ones that matter: anything else is read as raw bytes.
    static let implicitVR: [DICOMTag: String] = [
        transferSyntaxUID: "UI", sopClassUID: "UI", modality: "CS", manufacturer: "LO", rows: "US", columns: "US",
        samplesPerPixel: "US", bitsAllocated: "US", bitsStored: "US", highBit: "US", pixelRepresentation: "US",
        numberOfFrames: "IS", photometricInterpretation: "CS", frameTime: "DS", frameTimeVector: "DS", cineRate: "IS",
        windowCenter: "DS", windowWidth: "DS", imagerPixelSpacing: "DS", positionerPrimaryAngle: "DS",
        distanceSourceToDetector: "DS", distanceSourceToPatient: "DS", pixelSpacing: "DS",
        positionerSecondaryAngle: "DS", rWavePointer: "UL", recommendedDisplayFrameRate: "IS",
        lutDescriptor: "US", lutData: "OW", curveNumberOfPoints: "US", curveTypeOfData: "CS",
        curveDataValueRepresentation: "US", curveCoordinateStartValue: "US", curveCoordinateStepValue: "US",
        curveData: "OW",
        DICOMTag(0x0008, 0x1110): "SQ", DICOMTag(0x0008, 0x1111): "SQ", DICOMTag(0x0008, 0x1115): "SQ",
        DICOMTag(0x0008, 0x1140): "SQ", DICOMTag(0x0008, 0x2112): "SQ", DICOMTag(0x0018, 0x9346): "SQ",
        voiLUTSequence: "SQ", DICOMTag(0x0040, 0x0260): "SQ", DICOMTag(0x0040, 0x0275): "SQ",
        DICOMTag(0x5400, 0x0100): "SQ", DICOMTag(0x5200, 0x9229): "SQ", DICOMTag(0x5200, 0x9230): "SQ",
        pixelData: "OW",
    ]
}
