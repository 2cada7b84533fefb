import FluoroConcurrency
import FluoroCore

/// Multi-scale Hessian vesselness of a level image in the log (attenuation) domain, where a vessel filled with
/// contrast is a bright ridge: at each scale σ the image is blurred by a Gaussian of σ, its Hessian taken by
/// 3 × 3 Sobel kernels, and a pixel scores σ² · max(−λ, 0) where λ is the Hessian's smaller eigenvalue (the
/// curvature across a ridge); the response is the largest over the scales (the σ² normalisation, as in Frangi's
/// filter, makes scales comparable). Flat areas and dark structures score nothing; tubes of a width near 2√3 σ
/// score most. Step edges (a rib's border, a collimator blade) score on their bright side: the caller removes
/// the background first and keeps to the exposed field.
///
/// With a splitter, each pass shares its rows between two threads. All memory is allocated in `init`; `apply`
/// allocates nothing.
final class HessianVesselness: SplittableWork {
    let width: Int
    let height: Int
    let scales: [Float]
    private let kernels: [UnsafeMutableBufferPointer<Float>]
    private let blurred: UnsafeMutableBufferPointer<Float>
    private let rows: UnsafeMutableBufferPointer<Float>
    /// Per part: one row padded by the largest kernel's radius on both sides.
    private let padded: UnsafeMutableBufferPointer<Float>
    private let paddedLength: Int
    private let splitter: WorkSplitter?
    /// The pass `perform` does, and its input, output, kernel and σ².
    private enum Pass { case rows, columns, ridges }
    private static let passes: [Pass] = [.rows, .columns, .ridges]
    private var pass = Pass.rows
    private var input: UnsafePointer<Float>?
    private var output: UnsafeMutablePointer<Float>?
    private var kernel = 0

    /// `scales`: the Gaussian σ of each scale, in level pixels.
    init(width: Int, height: Int, scales: [Float], splitter: WorkSplitter? = nil) {
        precondition(width >= 3 && height >= 3 && !scales.isEmpty, "vesselness needs at least 3 × 3 pixels and a scale")
        self.width = width
        self.height = height
        self.scales = scales
        kernels = scales.map { sigma in
            let radius = max(Int(clampingFinite: (3 * sigma).rounded(.up)), 1)
            let kernel = UnsafeMutableBufferPointer<Float>.allocate(capacity: 2 * radius + 1)
            var total: Float = 0
            for k in -radius...radius {
                let value = Float(exp(-Double(k * k) / Double(2 * sigma * sigma)))
                kernel[k + radius] = value
                total += value
            }
            for k in kernel.indices { kernel[k] /= total }
            return kernel
        }
        blurred = .allocate(capacity: width * height)
        rows = .allocate(capacity: width * height)
        paddedLength = width + kernels.map(\.count).max()!
        padded = .allocate(capacity: paddedLength * (splitter?.parts ?? 1))
        self.splitter = splitter
    }

    deinit {
        for kernel in kernels { kernel.deallocate() }
        blurred.deallocate()
        rows.deallocate()
        padded.deallocate()
    }

    /// Writes the vesselness of `image` (`width` × `height`, row-major) into `output`.
    func apply(_ image: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>) {
        output.update(repeating: 0, count: width * height)
        (input, self.output) = (image, output)
        for index in kernels.indices {
            kernel = index
            for step in Self.passes {
                pass = step
                perform(step == .ridges ? 1..<(height - 1) : 0..<height, splitter: splitter)
            }
        }
        (input, self.output) = (nil, nil)
    }

    /// Rows `range` of the current pass: the Gaussian along rows (image → `rows`), along columns (`rows` →
    /// `blurred`), or the ridge response (`blurred` → output, where larger).
    func perform(part: Int, range: Range<Int>) {
        switch pass {
        case .rows: blurRows(range, line: padded.baseAddress! + part * paddedLength)
        case .columns: blurColumns(range)
        case .ridges: accumulate(range, normalisation: scales[kernel] * scales[kernel])
        }
    }

    /// Rows `range` of `rows` = the image convolved with the kernel along rows (edges clamped), tap by tap over a
    /// copy of the row padded with its edge values, so that it vectorises.
    private func blurRows(_ range: Range<Int>, line: UnsafeMutablePointer<Float>) {
        let w = width, taps = kernels[kernel], radius = taps.count / 2, image = input!
        for y in range {
            let source = image + y * w, target = rows.baseAddress! + y * w
            (line + radius).update(from: source, count: w)
            line.update(repeating: source[0], count: radius)
            (line + radius + w).update(repeating: source[w - 1], count: radius)
            target.update(repeating: 0, count: w)
            for k in 0..<taps.count {
                let weight = taps[k], shifted = line + k
                for x in 0..<w { target[x] += weight * shifted[x] }
            }
        }
    }

    /// Rows `range` of `blurred` = `rows` convolved with the kernel along columns (edges clamped).
    private func blurColumns(_ range: Range<Int>) {
        let w = width, h = height, taps = kernels[kernel], radius = taps.count / 2
        for y in range {
            let target = blurred.baseAddress! + y * w
            target.update(repeating: 0, count: w)
            for k in 0..<taps.count {
                let source = rows.baseAddress! + min(max(y + k - radius, 0), h - 1) * w, weight = taps[k]
                for x in 0..<w { target[x] += weight * source[x] }
            }
        }
    }

    /// Rows `range` of the ridge response of `blurred` at one scale, kept in the output where it is larger.
    /// Second derivatives by 3 × 3 Sobel kernels over 4 ([1 −2 1] across, [1 2 1]/4 along; the mixed one
    /// [−1 0 1]² / 4).
    private func accumulate(_ range: Range<Int>, normalisation: Float) {
        typealias Lanes = SIMD8<Float>
        func load(_ pointer: UnsafeMutablePointer<Float>) -> Lanes { UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self) }
        let w = width, image = blurred.baseAddress!, output = output!
        let groups = (w - 2) / Lanes.scalarCount, scale = Lanes(repeating: -normalisation)
        for y in range {
            let up = image + (y - 1) * w, here = image + y * w, down = image + (y + 1) * w, target = output + y * w
            // Eight pixels at a time from x = 1, then the columns left over one by one.
            for group in 0..<groups {
                let x = 1 + group * Lanes.scalarCount
                let upLeft = load(up + x - 1), upCentre = load(up + x), upRight = load(up + x + 1)
                let left = load(here + x - 1), centre = load(here + x), right = load(here + x + 1)
                let downLeft = load(down + x - 1), downCentre = load(down + x), downRight = load(down + x + 1)
                let two = Lanes(repeating: 2), quarter = Lanes(repeating: 0.25), halfLane = Lanes(repeating: 0.5)
                let rowUp: Lanes = upLeft - two * upCentre + upRight
                let rowHere: Lanes = left - two * centre + right
                let rowDown: Lanes = downLeft - two * downCentre + downRight
                let xx: Lanes = quarter * (rowUp + two * rowHere + rowDown)
                let columnLeft: Lanes = upLeft - two * left + downLeft
                let columnCentre: Lanes = upCentre - two * centre + downCentre
                let columnRight: Lanes = upRight - two * right + downRight
                let yy: Lanes = quarter * (columnLeft + two * columnCentre + columnRight)
                let xy: Lanes = quarter * (downRight - downLeft - upRight + upLeft)
                let half: Lanes = halfLane * (xx - yy)
                let spread: Lanes = (half * half + xy * xy).squareRoot()
                let across: Lanes = halfLane * (xx + yy) - spread
                let stored = UnsafeMutableRawPointer(target + x)
                let current = load(target + x), candidate = scale * across
                stored.storeBytes(of: current.replacing(with: candidate, where: candidate .> current), as: Lanes.self)
            }
            for x in (1 + groups * Lanes.scalarCount)..<(w - 1) {
                let xx =
                    0.25
                    * ((up[x - 1] - 2 * up[x] + up[x + 1]) + 2 * (here[x - 1] - 2 * here[x] + here[x + 1])
                        + (down[x - 1] - 2 * down[x] + down[x + 1]))
                let yy =
                    0.25
                    * ((up[x - 1] - 2 * here[x - 1] + down[x - 1]) + 2 * (up[x] - 2 * here[x] + down[x])
                        + (up[x + 1] - 2 * here[x + 1] + down[x + 1]))
                let xy = 0.25 * (down[x + 1] - down[x - 1] - up[x + 1] + up[x - 1])
                let half = 0.5 * (xx - yy)
                let across = 0.5 * (xx + yy) - (half * half + xy * xy).squareRoot()
                target[x] = Swift.max(target[x], -normalisation * across)
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
