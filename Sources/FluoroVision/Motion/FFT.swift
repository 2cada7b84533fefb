/// A radix-2 complex FFT on split real/imaginary Float arrays, with twiddles and bit reversal precomputed,
/// and its 2-D form for square power-of-two images (rows, then columns). Forward has no scaling; inverse
/// divides by the number of points, as numpy.fft does.
public struct FFT: Sendable {
    public let count: Int
    private let cosines: [Float]
    private let sines: [Float]
    private let reversed: [Int32]

    /// An FFT of `count` points (a power of two, at least 2).
    public init(count: Int) {
        precondition(count >= 2 && count & (count - 1) == 0, "FFT size \(count) is not a power of two")
        self.count = count
        cosines = (0..<(count / 2)).map { Float(cos(2 * Double.pi * Double($0) / Double(count))) }
        sines = (0..<(count / 2)).map { Float(-sin(2 * Double.pi * Double($0) / Double(count))) }
        let bits = count.trailingZeroBitCount
        reversed = (0..<count).map { index in
            var value = 0
            for bit in 0..<bits where index & (1 << bit) != 0 { value |= 1 << (bits - 1 - bit) }
            return Int32(value)
        }
    }

    /// Transforms `count` points at `real`/`imaginary` (elements `stride` apart) in place.
    public func transform(real: UnsafeMutablePointer<Float>, imaginary: UnsafeMutablePointer<Float>, stride: Int = 1, inverse: Bool = false) {
        let n = count
        for i in 0..<n {
            let j = Int(reversed[i])
            if j > i {
                swap(&real[i * stride], &real[j * stride])
                swap(&imaginary[i * stride], &imaginary[j * stride])
            }
        }
        let sign: Float = inverse ? -1 : 1
        cosines.withUnsafeBufferPointer { cosines in
            sines.withUnsafeBufferPointer { sines in
                var half = 1
                while half < n {
                    let step = n / (2 * half)
                    var start = 0
                    while start < n {
                        for k in 0..<half {
                            let wr = cosines[k * step], wi = sign * sines[k * step]
                            let a = (start + k) * stride, b = (start + k + half) * stride
                            let tr = wr * real[b] - wi * imaginary[b]
                            let ti = wr * imaginary[b] + wi * real[b]
                            real[b] = real[a] - tr
                            imaginary[b] = imaginary[a] - ti
                            real[a] += tr
                            imaginary[a] += ti
                        }
                        start += 2 * half
                    }
                    half *= 2
                }
            }
        }
        if inverse {
            let scale = 1 / Float(n)
            for i in 0..<n {
                real[i * stride] *= scale
                imaginary[i * stride] *= scale
            }
        }
    }

    /// 2-D transform of a `count` × `count` row-major image in place.
    public func transform2D(real: UnsafeMutablePointer<Float>, imaginary: UnsafeMutablePointer<Float>, inverse: Bool = false) {
        for row in 0..<count {
            transform(real: real + row * count, imaginary: imaginary + row * count, inverse: inverse)
        }
        for column in 0..<count {
            transform(real: real + column, imaginary: imaginary + column, stride: count, inverse: inverse)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
