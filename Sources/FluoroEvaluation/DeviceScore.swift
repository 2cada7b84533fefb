import FluoroCore

/// What the pipeline reported for the devices of one frame (nil: not reported).
public struct ReportedDevices: Sendable {
    public var catheter: ReportedDevice?
    public var guidewire: ReportedDevice?

    public init(catheter: ReportedDevice? = nil, guidewire: ReportedDevice? = nil) {
        self.catheter = catheter
        self.guidewire = guidewire
    }

    /// A copy of what a frame's annotations carry (new storage: the frame's own is reused by the next frame).
    public init(_ annotations: FrameAnnotations) {
        func copy(_ trace: DeviceTrace) -> ReportedDevice? {
            trace.isPresent ? ReportedDevice(centerline: trace.centerline.map { $0 }, tip: trace.tip) : nil
        }
        self.init(catheter: copy(annotations.catheter), guidewire: copy(annotations.guidewire))
    }

    public func device(_ kind: DeviceKind) -> ReportedDevice? { kind == .catheter ? catheter : guidewire }
}

/// One device's reported centre line (proximal → tip) and tip.
public struct ReportedDevice: Sendable {
    public var centerline: [Point2]
    public var tip: Point2?
    public init(centerline: [Point2], tip: Point2?) {
        self.centerline = centerline
        self.tip = tip
    }
}

/// How device segmentation did on one run against annotated truth (../shared/EVALUATION.md, "Devices"). Frames the
/// annotator marked unsure are left out.
public struct DeviceScore: Codable, Sendable, Equatable {
    public var guidewire: KindScore?
    public var catheter: KindScore?
    /// Of the reported line length that lies within 2 px of an annotated device, the share whose label (catheter
    /// or guidewire) is that of a device it lies on; nil when no reported point lies on one. Where a wire runs
    /// inside a catheter both labels are right.
    public var labelCorrectShare: Double?
    /// Frames with no device in the truth, and the share of them where a device was reported.
    public var deviceFreeFrames: Int
    public var phantomRate: Double?
    public var unsureFrames: Int

    /// The scores of one kind of device over the frames whose truth shows it.
    public struct KindScore: Codable, Sendable, Equatable {
        public var frames: Int
        /// Means over the frames of the per-frame precision, recall and F1 (a frame with nothing reported scores 0).
        public var precisionAt2: Double
        public var recallAt2: Double
        public var f1At2: Double
        public var f1At3: Double
        /// The median distance from the reported tip to the annotated one, a frame without a reported tip counting
        /// as a miss (an infinite error); nil when the median is a miss (half the frames or more without a tip).
        public var tipMedian: Double?
        /// The share of frames with a reported tip, and with one within 8 px of the annotated tip.
        public var tipReported: Double
        public var tipWithin8: Double
        /// Of the annotated line's length, the share within 2 px of a reported line of the same kind.
        public var labelAgreement: Double

        enum CodingKeys: String, CodingKey {
            case frames, precisionAt2 = "precision_2px", recallAt2 = "recall_2px", f1At2 = "f1_2px", f1At3 = "f1_3px"
            case tipMedian = "tip_median_px", tipReported = "tip_reported", tipWithin8 = "tip_within_8px"
            case labelAgreement = "label_agreement"
        }
    }

    enum CodingKeys: String, CodingKey {
        case guidewire, catheter, labelCorrectShare = "label_correct_share", deviceFreeFrames = "device_free_frames"
        case phantomRate = "phantom_rate", unsureFrames = "unsure_frames"
    }

    /// Scores the reported devices of a run's frames against its truth (frames beyond either are not scored).
    public static func score(truth: DeviceTruth, reported: [ReportedDevices]) -> DeviceScore {
        let frames = Array(zip(truth.frames, reported))
        var score = DeviceScore(deviceFreeFrames: 0, unsureFrames: frames.filter { $0.0.unsure == true }.count)
        let scored = frames.filter { $0.0.unsure != true }

        for kind in DeviceKind.allCases {
            var precision = 0.0, recall = 0.0, f1At2 = 0.0, f1At3 = 0.0, tips: [Double] = []
            var annotatedPoints = 0, agreeingPoints = 0
            for (entry, report) in scored {
                guard let line = entry.line(kind) else { continue }
                let truthPoints = CenterlineMatch.resample(line)
                let predicted = CenterlineMatch.resample(report.device(kind)?.centerline ?? [])
                let at2 = CenterlineMatch.f1(predicted: predicted, truth: truthPoints, tolerance: 2)
                precision += at2.precision
                recall += at2.recall
                f1At2 += at2.f1
                f1At3 += CenterlineMatch.f1(predicted: predicted, truth: truthPoints, tolerance: 3).f1
                annotatedPoints += truthPoints.count
                agreeingPoints += CenterlineMatch.matched(truthPoints, in: .init(predicted), tolerance: 2)
                let tip = line[line.count - 1]
                if let reportedTip = report.device(kind)?.tip {
                    let dx = Double(reportedTip.x - tip.x), dy = Double(reportedTip.y - tip.y)
                    tips.append((dx * dx + dy * dy).squareRoot())
                } else {
                    tips.append(.infinity)
                }
            }
            guard !tips.isEmpty else { continue }
            let count = Double(tips.count)
            tips.sort()
            let median = tips.count % 2 == 1 ? tips[tips.count / 2] : (tips[tips.count / 2 - 1] + tips[tips.count / 2]) / 2
            let kindScore = KindScore(
                frames: tips.count, precisionAt2: precision / count, recallAt2: recall / count, f1At2: f1At2 / count,
                f1At3: f1At3 / count, tipMedian: median.isFinite ? median : nil,
                tipReported: Double(tips.filter(\.isFinite).count) / count, tipWithin8: Double(tips.filter { $0 <= 8 }.count) / count,
                labelAgreement: Double(agreeingPoints) / Double(max(annotatedPoints, 1)))
            if kind == .catheter { score.catheter = kindScore } else { score.guidewire = kindScore }
        }

        var onDevice = 0, labelledRight = 0, phantoms = 0
        for (entry, report) in scored {
            let catheter = entry.line(.catheter).map { CenterlineMatch.PointSet(CenterlineMatch.resample($0)) }
            let guidewire = entry.line(.guidewire).map { CenterlineMatch.PointSet(CenterlineMatch.resample($0)) }
            if catheter == nil && guidewire == nil {
                score.deviceFreeFrames += 1
                if report.catheter != nil || report.guidewire != nil { phantoms += 1 }
                continue
            }
            for kind in DeviceKind.allCases {
                for point in CenterlineMatch.resample(report.device(kind)?.centerline ?? []) {
                    let onCatheter = catheter?.contains(within: 2, of: point) ?? false
                    let onGuidewire = guidewire?.contains(within: 2, of: point) ?? false
                    guard onCatheter || onGuidewire else { continue }
                    onDevice += 1
                    if (kind == .catheter && onCatheter) || (kind == .guidewire && onGuidewire) { labelledRight += 1 }
                }
            }
        }
        score.labelCorrectShare = onDevice > 0 ? Double(labelledRight) / Double(onDevice) : nil
        score.phantomRate = score.deviceFreeFrames > 0 ? Double(phantoms) / Double(score.deviceFreeFrames) : nil
        return score
    }
}
