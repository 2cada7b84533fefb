import FluoroCore

/// How motion compensation did on one run: mean residual ratios (with the estimated motion ÷ without; below 1
/// helps) against the reference the program used and between consecutive frames, and the share of frames
/// reported `lost`.
public struct MotionScore: Codable, Sendable, Equatable {
    public var ratioToReference: Double?
    public var ratioConsecutive: Double?
    public var pairsToReference: Int
    public var pairsConsecutive: Int
    public var lostShare: Double

    enum CodingKeys: String, CodingKey {
        case ratioToReference = "ratio_to_reference", ratioConsecutive = "ratio_consecutive"
        case pairsToReference = "pairs_to_reference", pairsConsecutive = "pairs_consecutive", lostShare = "lost_share"
    }

    /// Scores the frames of a run and their motion estimates. The reference of frame i is frame 0, or the last
    /// frame at or before it reported `lost` (the program restarts from it).
    public static func score(pixels: [[UInt16]], motion: [MotionEstimate], width: Int, height: Int) -> MotionScore {
        let logs = pixels.map(MotionResidual.logarithm)
        var reference = 0
        var residuals: [Int: MotionResidual] = [:]
        func measure(_ referenceIndex: Int) -> MotionResidual {
            if let known = residuals[referenceIndex] { return known }
            let made = MotionResidual(reference: pixels[referenceIndex], width: width, height: height)
            residuals[referenceIndex] = made
            return made
        }
        var toReference: [Double] = [], consecutive: [Double] = []
        var lost = 0
        for index in pixels.indices {
            let estimate = motion[index]
            if estimate.state == .lost {
                lost += 1
                reference = index
                continue
            }
            guard index > reference, estimate.state == .tracking else { continue }
            let field = measure(reference)
            if let with = field.residual(live: logs[index], reference: logs[reference], shift: (estimate.dx, estimate.dy)),
                let without = field.residual(live: logs[index], reference: logs[reference], shift: (0, 0)), without > 0
            {
                toReference.append(with / without)
            }
            // Consecutive frames: the shift between them is the difference of their shifts to the same reference.
            let previous = motion[index - 1]
            let previousShift: (dx: Float, dy: Float)? =
                index - 1 == reference ? (0, 0) : previous.state == .tracking ? (previous.dx, previous.dy) : nil
            if let previousShift {
                let local = measure(index - 1)
                let shift = (estimate.dx - previousShift.dx, estimate.dy - previousShift.dy)
                if let with = local.residual(live: logs[index], reference: logs[index - 1], shift: shift),
                    let without = local.residual(live: logs[index], reference: logs[index - 1], shift: (0, 0)), without > 0
                {
                    consecutive.append(with / without)
                }
            }
        }
        func mean(_ values: [Double]) -> Double? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) }
        return MotionScore(
            ratioToReference: mean(toReference), ratioConsecutive: mean(consecutive), pairsToReference: toReference.count,
            pairsConsecutive: consecutive.count, lostShare: pixels.isEmpty ? 0 : Double(lost) / Double(pixels.count))
    }
}

/// How the roadmap did on one run, against vessel masks (grey > 127 is vessel) on the contrast frames (mask area at
/// least half the run's largest): IoU, precision and recall of the map as drawn, whether and when it became active,
/// and why not when it did not.
public struct RoadmapScore: Codable, Sendable, Equatable {
    public var contrastFrames: Int
    /// Contrast frames on which the map was drawn.
    public var drawnFrames: Int
    /// Means over the contrast frames (a frame without a drawn map scores 0 IoU and recall).
    public var iou: Double
    public var recall: Double
    /// Mean over the contrast frames with a drawn map; nil when there is none.
    public var precision: Double?
    /// The first frame with the roadmap `active`, if any.
    public var activeFrame: Int?
    /// When it never became active: its last state (and invalidation).
    public var notActiveBecause: String?

    enum CodingKeys: String, CodingKey {
        case contrastFrames = "contrast_frames", drawnFrames = "drawn_frames", iou, recall, precision
        case activeFrame = "active_frame", notActiveBecause = "not_active_because"
    }

    public static func score(masks: [[UInt8]], roadmap: [RoadmapAnnotation], layers: [[UInt8]?]) -> RoadmapScore {
        let frames = min(masks.count, roadmap.count)
        let areas = masks.prefix(frames).map { mask in mask.reduce(0) { $0 + ($1 > 127 ? 1 : 0) } }
        let largest = areas.max() ?? 0
        var contrast = 0, drawn = 0
        var iou = 0.0, recall = 0.0, precision = 0.0
        for index in 0..<frames where largest > 0 && 2 * areas[index] >= largest {
            contrast += 1
            guard let layer = layers[index] else { continue }
            drawn += 1
            var truePositive = 0, falsePositive = 0, falseNegative = 0
            for (truth, map) in zip(masks[index], layer) {
                let vessel = truth > 127, marked = map > 0
                if vessel && marked { truePositive += 1 } else if marked { falsePositive += 1 } else if vessel { falseNegative += 1 }
            }
            let union = truePositive + falsePositive + falseNegative
            iou += union > 0 ? Double(truePositive) / Double(union) : 0
            recall += Double(truePositive) / Double(max(truePositive + falseNegative, 1))
            precision += Double(truePositive) / Double(max(truePositive + falsePositive, 1))
        }
        let active = roadmap.firstIndex { $0.state == .active }
        var reason: String?
        if active == nil, let last = roadmap.last {
            reason = last.state.rawValue + (roadmap.compactMap(\.invalidation).last.map { " (\($0.rawValue))" } ?? "")
        }
        return RoadmapScore(
            contrastFrames: contrast, drawnFrames: drawn, iou: contrast > 0 ? iou / Double(contrast) : 0,
            recall: contrast > 0 ? recall / Double(contrast) : 0, precision: drawn > 0 ? precision / Double(drawn) : nil,
            activeFrame: active, notActiveBecause: reason)
    }
}
