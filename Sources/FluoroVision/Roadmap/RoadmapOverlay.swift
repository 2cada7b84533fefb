import FluoroCore
import FluoroConcurrency

/// The roadmap stage (after `render`): blends a vessel map into the display image in colour and draws the
/// devices' centre lines and tips on top. The map is made by `parameters.method`:
///
/// - `vesselness` (`DynamicRoadmap`): each frame that shows its contrast is drawn with its own vessel map; the
///   frames after them with the stored map of the contrast frame at the same phase, moved by the motion between
///   the two frames. A registration loss discards the stored maps.
/// - `subtraction` (`VesselMapBuilder`), described below: one map built from the run's contrast frames (one per
///   cardiac phase when the frames carry it), drawn on every later frame moved by the frame's motion estimate
///   (from the motion stage upstream).
///
/// Lifecycle of a subtraction map, in `annotations.roadmap.state`: `building` (mask, then contrast) → `active` (drawn) → `invalid`
/// on the frame where registration is lost (a table move or a failure: the map's reference is gone) →
/// `cleared` on the next frame (the map is discarded) → `building` again from the frames after it.
///
/// Built from a separate run instead (`buildRun`, e.g. an earlier injection), the map is complete before the
/// first live frame; the live run is placed on it by registering its first frame against that run's first
/// frame, then following the motion stage's estimates. A registration loss makes the frame `invalid` and the
/// placement is redone on the next; a C-arm that moved between the runs (`cArmMoved`) makes every frame
/// `invalid` (`geometry_changed`): the vessels project differently.
///
/// With `splitting`, a helper thread shares the blending of each frame's rows. With `backgroundCompletion` (for live
/// runs) the map is completed on another thread when the contrast is over, while frames go on (`building`) until
/// it is ready: completing takes tens of milliseconds at 1024², which would make that frame late. Without it
/// (replay) the frame that ends the contrast waits, and the result does not depend on thread timing.
public final class RoadmapOverlay: Stage {
    public let name = "roadmap"
    public let parameters: RoadmapParameters
    public let splitting: Bool
    public let backgroundCompletion: Bool
    private var splitter: WorkSplitter?
    private lazy var blend = OwnedWork(self) { $0.blend(rows: $1) }
    private var completer: (thread: HelperThread, work: OwnedWork<VesselMapBuilder>)?
    /// Whether the completer is completing the map (the builder is its alone until it is idle).
    private var completing = false
    /// The blend in progress: the map, the frame, and the shift.
    private var blending: (map: UnsafeMutableBufferPointer<UInt8>, frame: Frame, dx: Float, dy: Float)?
    private let buildRun: FrameSource?
    private let cArmMoved: Bool
    private var builder: VesselMapBuilder?
    private var dynamic: DynamicRoadmap?
    private var invalidated = false
    /// With a build run: its first frame's registration, and the live run's placement on it (the shift of the
    /// live frame it was measured on, and that frame's motion estimate in the live run).
    private var placement: Registration?
    private var buildReference: [UInt16] = []
    private var placed: (dx: Float, dy: Float, motionX: Float, motionY: Float)?

    public init(
        parameters: RoadmapParameters = RoadmapParameters(), buildRun: FrameSource? = nil, cArmMoved: Bool = false,
        splitting: Bool = true, backgroundCompletion: Bool = false
    ) {
        self.parameters = parameters
        self.splitting = splitting
        self.backgroundCompletion = backgroundCompletion
        self.buildRun = buildRun
        self.cArmMoved = cArmMoved
    }

    public func prepare(for geometry: FrameGeometry) throws {
        if splitting { splitter = WorkSplitter(name: "roadmap-helper") }
        if parameters.method == .vesselness, buildRun == nil {
            guard min(geometry.width, geometry.height) >= DynamicRoadmap.smallestSide else {
                throw FluoroError.invalidArgument(
                    "the vesselness roadmap needs frames of at least \(DynamicRoadmap.smallestSide) pixels a side, not \(geometry); use --roadmap-method subtraction"
                )
            }
            dynamic = DynamicRoadmap(geometry: geometry, parameters: parameters, splitter: splitter)
            return
        }
        let builder = VesselMapBuilder(
            geometry: geometry, parameters: parameters,
            deferredCompletion: backgroundCompletion && buildRun == nil, splitter: splitter)
        self.builder = builder
        if builder.deferredCompletion {
            completer = (HelperThread(name: "roadmap-build"), OwnedWork(builder) { builder, _ in builder.completeMap() })
        }
        guard let run = buildRun else { return }
        guard run.geometry == geometry else {
            throw FluoroError.invalidArgument("the roadmap run \(run.name) is \(run.geometry), the live run \(geometry): they must match")
        }
        let frame = Frame(slot: 0, geometry: geometry, stageCount: 1)
        let registration = Registration(geometry: geometry)
        let reference = Registration(geometry: geometry)
        while try run.read(into: frame) {
            if let range = parameters.frameRange, !range.contains(frame.index) { continue }
            let motion = registration.estimate(UnsafeBufferPointer(frame.pixels))
            if !reference.hasReference {
                reference.setReference(UnsafeBufferPointer(frame.pixels))
                buildReference = Array(frame.pixels)
            }
            guard motion.state == .tracking else {
                throw FluoroError.invalidArgument(
                    "the roadmap run \(run.name) lost registration at frame \(frame.index) "
                        + "(a table move?): build from a steady part of it with --roadmap-frames")
            }
            builder.add(
                UnsafeBufferPointer(frame.pixels), dx: motion.dx, dy: motion.dy, cardiacPhase: frame.cardiacPhase,
                last: frame.index == parameters.frameRange?.upperBound)
            if builder.phase == .complete { break }
        }
        builder.finish()
        guard builder.phase == .complete else {
            throw FluoroError.invalidArgument("the roadmap run \(run.name) shows no contrast injection to build a vessel map from")
        }
        placement = reference
    }

    public func process(_ frame: Frame) throws {
        if let dynamic { return process(frame, with: dynamic) }
        guard let builder else { return }
        let motion = frame.annotations.motion
        var roadmap = RoadmapAnnotation()
        roadmap.offsetX = motion.dx
        roadmap.offsetY = motion.dy
        roadmap.mapSource = .subtraction
        defer {
            if !roadmap.drawn { roadmap.mapSource = nil }
            roadmap.contrastFrames = builder.contrastFrames
            frame.annotations.roadmap = roadmap
        }
        if placement != nil {
            roadmap.state = .invalid
            if cArmMoved {
                roadmap.invalidation = .geometryChanged
                return
            }
            guard motion.state != .lost, let offset = place(frame) else {
                placed = nil
                roadmap.invalidation = .registrationLost
                return
            }
            roadmap.offsetX = offset.dx
            roadmap.offsetY = offset.dy
            draw(builder, on: frame, dx: offset.dx, dy: offset.dy, into: &roadmap)
            return
        }
        if completing, let (thread, _) = completer {
            // A registration loss while the map is being completed: the map's reference is gone; it is cleared
            // once the completion has ended.
            if motion.state == .lost { invalidated = true }
            guard thread.isIdle else {
                roadmap.state = invalidated ? .invalid : .building
                if invalidated { roadmap.invalidation = .registrationLost }
                return
            }
            completing = false
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
                    builder.add(
                        UnsafeBufferPointer(frame.pixels), dx: motion.dx, dy: motion.dy, cardiacPhase: frame.cardiacPhase,
                        last: frame.index == range.upperBound)
                }
            } else {
                builder.add(UnsafeBufferPointer(frame.pixels), dx: motion.dx, dy: motion.dy, cardiacPhase: frame.cardiacPhase)
            }
            if builder.phase == .completing, let (thread, work) = completer {
                // From here the builder is the helper's until it is idle: not even its phase is read.
                thread.start(work, part: 0, range: 0..<1)
                completing = true
                roadmap.state = .building
                return
            }
            if builder.phase != .complete {
                roadmap.state = .building
                return
            }
        }
        draw(builder, on: frame, dx: motion.dx, dy: motion.dy, into: &roadmap)
    }

    /// A frame of the dynamic roadmap: its own map, a stored one moved by the motion between the two frames,
    /// or nothing yet; `invalid` (not drawn) on a registration loss without a live map.
    private func process(_ frame: Frame, with dynamic: DynamicRoadmap) {
        let motion = frame.annotations.motion
        let tracking = motion.state != .lost
        var roadmap = RoadmapAnnotation()
        let choice = dynamic.process(
            UnsafeBufferPointer(frame.pixels), frameIndex: frame.index,
            shift: tracking ? DynamicRoadmap.Shift(dx: motion.dx, dy: motion.dy) : nil)
        roadmap.contrastFrames = dynamic.contrastFrames
        switch choice {
        case .building:
            roadmap.state = tracking ? .building : .invalid
            if !tracking { roadmap.invalidation = .registrationLost }
        case .live:
            roadmap.mapSource = .live
            roadmap.mapFrame = frame.index
            draw(dynamic.drawnMap, pixels: dynamic.drawnPixels, on: frame, dx: 0, dy: 0, into: &roadmap)
        case .stored(let index, _, let shift):
            roadmap.mapSource = .stored
            roadmap.mapFrame = index
            roadmap.offsetX = motion.dx - shift.dx
            roadmap.offsetY = motion.dy - shift.dy
            draw(dynamic.drawnMap, pixels: dynamic.drawnPixels, on: frame, dx: roadmap.offsetX, dy: roadmap.offsetY, into: &roadmap)
        }
        frame.annotations.roadmap = roadmap
    }

    public func finish() throws {
        if completing { completer?.thread.wait() }
    }

    /// The live frame's shift against the build run's first frame: measured on the first frame (and after a
    /// loss), then carried by the motion estimates. Nil when the measurement fails.
    private func place(_ frame: Frame) -> (dx: Float, dy: Float)? {
        let motion = frame.annotations.motion
        if let placed {
            return (placed.dx + motion.dx - placed.motionX, placed.dy + motion.dy - placed.motionY)
        }
        guard let placement else { return nil }
        let measured = placement.estimate(UnsafeBufferPointer(frame.pixels))
        guard measured.state == .tracking else {
            // A failed match made the live frame the estimator's reference: put the build run's back.
            buildReference.withUnsafeBufferPointer { placement.setReference($0) }
            return nil
        }
        placed = (measured.dx, measured.dy, motion.dx, motion.dy)
        return (measured.dx, measured.dy)
    }

    private func draw(_ builder: VesselMapBuilder, on frame: Frame, dx: Float, dy: Float, into roadmap: inout RoadmapAnnotation) {
        let map = builder.map(forPhase: frame.cardiacPhase)
        draw(map.opacity, pixels: map.vesselPixels, on: frame, dx: dx, dy: dy, into: &roadmap)
    }

    /// Blends `map` (full resolution, moved by (dx, dy)) into the frame and draws the devices on top.
    private func draw(
        _ map: UnsafeMutableBufferPointer<UInt8>, pixels: Int, on frame: Frame, dx: Float, dy: Float,
        into roadmap: inout RoadmapAnnotation
    ) {
        roadmap.state = .active
        roadmap.vesselPixels = pixels
        blending = (map, frame, dx, dy)
        blend.perform(0..<frame.geometry.height, splitter: splitter)
        blending = nil
        roadmap.drawn = true
        let painter = OverlayPainter(frame: frame)
        painter.draw(frame.annotations.catheter, colour: (0, 220, 255))
        painter.draw(frame.annotations.guidewire, colour: (255, 230, 0))
    }

    /// Blends the rows `rows` of the map, moved by (dx, dy) (a reference point p appears at p + d), into the
    /// display image: each pixel goes towards the colour by opacity × the map's value (bilinear, 8-bit fixed
    /// point). The moved map itself goes into the frame's roadmap layer.
    private func blend(rows: Range<Int>) {
        guard let (map, frame, dx, dy) = blending else { return }
        let width = frame.geometry.width, height = frame.geometry.height
        let sourceX = -dx, sourceY = -dy
        let ix = Int(clampingFinite: sourceX.rounded(.down)), iy = Int(clampingFinite: sourceY.rounded(.down))
        let fx = Int(clampingFinite: ((sourceX - Float(ix)) * 256).rounded()),
            fy = Int(clampingFinite: ((sourceY - Float(iy)) * 256).rounded())
        let w00 = (256 - fx) * (256 - fy), w01 = fx * (256 - fy), w10 = (256 - fx) * fy, w11 = fx * fy
        let strength = Int(clampingFinite: parameters.opacity * 256)
        let red = Int(parameters.colour.red), green = Int(parameters.colour.green), blue = Int(parameters.colour.blue)
        let display = frame.display.baseAddress!, source = map.baseAddress!, layer = frame.roadmapLayer.baseAddress!
        (layer + rows.lowerBound * width).update(repeating: 0, count: rows.count * width)
        for y in rows {
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
                layer[y &* width &+ x] = UInt8(truncatingIfNeeded: value)
                let alpha = (value &* strength) >> 8
                let pixel = display + 3 &* (y &* width &+ x)
                pixel[0] = UInt8(truncatingIfNeeded: Int(pixel[0]) &+ (((red &- Int(pixel[0])) &* alpha) >> 8))
                pixel[1] = UInt8(truncatingIfNeeded: Int(pixel[1]) &+ (((green &- Int(pixel[1])) &* alpha) >> 8))
                pixel[2] = UInt8(truncatingIfNeeded: Int(pixel[2]) &+ (((blue &- Int(pixel[2])) &* alpha) >> 8))
            }
        }
    }
}
