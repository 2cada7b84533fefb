import FluoroCore
import FluoroEvaluation
import Foundation
import Testing

/// The evaluation's measures against cases whose answer is known: a truth equal to the prediction scores perfectly,
/// a shifted one scores what the shift predicts, and the intervals behave as intervals.
@Suite struct ScoringTests {
    /// A smooth textured image with a dark line, sampled at an offset: the same scene moved by (dx, dy).
    static func scene(width: Int, height: Int, dx: Double, dy: Double) -> [UInt16] {
        (0..<(width * height)).map { i in
            let x = Double(i % width) - dx, y = Double(i / width) - dy
            let texture = 1000 + 300 * sin(x / 9) * cos(y / 13) + 200 * sin((x + y) / 21)
            let line = abs(y - 60 - 15 * sin(x / 25)) < 2 ? -500.0 : 0
            return UInt16(max(1, texture + line))
        }
    }

    @Test func theTrueShiftRemovesTheResidualAndNoShiftLeavesIt() throws {
        let reference = Self.scene(width: 128, height: 128, dx: 0, dy: 0)
        let live = Self.scene(width: 128, height: 128, dx: 3, dy: -2)
        let residual = MotionResidual(reference: reference, width: 128, height: 128)
        let logReference = MotionResidual.logarithm(reference), logLive = MotionResidual.logarithm(live)
        let aligned = try #require(residual.residual(live: logLive, reference: logReference, shift: (3, -2)))
        let unaligned = try #require(residual.residual(live: logLive, reference: logReference, shift: (0, 0)))
        let wrong = try #require(residual.residual(live: logLive, reference: logReference, shift: (-3, 2)))
        #expect(aligned < 0.1 * unaligned, "aligned \(aligned), unaligned \(unaligned)")
        #expect(wrong > unaligned, "the opposite shift makes it worse")
        #expect(try #require(residual.residual(live: logReference, reference: logReference, shift: (0, 0))) == 0)
    }

    @Test func theFieldExcludesTheUnexposedBorderAndItsMargin() {
        var reference = [UInt16](repeating: 1000, count: 100 * 100)
        for y in 0..<100 { for x in 0..<30 { reference[y * 100 + x] = 5 } }  // a collimator blade on the left
        let residual = MotionResidual(reference: reference, width: 100, height: 100)
        #expect(!residual.field[50 * 100 + 30 + MotionResidual.shrink - 1] && residual.field[50 * 100 + 30 + MotionResidual.shrink])
        #expect(!residual.field[50 * 100 + 99 - MotionResidual.shrink + 1] && residual.field[50 * 100 + 99 - MotionResidual.shrink])
    }

    @Test func motionScoresRatiosAgainstTheProgramsReferenceAndCountsLostFrames() {
        let frames = (0..<4).map { Self.scene(width: 96, height: 96, dx: Double($0), dy: 0) }
        var motion = (0..<4).map { index -> MotionEstimate in
            var estimate = MotionEstimate()
            estimate.state = .tracking
            estimate.dx = Float(index)
            return estimate
        }
        let perfect = MotionScore.score(pixels: frames, motion: motion, width: 96, height: 96)
        #expect(perfect.pairsToReference == 3 && perfect.pairsConsecutive == 3 && perfect.lostShare == 0)
        #expect(perfect.ratioToReference! < 0.1 && perfect.ratioConsecutive! < 0.1)
        motion[2].state = .lost  // frame 2 becomes the reference of frame 3, whose estimate is then against it
        motion[3].dx = 1
        let withLoss = MotionScore.score(pixels: frames, motion: motion, width: 96, height: 96)
        #expect(withLoss.lostShare == 0.25 && withLoss.pairsToReference == 2 && withLoss.ratioToReference! < 0.1)
    }

    @Test func aMapEqualToTheMasksScoresOneAndAShiftedOneWhatTheShiftPredicts() {
        let width = 64, side = 20
        func square(at offset: Int) -> [UInt8] {
            (0..<(width * width)).map { i in
                let x = i % width, y = i / width
                return (20 + offset..<20 + offset + side).contains(x) && (20..<20 + side).contains(y) ? 255 : 0
            }
        }
        var drawn = RoadmapAnnotation()
        drawn.state = .active
        drawn.drawn = true
        let masks = [[UInt8](repeating: 0, count: width * width), square(at: 0), square(at: 0)]
        let exact = RoadmapScore.score(
            masks: masks, roadmap: [RoadmapAnnotation(), drawn, drawn], layers: [nil, square(at: 0), square(at: 0)])
        #expect(exact.contrastFrames == 2 && exact.drawnFrames == 2 && exact.iou == 1 && exact.precision == 1 && exact.recall == 1)
        #expect(exact.activeFrame == 1 && exact.notActiveBecause == nil)
        let shift = 4
        let shifted = RoadmapScore.score(
            masks: masks, roadmap: [RoadmapAnnotation(), drawn, drawn], layers: [nil, square(at: shift), nil])
        let overlap = Double((side - shift) * side), union = Double((side + shift) * side)
        #expect(abs(shifted.iou - overlap / union / 2) < 1e-9, "one frame at the shifted IoU, one undrawn at 0")
        #expect(abs(shifted.precision! - overlap / Double(side * side)) < 1e-9)
        var building = RoadmapAnnotation()
        building.state = .building
        let never = RoadmapScore.score(masks: masks, roadmap: [building, building, building], layers: [nil, nil, nil])
        #expect(never.activeFrame == nil && never.notActiveBecause == "building" && never.iou == 0 && never.precision == nil)
    }

    @Test func intervalsResamplePatientsAndCollapseWhenEveryRunAgrees() throws {
        var bootstrap = PatientBootstrap(resamples: 500)
        let sameValues: [(patient: String, value: Double)] = [("a", 0.9), ("a", 0.9), ("b", 0.9)]
        let spreadValues: [(patient: String, value: Double)] = [("a", 0.5), ("a", 0.6), ("b", 1.0), ("b", 1.1), ("c", 0.8)]
        let same = try #require(bootstrap.interval(sameValues) as PatientBootstrap.Interval?)
        #expect(same.mean == 0.9 && same.low == 0.9 && same.high == 0.9 && same.patients == 2 && same.runs == 3)
        let spread = try #require(bootstrap.interval(spreadValues) as PatientBootstrap.Interval?)
        #expect(spread.low < spread.mean && spread.mean < spread.high && spread.low >= 0.5 && spread.high <= 1.1)
        let none = bootstrap.interval([])
        #expect(none == nil)
    }
}

/// The overlay pictures a person looks at: PNGs of the right size, with the mask and map where the masks are.
@Suite struct OverlayTests {
    /// Width and height from a PNG's IHDR chunk.
    func size(_ png: [UInt8]) -> (Int, Int) {
        func word(_ at: Int) -> Int { png[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (word(16), word(20))
    }

    @Test func theRoadmapAndMotionPicturesAreTheRunsSize() throws {
        let frames = (0..<3).map { ScoringTests.scene(width: 64, height: 48, dx: Double($0), dy: 0) }
        var motion = (0..<3).map { _ in MotionEstimate() }
        for index in 1..<3 {
            motion[index].state = .tracking
            motion[index].dx = Float(index)
        }
        let mask = (0..<(64 * 48)).map { $0 % 64 < 10 ? UInt8(255) : 0 }
        let roadmap = try #require(
            RunOverlays.roadmap(pixels: frames, masks: [mask, mask, mask], layers: [nil, mask, nil], width: 64, height: 48))
        let pictures = try #require(RunOverlays.motion(pixels: frames, motion: motion, width: 64, height: 48))
        #expect(Array(roadmap.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(size(roadmap) == (64, 48) && size(pictures) == (128, 48), "the motion picture holds two frames side by side")
        #expect(
            RunOverlays.motion(pixels: frames, motion: [MotionEstimate(), MotionEstimate(), MotionEstimate()], width: 64, height: 48) == nil
        )
    }
}
