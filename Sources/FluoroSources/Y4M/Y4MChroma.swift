/// The colour space `Y4MWriter` writes grey frames in.
public enum Y4MChroma: String, CaseIterable, Sendable {
    /// `Cmono` (8 bits) or `CmonoN`: luma only, the smallest file; ffmpeg reads it.
    case mono
    /// `C420jpeg` (8 bits, full range) or `C420pN`: luma with neutral 4:2:0 chroma planes, which players and
    /// GStreamer's `y4mdec` (8-bit 4:2:0, 4:2:2 and 4:4:4 only) read too.
    case yuv420 = "420"
}
