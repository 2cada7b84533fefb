import COpenBLAS
import FluoroCore
import Foundation

/// The learned device detector: a small U-Net (8, 16 and 32 channels at ½, ¼ and ⅛ of the working level, with
/// a full-resolution 8-channel layer for precise localisation) trained by `tools/train_device_net.py` on synthetic
/// runs; its layers are listed there. From the segmenter's working level (−log, at most 512²) it gives two
/// probability maps: the devices' centre line (the guidewire and the catheter it runs through) and the catheter's
/// centre line alone. Inference is im2col + `cblas_sgemm` on one OpenBLAS thread (the graph runs one thread per
/// stage). All memory is allocated in `init`; `run` allocates nothing.
///
/// The network covers the largest region of the level whose sides are multiples of 8 (from the top left); the
/// maps are 0 outside it.
final class DeviceNetwork: LineEvidence {
    let width: Int
    let height: Int
    /// Probability that each level pixel lies on a device's centre line.
    let response: UnsafeMutableBufferPointer<Float>
    /// Probability that each level pixel lies on the catheter's centre line.
    let catheter: UnsafeMutableBufferPointer<Float>

    private let enc0, enc1, enc1b, enc2, enc2b, enc3, enc3b, lateral3, dec2, lateral2, dec1, head1, head2: Convolution
    private let coveredWidth: Int
    private let coveredHeight: Int
    private let input, joined, e1a, e1, e2a, e2, e3a, e3, l3, d2, l2, d1, h1, logitPlanes: FeatureMap
    private let columns: UnsafeMutablePointer<Float>
    private var buffers: [UnsafeMutablePointer<Float>] = []

    /// The weights bundled with FluoroStream.
    static var bundledWeightsPath: String {
        Bundle.module.path(forResource: "device-net", ofType: "fsnn") ?? "device-net.fsnn (missing from the bundle)"
    }

    /// Builds the network for a working level of `width` × `height` from the weights file at `path`.
    init(width: Int, height: Int, weightsPath: String = DeviceNetwork.bundledWeightsPath) throws {
        let file = try NetworkWeights(path: weightsPath)
        guard file.architecture == "device-unet-8-16-32" else {
            throw FluoroError.unsupported(path: weightsPath, detail: "network architecture '\(file.architecture)'")
        }
        guard width >= 16, height >= 16 else {
            throw FluoroError.invalidArgument("the learned segmenter needs a working level of at least 16×16, got \(width)×\(height)")
        }
        self.width = width
        self.height = height
        enc0 = try Convolution("enc0", from: file, input: 1, output: 8)
        enc1 = try Convolution("enc1", from: file, input: 8, output: 8, stride: 2)
        enc1b = try Convolution("enc1b", from: file, input: 8, output: 8)
        enc2 = try Convolution("enc2", from: file, input: 8, output: 16, stride: 2)
        enc2b = try Convolution("enc2b", from: file, input: 16, output: 16)
        enc3 = try Convolution("enc3", from: file, input: 16, output: 32, stride: 2)
        enc3b = try Convolution("enc3b", from: file, input: 32, output: 32)
        lateral3 = try Convolution("lateral3", from: file, input: 32, output: 16, kernel: 1, relu: false)
        dec2 = try Convolution("dec2", from: file, input: 16, output: 16)
        lateral2 = try Convolution("lateral2", from: file, input: 16, output: 8, kernel: 1, relu: false)
        dec1 = try Convolution("dec1", from: file, input: 8, output: 8)
        head1 = try Convolution("head1", from: file, input: 16, output: 8, kernel: 1)
        head2 = try Convolution("head2", from: file, input: 8, output: 2, kernel: 1, relu: false)

        let w = width / 8 * 8, h = height / 8 * 8
        coveredWidth = w
        coveredHeight = h
        var buffers: [UnsafeMutablePointer<Float>] = []
        func map(_ channels: Int, _ divisor: Int) -> FeatureMap {
            let data = UnsafeMutablePointer<Float>.allocate(capacity: channels * (h / divisor) * (w / divisor))
            buffers.append(data)
            return FeatureMap(channels: channels, height: h / divisor, width: w / divisor, data: data)
        }
        input = map(1, 1)
        joined = map(16, 1)
        (e1a, e1, l2, d1) = (map(8, 2), map(8, 2), map(8, 4), map(8, 2))
        (e2a, e2, d2) = (map(16, 4), map(16, 4), map(16, 4))
        (e3a, e3, l3) = (map(32, 8), map(32, 8), map(16, 8))
        (h1, logitPlanes) = (map(8, 1), map(2, 1))
        let columnCount = [(enc0, 1), (enc1, 2), (enc1b, 2), (enc2, 4), (enc2b, 4), (enc3, 8), (enc3b, 8), (dec2, 4),
                           (dec1, 2)].map { $0.0.columnRows * (h / $0.1) * (w / $0.1) }.max()!
        columns = .allocate(capacity: columnCount)
        response = .allocate(capacity: width * height)
        catheter = .allocate(capacity: width * height)
        response.update(repeating: 0)
        catheter.update(repeating: 0)
        self.buffers = buffers
        openblas_set_num_threads(1)
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        columns.deallocate()
        response.deallocate()
        catheter.deallocate()
    }

    /// Fills `response` and `catheter` for the working level `level` (`width` × `height`, row-major).
    func run(_ level: UnsafePointer<Float>) {
        normalise(level)
        logits(of: input)
        let n = coveredWidth * coveredHeight
        for y in 0..<coveredHeight {
            for x in 0..<coveredWidth {
                let i = y * coveredWidth + x
                response[y * width + x] = 1 / (1 + exp(-logitPlanes.data[i]))
                catheter[y * width + x] = 1 / (1 + exp(-logitPlanes.data[n + i]))
            }
        }
    }

    /// The network's two logit planes for `image` (one channel, the covered size), in `logits`; exposed for the
    /// check against PyTorch.
    @discardableResult
    func logits(of image: FeatureMap) -> FeatureMap {
        let e0 = FeatureMap(channels: 8, height: joined.height, width: joined.width, data: joined.plane(8))
        enc0.apply(image, into: e0, columns: columns)
        enc1.apply(e0, into: e1a, columns: columns)
        enc1b.apply(e1a, into: e1, columns: columns)
        enc2.apply(e1, into: e2a, columns: columns)
        enc2b.apply(e2a, into: e2, columns: columns)
        enc3.apply(e2, into: e3a, columns: columns)
        enc3b.apply(e3a, into: e3, columns: columns)
        lateral3.apply(e3, into: l3, columns: columns)
        Self.addUpsampled(l3, to: e2)
        dec2.apply(e2, into: d2, columns: columns)
        lateral2.apply(d2, into: l2, columns: columns)
        Self.addUpsampled(l2, to: e1)
        dec1.apply(e1, into: d1, columns: columns)
        let up = FeatureMap(channels: 8, height: joined.height, width: joined.width, data: joined.data)
        up.data.update(repeating: 0, count: 8 * up.planeSize)
        Self.addUpsampled(d1, to: up)
        head1.apply(joined, into: h1, columns: columns)
        head2.apply(h1, into: logitPlanes, columns: columns)
        return logitPlanes
    }

    /// A map the size the network covers, for `logits(of:)`: backed by the network's own input buffer.
    var inputMap: FeatureMap { input }

    /// `target` += nearest-neighbour ×2 upsampling of `source` (same channels, twice the size).
    private static func addUpsampled(_ source: FeatureMap, to target: FeatureMap) {
        precondition(source.channels == target.channels && 2 * source.height == target.height
            && 2 * source.width == target.width)
        for channel in 0..<source.channels {
            let from = source.plane(channel), to = target.plane(channel)
            for y in 0..<target.height {
                let sourceRow = from + (y / 2) * source.width, targetRow = to + y * target.width
                for x in 0..<target.width { targetRow[x] += sourceRow[x / 2] }
            }
        }
    }

    /// The covered region of `level`, minus its mean, over its standard deviation, into `input`.
    private func normalise(_ level: UnsafePointer<Float>) {
        var sum: Double = 0, squares: Double = 0
        for y in 0..<coveredHeight {
            var rowSum: Float = 0, rowSquares: Float = 0
            for x in 0..<coveredWidth {
                let v = level[y * width + x]
                rowSum += v
                rowSquares += v * v
            }
            sum += Double(rowSum)
            squares += Double(rowSquares)
        }
        let count = Double(coveredWidth * coveredHeight)
        let mean = sum / count
        let deviation = max((squares / count - mean * mean).squareRoot(), 1e-6)
        let offset = Float(mean), scale = Float(1 / deviation)
        for y in 0..<coveredHeight {
            for x in 0..<coveredWidth { input.data[y * coveredWidth + x] = (level[y * width + x] - offset) * scale }
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
