import FluoroCore
import Foundation

/// Where the devices are in each frame of a run, as a person annotated them (`tools/annotation/annotate_devices.py`
/// writes these files; docs/validation.md, "Device truth"). Polylines run proximal → distal, so the last point of
/// each is the device's tip; coordinates as ../shared/EVALUATION.md defines them.
public struct DeviceTruth: Codable, Sendable {
    public var run: String
    public var width: Int
    public var height: Int
    public var frames: [Entry]

    /// One frame: the devices visible in it (absent when not visible), or `unsure` when the annotator could not
    /// tell (left out of the scores).
    public struct Entry: Codable, Sendable {
        public var frame: Int
        public var catheter: [[Float]]?
        public var guidewire: [[Float]]?
        public var unsure: Bool?

        public init(frame: Int, catheter: [Point2]? = nil, guidewire: [Point2]? = nil, unsure: Bool = false) {
            self.frame = frame
            self.catheter = catheter.map { $0.map { [$0.x, $0.y] } }
            self.guidewire = guidewire.map { $0.map { [$0.x, $0.y] } }
            self.unsure = unsure ? true : nil
        }

        /// The annotated centre line of a device, nil when it is not visible.
        public func line(_ kind: DeviceKind) -> [Point2]? {
            let points = kind == .catheter ? catheter : guidewire
            guard let points, !points.isEmpty else { return nil }
            return points.map { Point2(x: $0[0], y: $0[1]) }
        }
    }

    public init(run: String, width: Int, height: Int, frames: [Entry]) {
        self.run = run
        self.width = width
        self.height = height
        self.frames = frames
    }

    /// Reads and checks a truth file: a frame size of 1 to 65535 pixels a side, frames numbered 0, 1, 2, … and
    /// every point a pair of finite numbers.
    public static func load(_ path: String) throws -> DeviceTruth {
        let truth = try JSONFile.decode(DeviceTruth.self, from: path, kind: "a device truth file")
        guard (1...65_535).contains(truth.width), (1...65_535).contains(truth.height) else {
            throw FluoroError.malformed(path: path, detail: "frame size \(truth.width) × \(truth.height) is outside 1…65535")
        }
        for (index, entry) in truth.frames.enumerated() {
            guard entry.frame == index else {
                throw FluoroError.malformed(path: path, detail: "frame \(entry.frame) where frame \(index) was expected")
            }
            for points in [entry.catheter, entry.guidewire].compactMap({ $0 }) {
                guard points.allSatisfy({ $0.count == 2 && $0[0].isFinite && $0[1].isFinite }) else {
                    throw FluoroError.malformed(path: path, detail: "frame \(index): a point that is not a pair of finite numbers")
                }
            }
        }
        return truth
    }
}
