import FluoroCore
import FluoroConcurrency

/// The registration stage: estimates each frame's shift against the reference (the first frame, or the
/// frame after a loss) into `annotations.motion`; in subtraction mode it also replaces the frame's samples
/// with the motion-corrected DSA image (live minus the warped mask, log domain, mid-grey = no change), warped
/// by the local control-point field when `parameters.localCorrection` is on. With `splitting` (the default) a
/// helper thread shares the reduction of each frame's rows.
public final class MotionCompensation: Stage {
    public let name = "motion"
    public let parameters: RegistrationParameters
    /// Whether frames leave as motion-corrected subtraction images.
    public let subtraction: Bool
    public let splitting: Bool
    private var registration: Registration?

    public init(parameters: RegistrationParameters = RegistrationParameters(), subtraction: Bool = false, splitting: Bool = true) {
        self.parameters = parameters
        self.subtraction = subtraction
        self.splitting = splitting
    }

    public func prepare(for geometry: FrameGeometry) throws {
        registration = Registration(
            geometry: geometry, parameters: parameters,
            splitter: splitting ? WorkSplitter(name: "motion-helper") : nil)
    }

    public func process(_ frame: Frame) throws {
        guard let registration else { return }
        let estimate = registration.estimate(UnsafeBufferPointer(frame.pixels))
        frame.annotations.motion = estimate
        if parameters.localCorrection { registration.writeLocalField(into: &frame.annotations.localMotion) }
        if subtraction {
            registration.writeSubtraction(
                of: UnsafeBufferPointer(frame.pixels), dx: estimate.state == .tracking ? estimate.dx : 0,
                dy: estimate.state == .tracking ? estimate.dy : 0,
                local: parameters.localCorrection, into: frame.pixels)
        }
    }
}
