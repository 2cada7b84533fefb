import COpenBLAS
import CV4L2
import FluoroCore
import Foundation
import Testing

/// The system libraries the later stages build on are linked and behave (OpenBLAS for the learned
/// segmenter, libv4l2 for capture).
@Suite struct SystemLibraryTests {
    @Test func openBLASMatrixProductMatchesTheDefinition() {
        let m = 3, n = 4, k = 5
        let a = (0..<(m * k)).map { Float($0 % 7) - 3 }, b = (0..<(k * n)).map { Float($0 % 5) * 0.5 }
        var c = [Float](repeating: 0, count: m * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
        for i in 0..<m {
            for j in 0..<n {
                let expected = (0..<k).reduce(Float(0)) { $0 + a[i * k + $1] * b[$1 * n + j] }
                #expect(c[i * n + j] == expected)
            }
        }
    }

    @Test func libv4l2ReportsAMissingDevice() {
        let descriptor = fluoro_v4l2_open("/dev/video-fluorostream-missing", O_RDWR)
        #expect(descriptor == -1 && errno == ENOENT)
        #expect(fluoro_vidioc_querycap() != 0 && fluoro_vidioc_dqbuf() != fluoro_vidioc_qbuf())
    }
}

@Suite struct FrameGeometryTests {
    @Test func geometryValidatesSizeAndBits() throws {
        let geometry = try FrameGeometry(width: 1024, height: 512, format: .grey16, bitsStored: 12)
        #expect(geometry.pixelCount == 524_288 && geometry.maximumValue == 4095)
        #expect(throws: FluoroError.self) { try FrameGeometry(width: 0, height: 10, format: .grey8) }
        #expect(throws: FluoroError.self) { try FrameGeometry(width: 10, height: 10, format: .grey8, bitsStored: 12) }
    }

    @Test func recycledFrameKeepsStorageAndForgetsAnnotations() throws {
        let frame = Frame(slot: 3, geometry: try FrameGeometry(width: 8, height: 8, format: .grey8), stageCount: 2)
        let pixels = frame.pixels.baseAddress
        frame.index = 9
        frame.isSkipped = true
        frame.annotations.guidewire.append(Point2(x: 1, y: 1))
        frame.stageExit[1] = 77
        frame.recycle()
        #expect(frame.index == 0 && !frame.isSkipped && !frame.annotations.guidewire.isPresent && frame.stageExit[1] == 0)
        #expect(frame.pixels.baseAddress == pixels && frame.slot == 3)
    }
}
