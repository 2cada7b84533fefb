import FluoroVision
import Foundation
import Testing

/// numpy, from the project's .venv (tools/setup makes it) or FLUORO_PYTHON.
func numpy(_ script: String, input: [Float]) throws -> [Float] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let python = ProcessInfo.processInfo.environment["FLUORO_PYTHON"] ?? root.appendingPathComponent(".venv/bin/python").path
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fluoro-numpy-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let inputFile = directory.appendingPathComponent("in.f32"), outputFile = directory.appendingPathComponent("out.f32")
    try input.withUnsafeBytes { try Data($0).write(to: inputFile) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [
        "-c",
        "import numpy as np, sys\nx = np.fromfile(sys.argv[1], dtype='<f4')\n" + script
            + "\nnp.asarray(y, dtype='<f4').tofile(sys.argv[2])", inputFile.path, outputFile.path,
    ]
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw NumpyFailure(python: python, status: process.terminationStatus) }
    let data = try Data(contentsOf: outputFile)
    return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

/// The reference computation could not run (is .venv set up? run tools/setup).
struct NumpyFailure: Error, CustomStringConvertible {
    let python: String
    let status: Int32
    var description: String { "\(python) exited with \(status) running the numpy reference; run tools/setup" }
}

@Suite struct FFTTests {
    @Test(arguments: [8, 64, 256])
    func twoDimensionalTransformMatchesNumpy(size: Int) throws {
        var random = SystemRandomNumberGenerator()
        let count = size * size
        let input = (0..<(2 * count)).map { _ in Float.random(in: -1...1, using: &random) }  // real, then imaginary
        var real = Array(input[0..<count]), imaginary = Array(input[count...])
        let fft = FFT2D(size: size)
        fft.transform(real: &real, imaginary: &imaginary)
        let reference = try numpy(
            """
            n = int(round((x.size // 2) ** 0.5)); z = np.fft.fft2((x[:n*n] + 1j * x[n*n:]).astype(np.complex128).reshape(n, n))
            y = np.concatenate([z.real.ravel(), z.imag.ravel()])
            """, input: input)
        let scale = Float(size)  // values grow like sqrt(count)
        var worst: Float = 0
        for i in 0..<count {
            worst = max(worst, abs(real[i] - reference[i]), abs(imaginary[i] - reference[count + i]))
        }
        #expect(worst / scale < 1e-4, "largest difference \(worst) for \(size)x\(size)")
        // The inverse gives the input back.
        fft.transform(real: &real, imaginary: &imaginary, inverse: true)
        let roundTrip = (0..<count).map { max(abs(real[$0] - input[$0]), abs(imaginary[$0] - input[count + $0])) }.max()!
        #expect(roundTrip < 1e-5)
    }
}
