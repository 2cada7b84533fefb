/// Grey-level erosion and dilation of a float image by a square of side 2r + 1, at a cost independent of r (van
/// Herk / Gil–Werman: running minima or maxima within blocks of 2r + 1, forwards and backwards, one pass per
/// axis, each over whole rows so that it vectorises). Pixels outside the image take `outside` (e.g. −∞ for
/// an erosion that ignores them, 0 to erode a field from the image's border).
///
/// All memory is allocated in `init`; the filters allocate nothing.
final class SquareMorphology {
    let width: Int
    let height: Int
    /// Padded scratch lines: forward and backward running extrema, and a padded copy of the line being filtered.
    private let forward: UnsafeMutableBufferPointer<Float>
    private let backward: UnsafeMutableBufferPointer<Float>
    private let padded: UnsafeMutableBufferPointer<Float>
    private let largestRadius: Int

    init(width: Int, height: Int, largestRadius: Int) {
        self.width = width
        self.height = height
        self.largestRadius = largestRadius
        let side = max(width, height) + 2 * largestRadius + 2 * (2 * largestRadius + 1)
        // The column pass keeps whole rows of running extrema: side × width values.
        forward = .allocate(capacity: side * width)
        backward = .allocate(capacity: side * width)
        padded = .allocate(capacity: side)
    }

    deinit {
        forward.deallocate()
        backward.deallocate()
        padded.deallocate()
    }

    /// `output` = the minimum (`maximum` false) or maximum of `input` over the (2·radius + 1)² square about each
    /// pixel. `input` and `output` may be the same buffer.
    func filter(
        _ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, radius: Int, maximum: Bool, outside: Float
    ) {
        precondition(radius >= 0 && radius <= largestRadius, "the square's radius is outside what was prepared")
        guard radius > 0 else {
            if UnsafePointer(output) != input { output.update(from: input, count: width * height) }
            return
        }
        filterRows(input, into: output, radius: radius, maximum: maximum, outside: outside)
        filterColumns(output, radius: radius, maximum: maximum, outside: outside)
    }

    /// Along each row, into `output`.
    private func filterRows(
        _ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, radius r: Int, maximum: Bool, outside: Float
    ) {
        let w = width, block = 2 * r + 1
        // The padded line: r outside values, the row, then outside values up to a whole number of blocks.
        let length = ((w + 2 * r + block - 1) / block) * block
        let line = padded.baseAddress!
        for y in 0..<height {
            line.update(repeating: outside, count: length)
            (line + r).update(from: input + y * w, count: w)
            runningExtrema(line, length: length, block: block, maximum: maximum)
            // The window of output x covers padded x … x + 2r: the backward extremum from x, the forward one to x + 2r.
            combine(backward.baseAddress!, forward.baseAddress! + 2 * r, into: output + y * w, maximum: maximum, outside: outside)
        }
    }

    /// The forward and backward running extrema of `line` within each block, into `forward` and `backward`
    /// (written out for minima and maxima: a closure here is not inlined, and costs a call per pixel).
    private func runningExtrema(_ line: UnsafeMutablePointer<Float>, length: Int, block: Int, maximum: Bool) {
        let g = forward.baseAddress!, h = backward.baseAddress!
        for start in stride(from: 0, to: length, by: block) {
            g[start] = line[start]
            h[start + block - 1] = line[start + block - 1]
            if maximum {
                for k in 1..<block { g[start + k] = Swift.max(g[start + k - 1], line[start + k]) }
                for k in stride(from: block - 2, through: 0, by: -1) { h[start + k] = Swift.max(h[start + k + 1], line[start + k]) }
            } else {
                for k in 1..<block { g[start + k] = Swift.min(g[start + k - 1], line[start + k]) }
                for k in stride(from: block - 2, through: 0, by: -1) { h[start + k] = Swift.min(h[start + k + 1], line[start + k]) }
            }
        }
    }

    /// Along each column, in place, whole rows at a time.
    private func filterColumns(_ image: UnsafeMutablePointer<Float>, radius r: Int, maximum: Bool, outside: Float) {
        let w = width, block = 2 * r + 1
        let length = ((height + 2 * r + block - 1) / block) * block
        let g = forward.baseAddress!, h = backward.baseAddress!
        // Row p of the padded column image is image row p − r, or outside values.
        func row(_ p: Int) -> UnsafeMutablePointer<Float>? { p >= r && p - r < height ? image + (p - r) * w : nil }
        for start in stride(from: 0, to: length, by: block) {
            for k in 0..<block {
                let target = g + (start + k) * w
                let source = row(start + k)
                if k == 0 {
                    if let source { target.update(from: source, count: w) } else { target.update(repeating: outside, count: w) }
                    continue
                }
                combine(target - w, source, into: target, maximum: maximum, outside: outside)
            }
            for k in stride(from: block - 1, through: 0, by: -1) {
                let target = h + (start + k) * w
                let source = row(start + k)
                if k == block - 1 {
                    if let source { target.update(from: source, count: w) } else { target.update(repeating: outside, count: w) }
                    continue
                }
                combine(target + w, source, into: target, maximum: maximum, outside: outside)
            }
        }
        for y in 0..<height { combine(h + y * w, g + (y + 2 * r) * w, into: image + y * w, maximum: maximum, outside: outside) }
    }

    /// `target` = the element-wise extremum of the rows `a` and `b` (`b` nil: a row of `outside` values).
    private func combine(
        _ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>?, into target: UnsafeMutablePointer<Float>,
        maximum: Bool, outside: Float
    ) {
        let w = width
        switch (b, maximum) {
        case (let b?, true): for x in 0..<w { target[x] = Swift.max(a[x], b[x]) }
        case (let b?, false): for x in 0..<w { target[x] = Swift.min(a[x], b[x]) }
        case (nil, true): for x in 0..<w { target[x] = Swift.max(a[x], outside) }
        case (nil, false): for x in 0..<w { target[x] = Swift.min(a[x], outside) }
        }
    }
}
