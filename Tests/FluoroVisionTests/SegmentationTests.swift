import FluoroCore
import FluoroConcurrency
import FluoroSources
import FluoroVision
import Foundation
import Testing

/// Centre-line agreement at a tolerance: the share of detected points near the truth (precision) and of truth
/// points near the detection (recall), both polylines densified to half-pixel steps.
struct CenterlineScore {
    var precision: Double
    var recall: Double
    var f1: Double { precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0 }

    init(detected: [Point2], truth: [Point2], tolerance: Float = 2) {
        let d = Self.densify(detected), t = Self.densify(truth)
        precision = d.isEmpty ? 0 : Double(Self.covered(d, by: t, tolerance: tolerance)) / Double(d.count)
        recall = t.isEmpty ? 1 : Double(Self.covered(t, by: d, tolerance: tolerance)) / Double(t.count)
    }

    static func densify(_ points: [Point2]) -> [Point2] {
        guard points.count > 1 else { return points }
        var out: [Point2] = []
        for k in 1..<points.count {
            let a = points[k - 1], b = points[k]
            let steps = max(1, Int((max(abs(b.x - a.x), abs(b.y - a.y)) * 2).rounded(.up)))
            for s in 0..<steps {
                let t = Float(s) / Float(steps)
                out.append(Point2(x: a.x + t * (b.x - a.x), y: a.y + t * (b.y - a.y)))
            }
        }
        out.append(points[points.count - 1])
        return out
    }

    /// How many of `points` lie within `tolerance` of some point of `reference` (a grid makes it linear).
    static func covered(_ points: [Point2], by reference: [Point2], tolerance: Float) -> Int {
        var grid: [Int: [Point2]] = [:]
        let cell = tolerance
        func key(_ x: Int, _ y: Int) -> Int { x &* 73_856_093 ^ y &* 19_349_663 }
        for p in reference { grid[key(Int((p.x / cell).rounded(.down)), Int((p.y / cell).rounded(.down))), default: []].append(p) }
        return points.filter { p in
            let cx = Int((p.x / cell).rounded(.down)), cy = Int((p.y / cell).rounded(.down))
            for dy in -1...1 {
                for dx in -1...1 {
                    for q in grid[key(cx + dx, cy + dy)] ?? []
                    where (p.x - q.x) * (p.x - q.x) + (p.y - q.y) * (p.y - q.y) <= tolerance * tolerance {
                        return true
                    }
                }
            }
            return false
        }.count
    }
}

/// SplitMix64: a seeded generator, so the bootstrap and test noise repeat exactly.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A bootstrap 95 % confidence interval of `statistic` over `values` (resampled with a fixed seed).
func bootstrapInterval(_ values: [Double], statistic: ([Double]) -> Double) -> (low: Double, high: Double) {
    var generator = SplitMix(seed: 99)
    var estimates: [Double] = []
    for _ in 0..<1000 {
        let sample = (0..<values.count).map { _ in values[Int(generator.next() % UInt64(values.count))] }
        estimates.append(statistic(sample))
    }
    estimates.sort()
    return (estimates[25], estimates[974])
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// Per-frame results of the segmenter on a synthetic run, with motion from the registration.
struct SegmentationRun {
    var f1: [DeviceKind: [Double]] = [:]
    var tipError: [DeviceKind: [Double]] = [:]
}

/// A synthetic run of `size`², `frames` frames with contrast arriving at a third and washed out 5 frames before the
/// end (`configure` changes the rest: a collimator, say) through registration and the segmenter: `inspect` sees
/// each segmented frame and the run's source (for its truth).
func segmentFrames(
    size: Int, frames: Int, seed: UInt64, method: SegmentationMethod,
    configure: (inout SyntheticParameters) -> Void = { _ in },
    inspect: (Frame, SyntheticSource) throws -> Void
) throws {
    var parameters = SyntheticParameters()
    parameters.size = size
    parameters.frameCount = frames
    parameters.seed = seed
    parameters.contrast = .init(start: frames / 3, peak: frames / 2, washedOut: frames - 5)
    configure(&parameters)
    let source = try SyntheticSource(parameters: parameters)
    let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
    let registration = Registration(geometry: source.geometry)
    var settings = SegmentationParameters()
    settings.method = method
    let segmenter = try DeviceSegmenter(geometry: source.geometry, parameters: settings)
    while try source.read(into: frame) {
        frame.annotations.motion = registration.estimate(UnsafeBufferPointer(frame.pixels))
        segmenter.segment(UnsafeBufferPointer(frame.pixels), into: &frame.annotations)
        try inspect(frame, source)
    }
}

/// Per-device centre-line F1 and tip error of each frame of a synthetic run (see `segmentFrames`).
func segmentSynthetic(
    size: Int, frames: Int, seed: UInt64, method: SegmentationMethod = .ridge,
    configure: (inout SyntheticParameters) -> Void = { _ in }
) throws -> SegmentationRun {
    var run = SegmentationRun()
    try segmentFrames(size: size, frames: frames, seed: seed, method: method, configure: configure) { frame, source in
        /// Behind a collimator's blades, and within the segmenter's 12-pixel margin of them, nothing can be seen:
        /// the truth is scored where the field is exposed.
        let visible: (Point2) -> Bool = { point in
            guard let collimator = source.parameters.collimator else { return true }
            return collimator.depth(x: Double(point.x), y: Double(point.y), size: size) > Double(12 * max(size / 512, 1) + 3)
        }
        let truth = source.truth(forFrame: frame.index)
        for (trace, device) in [(frame.annotations.guidewire, try #require(truth.guidewire)), (frame.annotations.catheter, truth.catheter)]
        {
            run.f1[trace.kind, default: []].append(CenterlineScore(detected: trace.centerline, truth: device.centerline.filter(visible)).f1)
            let tipError = trace.tip.map {
                Double((($0.x - device.tip.x) * ($0.x - device.tip.x) + ($0.y - device.tip.y) * ($0.y - device.tip.y)).squareRoot())
            }
            run.tipError[trace.kind, default: []].append(tipError ?? .infinity)
        }
    }
    return run
}

@Suite struct SegmentationTests {
    /// The seeds were never used while developing or tuning the segmenter (that used seeds 7 and 3001–3015) nor
    /// for training the network (6001–6036): 3101–3103 for the classic path; the learned path, developed after
    /// those had been looked at, is measured on 3201–3203.
    @Test(arguments: SegmentationMethod.allCases, [(512, 40, [3101, 3102] as [UInt64]), (1024, 30, [3103] as [UInt64])])
    func syntheticCenterlinesAndTipsAreFound(method: SegmentationMethod, run: (size: Int, frames: Int, seeds: [UInt64])) throws {
        let (size, frames) = (run.size, run.frames)
        let seeds = method == .learned ? run.seeds.map { $0 + 100 } : run.seeds
        var pooled = SegmentationRun()
        for seed in seeds {
            let run = try segmentSynthetic(size: size, frames: frames, seed: seed, method: method)
            for kind in DeviceKind.allCases {
                pooled.f1[kind, default: []] += run.f1[kind] ?? []
                pooled.tipError[kind, default: []] += run.tipError[kind] ?? []
            }
        }
        for kind in DeviceKind.allCases {
            let f1 = pooled.f1[kind]!, tips = pooled.tipError[kind]!
            let meanF1 = f1.reduce(0, +) / Double(f1.count), tipMedian = median(tips)
            let f1Interval = bootstrapInterval(f1) { $0.reduce(0, +) / Double($0.count) }
            let tipInterval = bootstrapInterval(tips, statistic: median)
            print(
                String(
                    format:
                        "%@ %d² %@ (%d frames): centre-line F1 %.3f (95 %% CI %.3f–%.3f), tip error median %.2f px (95 %% CI %.2f–%.2f)",
                    method.rawValue, size, kind.rawValue, f1.count, meanF1, f1Interval.low, f1Interval.high, tipMedian, tipInterval.low,
                    tipInterval.high))
            #expect(meanF1 >= 0.9, "\(method) \(size)² \(kind): F1 \(meanF1)")
            #expect(tipMedian <= 3, "\(method) \(size)² \(kind): tip error median \(tipMedian) px")
        }
        guard method == .learned else { return }
        // The classic path on the same seeds (never used to tune it either): the learned path must beat it on at
        // least one of the two measures; it does on the catheter's tip at 1024² (the size the speed goals are set
        // for). At 512² the two catheter tips lie within each other's intervals (the network is trained on blurred
        // crops too, so that it works on rubo-0002; docs/validation.md, "Device segmentation"): there the learned
        // tip must stay within 0.25 px of the classic one.
        var classic = SegmentationRun()
        for seed in seeds {
            let run = try segmentSynthetic(size: size, frames: frames, seed: seed, method: .ridge)
            for kind in DeviceKind.allCases { classic.tipError[kind, default: []] += run.tipError[kind] ?? [] }
            for kind in DeviceKind.allCases { classic.f1[kind, default: []] += run.f1[kind] ?? [] }
        }
        for kind in DeviceKind.allCases {
            let tips = classic.tipError[kind]!, f1 = classic.f1[kind]!
            let interval = bootstrapInterval(tips, statistic: median)
            print(
                String(
                    format: "ridge on the learned path's seeds, %d² %@: centre-line F1 %.3f, tip error median %.2f px (95 %% CI %.2f–%.2f)",
                    size, kind.rawValue, f1.reduce(0, +) / Double(f1.count), median(tips), interval.low, interval.high))
        }
        let learnedTip = median(pooled.tipError[.catheter]!), classicTip = median(classic.tipError[.catheter]!)
        if size >= 1024 {
            #expect(learnedTip < classicTip, "\(size)²: learned catheter tip \(learnedTip) px, classic \(classicTip) px on the same seeds")
        } else {
            #expect(
                learnedTip <= classicTip + 0.25,
                "\(size)²: learned catheter tip \(learnedTip) px, classic \(classicTip) px on the same seeds")
        }
    }

    /// A collimated field (a circle cutting the frame's corners, an octagon well inside it): its edge, the
    /// strongest "ridge" in the image, is not taken for a device, and the learned network, which never saw a
    /// collimator in training, finds both devices in both (its input is normalised over the exposed field). The
    /// octagon hides most of the catheter: at peak opacification the classic trace could run down the vessel and
    /// turn round, and tracking orients the line by both predicted ends so that it keeps its direction
    /// (docs/algorithms/segmentation.md, "Classic path", step 7). Seeds 3501–3502 are not used for anything else.
    @Test(arguments: SegmentationMethod.allCases)
    func aCollimatedFieldIsNotADevice(method: SegmentationMethod) throws {
        for (seed, collimator) in [
            (UInt64(3501), SyntheticParameters.Collimator(shape: .circle, radius: 1.1)),
            (3502, .init(shape: .octagon, radius: 0.9)),
        ] {
            let run = try segmentSynthetic(size: 512, frames: 30, seed: seed, method: method) { $0.collimator = collimator }
            for kind in DeviceKind.allCases {
                let f1 = run.f1[kind]!, tips = run.tipError[kind]!
                let meanF1 = f1.reduce(0, +) / Double(f1.count)
                print(
                    String(
                        format: "%@ collimated (%@) seed %d %@: centre-line F1 %.3f, tip error median %.2f px",
                        method.rawValue, collimator.shape.rawValue, seed, kind.rawValue, meanF1, median(tips)))
                #expect(meanF1 >= 0.9 && median(tips) <= 3, "\(method) \(collimator.shape) \(kind): F1 \(meanF1), tip \(median(tips)) px")
            }
        }
    }

    /// A diagnostic injection: a catheter with no wire in it, the vessel tree starting at its tip (seeds 3411–3412,
    /// held out for the classic path; the learned path's width rule was looked at on them). The end of a catheter
    /// fades like a narrowing, which the catheter/wire split could report as a wire. A wire must reach 8 level pixels
    /// beyond the catheter (`minimumWireExtension`), and on the classic path a shorter part beyond it counts as the
    /// catheter's end: phantom wires remain in the first frames of each run, before tracking holds the catheter's
    /// tip, and at peak opacification, where the trace runs on into the vessel (docs/validation.md, "Device
    /// segmentation"). Asserted for the classic path at 35 %. The learned network's catheter probability fades
    /// 100–120 px before the catheter's end on both seeds; a fresh "wire" as wide as the catheter before it is the
    /// catheter's end (`wireNarrowing`). On 3412 the network takes that part for a contrast-filled vessel,
    /// where no width is measured, and the phantom wire stays: 36 of 80 frames in all. Asserted for the learned
    /// path at 60 %.
    @Test(arguments: SegmentationMethod.allCases)
    func aCatheterAloneIsSeldomSplitIntoAWire(method: SegmentationMethod) throws {
        var frames = 0, withCatheter = 0, withWire = 0
        for seed in [3411, 3412] as [UInt64] {
            try segmentFrames(
                size: 512, frames: 40, seed: seed, method: method, configure: { $0.procedure = .diagnostic },
                inspect: { frame, _ in
                    frames += 1
                    if frame.annotations.catheter.isPresent { withCatheter += 1 }
                    if frame.annotations.guidewire.isPresent { withWire += 1 }
                })
        }
        print(
            "\(method) diagnostic runs (seeds 3411–3412): a catheter in \(withCatheter) of \(frames) frames, a phantom wire in \(withWire)")
        #expect(Double(withCatheter) >= 0.9 * Double(frames), "a catheter in \(withCatheter) of \(frames) frames")
        #expect(Double(withWire) <= (method == .ridge ? 0.35 : 0.6) * Double(frames), "a phantom wire in \(withWire) of \(frames) frames")
    }

    /// The graph's segmentation stage splits the filtering of each frame (the ridge filter's passes, the network's
    /// layers) over two threads: the lines and tips must be exactly those of one thread.
    @Test(arguments: SegmentationMethod.allCases, [512, 1024])
    func splittingOverTwoThreadsChangesNothing(method: SegmentationMethod, size: Int) throws {
        var parameters = SyntheticParameters()
        parameters.size = size
        parameters.frameCount = 12
        parameters.seed = 3002
        let source = try SyntheticSource(parameters: parameters)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        let registration = Registration(geometry: source.geometry)
        var settings = SegmentationParameters()
        settings.method = method
        let single = try DeviceSegmenter(geometry: source.geometry, parameters: settings)
        let split = try DeviceSegmenter(
            geometry: source.geometry, parameters: settings,
            splitter: WorkSplitter(name: "segment-helper"))
        var splitAnnotations = FrameAnnotations()
        while try source.read(into: frame) {
            frame.annotations.motion = registration.estimate(UnsafeBufferPointer(frame.pixels))
            splitAnnotations.motion = frame.annotations.motion
            single.segment(UnsafeBufferPointer(frame.pixels), into: &frame.annotations)
            split.segment(UnsafeBufferPointer(frame.pixels), into: &splitAnnotations)
            for (one, two) in [
                (frame.annotations.guidewire, splitAnnotations.guidewire),
                (frame.annotations.catheter, splitAnnotations.catheter),
            ] {
                #expect(one.isPresent)
                #expect(
                    one.centerline == two.centerline && one.tip == two.tip && one.confidence == two.confidence,
                    "frame \(frame.index) \(one.kind)")
            }
        }
    }

    /// The combined stage filters each frame while it registers it: its motion, lines and tips must be exactly
    /// those of a motion stage followed by a segmentation stage.
    @Test(arguments: SegmentationMethod.allCases)
    func registeringAndFilteringSideBySideChangesNothing(method: SegmentationMethod) throws {
        var parameters = SyntheticParameters()
        parameters.size = 512
        parameters.frameCount = 12
        parameters.seed = 3002
        let source = try SyntheticSource(parameters: parameters)
        var settings = SegmentationParameters()
        settings.method = method
        let motion = MotionCompensation(), segmentation = DeviceSegmentation(parameters: settings)
        let combined = RegisteredSegmentation(segmentation: settings)
        for stage in [motion, segmentation, combined] as [Stage] { try stage.prepare(for: source.geometry) }
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 2)
        let twin = Frame(slot: 1, geometry: source.geometry, stageCount: 1)
        while try source.read(into: frame) {
            _ = twin.pixels.update(fromContentsOf: frame.pixels)
            try motion.process(frame)
            try segmentation.process(frame)
            try combined.process(twin)
            #expect(frame.annotations.motion.state == .tracking || frame.index == 0)
            #expect(frame.annotations.motion == twin.annotations.motion, "frame \(frame.index)")
            for (one, two) in [
                (frame.annotations.guidewire, twin.annotations.guidewire),
                (frame.annotations.catheter, twin.annotations.catheter),
            ] {
                #expect(one.isPresent)
                #expect(
                    one.centerline == two.centerline && one.tip == two.tip && one.confidence == two.confidence,
                    "frame \(frame.index) \(one.kind)")
            }
        }
    }

    @Test(arguments: SegmentationMethod.allCases)
    func aFrameWithoutDevicesReportsNone(method: SegmentationMethod) throws {
        let geometry = try FrameGeometry(width: 256, height: 256, format: .grey16, bitsStored: 12)
        var settings = SegmentationParameters()
        settings.method = method
        let segmenter = try DeviceSegmenter(geometry: geometry, parameters: settings)
        var generator = SplitMix(seed: 5)
        let noise = (0..<geometry.pixelCount).map { _ in UInt16(1800 + generator.next() % 400) }
        var annotations = FrameAnnotations()
        for _ in 0..<3 {
            noise.withUnsafeBufferPointer { segmenter.segment($0, into: &annotations) }
            let flat = [UInt16](repeating: 2000, count: geometry.pixelCount)
            flat.withUnsafeBufferPointer { segmenter.segment($0, into: &annotations) }
            #expect(!annotations.guidewire.isPresent && !annotations.catheter.isPresent)
        }
    }
}

/// Real runs: the centre line must lie on a dark curvilinear structure (darker than the image 5 pixels away on
/// both sides of it), and overlays of several frames are written for people to judge.
@Suite struct RealRunSegmentationTests {
    /// Both paths on both runs (the learned network is trained on synthetic runs, half of its crops blurred as real
    /// imaging chains blur, so that it finds rubo-0002's catheter; docs/algorithms/segmentation.md, "Learned path").
    @Test(
        .enabled(if: RealRunRegistrationTests.available, "real DICOM test data not found (set FLUORO_TEST_DATA)"),
        arguments: SegmentationMethod.allCases, ["xa/XA-MONO2-8-12x-catheter.dcm", "xa/rubo-0002-rca-contrast.dcm"])
    func centerlinesFollowTheDevice(method: SegmentationMethod, name: String) throws {
        let source = try DICOMSource(path: RealRunRegistrationTests.data + "/" + name)
        let geometry = source.geometry
        let frames = min(source.frameCount ?? 0, 40)
        let registration = Registration(geometry: geometry)
        var settings = SegmentationParameters()
        settings.method = method
        let segmenter = try DeviceSegmenter(geometry: geometry, parameters: settings)
        let renderer = DisplayRenderer()
        try renderer.prepare(for: geometry)
        let frame = Frame(slot: 0, geometry: geometry, stageCount: 1)
        var found = 0, onDarkLine = 0, points = 0
        var panels: [[UInt8]] = []
        let shown = Set(stride(from: 0, to: frames, by: max(1, frames / 4)).prefix(4))
        for index in 0..<frames {
            try source.decode(frameAt: index, into: frame.pixels)
            frame.annotations.motion = registration.estimate(UnsafeBufferPointer(frame.pixels))
            segmenter.segment(UnsafeBufferPointer(frame.pixels), into: &frame.annotations)
            let traces = [frame.annotations.guidewire, frame.annotations.catheter].filter(\.isPresent)
            if !traces.isEmpty { found += 1 }
            for trace in traces {
                let line = trace.centerline
                for k in 1..<max(line.count - 1, 1) {
                    let dx = line[k + 1].x - line[k - 1].x, dy = line[k + 1].y - line[k - 1].y
                    let length = (dx * dx + dy * dy).squareRoot()
                    guard length > 0 else { continue }
                    let nx = -dy / length * 5, ny = dx / length * 5
                    func sample(_ x: Float, _ y: Float) -> Float? {
                        let ix = Int(x.rounded()), iy = Int(y.rounded())
                        guard ix >= 0, iy >= 0, ix < geometry.width, iy < geometry.height else { return nil }
                        return Float(frame.pixels[iy * geometry.width + ix])
                    }
                    guard let centre = sample(line[k].x, line[k].y), let left = sample(line[k].x + nx, line[k].y + ny),
                        let right = sample(line[k].x - nx, line[k].y - ny)
                    else { continue }
                    points += 1
                    if centre < min(left, right) { onDarkLine += 1 }
                }
            }
            if shown.contains(index) {
                try renderer.process(frame)
                panels.append(Array(frame.display))
            }
        }
        let share = Double(onDarkLine) / Double(max(points, 1))
        print(
            "\(method) \(name): a device in \(found) of \(frames) frames; \(String(format: "%.1f", share * 100)) % of \(points) centre-line points darker than the image 5 px away on both sides"
        )
        #expect(Double(found) >= 0.8 * Double(frames), "\(method) \(name): a device in \(found) of \(frames) frames")
        #expect(share >= 0.8, "\(method) \(name): \(share) of centre-line points on a dark line")
        // Overlays for people: the chosen frames side by side.
        var mosaic: [UInt8] = []
        for y in 0..<geometry.height {
            for panel in panels { mosaic += panel[(3 * y * geometry.width)..<(3 * (y + 1) * geometry.width)] }
        }
        let png = PNGEncoder.encode(mosaic, width: panels.count * geometry.width, height: geometry.height, channels: 3)
        let stem = (name as NSString).lastPathComponent.replacingOccurrences(of: ".dcm", with: "")
        try Data(png).write(to: URL(fileURLWithPath: figuresDirectory + "/segmentation-\(method)-\(stem).png"))
    }

    /// Each frame's longest traced line (guidewire or catheter, proximal end first) through the path of `method`.
    private func longestLines(_ name: String, method: SegmentationMethod = .ridge) throws -> [[Point2]] {
        try annotations(name, method: method).map { [$0.guidewire, $0.catheter].map(\.centerline).max { $0.count < $1.count }! }
    }

    /// Each frame's annotations from the segmenter with `method`.
    private func annotations(_ name: String, method: SegmentationMethod) throws -> [FrameAnnotations] {
        let source = try DICOMSource(path: RealRunRegistrationTests.data + "/" + name)
        let registration = Registration(geometry: source.geometry)
        var parameters = SegmentationParameters()
        parameters.method = method
        let segmenter = try DeviceSegmenter(geometry: source.geometry, parameters: parameters)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        return try (0..<(source.frameCount ?? 0)).map { index in
            try source.decode(frameAt: index, into: frame.pixels)
            frame.annotations.motion = registration.estimate(UnsafeBufferPointer(frame.pixels))
            segmenter.segment(UnsafeBufferPointer(frame.pixels), into: &frame.annotations)
            return frame.annotations
        }
    }

    private func distance(_ p: Point2, _ q: Point2) -> Float { ((p.x - q.x) * (p.x - q.x) + (p.y - q.y) * (p.y - q.y)).squareRoot() }

    /// On rubo-0002 (a diagnostic injection of the right coronary artery: a contrast-filled catheter, no wire) the
    /// catheter enters the exposed field at its top edge near (262, 4) and runs down to the ostium, 150–200 pixels
    /// away (read off frames 0, 20, 24, 30, 36, 50, 70 and 90 by eye; the field moves little there). Through the
    /// whole run, contrast arrival included, the trace must start there and run down the catheter: a trace that
    /// runs on into the opacified artery could turn round, lose the catheter and take a lead on the right of the
    /// field for the device. The learned path relies on the network's training on blurred crops here, without which
    /// it takes the blurred catheter for a contrast-filled vessel (docs/algorithms/segmentation.md, "Learned path").
    @Test(
        .enabled(if: RealRunRegistrationTests.available, "real DICOM test data not found (set FLUORO_TEST_DATA)"),
        arguments: SegmentationMethod.allCases)
    func theTraceStaysOnRubosCatheter(method: SegmentationMethod) throws {
        let lines = try longestLines("xa/rubo-0002-rca-contrast.dcm", method: method), entry = Point2(x: 262, y: 4)
        let atEntry = lines.filter { $0.first.map { distance($0, entry) <= 12 } ?? false }
        let downTheCatheter = atEntry.filter { $0.contains { distance($0, entry) >= 100 } }
        print(
            "\(method) rubo-0002: the trace starts at the catheter's entry in \(atEntry.count) of \(lines.count) frames and reaches 100 px down it in \(downTheCatheter.count)"
        )
        #expect(lines.count == 96)
        #expect(
            Double(atEntry.count) >= 0.95 * Double(lines.count),
            "the trace starts at the catheter's entry in \(atEntry.count) of \(lines.count) frames")
        #expect(
            Double(downTheCatheter.count) >= 0.9 * Double(lines.count),
            "the trace reaches 100 px down the catheter in \(downTheCatheter.count) of \(lines.count) frames")
    }

    /// rubo-0002 has no wire. From frame 57 on the classic trace runs on from the catheter's tip into the opacified
    /// artery; a part beyond the catheter that keeps at least `vesselContrastShare` of the contrast of the
    /// catheter's end is cut off as a vessel (that share was chosen on this run and XA-MONO2-8-12x, so this test is
    /// not independent of it). The classic path reports a wire in 14 of 96 frames; asserted: at most 20. The learned
    /// path puts the catheter's tip about halfway down the catheter from frame 55 on and reports the distal half as
    /// a wire (40 of 96 frames; docs/validation.md, "Device segmentation"). Asserted: at most 45.
    @Test(
        .enabled(if: RealRunRegistrationTests.available, "real DICOM test data not found (set FLUORO_TEST_DATA)"),
        arguments: SegmentationMethod.allCases)
    func aWireIsSeldomReportedOnRubosDiagnosticRun(method: SegmentationMethod) throws {
        let frames = try annotations("xa/rubo-0002-rca-contrast.dcm", method: method)
        let withWire = frames.filter { $0.guidewire.isPresent }.count
        let withCatheter = frames.filter { $0.catheter.isPresent }.count
        print("\(method) rubo-0002: a catheter in \(withCatheter) of \(frames.count) frames, a phantom wire in \(withWire)")
        #expect(frames.count == 96)
        #expect(withCatheter >= 90, "a catheter in \(withCatheter) of \(frames.count) frames")
        #expect(withWire <= (method == .ridge ? 20 : 45), "a phantom wire in \(withWire) of \(frames.count) frames")
    }

    /// On XA-MONO2-8-12x-catheter the guidewire's tip lies near (381, 376) in all 12 frames (read off frames 0, 3, 6
    /// and 9 by eye; it advances 5–10 px over the run), beyond a balloon and a crossing with a vertical spine edge. The
    /// classic trace must run to it from at least 150 px back along the wire, without stopping at the spine edge or
    /// the balloon, in at least 10 frames (it does in 12).
    @Test(.enabled(if: RealRunRegistrationTests.available, "real DICOM test data not found (set FLUORO_TEST_DATA)"))
    func theClassicTraceReachesTheWireTipOnXAMono2() throws {
        let lines = try longestLines("xa/XA-MONO2-8-12x-catheter.dcm"), tip = Point2(x: 381, y: 376)
        let reached = lines.filter { line in
            line.last.map { distance($0, tip) <= 12 } ?? false && line.contains { distance($0, tip) >= 150 }
        }.count
        print("ridge XA-MONO2-8-12x: the trace runs to the wire's tip in \(reached) of \(lines.count) frames")
        #expect(lines.count == 12)
        #expect(reached >= 10, "the trace runs to the wire's tip in \(reached) of \(lines.count) frames")
    }

    /// On XA-MONO2-8-12x the catheter is an atherectomy catheter whose dark housing ends near (288, 248) (read off
    /// frames 0, 6 and 11 by eye; it moves a few pixels over the run); the wire goes on beyond it. The classic
    /// catheter's tip must lie within 30 px of that end in at least 10 frames (it does in 12, 15–25 px beyond the
    /// housing on the thin distal part). The split is by the line's contrast, which drops there: a blurred 8-bit
    /// wire is as wide to the ridge filter as its catheter, so the width share cannot tell them apart on this run.
    @Test(.enabled(if: RealRunRegistrationTests.available, "real DICOM test data not found (set FLUORO_TEST_DATA)"))
    func theClassicCatheterEndsAtTheAtherectomyHousingOnXAMono2() throws {
        let frames = try annotations("xa/XA-MONO2-8-12x-catheter.dcm", method: .ridge), housingEnd = Point2(x: 288, y: 248)
        let near = frames.filter { $0.catheter.tip.map { distance($0, housingEnd) <= 30 } ?? false }.count
        let withWire = frames.filter { $0.guidewire.isPresent }.count
        print(
            "ridge XA-MONO2-8-12x: the catheter's tip is within 30 px of the housing's end in \(near) of \(frames.count) frames; a wire in \(withWire)"
        )
        #expect(frames.count == 12)
        #expect(near >= 10, "the catheter's tip is within 30 px of the housing's end in \(near) of \(frames.count) frames")
        #expect(withWire >= 10, "a wire beyond the catheter in \(withWire) of \(frames.count) frames")
    }

    /// The learned path may follow XA-MONO2-8-12x's wire only beyond the balloon (whose end lies near (290, 250) in
    /// frame 0), so that neither end of the line is at the image's border. Its tip must be drawn at the free end,
    /// towards the wire's tip near (381, 376), not at the balloon, where orienting such a line by its ends' distances
    /// to the image border would put it. The tip must also reach within 12 px of the true one in at least 9 frames
    /// (it does in 11; the tracked wire goes on over dips of the network's probability below 0.4 of up to
    /// `learnedTipGap` points). XA-MONO2 is one of the runs that `learnedTipGap` was chosen on, and one of the two
    /// the training option `--blur` was chosen on, so this test is not independent of them.
    @Test(.enabled(if: RealRunRegistrationTests.available, "real DICOM test data not found (set FLUORO_TEST_DATA)"))
    func theLearnedWireTipIsOnTheFreeSideOnXAMono2() throws {
        let frames = try annotations("xa/XA-MONO2-8-12x-catheter.dcm", method: .learned)
        let tip = Point2(x: 381, y: 376), balloon = Point2(x: 290, y: 250)
        let tips = frames.compactMap(\.guidewire.tip)
        let freeSide = tips.filter { distance($0, tip) < distance($0, balloon) }.count
        let atTip = tips.filter { distance($0, tip) <= 12 }.count
        print(
            "learned XA-MONO2-8-12x: the wire's tip is on the free side in \(freeSide) of \(frames.count) frames, within 12 px of it in \(atTip)"
        )
        #expect(frames.count == 12)
        #expect(freeSide >= 10, "the wire's tip is on the free side in \(freeSide) of \(frames.count) frames")
        #expect(atTip >= 9, "the wire's tip is within 12 px of the true one in \(atTip) of \(frames.count) frames")
    }
}
