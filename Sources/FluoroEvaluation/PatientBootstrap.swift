/// 95 % confidence intervals that respect how the data were drawn: patients are resampled with replacement, then
/// runs within each drawn patient (../shared/EVALUATION.md, "Confidence intervals"). Frames of a run, and runs of a
/// patient, are not independent; with few patients the interval is wide, and says so.
public struct PatientBootstrap {
    public let resamples: Int
    private var state: UInt64

    public init(resamples: Int = 2000, seed: UInt64 = 20_261_207) {
        self.resamples = resamples
        state = seed
    }

    /// The mean of the runs' values and its 2.5 and 97.5 percentiles over `resamples` cluster resamples; nil when no
    /// run has a value.
    public mutating func interval(_ values: [(patient: String, value: Double)]) -> Interval? {
        guard !values.isEmpty else { return nil }
        let byPatient = Dictionary(grouping: values, by: \.patient).mapValues { $0.map(\.value) }
        let patients = byPatient.keys.sorted()
        let mean = values.map(\.value).reduce(0, +) / Double(values.count)
        var means: [Double] = []
        means.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var sum = 0.0, count = 0
            for _ in patients.indices {
                let runs = byPatient[patients[draw(patients.count)]]!
                for _ in runs.indices {
                    sum += runs[draw(runs.count)]
                    count += 1
                }
            }
            means.append(sum / Double(count))
        }
        means.sort()
        return Interval(
            mean: mean, low: means[Int(Double(resamples - 1) * 0.025)], high: means[Int(Double(resamples - 1) * 0.975)],
            runs: values.count, patients: patients.count)
    }

    /// A uniform draw from 0..<count (SplitMix64).
    private mutating func draw(_ count: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(count))
    }

    /// A mean with its interval, and how many runs and patients it rests on.
    public struct Interval: Codable, Sendable, Equatable {
        public var mean: Double
        public var low: Double
        public var high: Double
        public var runs: Int
        public var patients: Int
    }
}
