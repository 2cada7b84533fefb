import FluoroCore
import FluoroSources
import FluoroVision
import Foundation
import Testing

/// Runs a synthetic sequence through the registration; returns per-frame errors against the true shift
/// relative to the current reference frame, and the states.
func registerSynthetic(_ parameters: SyntheticParameters) throws -> (errors: [Double], states: [RegistrationState]) {
    let source = try SyntheticSource(parameters: parameters)
    let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
    let registration = Registration(geometry: source.geometry)
    var reference = source.truth(forFrame: 0)
    var errors: [Double] = [], states: [RegistrationState] = []
    while try source.read(into: frame) {
        let estimate = registration.estimate(UnsafeBufferPointer(frame.pixels))
        states.append(estimate.state)
        let truth = source.truth(forFrame: frame.index)
        if estimate.state == .lost {
            reference = truth
            errors.append(.nan)
            continue
        }
        let ex = Double(estimate.dx) - (truth.dx - reference.dx), ey = Double(estimate.dy) - (truth.dy - reference.dy)
        errors.append((ex * ex + ey * ey).squareRoot())
    }
    return (errors, states)
}

let figuresDirectory: String = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let path = ProcessInfo.processInfo.environment["FLUORO_FIGURES"] ?? root.appendingPathComponent(".build/figures").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

@Suite struct RegistrationTests {
    /// Seeds 501… were never used while developing the estimator (1001-1003 were, in fluoro-bench motion).
    @Test func syntheticShiftsAreFoundToATenthOfAPixel() throws {
        var parameters = SyntheticParameters()
        parameters.size = 512
        parameters.frameCount = 36
        parameters.seed = 501
        parameters.contrast = .init(start: 10, peak: 20, washedOut: 32)
        let (errors, states) = try registerSynthetic(parameters)
        let measured = errors.dropFirst()
        let rms = (measured.map { $0 * $0 }.reduce(0, +) / Double(measured.count)).squareRoot()
        #expect(states.allSatisfy { $0 == .tracking })
        #expect(rms <= 0.1, "RMS error \(rms) px")
        #expect(measured.max()! <= 0.5, "max error \(measured.max()!) px")
    }

    @Test func tableJumpIsReportedLostAndTrackingResumesAtOnce() throws {
        var parameters = SyntheticParameters()
        parameters.size = 256
        parameters.frameCount = 20
        parameters.seed = 502
        parameters.contrast = nil
        parameters.tableJump = .init(frame: 10, dx: 40, dy: -15)
        let (errors, states) = try registerSynthetic(parameters)
        #expect(states[10] == .lost, "states \(states)")
        #expect(states.enumerated().allSatisfy { $0.offset == 10 || $0.element == .tracking })
        for frame in 11...13 { #expect(errors[frame] <= 0.5, "frame \(frame) error \(errors[frame]) px after recovery") }
    }

    /// On a rigid synthetic run every control point of the local field finds the true shift.
    @Test func localFieldAgreesWithARigidShift() throws {
        var parameters = SyntheticParameters()
        parameters.size = 256
        parameters.frameCount = 8
        parameters.seed = 503
        parameters.contrast = nil
        parameters.respiratoryAmplitude = 10
        let source = try SyntheticSource(parameters: parameters)
        var settings = RegistrationParameters()
        settings.localCorrection = true
        let registration = Registration(geometry: source.geometry, parameters: settings)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        var worst: Float = 0
        while try source.read(into: frame) {
            _ = registration.estimate(UnsafeBufferPointer(frame.pixels))
            guard frame.index > 0 else { continue }
            #expect(registration.hasLocalField)
            let truth = source.truth(forFrame: frame.index), reference = source.truth(forFrame: 0)
            // The published field: every control point near the true (rigid) shift.
            var field = LocalMotionField()
            registration.writeLocalField(into: &field)
            #expect(field.gridSize == 8 && field.dx.count == 64 && field.dy.count == 64)
            for k in 0..<field.dx.count {
                worst = max(worst, abs(field.dx[k] - Float(truth.dx - reference.dx)), abs(field.dy[k] - Float(truth.dy - reference.dy)))
            }
            for y in stride(from: 40, through: 216, by: 32) {
                for x in stride(from: 40, through: 216, by: 32) {
                    let local = registration.localShift(x: Float(x), y: Float(y))
                    worst = max(worst, abs(local.dx - Float(truth.dx - reference.dx)), abs(local.dy - Float(truth.dy - reference.dy)))
                }
            }
        }
        #expect(worst <= 0.5, "largest control-point error \(worst) px")
    }

    @Test func aFrameWithoutStructureIsLost() throws {
        let geometry = try FrameGeometry(width: 256, height: 256, format: .grey16, bitsStored: 12)
        let registration = Registration(geometry: geometry)
        var random = SystemRandomNumberGenerator()
        let textured: [UInt16] = (0..<geometry.pixelCount).map { i in
            let column = i % 256, row = i / 256
            return UInt16(1000 + column * 3 + (row % 7) * 40)
        }
        let noise = (0..<geometry.pixelCount).map { _ in UInt16.random(in: 1000...3000, using: &random) }
        _ = textured.withUnsafeBufferPointer { registration.estimate($0) }
        let estimate = noise.withUnsafeBufferPointer { registration.estimate($0) }
        #expect(estimate.state == .lost, "confidence \(estimate.confidence)")
    }
}

/// Real runs: frames minus the first frame (log domain), with and without motion compensation.
@Suite struct RealRunRegistrationTests {
    static let data: String =
        ProcessInfo.processInfo.environment["FLUORO_TEST_DATA"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/data").path
    static var available: Bool { FileManager.default.fileExists(atPath: data + "/xa") }

    @Test(
        .enabled(if: available, "real DICOM test data not found (set FLUORO_TEST_DATA)"),
        arguments: [("xa/rubo-0002-rca-contrast.dcm", 18), ("xa/XA-MONO2-8-12x-catheter.dcm", 12)])
    func compensationReducesTheSubtractionResidual(name: String, frames: Int) throws {
        let source = try DICOMSource(path: Self.data + "/" + name)
        let geometry = source.geometry
        var parameters = RegistrationParameters()
        parameters.localCorrection = true
        let registration = Registration(geometry: geometry, parameters: parameters)
        let frame = Frame(slot: 0, geometry: geometry, stageCount: 1)
        let without = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: geometry.pixelCount)
        let with = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: geometry.pixelCount)
        defer { without.deallocate(); with.deallocate() }
        let middle = Double(1 << (geometry.bitsStored - 1))
        // The exposed field of the first frame shrunk by 24 px, as docs/validation.md measures motion on real runs:
        // the collimator blades, the shutters and the dark outside stay put and would dominate otherwise.
        try source.decode(frameAt: 0, into: frame.pixels)
        let field = exposedField(Array(frame.pixels), width: geometry.width, height: geometry.height, shrink: 24)
        func meanSquare(_ image: UnsafeMutableBufferPointer<UInt16>) -> Double {
            var total = 0.0, count = 0
            for i in 0..<geometry.pixelCount where field[i] {
                let value = Double(image[i]) - middle
                total += value * value
                count += 1
            }
            return total / Double(count)
        }
        var sumWithout = 0.0, sumWith = 0.0, sumExposureOnly = 0.0, sumLocal = 0.0
        var clearestFrame = (reduction: 1.0, index: 0)
        for index in 0..<frames {
            try source.decode(frameAt: index, into: frame.pixels)
            let estimate = registration.estimate(UnsafeBufferPointer(frame.pixels))
            #expect(estimate.state == .tracking, "frame \(index) \(estimate)")
            guard index > 0 else { continue }
            registration.writeSubtraction(of: UnsafeBufferPointer(frame.pixels), dx: 0, dy: 0, into: with)
            sumExposureOnly += meanSquare(with)
            registration.writeSubtraction(of: UnsafeBufferPointer(frame.pixels), dx: estimate.dx, dy: estimate.dy, local: true, into: with)
            sumLocal += meanSquare(with)
            registration.writeSubtraction(of: UnsafeBufferPointer(frame.pixels), dx: 0, dy: 0, correctExposure: false, into: without)
            registration.writeSubtraction(of: UnsafeBufferPointer(frame.pixels), dx: estimate.dx, dy: estimate.dy, into: with)
            let plain = meanSquare(without), compensated = meanSquare(with)
            sumWithout += plain
            sumWith += compensated
            if compensated / plain < clearestFrame.reduction { clearestFrame = (compensated / plain, index) }
        }
        let reduction = 1 - (sumWith / sumWithout).squareRoot()
        let exposureOnly = 1 - (sumExposureOnly / sumWithout).squareRoot()
        let localReduction = 1 - (sumLocal / sumWithout).squareRoot()
        print("\(name): with the local control-point field: \(String(format: "%.1f", localReduction * 100)) % lower")
        print(
            "\(name): frames 0-\(frames - 1), DSA residual RMS lower by \(String(format: "%.1f", reduction * 100)) % with "
                + "compensation (shift and exposure), \(String(format: "%.1f", exposureOnly * 100)) % with the exposure alone")
        // Much of the gain on these cardiac runs is the exposure equalisation (automatic dose control changes the
        // brightness frame to frame); the global shift adds less, since the heart's motion is not a translation.
        #expect(reduction >= 0.30, "\(name): residual RMS lower by \(Int(reduction * 100)) %")
        #expect(reduction >= exposureOnly - 0.002, "the shift must not make the subtraction worse")
        #expect(localReduction >= reduction - 0.002, "the local field must not make the subtraction worse")
        // A picture for people: the frame that gains most, without (left) and with (right) compensation.
        try source.decode(frameAt: clearestFrame.index, into: frame.pixels)
        let estimate = registration.estimate(UnsafeBufferPointer(frame.pixels))
        registration.writeSubtraction(of: UnsafeBufferPointer(frame.pixels), dx: 0, dy: 0, correctExposure: false, into: without)
        registration.writeSubtraction(of: UnsafeBufferPointer(frame.pixels), dx: estimate.dx, dy: estimate.dy, into: with)
        var pixels: [UInt8] = []
        let width = geometry.width
        let scale = 255 / (Double(geometry.maximumValue) / 4)
        for y in 0..<geometry.height {
            for image in [without, with] {
                for x in 0..<width {
                    let value = (Double(image[y * width + x]) - middle) * scale + 128
                    pixels.append(UInt8(min(max(value, 0), 255)))
                }
            }
        }
        let png = PNGEncoder.encode(pixels, width: 2 * width, height: geometry.height, channels: 1)
        let name = (name as NSString).lastPathComponent.replacingOccurrences(of: ".dcm", with: "")
        try Data(png).write(to: URL(fileURLWithPath: figuresDirectory + "/dsa-residual-\(name)-frame\(clearestFrame.index).png"))
    }
}

/// Pixels brighter than a tenth of the image's 99th percentile, at least `shrink` pixels (square distance) from
/// any darker pixel or the image's border.
func exposedField(_ pixels: [UInt16], width: Int, height: Int, shrink: Int) -> [Bool] {
    let limit = Double(pixels.sorted()[pixels.count * 99 / 100]) / 10
    var inside = pixels.map { Double($0) > limit }
    for (count, stride, lines, lineStride) in [(width, 1, height, width), (height, width, width, 1)] {
        var next = inside
        for line in 0..<lines {
            for k in 0..<count {
                let low = max(k - shrink, 0), high = min(k + shrink, count - 1)
                let ok = k >= shrink && k + shrink < count && (low...high).allSatisfy { inside[line * lineStride + $0 * stride] }
                next[line * lineStride + k * stride] = ok
            }
        }
        inside = next
    }
    return inside
}
