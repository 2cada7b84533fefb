import Histogram

/// Latency percentiles in milliseconds over one run, for one stage or end to end.
public struct LatencySummary: Sendable, Codable, Equatable {
    /// Frames measured.
    public var count: Int
    /// Frames dropped (skipped by the live policy, or lost at the source).
    public var dropped: Int
    public var p50: Double
    public var p99: Double
    public var p999: Double
    public var max: Double

    enum CodingKeys: String, CodingKey {
        case count, dropped, p50 = "p50_ms", p99 = "p99_ms", p999 = "p99_9_ms", max = "max_ms"
    }
}

/// Records latencies without allocating (a preallocated HDR histogram, 3 significant digits, 1 µs to
/// 60 s), so it can run on the hot path.
struct LatencyRecorder {
    private var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1_000, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    private(set) var dropped = 0

    /// Records one latency in nanoseconds (clamped into the histogram's range).
    mutating func record(nanoseconds: UInt64) {
        _ = histogram.record(Swift.min(Swift.max(nanoseconds, 1_000), 60_000_000_000))
    }

    mutating func countDrop() { dropped += 1 }

    func summary() -> LatencySummary {
        let count = Int(histogram.totalCount)
        func milliseconds(_ percentile: Double) -> Double {
            count == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1e6
        }
        return LatencySummary(
            count: count, dropped: dropped, p50: milliseconds(50), p99: milliseconds(99),
            p999: milliseconds(99.9), max: count == 0 ? 0 : Double(histogram.max) / 1e6)
    }
}

/// One stage's figures: latency since the previous stage released the frame (queueing plus work) and
/// the time the stage itself worked on it.
public struct StageStatistics: Sendable, Codable, Equatable {
    public var name: String
    public var latency: LatencySummary
    public var busy: LatencySummary
}

/// Everything a run measured, printed at the end and written by `--stats-json`.
public struct RunStatistics: Sendable, Codable, Equatable {
    /// Frames the source produced.
    public var framesRead: Int
    /// Frames the source had to discard in live mode (no free slot, or the source fell behind).
    public var droppedAtSource: Int
    /// Frames that went through every stage.
    public var framesDelivered: Int
    /// Per stage, in graph order.
    public var stages: [StageStatistics]
    /// From availability to the last stage's release, for delivered frames.
    public var endToEnd: LatencySummary
    /// Paced runs: from each frame's scheduled time to its hand-over to the first stage. This is part of
    /// every stage-0 and end-to-end latency: the operating system's timer wake-up jitter (as a frame
    /// grabber's interrupt would have) plus any read that overran the schedule.
    public var sourceLateness: LatencySummary?
    /// Wall-clock seconds from start to the end of the drain.
    public var wallSeconds: Double
    /// "live" or "replay".
    public var policy: String
    /// The scheduling the graph's threads ran under ("off", "SCHED_FIFO n", or why it was refused).
    public var realtime: String

    /// Delivered frames per second of wall time.
    public var throughput: Double { wallSeconds > 0 ? Double(framesDelivered) / wallSeconds : 0 }

    enum CodingKeys: String, CodingKey {
        case framesRead = "frames_read", droppedAtSource = "dropped_at_source", framesDelivered = "frames_delivered"
        case stages, endToEnd = "end_to_end", sourceLateness = "source_lateness", wallSeconds = "wall_seconds", policy, realtime
    }

    /// A fixed-width table for the terminal.
    public func formattedTable() -> String {
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
        }
        func ms(_ value: Double) -> String { pad(formatMilliseconds(value), 9) }
        var lines = ["stage            count  dropped       p50       p99     p99.9       max   busy p50  (ms)"]
        func row(_ name: String, _ latency: LatencySummary, busy: LatencySummary?) {
            let label = name.count >= 14 ? String(name.prefix(14)) : name + String(repeating: " ", count: 14 - name.count)
            lines.append(
                label + pad(String(latency.count), 8) + pad(String(latency.dropped), 9)
                    + ms(latency.p50) + " " + ms(latency.p99) + " " + ms(latency.p999) + " " + ms(latency.max)
                    + " " + (busy.map { pad(formatMilliseconds($0.p50), 10) } ?? pad("", 10)))
        }
        if let sourceLateness { row("(source late)", sourceLateness, busy: nil) }
        for stage in stages { row(stage.name, stage.latency, busy: stage.busy) }
        row("end-to-end", endToEnd, busy: nil)
        lines.append(
            "\(policy): \(framesRead) frames read, \(droppedAtSource) dropped at source, "
                + "\(framesDelivered) delivered in \(formatMilliseconds(wallSeconds * 1000)) ms "
                + "(\(formatMilliseconds(throughput)) frames/s); real-time scheduling: \(realtime)")
        return lines.joined(separator: "\n")
    }
}

/// Three decimals, without Foundation.
func formatMilliseconds(_ value: Double) -> String {
    let thousandths = Int(clampingFinite: (value * 1000).rounded())
    let fraction = String(abs(thousandths) % 1000)
    return "\(thousandths / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
}
