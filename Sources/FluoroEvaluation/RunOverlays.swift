import FluoroCore
import FluoroVision

/// Pictures of what a run's figures mean, for a person to look at (PNG, RGB):
/// - `NAME-roadmap.png`: the frame where the vessel masks are largest, grey, with the mask in green and the
///   roadmap as drawn on it (or, when none was, the last map drawn) in red: yellow is agreement;
/// - `NAME-motion.png`: for the frame furthest from its reference, the log-domain difference against the reference
///   without (left) and with (right) the estimated shift (mid-grey is no difference).
public enum RunOverlays {
    public static func roadmap(pixels: [[UInt16]], masks: [[UInt8]], layers: [[UInt8]?], width: Int, height: Int) -> [UInt8]? {
        let frames = min(pixels.count, masks.count)
        guard frames > 0 else { return nil }
        let areas = masks.prefix(frames).map { mask in mask.reduce(0) { $0 + ($1 > 127 ? 1 : 0) } }
        let index = areas.indices.max { areas[$0] < areas[$1] }!
        let layer = layers[index] ?? layers.prefix(frames).last { $0 != nil } ?? nil
        let brightest = Double(max(pixels[index].max() ?? 1, 1))
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            let grey = UInt8(clampingFinite: Double(pixels[index][i]) / brightest * 200)
            let vessel = masks[index][i] > 127, mapped = (layer?[i] ?? 0) > 0
            rgb[3 * i] = mapped ? 255 : grey
            rgb[3 * i + 1] = vessel ? 255 : grey
            rgb[3 * i + 2] = vessel || mapped ? 0 : grey
        }
        return PNGEncoder.encode(rgb, width: width, height: height, channels: 3)
    }

    public static func motion(pixels: [[UInt16]], motion: [MotionEstimate], width: Int, height: Int) -> [UInt8]? {
        var reference = 0, chosen: (index: Int, reference: Int)?, largest: Float = -1
        for index in pixels.indices {
            if motion[index].state == .lost { reference = index; continue }
            guard index > reference, motion[index].state == .tracking else { continue }
            let size = abs(motion[index].dx) + abs(motion[index].dy)
            if size > largest { (largest, chosen) = (size, (index, reference)) }
        }
        guard let chosen else { return nil }
        let live = MotionResidual.logarithm(pixels[chosen.index]), base = MotionResidual.logarithm(pixels[chosen.reference])
        let shift = (dx: motion[chosen.index].dx, dy: motion[chosen.index].dy)
        var grey = [UInt8](repeating: 128, count: 2 * width * height)
        for y in 0..<height {
            for x in 0..<width {
                let i = y * width + x
                grey[y * 2 * width + x] = UInt8(clampingFinite: min(max(128 + 400 * (live[i] - base[i]), 0), 255))
                guard
                    let moved = MotionResidual.sample(live, width: width, height: height, x: Float(x) + shift.dx, y: Float(y) + shift.dy)
                else { continue }
                grey[y * 2 * width + width + x] = UInt8(clampingFinite: min(max(128 + 400 * (moved - base[i]), 0), 255))
            }
        }
        return PNGEncoder.encode(grey, width: 2 * width, height: height, channels: 1)
    }
}
