import FluoroCore
import Foundation

/// The tensors of a trained network, read from FluoroStream's weights file (written by
/// `tools/training/train_device_net.py`): the line `FSNN1`, one line of JSON whose `tensors` list gives each tensor's
/// name and shape in file order, then the tensors as little-endian float32.
struct NetworkWeights {
    let path: String
    let architecture: String
    private let tensors: [String: (shape: [Int], values: [Float])]

    private struct Header: Decodable {
        struct Tensor: Decodable {
            let name: String
            let shape: [Int]
        }
        let format: String
        let architecture: String
        let tensors: [Tensor]
    }

    /// Reads and checks the file at `path`: the magic line, the header, and that the data holds exactly the
    /// tensors the header lists.
    init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FluoroError.cannotOpen(path: path, reason: "no such file or not readable")
        }
        let magic = Data("FSNN1\n".utf8)
        guard data.starts(with: magic) else {
            throw FluoroError.malformed(path: path, detail: "not a FluoroStream weights file (no FSNN1 line)")
        }
        guard let end = data[magic.count...].firstIndex(of: UInt8(ascii: "\n")) else {
            throw FluoroError.truncated(path: path, detail: "the header line is not terminated")
        }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: data[magic.count..<end])
        } catch {
            throw FluoroError.malformed(path: path, detail: "header: \(error)")
        }
        guard header.format == "fluorostream-device-net/1" else {
            throw FluoroError.unsupported(path: path, detail: "weights format '\(header.format)'")
        }
        var offset = end + 1
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        for tensor in header.tensors {
            let count = tensor.shape.reduce(1, *)
            guard count > 0, offset + 4 * count <= data.count else {
                throw FluoroError.truncated(path: path, detail: "tensor \(tensor.name) \(tensor.shape) runs past the end")
            }
            let values = data[offset..<(offset + 4 * count)].withUnsafeBytes { raw in
                (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
            tensors[tensor.name] = (tensor.shape, values)
            offset += 4 * count
        }
        guard offset == data.count else {
            throw FluoroError.malformed(path: path, detail: "\(data.count - offset) bytes after the last tensor")
        }
        architecture = header.architecture
        self.tensors = tensors
    }

    /// The values of tensor `name`, which must have `shape`.
    func tensor(_ name: String, shape: [Int]) throws -> [Float] {
        guard let tensor = tensors[name] else {
            throw FluoroError.malformed(path: path, detail: "no tensor \(name)")
        }
        guard tensor.shape == shape else {
            throw FluoroError.malformed(path: path, detail: "tensor \(name) has shape \(tensor.shape), expected \(shape)")
        }
        return tensor.values
    }
}
