import COpenBLAS
import FluoroCore
import FluoroConcurrency
import Foundation

/// The learned device detector: a small U-Net (8, 16 and 32 channels at ½, ¼ and ⅛ of the working level) trained
/// by `tools/training/train_device_net.py` on synthetic runs; its layers are listed there. The level's 2×2 blocks enter as
/// four channels and the output leaves the same way (pixel unshuffle and shuffle), so no layer runs at the full
/// level yet the maps keep its resolution. From the segmenter's working level (−log, at most 512²) it gives three
/// probability maps: the devices' centre line (the guidewire and the catheter it runs through), the catheter's
/// centre line alone, and the lumen of contrast-filled vessels (where the wire's tip cannot be told from the
/// vessel it lies in). Inference is im2col + `cblas_sgemm` on one OpenBLAS thread (the graph runs one thread per
/// stage); with a splitter, each layer's bands of output rows are shared between the splitter's two threads, each
/// with its own columns. All memory is allocated in `init`; `run` allocates nothing.
///
/// The network covers the largest region of the level whose sides are multiples of 16 (from the top left); the
/// maps are 0 outside it.
final class DeviceNetwork: LineEvidence {
    let width: Int
    let height: Int
    /// Probability that each level pixel lies on a device's centre line (0 where it is below 1 in 50).
    let response: UnsafeMutableBufferPointer<Float>

    private let enc1, enc2, enc2b, enc3, enc3b, lateral3, dec2, lateral2, dec1, head1, head2: Convolution
    private let coveredWidth: Int
    private let coveredHeight: Int
    /// `joined` holds dec1's output (planes 0–7) and the unshuffled input (planes 8–11), head1's input.
    private let input, joined, e1, e2a, e2, e3a, e3, l3, d2, l2, shuffled: FeatureMap
    /// The unfolded input (im2col) and the head's hidden layer, one buffer per part of a split pass.
    private let columns: [UnsafeMutablePointer<Float>]
    private let splitter: WorkSplitter?
    private var pass: BandPass!
    private var buffers: [UnsafeMutablePointer<Float>] = []
    /// Pixels per band of the two 1×1 head layers (the hidden layer's band stays in the cache).
    private static let headBand = 4096

    /// The weights that ship with FluoroStream: installed beside the binary, or in SwiftPM's bundle of this module's
    /// resources (`ResourceFolder`); throws naming the folders looked in when they are missing.
    static func bundledWeightsPath() throws -> String {
        try ResourceFolder.path(of: "device-net.fsnn", buildBundle: "FluoroStream_FluoroVision.resources")
    }

    /// Builds the network for a working level of `width` × `height` from the weights file at `weightsPath` (the
    /// bundled weights when nil); with a `splitter`, its layers share their bands between two threads.
    init(width: Int, height: Int, weightsPath: String? = nil, splitter: WorkSplitter? = nil) throws {
        let weightsPath = try weightsPath ?? Self.bundledWeightsPath()
        let file = try NetworkWeights(path: weightsPath)
        guard file.architecture == "device-unet-s2d-8-16-32-3" else {
            throw FluoroError.unsupported(path: weightsPath, detail: "network architecture '\(file.architecture)'")
        }
        guard width >= 16, height >= 16 else {
            throw FluoroError.invalidArgument("the learned segmenter needs a working level of at least 16×16, got \(width)×\(height)")
        }
        self.width = width
        self.height = height
        enc1 = try Convolution("enc1", from: file, input: 4, output: 8)
        enc2 = try Convolution("enc2", from: file, input: 8, output: 16, stride: 2)
        enc2b = try Convolution("enc2b", from: file, input: 16, output: 16)
        enc3 = try Convolution("enc3", from: file, input: 16, output: 32, stride: 2)
        enc3b = try Convolution("enc3b", from: file, input: 32, output: 32)
        lateral3 = try Convolution("lateral3", from: file, input: 32, output: 16, kernel: 1, relu: false)
        dec2 = try Convolution("dec2", from: file, input: 16, output: 16)
        lateral2 = try Convolution("lateral2", from: file, input: 16, output: 8, kernel: 1, relu: false)
        dec1 = try Convolution("dec1", from: file, input: 8, output: 8)
        head1 = try Convolution("head1", from: file, input: 12, output: 8, kernel: 1)
        head2 = try Convolution("head2", from: file, input: 8, output: 12, kernel: 1, relu: false)

        let w = width / 16 * 16, h = height / 16 * 16
        coveredWidth = w
        coveredHeight = h
        var buffers: [UnsafeMutablePointer<Float>] = []
        func map(_ channels: Int, _ divisor: Int) -> FeatureMap {
            let data = UnsafeMutablePointer<Float>.allocate(capacity: channels * (h / divisor) * (w / divisor))
            buffers.append(data)
            return FeatureMap(channels: channels, height: h / divisor, width: w / divisor, data: data)
        }
        input = map(1, 1)
        (joined, e1, shuffled) = (map(12, 2), map(8, 2), map(12, 2))
        (e2a, e2, d2, l2) = (map(16, 4), map(16, 4), map(16, 4), map(8, 4))
        (e3a, e3, l3) = (map(32, 8), map(32, 8), map(16, 8))
        let columnCount = [(enc1, 2), (enc2, 2), (enc2b, 4), (enc3, 4), (enc3b, 8), (dec2, 4), (dec1, 2)]
            .map { $0.0.columnCapacity(width: w / $0.1) }.max()!
        columns = (0..<(splitter?.parts ?? 1)).map { _ in .allocate(capacity: max(columnCount, 8 * Self.headBand)) }
        self.splitter = splitter
        response = .allocate(capacity: width * height)
        response.update(repeating: 0)
        self.buffers = buffers
        openblas_set_num_threads(1)
        pass = BandPass(network: self)
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        for buffer in columns { buffer.deallocate() }
        response.deallocate()
    }

    /// Runs the network on the working level `level` (`width` × `height`, row-major) whose exposed field is `field`
    /// (updated for this level): fills `response`, and `catheterProbability(at:)` answers for this level until the
    /// next run.
    func run(_ level: UnsafePointer<Float>, field: FieldMask) {
        normalise(level, field: field)
        forward(input)
        // The centre-line plane leaves the network as four ½-size planes (its 2×2 blocks): each output row takes
        // two of them in turn. Most of the image is far from any device: its logits are very negative and need no
        // exp.
        let floor: Float = -4, half = shuffled.width
        for y in 0..<coveredHeight {
            let even = shuffled.plane((y % 2) * 2) + (y / 2) * half
            let odd = shuffled.plane((y % 2) * 2 + 1) + (y / 2) * half
            let row = response.baseAddress! + y * width
            for x in 0..<half {
                let a = even[x], b = odd[x]
                row[2 * x] = a > floor ? 1 / (1 + exp(-a)) : 0
                row[2 * x + 1] = b > floor ? 1 / (1 + exp(-b)) : 0
            }
        }
    }

    /// Probability that level pixel `i` lies on the catheter's centre line (computed when asked: only points of
    /// the chosen line need it).
    func catheterProbability(at i: Int) -> Float { probability(plane: 1, at: i) }

    /// Probability that level pixel `i` lies inside a contrast-filled vessel.
    func vesselProbability(at i: Int) -> Float { probability(plane: 2, at: i) }

    /// Read from the network's ½-size output, where plane c's pixel (2y + i, 2x + j) is channel c·4 + i·2 + j's
    /// pixel (y, x).
    private func probability(plane: Int, at i: Int) -> Float {
        let x = i % width, y = i / width
        guard x < coveredWidth, y < coveredHeight else { return 0 }
        return 1 / (1 + exp(-logit(plane: plane, x: x, y: y)))
    }

    /// Logit `plane`'s value at covered pixel (x, y), read from the network's ½-size output (pixel shuffle ×2).
    private func logit(plane: Int, x: Int, y: Int) -> Float {
        shuffled.plane(plane * 4 + (y % 2) * 2 + x % 2)[(y / 2) * shuffled.width + x / 2]
    }

    /// The network's three logit planes for `image` (one channel, the covered size), plane after plane, row-major;
    /// for the check against PyTorch (it allocates the array).
    func logits(of image: FeatureMap) -> [Float] {
        forward(image)
        var planes: [Float] = []
        planes.reserveCapacity(3 * coveredWidth * coveredHeight)
        for plane in 0..<3 {
            for y in 0..<coveredHeight {
                for x in 0..<coveredWidth { planes.append(logit(plane: plane, x: x, y: y)) }
            }
        }
        return planes
    }

    /// The layers, from `image` (one channel, the covered size) to `shuffled`: the three logit planes' 2×2 blocks
    /// as twelve ½-size planes.
    private func forward(_ image: FeatureMap) {
        let unshuffled = FeatureMap(channels: 4, height: joined.height, width: joined.width, data: joined.plane(8))
        let d1 = FeatureMap(channels: 8, height: joined.height, width: joined.width, data: joined.data)
        Self.unshuffle(image, into: unshuffled)
        apply(enc1, unshuffled, into: e1)
        apply(enc2, e1, into: e2a)
        apply(enc2b, e2a, into: e2)
        apply(enc3, e2, into: e3a)
        apply(enc3b, e3a, into: e3)
        apply(lateral3, e3, into: l3)
        Self.addUpsampled(l3, to: e2)
        apply(dec2, e2, into: d2)
        apply(lateral2, d2, into: l2)
        Self.addUpsampled(l2, to: e1)
        apply(dec1, e1, into: d1)
        pass.layer = nil
        pass.perform(0..<((joined.planeSize + Self.headBand - 1) / Self.headBand), splitter: splitter)
    }

    /// `layer` from `input` into `output`, its bands split between the splitter's threads.
    private func apply(_ layer: Convolution, _ input: FeatureMap, into output: FeatureMap) {
        (pass.layer, pass.input, pass.output) = (layer, input, output)
        pass.perform(0..<layer.bandCount(height: output.height, width: output.width), splitter: splitter)
    }

    /// The two 1×1 head layers for bands `bands` of `headBand` pixels of the ½-size maps (the hidden layer's band,
    /// in `columns`, stays in the cache).
    private func head(bands: Range<Int>, columns: UnsafeMutablePointer<Float>) {
        let n = joined.planeSize, end = min(bands.upperBound * Self.headBand, n)
        for first in Swift.stride(from: bands.lowerBound * Self.headBand, to: end, by: Self.headBand) {
            let count = min(Self.headBand, end - first)
            head1.multiply(UnsafePointer(joined.data + first), rowStride: n, count: count, into: columns, outputStride: count)
            head2.multiply(UnsafePointer(columns), rowStride: count, count: count, into: shuffled.data + first, outputStride: n)
        }
    }

    /// A pass over bands of the network's maps, which the splitter may share between two threads (each part with
    /// its own columns): one convolution layer, or with `layer` nil the head. Made once; set before each pass.
    private final class BandPass: SplittableWork {
        unowned let network: DeviceNetwork
        var layer: Convolution?
        var input: FeatureMap
        var output: FeatureMap

        init(network: DeviceNetwork) {
            self.network = network
            (input, output) = (network.input, network.input)
        }

        func perform(part: Int, range: Range<Int>) {
            if let layer {
                layer.apply(input, into: output, bands: range, columns: network.columns[part])
            } else {
                network.head(bands: range, columns: network.columns[part])
            }
        }
    }

    /// A map the size the network covers, for `logits(of:)`: backed by the network's own input buffer.
    var inputMap: FeatureMap { input }

    /// `target` += nearest-neighbour ×2 upsampling of `source` (same channels, twice the size).
    private static func addUpsampled(_ source: FeatureMap, to target: FeatureMap) {
        precondition(
            source.channels == target.channels && 2 * source.height == target.height
                && 2 * source.width == target.width)
        for channel in 0..<source.channels {
            let from = source.plane(channel), to = target.plane(channel)
            for y in 0..<target.height {
                let sourceRow = from + (y / 2) * source.width, targetRow = to + y * target.width
                for x in 0..<source.width {
                    targetRow[2 * x] += sourceRow[x]
                    targetRow[2 * x + 1] += sourceRow[x]
                }
            }
        }
    }

    /// Pixel unshuffle ×2 (PyTorch's `pixel_unshuffle`): plane i·2 + j of `target` holds `source`'s pixels
    /// (2y + i, 2x + j).
    private static func unshuffle(_ source: FeatureMap, into target: FeatureMap) {
        precondition(
            source.channels == 1 && target.channels == 4 && source.height == 2 * target.height
                && source.width == 2 * target.width)
        for i in 0..<2 {
            for j in 0..<2 {
                let plane = target.plane(i * 2 + j)
                for y in 0..<target.height {
                    let from = source.data + (2 * y + i) * source.width + j, to = plane + y * target.width
                    for x in 0..<target.width { to[x] = from[2 * x] }
                }
            }
        }
    }

    /// The covered region of `level`, minus the exposed field's mean, over its standard deviation, into `input`;
    /// pixels outside the field (collimator blades, shutters) become 0, the field's mean. A clinical run's black
    /// surround would otherwise dominate the statistics and squash the anatomy's contrast several times over.
    private func normalise(_ level: UnsafePointer<Float>, field: FieldMask) {
        // Eight lanes at a time; the field's rows (multiples of 16 wide) have no remainder.
        var sum: Double = 0, squares: Double = 0, count = 0
        for y in 0..<coveredHeight {
            let row = UnsafeRawPointer(level + y * width)
            let inside = UnsafeRawPointer(field.inside.baseAddress! + y * width)
            var rowSum = SIMD8<Float>(), rowSquares = SIMD8<Float>(), rowCount = SIMD8<Float>()
            for x in Swift.stride(from: 0, to: coveredWidth, by: 8) {
                let mask = SIMD8<Float>(inside.loadUnaligned(fromByteOffset: x, as: SIMD8<UInt8>.self))
                let v = row.loadUnaligned(fromByteOffset: 4 * x, as: SIMD8<Float>.self) * mask
                rowSum += v
                rowSquares += v * v
                rowCount += mask
            }
            sum += Double(rowSum.sum())
            squares += Double(rowSquares.sum())
            count += Int(clampingFinite: rowCount.sum())
        }
        let mean = sum / Double(max(count, 1))
        let deviation = max((squares / Double(max(count, 1)) - mean * mean).squareRoot(), 1e-6)
        let offset = Float(mean), scale = Float(1 / deviation)
        for y in 0..<coveredHeight {
            let row = level + y * width, outside = field.outside.baseAddress! + y * width
            let target = input.data + y * coveredWidth
            for x in 0..<coveredWidth {
                target[x] = outside[x] != 0 ? 0 : (row[x] - offset) * scale
            }
        }
    }

    /// The line's unit normal at pixel `i`, from the Hessian of the centre-line probability (finite differences).
    func normal(at i: Int) -> (x: Float, y: Float) {
        let w = width
        guard i >= w + 1, i < width * height - w - 1 else { return (0, 1) }
        let r = response
        let xx = r[i + 1] - 2 * r[i] + r[i - 1], yy = r[i + w] - 2 * r[i] + r[i - w]
        let xy = 0.25 * (r[i + w + 1] - r[i + w - 1] - r[i - w + 1] + r[i - w - 1])
        return lineNormal(p: xx - yy, q: 2 * xy)
    }
}
