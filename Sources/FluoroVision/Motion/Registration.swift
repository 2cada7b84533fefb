import FluoroCore

/// Settings of the motion estimator.
public struct RegistrationParameters: Sendable {
    /// Side of the phase-correlation grid (a power of two); the frame's central square is averaged down to it.
    public var workingSize = 256
    /// Largest shift (pixels, full resolution) that patient motion can cause; a larger one is a table move
    /// (or a failure) and makes the estimator report `lost` and take the frame as its new reference.
    public var maximumShift = 24.0
    /// Phase-correlation peaks below this (0...1) mean no reliable match: `lost`.
    public var minimumConfidence: Float = 0.03
    /// Gauss–Newton refinement steps at full resolution.
    public var refinementIterations = 10
    /// Second level: a grid of control points, each refined on its own block from the global shift, for the
    /// non-rigid part of the motion (used by the subtraction image).
    public var localCorrection = false
    /// Control points per side of the grid.
    public var gridSize = 8
    /// A control point may differ from the global shift by at most this (pixels); beyond, it keeps the global shift.
    public var maximumLocalDeviation = 6.0

    public init() {}
}

/// Estimates the translation of each live frame against a reference frame, with sub-pixel accuracy, in the
/// log (attenuation) domain, as in DSA pixel shifting:
///
/// 1. both frames through a −log look-up table, so exposure changes do not matter and structures add;
/// 2. phase correlation of the Hann-windowed central square, averaged down to `workingSize`, gives the
///    integer-scale shift and a confidence (the normalised correlation peak);
/// 3. Gauss–Newton refinement at full resolution (the reference's gradients, bilinear warping of the live
///    frame, Huber weights so a moving wire, arriving contrast or noise outliers do not pull the estimate).
///
/// A shift beyond `maximumShift` or a weak peak reports `lost` and resets the reference to that frame.
/// All memory is allocated in `init`; `estimate` allocates nothing.
public final class Registration {
    public let geometry: FrameGeometry
    public let parameters: RegistrationParameters
    /// Whether a reference frame has been set.
    public private(set) var hasReference = false
    /// The last frame's exposure change against the reference, in the log domain (live ≈ reference + offset):
    /// automatic dose control changes the brightness between frames, and subtraction must not show it.
    public private(set) var exposureOffset: Float = 0

    private let fft: FFT2D
    private let workingSize: Int
    /// Full-resolution pixels per working pixel, and the central square's origin.
    private let factor: Int
    private let originX: Int
    private let originY: Int
    private let logTable: UnsafeMutableBufferPointer<Float>
    private let window: UnsafeMutableBufferPointer<Float>
    private let referenceLog: UnsafeMutableBufferPointer<Float>
    private let gradientX: UnsafeMutableBufferPointer<Float>
    private let gradientY: UnsafeMutableBufferPointer<Float>
    private let liveLog: UnsafeMutableBufferPointer<Float>
    /// Smoothed copies used by the refinement (quantum noise in the gradients would bias its steps to zero).
    private let referenceSmooth: UnsafeMutableBufferPointer<Float>
    private let liveSmooth: UnsafeMutableBufferPointer<Float>
    private let smoothingScratch: UnsafeMutableBufferPointer<Float>
    private let referenceReal: UnsafeMutableBufferPointer<Float>
    private let referenceImaginary: UnsafeMutableBufferPointer<Float>
    private let workReal: UnsafeMutableBufferPointer<Float>
    private let workImaginary: UnsafeMutableBufferPointer<Float>
    /// The control-point grid: shifts at block centres (row-major, gridSize²), and a scratch copy for smoothing.
    private let localX: UnsafeMutableBufferPointer<Float>
    private let localY: UnsafeMutableBufferPointer<Float>
    private let localScratch: UnsafeMutableBufferPointer<Float>
    /// Whether `localX`/`localY` describe the last frame.
    public private(set) var hasLocalField = false
    /// Refinement samples every `sampleStep` pixels in each direction, inside `margin`.
    private let sampleStep: Int
    private let margin: Int
    /// Smoothing passes before refinement (more for larger frames, whose structures span more pixels).
    private let smoothingPasses: Int

    public init(geometry: FrameGeometry, parameters: RegistrationParameters = RegistrationParameters()) {
        precondition(parameters.gridSize >= 2, "the control-point grid needs at least 2×2 points")
        precondition(parameters.workingSize >= 8 && parameters.workingSize & (parameters.workingSize - 1) == 0,
                     "the working size must be a power of two, at least 8")
        precondition(min(geometry.width, geometry.height) >= 8, "frames smaller than 8 pixels cannot be registered")
        self.geometry = geometry
        self.parameters = parameters
        var side = 1
        while side * 2 <= min(geometry.width, geometry.height) { side *= 2 }
        workingSize = min(parameters.workingSize, side)
        factor = side / workingSize
        originX = (geometry.width - side) / 2
        originY = (geometry.height - side) / 2
        fft = FFT2D(size: workingSize)
        let levels = 1 << geometry.bitsStored
        logTable = .allocate(capacity: levels)
        for value in 0..<levels { logTable[value] = Float(-log(max(Double(value), 0.5) / Double(levels - 1))) }
        let cells = workingSize * workingSize
        window = .allocate(capacity: cells)
        for y in 0..<workingSize {
            for x in 0..<workingSize {
                let wy = 0.5 - 0.5 * cos(2 * Double.pi * Double(y) / Double(workingSize))
                let wx = 0.5 - 0.5 * cos(2 * Double.pi * Double(x) / Double(workingSize))
                window[y * workingSize + x] = Float(wx * wy)
            }
        }
        let pixels = geometry.pixelCount
        referenceLog = .allocate(capacity: pixels)
        gradientX = .allocate(capacity: pixels)
        gradientY = .allocate(capacity: pixels)
        liveLog = .allocate(capacity: pixels)
        referenceSmooth = .allocate(capacity: pixels)
        liveSmooth = .allocate(capacity: pixels)
        smoothingScratch = .allocate(capacity: pixels)
        referenceReal = .allocate(capacity: cells)
        referenceImaginary = .allocate(capacity: cells)
        workReal = .allocate(capacity: cells)
        workImaginary = .allocate(capacity: cells)
        sampleStep = max(1, min(geometry.width, geometry.height) / 512)
        margin = Int(parameters.maximumShift.rounded(.up)) + 2
        smoothingPasses = max(1, min(geometry.width, geometry.height) / 512)
        localX = .allocate(capacity: parameters.gridSize * parameters.gridSize)
        localY = .allocate(capacity: parameters.gridSize * parameters.gridSize)
        localScratch = .allocate(capacity: parameters.gridSize * parameters.gridSize)
    }

    deinit {
        for buffer in [localX, localY, localScratch] { buffer.deallocate() }
        for buffer in [logTable, window, referenceLog, gradientX, gradientY, liveLog, referenceSmooth, liveSmooth,
                       smoothingScratch, referenceReal, referenceImaginary, workReal, workImaginary] { buffer.deallocate() }
    }

    /// Makes `pixels` the reference that later frames are registered to.
    public func setReference(_ pixels: UnsafeBufferPointer<UInt16>) {
        toLog(pixels, into: referenceLog)
        smooth(referenceLog, into: referenceSmooth)
        for _ in 1..<smoothingPasses { smooth(referenceSmooth, into: referenceSmooth) }
        let width = geometry.width, height = geometry.height
        let image = referenceSmooth
        for y in 0..<height {
            for x in 0..<width {
                let i = y * width + x
                let left = image[x > 0 ? i - 1 : i], right = image[x < width - 1 ? i + 1 : i]
                let up = image[y > 0 ? i - width : i], down = image[y < height - 1 ? i + width : i]
                gradientX[i] = (right - left) * (x > 0 && x < width - 1 ? 0.5 : 1)
                gradientY[i] = (down - up) * (y > 0 && y < height - 1 ? 0.5 : 1)
            }
        }
        prepareSpectrum(of: referenceLog, real: referenceReal, imaginary: referenceImaginary)
        hasReference = true
    }

    /// The shift of `pixels` against the reference (a reference point p appears at p + (dx, dy)). Without a
    /// reference, the frame becomes the reference (shift 0, confidence 1). A `lost` result has already
    /// made this frame the new reference.
    public func estimate(_ pixels: UnsafeBufferPointer<UInt16>) -> MotionEstimate {
        var estimate = MotionEstimate()
        guard hasReference else {
            toLog(pixels, into: liveLog)
            setReference(pixels)
            estimate.confidence = 1
            estimate.state = .tracking
            return estimate
        }
        toLog(pixels, into: liveLog)
        prepareSpectrum(of: liveLog, real: workReal, imaginary: workImaginary)
        let (coarseX, coarseY, peak) = correlationPeak()
        let scale = Double(factor)
        var dx = coarseX * scale, dy = coarseY * scale
        estimate.confidence = peak
        if peak < parameters.minimumConfidence || max(abs(dx), abs(dy)) > parameters.maximumShift {
            estimate.dx = Float(dx)
            estimate.dy = Float(dy)
            estimate.state = .lost
            setReference(pixels)
            return estimate
        }
        smooth(liveLog, into: liveSmooth)
        for _ in 1..<smoothingPasses { smooth(liveSmooth, into: liveSmooth) }
        exposureOffset = 0
        hasLocalField = false
        if let refined = refine(dx: dx, dy: dy), abs(refined.dx - dx) <= 2 * scale, abs(refined.dy - dy) <= 2 * scale {
            (dx, dy) = (refined.dx, refined.dy)
            exposureOffset = Float(refined.offset)
        }
        if parameters.localCorrection { estimateLocalField(globalX: dx, globalY: dy) }
        estimate.dx = Float(dx)
        estimate.dy = Float(dy)
        estimate.state = .tracking
        return estimate
    }

    /// The local shift at pixel (x, y): bilinear between the control points (block centres), constant beyond.
    public func localShift(x: Float, y: Float) -> (dx: Float, dy: Float) {
        let n = parameters.gridSize
        let gx = min(max(x / Float(geometry.width) * Float(n) - 0.5, 0), Float(n - 1))
        let gy = min(max(y / Float(geometry.height) * Float(n) - 0.5, 0), Float(n - 1))
        let x0 = min(Int(gx), n - 2), y0 = min(Int(gy), n - 2)
        let x1 = min(x0 + 1, n - 1), y1 = min(y0 + 1, n - 1)
        let fx = gx - Float(x0), fy = gy - Float(y0)
        func mix(_ field: UnsafeMutableBufferPointer<Float>) -> Float {
            (1 - fy) * ((1 - fx) * field[y0 * n + x0] + fx * field[y0 * n + x1]) + fy * ((1 - fx) * field[y1 * n + x0] + fx * field[y1 * n + x1])
        }
        return (mix(localX), mix(localY))
    }

    /// Refines each control point on its block, starting from the global shift; points that fail or stray
    /// further than `maximumLocalDeviation` keep the global shift; then one 3×3 averaging pass smooths the field.
    private func estimateLocalField(globalX: Double, globalY: Double) {
        let n = parameters.gridSize
        let blockWidth = geometry.width / n, blockHeight = geometry.height / n
        for row in 0..<n {
            for column in 0..<n {
                let region = (minX: max(column * blockWidth, margin), minY: max(row * blockHeight, margin),
                              maxX: min((column + 1) * blockWidth, geometry.width - margin),
                              maxY: min((row + 1) * blockHeight, geometry.height - margin))
                var x = globalX, y = globalY
                if region.minX + 8 < region.maxX, region.minY + 8 < region.maxY,
                   let local = refine(dx: globalX, dy: globalY, offset: Double(exposureOffset), region: region),
                   abs(local.dx - globalX) <= parameters.maximumLocalDeviation,
                   abs(local.dy - globalY) <= parameters.maximumLocalDeviation {
                    (x, y) = (local.dx, local.dy)
                }
                localX[row * n + column] = Float(x)
                localY[row * n + column] = Float(y)
            }
        }
        smoothField(localX)
        smoothField(localY)
        hasLocalField = true
    }

    private func smoothField(_ field: UnsafeMutableBufferPointer<Float>) {
        let n = parameters.gridSize
        for row in 0..<n {
            for column in 0..<n {
                var sum: Float = 0, count: Float = 0
                for r in max(row - 1, 0)...min(row + 1, n - 1) {
                    for c in max(column - 1, 0)...min(column + 1, n - 1) {
                        let weight: Float = r == row && c == column ? 4 : 1
                        sum += weight * field[r * n + c]
                        count += weight
                    }
                }
                localScratch[row * n + column] = sum / count
            }
        }
        for i in 0..<(n * n) { field[i] = localScratch[i] }
    }

    /// Digital subtraction of the last estimated frame: live − reference warped by (dx, dy) − the exposure
    /// offset, in the log domain,
    /// written as samples around mid-grey (more attenuation in the live frame, e.g. contrast, is darker;
    /// one unit of attenuation spans half the range).
    /// With `local` (and a local field estimated for this frame) the mask is warped by the control-point field
    /// instead of the single shift.
    public func writeSubtraction(dx: Float, dy: Float, correctExposure: Bool = true, local: Bool = false,
                                 into output: UnsafeMutableBufferPointer<UInt16>) {
        let offset = correctExposure ? exposureOffset : 0
        if local && hasLocalField {
            writeLocalSubtraction(offset: offset, into: output)
            return
        }
        let width = geometry.width, height = geometry.height
        let maximum = Float(geometry.maximumValue), middle = Float(1 << (geometry.bitsStored - 1))
        let gain = maximum / 2
        let ix = Int((-dx).rounded(.down)), iy = Int((-dy).rounded(.down))
        let fx = -dx - Float(ix), fy = -dy - Float(iy)
        let w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy
        for y in 0..<height {
            let y0 = min(max(y + iy, 0), height - 1), y1 = min(max(y + iy + 1, 0), height - 1)
            for x in 0..<width {
                let x0 = min(max(x + ix, 0), width - 1), x1 = min(max(x + ix + 1, 0), width - 1)
                let mask = w00 * referenceLog[y0 * width + x0] + w01 * referenceLog[y0 * width + x1]
                    + w10 * referenceLog[y1 * width + x0] + w11 * referenceLog[y1 * width + x1]
                let value = middle - gain * (liveLog[y * width + x] - mask - offset)
                output[y * width + x] = UInt16(min(max(value, 0), maximum))
            }
        }
    }

    private func writeLocalSubtraction(offset: Float, into output: UnsafeMutableBufferPointer<UInt16>) {
        let width = geometry.width, height = geometry.height
        let maximum = Float(geometry.maximumValue), middle = Float(1 << (geometry.bitsStored - 1)), gain = maximum / 2
        for y in 0..<height {
            for x in 0..<width {
                let shift = localShift(x: Float(x), y: Float(y))
                let sx = Float(x) - shift.dx, sy = Float(y) - shift.dy
                let ix = Int(sx.rounded(.down)), iy = Int(sy.rounded(.down))
                let fx = sx - Float(ix), fy = sy - Float(iy)
                let x0 = min(max(ix, 0), width - 1), x1 = min(max(ix + 1, 0), width - 1)
                let y0 = min(max(iy, 0), height - 1), y1 = min(max(iy + 1, 0), height - 1)
                let mask = (1 - fy) * ((1 - fx) * referenceLog[y0 * width + x0] + fx * referenceLog[y0 * width + x1])
                    + fy * ((1 - fx) * referenceLog[y1 * width + x0] + fx * referenceLog[y1 * width + x1])
                let value = middle - gain * (liveLog[y * width + x] - mask - offset)
                output[y * width + x] = UInt16(min(max(value, 0), maximum))
            }
        }
    }

    // MARK: - Steps

    private func toLog(_ pixels: UnsafeBufferPointer<UInt16>, into output: UnsafeMutableBufferPointer<Float>) {
        let limit = logTable.count - 1
        for i in 0..<geometry.pixelCount { output[i] = logTable[min(Int(pixels[i]), limit)] }
    }

    /// Binomial [1 4 6 4 1]/16 smoothing in both directions (σ ≈ 1 px), edges clamped; the interior runs
    /// without clamping so the compiler can vectorise it.
    private func smooth(_ image: UnsafeMutableBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) {
        let width = geometry.width, height = geometry.height
        let input = image.baseAddress!, temporary = smoothingScratch.baseAddress!, out = output.baseAddress!
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
            let target = out + y * width
            for x in 0..<width {
                target[x] = (r0[x] + r4[x] + 4 * (r1[x] + r3[x]) + 6 * r2[x]) * sixteenth
            }
        }
    }

    /// Averages the central square down to the working grid, removes the mean, applies the window, and
    /// transforms it.
    private func prepareSpectrum(of image: UnsafeMutableBufferPointer<Float>, real: UnsafeMutableBufferPointer<Float>,
                                 imaginary: UnsafeMutableBufferPointer<Float>) {
        let n = workingSize, width = geometry.width
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
        fft.transform(real: real.baseAddress!, imaginary: imaginary.baseAddress!)
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
        fft.transform(real: workReal.baseAddress!, imaginary: workImaginary.baseAddress!, inverse: true)
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

    /// Gauss–Newton with Tukey weights: find the shift d and exposure offset c with live(x + d) ≈ reference(x) + c
    /// over `region` (default: the interior, away from the borders by the largest shift).
    private func refine(dx startX: Double, dy startY: Double, offset startOffset: Double = 0,
                        region: (minX: Int, minY: Int, maxX: Int, maxY: Int)? = nil) -> (dx: Double, dy: Double, offset: Double)? {
        let width = geometry.width, height = geometry.height
        let bounds = region ?? (margin, margin, width - margin, height - margin)
        var dx = startX, dy = startY
        var cut = Float.greatestFiniteMagnitude, inverseCut: Float = 0
        var offset = startOffset
        for _ in 0..<parameters.refinementIterations {
            let ix = Int(dx.rounded(.down)), iy = Int(dy.rounded(.down))
            let fx = Float(dx - Double(ix)), fy = Float(dy - Double(iy))
            let w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy
            // Unknowns: the shift step (δx, δy) and the exposure offset c (live = reference + c in the log domain).
            var hxx: Double = 0, hxy: Double = 0, hyy: Double = 0, hxc: Double = 0, hyc: Double = 0, hcc: Double = 0
            var bx: Double = 0, by: Double = 0, bc: Double = 0
            var absoluteSum: Double = 0, samples = 0
            let yStart = max(bounds.minY, -iy), yEnd = min(bounds.maxY, height - 1 - iy - 1)
            let xStart = max(bounds.minX, -ix), xEnd = min(bounds.maxX, width - 1 - ix - 1)
            guard yStart < yEnd, xStart < xEnd else { return nil }
            let currentOffset = Float(offset)
            var y = yStart
            while y < yEnd {
                let row = y * width, live = (y + iy) * width + ix
                var rowXX: Float = 0, rowXY: Float = 0, rowYY: Float = 0, rowXC: Float = 0, rowYC: Float = 0, rowCC: Float = 0
                var rowBX: Float = 0, rowBY: Float = 0, rowBC: Float = 0, rowAbs: Float = 0
                var x = xStart
                while x < xEnd {
                    let j = live + x
                    let warped = w00 * liveSmooth[j] + w01 * liveSmooth[j + 1] + w10 * liveSmooth[j + width]
                        + w11 * liveSmooth[j + width + 1]
                    let error = warped - referenceSmooth[row + x] - currentOffset
                    let magnitude = abs(error)
                    // Tukey's biweight: residuals beyond the cut (a moving wire, contrast) count for nothing.
                    let ratio = error * inverseCut
                    let weight: Float = magnitude < cut ? (1 - ratio * ratio) * (1 - ratio * ratio) : 0
                    let gx = gradientX[row + x], gy = gradientY[row + x]
                    rowXX += weight * gx * gx
                    rowXY += weight * gx * gy
                    rowYY += weight * gy * gy
                    rowXC -= weight * gx
                    rowYC -= weight * gy
                    rowCC += weight
                    rowBX += weight * gx * error
                    rowBY += weight * gy * error
                    rowBC -= weight * error
                    rowAbs += magnitude
                    x += sampleStep
                }
                hxx += Double(rowXX); hxy += Double(rowXY); hyy += Double(rowYY)
                hxc += Double(rowXC); hyc += Double(rowYC); hcc += Double(rowCC)
                bx += Double(rowBX); by += Double(rowBY); bc += Double(rowBC); absoluteSum += Double(rowAbs)
                samples += (xEnd - xStart + sampleStep - 1) / sampleStep
                y += sampleStep
            }
            // Solve H (δx, δy, δc) = −b by Cramer's rule (H symmetric 3×3).
            let determinant = hxx * (hyy * hcc - hyc * hyc) - hxy * (hxy * hcc - hyc * hxc) + hxc * (hxy * hyc - hyy * hxc)
            guard abs(determinant) > 1e-12, samples > 0 else { return nil }
            let rx = -bx, ry = -by, rc = -bc
            let stepX = (rx * (hyy * hcc - hyc * hyc) - hxy * (ry * hcc - hyc * rc) + hxc * (ry * hyc - hyy * rc)) / determinant
            let stepY = (hxx * (ry * hcc - hyc * rc) - rx * (hxy * hcc - hyc * hxc) + hxc * (hxy * rc - ry * hxc)) / determinant
            let stepC = (hxx * (hyy * rc - ry * hyc) - hxy * (hxy * rc - ry * hxc) + rx * (hxy * hyc - hyy * hxc)) / determinant
            dx += stepX
            dy += stepY
            offset += stepC
            // σ ≈ 1.25 × the mean absolute residual; Tukey's cut at 4.685σ.
            cut = Float(4.685 * 1.25 * absoluteSum / Double(samples))
            inverseCut = 1 / cut
            if abs(stepX) < 0.002 && abs(stepY) < 0.002 { break }
        }
        return (dx, dy, offset)
    }
}

#if canImport(Glibc)
import Glibc
#endif
