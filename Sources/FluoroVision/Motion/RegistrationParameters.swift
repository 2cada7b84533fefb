import FluoroCore
import FluoroConcurrency

/// Settings of the motion estimator.
public struct RegistrationParameters: Sendable {
    /// Side of the phase-correlation grid (a power of two); the refinement level's central square is averaged down to it.
    public var workingSize = 256
    /// Largest change of the shift from one frame to the next (pixels, full resolution) that patient motion can
    /// cause: a larger jump is a table move (or a failure), and makes the estimator report `lost` and take the frame
    /// as its new reference.
    public var maximumShift = 24.0
    /// The phase correlation's peak (0…1) must reach this for its fit to make a jump beyond `maximumShift` (weak
    /// peaks far away are chance alignments of the heart's border or the diaphragm).
    public var tableMoveConfidence: Float = 0.1
    /// A normalised cross-correlation below this (−1…1) between the reference and the live frame moved back by
    /// the estimated shift means no reliable match: `lost`.
    public var minimumCorrelation = 0.3
    /// Most Gauss–Newton steps of the Tukey-weighted refinements (the dominant structures' shift, each control
    /// point); they stop earlier once a step is below 0.001 px.
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
