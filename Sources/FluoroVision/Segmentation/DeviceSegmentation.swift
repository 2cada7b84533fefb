import FluoroCore
import FluoroConcurrency

/// The segmentation stage: finds the guidewire and catheter in each frame (centre lines, tips, confidence) into
/// `annotations.guidewire` and `annotations.catheter`, tracking them from frame to frame with the motion
/// estimate a motion stage upstream left in the annotations. With `splitting` (the default) a helper thread
/// shares each frame's filtering, so the frame leaves the stage sooner.
public final class DeviceSegmentation: Stage {
    public let name = "segment"
    public let parameters: SegmentationParameters
    public let splitting: Bool
    private var segmenter: DeviceSegmenter?

    public init(parameters: SegmentationParameters = SegmentationParameters(), splitting: Bool = true) {
        self.parameters = parameters
        self.splitting = splitting
    }

    public func prepare(for geometry: FrameGeometry) throws {
        segmenter = try DeviceSegmenter(
            geometry: geometry, parameters: parameters,
            splitter: splitting ? WorkSplitter(name: "segment-helper") : nil)
    }

    public func process(_ frame: Frame) throws {
        segmenter?.segment(UnsafeBufferPointer(frame.pixels), into: &frame.annotations)
    }
}
