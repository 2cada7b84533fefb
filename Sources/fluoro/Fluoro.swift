import ArgumentParser
import FluoroCore
import FluoroVision

/// The `fluoro` command: real-time fluoroscopy stream processing.
@main
struct Fluoro: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fluoro",
        abstract: "FluoroStream: real-time fluoroscopy stream processing.",
        version: FluoroVersion.string,
        subcommands: [
            Run.self, Evaluate.self, Devices.self, Subscribe.self, Relay.self, Inspect.self, Convert.self, Synth.self, Keys.self,
        ],
        defaultSubcommand: Run.self)

    /// Starts again with a better OpenBLAS kernel where it fell back to its generic one (`OpenBLASKernel`), then runs
    /// with the arguments of a configuration file, if one is named, before the command line's (`ConfiguredArguments`).
    static func main() {
        OpenBLASKernel.restartWithBetterKernelIfNeeded()
        do {
            main(try ConfiguredArguments.resolve(Array(CommandLine.arguments.dropFirst())))
        } catch {
            exit(withError: error)
        }
    }
}
