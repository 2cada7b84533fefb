import ArgumentParser

/// The arguments `fluoro` runs with. For `fluoro run … --config FILE …` they are `run`, the file's arguments
/// (`ConfigurationFile`), then the command line's, so that the command line overrides the file; any other command
/// line is used as given.
enum ConfiguredArguments {
    static func resolve(_ commandLine: [String]) throws -> [String] {
        let others = Fluoro.configuration.subcommands.map { $0._commandName }.filter { $0 != Run._commandName }
        if let first = commandLine.first, others.contains(first) { return commandLine }
        let runArguments = commandLine.first == Run._commandName ? Array(commandLine.dropFirst()) : commandLine
        guard let path = configurationPath(in: runArguments) else { return commandLine }
        let fileArguments = try ConfigurationFile(path: path).arguments
        let combined = [Run._commandName] + fileArguments + runArguments
        // An error that the file's arguments give on their own is the file's: it is reported as such, in one line.
        do {
            _ = try Fluoro.parseAsRoot(combined)
        } catch {
            let message = Fluoro.message(for: error)
            let alone = Result { try Fluoro.parseAsRoot([Run._commandName] + fileArguments) }
            if case .failure(let fileError) = alone, Fluoro.message(for: fileError) == message {
                throw ConfigurationError(path: path, detail: message)
            }
        }
        return combined
    }

    /// The value of the last `--config FILE` or `--config=FILE` before any `--`.
    private static func configurationPath(in arguments: [String]) -> String? {
        var path: String?
        var index = arguments.startIndex
        while index < arguments.endIndex, arguments[index] != "--" {
            let argument = arguments[index]
            if argument.hasPrefix("--config=") {
                path = String(argument.dropFirst("--config=".count))
            } else if argument == "--config", index + 1 < arguments.endIndex {
                path = arguments[index + 1]
                index += 1
            }
            index += 1
        }
        return path
    }
}
