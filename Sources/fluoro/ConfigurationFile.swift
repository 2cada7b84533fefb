import ArgumentParser
import FluoroCore
import Foundation
import Yams

/// A `fluoro run --config FILE.yaml` file: a YAML mapping whose keys are `fluoro run`'s long option names
/// (`segmenter: ridge`, `publish: tcp://127.0.0.1:5555`, `roadmap: true`, `source: run.dcm`). It stands for the
/// command-line arguments it names, which go before the real command line: every option can be set in it, each
/// value is parsed and validated exactly as on the command line, and an option given on the command line wins
/// (for an option given twice, the last value counts). A flag takes true (given) or false (not given).
struct ConfigurationFile {
    /// The arguments the file stands for, in its order (`--segmenter=ridge`, `--roadmap`, …).
    let arguments: [String]

    /// Reads and checks the file at `path`; every error names the file and, where one is at fault, the key.
    init(path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read as UTF-8 text" : "no such file"
            throw ConfigurationError(path: path, detail: reason)
        }
        let document: Node?
        do {
            document = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError(path: path, detail: Self.summary(of: error))
        }
        guard let document else {
            arguments = []
            return
        }
        guard let mapping = document.mapping else {
            throw ConfigurationError(path: path, detail: "expected a mapping of option names to values (e.g. `segmenter: ridge`)")
        }
        let kinds = RunOptionKinds.byLongName
        var arguments: [String] = []
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                throw ConfigurationError(path: path, detail: "a key that is not a name at line \(keyNode.mark?.line ?? 0)")
            }
            guard let kind = kinds[key] else {
                throw ConfigurationError(path: path, detail: "unknown key '\(key)' (the keys are fluoro run's long option names)")
            }
            guard let scalar = value.scalar, value.null == nil else {
                throw ConfigurationError(path: path, detail: "key '\(key)' needs a single value")
            }
            switch kind {
            case .flag:
                guard let given = Bool.construct(from: scalar) else {
                    throw ConfigurationError(path: path, detail: "key '\(key)' is a flag: true or false, got '\(scalar.string)'")
                }
                if given { arguments.append("--" + key) }
            case .option:
                arguments.append("--\(key)=\(scalar.string)")
            }
        }
        self.arguments = arguments
    }

    /// Libyaml's error in one line: position, problem and context.
    private static func summary(of error: YamlError) -> String {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            return "line \(mark.line), column \(mark.column): \(problem)" + (context.map { " (\($0.text))" } ?? "")
        case let .duplicatedKeysInMapping(duplicates, _):
            return "key \(duplicates.sorted().joined(separator: ", ")) given twice"
        default:
            return "\(error)".split(separator: "\n").joined(separator: " ")
        }
    }
}

/// A configuration file that cannot be used, in one line naming the file.
struct ConfigurationError: Error, CustomStringConvertible {
    let path: String
    let detail: String

    var description: String { "\(path): \(detail)".printable }
}
