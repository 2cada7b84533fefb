import FluoroCore
import FluoroSources
import Foundation
import Testing

@testable import FluoroVision

/// A beating-heart run with exact truth: vessels and a catheter (cylinders, by their projected path length) on a
/// smooth background with the heart's shadow, all moving with a 6-frame cardiac cycle, plus noise. Contrast rises from
/// frame 10, is full from 16 to 28, and is gone from 34.
struct BeatingHeartRun {
    static let size = 512, period = 6, frames = 42
    var contrast = true

    /// The cardiac shift of frame `index` (pixels).
    static func shift(_ index: Int) -> (dx: Double, dy: Double) {
        let angle = 2 * Double.pi * Double(index % period) / Double(period)
        return (9 * sin(angle), 6 * cos(angle))
    }

    static func contrastLevel(_ index: Int) -> Double {
        switch index {
        case ..<10: 0
        case 10..<16: Double(index - 9) / 6
        case 16..<28: 1
        case 28..<34: Double(33 - index) / 6
        default: 0
        }
    }

    /// Distance of (x, y) from the vessel tree's centre lines, and the radius of the nearest vessel.
    static func vessel(x: Double, y: Double) -> (distance: Double, radius: Double) {
        // Three curves: two near-horizontal branches and a near-vertical trunk.
        let trunk = abs(x - (250 + 30 * sin(y / 70))), branchA = abs(y - (180 + 25 * sin(x / 60))),
            branchB = abs(y - (340 + 20 * cos(x / 50)))
        var best = (distance: Double.infinity, radius: 0.0)
        for (inside, distance, radius) in [
            (y > 60 && y < 460, trunk, 5.0), (x > 250 && x < 470, branchA, 3.5), (x > 60 && x < 250, branchB, 3.0),
        ]
        where inside && distance < best.distance {
            best = (distance, radius)
        }
        return best
    }

    /// Distance of (x, y) from the catheter's centre line (it enters at the top and is always visible), and its radius.
    static func catheter(x: Double, y: Double) -> (distance: Double, radius: Double) {
        y < 300 ? (abs(x - (150 + 40 * sin(y / 90))), 2.5) : (.infinity, 0)
    }

    /// Whether full-resolution pixel (x, y) of frame `index` lies inside a vessel or the catheter (as vessel masks
    /// made from the images mark it).
    static func isVessel(x: Int, y: Int, frame index: Int) -> Bool {
        let s = shift(index), px = Double(x) - s.dx, py = Double(y) - s.dy
        let v = vessel(x: px, y: py), c = catheter(x: px, y: py)
        return v.distance < v.radius || c.distance < c.radius
    }

    func pixels(frame index: Int) -> [UInt16] {
        let size = Self.size, s = Self.shift(index), level = contrast ? Self.contrastLevel(index) : 0
        var random = UInt64(index &* 2_654_435_761 &+ 17)
        var result = [UInt16](repeating: 0, count: size * size)
        for y in 0..<size {
            for x in 0..<size {
                let px = Double(x) - s.dx, py = Double(y) - s.dy
                // The heart's shadow: a disc with an edge a few pixels wide.
                let radius = ((px - 320) * (px - 320) + (py - 280) * (py - 280)).squareRoot()
                let heart = 0.35 / (1 + exp((radius - 150) / 4))
                var attenuation = 0.4 + 0.3 * Double(y) / Double(size) + heart
                let c = Self.catheter(x: px, y: py)
                if c.distance < c.radius { attenuation += 0.08 * (c.radius * c.radius - c.distance * c.distance).squareRoot() }
                if level > 0 {
                    let v = Self.vessel(x: px, y: py)
                    if v.distance < v.radius { attenuation += level * 0.05 * (v.radius * v.radius - v.distance * v.distance).squareRoot() }
                }
                random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let noise = (Double(random >> 40) / Double(1 << 24) - 0.5) * 0.04
                result[y * size + x] = UInt16(max(min(3000 * exp(-attenuation) * (1 + noise), 4095), 0))
            }
        }
        return result
    }
}

@Suite struct DynamicRoadmapTests {
    @Test func squareMorphologyMatchesTheDirectMinimumAndMaximum() {
        let width = 37, height = 23
        var random = SystemRandomNumberGenerator()
        let image = (0..<(width * height)).map { _ in Float.random(in: -5...5, using: &random) }
        let morphology = SquareMorphology(width: width, height: height, largestRadius: 6)
        for radius in [1, 3, 6] {
            for (maximum, outside) in [(false, Float.infinity), (true, -Float.infinity), (false, 0)] {
                var output = [Float](repeating: 0, count: width * height)
                image.withUnsafeBufferPointer { input in
                    output.withUnsafeMutableBufferPointer {
                        morphology.filter(input.baseAddress!, into: $0.baseAddress!, radius: radius, maximum: maximum, outside: outside)
                    }
                }
                for y in 0..<height {
                    for x in 0..<width {
                        var expected = maximum ? -Float.infinity : Float.infinity
                        for ny in (y - radius)...(y + radius) {
                            for nx in (x - radius)...(x + radius) {
                                let value = nx >= 0 && nx < width && ny >= 0 && ny < height ? image[ny * width + nx] : outside
                                expected = maximum ? max(expected, value) : min(expected, value)
                            }
                        }
                        #expect(output[y * width + x] == expected, "radius \(radius) max \(maximum) at \(x),\(y)")
                    }
                }
            }
        }
    }

    /// Runs the beating heart through the roadmap stage (no motion estimate: the map's own phase matching has to
    /// find the heart's phase). Per frame: the annotation and the IoU of the drawn map against the true vessels.
    func run(_ heart: BeatingHeartRun, drawLive: Bool = true) throws -> [(roadmap: RoadmapAnnotation, iou: Double)] {
        let geometry = try FrameGeometry(width: BeatingHeartRun.size, height: BeatingHeartRun.size, format: .grey16, bitsStored: 12)
        let frame = Frame(slot: 0, geometry: geometry, stageCount: 1)
        var parameters = RoadmapParameters()
        parameters.drawLive = drawLive
        let renderer = DisplayRenderer(), overlay = RoadmapOverlay(parameters: parameters, splitting: false)
        try renderer.prepare(for: geometry)
        try overlay.prepare(for: geometry)
        var results: [(RoadmapAnnotation, Double)] = []
        for index in 0..<BeatingHeartRun.frames {
            frame.annotations.reset()
            frame.index = index
            _ = heart.pixels(frame: index).withUnsafeBufferPointer {
                frame.pixels.baseAddress!.update(from: $0.baseAddress!, count: $0.count)
            }
            frame.annotations.motion.state = .tracking
            try renderer.process(frame)
            try overlay.process(frame)
            let roadmap = frame.annotations.roadmap
            var intersection = 0, union = 0
            if roadmap.drawn {
                for y in 0..<BeatingHeartRun.size {
                    for x in 0..<BeatingHeartRun.size {
                        let marked = frame.roadmapLayer[y * BeatingHeartRun.size + x] > 0
                        // The map drawn on a frame after the contrast is scored against where the vessels are now.
                        let vessel = BeatingHeartRun.isVessel(x: x, y: y, frame: index)
                        if marked && vessel { intersection += 1 }
                        if marked || vessel { union += 1 }
                    }
                }
            }
            results.append((roadmap, union > 0 ? Double(intersection) / Double(union) : 0))
        }
        return results
    }

    @Test func contrastFramesShowTheirOwnVesselsAndLaterFramesTheStoredMapOfTheirPhase() throws {
        let frames = try run(BeatingHeartRun())
        for index in 0..<10 { #expect(frames[index].roadmap.state == .building, "frame \(index) before the contrast") }
        for index in 16..<28 {
            let (roadmap, iou) = frames[index]
            #expect(roadmap.state == .active && roadmap.mapSource == .live && roadmap.mapFrame == index, "frame \(index): \(roadmap)")
            #expect(iou >= 0.6, "frame \(index): live map IoU \(iou)")
        }
        // After the contrast: stored maps, most of them of the frame's own phase (the likeness of thumbnails
        // with and without contrast in the vessels is not perfect: a neighbouring phase may win).
        var samePhase = 0, ious: [Double] = []
        for index in 35..<BeatingHeartRun.frames {
            let (roadmap, iou) = frames[index]
            #expect(roadmap.state == .active && roadmap.mapSource == .stored, "frame \(index): \(roadmap)")
            let matched = try #require(roadmap.mapFrame)
            #expect((10..<34).contains(matched), "frame \(index) drawn with frame \(matched)'s map, not a contrast frame's")
            if matched % BeatingHeartRun.period == index % BeatingHeartRun.period { samePhase += 1 }
            ious.append(iou)
        }
        let meanIoU = ious.reduce(0, +) / Double(ious.count)
        print(
            String(
                format: "dynamic roadmap after the contrast: %d of %d frames matched to their phase, IoU mean %.3f (min %.3f)",
                samePhase, ious.count, meanIoU, ious.min()!))
        #expect(samePhase >= 5, "only \(samePhase) of \(ious.count) frames drawn with their phase's map")
        #expect(meanIoU >= 0.55, "stored maps IoU \(ious)")
    }

    /// What `fluoro evaluate --stored-maps-only` scores: contrast frames drawn with earlier frames' maps only.
    @Test func storedMapsOnlyDrawsEveryFrameWithAnEarlierFramesMap() throws {
        let frames = try run(BeatingHeartRun(), drawLive: false)
        #expect(frames.allSatisfy { $0.roadmap.mapSource != .live })
        for index in 20..<BeatingHeartRun.frames {
            let roadmap = frames[index].roadmap
            #expect(roadmap.mapSource == .stored && (roadmap.mapFrame ?? index) < index, "frame \(index): \(roadmap)")
        }
    }

    @Test func aRunWithoutContrastNeverShowsAMap() throws {
        let frames = try run(BeatingHeartRun(contrast: false))
        #expect(frames.allSatisfy { $0.roadmap.state == .building && !$0.roadmap.drawn })
    }
}
