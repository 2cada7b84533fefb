/// Where a vessel's lumen ends on its blurred opacification profile.
///
/// A vessel of radius R projects as a cylinder: its cross-section's path length is 2√(R² − x²). The imaging
/// chain blurs it (a Gaussian of σ), which lowers the peak P₀ of a thin vessel but keeps its area πR². So the
/// equivalent width W = area / P₀, which can be measured on the map, tells the radius, and the radius tells
/// the share P(R) / P₀ of the peak at which the lumen's border lies: about 0.85 of the peak on a vessel much
/// thinner than the blur, about 0.25 on one much wider.
struct VesselEdgeModel {
    /// Equivalent widths (ascending) and the edge shares at them, for radii from 0.1 to 12 pixels.
    private let widths: [Float]
    private let shares: [Float]

    /// `blur`: σ of the Gaussian blur between the lumen and the map, in map pixels.
    init(blur: Float) {
        let sigma = Double(max(blur, 0.1))
        var widths: [Float] = [], shares: [Float] = []
        for radius in stride(from: 0.1, through: 12.0, by: 0.05) {
            let centre = Self.blurredProfile(radius: radius, sigma: sigma, at: 0)
            let border = Self.blurredProfile(radius: radius, sigma: sigma, at: radius)
            widths.append(Float(Double.pi * radius * radius / centre))
            shares.append(Float(border / centre))
        }
        self.widths = widths
        self.shares = shares
    }

    /// The share of the peak at which the lumen's border lies on a vessel of equivalent width `width`.
    func edgeShare(equivalentWidth width: Float) -> Float {
        guard width > widths[0] else { return shares[0] }
        guard width < widths[widths.count - 1] else { return shares[shares.count - 1] }
        var low = 0, high = widths.count - 1
        while high - low > 1 {
            let middle = (low + high) / 2
            if widths[middle] <= width { low = middle } else { high = middle }
        }
        let t = (width - widths[low]) / (widths[high] - widths[low])
        return shares[low] + t * (shares[high] - shares[low])
    }

    /// The cylinder's path length 2√(R² − x²) blurred by a Gaussian of `sigma`, at `position` from its axis.
    private static func blurredProfile(radius: Double, sigma: Double, at position: Double) -> Double {
        let steps = 400, step = 2 * radius / Double(steps)
        var sum = 0.0
        for i in 0..<steps {
            let x = -radius + (Double(i) + 0.5) * step
            let chord = 2 * (radius * radius - x * x).squareRoot()
            let d = position - x
            sum += chord * exp(-d * d / (2 * sigma * sigma))
        }
        return sum * step / (sigma * (2 * Double.pi).squareRoot())
    }
}

#if canImport(Glibc)
    import Glibc
#endif
