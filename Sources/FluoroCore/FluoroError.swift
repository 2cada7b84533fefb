/// Every failure the pipeline reports, each naming the file, device, address or option at fault.
public enum FluoroError: Error, Equatable, CustomStringConvertible {
    /// The file does not exist or cannot be opened.
    case cannotOpen(path: String, reason: String)
    /// The input ended before a complete header or frame.
    case truncated(path: String, detail: String)
    /// The input is not in the format it claims to be.
    case malformed(path: String, detail: String)
    /// The input is valid but uses something this build does not handle.
    case unsupported(path: String, detail: String)
    /// Reading failed at the operating-system level.
    case readFailed(path: String, reason: String)
    /// Writing failed at the operating-system level.
    case writeFailed(path: String, reason: String)
    /// A capture device refused a setting or failed while streaming (busy, stopped delivering, disconnected).
    case deviceFailed(device: String, detail: String)
    /// A publisher address could not be bound.
    case cannotBind(address: String, reason: String)
    /// The messaging layer failed.
    case messaging(detail: String)
    /// A command-line option or parameter is out of range.
    case invalidArgument(String)
    /// A stage failed while processing a frame.
    case stageFailed(stage: String, frame: Int, detail: String)
    /// A data file that ships with FluoroStream is in none of the folders where it is looked for.
    case missingResource(name: String, folders: [String])

    /// The one-line message; bytes from files or peers that are not printable are shown escaped.
    public var description: String { message.printable }

    private var message: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .truncated(path, detail): return "\(path): truncated: \(detail)"
        case let .malformed(path, detail): return "\(path): malformed: \(detail)"
        case let .unsupported(path, detail): return "\(path): unsupported: \(detail)"
        case let .readFailed(path, reason): return "\(path): read failed: \(reason)"
        case let .writeFailed(path, reason): return "\(path): write failed: \(reason)"
        case let .deviceFailed(device, detail): return "\(device): \(detail)"
        case let .cannotBind(address, reason): return "cannot bind \(address): \(reason)"
        case let .messaging(detail): return "messaging: \(detail)"
        case let .invalidArgument(detail): return "invalid argument: \(detail)"
        case let .stageFailed(stage, frame, detail): return "stage \(stage) failed on frame \(frame): \(detail)"
        case let .missingResource(name, folders):
            return "\(name): missing: looked in \(folders.joined(separator: " and ")) (install with tools/install PREFIX)"
        }
    }
}

extension String {
    /// The text with control characters (including NUL, newlines and escape sequences) shown as `\u{…}` escapes, so
    /// a value read from a file or a peer cannot break a one-line message or drive the terminal.
    public var printable: String {
        var result = ""
        for scalar in unicodeScalars {
            if scalar.properties.generalCategory == .control || scalar == "\u{FFFD}" {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
