/// How a DICOM data set and its pixels are encoded.
public enum TransferSyntax: String, Sendable, CaseIterable {
    case implicitVRLittleEndian = "1.2.840.10008.1.2"
    case explicitVRLittleEndian = "1.2.840.10008.1.2.1"
    case deflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99"
    case explicitVRBigEndian = "1.2.840.10008.1.2.2"
    case jpegBaseline = "1.2.840.10008.1.2.4.50"
    case jpegExtended = "1.2.840.10008.1.2.4.51"
    case jpegLossless = "1.2.840.10008.1.2.4.57"
    case jpegLosslessSV1 = "1.2.840.10008.1.2.4.70"
    case jpegLSLossless = "1.2.840.10008.1.2.4.80"
    case jpegLSNearLossless = "1.2.840.10008.1.2.4.81"
    case jpeg2000Lossless = "1.2.840.10008.1.2.4.90"
    case jpeg2000 = "1.2.840.10008.1.2.4.91"
    case rleLossless = "1.2.840.10008.1.2.5"

    /// The standard's name for the syntax.
    public var name: String {
        switch self {
        case .implicitVRLittleEndian: return "Implicit VR Little Endian"
        case .explicitVRLittleEndian: return "Explicit VR Little Endian"
        case .deflatedExplicitVRLittleEndian: return "Deflated Explicit VR Little Endian"
        case .explicitVRBigEndian: return "Explicit VR Big Endian (retired)"
        case .jpegBaseline: return "JPEG Baseline (Process 1)"
        case .jpegExtended: return "JPEG Extended (Process 2 & 4)"
        case .jpegLossless: return "JPEG Lossless, Non-Hierarchical (Process 14)"
        case .jpegLosslessSV1: return "JPEG Lossless, First-Order Prediction (Process 14, SV1)"
        case .jpegLSLossless: return "JPEG-LS Lossless"
        case .jpegLSNearLossless: return "JPEG-LS Lossy (Near-Lossless)"
        case .jpeg2000Lossless: return "JPEG 2000 (Lossless Only)"
        case .jpeg2000: return "JPEG 2000"
        case .rleLossless: return "RLE Lossless"
        }
    }

    /// Whether pixel data is encapsulated (compressed, in fragments).
    public var isEncapsulated: Bool {
        switch self {
        case .implicitVRLittleEndian, .explicitVRLittleEndian, .deflatedExplicitVRLittleEndian, .explicitVRBigEndian: return false
        default: return true
        }
    }

    var isExplicitVR: Bool { self != .implicitVRLittleEndian }
    var isBigEndian: Bool { self == .explicitVRBigEndian }
}
