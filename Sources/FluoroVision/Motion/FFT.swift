/// Radix-2 FFT tables (twiddles, bit reversal) and the column pass of `FFT2D`. Forward has no scaling;
/// inverse divides by the number of points, as numpy.fft does.
struct FFT: Sendable {
    let count: Int
    private let cosines: [Float]
    private let sines: [Float]
    private let reversed: [Int32]

    /// Tables for `count` points (a power of two, at least 2).
    init(count: Int) {
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

    /// Transforms every column of a `count` × `count` row-major image at once: each butterfly runs along whole
    /// rows, so memory is read in order and the inner loop vectorises.
    func transformColumns(real: UnsafeMutablePointer<Float>, imaginary: UnsafeMutablePointer<Float>, inverse: Bool) {
        let n = count
        for i in 0..<n {
            let j = Int(reversed[i])
            if j > i {
                for x in 0..<n {
                    swap(&real[i * n + x], &real[j * n + x])
                    swap(&imaginary[i * n + x], &imaginary[j * n + x])
                }
            }
        }
        let sign: Float = inverse ? -1 : 1
        var half = 1
        while half < n {
            let step = n / (2 * half)
            var start = 0
            while start < n {
                for k in 0..<half {
                    let wr = cosines[k * step], wi = sign * sines[k * step]
                    let ar = real + (start + k) * n, ai = imaginary + (start + k) * n
                    let br = real + (start + k + half) * n, bi = imaginary + (start + k + half) * n
                    for x in 0..<n {
                        let tr = wr * br[x] - wi * bi[x]
                        let ti = wr * bi[x] + wi * br[x]
                        br[x] = ar[x] - tr
                        bi[x] = ai[x] - ti
                        ar[x] += tr
                        ai[x] += ti
                    }
                }
                start += 2 * half
            }
            half *= 2
        }
        if inverse {
            let scale = 1 / Float(n)
            for i in 0..<(n * n) {
                real[i] *= scale
                imaginary[i] *= scale
            }
        }
    }
}

/// A 2-D FFT of square power-of-two images: columns transformed together (vectorised along rows), then rows
/// the same way between two transposes. Scratch memory is allocated once.
public final class FFT2D {
    public let size: Int
    private let fft: FFT
    private let scratchReal: UnsafeMutablePointer<Float>
    private let scratchImaginary: UnsafeMutablePointer<Float>

    public init(size: Int) {
        self.size = size
        fft = FFT(count: size)
        scratchReal = .allocate(capacity: size * size)
        scratchImaginary = .allocate(capacity: size * size)
    }

    deinit {
        scratchReal.deallocate()
        scratchImaginary.deallocate()
    }

    /// Transforms a `size` × `size` row-major image in place (inverse divides by size², as numpy.fft.ifft2).
    public func transform(real: UnsafeMutablePointer<Float>, imaginary: UnsafeMutablePointer<Float>, inverse: Bool = false) {
        if inverse {
            transpose(real: real, imaginary: imaginary)
            inverseFromTransposed(real: real, imaginary: imaginary)
        } else {
            forwardTransposed(real: real, imaginary: imaginary)
            transpose(real: real, imaginary: imaginary)
        }
    }

    /// The forward transform, left transposed (one transpose fewer): products of spectra stay consistent, and
    /// `inverseFromTransposed` takes such a product back to an image in the original orientation.
    func forwardTransposed(real: UnsafeMutablePointer<Float>, imaginary: UnsafeMutablePointer<Float>) {
        fft.transformColumns(real: real, imaginary: imaginary, inverse: false)
        transpose(real: real, imaginary: imaginary)
        fft.transformColumns(real: real, imaginary: imaginary, inverse: false)
    }

    /// The inverse of a transposed spectrum, as an image in the original orientation.
    func inverseFromTransposed(real: UnsafeMutablePointer<Float>, imaginary: UnsafeMutablePointer<Float>) {
        fft.transformColumns(real: real, imaginary: imaginary, inverse: true)
        transpose(real: real, imaginary: imaginary)
        fft.transformColumns(real: real, imaginary: imaginary, inverse: true)
    }

    private func transpose(real: UnsafeMutablePointer<Float>, imaginary: UnsafeMutablePointer<Float>) {
        transpose(real, into: scratchReal)
        transpose(imaginary, into: scratchImaginary)
        real.update(from: scratchReal, count: size * size)
        imaginary.update(from: scratchImaginary, count: size * size)
    }

    private func transpose(_ source: UnsafeMutablePointer<Float>, into target: UnsafeMutablePointer<Float>) {
        let n = size, block = 16
        for by in stride(from: 0, to: n, by: block) {
            for bx in stride(from: 0, to: n, by: block) {
                for y in by..<min(by + block, n) {
                    for x in bx..<min(bx + block, n) { target[x * n + y] = source[y * n + x] }
                }
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
