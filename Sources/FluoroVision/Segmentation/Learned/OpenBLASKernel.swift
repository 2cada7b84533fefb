import COpenBLAS
import Foundation

/// The learned segmenter's speed depends on the kernels OpenBLAS picks when it loads. OpenBLAS 0.3.21 (Debian 12)
/// does not know newer CPUs (Intel Sapphire Rapids among them) and falls back to its generic Prescott kernels,
/// which run the network at half speed (docs/decisions/im2col-openblas-inference.md). It reads `OPENBLAS_CORETYPE`
/// only when it loads, before `main`, so an executable that finds the fallback on a CPU with AVX2 and FMA starts
/// itself again with the variable set: SkylakeX where the CPU has AVX-512 (F, BW, DQ, VL), otherwise Haswell. The
/// kernel also decides how the network's convolutions cut their products (`Convolution`).
public enum OpenBLASKernel {
    /// The core type this process should have been started with, or nil when OpenBLAS chose a kernel for this CPU,
    /// the variable is already set, or the CPU has nothing better than the fallback.
    public static func betterCoreType() -> String? {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
            let name = openblas_get_corename(), String(cString: name) == "Prescott",
            let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        guard flags.isSuperset(of: ["avx2", "fma"]) else { return nil }
        return flags.isSuperset(of: ["avx512f", "avx512bw", "avx512dq", "avx512vl"]) ? "SkylakeX" : "Haswell"
    }

    /// Whether OpenBLAS runs its AVX-512 kernels (SkylakeX, Cooperlake), which multiply a product of at most 10⁶
    /// multiply-adds with 8, 16 or 32 columns straight from its operands (its small-matrix path), where every other
    /// kernel first copies both operands into packed panels.
    static var multipliesSmallProductsUnpacked: Bool {
        guard let name = openblas_get_corename() else { return false }
        return ["SkylakeX", "Cooperlake"].contains(String(cString: name))
    }

    /// Starts this executable again (same arguments) with `OPENBLAS_CORETYPE` set when `betterCoreType()` says so;
    /// returns only when it does not (or when starting again fails, and the process goes on as it is).
    public static func restartWithBetterKernelIfNeeded() {
        guard let core = betterCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}
