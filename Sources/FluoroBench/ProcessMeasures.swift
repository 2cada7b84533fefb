import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

/// A subscriber in another process reads and discards every frame, as a display would.
func startDrainingSubscriber(_ endpoint: String) {
    let script =
        "import zmq\ns = zmq.Context().socket(zmq.SUB)\ns.connect('\(endpoint)')\ns.setsockopt(zmq.SUBSCRIBE, b'')\n"
        + "s.setsockopt(zmq.RCVTIMEO, 5000)\ntry:\n    while True: s.recv_multipart()\nexcept zmq.Again: pass\n"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [ProcessInfo.processInfo.environment["FLUORO_PYTHON"] ?? "python3", "-c", script]
    process.environment = ProcessInfo.processInfo.environment.filter { $0.key != "LD_PRELOAD" }
    do { try process.run() } catch { fatalError("cannot start the subscriber: \(error)") }
}

/// The process's resident memory (`VmRSS`, or another /proc/self/status field such as `VmHWM`, the peak) in MiB.
func residentMegabytes(field: String = "VmRSS:") -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
    else { return 0 }
    return kilobytes / 1024
}
