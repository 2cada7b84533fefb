import FluoroCore
import FluoroSources
import Foundation
import Testing

func smallRun(seed: UInt64 = 7, frames: Int = 40, dose: Double = 1000) -> SyntheticParameters {
    var parameters = SyntheticParameters()
    parameters.size = 128
    parameters.frameCount = frames
    parameters.seed = seed
    parameters.dose = dose
    parameters.contrast = .init(start: 10, peak: 20, washedOut: 35)
    return parameters
}

func render(_ parameters: SyntheticParameters) throws -> [[UInt16]] {
    let source = try SyntheticSource(parameters: parameters)
    let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
    var frames: [[UInt16]] = []
    while try source.read(into: frame) { frames.append(Array(frame.pixels)) }
    return frames
}

/// Mean of the frame's samples under `points` (nearest pixel).
func meanValue(_ pixels: [UInt16], size: Int, at points: [(Double, Double)]) -> Double {
    let values = points.compactMap { x, y -> Double? in
        let ix = Int(x.rounded()), iy = Int(y.rounded())
        guard ix >= 0, iy >= 0, ix < size, iy < size else { return nil }
        return Double(pixels[iy * size + ix])
    }
    return values.reduce(0, +) / Double(max(values.count, 1))
}

@Suite struct SyntheticSourceTests {
    @Test func sameSeedGivesTheSameRunAndAnotherSeedAnother() throws {
        let a = try render(smallRun(seed: 3, frames: 4)), b = try render(smallRun(seed: 3, frames: 4))
        let c = try render(smallRun(seed: 4, frames: 4))
        #expect(a == b)
        #expect(a != c)
        #expect(a[0] != a[1], "noise and motion change every frame")
    }

    @Test func samplesUseTwelveBitsAndFollowTheDose() throws {
        let frames = try render(smallRun(frames: 2))
        let values = frames[0]
        #expect(values.max()! <= 4095 && values.max()! > 500)
        // Relative noise falls as the dose rises (Poisson: σ/μ ∝ 1/√dose).
        func relativeNoise(_ dose: Double) throws -> Double {
            let run = try render(smallRun(frames: 2, dose: dose))
            let difference = zip(run[0], run[1]).map { Double($0) - Double($1) }
            let mean = run[0].map(Double.init).reduce(0, +) / Double(run[0].count)
            let variance = difference.map { $0 * $0 }.reduce(0, +) / Double(difference.count) / 2
            return variance.squareRoot() / mean
        }
        let low = try relativeNoise(250), high = try relativeNoise(4000)
        #expect(high < low / 2.5, "noise at dose 4000 \(high) vs dose 250 \(low)")
    }

    @Test func truthWireIsWhereTheImageIsDark() throws {
        let parameters = smallRun(frames: 8)
        let source = try SyntheticSource(parameters: parameters)
        let frames = try render(parameters)
        for index in [0, 7] {
            let wire = try #require(source.truth(forFrame: index).guidewire)
            let line = wire.centerline.map { (Double($0.x), Double($0.y)) }
            #expect(line.count > 20)
            let beside = line.map { ($0.0 + 8, $0.1 - 8) }
            let onWire = meanValue(frames[index], size: 128, at: line), offWire = meanValue(frames[index], size: 128, at: beside)
            #expect(onWire < 0.85 * offWire, "frame \(index): wire \(onWire) vs beside \(offWire)")
            let last = wire.centerline.last!
            #expect(abs(Double(last.x - wire.tip.x)) < 3 && abs(Double(last.y - wire.tip.y)) < 3)
        }
    }

    @Test func vesselsDarkenOnlyWhileContrastIsIn() throws {
        let parameters = smallRun()
        let source = try SyntheticSource(parameters: parameters)
        let frames = try render(parameters)
        let mask = source.referenceVesselMask()
        #expect(mask.contains(1))
        // Vessel pixels (away from the devices) against the mean, before contrast and at peak.
        func vesselContrast(_ index: Int) -> Double {
            let truth = source.truth(forFrame: index)
            var inside: [Double] = [], outside: [Double] = []
            for y in 8..<120 {
                for x in 8..<120 {
                    let rx = Int((Double(x) - truth.dx).rounded()), ry = Int((Double(y) - truth.dy).rounded())
                    guard rx >= 0, ry >= 0, rx < 128, ry < 128 else { continue }
                    (mask[ry * 128 + rx] == 1
                        ? { inside.append(Double(frames[index][y * 128 + x])) }
                        : { outside.append(Double(frames[index][y * 128 + x])) })()
                }
            }
            return (inside.reduce(0, +) / Double(inside.count)) / (outside.reduce(0, +) / Double(outside.count))
        }
        let before = vesselContrast(5), peak = vesselContrast(20)
        #expect(source.truth(forFrame: 5).contrast == 0 && source.truth(forFrame: 20).contrast == 1)
        #expect(peak < before - 0.1, "vessel/background ratio before \(before), at peak \(peak)")
        let truth = source.runTruth(vesselMaskFileName: "mask.pgm")
        #expect((10...12).contains(truth.contrastFrames.first!) && truth.contrastFrames.contains(20) && !truth.contrastFrames.contains(39))
    }

    /// A frame's vessel mask is the lumen at that frame's shift: the reference mask at shift 0, the reference mask
    /// moved at an integer shift, and at half a pixel neither of its two roundings but the lumen between them.
    @Test func aFramesVesselMaskIsTheLumenAtItsShift() throws {
        var parameters = smallRun()
        parameters.size = 256
        parameters.respiratoryAmplitude = 0
        parameters.cardiacAmplitude = 0
        /// The reference mask and the mask of a frame after a table move by (dx, dy).
        func masks(afterJump dx: Double, _ dy: Double) throws -> (reference: [UInt8], frame: [UInt8]) {
            parameters.tableJump = .init(frame: 5, dx: dx, dy: dy)
            let source = try SyntheticSource(parameters: parameters)
            return (source.referenceVesselMask(), source.vesselMask(forFrame: 6))
        }
        /// `mask` at p − (dx, dy), 0 outside the frame.
        func moved(_ mask: [UInt8], _ dx: Int, _ dy: Int) -> [UInt8] {
            (0..<(256 * 256)).map { i in
                let x = i % 256 - dx, y = i / 256 - dy
                return x >= 0 && y >= 0 && x < 256 && y < 256 ? mask[y * 256 + x] : 0
            }
        }
        let still = try masks(afterJump: 0, 0)
        #expect(still.frame == still.reference)
        // Pixels whose anatomy (p − shift) lies inside the reference frame.
        let jumped = try masks(afterJump: 3, -2), expected = moved(jumped.reference, 3, -2)
        let compared = jumped.frame.indices.filter { $0 % 256 >= 3 && $0 / 256 < 254 }
        let mismatches = compared.filter { jumped.frame[$0] != expected[$0] }.count
        #expect(mismatches == 0 && jumped.frame.contains(1), "\(mismatches) pixels differ from the reference mask moved by (3, −2)")

        let half = try masks(afterJump: 0.5, 0)
        let left = moved(half.reference, 0, 0), right = moved(half.reference, 1, 0), lumen = half.frame
        let inBoth = lumen.indices.filter { left[$0] != 0 && right[$0] != 0 }
        let missed = inBoth.filter { lumen[$0] == 0 }.count
        let differs = { (other: [UInt8]) in lumen.indices.filter { lumen[$0] != other[$0] }.count }
        let vesselPixels = half.reference.filter { $0 != 0 }.count
        #expect(
            missed * 100 <= inBoth.count, "\(missed) of \(inBoth.count) pixels inside the lumen at both roundings are outside at the half")
        #expect(
            differs(left) * 20 >= vesselPixels && differs(right) * 20 >= vesselPixels,
            "half a pixel is a rounding: \(differs(left)), \(differs(right)) of \(vesselPixels) pixels differ")
    }

    /// The true shift is what the image shows: the cross-correlation between two frames (a brute-force
    /// search with a parabolic peak fit, independent of the generator) peaks at the difference of their
    /// true shifts.
    @Test func truthShiftMatchesTheImageMotion() throws {
        var parameters = smallRun(frames: 30, dose: 100_000)
        parameters.contrast = nil
        parameters.respiratoryAmplitude = 10
        let source = try SyntheticSource(parameters: parameters)
        let frames = try render(parameters)
        func centred(_ frame: [UInt16]) -> [Double] {
            let mean = frame.map(Double.init).reduce(0, +) / Double(frame.count)
            return frame.map { Double($0) - mean }
        }
        let f0 = centred(frames[0])
        for later in [12, 25] {
            let a = source.truth(forFrame: 0), b = source.truth(forFrame: later)
            let f1 = centred(frames[later])
            var scores = [[Double]](repeating: [Double](repeating: 0, count: 17), count: 17)
            var best = (score: -Double.infinity, dx: 0, dy: 0)
            for dy in -8...8 {
                for dx in -8...8 {
                    var score = 0.0
                    for y in 16..<112 { for x in 16..<112 { score += f0[y * 128 + x] * f1[(y + dy) * 128 + x + dx] } }
                    scores[dy + 8][dx + 8] = score
                    if score > best.score { best = (score, dx, dy) }
                }
            }
            func vertex(_ minus: Double, _ centre: Double, _ plus: Double) -> Double {
                0.5 * (minus - plus) / (minus - 2 * centre + plus)
            }
            let row = scores[best.dy + 8], column = scores.map { $0[best.dx + 8] }
            let measuredX = Double(best.dx) + vertex(row[best.dx + 7], row[best.dx + 8], row[best.dx + 9])
            let measuredY = Double(best.dy) + vertex(column[best.dy + 7], column[best.dy + 8], column[best.dy + 9])
            #expect(
                abs(measuredX - (b.dx - a.dx)) < 0.3 && abs(measuredY - (b.dy - a.dy)) < 0.3,
                "frame \(later): measured (\(measuredX), \(measuredY)), truth (\(b.dx - a.dx), \(b.dy - a.dy))")
        }
    }

    /// Inside the collimated field (away from its penumbra) the frames are those of the open run (the same but for
    /// the noise, whose draws differ once the dark pixels need Poisson's); behind the blades only the leakage reaches
    /// the detector; circle and octagon differ where they should.
    @Test(arguments: SyntheticParameters.Collimator.Shape.allCases)
    func aCollimatorLeavesOnlyItsFieldExposed(shape: SyntheticParameters.Collimator.Shape) throws {
        var parameters = smallRun(frames: 3)
        parameters.size = 256
        let open = try render(parameters)
        parameters.collimator = .init(shape: shape, radius: 0.8)
        let collimated = try render(parameters)
        let centre = 127.5, reach = 0.8 * 128
        var insideOpen = 0.0, insideCollimated = 0.0, outsideOpen = 0.0, outsideCollimated = 0.0
        for y in 0..<256 {
            for x in 0..<256 {
                let u = abs(Double(x) - centre), v = abs(Double(y) - centre), radius = (u * u + v * v).squareRoot()
                let i = y * 256 + x
                if radius < reach - 4 {
                    insideOpen += Double(open[2][i])
                    insideCollimated += Double(collimated[2][i])
                } else if radius > 1.09 * reach + 4 {  // beyond the octagon's corners too
                    outsideOpen += Double(open[2][i])
                    outsideCollimated += Double(collimated[2][i])
                }
            }
        }
        // About 30 000 pixels with σ/μ ≈ 5 % each: the means agree to a few parts in 10⁴.
        #expect(abs(insideCollimated / insideOpen - 1) < 0.002, "inside the field: \(insideCollimated / insideOpen) of the open run")
        let transmitted = outsideCollimated / outsideOpen
        #expect(abs(transmitted - 0.004) < 0.001, "\(transmitted) of the X-rays pass the blades")
        // 22.5° off the axis, 4 % beyond the radius: outside the circle, inside the octagon (its corner is at 8.2 %).
        let angle = Double.pi / 8, distance = 1.04 * reach
        var dark = 0
        for k in -1...1 {
            let x = Int((centre + distance * cos(angle)).rounded()) + k, y = Int((centre + distance * sin(angle)).rounded())
            if Double(collimated[2][y * 256 + x]) < 0.2 * Double(open[2][y * 256 + x]) { dark += 1 }
        }
        #expect(dark == (shape == .circle ? 3 : 0), "\(shape): \(dark) of 3 pixels behind the blades")
    }

    /// A diagnostic injection: no guidewire, a catheter that fills with contrast as the vessels do, no opacified
    /// vessel around it, and the vessel tree starting at its tip.
    @Test func aDiagnosticRunHasACatheterAtTheOstium() throws {
        var parameters = smallRun(frames: 21)
        parameters.size = 256
        parameters.procedure = .diagnostic
        let source = try SyntheticSource(parameters: parameters)
        let frames = try render(parameters)
        let truth = source.truth(forFrame: 20)
        #expect(truth.guidewire == nil && truth.contrast == 1)
        let catheter = truth.catheter.centerline.map { (Double($0.x), Double($0.y)) }
        #expect(catheter.count > 15)
        let before = source.truth(forFrame: 0).catheter.centerline.map { (Double($0.x), Double($0.y)) }
        let empty = meanValue(frames[0], size: 256, at: before), filled = meanValue(frames[20], size: 256, at: catheter)
        // Iodine across the lumen at the centre line: 0.16 per pixel over 3 px here, a drop to ≈ 0.62.
        #expect(filled < 0.75 * empty, "catheter full of contrast \(filled) against empty \(empty)")
        // Vessels: none along the catheter (but near its tip), some within a catheter radius of its tip.
        let vessels = source.vesselMask(forFrame: 20)
        func isVessel(_ x: Double, _ y: Double) -> Bool {
            let ix = Int(x.rounded()), iy = Int(y.rounded())
            return ix >= 0 && iy >= 0 && ix < 256 && iy < 256 && vessels[iy * 256 + ix] == 1
        }
        let alongCatheter = catheter.dropLast(3).filter { isVessel($0.0, $0.1) }.count
        #expect(alongCatheter == 0, "\(alongCatheter) catheter points inside an opacified vessel")
        let tip = truth.catheter.tip, reach = Int(truth.catheter.radius.rounded(.up)) + 2
        let nearTip = (-reach...reach).flatMap { dy in
            (-reach...reach).map { dx in (Double(tip.x) + Double(dx), Double(tip.y) + Double(dy)) }
        }
        #expect(nearTip.contains { isVessel($0.0, $0.1) }, "no vessel at the catheter's tip")
        // The intervention's tree covers the catheter's course.
        var open = parameters
        open.procedure = .intervention
        let interventionVessels = try SyntheticSource(parameters: open).vesselMask(forFrame: 20)
        #expect(catheter.filter { interventionVessels[Int($0.1.rounded()) * 256 + Int($0.0.rounded())] == 1 }.count * 2 > catheter.count)
    }

    @Test func parametersOutOfRangeAreRejected() {
        var parameters = SyntheticParameters()
        parameters.dose = 0
        #expect(throws: FluoroError.self) { try SyntheticSource(parameters: parameters) }
        parameters = SyntheticParameters()
        parameters.contrast = .init(start: 10, peak: 5, washedOut: 20)
        #expect(throws: FluoroError.self) { try SyntheticSource(parameters: parameters) }
        parameters = SyntheticParameters()
        parameters.collimator = .init(shape: .circle, radius: 0.1)
        #expect(throws: FluoroError.self) { try SyntheticSource(parameters: parameters) }
    }
}
