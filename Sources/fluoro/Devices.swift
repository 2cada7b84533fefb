import ArgumentParser
import Foundation
import FluoroCore
import FluoroSources

/// `fluoro devices`: the V4L2 capture devices, their formats, sizes and frame rates.
struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the V4L2 video capture devices (frame grabbers) with their formats, sizes and frame rates.")

    @Argument(help: "Devices to describe (default: every /dev/video*).")
    var paths: [String] = []
    @Flag(help: "Every format, also those FluoroStream does not capture.")
    var all = false
    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let named = !paths.isEmpty
        var described: [DeviceDescription] = []
        for path in named ? paths : VideoDevice.nodePaths() {
            do {
                let device = try VideoDevice(path: path)
                // Metadata and output nodes share the /dev/video names; list capture nodes only.
                guard device.isStreamingCapture || named else { continue }
                described.append(DeviceDescription(device))
            } catch let error as FluoroError {
                if named { throw error }
                FileHandle.standardError.write(Data("\(error)\n".utf8))
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(described), as: UTF8.self))
            return
        }
        if described.isEmpty { print("no V4L2 video capture devices (/dev/video*)") }
        for device in described {
            print(
                "\(device.path): \(device.card) (driver \(device.driver), \(device.busInfo))"
                    + (device.capture ? "" : " — not a streaming capture device"))
            let shown = device.formats.filter { all || $0.captured }
            for format in shown {
                print(
                    "  \(format.name.padding(toLength: 8, withPad: " ", startingAt: 0))"
                        + "\(format.description.padding(toLength: 24, withPad: " ", startingAt: 0))"
                        + format.sizes.joined(separator: "; "))
            }
            let others = device.formats.filter { !$0.captured }.count
            if !all, others > 0 { print("  (\(others) other formats FluoroStream does not capture; --all lists them)") }
        }
    }
}

/// One device as `fluoro devices` reports it.
struct DeviceDescription: Encodable {
    struct Format: Encodable {
        var name: String
        var description: String
        var emulated: Bool
        /// Whether FluoroStream captures this format.
        var captured: Bool
        var sizes: [String]
    }

    var path: String, driver: String, card: String, busInfo: String
    /// A video capture node with streaming I/O.
    var capture: Bool
    var formats: [Format]

    init(_ device: VideoDevice) {
        path = device.path
        driver = device.driver
        card = device.card
        busInfo = device.busInfo
        capture = device.isStreamingCapture
        formats = device.formats().map {
            Format(
                name: $0.name, description: $0.description, emulated: $0.emulated, captured: $0.isCapturable,
                sizes: $0.sizes.map(\.description))
        }
    }

    enum CodingKeys: String, CodingKey {
        case path, driver, card, busInfo = "bus_info", capture, formats
    }
}
