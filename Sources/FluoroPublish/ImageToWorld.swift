import FluoroCore
import Foundation

/// Where an image's pixels lie in the patient's RAS coordinates (millimetres; x right, y anterior, z superior), for
/// OpenIGTLink: the image plane through the isocentre, its centre at the origin, with the run's pixel spacing
/// (1 mm where unknown) and the detector's orientation from the positioner angles (1, 0 where unknown). In the
/// anteroposterior view (both angles 0) the image's columns run to the patient's left and its rows to the feet, as
/// a radiograph is read; the primary angle (LAO positive) turns that about the patient's long axis, the secondary
/// (cranial positive) about the left-right axis.
struct ImageToWorld {
    /// Millimetres per column and per row.
    let spacing: (column: Double, row: Double)
    /// Unit vectors of the columns' direction (i), the rows' direction (j) and the normal (i × j), in RAS.
    let i: SIMD3<Double>, j: SIMD3<Double>, normal: SIMD3<Double>
    let width: Int, height: Int

    init(imaging: ImagingGeometry, width: Int, height: Int) {
        self.width = width
        self.height = height
        spacing = (imaging.columnSpacing ?? 1, imaging.rowSpacing ?? 1)
        let primary = (imaging.primaryAngle ?? 0) * .pi / 180, secondary = (imaging.secondaryAngle ?? 0) * .pi / 180
        /// Rz(primary) · Rx(secondary) applied to `v`.
        func rotate(_ v: SIMD3<Double>) -> SIMD3<Double> {
            let x = SIMD3(v.x, v.y * cos(secondary) - v.z * sin(secondary), v.y * sin(secondary) + v.z * cos(secondary))
            return SIMD3(x.x * cos(primary) - x.y * sin(primary), x.x * sin(primary) + x.y * cos(primary), x.z)
        }
        i = rotate(SIMD3(-1, 0, 0))
        j = rotate(SIMD3(0, 0, -1))
        normal = SIMD3(i.y * j.z - i.z * j.y, i.z * j.x - i.x * j.z, i.x * j.y - i.y * j.x)
    }

    /// The 4 × 4 row-major matrix OpenIGTLink's IMAGE carries: unit axes as columns, the centre's position last.
    var matrix: [Float] {
        [
            Float(i.x), Float(j.x), Float(normal.x), 0,
            Float(i.y), Float(j.y), Float(normal.y), 0,
            Float(i.z), Float(j.z), Float(normal.z), 0,
            0, 0, 0, 1,
        ]
    }

    /// The RAS position of pixel coordinates (x, y), pixel centres at integers.
    func world(x: Float, y: Float) -> SIMD3<Float> {
        let u = (Double(x) - Double(width - 1) / 2) * spacing.column
        let v = (Double(y) - Double(height - 1) / 2) * spacing.row
        let point = i * u + j * v
        return SIMD3(Float(point.x), Float(point.y), Float(point.z))
    }
}
