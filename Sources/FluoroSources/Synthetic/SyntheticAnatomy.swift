import FluoroCore

/// One cylinder of the vessel tree: its axis from `from` to `to` and its radius (map pixels).
struct VesselSegment {
    var from: (x: Double, y: Double)
    var to: (x: Double, y: Double)
    var radius: Double
}

/// The static anatomy of a synthetic run, precomputed once: attenuation of the background (soft tissue,
/// lungs, heart shadow, ribs, spine, texture) and the projected path length through the vessel tree,
/// both on a grid larger than the frame by `margin` on every side so every shifted frame stays inside.
final class SyntheticAnatomy: @unchecked Sendable {
    let frameSize: Int
    let margin: Int
    /// Side of the square maps: `frameSize + 2 * margin`.
    let mapSize: Int
    /// Background attenuation (dimensionless line integral of μ) per map pixel.
    let background: UnsafeMutableBufferPointer<Float>
    /// Projected path length through the vessel tree, in pixels, per map pixel.
    let vesselPathLength: UnsafeMutableBufferPointer<Float>
    /// The main vessel, in reference-frame coordinates: guidewire and catheter run along it.
    let trunk: Polyline
    /// The vessel tree's cylinders, in map coordinates: the exact lumen at any shift.
    let vesselSegments: [VesselSegment]
    /// Iodine attenuation per pixel of path at full opacification.
    let iodineAttenuation: Double

    init(parameters: SyntheticParameters) {
        let size = parameters.size, scale = parameters.scale
        frameSize = size
        margin = Int(clampingFinite: parameters.maximumShift.rounded(.up)) + 2
        mapSize = size + 2 * margin
        let count = mapSize * mapSize
        background = .allocate(capacity: count)
        background.initialize(repeating: 0)
        vesselPathLength = .allocate(capacity: count)
        vesselPathLength.initialize(repeating: 0)
        iodineAttenuation = 0.08 / scale
        var random = RandomGenerator(seed: parameters.seed ^ 0xA5A5_5A5A_0F0F_F0F0)

        Self.paintBackground(
            into: background.baseAddress!, side: mapSize, margin: margin, frameSize: size,
            scale: scale, random: &random)
        var trunkPath = Polyline(), segments: [VesselSegment] = []
        Self.growVesselTree(
            into: vesselPathLength.baseAddress!, side: mapSize, margin: margin, frameSize: size,
            scale: scale,
            startingAt: parameters.procedure == .diagnostic ? SyntheticParameters.catheterShare : 0,
            random: &random, trunk: &trunkPath, segments: &segments)
        trunk = trunkPath
        vesselSegments = segments
    }

    deinit {
        background.deallocate()
        vesselPathLength.deallocate()
    }

    /// The true vessel mask of the reference frame (shift 0): 1 inside a vessel lumen, 0 outside.
    func referenceVesselMask() -> [UInt8] {
        var mask = [UInt8](repeating: 0, count: frameSize * frameSize)
        for y in 0..<frameSize {
            for x in 0..<frameSize where vesselPathLength[(y + margin) * mapSize + x + margin] > 0 {
                mask[y * frameSize + x] = 1
            }
        }
        return mask
    }

    /// The true vessel mask of a frame whose anatomy is shifted by `shift`: 1 where a pixel centre lies inside
    /// a vessel's lumen, to any fraction of a pixel (the reference mask moved and resampled would round it).
    func vesselMask(shift: (dx: Double, dy: Double)) -> [UInt8] {
        let rasterizer = TubeRasterizer(width: frameSize, height: frameSize)
        let offset = (x: shift.dx - Double(margin), y: shift.dy - Double(margin))
        var lumen = [Float](repeating: 0, count: frameSize * frameSize)
        lumen.withUnsafeMutableBufferPointer { image in
            for segment in vesselSegments {
                rasterizer.drawSegment(
                    from: (segment.from.x + offset.x, segment.from.y + offset.y),
                    to: (segment.to.x + offset.x, segment.to.y + offset.y),
                    profile: .cylinder(radius: segment.radius, attenuation: 1), into: image.baseAddress!)
            }
        }
        return lumen.map { $0 > 0 ? 1 : 0 }
    }

    // MARK: - Construction

    private static func paintBackground(
        into map: UnsafeMutablePointer<Float>, side: Int, margin: Int, frameSize: Int,
        scale: Double, random: inout RandomGenerator
    ) {
        let centre = Double(side) / 2
        let size = Double(frameSize)
        // Texture: value noise in four octaves (coarse to fine).
        let octaves: [(cell: Double, amplitude: Double)] = [(64, 0.10), (24, 0.06), (8, 0.035), (3, 0.015)]
        var noiseGrids: [(cell: Double, amplitude: Double, columns: Int, values: [Double])] = []
        for octave in octaves {
            let cell = octave.cell * scale
            let columns = Int(clampingFinite: Double(side) / cell) + 3
            noiseGrids.append((cell, octave.amplitude, columns, (0..<(columns * columns)).map { _ in random.uniform(-1...1) }))
        }
        // Ribs: curved bands; spine: a vertical band with vertebrae.
        let ribCount = 6
        let ribGap = size / Double(ribCount + 1)
        let ribOffset = random.uniform(-0.3...0.3) * ribGap
        let ribHalfWidth = 9 * scale
        let spineCentre = centre + 0.12 * size, spineHalfWidth = 34 * scale
        let vertebraPeriod = 46 * scale
        // Lungs (less attenuating) either side; heart shadow (more) in the middle.
        let lungs = [(x: centre - 0.27 * size, y: centre - 0.05 * size), (x: centre + 0.3 * size, y: centre - 0.05 * size)]
        let lungRadii = (x: 0.2 * size, y: 0.36 * size)
        let heart = (x: centre - 0.05 * size, y: centre + 0.1 * size, rx: 0.26 * size, ry: 0.22 * size)

        for y in 0..<side {
            let fy = Double(y)
            for x in 0..<side {
                let fx = Double(x)
                // Soft tissue: a thick body, thinner towards the sides.
                let across = (fx - centre) / (0.95 * Double(side))
                var mu = 1.5 + 0.6 * (1 - 4 * across * across)
                for lung in lungs {
                    let u = (fx - lung.x) / lungRadii.x, v = (fy - lung.y) / lungRadii.y
                    mu -= 0.55 * smoothFalloff(u * u + v * v)
                }
                let hu = (fx - heart.x) / heart.rx, hv = (fy - heart.y) / heart.ry
                mu += 0.4 * smoothFalloff(hu * hu + hv * hv)
                for rib in 0..<ribCount {
                    let ribY =
                        Double(margin) + ribOffset + Double(rib + 1) * ribGap - 0.2 * ribGap
                        + 0.00045 / scale * (fx - centre) * (fx - centre)
                    let d = abs(fy - ribY) / ribHalfWidth
                    if d < 1 { mu += 0.3 * (1 - d * d).squareRoot() }
                }
                let spineDistance = abs(fx - spineCentre) / spineHalfWidth
                if spineDistance < 1 {
                    let vertebra = 0.75 + 0.25 * cos(2 * Double.pi * fy / vertebraPeriod)
                    mu += 0.45 * (1 - spineDistance * spineDistance).squareRoot() * vertebra
                }
                for grid in noiseGrids {
                    mu += grid.amplitude * sampleNoise(grid.values, columns: grid.columns, x: fx / grid.cell, y: fy / grid.cell)
                }
                map[y * side + x] = Float(max(mu, 0.2))
            }
        }
    }

    /// 1 inside the unit circle (r² < 0.7), easing smoothly to 0 at r² = 1.3.
    private static func smoothFalloff(_ r2: Double) -> Double {
        let t = min(max((1.3 - r2) / 0.6, 0), 1)
        return t * t * (3 - 2 * t)
    }

    /// Smoothly interpolated value noise at grid coordinates (x, y).
    private static func sampleNoise(_ values: [Double], columns: Int, x: Double, y: Double) -> Double {
        let ix = Int(clampingFinite: x), iy = Int(clampingFinite: y)
        var fx = x - Double(ix), fy = y - Double(iy)
        fx = fx * fx * (3 - 2 * fx)
        fy = fy * fy * (3 - 2 * fy)
        let a = values[iy * columns + ix], b = values[iy * columns + ix + 1]
        let c = values[(iy + 1) * columns + ix], d = values[(iy + 1) * columns + ix + 1]
        return (a + fx * (b - a)) + fy * ((c + fx * (d - c)) - (a + fx * (b - a)))
    }

    /// Grows a coronary-like tree from the top left of the frame and draws it; the trunk is returned in
    /// reference-frame coordinates. With `startingAt` > 0 (a diagnostic injection) the tree is drawn only from
    /// that share of the trunk's length on (the catheter's tip): the trunk before it and the branches leaving it
    /// there are grown (the random choices stay those of the full tree) but hold no contrast.
    private static func growVesselTree(
        into map: UnsafeMutablePointer<Float>, side: Int, margin: Int, frameSize: Int,
        scale: Double, startingAt share: Double, random: inout RandomGenerator,
        trunk: inout Polyline, segments: inout [VesselSegment]
    ) {
        let size = Double(frameSize), m = Double(margin)
        /// `trunkArc`: arc length along the trunk where the branch (or its ancestor) leaves it.
        struct Branch { var x, y, angle, radius, length, trunkArc: Double; var depth: Int }
        var pending = [
            Branch(
                x: m + size * random.uniform(0.12...0.22), y: m - 4 * scale,
                angle: Double.pi / 2 - random.uniform(0.25...0.45), radius: 4.5 * scale,
                length: size * 1.05, trunkArc: 0, depth: 0)
        ]
        let step = 2 * scale
        var isTrunk = true
        var grown: [(segment: VesselSegment, trunkArc: Double)] = []
        while let branch = pending.popLast() {
            var x = branch.x, y = branch.y, angle = branch.angle
            var curvature = random.uniform(-0.012...0.012) / scale
            let steps = Int(clampingFinite: branch.length / step)
            var nextBranch = Int(clampingFinite: random.uniform(25...50))
            for i in 0..<steps {
                let fraction = Double(i) / Double(steps)
                let radius = branch.radius * (1 - 0.35 * fraction)
                curvature += random.uniform(-0.004...0.004) / scale
                if branch.depth == 0 {
                    // The trunk crosses the frame towards the lower middle, so the wire along it stays in view.
                    let target = atan2(m + 1.1 * size - y, m + 0.62 * size - x)
                    curvature += 0.003 * sin(target - angle) / scale
                }
                curvature = min(max(curvature, -0.02 / scale), 0.02 / scale)
                angle += curvature * step
                let nx = x + step * cos(angle), ny = y + step * sin(angle)
                if isTrunk { trunk.append(x: x - m, y: y - m) }
                grown.append(
                    (
                        VesselSegment(from: (x, y), to: (nx, ny), radius: radius),
                        isTrunk ? trunk.length : branch.trunkArc
                    ))
                x = nx
                y = ny
                if nx < -20 || ny < -20 || nx > Double(side) + 20 || ny > Double(side) + 20 { break }
                if branch.depth < 3, i == nextBranch {
                    let turn = random.uniform(0...1) < 0.5 ? -1.0 : 1.0
                    pending.append(
                        Branch(
                            x: x, y: y, angle: angle + turn * random.uniform(0.45...0.9),
                            radius: max(radius * 0.62, 1.2 * scale),
                            length: branch.length * random.uniform(0.3...0.5),
                            trunkArc: isTrunk ? trunk.length : branch.trunkArc, depth: branch.depth + 1))
                    nextBranch += Int(clampingFinite: random.uniform(30...70))
                }
            }
            if isTrunk { trunk.append(x: x - m, y: y - m) }
            isTrunk = false
        }
        let rasterizer = TubeRasterizer(width: side, height: side)
        let start = share * trunk.length
        for (segment, trunkArc) in grown where share == 0 || trunkArc >= start {
            rasterizer.drawSegment(
                from: segment.from, to: segment.to,
                profile: .cylinder(radius: segment.radius, attenuation: 1), into: map)
            segments.append(segment)
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
