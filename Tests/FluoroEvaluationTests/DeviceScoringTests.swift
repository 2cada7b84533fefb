import FluoroCore
import FluoroEvaluation
import Foundation
import Testing

/// The device measures of ../shared/EVALUATION.md against cases whose answer follows from geometry: a truth equal
/// to the prediction scores perfectly, a shifted one scores what the shift predicts, and misses, phantoms, swapped
/// labels and unsure frames count as the definitions say.
@Suite struct DeviceScoringTests {
    /// A horizontal line at height y from x0 to x1, proximal end first.
    static func line(y: Float, from x0: Float = 20, to x1: Float = 120) -> [Point2] {
        [Point2(x: x0, y: y), Point2(x: (x0 + x1) / 2, y: y), Point2(x: x1, y: y)]
    }

    static func reported(catheter: [Point2]? = nil, guidewire: [Point2]? = nil) -> ReportedDevices {
        ReportedDevices(
            catheter: catheter.map { ReportedDevice(centerline: $0, tip: $0.last) },
            guidewire: guidewire.map { ReportedDevice(centerline: $0, tip: $0.last) })
    }

    static func truth(_ entries: [DeviceTruth.Entry]) -> DeviceTruth { DeviceTruth(run: "test", width: 200, height: 150, frames: entries) }

    @Test func resamplingPlacesAPointEveryHalfPixelWithBothEnds() {
        let straight = CenterlineMatch.resample(Self.line(y: 5, from: 0, to: 10))
        #expect(straight.count == 21 && straight.enumerated().allSatisfy { $1 == Point2(x: Float($0) * 0.5, y: 5) })
        // 0.5 and 1.0 px along a bend: (0.3, 0.2) and (0.3, 0.7), then the end at 1.3 px.
        let bent = CenterlineMatch.resample([Point2(x: 0, y: 0), Point2(x: 0.3, y: 0), Point2(x: 0.3, y: 1)])
        let expected = [Point2(x: 0, y: 0), Point2(x: 0.3, y: 0.2), Point2(x: 0.3, y: 0.7), Point2(x: 0.3, y: 1)]
        #expect(bent.count == 4 && zip(bent, expected).allSatisfy { abs($0.x - $1.x) < 1e-6 && abs($0.y - $1.y) < 1e-6 }, "\(bent)")
    }

    @Test func aTruthEqualToThePredictionScoresPerfectly() throws {
        let wire = Self.line(y: 40), catheter = Self.line(y: 80, from: 0, to: 60)
        let truth = Self.truth([.init(frame: 0, catheter: catheter, guidewire: wire)])
        let score = DeviceScore.score(truth: truth, reported: [Self.reported(catheter: catheter, guidewire: wire)])
        for kind in [try #require(score.guidewire), try #require(score.catheter)] {
            #expect(kind.f1At2 == 1 && kind.f1At3 == 1 && kind.tipMedian == 0 && kind.tipWithin8 == 1 && kind.tipReported == 1)
            #expect(kind.labelAgreement == 1)
        }
        #expect(score.labelCorrectShare == 1 && score.phantomRate == nil)
    }

    @Test func aShiftedTruthScoresWhatTheShiftPredicts() throws {
        // 2.5 px across the line: no point within 2 px, every point within 3 px; the tip is 2.5 px away.
        let prediction = Self.line(y: 40)
        let truth = Self.truth([.init(frame: 0, guidewire: Self.line(y: 42.5))])
        let wire = try #require(DeviceScore.score(truth: truth, reported: [Self.reported(guidewire: prediction)]).guidewire)
        #expect(wire.f1At2 == 0 && wire.f1At3 == 1)
        #expect(abs(try #require(wire.tipMedian) - 2.5) < 1e-5 && wire.tipWithin8 == 1)
        // 10 px along the line: the overlap and 2 px beyond it match, the rest of the two 10 px ends do not.
        let along = Self.truth([.init(frame: 0, guidewire: Self.line(y: 40, from: 30, to: 130))])
        let shifted = try #require(DeviceScore.score(truth: along, reported: [Self.reported(guidewire: prediction)]).guidewire)
        // 185 of the 201 points of each line lie within 2 px of the other (x 28…120 and 30…122).
        #expect(abs(shifted.f1At2 - 185.0 / 201.0) < 1e-6, "\(shifted.f1At2)")
        #expect(abs(try #require(shifted.tipMedian) - 10) < 1e-5 && shifted.tipWithin8 == 0)
    }

    @Test func aMissedDeviceScoresZeroAndItsTipCountsAsAMiss() throws {
        let truth = Self.truth([
            .init(frame: 0, guidewire: Self.line(y: 40)), .init(frame: 1, guidewire: Self.line(y: 40)),
            .init(frame: 2, guidewire: Self.line(y: 40)),
        ])
        let reports = [Self.reported(guidewire: Self.line(y: 40)), Self.reported(), Self.reported()]
        let wire = try #require(DeviceScore.score(truth: truth, reported: reports).guidewire)
        #expect(wire.frames == 3 && abs(wire.f1At2 - 1.0 / 3) < 1e-9)
        // Two of three tips missed: the median is a miss.
        #expect(wire.tipMedian == nil && abs(wire.tipWithin8 - 1.0 / 3) < 1e-9 && abs(wire.tipReported - 1.0 / 3) < 1e-9)
    }

    @Test func anEvenNumberOfFramesTakesTheMeanOfTheMiddleTwoUnlessOneIsAMiss() throws {
        let truth = Self.truth((0..<4).map { DeviceTruth.Entry(frame: $0, guidewire: Self.line(y: 40)) })
        func tipAt(_ x: Float) -> ReportedDevices { Self.reported(guidewire: Self.line(y: 40, to: x)) }
        let found = DeviceScore.score(truth: truth, reported: [tipAt(120), tipAt(118), tipAt(114), tipAt(100)]).guidewire
        #expect(try #require(found?.tipMedian) == 4)  // errors 0, 2, 6, 20: (2 + 6) / 2
        let missed = DeviceScore.score(truth: truth, reported: [tipAt(120), tipAt(118), Self.reported(), Self.reported()]).guidewire
        #expect(try #require(missed).tipMedian == nil && missed?.tipReported == 0.5)
    }

    @Test func devicesOnDeviceFreeFramesArePhantomsAndUnsureFramesAreLeftOut() throws {
        let truth = Self.truth([
            .init(frame: 0), .init(frame: 1), .init(frame: 2), .init(frame: 3, unsure: true),
        ])
        let reports = [
            Self.reported(catheter: Self.line(y: 10)), Self.reported(), Self.reported(), Self.reported(catheter: Self.line(y: 9)),
        ]
        let score = DeviceScore.score(truth: truth, reported: reports)
        #expect(score.deviceFreeFrames == 3 && score.unsureFrames == 1)
        #expect(abs(try #require(score.phantomRate) - 1.0 / 3) < 1e-9 && score.catheter == nil && score.guidewire == nil)
    }

    @Test func aWireReportedAsCatheterIsTheWrongLabel() throws {
        let wire = Self.line(y: 40)
        let score = DeviceScore.score(truth: Self.truth([.init(frame: 0, guidewire: wire)]), reported: [Self.reported(catheter: wire)])
        #expect(score.labelCorrectShare == 0)
        #expect(try #require(score.guidewire).labelAgreement == 0 && score.guidewire?.f1At2 == 0)
    }

    @Test func truthFilesWithGapsBrokenPointsOrNoFrameSizeAreRefusedByName() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("device-truth-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let gap = folder.appendingPathComponent("gap.json").path
        try Data(#"{"run":"r","width":8,"height":8,"frames":[{"frame":0},{"frame":2}]}"#.utf8).write(to: URL(fileURLWithPath: gap))
        let broken = folder.appendingPathComponent("broken.json").path
        try Data(#"{"run":"r","width":8,"height":8,"frames":[{"frame":0,"catheter":[[1,2,3]]}]}"#.utf8).write(
            to: URL(fileURLWithPath: broken))
        let empty = folder.appendingPathComponent("empty.json").path
        try Data(#"{"run":"r","width":0,"height":8,"frames":[]}"#.utf8).write(to: URL(fileURLWithPath: empty))
        for path in [gap, broken, empty] {
            #expect {
                _ = try DeviceTruth.load(path)
            } throws: { error in
                "\(error)".contains(path)
            }
        }
    }
}
