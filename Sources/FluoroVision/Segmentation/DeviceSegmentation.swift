import FluoroCore

/// The segmentation stage: finds the guidewire and catheter in each frame (centre lines, tips, confidence) into
/// `annotations.guidewire` and `annotations.catheter`, tracking them from frame to frame with the motion
/// estimate a motion stage upstream left in the annotations.
public final class DeviceSegmentation: Stage {
    public let name = "segment"
    public let parameters: SegmentationParameters
    private var segmenter: DeviceSegmenter?

    public init(parameters: SegmentationParameters = SegmentationParameters()) {
        self.parameters = parameters
    }

    public func prepare(for geometry: FrameGeometry) throws {
        segmenter = try DeviceSegmenter(geometry: geometry, parameters: parameters)
    }

    public func process(_ frame: Frame) throws {
        segmenter?.segment(UnsafeBufferPointer(frame.pixels), into: &frame.annotations)
    }
}
