import FluoroCore
import FluoroConcurrency

/// The local (non-rigid) part of registration: a control-point field refined block by block around the global shift.
extension Registration {
    /// Writes the last frame's control-point field into `field` (cleared when none was estimated).
    public func writeLocalField(into field: inout LocalMotionField) {
        guard hasLocalField else {
            field.clear()
            return
        }
        field.set(gridSize: parameters.gridSize, shiftX: UnsafeBufferPointer(localX), shiftY: UnsafeBufferPointer(localY))
    }

    /// The local shift at pixel (x, y): bilinear between the control points (block centres), constant beyond.
    public func localShift(x: Float, y: Float) -> (dx: Float, dy: Float) {
        let n = parameters.gridSize
        let gx = min(max(x / Float(geometry.width) * Float(n) - 0.5, 0), Float(n - 1))
        let gy = min(max(y / Float(geometry.height) * Float(n) - 0.5, 0), Float(n - 1))
        let x0 = min(Int(clampingFinite: gx), n - 2), y0 = min(Int(clampingFinite: gy), n - 2)
        let x1 = min(x0 + 1, n - 1), y1 = min(y0 + 1, n - 1)
        let fx = gx - Float(x0), fy = gy - Float(y0)
        func mix(_ field: UnsafeMutableBufferPointer<Float>) -> Float {
            (1 - fy) * ((1 - fx) * field[y0 * n + x0] + fx * field[y0 * n + x1]) + fy
                * ((1 - fx) * field[y1 * n + x0] + fx * field[y1 * n + x1])
        }
        return (mix(localX), mix(localY))
    }

    /// Refines each control point on its block (level coordinates), starting from the global shift; points that
    /// fail or stray further than `maximumLocalDeviation` keep the global shift; then one 3×3 averaging pass
    /// smooths the field.
    func estimateLocalField(globalX: Double, globalY: Double) {
        let n = parameters.gridSize, scale = Double(reduction)
        let blockWidth = levelWidth / n, blockHeight = levelHeight / n
        for row in 0..<n {
            for column in 0..<n {
                let region = (
                    minX: max(column * blockWidth, margin), minY: max(row * blockHeight, margin),
                    maxX: min((column + 1) * blockWidth, levelWidth - margin),
                    maxY: min((row + 1) * blockHeight, levelHeight - margin)
                )
                var x = globalX, y = globalY
                if region.minX + 8 < region.maxX, region.minY + 8 < region.maxY,
                    let local = refine(dx: globalX, dy: globalY, offset: Double(exposureOffset), region: region),
                    abs(local.dx - globalX) * scale <= parameters.maximumLocalDeviation,
                    abs(local.dy - globalY) * scale <= parameters.maximumLocalDeviation
                {
                    (x, y) = (local.dx, local.dy)
                }
                localX[row * n + column] = Float(x * scale)
                localY[row * n + column] = Float(y * scale)
            }
        }
        smoothField(localX)
        smoothField(localY)
        hasLocalField = true
    }

    func smoothField(_ field: UnsafeMutableBufferPointer<Float>) {
        let n = parameters.gridSize
        for row in 0..<n {
            for column in 0..<n {
                var sum: Float = 0, count: Float = 0
                for r in max(row - 1, 0)...min(row + 1, n - 1) {
                    for c in max(column - 1, 0)...min(column + 1, n - 1) {
                        let weight: Float = r == row && c == column ? 4 : 1
                        sum += weight * field[r * n + c]
                        count += weight
                    }
                }
                localScratch[row * n + column] = sum / count
            }
        }
        for i in 0..<(n * n) { field[i] = localScratch[i] }
    }
}
