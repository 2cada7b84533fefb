import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

/// Decodes every frame of each file `--repeats` times on one thread; prints the median time per frame.
func decodeBenchmark() throws {
    let repeats = option("--repeats", 5)
    for path in arguments.dropFirst().filter({ !$0.hasPrefix("--") && Int($0) == nil }) {
        let source = try DICOMSource(path: path)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        var perFrame: [Double] = []
        var checksum = 0
        for _ in 0..<repeats {
            let start = MonotonicClock.now()
            for index in 0..<source.file.numberOfFrames {
                try source.decode(frameAt: index, into: frame.pixels)
                checksum &+= Int(frame.pixels[index % frame.pixels.count])
            }
            perFrame.append(Double(MonotonicClock.now() - start) / 1e6 / Double(source.file.numberOfFrames))
        }
        // One more pass with the allocation counter on (it counts only under tools/bench's LD_PRELOAD).
        MallocInterposerSwift.initialize()
        MallocInterposerSwift.hook()
        for index in 0..<source.file.numberOfFrames { try source.decode(frameAt: index, into: frame.pixels) }
        MallocInterposerSwift.unhook()
        let allocations = Double(MallocInterposerSwift.getStatistics().mallocCount) / Double(source.file.numberOfFrames)
        let median = percentile(perFrame, 50)
        print(
            String(
                format: "decode %@: %d frames %@, %@: median %.3f ms per frame (%.0f frames/s), %.1f allocations per frame [checksum %d]",
                path, source.file.numberOfFrames, source.geometry.description, source.file.transferSyntax.name,
                median, 1000 / median, allocations, checksum))
    }
}
