import Foundation
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

    public static func devices(pixels: [[UInt16]], truth: DeviceTruth, reported: [ReportedDevices], width: Int, height: Int) -> [UInt8]? {
        let frames = min(pixels.count, truth.frames.count, reported.count)
        guard frames > 0 else { return nil }
        let chosen = (0..<4).map { $0 * (frames - 1) / 3 }
        let stride = 4 * width
        var rgb = [UInt8](repeating: 0, count: stride * height * 3)
        for (panel, index) in chosen.enumerated() {
            let brightest = Double(max(pixels[index].max() ?? 1, 1))
            for y in 0..<height {
                for x in 0..<width {
                    let grey = UInt8(clampingFinite: Double(pixels[index][y * width + x]) / brightest * 200)
                    let at = 3 * (y * stride + panel * width + x)
                    (rgb[at], rgb[at + 1], rgb[at + 2]) = (grey, grey, grey)
                }
            }
            func plot(_ x: Float, _ y: Float, _ colour: (UInt8, UInt8, UInt8)) {
                guard let column = Int(checked: x.rounded()), let row = Int(checked: y.rounded()),
                    (0..<width).contains(column), (0..<height).contains(row)
                else { return }
                let at = 3 * (row * stride + panel * width + column)
                (rgb[at], rgb[at + 1], rgb[at + 2]) = colour
            }
            func draw(_ line: [Point2], _ colour: (UInt8, UInt8, UInt8)) {
                for point in CenterlineMatch.resample(line) { plot(point.x, point.y, colour) }
            }
            let green: (UInt8, UInt8, UInt8) = (0, 255, 0)
            for kind in DeviceKind.allCases {
                guard let line = truth.frames[index].line(kind) else { continue }
                draw(line, green)
                let tip = line[line.count - 1]
                for step in 0..<64 {
                    let angle = Float(step) * .pi / 32
                    plot(tip.x + 8 * cos(angle), tip.y + 8 * sin(angle), green)
                }
            }
            for (kind, colour) in [(DeviceKind.catheter, (UInt8(0), UInt8(220), UInt8(255))), (.guidewire, (255, 220, 0))] {
                guard let device = reported[index].device(kind) else { continue }
                draw(device.centerline, colour)
                if let tip = device.tip {
                    for offset in -4...4 {
                        plot(tip.x + Float(offset), tip.y, colour)
                        plot(tip.x, tip.y + Float(offset), colour)
                    }
                }
            }
        }
        return PNGEncoder.encode(rgb, width: stride, height: height, channels: 3)
    }
}
