/// A multi-scale Hessian ridge filter for thin bright curvilinear structures in a log-domain image (a wire or
/// catheter attenuates: bright in −log, dark in the X-ray image), Frangi-type: at each scale σ the Hessian of
/// the Gaussian-smoothed image gives eigenvalues |λ₁| ≤ |λ₂|; a line has λ₂ ≪ 0 across it and λ₁ ≈ 0 along it,
/// and the response is σ^1.5·(−λ₂)·λ₂² / (λ₂² + 4λ₁²) (a blob, λ₁ ≈ λ₂, keeps a fifth; with the exponent 1.5
/// a line of Gaussian profile of width s answers most at σ = s). Each pixel keeps the response of every scale
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
    }

    deinit {
        for kernel in kernels { kernel.deallocate() }
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

    /// Separable Gaussian of `image` into `smoothed`, edges clamped.
    private func blur(_ image: UnsafePointer<Float>, kernel: UnsafeMutableBufferPointer<Float>) {
        let w = width, h = height, radius = kernel.count / 2, taps = kernel.baseAddress!
        let temporary = scratch.baseAddress!, output = smoothed.baseAddress!
        for y in 0..<h {
            let source = image + y * w, target = temporary + y * w
            for x in 0..<w where x < radius || x >= w - radius {
                var sum: Float = 0
                for k in 0..<kernel.count { sum += taps[k] * source[min(max(x + k - radius, 0), w - 1)] }
                target[x] = sum
            }
            if w > 2 * radius {
                for x in radius..<(w - radius) { target[x] = 0 }
                for k in 0..<kernel.count {
                    let weight = taps[k], shifted = source + (k - radius)
                    for x in radius..<(w - radius) { target[x] += weight * shifted[x] }
                }
            }
        }
        for y in 0..<h {
            let target = output + y * w
            for x in 0..<w { target[x] = 0 }
            for k in 0..<kernel.count {
                let weight = taps[k], row = temporary + min(max(y + k - radius, 0), h - 1) * w
                for x in 0..<w { target[x] += weight * row[x] }
            }
        }
    }

    /// Hessian by central differences of `smoothed`, eigenvalues, and the running maximum over scales.
    private func accumulate(into scaleResponse: UnsafeMutableBufferPointer<Float>, normalisation: Float) {
        let w = width, image = smoothed.baseAddress!, own = scaleResponse.baseAddress!
        let best = response.baseAddress!
        let bestX = normalX.baseAddress!, bestY = normalY.baseAddress!
        for y in 1..<(height - 1) {
            let up = image + (y - 1) * w, row = image + y * w, down = image + (y + 1) * w
            let offset = y * w
            for x in 1..<(w - 1) {
                let centre = row[x]
                let a = (row[x &+ 1] + row[x &- 1] - 2 * centre) * normalisation
                let c = (down[x] + up[x] - 2 * centre) * normalisation
                let b = (down[x &+ 1] - down[x &- 1] - up[x &+ 1] + up[x &- 1]) * (0.25 * normalisation)
                let mean = 0.5 * (a + c), half = 0.5 * (a - c)
                let spread = (half * half + b * b).squareRoot()
                let across = mean - spread, along = mean + spread
                let acrossSquared = across * across
                let value = across < 0 ? -across * acrossSquared / (acrossSquared + 4 * along * along + 1e-30) : 0
                // The eigenvector of `across`: (b, across − a) or (across − c, b), whichever is better conditioned.
                let firstX = b, firstY = across - a, secondX = across - c, secondY = b
                let useFirst = firstX * firstX + firstY * firstY >= secondX * secondX + secondY * secondY
                let vx = useFirst ? firstX : secondX, vy = useFirst ? firstY : secondY
                let length = (vx * vx + vy * vy).squareRoot()
                let inverse: Float = length > 0 ? 1 / length : 0
                let i = offset &+ x
                own[i] = value
                let better = value > best[i]
                best[i] = better ? value : best[i]
                bestX[i] = better ? vx * inverse : bestX[i]
                bestY[i] = better ? (length > 0 ? vy * inverse : 1) : bestY[i]
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
