import FluoroCore

/// A deterministic, seeded generator of fluoroscopy runs with exact ground truth, as a `FrameSource`.
///
/// Each frame is a projection through Beer–Lambert attenuation: the precomputed anatomy (soft tissue,
/// lungs, heart, ribs, spine, texture) and the vessel tree filled with contrast by the run's injection
/// curve, both shifted by the cardiac and respiratory motion (bilinear, sub-pixel), plus a guidewire and a
/// catheter along the main vessel (the wire advances and retracts; in a diagnostic injection there is no wire,
/// the vessel tree starts at the catheter's tip, and the catheter fills with contrast as the vessels do). A
/// collimator, when set, leaves only its field exposed. The transmitted intensity is blurred by the detector,
/// then quantum noise (Poisson, normal approximation above 20 quanta) is drawn at the run's dose and the counts
/// are scaled to `bitsStored` bits. Frame `i` depends only on the parameters and `i`.
public final class SyntheticSource: FrameSource {
    public let parameters: SyntheticParameters
    public let geometry: FrameGeometry
    public var name: String { "synthetic(\(parameters.size)x\(parameters.size), seed \(parameters.seed))" }
    public var frameInterval: Double? { 1 / parameters.frameRate }
    public var frameCount: Int? { parameters.frameCount }

    private let anatomy: SyntheticAnatomy
    private let attenuation: UnsafeMutableBufferPointer<Float>
    private let scratch: UnsafeMutableBufferPointer<Float>
    private let blurKernel: [Float]
    /// Share of the X-rays the collimator lets through at each pixel; nil without a collimator.
    private let exposure: [Float]?
    private var nextIndex = 0

    /// Builds the run's anatomy (a few hundred milliseconds at 1024²).
    public init(parameters: SyntheticParameters) throws {
        try parameters.validate()
        self.parameters = parameters
        geometry = try FrameGeometry(
            width: parameters.size, height: parameters.size, format: .grey16,
            bitsStored: parameters.bitsStored)
        anatomy = SyntheticAnatomy(parameters: parameters)
        attenuation = .allocate(capacity: geometry.pixelCount)
        scratch = .allocate(capacity: geometry.pixelCount)
        blurKernel = Self.gaussianKernel(sigma: parameters.detectorBlur)
        exposure = parameters.collimator.map { Self.exposure(of: $0, size: parameters.size, scale: parameters.scale) }
        _ = NormalTable.values.count
    }

    deinit {
        attenuation.deallocate()
        scratch.deallocate()
    }

    /// Restarts the run from frame 0.
    public func rewind() { nextIndex = 0 }

    public func read(into frame: Frame) throws -> Bool {
        guard nextIndex < parameters.frameCount else { return false }
        render(frameIndex: nextIndex, into: frame.pixels)
        frame.index = nextIndex
        frame.sourceTime = Double(nextIndex) / parameters.frameRate
        nextIndex += 1
        return true
    }

    /// The reference vessel mask (shift 0), row-major, 1 = vessel.
    public func referenceVesselMask() -> [UInt8] { anatomy.referenceVesselMask() }

    /// The true vessel mask of frame `index` (its anatomy moved by the frame's sub-pixel shift), row-major,
    /// 1 = a pixel centre inside a vessel's lumen.
    public func vesselMask(forFrame index: Int) -> [UInt8] {
        anatomy.vesselMask(shift: parameters.shift(atFrame: index))
    }

    /// The exact truth of frame `index`.
    public func truth(forFrame index: Int) -> SyntheticFrameTruth {
        let shift = parameters.shift(atFrame: index)
        let (wireLength, catheterLength) = deviceLengths(atFrame: index)
        func device(length: Double, radius: Double) -> SyntheticFrameTruth.Device {
            var points: [Point2] = []
            let limit = Double(parameters.size) - 0.5
            anatomy.trunk.sample(from: 0, to: length, step: 2) { point in
                let x = point.x + shift.dx, y = point.y + shift.dy
                if x >= -0.5, y >= -0.5, x <= limit, y <= limit { points.append(Point2(x: Float(x), y: Float(y))) }
            }
            let tip = anatomy.trunk.point(atArcLength: length)
            return .init(centerline: points, tip: Point2((tip.x + shift.dx, tip.y + shift.dy)), radius: radius)
        }
        let radii = deviceRadii
        return SyntheticFrameTruth(
            index: index, time: Double(index) / parameters.frameRate, dx: shift.dx, dy: shift.dy,
            contrast: parameters.contrastLevel(atFrame: index),
            guidewire: wireLength.map { device(length: $0, radius: radii.wire) },
            catheter: device(length: catheterLength, radius: radii.catheter))
    }

    /// The truth of the whole run, for the sidecar file.
    public func runTruth(vesselMaskFileName: String) -> SyntheticRunTruth {
        let frames = (0..<parameters.frameCount).map { truth(forFrame: $0) }
        return SyntheticRunTruth(
            parameters: parameters, vesselMask: vesselMaskFileName,
            contrastFrames: frames.filter { $0.contrast > 0.05 }.map(\.index), frames: frames)
    }

    // MARK: - Rendering

    /// Device sizes scale with the frame, but never below what a (binned) detector pixel still shows.
    private var deviceRadii: (wire: Double, catheter: Double) {
        (max(0.6 * parameters.scale, 0.6), max(parameters.catheterRadius * parameters.scale, 1.5))
    }

    /// Arc lengths along the trunk covered by the guidewire (advancing and retracting over 6 s; nil when there is
    /// none) and the catheter.
    private func deviceLengths(atFrame index: Int) -> (wire: Double?, catheter: Double) {
        let trunk = anatomy.trunk.length
        let catheter = SyntheticParameters.catheterShare * trunk
        guard parameters.procedure == .intervention else { return (nil, catheter) }
        let t = Double(index) / parameters.frameRate
        return (trunk * (0.5 + 0.3 * (0.5 - 0.5 * cos(2 * Double.pi * t / 6))), catheter)
    }

    /// The collimator's transmission per pixel: 1 inside the field, `leakage` behind the blades, a linear
    /// penumbra 1.5 px wide (at 512²) across the edge.
    private static func exposure(of collimator: SyntheticParameters.Collimator, size: Int, scale: Double) -> [Float] {
        let penumbra = 1.5 * scale
        return (0..<(size * size)).map { i in
            let depth = collimator.depth(x: Double(i % size), y: Double(i / size), size: size)
            let open = min(max(depth / penumbra + 0.5, 0), 1)
            return Float(collimator.leakage + (1 - collimator.leakage) * open)
        }
    }

    private func render(frameIndex index: Int, into output: UnsafeMutableBufferPointer<UInt16>) {
        let size = parameters.size
        let shift = parameters.shift(atFrame: index)
        let contrast = Float(parameters.contrastLevel(atFrame: index) * anatomy.iodineAttenuation)
        let mu = attenuation.baseAddress!

        // Devices first, the catheter into `mu` and the wire inside it into `scratch`; both add to the anatomy.
        let transmitted = scratch.baseAddress!
        mu.update(repeating: 0, count: geometry.pixelCount)
        transmitted.update(repeating: 0, count: geometry.pixelCount)
        let rasterizer = TubeRasterizer(width: size, height: size)
        let (wireLength, catheterLength) = deviceLengths(atFrame: index)
        let radii = deviceRadii
        // Contrast is injected through a diagnostic catheter: its lumen holds iodine as the vessels do.
        let catheterAttenuation =
            parameters.catheterWall / (2 * radii.catheter)
            + (parameters.procedure == .diagnostic ? Double(contrast) : 0)
        rasterizer.drawPath(
            anatomy.trunk, from: 0, to: catheterLength, offset: (shift.dx, shift.dy),
            profile: .cylinder(radius: radii.catheter, attenuation: catheterAttenuation), into: mu)
        if let wireLength {
            rasterizer.drawPath(
                anatomy.trunk, from: 0, to: wireLength, offset: (shift.dx, shift.dy),
                profile: .gaussian(sigma: radii.wire, peak: 0.45), into: transmitted)
        }

        // Anatomy, shifted with constant bilinear weights, then Beer–Lambert.
        let sourceX = Double(anatomy.margin) - shift.dx, sourceY = Double(anatomy.margin) - shift.dy
        let ix = Int(clampingFinite: sourceX.rounded(.down)), iy = Int(clampingFinite: sourceY.rounded(.down))
        let fx = Float(sourceX - Double(ix)), fy = Float(sourceY - Double(iy))
        let w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy
        let side = anatomy.mapSize
        let background = anatomy.background.baseAddress!, vessels = anatomy.vesselPathLength.baseAddress!
        for y in 0..<size {
            let top = (y + iy) * side + ix, bottom = top + side
            let row = y * size
            for x in 0..<size {
                let b =
                    w00 * background[top + x] + w01 * background[top + x + 1]
                    + w10 * background[bottom + x] + w11 * background[bottom + x + 1]
                let v =
                    w00 * vessels[top + x] + w01 * vessels[top + x + 1]
                    + w10 * vessels[bottom + x] + w11 * vessels[bottom + x + 1]
                transmitted[row + x] = expf(-(b + contrast * v + mu[row + x] + transmitted[row + x]))
            }
        }

        if let exposure {
            for i in 0..<geometry.pixelCount { transmitted[i] *= exposure[i] }
        }

        // Detector blur (separable Gaussian): transmitted → mu (horizontal) → transmitted (vertical).
        blur(transmitted, through: mu, size: size)

        // Quantum noise at the run's dose, scaled so that unattenuated X-rays read 95 % of full scale.
        var random = RandomGenerator(seed: parameters.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index))
        let dose = Float(parameters.dose)
        let maximum = Float((1 << parameters.bitsStored) - 1)
        let gain = 0.95 * maximum / dose
        let table = NormalTable.values
        table.withUnsafeBufferPointer { normals in
            var bits: UInt64 = 0
            for i in 0..<geometry.pixelCount {
                let lambda = dose * transmitted[i]
                let counts: Float
                if lambda > 20 {
                    if i & 3 == 0 { bits = random.next() }
                    let z = normals[Int(truncatingIfNeeded: (bits >> (UInt64(i & 3) * 16)) & 0xFFFF)]
                    counts = lambda + lambda.squareRoot() * z
                } else {
                    counts = Self.poisson(lambda, random: &random)
                }
                let value = min(max(counts * gain + 0.5, 0), maximum)
                output[i] = UInt16(clampingFinite: value)
            }
        }
    }

    /// Knuth's multiplication method, for the few pixels with very low expected counts.
    private static func poisson(_ lambda: Float, random: inout RandomGenerator) -> Float {
        let limit = exp(-Double(lambda))
        var product = random.uniform(), count: Float = 0
        while product > limit {
            count += 1
            product *= random.uniform()
        }
        return count
    }

    private static func gaussianKernel(sigma: Double) -> [Float] {
        guard sigma > 0.05 else { return [1] }
        let radius = max(1, Int(clampingFinite: (3 * sigma).rounded(.up)))
        let weights = (-radius...radius).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let total = weights.reduce(0, +)
        return weights.map { Float($0 / total) }
    }

    /// Separable blur of `image` in place, using `temporary` (both size² floats); edges are clamped.
    private func blur(_ image: UnsafeMutablePointer<Float>, through temporary: UnsafeMutablePointer<Float>, size: Int) {
        guard blurKernel.count > 1 else { return }
        let radius = blurKernel.count / 2
        blurKernel.withUnsafeBufferPointer { kernel in
            for y in 0..<size {
                let row = image + y * size, out = temporary + y * size
                for x in 0..<size {
                    var sum: Float = 0
                    for k in 0..<kernel.count {
                        sum += kernel[k] * row[min(max(x + k - radius, 0), size - 1)]
                    }
                    out[x] = sum
                }
            }
            for y in 0..<size {
                let out = image + y * size
                for x in 0..<size { out[x] = 0 }
                for k in 0..<kernel.count {
                    let input = temporary + min(max(y + k - radius, 0), size - 1) * size
                    let weight = kernel[k]
                    for x in 0..<size { out[x] += weight * input[x] }
                }
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
