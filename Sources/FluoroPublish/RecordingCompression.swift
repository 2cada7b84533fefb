/// How `DICOMRecorder` stores the frames' pixels (`fluoro run --record-compression`).
public enum RecordingCompression: String, CaseIterable, Sendable {
    /// Uncompressed, Explicit VR Little Endian: the frames exactly as published.
    case none
    /// RLE Lossless: exact; smaller where the image has flat areas (collimator, overlays), not on noisy X-ray.
    case rle
    /// Baseline JPEG (ISO 10918-1, 4:2:2, quality `jpegQuality`) through libjpeg-turbo: lossy, a fraction of the
    /// size; the recording says so (Lossy Image Compression, its ratio and method).
    case jpeg

    /// The JPEG quality of `.jpeg` (1–100).
    public static let jpegQuality = 90

    /// The DICOM transfer syntax UID.
    var transferSyntax: String {
        switch self {
        case .none: "1.2.840.10008.1.2.1"  // Explicit VR Little Endian
        case .rle: "1.2.840.10008.1.2.5"  // RLE Lossless
        case .jpeg: "1.2.840.10008.1.2.4.50"  // JPEG Baseline (Process 1)
        }
    }

    /// The photometric interpretation of the stored pixels.
    var photometricInterpretation: String { self == .jpeg ? "YBR_FULL_422" : "RGB" }
}
