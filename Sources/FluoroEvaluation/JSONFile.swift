import FluoroCore
import Foundation

/// Reading the evaluation's JSON files (manifests, device truth) with errors that name the file.
enum JSONFile {
    /// Decodes `T` from the file at `path`; `kind` says what the file should be ("an evaluation manifest").
    static func decode<T: Decodable>(_ type: T.Type, from path: String, kind: String) throws -> T {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw FluoroError.cannotOpen(path: path, reason: "no such file or not readable")
        }
        do {
            return try JSONDecoder().decode(type, from: bytes)
        } catch {
            throw FluoroError.malformed(path: path, detail: "not \(kind): \(error)")
        }
    }
}
