import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

func fftBenchmark() {
    let size = option("--size", 256)
    let fft = FFT2D(size: size)
    let real = UnsafeMutablePointer<Float>.allocate(capacity: size * size),
        imaginary = UnsafeMutablePointer<Float>.allocate(capacity: size * size)
    for i in 0..<(size * size) { real[i] = Float(i % 7); imaginary[i] = 0 }
    var times: [Double] = []
    for _ in 0..<50 {
        let start = MonotonicClock.now()
        fft.transform(real: real, imaginary: imaginary)
        times.append(Double(MonotonicClock.now() - start) / 1e6)
    }
    print(String(format: "fft %dx%d: median %.3f ms [%f]", size, size, percentile(times, 50), real[1]))
}
