import FluoroCore
import FluoroSources
import FluoroVision
import Testing

/// The tracked centre line is moved by each frame's motion estimate before it guides the next trace. Whatever the
/// estimate (a heart border taken for a table move, a registration that diverged, NaN), moving the line off the
/// image, or far past it on any side, must leave the segmenter working: no trap, and the device found again once
/// the motion is sane.
@Suite struct TrackingUnderAnyMotionTests {
    /// Motion values drawn: inside the frame, just past each edge (including more than 3 px past the bottom or
    /// right edge), far outside, and not finite.
    static func motion(_ random: inout SplitMix) -> Float {
        switch random.next() % 8 {
        case 0: return Float(random.next() % 64) - 32
        case 1: return Float(random.next() % 40) + 240  // around a 256-pixel frame's far edge
        case 2: return -Float(random.next() % 40) - 240
        case 3: return Float(random.next() % 2_000_000) - 1_000_000
        case 4: return [Float.infinity, -.infinity, .nan, .greatestFiniteMagnitude, -.greatestFiniteMagnitude][Int(random.next() % 5)]
        case 5: return Float(bitPattern: UInt32(truncatingIfNeeded: random.next()))
        default: return 0
        }
    }

    @Test(arguments: [SegmentationMethod.ridge, .learned])
    func previousLinesMovedAnywhereNeverTrapTheSegmenter(method: SegmentationMethod) throws {
        var parameters = SyntheticParameters()
        parameters.size = 256
        parameters.frameCount = 4
        parameters.contrast = nil
        let source = try SyntheticSource(parameters: parameters)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        _ = try source.read(into: frame)
        var settings = SegmentationParameters()
        settings.method = method
        let segmenter = try DeviceSegmenter(geometry: source.geometry, parameters: settings)
        var random = SplitMix(seed: 7)
        var found = 0
        for step in 0..<100 {
            // Every other frame has a sane motion, so a line is tracked into the next wild one.
            let sane = step % 2 == 0
            frame.annotations.motion.state = .tracking
            // Tracking follows the dominant structures' shift.
            frame.annotations.motion.dominantDx = sane ? 0 : Self.motion(&random)
            frame.annotations.motion.dominantDy = sane ? 0 : Self.motion(&random)
            segmenter.segment(UnsafeBufferPointer(frame.pixels), into: &frame.annotations)
            if sane, frame.annotations.catheter.isPresent || frame.annotations.guidewire.isPresent { found += 1 }
        }
        #expect(found >= 40, "the device is found again on most sane frames (\(found) of 50)")
    }
}
