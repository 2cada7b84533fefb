import FluoroCore
import FluoroConcurrency

/// The stage that turns a frame into the picture people see: grey samples through the display window
/// into RGB, then the annotations the earlier stages left (catheter in cyan, guidewire in yellow, tips
/// as crosses) drawn on top. With `splitting`, a helper thread shares the conversion of each frame's rows.
public final class DisplayRenderer: Stage {
    public let name = "render"
    public let splitting: Bool
    private var splitter: WorkSplitter?
    private lazy var conversion = OwnedWork(self) { $0.convert(rows: $1) }
    /// The frame `process` is converting.
    private var current: Frame?
    /// Fixed window, or nil to choose one from the first frame.
    public private(set) var window: DisplayWindow?
    private var lookUpTable: UnsafeMutableBufferPointer<UInt8>?
    private var histogram: UnsafeMutableBufferPointer<Int>?

    private let suppliedLevels: [UInt8]?

    public init(window: DisplayWindow? = nil, splitting: Bool = true) {
        self.window = window
        self.splitting = splitting
        suppliedLevels = nil
    }

    /// Renders through a display level for every sample value (`levels[v]` for sample `v`; samples past the
    /// end take the last level), e.g. from a DICOM VOI LUT.
    public init(levels: [UInt8], splitting: Bool = true) {
        precondition(!levels.isEmpty, "a display table needs at least one level")
        window = nil
        self.splitting = splitting
        suppliedLevels = levels
    }

    deinit {
        lookUpTable?.deallocate()
        histogram?.deallocate()
    }

    public func prepare(for geometry: FrameGeometry) throws {
        lookUpTable = .allocate(capacity: 1 << geometry.bitsStored)
        histogram = .allocate(capacity: 1 << geometry.bitsStored)
        if splitting { splitter = WorkSplitter(name: "render-helper") }
        if let levels = suppliedLevels, let table = lookUpTable {
            for value in table.indices { table[value] = levels[min(value, levels.count - 1)] }
        } else if let window {
            fillTable(window)
        }
    }

    public func process(_ frame: Frame) throws {
        guard lookUpTable != nil, let histogram else { return }
        if window == nil, suppliedLevels == nil {
            let chosen = DisplayWindow.automatic(
                for: UnsafeBufferPointer(frame.pixels), bitsStored: frame.geometry.bitsStored,
                histogram: histogram)
            window = chosen
            fillTable(chosen)
        }
        current = frame
        conversion.perform(0..<frame.geometry.height, splitter: splitter)
        current = nil
        let painter = OverlayPainter(frame: frame)
        painter.draw(frame.annotations.catheter, colour: (0, 220, 255))
        painter.draw(frame.annotations.guidewire, colour: (255, 230, 0))
    }

    /// Converts the rows `rows` of the current frame into grey RGB.
    private func convert(rows: Range<Int>) {
        guard let frame = current, let table = lookUpTable else { return }
        let limit = table.count - 1, width = frame.geometry.width
        let display = frame.display.baseAddress!, pixels = frame.pixels.baseAddress!
        for i in (rows.lowerBound * width)..<(rows.upperBound * width) {
            let grey = table[min(Int(pixels[i]), limit)]
            display[3 &* i] = grey
            display[3 &* i &+ 1] = grey
            display[3 &* i &+ 2] = grey
        }
    }

    private func fillTable(_ window: DisplayWindow) {
        guard let table = lookUpTable else { return }
        let low = window.center - window.width / 2
        for value in table.indices {
            let level = (Double(value) - low) / window.width * 255
            table[value] = UInt8(clampingFinite: min(max(level.rounded(), 0), 255))
        }
    }
}

/// Draws annotations into a frame's RGB display image, clipped to the frame.
struct OverlayPainter {
    let frame: Frame

    func draw(_ trace: DeviceTrace, colour: (UInt8, UInt8, UInt8)) {
        let points = trace.centerline
        if points.count > 1 {
            for i in 1..<points.count { line(from: points[i - 1], to: points[i], colour: colour) }
        }
        if let tip = trace.tip {
            line(from: Point2(x: tip.x - 4, y: tip.y), to: Point2(x: tip.x + 4, y: tip.y), colour: colour)
            line(from: Point2(x: tip.x, y: tip.y - 4), to: Point2(x: tip.x, y: tip.y + 4), colour: colour)
        }
    }

    /// A one-pixel line between two points (DDA).
    func line(from a: Point2, to b: Point2, colour: (UInt8, UInt8, UInt8)) {
        guard a.x.isFinite, a.y.isFinite, b.x.isFinite, b.y.isFinite else { return }
        let steps = min(max(Int(clampingFinite: max(abs(b.x - a.x), abs(b.y - a.y)).rounded(.up)), 1), 8192)
        for step in 0...steps {
            let t = Float(step) / Float(steps)
            plot(
                x: Int(clampingFinite: (a.x + t * (b.x - a.x)).rounded()), y: Int(clampingFinite: (a.y + t * (b.y - a.y)).rounded()),
                colour: colour)
        }
    }

    func plot(x: Int, y: Int, colour: (UInt8, UInt8, UInt8)) {
        let geometry = frame.geometry
        guard x >= 0, y >= 0, x < geometry.width, y < geometry.height else { return }
        let offset = 3 * (y * geometry.width + x)
        frame.display[offset] = colour.0
        frame.display[offset + 1] = colour.1
        frame.display[offset + 2] = colour.2
    }
}
