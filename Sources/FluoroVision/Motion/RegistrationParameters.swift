import FluoroCore
import FluoroConcurrency

/// Settings of the motion estimator.
public struct RegistrationParameters: Sendable {
    /// Side of the phase-correlation grid (a power of two); the refinement level's central square is averaged down to it.
    public var workingSize = 256
    /// Largest shift (pixels, full resolution) that patient motion can cause; a larger one is a table move
    /// (or a failure) and makes the estimator report `lost` and take the frame as its new reference.
    public var maximumShift = 24.0
    /// Phase-correlation peaks below this (0...1) mean no reliable match: `lost`.
    public var minimumConfidence: Float = 0.03
    /// Most Gauss–Newton refinement steps (on the refinement level; it stops earlier once a step is below 0.001 px).
    public var refinementIterations = 10
    /// Second level: a grid of control points, each refined on its own block from the global shift, for the
    /// non-rigid part of the motion (used by the subtraction image).
    public var localCorrection = false
    /// Control points per side of the grid.
    public var gridSize = 8
    /// A control point may differ from the global shift by at most this (pixels); beyond, it keeps the global shift.
    public var maximumLocalDeviation = 6.0

    public init() {}
}
