import FluoroCore

/// The roadmap stage (after `render`): builds the vessel map from the run's contrast frames (one per cardiac
/// phase when the frames carry it), then on every later frame moves the map of its phase by the frame's motion
/// estimate (from the motion stage upstream), blends it into the display image in colour, and draws the
/// devices' centre lines and tips on top.
///
/// Lifecycle, in `annotations.roadmap.state`: `building` (mask, then contrast) → `active` (drawn) → `invalid`
/// on the frame where registration is lost (a table move or a failure: the map's reference is gone) →
/// `cleared` on the next frame (the map is discarded) → `building` again from the frames after it.
public final class RoadmapOverlay: Stage {
    public let name = "roadmap"
    public let parameters: RoadmapParameters
    private var builder: VesselMapBuilder?
    private var invalidated = false

    public init(parameters: RoadmapParameters = RoadmapParameters()) {
        self.parameters = parameters
    }

    public func prepare(for geometry: FrameGeometry) throws {
        builder = VesselMapBuilder(geometry: geometry, parameters: parameters)
    }

    public func process(_ frame: Frame) throws {
        guard let builder else { return }
        let motion = frame.annotations.motion
        var roadmap = RoadmapAnnotation()
        roadmap.offsetX = motion.dx
        roadmap.offsetY = motion.dy
        defer {
            roadmap.contrastFrames = builder.contrastFrames
            frame.annotations.roadmap = roadmap
        }
        if invalidated {
            invalidated = false
            builder.reset()
            roadmap.state = .cleared
            return
        }
        if motion.state == .lost {
            invalidated = true
            roadmap.state = .invalid
            roadmap.invalidation = .registrationLost
            return
        }
        if builder.phase != .complete {
            if let range = parameters.frameRange {
                if range.contains(frame.index) {
                    builder.add(UnsafeBufferPointer(frame.pixels), dx: motion.dx, dy: motion.dy, cardiacPhase: frame.cardiacPhase,
                                last: frame.index == range.upperBound)
                }
            } else {
                builder.add(UnsafeBufferPointer(frame.pixels), dx: motion.dx, dy: motion.dy, cardiacPhase: frame.cardiacPhase)
            }
            if builder.phase != .complete {
                roadmap.state = .building
                return
            }
        }
        roadmap.state = .active
        let map = builder.map(forPhase: frame.cardiacPhase)
        roadmap.vesselPixels = map.vesselPixels
        blend(map.opacity, into: frame, dx: motion.dx, dy: motion.dy)
        roadmap.drawn = true
        let painter = OverlayPainter(frame: frame)
        painter.draw(frame.annotations.catheter, colour: (0, 220, 255))
        painter.draw(frame.annotations.guidewire, colour: (255, 230, 0))
    }

    /// Blends the map, moved by (dx, dy) (a reference point p appears at p + d), into the display image: each
    /// pixel goes towards the colour by opacity × the map's value (bilinear, 8-bit fixed point).
    private func blend(_ map: UnsafeMutableBufferPointer<UInt8>, into frame: Frame, dx: Float, dy: Float) {
        let width = frame.geometry.width, height = frame.geometry.height
        let sourceX = -dx, sourceY = -dy
        let ix = Int(sourceX.rounded(.down)), iy = Int(sourceY.rounded(.down))
        let fx = Int(((sourceX - Float(ix)) * 256).rounded()), fy = Int(((sourceY - Float(iy)) * 256).rounded())
        let w00 = (256 - fx) * (256 - fy), w01 = fx * (256 - fy), w10 = (256 - fx) * fy, w11 = fx * fy
        let strength = Int(parameters.opacity * 256)
        let red = Int(parameters.colour.red), green = Int(parameters.colour.green), blue = Int(parameters.colour.blue)
        let display = frame.display.baseAddress!, source = map.baseAddress!
        for y in 0..<height {
            let y0 = y + iy, y1 = y0 + 1
            guard y0 >= 0, y1 < height else { continue }
            let top = source + y0 * width, bottom = source + y1 * width
            let xStart = max(0, -ix), xEnd = min(width, width - 1 - ix)
            guard xStart < xEnd else { continue }
            for x in xStart..<xEnd {
                let sx = x &+ ix
                let a = Int(top[sx]), b = Int(top[sx &+ 1]), c = Int(bottom[sx]), d = Int(bottom[sx &+ 1])
                if a | b | c | d == 0 { continue }
                // value 0…255 (×65536 from the weights), then alpha 0…256 with the overlay's opacity.
                let value = (w00 &* a &+ w01 &* b &+ w10 &* c &+ w11 &* d) >> 16
                let alpha = (value &* strength) >> 8
                let pixel = display + 3 &* (y &* width &+ x)
                pixel[0] = UInt8(truncatingIfNeeded: Int(pixel[0]) &+ (((red &- Int(pixel[0])) &* alpha) >> 8))
                pixel[1] = UInt8(truncatingIfNeeded: Int(pixel[1]) &+ (((green &- Int(pixel[1])) &* alpha) >> 8))
                pixel[2] = UInt8(truncatingIfNeeded: Int(pixel[2]) &+ (((blue &- Int(pixel[2])) &* alpha) >> 8))
            }
        }
    }
}
