import FluoroCore

/// Coarse-to-fine translation between a reference and a live image in the log domain (Lucas–Kanade on an image
/// pyramid): each level halves the one below by 2 × 2 averaging; on each level, from the coarsest, Gauss–Newton
/// finds the shift d and exposure offset c with live(x + d) ≈ reference(x) + c in the least-squares sense over the
/// reference's exposed field (shrunk from its edges), and hands d on to the next finer level. Unweighted least
/// squares uses every structure of the field, the heart's border, the diaphragm and the vessels included, so the
/// shift is the one that best lines the whole field up (on real coronary runs it lines them up better than a robust
/// weighting that discounts the moving heart: docs/algorithms/motion.md).
///
/// All memory is allocated in `init`; nothing after it allocates.
final class TranslationPyramid {
    /// One level: the reference, its gradients and field, and the live image.
    private struct Level {
        let width: Int
        let height: Int
        let reference: UnsafeMutableBufferPointer<Float>
        let live: UnsafeMutableBufferPointer<Float>
        let gradientX: UnsafeMutableBufferPointer<Float>
        let gradientY: UnsafeMutableBufferPointer<Float>
        /// 1 inside the reference's shrunk field, 0 outside.
        let field: UnsafeMutableBufferPointer<Float>
    }

    /// The finest level's size (that of the images handed in).
    let width: Int
    let height: Int
    private let levels: [Level]
    /// How far (finest-level pixels) the field is shrunk from its edges.
    private let fieldMargin: Int
    private let morphology: SquareMorphology
    private let histogram: UnsafeMutableBufferPointer<Int32>
    private static let bins = 1024
    /// Largest Gauss–Newton step (level pixels), most steps per level, and the step that counts as converged.
    private static let largestStep = 2.0
    private static let iterations = 15
    private static let converged = 0.005

    /// `fieldMargin`: how far (finest-level pixels) the field is shrunk from the collimator blades and the image
    /// border. Levels are made down to a shorter side of at least 32 pixels.
    init(width: Int, height: Int, fieldMargin: Int) {
        self.width = width
        self.height = height
        self.fieldMargin = fieldMargin
        var levels: [Level] = []
        var levelWidth = width, levelHeight = height
        repeat {
            let pixels = levelWidth * levelHeight
            levels.append(
                Level(
                    width: levelWidth, height: levelHeight, reference: .allocate(capacity: pixels), live: .allocate(capacity: pixels),
                    gradientX: .allocate(capacity: pixels), gradientY: .allocate(capacity: pixels), field: .allocate(capacity: pixels)))
            levelWidth /= 2
            levelHeight /= 2
        } while min(levelWidth, levelHeight) >= 32
        self.levels = levels
        morphology = SquareMorphology(width: width, height: height, largestRadius: max(fieldMargin, 1))
        histogram = .allocate(capacity: Self.bins)
    }

    deinit {
        for level in levels {
            for buffer in [level.reference, level.live, level.gradientX, level.gradientY, level.field] { buffer.deallocate() }
        }
        histogram.deallocate()
    }

    /// Takes `image` (−log, `width` × `height`) as the reference: its pyramid, gradients and exposed field
    /// (intensity above a tenth of its brightest percentile's, shrunk by the margin, the image's outside counted
    /// as unexposed).
    func setReference(_ image: UnsafePointer<Float>) {
        let finest = levels[0]
        finest.reference.baseAddress!.update(from: image, count: width * height)
        let limit = brightestPercentile(image) + Float(log(10.0))
        for i in 0..<(width * height) { finest.field[i] = image[i] <= limit ? 1 : 0 }
        morphology.filter(finest.field.baseAddress!, into: finest.field.baseAddress!, radius: fieldMargin, maximum: false, outside: 0)
        for index in 1..<levels.count {
            halve(levels[index - 1], into: levels[index], live: false)
            // A coarse pixel is inside the field when its four finer pixels are.
            let finer = levels[index - 1], level = levels[index]
            for y in 0..<level.height {
                for x in 0..<level.width {
                    let i = 2 * y * finer.width + 2 * x
                    level.field[y * level.width + x] = min(
                        min(finer.field[i], finer.field[i + 1]), min(finer.field[i + finer.width], finer.field[i + finer.width + 1]))
                }
            }
        }
        for level in levels { computeGradients(level) }
    }

    /// Takes `image` (−log, `width` × `height`) as the live frame.
    func setLive(_ image: UnsafePointer<Float>) {
        levels[0].live.baseAddress!.update(from: image, count: width * height)
        for index in 1..<levels.count { halve(levels[index - 1], into: levels[index], live: true) }
    }

    /// The shift (finest-level pixels) of the live frame against the reference, coarse to fine from `start`, with
    /// the exposure offset and the mean squared residual over the field at the finest level; nil when the field
    /// holds too few pixels.
    func align(from start: (dx: Double, dy: Double)) -> (dx: Double, dy: Double, offset: Double, meanSquare: Double)? {
        var dx = start.dx, dy = start.dy, offset = 0.0
        var result: (dx: Double, dy: Double, offset: Double, meanSquare: Double)?
        for index in levels.indices.reversed() {
            let scale = Double(1 << index)
            guard let fit = solve(levels[index], dx: dx / scale, dy: dy / scale, offset: offset) else {
                result = nil
                continue
            }
            (dx, dy, offset) = (fit.dx * scale, fit.dy * scale, fit.offset)
            result = (dx, dy, offset, fit.meanSquare)
        }
        // Only a fit of the finest level has a residual comparable with another start's.
        return result
    }

    /// The normalised cross-correlation of the live frame moved back by (dx, dy) with the reference over the
    /// finest level's field (−1…1; near 0 when the frames share no structure), or nil when the field holds too
    /// few pixels there.
    func correlation(dx: Double, dy: Double) -> Double? {
        let level = levels[0], width = level.width, height = level.height
        let ix = Int(clampingFinite: dx.rounded(.down)), iy = Int(clampingFinite: dy.rounded(.down))
        let fx = Float(dx - Double(ix)), fy = Float(dy - Double(iy))
        let w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy
        let yStart = max(0, -iy), yEnd = min(height, height - 1 - iy)
        let xStart = max(0, -ix), xEnd = min(width, width - 1 - ix)
        guard yStart < yEnd, xStart < xEnd else { return nil }
        let live = level.live.baseAddress!, reference = level.reference.baseAddress!, field = level.field.baseAddress!
        var n: Double = 0, sumA: Double = 0, sumB: Double = 0, sumAA: Double = 0, sumBB: Double = 0, sumAB: Double = 0
        for y in yStart..<yEnd {
            let row = y * width, top = live + (y + iy) * width + ix, bottom = top + width
            var rowN: Float = 0, rowA: Float = 0, rowB: Float = 0, rowAA: Float = 0, rowBB: Float = 0, rowAB: Float = 0
            for x in xStart..<xEnd {
                let inside = field[row + x]
                let a = (w00 * top[x] + w01 * top[x + 1] + w10 * bottom[x] + w11 * bottom[x + 1]) * inside
                let b = reference[row + x] * inside
                rowN += inside
                rowA += a
                rowB += b
                rowAA += a * a
                rowBB += b * b
                rowAB += a * b
            }
            n += Double(rowN); sumA += Double(rowA); sumB += Double(rowB)
            sumAA += Double(rowAA); sumBB += Double(rowBB); sumAB += Double(rowAB)
        }
        guard n >= 64 else { return nil }
        let covariance = sumAB / n - sumA / n * sumB / n
        let varianceA = sumAA / n - sumA / n * sumA / n, varianceB = sumBB / n - sumB / n * sumB / n
        return varianceA > 0 && varianceB > 0 ? covariance / (varianceA * varianceB).squareRoot() : 0
    }

    // MARK: - Steps

    /// Gauss–Newton on one level from (dx, dy, offset), level pixels; the mean squared residual of the result.
    private func solve(_ level: Level, dx startX: Double, dy startY: Double, offset startOffset: Double)
        -> (dx: Double, dy: Double, offset: Double, meanSquare: Double)?
    {
        var dx = startX, dy = startY, offset = startOffset
        var meanSquare = Double.infinity
        for _ in 0..<Self.iterations {
            guard let sums = residualSums(level, dx: dx, dy: dy, offset: offset) else { return nil }
            meanSquare = sums.squares / sums.count
            // Solve H (δx, δy, δc) = −b by Cramer's rule (H symmetric 3×3).
            let hxx = sums.xx, hxy = sums.xy, hyy = sums.yy, hxc = -sums.x, hyc = -sums.y, hcc = sums.count
            let determinant = hxx * (hyy * hcc - hyc * hyc) - hxy * (hxy * hcc - hyc * hxc) + hxc * (hxy * hyc - hyy * hxc)
            guard abs(determinant) > 1e-12 else { return nil }
            let rx = -sums.bx, ry = -sums.by, rc = sums.sum
            var stepX = (rx * (hyy * hcc - hyc * hyc) - hxy * (ry * hcc - hyc * rc) + hxc * (ry * hyc - hyy * rc)) / determinant
            var stepY = (hxx * (ry * hcc - hyc * rc) - rx * (hxy * hcc - hyc * hxc) + hxc * (hxy * rc - ry * hxc)) / determinant
            let stepC = (hxx * (hyy * rc - ry * hyc) - hxy * (hxy * rc - ry * hxc) + rx * (hxy * hyc - hyy * hxc)) / determinant
            let largest = max(abs(stepX), abs(stepY))
            if largest > Self.largestStep {
                stepX *= Self.largestStep / largest
                stepY *= Self.largestStep / largest
            }
            dx += stepX
            dy += stepY
            offset += stepC
            if largest < Self.converged { break }
        }
        return (dx, dy, offset, meanSquare)
    }

    /// Sums over the level's field of the residual e = live(x + d) − reference(x) − offset and its products with
    /// the reference's gradients (the normal equations' terms); nil when fewer than 64 field pixels land inside
    /// the live image.
    private func residualSums(_ level: Level, dx: Double, dy: Double, offset: Double)
        -> (count: Double, sum: Double, squares: Double, x: Double, y: Double, xx: Double, xy: Double, yy: Double, bx: Double, by: Double)?
    {
        let width = level.width, height = level.height
        let ix = Int(clampingFinite: dx.rounded(.down)), iy = Int(clampingFinite: dy.rounded(.down))
        let fx = Float(dx - Double(ix)), fy = Float(dy - Double(iy))
        let w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy
        let yStart = max(0, -iy), yEnd = min(height, height - 1 - iy)
        let xStart = max(0, -ix), xEnd = min(width, width - 1 - ix)
        guard yStart < yEnd, xStart < xEnd else { return nil }
        let live = level.live.baseAddress!, reference = level.reference.baseAddress!, field = level.field.baseAddress!
        let gradientsX = level.gradientX.baseAddress!, gradientsY = level.gradientY.baseAddress!
        let currentOffset = Float(offset)
        var count: Double = 0, sum: Double = 0, squares: Double = 0, sx: Double = 0, sy: Double = 0
        var sxx: Double = 0, sxy: Double = 0, syy: Double = 0, bx: Double = 0, by: Double = 0
        typealias Lanes = SIMD8<Float>
        func load(_ pointer: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self) }
        let groups = (xEnd - xStart) / Lanes.scalarCount
        let lanes00 = Lanes(repeating: w00), lanes01 = Lanes(repeating: w01), lanes10 = Lanes(repeating: w10)
        let lanes11 = Lanes(repeating: w11), lanesOffset = Lanes(repeating: currentOffset)
        for y in yStart..<yEnd {
            let row = y * width, top = UnsafePointer(live + (y + iy) * width + ix), bottom = top + width
            let base = UnsafePointer(reference + row), inside = UnsafePointer(field + row)
            let alongX = UnsafePointer(gradientsX + row), alongY = UnsafePointer(gradientsY + row)
            var rowCount = Lanes(), rowSum = Lanes(), rowSquares = Lanes(), rowX = Lanes(), rowY = Lanes()
            var rowXX = Lanes(), rowXY = Lanes(), rowYY = Lanes(), rowBX = Lanes(), rowBY = Lanes()
            for group in 0..<groups {
                let x = xStart + group * Lanes.scalarCount
                let mask = load(inside + x)
                let warped =
                    lanes00 * load(top + x) + lanes01 * load(top + x + 1) + lanes10 * load(bottom + x) + lanes11 * load(bottom + x + 1)
                let error = (warped - load(base + x) - lanesOffset) * mask
                let gx = load(alongX + x) * mask, gy = load(alongY + x) * mask
                rowCount += mask
                rowSum += error
                rowSquares += error * error
                rowX += gx
                rowY += gy
                rowXX += gx * gx
                rowXY += gx * gy
                rowYY += gy * gy
                rowBX += gx * error
                rowBY += gy * error
            }
            // The columns that do not fill eight lanes, one by one.
            for x in (xStart + groups * Lanes.scalarCount)..<xEnd {
                let mask = inside[x]
                let warped = w00 * top[x] + w01 * top[x + 1] + w10 * bottom[x] + w11 * bottom[x + 1]
                let error = (warped - base[x] - currentOffset) * mask
                let gx = alongX[x] * mask, gy = alongY[x] * mask
                rowCount[0] += mask
                rowSum[0] += error
                rowSquares[0] += error * error
                rowX[0] += gx
                rowY[0] += gy
                rowXX[0] += gx * gx
                rowXY[0] += gx * gy
                rowYY[0] += gy * gy
                rowBX[0] += gx * error
                rowBY[0] += gy * error
            }
            count += Double(rowCount.sum()); sum += Double(rowSum.sum()); squares += Double(rowSquares.sum())
            sx += Double(rowX.sum()); sy += Double(rowY.sum()); sxx += Double(rowXX.sum()); sxy += Double(rowXY.sum())
            syy += Double(rowYY.sum()); bx += Double(rowBX.sum()); by += Double(rowBY.sum())
        }
        guard count >= 64 else { return nil }
        return (count, sum, squares, sx, sy, sxx, sxy, syy, bx, by)
    }

    /// `level`'s reference (or `live`) image = `finer`'s averaged in 2 × 2 blocks (an odd last column or row of
    /// `finer` is dropped).
    private func halve(_ finer: Level, into level: Level, live: Bool) {
        let source = live ? finer.live : finer.reference, target = live ? level.live : level.reference
        for y in 0..<level.height {
            let up = source.baseAddress! + 2 * y * finer.width, down = up + finer.width
            for x in 0..<level.width {
                target[y * level.width + x] = 0.25 * (up[2 * x] + up[2 * x + 1] + down[2 * x] + down[2 * x + 1])
            }
        }
    }

    /// Central-difference gradients of the level's reference (one-sided at the borders).
    private func computeGradients(_ level: Level) {
        let width = level.width, height = level.height, image = level.reference
        for y in 0..<height {
            for x in 0..<width {
                let i = y * width + x
                let left = image[x > 0 ? i - 1 : i], right = image[x < width - 1 ? i + 1 : i]
                let up = image[y > 0 ? i - width : i], down = image[y < height - 1 ? i + width : i]
                level.gradientX[i] = (right - left) * (x > 0 && x < width - 1 ? 0.5 : 1)
                level.gradientY[i] = (down - up) * (y > 0 && y < height - 1 ? 0.5 : 1)
            }
        }
    }

    /// The 1st percentile of `image` (its brightest, in −log), from a histogram over its range.
    private func brightestPercentile(_ image: UnsafePointer<Float>) -> Float {
        let count = width * height
        var low = Float.infinity, high = -Float.infinity
        for i in 0..<count {
            low = min(low, image[i])
            high = max(high, image[i])
        }
        guard high > low else { return low }
        histogram.update(repeating: 0)
        let scale = Float(Self.bins) / (high - low)
        for i in 0..<count { histogram[min(Int(clampingFinite: (image[i] - low) * scale), Self.bins - 1)] += 1 }
        var cumulative = 0
        for bin in 0..<Self.bins {
            cumulative += Int(histogram[bin])
            if cumulative * 100 >= count { return low + (Float(bin) + 1) / scale }
        }
        return high
    }
}

#if canImport(Glibc)
    import Glibc
#endif
