import FluoroCore

/// The JSON header of a published or recorded frame (docs/wire-format.md, "The header"): imagezmq's keys, the
/// timing, and the measurements. Its buffer is allocated once; composing a header allocates nothing.
struct FrameHeader {
    let streamName: String
    /// How the image part is sent: "raw" (RGB bytes) or "jpeg".
    let encoding: StaticString
    /// The order of a raw display image's colour channels ("RGB" or "BGR"); nil for JPEG.
    let channels: StaticString?
    /// Names of the stages before the publisher or recorder, in order (their latencies go in the header).
    let upstreamStages: [String]
    /// The run's pixel spacing and C-arm position (`geometry`).
    let imaging: ImagingGeometry
    /// Room for the largest header: two full device traces (a point is at most 2 × 19 digits and 5 marks), a full
    /// local motion field (two numbers of at most 19 digits and a comma per grid point) plus the fixed keys.
    private var header = JSONHeaderWriter(capacity: FrameHeader.maximumSize)
    static let maximumSize = 2 * DeviceTrace.capacity * 48 + 2 * LocalMotionField.capacity * 24 + 16_384

    init(
        streamName: String, encoding: StaticString = "raw", channels: StaticString? = "RGB", upstreamStages: [String],
        imaging: ImagingGeometry = .unknown
    ) {
        self.streamName = streamName
        self.imaging = imaging
        self.encoding = encoding
        self.channels = channels
        self.upstreamStages = upstreamStages
    }

    func deallocate() { header.deallocate() }

    /// What the image part holds: the annotated display image, or (layers mode) one layer.
    enum Layer: String {
        case display
        /// The grey frame as it came from the source (uint16, height × width).
        case frame
        /// The devices' centre lines rasterised (uint8: 1 guidewire, 2 catheter, 0 elsewhere).
        case devices
        /// The roadmap's vessel map as drawn on this frame (uint8 0…255).
        case roadmap
        /// No image: the header alone (the `measurements` topic).
        case measurements
    }

    /// The bytes every header of a stream named `streamName` starts with (up to its `dtype`), which subscribers
    /// to the whole stream may filter on.
    static func lead(streamName: String) -> [UInt8] {
        var writer = JSONHeaderWriter(capacity: streamName.utf8.count * 6 + 64)
        defer { writer.deallocate() }
        writer.reset()
        writer.key("msg"); writer.string(streamName)
        writer.key("dtype")
        return Array(writer.bytes)
    }

    /// Composes the header of `frame`, numbered `sequence` and sent (or recorded) at `now`; returns its bytes
    /// (valid until the next call).
    mutating func write(for frame: Frame, sequence: Int, now: UInt64, layer: Layer = .display) -> UnsafeRawBufferPointer {
        let geometry = frame.geometry
        header.reset()
        header.key("msg"); header.string(streamName)
        header.key("dtype"); header.literal(layer == .frame ? "\"uint16\"" : "\"uint8\"")
        header.key("shape"); header.beginArray()
        header.element(); header.integer(layer == .measurements ? 0 : geometry.height)
        header.element(); header.integer(layer == .measurements ? 0 : geometry.width)
        if layer == .display {
            header.element(); header.integer(3)
        }
        header.endArray()
        switch layer {
        case .display: header.key("encoding"); header.string(encoding.description)
        case .measurements: header.key("encoding"); header.literal("\"none\"")
        case .frame, .devices, .roadmap: header.key("encoding"); header.literal("\"raw\"")
        }
        if layer == .display, let channels {
            header.key("channels"); header.string(channels.description)
        }
        if layer != .display {
            header.key("layer"); header.string(layer.rawValue)
        }
        header.key("frame"); header.integer(frame.index)
        header.key("sequence"); header.integer(sequence)
        header.key("source_time_s"); header.number(frame.sourceTime, decimals: 6)
        header.key("available_ns"); header.integer(Int(frame.availableAt))
        header.key("published_ns"); header.integer(Int(now))
        header.key("bits_stored"); header.integer(geometry.bitsStored)
        writeImaging()
        header.key("latency_ms"); header.beginObject()
        var previous = frame.availableAt
        for (position, stage) in upstreamStages.enumerated() where position < frame.stageExit.count {
            let exit = frame.stageExit[position]
            header.key(stage); header.number(Double(exit &- previous) / 1e6)
            previous = exit
        }
        header.key("age_at_publish"); header.number(Double(now &- frame.availableAt) / 1e6)
        header.endObject()
        let motion = frame.annotations.motion
        header.key("motion"); header.beginObject()
        header.key("dx"); header.number(Double(motion.dx))
        header.key("dy"); header.number(Double(motion.dy))
        header.key("confidence"); header.number(Double(motion.confidence))
        header.key("state"); header.string(motion.state.rawValue)
        let field = frame.annotations.localMotion
        header.key("local_field")
        if field.isPresent {
            header.beginObject()
            header.key("grid"); header.integer(field.gridSize)
            header.key("dx"); writeNumbers(field.dx)
            header.key("dy"); writeNumbers(field.dy)
            header.endObject()
        } else {
            header.literal("null")
        }
        header.endObject()
        writeDevice("guidewire", frame.annotations.guidewire)
        writeDevice("catheter", frame.annotations.catheter)
        let roadmap = frame.annotations.roadmap
        header.key("roadmap"); header.beginObject()
        header.key("state"); header.string(roadmap.state.rawValue)
        header.key("drawn"); header.literal(roadmap.drawn ? "true" : "false")
        header.key("offset"); header.beginArray()
        header.element(); header.number(Double(roadmap.offsetX), decimals: 3)
        header.element(); header.number(Double(roadmap.offsetY), decimals: 3)
        header.endArray()
        header.key("contrast_frames"); header.integer(roadmap.contrastFrames)
        header.key("vessel_pixels"); header.integer(roadmap.vesselPixels)
        header.key("invalidation")
        if let reason = roadmap.invalidation { header.string(reason.rawValue) } else { header.literal("null") }
        header.key("map")
        if let source = roadmap.mapSource { header.string(source.rawValue) } else { header.literal("null") }
        header.key("map_frame")
        if let index = roadmap.mapFrame { header.integer(index) } else { header.literal("null") }
        header.endObject()
        header.finish()
        return header.bytes
    }

    /// Composes the end-of-stream header, sent once after the last frame: imagezmq's keys with an empty image
    /// (`shape` with zero rows and columns, no image bytes follow), `end_of_stream` true, the number of frames that
    /// reached the publisher (`frames`, the next `sequence`).
    mutating func writeEnd(frames: Int, layer: Layer = .display) -> UnsafeRawBufferPointer {
        header.reset()
        header.key("msg"); header.string(streamName)
        header.key("dtype"); header.literal(layer == .frame ? "\"uint16\"" : "\"uint8\"")
        header.key("shape"); header.literal(layer == .display ? "[0,0,3]" : "[0,0]")
        header.key("encoding"); header.literal(layer == .measurements ? "\"none\"" : "\"raw\"")
        if layer != .display {
            header.key("layer"); header.string(layer.rawValue)
        }
        header.key("end_of_stream"); header.literal("true")
        header.key("frames"); header.integer(frames)
        header.finish()
        return header.bytes
    }

    /// `geometry`: the run's pixel spacing and C-arm position, null where unknown.
    private mutating func writeImaging() {
        header.key("geometry"); header.beginObject()
        header.key("pixel_spacing_mm")
        if let row = imaging.rowSpacing, let column = imaging.columnSpacing {
            header.beginArray()
            header.element(); header.number(row, decimals: 5)
            header.element(); header.number(column, decimals: 5)
            header.endArray()
        } else {
            header.literal("null")
        }
        header.key("spacing_plane")
        if let plane = imaging.spacingPlane { header.string(plane.rawValue) } else { header.literal("null") }
        header.key("primary_angle_deg"); writeOptional(imaging.primaryAngle, decimals: 2)
        header.key("secondary_angle_deg"); writeOptional(imaging.secondaryAngle, decimals: 2)
        header.key("source_to_detector_mm"); writeOptional(imaging.sourceToDetector, decimals: 1)
        header.key("source_to_patient_mm"); writeOptional(imaging.sourceToPatient, decimals: 1)
        header.endObject()
    }

    private mutating func writeOptional(_ value: Double?, decimals: Int) {
        if let value { header.number(value, decimals: decimals) } else { header.literal("null") }
    }

    private mutating func writeNumbers(_ values: [Float]) {
        header.beginArray()
        for value in values {
            header.element(); header.number(Double(value), decimals: 3)
        }
        header.endArray()
    }

    private mutating func writeDevice(_ key: StaticString, _ trace: DeviceTrace) {
        header.key(key); header.beginObject()
        header.key("present"); header.literal(trace.isPresent ? "true" : "false")
        header.key("tip")
        if let tip = trace.tip {
            header.beginArray()
            header.element(); header.number(Double(tip.x), decimals: 2)
            header.element(); header.number(Double(tip.y), decimals: 2)
            header.endArray()
        } else {
            header.literal("null")
        }
        header.key("confidence"); header.number(Double(trace.confidence))
        header.key("centerline"); header.beginArray()
        for point in trace.centerline {
            header.element(); header.beginArray()
            header.element(); header.number(Double(point.x), decimals: 2)
            header.element(); header.number(Double(point.y), decimals: 2)
            header.endArray()
        }
        header.endArray()
        header.endObject()
    }
}
