import ArgumentParser
import Foundation
import FluoroCore
import FluoroGraph
import FluoroPipeline
import FluoroPublish
import FluoroSources
import FluoroVision
import Synchronization

/// `fluoro run`: replays a recording (or a live source) through the graph and publishes the frames.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Process a run through the graph and publish it over ZeroMQ.",
        discussion: """
            SOURCE is `synthetic` (generated on the fly), a DICOM XA/RF run, a .y4m file, a folder of frame images \
            (JPEG, PNG, BMP or PGM, read in name order at --fps), `-` for Y4M on standard input \
            (e.g. `ffmpeg -i run.mp4 -pix_fmt gray -f yuv4mpegpipe - | fluoro run -`), or a V4L2 frame grabber \
            (/dev/videoN: live, paced by the device; see `fluoro devices`). Without SOURCE (or --source) the \
            bundled recording \(Run.bundledRecording) is replayed: the installed one beside the binary \
            (PREFIX/share/fluorostream), else the repository's, from its root. Ctrl-C stops reading; frames in \
            flight drain and the statistics print. With --config FILE.yaml, options are read from the file first \
            (each key a long option name below, e.g. `segmenter: ridge`, `roadmap: true`, `source: run.dcm`) and \
            those on the command line override them.
            """)

    /// The bundled recording, relative to an installation's data folder or to the repository's root.
    static let bundledRecording = "Recordings/synthetic-512.y4m"

    @Argument(
        help: "synthetic, a DICOM or .y4m path, a folder of frame images, - for Y4M on standard input, or a capture device /dev/videoN.")
    var source: String?
    @Option(name: .customLong("source"), help: "The source, as SOURCE (a configuration file's `source:` key); SOURCE wins over it.")
    var sourceOption: String?
    @Option(
        help:
            "Read options from this YAML file (keys: the long option names; true or false for a flag); the command line overrides it."
    )
    var config: String?

    @Option(help: "ZeroMQ address to publish on (loopback unless --insecure-plaintext).")
    var publish = PublisherAddress.defaultEndpoint
    @Option(
        help:
            "Also serve OpenIGTLink (3D Slicer, PLUS) on [HOST:]PORT, loopback unless --insecure-plaintext: the image, device lines, tips and measurements."
    )
    var igtl: String?
    @Flag(help: "Do not publish (process and measure only).")
    var noPublish = false
    @Flag(help: "Bind a non-loopback address without encryption (anyone on the network can read the frames).")
    var insecurePlaintext = false
    @Flag(
        help:
            "Layers mode: publish the grey frame, the devices' centre lines and the roadmap as separate topic messages (frame, devices, roadmap) instead of the annotated image."
    )
    var layers = false
    @Flag(
        help:
            "For stock imagezmq subscribers: the JSON header as the text of imagezmq's msg (recv_image returns it) and the image in OpenCV's BGR order."
    )
    var imagezmq = false
    @Option(
        parsing: .unconditional,
        help:
            "Send the frames as JPEG at this quality (1-100): lossy, for display-only subscribers on a network (imagezmq's recv_jpg reads it)."
    )
    var jpeg: Int?
    @Option(
        help: "Record the processed run (annotated frames and each frame's measurements) as a DICOM multi-frame Secondary Capture file.")
    var record: String?
    @Flag(
        help:
            "With --record and a DICOM source: copy the patient's name, ID, birth date, sex, the study's date, time, ID, accession number, referring physician and UID, and references to the source series into the recording (left empty otherwise)."
    )
    var keepPHI = false
    @Option(
        help:
            "How --record stores the frames: jpeg (baseline, quality \(RecordingCompression.jpegQuality), lossy and marked so), rle (RLE Lossless) or none (uncompressed)."
    )
    var recordCompression: RecordingCompression = .jpeg
    @Option(help: "Encrypt with CURVE using this publisher certificate (NAME.key_secret from fluoro keys); needs --curve-clients.")
    var curveSecret: String?
    @Option(help: "Folder of the client certificates (*.key) allowed to subscribe; every other client gets nothing.")
    var curveClients: String?
    @Option(parsing: .unconditional, help: "Wait for this many subscribers (0 to 1000) before the first frame (replay).")
    var waitSubscribers = 0
    @Option(parsing: .unconditional, help: "Seconds to wait for --wait-subscribers (0 to 3600).")
    var waitTimeout = 10.0

    @Flag(help: "Estimate each frame's motion against the reference (published as `motion`).")
    var motion = false
    @Flag(help: "Publish motion-corrected subtraction images (live minus the warped first frame, log domain); implies --motion.")
    var dsa = false
    @Flag(help: "With --dsa: warp the mask by a local control-point field (non-rigid motion), not one shift.")
    var local = false
    @Option(
        help:
            "Find the guidewire and catheter (centre lines and tips, published and drawn): ridge (multi-scale Hessian ridge filter) or learned (a small U-Net, OpenBLAS), both with tracking; implies --motion."
    )
    var segmenter: SegmentationMethod?
    @Flag(
        help:
            "Draw a vessel map (roadmap) from the run's contrast frames, in colour under the devices; implies --motion. See --roadmap-method (the default, vesselness, stays building on synthetic runs: their vessels are too faint)."
    )
    var roadmap = false
    @Option(
        help:
            "How the roadmap's map is made: vesselness (the default; dynamic, for the beating heart: each contrast frame's own vessels, then the stored map of the contrast frame at the same phase) or subtraction (one map from motion-corrected subtraction once the contrast has washed out, for anatomy that moves rigidly)."
    )
    var roadmapMethod: RoadmapMethod?
    @Option(
        help:
            "Make the roadmap from these frames only (FIRST:LAST, inclusive) of the run it is built from, e.g. a contrast injection (vesselness: only their own maps are drawn and stored)."
    )
    var roadmapFrames: String?
    @Option(
        help:
            "Build the roadmap from this earlier run (a DICOM or Y4M file with a contrast injection) and draw it from the first live frame; implies --roadmap."
    )
    var roadmapFrom: String?

    @Flag(
        exclusivity: .chooseLast,
        help:
            "live: the newest frame wins, late frames are dropped; replay: nothing is lost (default: live for a capture device, replay otherwise; the last given wins)."
    )
    var policy: DeliveryPolicy?
    @Option(parsing: .unconditional, help: "Replay speed relative to the recorded frame rate, 0.01 to 100; 0 = as fast as possible.")
    var speed = 1.0
    @Option(parsing: .unconditional, help: "Stop after this many frames.")
    var frames: Int?
    @Option(help: "Write the run's statistics as JSON to this file.")
    var statsJSON: String?
    @Flag(help: "Replace existing files at --record and --stats-json (never an input, a link or a device).")
    var force = false
    @Flag(name: .shortAndLong, help: "No progress bar.")
    var quiet = false

    @OptionGroup(title: "Synthetic source") var synthetic: SyntheticOptions
    @OptionGroup(title: "Capture device") var capture: CaptureOptions

    /// What the run reads: SOURCE, else --source, else the bundled recording.
    var sourcePath: String { source ?? sourceOption ?? Run.bundledRecordingPath }

    /// The bundled recording: the installed one (`ResourceFolder.installed`) when there is one, else the path relative
    /// to the repository's root.
    static let bundledRecordingPath: String = {
        let installed = ResourceFolder.installed + "/" + bundledRecording
        return FileManager.default.fileExists(atPath: installed) ? installed : bundledRecording
    }()

    /// The delivery policy: as asked, else live for a capture device and replay for recordings.
    var deliveryPolicy: DeliveryPolicy { policy ?? (CaptureOptions.isDevice(sourcePath) ? .live : .replay) }

    func validate() throws {
        if keepPHI, record == nil { throw ValidationError("--keep-phi only applies to --record") }
        if recordCompression != .jpeg, record == nil {
            throw ValidationError("--record-compression only applies to --record")
        }
        if layers, jpeg != nil { throw ValidationError("--jpeg applies to the annotated image, which --layers does not send") }
        if layers, imagezmq { throw ValidationError("--imagezmq applies to the annotated image, which --layers does not send") }
        if let jpeg, !(1...100).contains(jpeg) { throw ValidationError("--jpeg takes a quality from 1 to 100, got \(jpeg)") }
        guard speed == 0 || (0.01...100).contains(speed) else {
            throw ValidationError("--speed \(speed) is outside 0.01...100 (or 0: as fast as possible)")
        }
        guard (0...3600).contains(waitTimeout) else { throw ValidationError("--wait-timeout \(waitTimeout) is outside 0...3600 seconds") }
        guard (0...1000).contains(waitSubscribers) else {
            throw ValidationError("--wait-subscribers \(waitSubscribers) is outside 0...1000")
        }
        if let frames, frames <= 0 { throw ValidationError("--frames must be positive") }
        if roadmapFrames != nil, !roadmap, roadmapFrom == nil {
            throw ValidationError("--roadmap-frames needs --roadmap or --roadmap-from")
        }
        if let roadmapFrames { _ = try Self.frameRange(roadmapFrames) }
        if roadmapMethod != nil, !roadmap, roadmapFrom == nil { throw ValidationError("--roadmap-method needs --roadmap") }
        if roadmapMethod == .vesselness, roadmapFrom != nil {
            throw ValidationError(
                "--roadmap-from builds its map by subtraction; --roadmap-method vesselness needs the live run's own contrast")
        }
        if roadmap || roadmapFrom != nil, dsa {
            throw ValidationError("--roadmap draws on the live frames; it cannot be combined with --dsa (subtraction images)")
        }
        if segmenter != nil, dsa {
            throw ValidationError("--segmenter works on the live frames; it cannot be combined with --dsa (subtraction images)")
        }
    }

    func run() throws {
        ShutdownSignal.install()
        ProcessLimits.allowAllDescriptors()
        // Outputs are checked before anything is read, so a wrong path fails at once and never touches an input.
        let inputs = [sourcePath] + (roadmapFrom.map { [$0] } ?? [])
        let statisticsOutput = try statsJSON.map { try OutputFile(path: $0, replace: force, inputs: inputs) }
        let frameSource = try openSource()
        var options = PipelineOptions()
        options.policy = deliveryPolicy
        options.motion = motion
        options.subtraction = dsa
        options.localCorrection = local
        if let segmenter {
            var parameters = SegmentationParameters()
            parameters.method = segmenter
            options.segmentation = parameters
        }
        if roadmap || roadmapFrom != nil {
            var settings = RoadmapParameters()
            settings.frameRange = try roadmapFrames.map(Self.frameRange)
            settings.method = roadmapFrom != nil ? .subtraction : roadmapMethod ?? .vesselness
            options.roadmap = settings
            options.roadmapBuildRun = try roadmapFrom.map { try openRecordedSource($0, frameRate: synthetic.fps) }
        }
        if !noPublish {
            var publishing = PipelineOptions.Publishing(address: try PublisherAddress(publish))
            publishing.encoding = jpeg.map { .jpeg(quality: $0) } ?? .raw
            publishing.layers = layers
            publishing.imagezmq = imagezmq
            publishing.curve = try curveSecurity()
            publishing.allowPlaintextNonLoopback = insecurePlaintext
            options.publishing = publishing
        }
        if let igtl {
            options.openIGTLink = try OpenIGTLinkAddress(igtl)
            options.allowPlaintextNonLoopback = insecurePlaintext
        }
        if let record {
            var recording = PipelineOptions.Recording(path: record)
            recording.patient = keepPHI ? recordedPatient(of: frameSource) : nil
            recording.compression = recordCompression
            recording.modality = (frameSource as? DICOMSource)?.file.dataSet.string(DICOMTag(0x0008, 0x0060))
            recording.replace = force
            recording.inputs = inputs + (statsJSON.map { [$0] } ?? [])
            options.recording = recording
        }
        let pipeline = try PipelineBuilder.build(for: frameSource, options: options)
        for warning in pipeline.warnings { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
        let publisher = pipeline.publisher
        if let publisher, waitSubscribers > 0, !publisher.waitForSubscribers(waitSubscribers, timeoutSeconds: waitTimeout) {
            throw FluoroError.messaging(detail: "\(publish): fewer than \(waitSubscribers) subscriber(s) after \(waitTimeout) s")
        }
        // A capture device paces itself.
        let paced = speed > 0 && !(frameSource is V4L2Source)
        let configuration = GraphConfiguration(
            policy: deliveryPolicy, pacing: paced ? .recorded(speed: speed) : .asFastAsPossible,
            frameLimit: frames)
        let graph = try FrameGraph(source: frameSource, stages: pipeline.stages, configuration: configuration)
        if ShutdownSignal.requested { graph.requestStop() }

        let total = [frames, frameSource.frameCount].compactMap { $0 }.min()
        let progress = ProgressBar(total: total, enabled: !quiet && isatty(STDERR_FILENO) == 1)
        let statistics: RunStatistics
        var failure: FluoroError?
        do {
            statistics = try graph.run {
                if ShutdownSignal.requested { graph.requestStop() }
                progress.update(delivered: graph.deliveredCount)
            }
        } catch let error as GraphFailure {
            statistics = error.statistics
            failure = error.error
        }
        progress.finish()

        print("source: \(frameSource.name), \(frameSource.geometry)")
        if let publisher {
            print(
                "published \(publisher.published) frames on \(publisher.address)"
                    + (publisher.refused > 0
                        ? " (\(publisher.refused) not queued: subscribers were at their limit; "
                            + "the gaps show in `sequence`)" : "")
                    + (publisher.copied > 0 ? "; \(publisher.copied) sent by copy (slow subscribers held every zero-copy buffer)" : "")
                    + (publisher.ignoredSubscriptions > 0
                        ? "; \(publisher.ignoredSubscriptions) subscription(s) ignored (their prefix matches nothing published)" : "")
                    + (publisher.handshakes.map { "; CURVE: \($0.admitted) client(s) admitted, \($0.refused) refused" } ?? "")
                    + (publisher.refusedConnections.count > 0
                        ? "; \(publisher.refusedConnections.count) connection(s) shut down (at most "
                            + "\(publisher.refusedConnections.maximum) at once)" : ""))
        }
        if let igtl = pipeline.openIGTLink {
            let served = igtl.statistics
            print(
                "OpenIGTLink on \(igtl.address): \(served.accepted) client(s), \(served.framesSent) frames sent"
                    + (served.disconnected > 0 ? ", \(served.disconnected) client(s) disconnected for not reading" : "")
                    + (served.leftOut > 0 ? ", \(served.leftOut) message(s) too large left out" : ""))
        }
        let captured = (frameSource as? V4L2Source)?.counters
        if let captured {
            print(
                "capture: \(captured.delivered) frames delivered, \(captured.lostByDevice) lost by the device (sequence gaps), "
                    + "\(captured.overtaken) overtaken by newer frames, \(captured.corrupt) corrupt, \(captured.reconnects) reconnects; "
                    + "latencies from the kernel's capture timestamp")
        }
        print(statistics.formattedTable())
        if let statisticsOutput {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let report = RunReport(statistics: statistics, capture: captured.map(CaptureReport.init))
            try statisticsOutput.write(Array(try encoder.encode(report)))
            try statisticsOutput.commit()
        }
        if let failure { throw failure }
        try pipeline.recorder?.commit()
        if let record { print("recorded \(pipeline.recorder?.recorded ?? 0) frames to \(record)") }
    }

    private func openSource() throws -> FrameSource {
        let source = sourcePath
        if source == "synthetic" { return try SyntheticSource(parameters: try synthetic.parameters()) }
        if CaptureOptions.isDevice(source) {
            return try V4L2Source(
                settings: try capture.settings(device: source), newestWins: deliveryPolicy == .live,
                reconnect: capture.reconnect
            ) { message in
                FileHandle.standardError.write(Data((message + "\n").utf8))
            }
        }
        if source == Run.bundledRecording, !FileManager.default.fileExists(atPath: source) {
            throw FluoroError.cannotOpen(
                path: source,
                reason: "the bundled recording is neither installed in \(ResourceFolder.installed) nor in the working "
                    + "folder; run fluoro from the repository root, or name a source (synthetic, FILE.y4m, FILE.dcm or -)")
        }
        return try openRecordedSource(source, frameRate: synthetic.fps)
    }

    /// Parses FIRST:LAST (inclusive frame indices).
    static func frameRange(_ text: String) throws -> ClosedRange<Int> {
        let parts = text.split(separator: ":").map { Int($0) }
        guard parts.count == 2, let first = parts[0], let last = parts[1], first >= 0, first <= last else {
            throw ValidationError("--roadmap-frames \(text): expected FIRST:LAST with 0 <= FIRST <= LAST")
        }
        return first...last
    }
}

extension DeliveryPolicy: EnumerableFlag {}
extension RecordingCompression: ExpressibleByArgument {}

/// What `--stats-json` writes: the graph's statistics and, for a capture device, what the capture counted.
struct RunReport: Encodable {
    var statistics: RunStatistics
    var capture: CaptureReport?

    func encode(to encoder: Encoder) throws {
        try statistics.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(capture, forKey: .capture)
    }

    enum CodingKeys: String, CodingKey { case capture }
}

/// A capture device's counters in `--stats-json`.
struct CaptureReport: Encodable {
    var delivered: Int, lostByDevice: Int, overtaken: Int, corrupt: Int, reconnects: Int

    init(_ counters: V4L2Source.Counters) {
        delivered = counters.delivered
        lostByDevice = counters.lostByDevice
        overtaken = counters.overtaken
        corrupt = counters.corrupt
        reconnects = counters.reconnects
    }

    enum CodingKeys: String, CodingKey {
        case delivered, lostByDevice = "lost_by_device", overtaken, corrupt, reconnects
    }
}

/// SIGINT and SIGTERM ask the graph to stop reading (waking a reader that waits for input); a second signal ends
/// the process at once.
enum ShutdownSignal {
    private static let flag = Atomic<Bool>(false)

    static var requested: Bool { flag.load(ordering: .relaxed) }

    static func install() {
        InputInterruption.prepare()
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { number in
                ShutdownSignal.flag.store(true, ordering: .relaxed)
                InputInterruption.interrupt()
                signal(number, SIG_DFL)
            }
        }
    }
}

/// A one-line progress bar on the terminal's standard error.
final class ProgressBar {
    private let total: Int?
    private let enabled: Bool
    private let started = MonotonicClock.now()

    init(total: Int?, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    func update(delivered: Int) {
        guard enabled else { return }
        let seconds = Double(MonotonicClock.now() - started) / 1e9
        let rate = seconds > 0 ? Double(delivered) / seconds : 0
        var line = "\r"
        if let total, total > 0 {
            let width = 30, filled = min(width, delivered * width / total)
            line += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            line += "\(delivered)/\(total)"
        } else {
            line += "\(delivered) frames"
        }
        line += String(format: "  %.1f frames/s ", rate)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

extension Run {
    /// The patient attributes of a DICOM source (for `--keep-phi`); empty ones for other sources.
    func recordedPatient(of source: FrameSource) -> RecordedPatient {
        var patient = RecordedPatient()
        guard let data = (source as? DICOMSource)?.file.dataSet else { return patient }
        patient.name = data.string(DICOMDictionary.patientName) ?? ""
        patient.id = data.string(DICOMDictionary.patientID) ?? ""
        patient.birthDate = data.string(DICOMDictionary.patientBirthDate) ?? ""
        patient.sex = data.string(DICOMDictionary.patientSex) ?? ""
        patient.studyInstanceUID = data.string(DICOMTag(0x0020, 0x000D))
        patient.studyDate = data.string(DICOMTag(0x0008, 0x0020)) ?? ""
        patient.studyTime = data.string(DICOMTag(0x0008, 0x0030)) ?? ""
        patient.accessionNumber = data.string(DICOMTag(0x0008, 0x0050)) ?? ""
        patient.referringPhysician = data.string(DICOMTag(0x0008, 0x0090)) ?? ""
        patient.studyID = data.string(DICOMTag(0x0020, 0x0010)) ?? ""
        patient.sourceSOPClassUID = data.string(DICOMTag(0x0008, 0x0016))
        patient.sourceSOPInstanceUID = data.string(DICOMTag(0x0008, 0x0018))
        patient.sourceSeriesInstanceUID = data.string(DICOMTag(0x0020, 0x000E))
        return patient
    }

    /// The CURVE settings from `--curve-secret` and `--curve-clients` (both or neither).
    func curveSecurity() throws -> CurveSecurity? {
        switch (curveSecret, curveClients) {
        case (nil, nil):
            return nil
        case let (secret?, clients?):
            return try CurveSecurity(
                server: CurveCertificate(path: secret),
                allowedClients: CurveCertificate.publicKeys(inDirectory: clients))
        default:
            throw ValidationError(
                "--curve-secret and --curve-clients go together (the publisher's secret certificate and the allowed clients)")
        }
    }
}

/// The device segmenters `fluoro run --segmenter` offers.
extension SegmentationMethod: ExpressibleByArgument {}
extension RoadmapMethod: ExpressibleByArgument {}
