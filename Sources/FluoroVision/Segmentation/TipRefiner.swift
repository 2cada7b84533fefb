import FluoroCore

/// Places the guidewire's tip on the full-resolution frame. The traced line ends within a few working-level pixels
/// of the true tip (the ridge response and the network's probability both fade over their filters' width, and at
/// 1024² a level pixel is two frame pixels). Along the line's last stretch and its straight continuation beyond
/// the traced end, the wire's contrast across the line (the −log frame at the line, Gaussian-weighted over ±1
/// sample, minus the mean of both sides `side` away) is a step: the wire's contrast up to the tip, the
/// background's after it. The tip is the step's best single change point (the largest difference of the two
/// parts' means, weighted by √(n₁n₂/n)), searched within `reach` of the traced end, never past the catheter's tip
/// nor outside the exposed field. Lengths are in working-level pixels (chosen on the tuning seeds 3001, 3003 and
/// 3007–3010, on both paths at 512² and 1024²; docs/algorithms/segmentation.md, "Parameters"). Allocates in `init`
/// only.
final class TipRefiner {
    /// How far before and beyond the traced end the tip is searched for.
    static let reach: Float = 8
    /// Distance of the background samples either side of the line.
    static let side: Float = 3
    /// Width of the Gaussian weighting across the line at the centre.
    static let sigma: Float = 0.7

    private let width: Int
    private let height: Int
    /// Frame pixels per working-level pixel.
    private let factor: Int
    /// Sample positions (frame pixels), their unit direction along the line, the line point each lies before, and
    /// the contrast there; proximal first.
    private let sampleX, sampleY, directionX, directionY, contrast: UnsafeMutableBufferPointer<Float>
    private let pointsBefore: UnsafeMutableBufferPointer<Int>
    private let centreWeights: (Float, Float)

    init(geometry: FrameGeometry, factor: Int) {
        width = geometry.width
        height = geometry.height
        self.factor = factor
        let capacity = 2 * Int(clampingFinite: (Self.reach * Float(factor)).rounded(.up)) + 2
        (sampleX, sampleY) = (.allocate(capacity: capacity), .allocate(capacity: capacity))
        (directionX, directionY) = (.allocate(capacity: capacity), .allocate(capacity: capacity))
        contrast = .allocate(capacity: capacity)
        pointsBefore = .allocate(capacity: capacity)
        let sigma = Self.sigma * Float(factor)
        centreWeights = (1, exp(-1 / (2 * sigma * sigma)))
    }

    deinit {
        for buffer in [sampleX, sampleY, directionX, directionY, contrast] { buffer.deallocate() }
        pointsBefore.deallocate()
    }

    /// The refined tip of the line `point(0)` … `point(count - 1)` (frame pixels, proximal to distal) whose wire
    /// starts after point `catheterTip`, and how many of the line's points lie before it; nil when the line's end
    /// is too near the image's or the field's edge to tell. `isInsideField` answers for frame positions.
    func refine(
        _ pixels: UnsafeBufferPointer<UInt16>, count: Int, catheterTip: Int, point: (Int) -> Point2,
        isInsideField: (Float, Float) -> Bool
    ) -> (tip: Point2, pointsBefore: Int)? {
        guard count >= 2 else { return nil }
        let reach = Self.reach * Float(factor)
        // Backwards from the traced end, one frame pixel at a time along the line, then reversed.
        let end = point(count - 1)
        var (x, y) = (end.x, end.y)
        var k = count - 1, travelled: Float = 0, n = 0
        while travelled < reach, k > catheterTip + 1 {
            let next = point(k - 1)
            let dx = next.x - x, dy = next.y - y, distance = (dx * dx + dy * dy).squareRoot()
            if distance < 1 {
                k -= 1
                continue
            }
            (x, y) = (x + dx / distance, y + dy / distance)
            travelled += 1
            (sampleX[n], sampleY[n], directionX[n], directionY[n], pointsBefore[n]) = (x, y, -dx / distance, -dy / distance, k)
            n += 1
        }
        let behind = n
        guard behind >= 3 else { return nil }
        sampleX[0..<n].reverse()
        sampleY[0..<n].reverse()
        directionX[0..<n].reverse()
        directionY[0..<n].reverse()
        pointsBefore[0..<n].reverse()
        // The traced end, then straight on along the direction of the last `factor · 4` pixels.
        let back = min(4 * factor, behind) - 1
        var ux = end.x - sampleX[behind - 1 - back], uy = end.y - sampleY[behind - 1 - back]
        let length = max((ux * ux + uy * uy).squareRoot(), 1e-6)
        (ux, uy) = (ux / length, uy / length)
        var step: Float = 0
        while step <= reach {
            let (sx, sy) = (end.x + step * ux, end.y + step * uy)
            guard isInsideField(sx, sy) else { break }
            (sampleX[n], sampleY[n], directionX[n], directionY[n], pointsBefore[n]) = (sx, sy, ux, uy, count)
            n += 1
            step += 1
        }
        // The contrast across the line at each sample; the search stops where the samples leave the image.
        let side = Self.side * Float(factor)
        var usable = 0
        for j in 0..<n {
            let (sx, sy, vx, vy) = (sampleX[j], sampleY[j], -directionY[j], directionX[j])
            let (centre, near) = centreWeights
            guard let a = attenuation(pixels, sx, sy), let b = attenuation(pixels, sx + vx, sy + vy),
                let c = attenuation(pixels, sx - vx, sy - vy),
                let left = attenuation(pixels, sx + side * vx, sy + side * vy),
                let right = attenuation(pixels, sx - side * vx, sy - side * vy)
            else { break }
            contrast[j] = (centre * a + near * (b + c)) / (centre + 2 * near) - 0.5 * (left + right)
            usable = j + 1
        }
        guard usable - behind >= 3 else { return nil }
        var total: Float = 0
        for j in 0..<usable { total += contrast[j] }
        var before: Float = 0, best: Float = 0, split = -1
        for j in 0..<(usable - 1) {
            before += contrast[j]
            let left = Float(j + 1), right = Float(usable - j - 1)
            guard left >= 3, right >= 3 else { continue }
            let statistic = (before / left - (total - before) / right) * (left * right / Float(usable)).squareRoot()
            if statistic > best { (best, split) = (statistic, j) }
        }
        guard split >= 0 else { return nil }
        return (Point2(x: sampleX[split], y: sampleY[split]), pointsBefore[split])
    }

    /// −log of the frame, bilinear between the four pixels around (x, y); nil outside the frame.
    private func attenuation(_ pixels: UnsafeBufferPointer<UInt16>, _ x: Float, _ y: Float) -> Float? {
        let x0 = Int(clampingFinite: x.rounded(.down)), y0 = Int(clampingFinite: y.rounded(.down))
        guard x0 >= 0, y0 >= 0, x0 + 1 < width, y0 + 1 < height else { return nil }
        let fx = x - Float(x0), fy = y - Float(y0), i = y0 * width + x0
        func value(_ j: Int) -> Float { -log(Float(max(pixels[j], 1))) }
        let top = (1 - fx) * value(i) + fx * value(i + 1)
        let bottom = (1 - fx) * value(i + width) + fx * value(i + width + 1)
        return (1 - fy) * top + fy * bottom
    }
}

#if canImport(Glibc)
    import Glibc
#endif
