/// How the segmenter finds device pixels.
public enum SegmentationMethod: String, Sendable, CaseIterable {
    /// A multi-scale Hessian ridge filter (Frangi-type).
    case ridge
    /// A small U-Net trained on synthetic runs (`tools/training/train_device_net.py`), run with OpenBLAS.
    case learned
}

/// Settings of the device segmenter. Lengths are in pixels of the working level (the frame box-averaged to at most
/// `levelSide` a side).
public struct SegmentationParameters: Sendable {
    /// Ridge filter or learned network; tracing, splitting and tracking are shared.
    public var method = SegmentationMethod.ridge
    /// The learned network's weights file; nil for the bundled one.
    public var weightsPath: String?
    /// Longest side of the working level (the learned network was trained on 512).
    public var levelSide = 512
    /// Gaussian scales of the ridge filter: one for the wire, one for the catheter.
    public var scales: [Float] = [1.0, 2.0]
    /// Ridge filter: hysteresis thresholds, in multiples of the response's 90th percentile over the frame (its
    /// background).
    public var highThreshold: Float = 3.5
    public var lowThreshold: Float = 1.5
    /// Learned network: hysteresis thresholds on the centre-line probability.
    public var learnedHighThreshold: Float = 0.5
    public var learnedLowThreshold: Float = 0.2
    /// Learned network: the catheter probability along the line before the catheter's tip exceeds the one after by
    /// at least this much.
    public var learnedCatheterMargin: Float = 0.3
    /// Learned network: its catheter probability falls through one half about a catheter radius beyond the
    /// catheter's centre-line end (it sees the rounded end); the tip is moved back this far (chosen for the
    /// committed weights on the tuning seeds 3001–3010 at 512² and 3001–3004 at 1024²:
    /// docs/algorithms/segmentation.md, "Parameters").
    public var learnedCatheterTipBack: Float = 3.5
    /// Learned network: the wire's tip is where its centre-line probability falls below this (measured on the
    /// tuning seeds 3001 and 3003).
    public var learnedTipProbability: Float = 0.4
    /// Learned network: while tracking, the wire goes on beyond the predicted corridor over at most this many points
    /// in a row below `learnedTipProbability`.
    public var learnedTipGap = 4
    /// A "wire" beyond the catheter's tip whose profile is at least this share of the catheter's width (full width
    /// at half maximum across the line) is the catheter's end, not a wire (on fresh detections: synthetic wires
    /// 0.58–0.75 of their catheter's width, diagnostic catheters 1.00; the blurred wire of the real run
    /// XA-MONO2-8-12x 0.91 of its balloon catheter's, measured along the classic trace).
    public var wireNarrowing: Float = 0.95
    /// A "wire" whose profile is at least this wide (level pixels, full width at half maximum) is a catheter, with
    /// or without a catheter before it (synthetic wires 2.0–2.7, diagnostic catheters 4.2–4.5; XA-MONO2-8-12x's
    /// wire 2.7 along the learned line, 3.3 along the classic trace; real catheters of the tuning patients 6–9.5 at
    /// 512², measured across the annotated centre lines).
    public var catheterWidthFloor: Float = 3.8
    /// A fresh detection prefers a line that enters the field: one end this close (level pixels) to the image's
    /// border or the collimator (a catheter enters the field from outside it; a spine edge, a rib or a vessel need
    /// not)...
    public var entryDistance: Float = 12
    /// ...and the other end this many times as far in, and at least twice `entryDistance` (a line along the
    /// border or a collimator's edge does not enter).
    public var entryDepth: Float = 3
    /// Shortest centre line reported as a device.
    public var minimumLength = 24
    /// A guidewire is reported only when it reaches at least this far beyond the catheter's tip: the end of a
    /// catheter with no wire in it fades like a narrowing, and the split would report its last few pixels as a wire.
    public var minimumWireExtension = 8
    /// How many of the strongest ridge pixels start a trace when nothing is tracked (more are tried when
    /// tracking: points of the predicted centre line).
    public var seeds = 12
    /// How far a tip may move along the centre line between frames before tracking holds it back (the classic
    /// path's wire, and both paths' catheter).
    public var maximumTipStep: Float = 8
    /// When tracking, a line that covers less than this share of the predicted centre line means the device
    /// was lost: it is searched for afresh.
    public var minimumTrackCoverage: Float = 0.5
    /// Ridge filter: the catheter's tip is where the line's contrast (its log attenuation against the level 5 pixels
    /// to either side) drops by at least this much from the part before (the catheter, with the wire in it) to the
    /// part after (the wire)...
    public var catheterContrastDrop: Float = 0.05
    /// ...to at most this share of it (chosen on the tuning seeds and on XA-MONO2-8-12x, whose wire keeps about
    /// half of its atherectomy catheter's contrast: 0.6 missed that catheter's tip, 0.8 split the diagnostic seed
    /// 3402's catheter where its contrast merely wavers).
    public var wireContrastShare: Float = 0.7
    /// Ridge filter: a part beyond the catheter's tip whose mean contrast reaches this share of the catheter's last
    /// 40 points is a contrast-filled vessel the trace ran on into, not a wire, and is cut off. On rubo-0002 such
    /// parts (the opacified artery at the ostium) keep 0.8–1.0 of it; XA-MONO2-8-12x's real wire, blurred on 8 bits,
    /// keeps up to about 0.75–0.8 of its atherectomy housing's (0.75 cut it in half the frames); 0.78–0.87 gave the
    /// same figures on both runs and on the synthetic seeds, this is the middle (1, its first form: a vessel darker
    /// than the catheter's end).
    public var vesselContrastShare: Float = 0.82
    /// Ridge filter: the width measure along a line is the widest scale's share of the widest and narrowest
    /// scales' responses (0.4 on the synthetic wire, 0.5 on the catheter, 0.7 and more on a contrast-filled
    /// vessel). A catheter's share exceeds the wire's by at least this much: where the contrast shows no
    /// catheter's tip, a line whose mean share is at most ½ less half this is all wire, otherwise all catheter;
    /// and while tracking, see `DeviceSegmenter.holdTips`.
    public var catheterWidening: Float = 0.05
    /// A contrast-filled vessel that the trace runs into beyond the wire's tip exceeds the wire's share by at
    /// least this much.
    public var vesselWidening: Float = 0.15

    public init() {}
}
