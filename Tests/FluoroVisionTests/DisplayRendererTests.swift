import FluoroCore
import FluoroVision
import Testing

@Suite struct DisplayRendererTests {
    @Test func fixedWindowMapsGreyToRGB() throws {
        let geometry = try FrameGeometry(width: 4, height: 1, format: .grey16, bitsStored: 12)
        let renderer = DisplayRenderer(window: DisplayWindow(center: 1000, width: 1000))
        try renderer.prepare(for: geometry)
        let frame = Frame(slot: 0, geometry: geometry, stageCount: 1)
        for (i, value) in [0, 500, 1000, 4095].enumerated() { frame.pixels[i] = UInt16(value) }
        try renderer.process(frame)
        #expect(Array(frame.display) == [0, 0, 0, 0, 0, 0, 128, 128, 128, 255, 255, 255])
    }

    @Test func automaticWindowSpansTheMiddle99Percent() throws {
        let geometry = try FrameGeometry(width: 100, height: 100, format: .grey16, bitsStored: 12)
        let frame = Frame(slot: 0, geometry: geometry, stageCount: 1)
        for i in 0..<10_000 { frame.pixels[i] = UInt16(1000 + i / 10) }  // 1000...1999, ten of each
        frame.pixels[0] = 4000  // an outlier must not stretch the window
        let histogram = UnsafeMutableBufferPointer<Int>.allocate(capacity: 4096)
        defer { histogram.deallocate() }
        let window = DisplayWindow.automatic(for: UnsafeBufferPointer(frame.pixels), bitsStored: 12, histogram: histogram)
        #expect(abs(window.center - 1499.5) <= 1 && abs(window.width - 990) <= 2)
    }

    @Test func annotationsAreDrawnInTheirColours() throws {
        let geometry = try FrameGeometry(width: 20, height: 20, format: .grey8)
        let renderer = DisplayRenderer(window: DisplayWindow(center: 128, width: 256))
        try renderer.prepare(for: geometry)
        let frame = Frame(slot: 0, geometry: geometry, stageCount: 1)
        frame.annotations.guidewire.append(Point2(x: 2, y: 10))
        frame.annotations.guidewire.append(Point2(x: 17, y: 10))
        frame.annotations.catheter.tip = Point2(x: 5, y: 5)
        frame.annotations.catheter.append(Point2(x: 5, y: 5))
        frame.annotations.catheter.append(Point2(x: .nan, y: 3))  // bad coordinates are ignored, not a crash
        try renderer.process(frame)
        func rgb(_ x: Int, _ y: Int) -> [UInt8] { Array(frame.display[(3 * (y * 20 + x))..<(3 * (y * 20 + x) + 3)]) }
        #expect(rgb(9, 10) == [255, 230, 0])
        #expect(rgb(5, 3) == [0, 220, 255], "tip cross")
        #expect(rgb(15, 15) == [0, 0, 0])
    }
}
