import FluoroCore
@testable import FluoroGraph
import Testing

@Suite struct FrameGraphTests {
    @Test func replayDeliversEveryFrameInOrderThroughEveryStage() throws {
        let source = try CountingSource(frames: 500, interval: 1.0 / 30)
        let first = RecordingStage(name: "first"), last = RecordingStage(name: "last")
        let graph = try FrameGraph(
            source: source, stages: [first, last],
            configuration: GraphConfiguration(policy: .replay, pacing: .asFastAsPossible, poolSize: 3))
        let statistics = try graph.run()
        #expect(first.indices == Array(0..<500))
        #expect(last.indices == Array(0..<500))
        #expect(last.firstPixels == (0..<500).map { UInt16($0 % 4096) }, "each stage reads the pixels the source wrote")
        #expect(first.finished && last.finished)
        #expect(statistics.framesRead == 500 && statistics.framesDelivered == 500)
        #expect(statistics.droppedAtSource == 0 && statistics.stages.allSatisfy { $0.latency.dropped == 0 })
        #expect(statistics.endToEnd.count == 500)
    }

    @Test func replayWithSlowStageLosesNothing() throws {
        let source = try CountingSource(frames: 40, interval: 0.002)
        let slow = RecordingStage(name: "slow", delay: 0.006)
        let graph = try FrameGraph(source: source, stages: [slow], configuration: GraphConfiguration(policy: .replay))
        let statistics = try graph.run()
        #expect(slow.indices == Array(0..<40))
        #expect(statistics.framesDelivered == 40)
    }

    /// A stage three times slower than the frame rate: live drops and keeps latency bounded, while replay
    /// keeps every frame and runs slower than the recording.
    @Test func liveDropsStaleFramesAndKeepsLatencyBounded() throws {
        let frames = 60, interval = 0.010, work = 0.030
        func run(_ policy: DeliveryPolicy) throws -> (RunStatistics, [Int], settled: Int) {
            let stage = RecordingStage(name: "slow", delay: work)
            let graph = try FrameGraph(
                source: try CountingSource(frames: frames, interval: interval), stages: [stage],
                configuration: GraphConfiguration(policy: policy, pacing: .recorded(speed: 1)))
            return (try graph.run(), stage.indices, graph.settledCount)
        }
        let (live, liveIndices, liveSettled) = try run(.live)
        let (replay, replayIndices, replaySettled) = try run(.replay)

        #expect(replayIndices == Array(0..<frames))
        #expect(live.framesDelivered < frames / 2, "a stage 3x too slow cannot see every live frame")
        #expect(
            live.framesDelivered + live.droppedAtSource + live.stages[0].latency.dropped == frames,
            "every live frame is either delivered or counted as dropped")
        #expect(liveIndices == liveIndices.sorted() && Set(liveIndices).count == liveIndices.count)
        // Frames out of the graph count the stages' drops too (a benchmark's window ends by them).
        #expect(
            liveSettled == frames - live.droppedAtSource && replaySettled == frames,
            "settled live \(liveSettled), replay \(replaySettled)")
        // Live latency stays near one work time (plus a frame); replay slows down instead, and its frames
        // wait behind the whole pool.
        #expect(live.endToEnd.max < 4 * work * 1000, "live max latency \(live.endToEnd.max) ms")
        #expect(replay.wallSeconds >= Double(frames) * work * 0.95)
        #expect(
            replay.endToEnd.p50 > 2 * live.endToEnd.p50,
            "replay p50 \(replay.endToEnd.p50) ms vs live p50 \(live.endToEnd.p50) ms")
    }

    /// At the frame rate with nothing slow, live mode loses nothing (the end of the input is not a "newer frame").
    /// The pace is 50 frames/s: at 200 frames/s a busy two-core machine can hold a thread back longer than a frame
    /// interval, and the live policy then rightly drops (seen once in CI while a build ran beside it).
    @Test func liveAtAnEasyPaceDeliversEveryFrame() throws {
        let stage = RecordingStage()
        let graph = try FrameGraph(
            source: try CountingSource(frames: 20, interval: 0.02), stages: [stage, RecordingStage(name: "b")],
            configuration: GraphConfiguration(policy: .live, pacing: .recorded(speed: 1)))
        let statistics = try graph.run()
        #expect(stage.indices == Array(0..<20))
        #expect(statistics.framesDelivered == 20 && statistics.endToEnd.dropped == 0)
    }

    /// A source that takes 1.5 frame intervals to read each frame (a generator on a loaded machine, a slow disk):
    /// live mode shows every frame it reads rather than dropping each one for being behind a schedule it can
    /// never meet.
    @Test func liveWithASourceSlowerThanItsFrameRateDeliversWhatItReads() throws {
        let interval = 0.010
        let stage = RecordingStage()
        let source = try CountingSource(frames: 30, interval: interval, readTime: { _ in 1.5 * interval })
        let graph = try FrameGraph(
            source: source, stages: [stage],
            configuration: GraphConfiguration(policy: .live, pacing: .recorded(speed: 1)))
        let statistics = try graph.run()
        #expect(
            statistics.framesDelivered >= 27,
            "delivered \(statistics.framesDelivered) of 30, dropped \(statistics.droppedAtSource) at the source")
        #expect(stage.indices == stage.indices.sorted())
    }

    /// A source that reads quickly but stalls once for five frame intervals: live mode skips the frames that fell
    /// due during the stall (reading on is the way to the newest frame) and delivers everything after it.
    @Test func liveCatchesUpAfterASourceStallByDropping() throws {
        let interval = 0.010
        let stage = RecordingStage()
        let source = try CountingSource(frames: 40, interval: interval, readTime: { $0 == 10 ? 5.5 * interval : 0 })
        let graph = try FrameGraph(
            source: source, stages: [stage],
            configuration: GraphConfiguration(policy: .live, pacing: .recorded(speed: 1)))
        let statistics = try graph.run()
        #expect((3...7).contains(statistics.droppedAtSource), "dropped \(statistics.droppedAtSource) at the source")
        #expect(stage.indices.starts(with: Array(0..<10)), "frames before the stall: \(stage.indices)")
        #expect(Array(stage.indices.suffix(20)) == Array(20..<40), "frames after catching up: \(stage.indices)")
        #expect(!stage.indices.contains(10), "the frame read during the stall is five intervals stale")
    }

    @Test func stageFailureStopsTheRunAndIsReported() throws {
        let source = try CountingSource(frames: 1000, interval: 0.001)
        let after = RecordingStage(name: "after")
        let graph = try FrameGraph(
            source: source, stages: [FailingStage(failAt: 10), after],
            configuration: GraphConfiguration(policy: .replay, pacing: .asFastAsPossible))
        do {
            _ = try graph.run()
            Issue.record("the run should have failed")
        } catch let failure as GraphFailure {
            #expect(failure.error == .invalidArgument("deliberate failure at 10"))
            #expect(after.indices == Array(0..<10), "frames after the failure are not processed")
            #expect(after.finished, "stages still finish so sockets close")
        }
    }

    @Test func stopRequestDrainsInFlightFrames() throws {
        let source = try CountingSource(frames: 100_000, interval: 0.001)
        let stage = RecordingStage(name: "record")
        let graph = try FrameGraph(
            source: source, stages: [stage],
            configuration: GraphConfiguration(policy: .replay, pacing: .recorded(speed: 1)))
        var ticks = 0
        let statistics = try graph.run {
            ticks += 1
            if ticks == 2 { graph.requestStop() }
        }
        #expect(statistics.framesRead < 1000)
        #expect(statistics.framesDelivered == statistics.framesRead, "every frame read is delivered")
        #expect(stage.indices == Array(0..<statistics.framesRead))
        #expect(stage.finished)
    }

    @Test func statisticsSerialiseWithDocumentedKeys() throws {
        let graph = try FrameGraph(
            source: try CountingSource(frames: 5, interval: 0.01), stages: [RecordingStage()],
            configuration: GraphConfiguration(pacing: .asFastAsPossible))
        let statistics = try graph.run()
        let table = statistics.formattedTable()
        #expect(table.contains("record") && table.contains("end-to-end") && table.contains("p99.9"))
        #expect(statistics.endToEnd.p50 <= statistics.endToEnd.p99 && statistics.endToEnd.p99 <= statistics.endToEnd.max)
    }
}
