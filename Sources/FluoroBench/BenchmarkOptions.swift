import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

/// The command line of `fluoro-bench`.
let arguments = CommandLine.arguments.dropFirst()

func option(_ name: String, _ fallback: Int) -> Int {
    guard let index = arguments.firstIndex(of: name), arguments.index(after: index) < arguments.endIndex,
        let value = Int(arguments[arguments.index(after: index)])
    else { return fallback }
    return value
}

/// The text after option `name`, when given.
func textOption(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), arguments.index(after: index) < arguments.endIndex else { return nil }
    return arguments[arguments.index(after: index)]
}

/// The segmentation settings `--method ridge|learned` asks for (ridge when absent).
func segmentationParameters() -> SegmentationParameters {
    var parameters = SegmentationParameters()
    if let index = arguments.firstIndex(of: "--method"), arguments.index(after: index) < arguments.endIndex,
        let method = SegmentationMethod(rawValue: arguments[arguments.index(after: index)])
    {
        parameters.method = method
    }
    return parameters
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1)]
}
