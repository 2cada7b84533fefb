import FluoroCore

/// The grey window mapped to the display's black and white (window centre and width, as in DICOM).
public struct DisplayWindow: Sendable, Equatable {
    public var center: Double
    public var width: Double
    public init(center: Double, width: Double) { self.center = center; self.width = max(width, 1) }

    /// The window covering the samples between the 0.5th and 99.5th percentiles of `pixels`, using
    /// `histogram` (at least `1 << bitsStored` entries) as workspace so no memory is allocated.
    public static func automatic(
        for pixels: UnsafeBufferPointer<UInt16>, bitsStored: Int,
        histogram: UnsafeMutableBufferPointer<Int>
    ) -> DisplayWindow {
        let bins = 1 << bitsStored
        histogram.update(repeating: 0)
        for value in pixels { histogram[min(Int(value), bins - 1)] += 1 }
        let lowTarget = pixels.count / 200, highTarget = pixels.count - pixels.count / 200
        var seen = 0, low = 0, high = bins - 1
        var foundLow = false
        for bin in 0..<bins {
            seen += histogram[bin]
            if !foundLow, seen > lowTarget { low = bin; foundLow = true }
            if seen >= highTarget { high = bin; break }
        }
        return DisplayWindow(center: Double(low + high) / 2, width: Double(max(high - low, 1)))
    }
}
