import FluoroCore
import FluoroConcurrency

/// Estimates the translation of each live frame against a reference frame, with sub-pixel accuracy, in the
/// log (attenuation) domain, as in DSA pixel shifting:
///
/// 1. the frame is box-averaged to the refinement level (by the smallest integer factor that brings its shorter
///    side to at most 256 pixels, so a 512² frame is refined on 256² by 2 × 2 blocks and a 1024² frame on 256² by
///    4 × 4 blocks) and taken through a −log look-up table indexed by the block's sum, so exposure changes do not
///    matter and structures add; one binomial pass removes most quantum noise;
/// 2. coarse-to-fine least squares (`TranslationPyramid`: Lucas–Kanade with an exposure offset over the
///    reference's exposed field) from no shift, and again from the peak of a phase correlation of the
///    Hann-windowed central square (averaged down to `workingSize`) when that peak lies elsewhere: the fit with the
///    smaller residual wins (a jump beyond `maximumShift` only on a peak of `tableMoveConfidence`). The second
///    finds a sudden table move the first may not reach;
/// 3. the dominant structures' shift for device tracking: Gauss–Newton with Tukey weights from the peak.
///
/// A shift that jumps by more than `maximumShift` from the previous frame's (a table move, or a failure), or a
/// normalised cross-correlation after the shift below `minimumCorrelation`, reports `lost` and resets the reference
/// to that frame. With `localCorrection`, a grid of control points is refined around the global shift (Gauss–Newton
/// with Tukey weights, block by block).
/// All memory is allocated in `init`; `estimate` allocates nothing.
public final class Registration {
    public let geometry: FrameGeometry
    public let parameters: RegistrationParameters
    /// Whether a reference frame has been set.
    public private(set) var hasReference = false
    /// The last frame's exposure change against the reference, in the log domain (live ≈ reference + offset):
    /// automatic dose control changes the brightness between frames, and subtraction must not show it.
    public private(set) var exposureOffset: Float = 0
    /// Whether the control-point field describes the last frame.
    public internal(set) var hasLocalField = false

    /// The refinement level: the frame box-averaged until its shorter side is at most 256 pixels, in the log domain.
    private let level: LogReduction
    /// Full-resolution pixels per level pixel along each axis, and the level's size.
    let reduction: Int
    let levelWidth: Int
    let levelHeight: Int
    private let fft: FFT2D
    private let workingSize: Int
    /// Level pixels per working pixel, and the central square's origin on the level.
    private let factor: Int
    private let originX: Int
    private let originY: Int
    /// −log of one full-resolution sample (the subtraction image).
    let logTable: UnsafeMutableBufferPointer<Float>
    private let window: UnsafeMutableBufferPointer<Float>
    /// The reference at full resolution (the subtraction mask).
    let referenceLog: UnsafeMutableBufferPointer<Float>
    /// The smoothed refinement level of the reference and of the live frame, and the reference's gradients.
    private let referenceLevel: UnsafeMutableBufferPointer<Float>
    private let liveLevel: UnsafeMutableBufferPointer<Float>
    private let gradientX: UnsafeMutableBufferPointer<Float>
    private let gradientY: UnsafeMutableBufferPointer<Float>
    private let levelScratch: UnsafeMutableBufferPointer<Float>
    /// One level row of refinement residuals, their magnitudes and weights.
    private let rowErrors: UnsafeMutableBufferPointer<Float>
    private let rowMagnitudes: UnsafeMutableBufferPointer<Float>
    private let rowWeights: UnsafeMutableBufferPointer<Float>
    private let referenceReal: UnsafeMutableBufferPointer<Float>
    private let referenceImaginary: UnsafeMutableBufferPointer<Float>
    private let workReal: UnsafeMutableBufferPointer<Float>
    private let workImaginary: UnsafeMutableBufferPointer<Float>
    /// The control-point grid: shifts (full-resolution pixels) at block centres (row-major, gridSize²), and a
    /// scratch copy for smoothing.
    let localX: UnsafeMutableBufferPointer<Float>
    let localY: UnsafeMutableBufferPointer<Float>
    let localScratch: UnsafeMutableBufferPointer<Float>
    /// Refinement stays this far (level pixels) from the level's borders.
    let margin: Int
    /// The coarse-to-fine fit of the global shift, and the last frame's shift (level pixels; 0 after a new
    /// reference).
    private let pyramid: TranslationPyramid
    private var previousShift = (dx: 0.0, dy: 0.0)

    /// With a `splitter`, the reduction of each frame shares its rows between two threads.
    public init(
        geometry: FrameGeometry, parameters: RegistrationParameters = RegistrationParameters(),
        splitter: WorkSplitter? = nil
    ) {
        precondition(parameters.gridSize >= 2, "the control-point grid needs at least 2×2 points")
        precondition(
            parameters.workingSize >= 8 && parameters.workingSize & (parameters.workingSize - 1) == 0,
            "the working size must be a power of two, at least 8")
        precondition(min(geometry.width, geometry.height) >= 8, "frames smaller than 8 pixels cannot be registered")
        self.geometry = geometry
        self.parameters = parameters
        level = LogReduction(geometry: geometry, largestSide: 256, splitter: splitter)
        reduction = level.factor
        levelWidth = level.width
        levelHeight = level.height
        var side = 1
        while side * 2 <= min(levelWidth, levelHeight) { side *= 2 }
        workingSize = min(parameters.workingSize, side)
        factor = side / workingSize
        originX = (levelWidth - side) / 2
        originY = (levelHeight - side) / 2
        fft = FFT2D(size: workingSize)
        let maximum = Double(geometry.maximumValue)
        logTable = .allocate(capacity: Int(geometry.maximumValue) + 1)
        for value in 0..<logTable.count { logTable[value] = Float(-log(max(Double(value), 0.5) / maximum)) }
        let cells = workingSize * workingSize
        window = .allocate(capacity: cells)
        for y in 0..<workingSize {
            for x in 0..<workingSize {
                let wy = 0.5 - 0.5 * cos(2 * Double.pi * Double(y) / Double(workingSize))
                let wx = 0.5 - 0.5 * cos(2 * Double.pi * Double(x) / Double(workingSize))
                window[y * workingSize + x] = Float(wx * wy)
            }
        }
        referenceLog = .allocate(capacity: geometry.pixelCount)
        let levelPixels = levelWidth * levelHeight
        referenceLevel = .allocate(capacity: levelPixels)
        liveLevel = .allocate(capacity: levelPixels)
        gradientX = .allocate(capacity: levelPixels)
        gradientY = .allocate(capacity: levelPixels)
        levelScratch = .allocate(capacity: levelPixels)
        rowErrors = .allocate(capacity: levelWidth)
        rowMagnitudes = .allocate(capacity: levelWidth)
        rowWeights = .allocate(capacity: levelWidth)
        referenceReal = .allocate(capacity: cells)
        referenceImaginary = .allocate(capacity: cells)
        workReal = .allocate(capacity: cells)
        workImaginary = .allocate(capacity: cells)
        margin = Int(clampingFinite: (parameters.maximumShift / Double(reduction)).rounded(.up)) + 2
        localX = .allocate(capacity: parameters.gridSize * parameters.gridSize)
        localY = .allocate(capacity: parameters.gridSize * parameters.gridSize)
        localScratch = .allocate(capacity: parameters.gridSize * parameters.gridSize)
        // The field is shrunk by 24 full-resolution pixels from the collimator blades and the border.
        pyramid = TranslationPyramid(
            width: levelWidth, height: levelHeight, fieldMargin: max(Int(clampingFinite: (24 / Double(reduction)).rounded()), 1))
    }

    deinit {
        for buffer in [
            rowErrors, rowMagnitudes, rowWeights, localX, localY, localScratch, logTable, window, referenceLog, referenceLevel,
            liveLevel, gradientX, gradientY, levelScratch, referenceReal, referenceImaginary, workReal,
            workImaginary,
        ] { buffer.deallocate() }
    }

    /// Makes `pixels` the reference that later frames are registered to.
    public func setReference(_ pixels: UnsafeBufferPointer<UInt16>) {
        let limit = logTable.count - 1
        for i in 0..<geometry.pixelCount { referenceLog[i] = logTable[min(Int(pixels[i]), limit)] }
        reduceToLog(pixels, into: referenceLevel)
        let width = levelWidth, height = levelHeight
        let image = referenceLevel
        for y in 0..<height {
            for x in 0..<width {
                let i = y * width + x
                let left = image[x > 0 ? i - 1 : i], right = image[x < width - 1 ? i + 1 : i]
                let up = image[y > 0 ? i - width : i], down = image[y < height - 1 ? i + width : i]
                gradientX[i] = (right - left) * (x > 0 && x < width - 1 ? 0.5 : 1)
                gradientY[i] = (down - up) * (y > 0 && y < height - 1 ? 0.5 : 1)
            }
        }
        prepareSpectrum(of: referenceLevel, real: referenceReal, imaginary: referenceImaginary)
        pyramid.setReference(referenceLevel.baseAddress!)
        previousShift = (0, 0)
        hasReference = true
    }

    /// The shift of `pixels` against the reference (a reference point p appears at p + (dx, dy)). Without a
    /// reference, the frame becomes the reference (shift 0, confidence 1). A `lost` result has already
    /// made this frame the new reference.
    public func estimate(_ pixels: UnsafeBufferPointer<UInt16>) -> MotionEstimate {
        var estimate = MotionEstimate()
        exposureOffset = 0
        hasLocalField = false
        guard hasReference else {
            setReference(pixels)
            estimate.confidence = 1
            estimate.state = .tracking
            return estimate
        }
        reduceToLog(pixels, into: liveLevel)
        pyramid.setLive(liveLevel.baseAddress!)
        prepareSpectrum(of: liveLevel, real: workReal, imaginary: workImaginary)
        let (coarseX, coarseY, peak) = correlationPeak()
        // Level pixels from here on; full-resolution pixels in the result.
        let correlated = (dx: coarseX * Double(factor), dy: coarseY * Double(factor))
        let scale = Double(reduction)
        estimate.confidence = peak
        var best = pyramid.align(from: (0, 0))
        func jump(_ shift: (dx: Double, dy: Double)) -> Double {
            max(abs(shift.dx - previousShift.dx), abs(shift.dy - previousShift.dy)) * scale
        }
        // The correlation peak's fit wins when its residual is smaller, but a far jump only on a clear peak.
        let apart = best.map { max(abs($0.dx - correlated.dx), abs($0.dy - correlated.dy)) } ?? .infinity
        if apart > 2, let other = pyramid.align(from: correlated), other.meanSquare < best?.meanSquare ?? .infinity,
            jump((other.dx, other.dy)) <= parameters.maximumShift || peak >= parameters.tableMoveConfidence
        {
            best = other
        }
        let likeness = best.flatMap { pyramid.correlation(dx: $0.dx, dy: $0.dy) } ?? 0
        // A table move (or a failure): the shift jumps further than patient motion can take it in one frame.
        let tableMove = best.map { jump(($0.dx, $0.dy)) > parameters.maximumShift } ?? true
        guard let best, likeness >= parameters.minimumCorrelation, !tableMove else {
            let reported = best ?? (correlated.dx, correlated.dy, 0, 0)
            estimate.dx = Float(reported.dx * scale)
            estimate.dy = Float(reported.dy * scale)
            estimate.state = .lost
            setReference(pixels)
            return estimate
        }
        previousShift = (best.dx, best.dy)
        exposureOffset = Float(best.offset)
        // The dominant structures' shift: Tukey-weighted refinement from the correlation peak, kept when it stays
        // within 2 working pixels of the peak.
        var dominant = correlated
        if let refined = refine(dx: correlated.dx, dy: correlated.dy), abs(refined.dx - correlated.dx) <= 2 * Double(factor),
            abs(refined.dy - correlated.dy) <= 2 * Double(factor)
        {
            dominant = (refined.dx, refined.dy)
        }
        estimate.dominantDx = Float(dominant.dx * scale)
        estimate.dominantDy = Float(dominant.dy * scale)
        if parameters.localCorrection { estimateLocalField(globalX: best.dx, globalY: best.dy) }
        estimate.dx = Float(best.dx * scale)
        estimate.dy = Float(best.dy * scale)
        estimate.state = .tracking
        return estimate
    }

    // MARK: - Steps

    /// The refinement level of `pixels`, smoothed.
    private func reduceToLog(_ pixels: UnsafeBufferPointer<UInt16>, into output: UnsafeMutableBufferPointer<Float>) {
        level.reduce(pixels, into: output.baseAddress!)
        smooth(output)
    }

    /// Binomial [1 4 6 4 1]/16 smoothing of a level image in place, in both directions (σ ≈ 1 px), edges clamped;
    /// the interior runs without clamping so the compiler can vectorise it.
    private func smooth(_ image: UnsafeMutableBufferPointer<Float>) {
        let width = levelWidth, height = levelHeight
        let input = image.baseAddress!, temporary = levelScratch.baseAddress!
        let sixteenth: Float = 1 / 16
        for y in 0..<height {
            let source = input + y * width, target = temporary + y * width
            for x in [0, 1, width - 2, width - 1] where x >= 0 && x < width {
                let a = source[max(x - 2, 0)], b = source[max(x - 1, 0)], c = source[x]
                let d = source[min(x + 1, width - 1)], e = source[min(x + 2, width - 1)]
                target[x] = (a + e + 4 * (b + d) + 6 * c) * sixteenth
            }
            if width > 4 {
                for x in 2..<(width - 2) {
                    target[x] = (source[x - 2] + source[x + 2] + 4 * (source[x - 1] + source[x + 1]) + 6 * source[x]) * sixteenth
                }
            }
        }
        for y in 0..<height {
            let r0 = temporary + max(y - 2, 0) * width, r1 = temporary + max(y - 1, 0) * width, r2 = temporary + y * width
            let r3 = temporary + min(y + 1, height - 1) * width, r4 = temporary + min(y + 2, height - 1) * width
            let target = input + y * width
            for x in 0..<width {
                target[x] = (r0[x] + r4[x] + 4 * (r1[x] + r3[x]) + 6 * r2[x]) * sixteenth
            }
        }
    }

    /// Averages the level's central square down to the working grid, removes the mean, applies the window, and
    /// transforms it.
    private func prepareSpectrum(
        of image: UnsafeMutableBufferPointer<Float>, real: UnsafeMutableBufferPointer<Float>,
        imaginary: UnsafeMutableBufferPointer<Float>
    ) {
        let n = workingSize, width = levelWidth
        let norm = 1 / Float(factor * factor)
        var total: Float = 0
        for cy in 0..<n {
            for cx in 0..<n {
                var sum: Float = 0
                for y in 0..<factor {
                    let row = (originY + cy * factor + y) * width + originX + cx * factor
                    for x in 0..<factor { sum += image[row + x] }
                }
                real[cy * n + cx] = sum * norm
                total += sum * norm
            }
        }
        let mean = total / Float(n * n)
        for i in 0..<(n * n) {
            real[i] = (real[i] - mean) * window[i]
            imaginary[i] = 0
        }
        fft.forwardTransposed(real: real.baseAddress!, imaginary: imaginary.baseAddress!)
    }

    /// The peak of the phase correlation between the reference and the live spectrum (in `work`), in working
    /// pixels with a parabolic sub-pixel fit, and its height.
    private func correlationPeak() -> (Double, Double, Float) {
        let n = workingSize
        for i in 0..<(n * n) {
            // live · conj(reference): its inverse transform peaks at +d when live(x) = reference(x − d).
            let ar = workReal[i], ai = workImaginary[i], br = referenceReal[i], bi = -referenceImaginary[i]
            let re = ar * br - ai * bi, im = ar * bi + ai * br
            let magnitude = (re * re + im * im).squareRoot()
            let inverse: Float = magnitude > 1e-20 ? 1 / magnitude : 0
            workReal[i] = re * inverse
            workImaginary[i] = im * inverse
        }
        fft.inverseFromTransposed(real: workReal.baseAddress!, imaginary: workImaginary.baseAddress!)
        var best = 0
        for i in 1..<(n * n) where workReal[i] > workReal[best] { best = i }
        let px = best % n, py = best / n
        func value(_ x: Int, _ y: Int) -> Float { workReal[((y + n) % n) * n + (x + n) % n] }
        func vertex(_ minus: Float, _ centre: Float, _ plus: Float) -> Double {
            let curvature = minus - 2 * centre + plus
            return curvature < 0 ? Double(0.5 * (minus - plus) / curvature) : 0
        }
        let fx = vertex(value(px - 1, py), value(px, py), value(px + 1, py))
        let fy = vertex(value(px, py - 1), value(px, py), value(px, py + 1))
        let wrappedX = px >= n / 2 ? px - n : px, wrappedY = py >= n / 2 ? py - n : py
        return (Double(wrappedX) + fx, Double(wrappedY) + fy, workReal[best])
    }

    /// Gauss–Newton with Tukey weights on the refinement level: find the shift d and exposure offset c with
    /// live(x + d) ≈ reference(x) + c over `region` (default: the interior, away from the borders by the largest
    /// shift). Eight samples at a time; a region's last columns that do not fill eight are left out.
    func refine(
        dx startX: Double, dy startY: Double, offset startOffset: Double = 0,
        region: (minX: Int, minY: Int, maxX: Int, maxY: Int)? = nil
    ) -> (dx: Double, dy: Double, offset: Double)? {
        typealias Lanes = SIMD8<Float>
        let width = levelWidth, height = levelHeight
        let bounds = region ?? (margin, margin, width - margin, height - margin)
        let live = liveLevel.baseAddress!, reference = referenceLevel.baseAddress!
        let gradientsX = gradientX.baseAddress!, gradientsY = gradientY.baseAddress!
        func load(_ pointer: UnsafeMutablePointer<Float>) -> Lanes {
            UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self)
        }
        var dx = startX, dy = startY
        var cut = Float.greatestFiniteMagnitude
        var offset = startOffset
        for _ in 0..<parameters.refinementIterations {
            let ix = Int(clampingFinite: dx.rounded(.down)), iy = Int(clampingFinite: dy.rounded(.down))
            let fx = Float(dx - Double(ix)), fy = Float(dy - Double(iy))
            let w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy
            // Unknowns: the shift step (δx, δy) and the exposure offset c (live = reference + c in the log domain).
            var hxx: Double = 0, hxy: Double = 0, hyy: Double = 0, hxc: Double = 0, hyc: Double = 0, hcc: Double = 0
            var bx: Double = 0, by: Double = 0, bc: Double = 0
            var absoluteSum: Double = 0
            let yStart = max(bounds.minY, -iy), yEnd = min(bounds.maxY, height - 1 - iy - 1)
            let xStart = max(bounds.minX, -ix), xEnd = min(bounds.maxX, width - 1 - ix - 1)
            let groups = (xEnd - xStart) / Lanes.scalarCount
            guard yStart < yEnd, groups > 0 else { return nil }
            let currentOffset = Float(offset)
            let count = groups * Lanes.scalarCount
            let errors = rowErrors.baseAddress!, weights = rowWeights.baseAddress!, magnitudes = rowMagnitudes.baseAddress!
            let currentCut = cut, currentInverseCut = 1 / cut
            for y in yStart..<yEnd {
                let row = y * width + xStart, shifted = (y + iy) * width + ix + xStart
                // Residuals and Tukey's biweight (residuals beyond the cut, e.g. a moving wire or contrast, count
                // for nothing), written to row buffers by a loop the compiler vectorises.
                let top = live + shifted, bottom = live + shifted + width, base = reference + row
                for x in 0..<count {
                    let warped = w00 * top[x] + w01 * top[x &+ 1] + w10 * bottom[x] + w11 * bottom[x &+ 1]
                    let error = warped - base[x] - currentOffset
                    let magnitude = abs(error)
                    let ratio = error * currentInverseCut
                    let keep = 1 - ratio * ratio
                    errors[x] = error
                    magnitudes[x] = magnitude
                    weights[x] = magnitude < currentCut ? keep * keep : 0
                }
                // The normal equations' sums, eight lanes at a time.
                var rowXX = Lanes(), rowXY = Lanes(), rowYY = Lanes(), rowXC = Lanes(), rowYC = Lanes(), rowCC = Lanes()
                var rowBX = Lanes(), rowBY = Lanes(), rowBC = Lanes(), rowAbs = Lanes()
                for group in 0..<groups {
                    let k = group * Lanes.scalarCount, i = row + k
                    let weight = load(weights + k), error = load(errors + k)
                    let gx = load(gradientsX + i), gy = load(gradientsY + i)
                    let weightedX = weight * gx, weightedY = weight * gy
                    rowXX += weightedX * gx
                    rowXY += weightedX * gy
                    rowYY += weightedY * gy
                    rowXC -= weightedX
                    rowYC -= weightedY
                    rowCC += weight
                    rowBX += weightedX * error
                    rowBY += weightedY * error
                    rowBC -= weight * error
                    rowAbs += load(magnitudes + k)
                }
                hxx += Double(rowXX.sum()); hxy += Double(rowXY.sum()); hyy += Double(rowYY.sum())
                hxc += Double(rowXC.sum()); hyc += Double(rowYC.sum()); hcc += Double(rowCC.sum())
                bx += Double(rowBX.sum()); by += Double(rowBY.sum()); bc += Double(rowBC.sum())
                absoluteSum += Double(rowAbs.sum())
            }
            let samples = Double((yEnd - yStart) * groups * Lanes.scalarCount)
            // Solve H (δx, δy, δc) = −b by Cramer's rule (H symmetric 3×3).
            let determinant = hxx * (hyy * hcc - hyc * hyc) - hxy * (hxy * hcc - hyc * hxc) + hxc * (hxy * hyc - hyy * hxc)
            guard abs(determinant) > 1e-12 else { return nil }
            let rx = -bx, ry = -by, rc = -bc
            let stepX = (rx * (hyy * hcc - hyc * hyc) - hxy * (ry * hcc - hyc * rc) + hxc * (ry * hyc - hyy * rc)) / determinant
            let stepY = (hxx * (ry * hcc - hyc * rc) - rx * (hxy * hcc - hyc * hxc) + hxc * (hxy * rc - ry * hxc)) / determinant
            let stepC = (hxx * (hyy * rc - ry * hyc) - hxy * (hxy * rc - ry * hxc) + rx * (hxy * hyc - hyy * hxc)) / determinant
            dx += stepX
            dy += stepY
            offset += stepC
            // σ ≈ 1.25 × the mean absolute residual; Tukey's cut at 4.685σ.
            cut = Float(4.685 * 1.25 * absoluteSum / samples)
            if abs(stepX) < 0.001 && abs(stepY) < 0.001 { break }
        }
        return (dx, dy, offset)
    }
}

#if canImport(Glibc)
    import Glibc
#endif
