/// A multi-scale Hessian ridge filter for thin bright curvilinear structures in a log-domain image (a wire or
/// catheter attenuates: bright in −log, dark in the X-ray image), Frangi-type: at each scale σ the Hessian of
/// the Gaussian-smoothed image gives eigenvalues |λ₁| ≤ |λ₂|; a line has λ₂ ≪ 0 across it and λ₁ ≈ 0 along it,
/// and the response is σ^1.5·(−λ₂)·λ₂² / (λ₂² + 4λ₁²) (a blob, λ₁ ≈ λ₂, keeps a fifth; with the exponent 1.5
/// a line of Gaussian profile of width s answers most at σ = s), damped where the slope across the line is large
/// against its curvature (the side of an edge, not a line). Each pixel keeps the response of every scale
/// (their ratio tells a thin wire from a wide catheter), the largest, and the unit normal of the line (the
/// eigenvector of λ₂) at the scale that gave it. Memory is allocated in `init`; `apply` allocates nothing.
final class RidgeFilter: LineEvidence, SplittableWork {
    let width: Int
    let height: Int
    /// Gaussian σ of each scale, in pixels, smallest first.
    let scales: [Float]
    /// The largest response over the scales, 0 where no scale sees a bright line.
    let response: UnsafeMutableBufferPointer<Float>
    /// The response of each scale.
    let scaleResponses: [UnsafeMutableBufferPointer<Float>]
    /// The Hessian's orientation at the scale that gave `response`: (Lxx − Lyy, 2 Lxy); `normal(at:)` turns it
    /// into the line's unit normal where one is needed (most pixels never need it).
    private let orientationP: UnsafeMutableBufferPointer<Float>
    private let orientationQ: UnsafeMutableBufferPointer<Float>
    private let kernels: [UnsafeMutableBufferPointer<Float>]
    /// Splits each frame's rows over two threads; nil: one thread.
    private let splitter: WorkSplitter?
    /// Working memory of each part of a split frame.
    private let workspaces: [Workspace]
    /// The image `apply` is filtering.
    private var input: UnsafePointer<Float>?

    /// A part's smoothed image and the horizontal pass before it (whole-frame buffers, of which the part uses its
    /// rows and a margin), and the rows one vertical pass of the widest kernel reads.
    private struct Workspace {
        let smoothed: UnsafeMutableBufferPointer<Float>
        let scratch: UnsafeMutableBufferPointer<Float>
        let rowPointers: UnsafeMutableBufferPointer<UnsafePointer<Float>>
    }

    init(width: Int, height: Int, scales: [Float], splitter: WorkSplitter? = nil) {
        precondition(width >= 8 && height >= 8 && !scales.isEmpty && scales.count < 256)
        self.width = width
        self.height = height
        self.scales = scales
        kernels = scales.map { sigma in
            let radius = max(1, Int(clampingFinite: (3 * sigma).rounded(.up)))
            let kernel = UnsafeMutableBufferPointer<Float>.allocate(capacity: 2 * radius + 1)
            var total: Float = 0
            for k in -radius...radius {
                let value = Float(exp(-Double(k * k) / (2 * Double(sigma * sigma))))
                kernel[k + radius] = value
                total += value
            }
            for k in 0..<kernel.count { kernel[k] /= total }
            return kernel
        }
        let pixels = width * height
        response = .allocate(capacity: pixels)
        scaleResponses = scales.map { _ in .allocate(capacity: pixels) }
        orientationP = .allocate(capacity: pixels)
        orientationQ = .allocate(capacity: pixels)
        self.splitter = splitter
        let widest = kernels.map(\.count).max() ?? 1
        workspaces = (0..<(splitter?.parts ?? 1)).map { _ in
            Workspace(
                smoothed: .allocate(capacity: pixels), scratch: .allocate(capacity: pixels),
                rowPointers: .allocate(capacity: widest))
        }
    }

    deinit {
        for kernel in kernels { kernel.deallocate() }
        for buffer in [response, orientationP, orientationQ] { buffer.deallocate() }
        for buffer in scaleResponses { buffer.deallocate() }
        for workspace in workspaces {
            workspace.smoothed.deallocate()
            workspace.scratch.deallocate()
            workspace.rowPointers.deallocate()
        }
    }

    /// Filters `image` (`width` × `height`, row-major); the one-pixel border keeps response 0.
    func apply(_ image: UnsafePointer<Float>) {
        input = image
        perform(0..<height, splitter: splitter)
        input = nil
        for x in 0..<width {
            clearPixel(x)
            clearPixel((height - 1) * width + x)
        }
        for y in 0..<height {
            clearPixel(y * width)
            clearPixel(y * width + width - 1)
        }
    }

    private func clearPixel(_ i: Int) {
        response[i] = 0
        for scale in scaleResponses { scale[i] = 0 }
        orientationP[i] = 1
        orientationQ[i] = 0
    }

    /// The unit normal across the line at pixel `i`: the eigenvector of the Hessian's smaller eigenvalue, from
    /// the angle φ of the larger one's (tan 2φ = 2 Lxy / (Lxx − Lyy)).
    func normal(at i: Int) -> (x: Float, y: Float) { lineNormal(p: orientationP[i], q: orientationQ[i]) }

    /// Every scale's response for `rows` of the frame: each part smooths its rows and a margin of the kernel's
    /// radius plus one (the Hessian's differences reach one row further) in its own workspace.
    func perform(part: Int, range rows: Range<Int>) {
        let image = input!, workspace = workspaces[part]
        for (index, sigma) in scales.enumerated() {
            let radius = kernels[index].count / 2
            let smoothedRows = max(rows.lowerBound - 1, 0)..<min(rows.upperBound + 1, height)
            let blurredRows = max(smoothedRows.lowerBound - radius, 0)..<min(smoothedRows.upperBound + radius, height)
            blur(image, kernel: kernels[index], horizontal: blurredRows, vertical: smoothedRows, in: workspace)
            accumulate(
                max(rows.lowerBound, 1)..<min(rows.upperBound, height - 1), of: workspace.smoothed,
                into: scaleResponses[index], normalisation: Float(pow(Double(sigma), 1.5)), first: index == 0)
        }
    }

    /// Separable Gaussian of `image` into the workspace's `smoothed` for the rows `vertical` (the horizontal pass
    /// covers the rows `horizontal`, which must hold every row the vertical one reads), edges clamped; the
    /// interior eight pixels at a time with the taps summed in registers.
    private func blur(
        _ image: UnsafePointer<Float>, kernel: UnsafeMutableBufferPointer<Float>, horizontal: Range<Int>,
        vertical: Range<Int>, in workspace: Workspace
    ) {
        typealias Lanes = SIMD8<Float>
        let w = width, h = height, radius = kernel.count / 2, taps = kernel.baseAddress!, count = kernel.count
        let temporary = workspace.scratch.baseAddress!, output = workspace.smoothed.baseAddress!
        let rowPointers = workspace.rowPointers
        func load(_ pointer: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self) }
        func store(_ value: Lanes, _ pointer: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Lanes.self)
        }
        let interior = w - 2 * radius
        let groups = interior >= Lanes.scalarCount ? interior / Lanes.scalarCount : 0
        let vectorEnd = radius + groups * Lanes.scalarCount
        for y in horizontal {
            let source = image + y * w, target = temporary + y * w
            for group in 0..<groups {
                let x = radius + group * Lanes.scalarCount
                var sum = Lanes()
                for k in 0..<count { sum += taps[k] * load(source + x + k - radius) }
                store(sum, target + x)
            }
            func clamped(_ x: Int) {
                var sum: Float = 0
                for k in 0..<count { sum += taps[k] * source[min(max(x + k - radius, 0), w - 1)] }
                target[x] = sum
            }
            for x in 0..<min(radius, w) { clamped(x) }
            for x in max(vectorEnd, radius)..<w { clamped(x) }
        }
        let columnGroups = w / Lanes.scalarCount
        let rows = rowPointers.baseAddress!
        for y in vertical {
            let target = output + y * w
            for k in 0..<count { rows[k] = UnsafePointer(temporary + min(max(y + k - radius, 0), h - 1) * w) }
            for group in 0..<columnGroups {
                let x = group * Lanes.scalarCount
                var sum = Lanes()
                for k in 0..<count { sum += taps[k] * load(rows[k] + x) }
                store(sum, target + x)
            }
            for x in (columnGroups * Lanes.scalarCount)..<w {
                var sum: Float = 0
                for k in 0..<count { sum += taps[k] * rows[k][x] }
                target[x] = sum
            }
        }
    }

    /// Hessian by central differences of `smoothed` for `rows` (which read one row beyond them either side),
    /// eigenvalues, and the running maximum over scales; eight pixels at a time (the last group of a row overlaps
    /// the one before it, which changes nothing).
    private func accumulate(
        _ rows: Range<Int>, of smoothed: UnsafeMutableBufferPointer<Float>,
        into scaleResponse: UnsafeMutableBufferPointer<Float>, normalisation: Float, first: Bool
    ) {
        typealias Lanes = SIMD8<Float>
        let w = width, image = smoothed.baseAddress!, own = scaleResponse.baseAddress!
        let best = response.baseAddress!, bestP = orientationP.baseAddress!, bestQ = orientationQ.baseAddress!
        func load(_ pointer: UnsafeMutablePointer<Float>) -> Lanes { UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self) }
        func store(_ value: Lanes, _ pointer: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Lanes.self)
        }
        let scale = Lanes(repeating: normalisation), quarter = Lanes(repeating: 0.25 * normalisation)
        // Converts the slope to the curvature's units: |∂L/∂n| σ^γ / σ, with σ^γ = `normalisation`, γ = 1.5.
        let edgeScale = Lanes(repeating: normalisation / pow(normalisation, 1 / 1.5))
        let groups = (w - 2 + Lanes.scalarCount - 1) / Lanes.scalarCount
        guard w - 2 >= Lanes.scalarCount else { return }
        for y in rows {
            let up = image + (y - 1) * w, row = image + y * w, down = image + (y + 1) * w
            for group in 0..<groups {
                let x = min(1 + group * Lanes.scalarCount, w - 1 - Lanes.scalarCount)
                let centre = load(row + x)
                let a = (load(row + x + 1) + load(row + x - 1) - 2 * centre) * scale
                let c = (load(down + x) + load(up + x) - 2 * centre) * scale
                let b = (load(down + x + 1) - load(down + x - 1) - load(up + x + 1) + load(up + x - 1)) * quarter
                let mean = 0.5 * (a + c), half = 0.5 * (a - c)
                let spread = (half * half + b * b).squareRoot()
                let across = mean - spread, along = mean + spread
                let acrossSquared = across * across
                // m = max(−λ₂, 0), as (|λ₂| − λ₂) / 2 without a lane select.
                let magnitude = 0.5 * (acrossSquared.squareRoot() - across)
                // The line measure m·m²/(m² + 4λ₁²), m = −λ₂, damped because an edge is not a line: beside a step,
                // the curvature's lobe sits where the slope across the line is large (q = |slope| / (m σ) ≈ 1),
                // while a line's centre is flat (q ≈ 0); the damping is 1 / (1 + (1.5 q)⁴). The slope across is
                // the gradient's component along the eigenvector of λ₂: v₁ = (b, λ₂ − a) and v₂ = (λ₂ − c, b) are
                // both eigenvectors (one may vanish), so slope² = ((∇L·v₁)² + (∇L·v₂)²) / (|v₁|² + |v₂|²), folded
                // into one division.
                let firstY = across - a, secondX = across - c
                let slopeX = (load(row + x + 1) - load(row + x - 1)) * 0.5, slopeY = (load(down + x) - load(up + x)) * 0.5
                let dotFirst = (slopeX * b + slopeY * firstY) * edgeScale, dotSecond = (slopeX * secondX + slopeY * b) * edgeScale
                let dotSquared = dotFirst * dotFirst + dotSecond * dotSecond
                let lengthSquared = b * b + firstY * firstY + secondX * secondX + b * b
                let fourth = acrossSquared * acrossSquared
                let lengthFourth = lengthSquared * lengthSquared
                let denominator = (acrossSquared + 4 * along * along) * (fourth * lengthFourth + 5.0625 * dotSquared * dotSquared)
                // Where the denominator underflows the numerator is smaller still: the value is 0, not 0/0.
                let value =
                    magnitude * acrossSquared * fourth * lengthFourth
                    / denominator.replacing(with: 1, where: denominator .< 1e-30)
                let i = y * w + x
                store(value, own + i)
                if first {
                    store(value, best + i)
                    store(a - c, bestP + i)
                    store(2 * b, bestQ + i)
                } else {
                    let previous = load(best + i)
                    let better = value .> previous
                    store(previous.replacing(with: value, where: better), best + i)
                    store(load(bestP + i).replacing(with: a - c, where: better), bestP + i)
                    store(load(bestQ + i).replacing(with: 2 * b, where: better), bestQ + i)
                }
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
import FluoroConcurrency

/// What the centre-line tracer needs from a line detector: a response that is positive on lines and peaks on their
/// centre, and the line's unit normal at a pixel.
protocol LineEvidence: AnyObject {
    var response: UnsafeMutableBufferPointer<Float> { get }
    func normal(at i: Int) -> (x: Float, y: Float)
}

/// The unit normal of a bright line from its Hessian's orientation, p = Lxx − Lyy and q = 2·Lxy: the eigenvector of
/// the smaller (most negative) eigenvalue; (0, 1) where the Hessian is isotropic.
func lineNormal(p: Float, q: Float) -> (x: Float, y: Float) {
    let r = (p * p + q * q).squareRoot()
    guard r > 0 else { return (0, 1) }
    let cosine2 = p / r
    let cosine = ((1 + cosine2) / 2).squareRoot(), sine = (q < 0 ? -1 : 1) * ((1 - cosine2) / 2).squareRoot()
    return (-sine, cosine)
}
