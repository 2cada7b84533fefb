/// A multi-scale Hessian ridge filter for thin bright curvilinear structures in a log-domain image (a wire or
/// catheter attenuates: bright in −log, dark in the X-ray image), Frangi-type: at each scale σ the Hessian of
/// the Gaussian-smoothed image gives eigenvalues |λ₁| ≤ |λ₂|; a line has λ₂ ≪ 0 across it and λ₁ ≈ 0 along it,
/// and the response is σ^1.5·(−λ₂)·λ₂² / (λ₂² + 4λ₁²) (a blob, λ₁ ≈ λ₂, keeps a fifth; with the exponent 1.5
/// a line of Gaussian profile of width s answers most at σ = s), damped where the slope across the line is large
/// against its curvature (the side of an edge, not a line). Each pixel keeps the response of every scale
/// (their ratio tells a thin wire from a wide catheter), the largest, and the unit normal of the line (the
/// eigenvector of λ₂) at the scale that gave it. Memory is allocated in `init`; `apply` allocates nothing.
final class RidgeFilter {
    let width: Int
    let height: Int
    /// Gaussian σ of each scale, in pixels, smallest first.
    let scales: [Float]
    /// The largest response over the scales, 0 where no scale sees a bright line.
    let response: UnsafeMutableBufferPointer<Float>
    /// The response of each scale.
    let scaleResponses: [UnsafeMutableBufferPointer<Float>]
    /// The line's unit normal (across the line).
    let normalX: UnsafeMutableBufferPointer<Float>
    let normalY: UnsafeMutableBufferPointer<Float>
    private let kernels: [UnsafeMutableBufferPointer<Float>]
    private let smoothed: UnsafeMutableBufferPointer<Float>
    private let scratch: UnsafeMutableBufferPointer<Float>
    /// The rows one vertical pass of the widest kernel reads.
    private let rowPointers: UnsafeMutableBufferPointer<UnsafePointer<Float>>

    init(width: Int, height: Int, scales: [Float]) {
        precondition(width >= 8 && height >= 8 && !scales.isEmpty && scales.count < 256)
        self.width = width
        self.height = height
        self.scales = scales
        kernels = scales.map { sigma in
            let radius = max(1, Int((3 * sigma).rounded(.up)))
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
        normalX = .allocate(capacity: pixels)
        normalY = .allocate(capacity: pixels)
        smoothed = .allocate(capacity: pixels)
        scratch = .allocate(capacity: pixels)
        rowPointers = .allocate(capacity: kernels.map(\.count).max() ?? 1)
    }

    deinit {
        for kernel in kernels { kernel.deallocate() }
        rowPointers.deallocate()
        for buffer in [response, normalX, normalY, smoothed, scratch] { buffer.deallocate() }
        for buffer in scaleResponses { buffer.deallocate() }
    }

    /// Filters `image` (`width` × `height`, row-major); the one-pixel border keeps response 0.
    func apply(_ image: UnsafePointer<Float>) {
        response.update(repeating: 0)
        normalX.update(repeating: 0)
        normalY.update(repeating: 1)
        for (index, sigma) in scales.enumerated() {
            blur(image, kernel: kernels[index])
            scaleResponses[index].update(repeating: 0)
            accumulate(into: scaleResponses[index], normalisation: Float(pow(Double(sigma), 1.5)))
        }
    }

    /// Separable Gaussian of `image` into `smoothed`, edges clamped; the interior eight pixels at a time with the
    /// taps summed in registers.
    private func blur(_ image: UnsafePointer<Float>, kernel: UnsafeMutableBufferPointer<Float>) {
        typealias Lanes = SIMD8<Float>
        let w = width, h = height, radius = kernel.count / 2, taps = kernel.baseAddress!, count = kernel.count
        let temporary = scratch.baseAddress!, output = smoothed.baseAddress!
        func load(_ pointer: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self) }
        func store(_ value: Lanes, _ pointer: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Lanes.self)
        }
        let interior = w - 2 * radius
        let groups = interior >= Lanes.scalarCount ? interior / Lanes.scalarCount : 0
        let vectorEnd = radius + groups * Lanes.scalarCount
        for y in 0..<h {
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
        for y in 0..<h {
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

    /// Hessian by central differences of `smoothed`, eigenvalues, and the running maximum over scales; eight
    /// pixels at a time (the last group of a row overlaps the one before it, which changes nothing).
    private func accumulate(into scaleResponse: UnsafeMutableBufferPointer<Float>, normalisation: Float) {
        typealias Lanes = SIMD8<Float>
        let w = width, image = smoothed.baseAddress!, own = scaleResponse.baseAddress!
        let best = response.baseAddress!, bestX = normalX.baseAddress!, bestY = normalY.baseAddress!
        func load(_ pointer: UnsafeMutablePointer<Float>) -> Lanes { UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self) }
        func store(_ value: Lanes, _ pointer: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Lanes.self)
        }
        let scale = Lanes(repeating: normalisation), quarter = Lanes(repeating: 0.25 * normalisation)
        // Converts the slope to the curvature's units: |∂L/∂n| σ^γ / σ, with σ^γ = `normalisation`, γ = 1.5.
        let edgeScale = Lanes(repeating: normalisation / pow(normalisation, 1 / 1.5))
        let groups = (w - 2 + Lanes.scalarCount - 1) / Lanes.scalarCount
        guard w - 2 >= Lanes.scalarCount else { return }
        for y in 1..<(height - 1) {
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
                let magnitude = (-across).replacing(with: 0, where: across .>= 0)
                // The eigenvector of `across`: (b, across − a) or (across − c, b), whichever is better conditioned.
                let firstY = across - a, secondX = across - c
                let useSecond = b * b + firstY * firstY .< secondX * secondX + b * b
                let vx = b.replacing(with: secondX, where: useSecond), vy = firstY.replacing(with: b, where: useSecond)
                let lengthSquared = vx * vx + vy * vy
                let degenerate = lengthSquared .<= 1e-30
                let inverse = 1 / lengthSquared.replacing(with: 1, where: degenerate).squareRoot()
                // The line measure m·m²/(m² + 4λ₁²), m = −λ₂, damped because an edge is not a line: beside a step,
                // the curvature's lobe sits where the slope across is large (q = |slope| / (m σ) ≈ 1), while a
                // line's centre is flat (q ≈ 0); the damping is 1 / (1 + (1.5 q)⁴) = m⁴ / (m⁴ + 5.0625 slope⁴).
                let slopeX = (load(row + x + 1) - load(row + x - 1)) * 0.5, slopeY = (load(down + x) - load(up + x)) * 0.5
                let dot = (slopeX * vx + slopeY * vy) * edgeScale
                let slopeSquared = dot * dot / lengthSquared.replacing(with: 1, where: degenerate)
                let fourth = acrossSquared * acrossSquared
                let value = magnitude * acrossSquared * fourth
                    / ((acrossSquared + 4 * along * along + 1e-30) * (fourth + 5.0625 * slopeSquared * slopeSquared + 1e-30))
                let i = y * w + x
                store(value, own + i)
                let previous = load(best + i)
                let better = value .> previous
                store(previous.replacing(with: value, where: better), best + i)
                store(load(bestX + i).replacing(with: (vx * inverse).replacing(with: 0, where: degenerate), where: better), bestX + i)
                store(load(bestY + i).replacing(with: (vy * inverse).replacing(with: 1, where: degenerate), where: better), bestY + i)
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
