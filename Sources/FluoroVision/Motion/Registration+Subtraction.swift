import FluoroCore
import FluoroConcurrency

/// Motion-corrected digital subtraction (DSA) images from the registration's reference.
extension Registration {
    /// Digital subtraction of the last estimated frame `live`: live − reference warped by (dx, dy) − the exposure
    /// offset, in the log domain, written as samples around mid-grey (more attenuation in the live frame, e.g.
    /// contrast, is darker; one unit of attenuation spans half the range). `output` may be `live`'s own memory.
    /// With `local` (and a local field estimated for this frame) the mask is warped by the control-point field
    /// instead of the single shift.
    public func writeSubtraction(
        of live: UnsafeBufferPointer<UInt16>, dx: Float, dy: Float, correctExposure: Bool = true,
        local: Bool = false, into output: UnsafeMutableBufferPointer<UInt16>
    ) {
        let offset = correctExposure ? exposureOffset : 0
        let width = geometry.width, height = geometry.height, limit = logTable.count - 1
        let maximum = Float(geometry.maximumValue), middle = Float(1 << (geometry.bitsStored - 1))
        let gain = maximum / 2
        func write(_ i: Int, mask: Float) {
            let value = middle - gain * (logTable[min(Int(live[i]), limit)] - mask - offset)
            output[i] = UInt16(clampingFinite: min(max(value, 0), maximum))
        }
        func mask(x sx: Float, y sy: Float) -> Float {
            let ix = Int(clampingFinite: sx.rounded(.down)), iy = Int(clampingFinite: sy.rounded(.down))
            let fx = sx - Float(ix), fy = sy - Float(iy)
            let x0 = min(max(ix, 0), width - 1), x1 = min(max(ix + 1, 0), width - 1)
            let y0 = min(max(iy, 0), height - 1), y1 = min(max(iy + 1, 0), height - 1)
            return (1 - fy) * ((1 - fx) * referenceLog[y0 * width + x0] + fx * referenceLog[y0 * width + x1])
                + fy * ((1 - fx) * referenceLog[y1 * width + x0] + fx * referenceLog[y1 * width + x1])
        }
        for y in 0..<height {
            for x in 0..<width {
                let shift = local && hasLocalField ? localShift(x: Float(x), y: Float(y)) : (dx: dx, dy: dy)
                write(y * width + x, mask: mask(x: Float(x) - shift.dx, y: Float(y) - shift.dy))
            }
        }
    }
}
