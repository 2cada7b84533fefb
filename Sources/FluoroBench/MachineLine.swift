import Foundation

/// One line naming the machine a benchmark ran on (CPU model, cores, vector extensions, kernel), printed before
/// the figures so that every figure carries it (on standard error with `--json`).
func printMachineLine(json: Bool) {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let lines = info.split(separator: "\n")
    let model =
        lines.first { $0.hasPrefix("model name") }.map { String($0.split(separator: ":", maxSplits: 1).last ?? "") }?
        .trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
    let cores = lines.filter { $0.hasPrefix("processor") }.count
    let flags = Set((lines.first { $0.hasPrefix("flags") } ?? "").split(separator: " ").map(String.init))
    let vectors = flags.contains("avx512f") ? "AVX-512" : flags.contains("avx2") ? "AVX2" : "SSE"
    var system = utsname()
    uname(&system)
    let kernel = withUnsafeBytes(of: system.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let line = "machine: \(model), \(cores) cores, \(vectors), Linux \(kernel)\n"
    FileHandle(fileDescriptor: json ? 2 : 1).write(Data(line.utf8))
}
