import ArgumentParser
import Foundation

/// `fluoro run`'s options and flags by long name, as ArgumentParser itself describes the command (the JSON of
/// `--experimental-dump-help`), so that a configuration file accepts exactly the options the command line does.
enum RunOptionKinds {
    /// Whether a name takes a value.
    enum Kind { case flag, option }

    /// Every long name of `fluoro run` but those a configuration file cannot set (`config`, `help`, `version`).
    static let byLongName: [String: Kind] = {
        guard let description = try? JSONDecoder().decode(ToolDescription.self, from: Data(Run._dumpHelp().utf8)) else {
            preconditionFailure("ArgumentParser's description of fluoro run is not the JSON it documents")
        }
        var kinds: [String: Kind] = [:]
        for argument in description.command.arguments {
            let kind: Kind
            switch argument.kind {
            case "flag": kind = .flag
            case "option": kind = .option
            default: continue
            }
            for name in argument.names ?? [] where name.kind == "long" && !["config", "help", "version"].contains(name.name) {
                kinds[name.name] = kind
            }
        }
        return kinds
    }()

    /// The part of ArgumentParser's tool description (ArgumentParserToolInfo's `ToolInfoV0`) read here.
    private struct ToolDescription: Decodable {
        struct Command: Decodable { var arguments: [Argument] }
        struct Argument: Decodable {
            var kind: String
            var names: [Name]?
        }
        struct Name: Decodable {
            var kind: String
            var name: String
        }
        var command: Command
    }
}
