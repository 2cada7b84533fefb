/// A processing step of the graph (registration, segmentation, overlay, publishing, ...).
///
/// A stage never sees a thread, a ring or a clock: the graph calls it on the stage's own thread, one
/// frame at a time, and the frame may be changed in place. A stage object is owned by exactly one graph
/// thread once the graph starts. `process` must not allocate in steady state: allocate in `prepare`.
public protocol Stage: AnyObject {
    /// A short name for statistics and errors (e.g. "motion", "publish").
    var name: String { get }
    /// Called once when the graph is built, before any frame: allocate working memory here.
    func prepare(for geometry: FrameGeometry) throws
    /// Processes one frame in place.
    func process(_ frame: Frame) throws
    /// Called once after the last frame, on the stage's thread (flush, close sockets).
    func finish() throws
}

extension Stage {
    public func prepare(for geometry: FrameGeometry) throws {}
    public func finish() throws {}
}

/// Where frames come from: a recorded run, a generator or a capture device.
///
/// A source is called from the graph's source thread only.
public protocol FrameSource: AnyObject {
    /// What the source reads, for messages and summaries (a path, a device, "synthetic").
    var name: String { get }
    /// Size and format of every frame the source produces.
    var geometry: FrameGeometry { get }
    /// Seconds between frames in the recording, when known; replay paces by it.
    var frameInterval: Double? { get }
    /// Number of frames, when known in advance.
    var frameCount: Int? { get }
    /// Pixel spacing and C-arm position, as far as the source knows them.
    var imaging: ImagingGeometry { get }
    /// Fills `frame.pixels`, `frame.index` and `frame.sourceTime` with the next frame, and `frame.availableAt`
    /// when the source knows when the frame was captured (a device's buffer timestamp; otherwise the graph
    /// sets it). Returns false at the end of the input; throws on bad input.
    func read(into frame: Frame) throws -> Bool
    /// Asks a source that may block in `read` (a capture device) to return soon; called from another thread
    /// when the run is stopped.
    func cancel()
}

extension FrameSource {
    public func cancel() {}
    public var imaging: ImagingGeometry { .unknown }
}
