import Foundation

/// Where FluoroStream's data files (the learned segmenter's weights, the bundled recording) are found: relative to
/// the running executable, so that an installed or moved binary finds its own whatever the working folder. The
/// installed layout (`tools/install PREFIX`) is PREFIX/bin/fluoro beside PREFIX/share/fluorostream/; the build
/// layout is SwiftPM's resource bundle beside the binary in .build/CONFIGURATION/.
public enum ResourceFolder {
    /// The folder holding the running executable, symbolic links resolved (from /proc/self/exe).
    public static let executableFolder: URL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent()

    /// The installed layout's data folder: ../share/fluorostream from the executable's folder.
    public static var installed: String {
        executableFolder.deletingLastPathComponent().appendingPathComponent("share/fluorostream").standardized.path
    }

    /// The path of the file `name`: in the installed folder, else in SwiftPM's resource bundle `bundle` (e.g.
    /// FluoroStream_FluoroVision.resources) beside the executable. Throws naming both folders when neither holds it.
    public static func path(of name: String, buildBundle bundle: String) throws -> String {
        let folders = [installed, executableFolder.appendingPathComponent(bundle).path]
        for folder in folders {
            let path = folder + "/" + name
            if FileManager.default.isReadableFile(atPath: path) { return path }
        }
        throw FluoroError.missingResource(name: name, folders: folders)
    }
}
