import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

/// Benchmarks of the frame graph. Run through tools/bench (which preloads the allocation counter):
///   fluoro-bench ring  [--items N] [--repeats R]
///   fluoro-bench graph [--size 1024] [--frames 600] [--fps 30] [--stages 3] [--realtime 0] [--publish] [--motion] [--segment]
///                      [--method ridge|learned]
///   fluoro-bench segment [FILE.y4m | --size 1024] [--json] [--method ridge|learned]
///   fluoro-bench pipeline [--size 1024] [--frames 3000] [--fps 30] [--replay] [--method ridge|learned] [--no-split] [--no-overlap] [--json]
///                         [--realtime 0] [--run-frames 150] [--no-publish] [--max-allocations-per-frame X]
OpenBLASKernel.restartWithBetterKernelIfNeeded()

printMachineLine(json: arguments.contains("--json"))
switch arguments.first {
case "fft": fftBenchmark()
case "ring": ringBenchmark()
case "register": try registerBenchmark()
case "motion": try motionBenchmark()
case "segment": try segmentBenchmark()
case "roadmap": try roadmapBenchmark()
case "graph": try graphBenchmark()
case "pipeline": try pipelineBenchmark()
case "decode": try decodeBenchmark()
default:
    print(
        "usage: fluoro-bench ring [--items N] [--repeats R] | decode FILE.dcm... [--repeats R] | graph [--size S] [--frames N] [--fps F] [--stages K] [--realtime PRIORITY] [--publish] [--motion] [--segment [--method ridge|learned]] | motion | segment [FILE.y4m] [--method ridge|learned] | roadmap [RUN] [--size S] [--method vesselness|subtraction] | pipeline [--size S] [--frames N] [--fps F] [--run RUN] [--roadmap-method vesselness|subtraction] [--replay] [--method ridge|learned] [--no-split] [--no-overlap] [--json]"
    )
}
