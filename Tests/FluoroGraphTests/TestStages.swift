import FluoroCore
import Foundation

/// A source of small constant frames at a given rate, numbered 0, 1, 2, …
final class CountingSource: FrameSource {
    let name = "counting"
    let geometry: FrameGeometry
    let frameInterval: Double?
    let frameCount: Int?
    /// How long reading frame i takes (seconds): a slow or stalling source.
    private let readTime: (Int) -> Double
    private var next = 0

    init(frames: Int, interval: Double, size: Int = 32, readTime: @escaping (Int) -> Double = { _ in 0 }) throws {
        geometry = try FrameGeometry(width: size, height: size, format: .grey16, bitsStored: 12)
        frameInterval = interval
        frameCount = frames
        self.readTime = readTime
    }

    func read(into frame: Frame) throws -> Bool {
        guard next < frameCount! else { return false }
        if readTime(next) > 0 { Thread.sleep(forTimeInterval: readTime(next)) }
        frame.pixels.update(repeating: UInt16(next % 4096))
        frame.index = next
        frame.sourceTime = Double(next) * frameInterval!
        next += 1
        return true
    }
}

/// Records the index and first pixel of every frame it sees (storage reserved up front).
final class RecordingStage: Stage {
    let name: String
    private(set) var indices: [Int] = []
    private(set) var firstPixels: [UInt16] = []
    private(set) var finished = false
    private let delay: Double

    init(name: String = "record", delay: Double = 0, capacity: Int = 100_000) {
        self.name = name
        self.delay = delay
        indices.reserveCapacity(capacity)
        firstPixels.reserveCapacity(capacity)
    }

    func process(_ frame: Frame) throws {
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        indices.append(frame.index)
        firstPixels.append(frame.pixels[0])
    }

    func finish() throws { finished = true }
}

/// Fails on a chosen frame.
final class FailingStage: Stage {
    let name = "failing"
    let failAt: Int
    init(failAt: Int) { self.failAt = failAt }
    func process(_ frame: Frame) throws {
        if frame.index == failAt { throw FluoroError.invalidArgument("deliberate failure at \(failAt)") }
    }
}
