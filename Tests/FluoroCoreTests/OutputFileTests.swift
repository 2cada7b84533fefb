import FluoroCore
import Foundation
import Testing

/// What a user's files are protected from when FluoroStream writes an output.
@Suite struct OutputFileTests {
    let folder: String = {
        let path = NSTemporaryDirectory() + "fluoro-output-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    func contents(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map(Array.init) }
    func entries() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: folder))?.sorted() ?? [] }

    @Test func theFileAppearsOnlyWhenComplete() throws {
        let path = folder + "/out.bin"
        let output = try OutputFile(path: path)
        try output.write([1, 2, 3])
        #expect(entries().isEmpty, "nothing under any name while it is written")
        try output.commit()
        #expect(contents(path) == [1, 2, 3] && entries() == ["out.bin"])
    }

    @Test func anAbandonedFileLeavesNothing() throws {
        do {
            let output = try OutputFile(path: folder + "/out.bin")
            try output.write([UInt8](repeating: 7, count: 1 << 20))
        }
        #expect(entries().isEmpty)
    }

    @Test func aSecretIsOwnerOnlyFromItsFirstByte() throws {
        let output = try OutputFile(path: folder + "/key_secret", mode: 0o600)
        var info = stat()
        #expect(fstat(output.descriptor, &info) == 0 && info.st_mode & 0o777 == 0o600)
        try output.write(Array("secret".utf8))
        try output.commit()
        let attributes = try FileManager.default.attributesOfItem(atPath: folder + "/key_secret")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func anExistingFileIsKeptUnlessReplacingWasAsked() throws {
        let path = folder + "/existing"
        FileManager.default.createFile(atPath: path, contents: Data([9]))
        #expect { _ = try OutputFile(path: path) } throws: { "\($0)".contains("exists") && "\($0)".contains("--force") }
        #expect(contents(path) == [9])
        let output = try OutputFile(path: path, replace: true)
        try output.write([4])
        #expect(contents(path) == [9], "the old file stays until the new one is complete")
        try output.commit()
        #expect(contents(path) == [4] && entries() == ["existing"])
    }

    @Test func anInputIsNeverAnOutputEvenWithReplaceOrUnderAnotherName() throws {
        let input = folder + "/run.dcm"
        FileManager.default.createFile(atPath: input, contents: Data([1, 2]))
        try FileManager.default.linkItem(atPath: input, toPath: folder + "/hard-link.dcm")
        for target in [input, folder + "/hard-link.dcm", folder + "/./run.dcm"] {
            #expect { _ = try OutputFile(path: target, replace: true, inputs: [input]) } throws: { "\($0)".contains("input") }
        }
        #expect(contents(input) == [1, 2])
    }

    @Test func linksDevicesAndFoldersAreNeverReplaced() throws {
        let target = folder + "/target"
        FileManager.default.createFile(atPath: target, contents: Data([5]))
        try FileManager.default.createSymbolicLink(atPath: folder + "/link", withDestinationPath: target)
        #expect { _ = try OutputFile(path: folder + "/link", replace: true) } throws: { "\($0)".contains("symbolic link") }
        #expect { _ = try OutputFile(path: "/dev/null", replace: true) } throws: { "\($0)".contains("device") }
        #expect { _ = try OutputFile(path: folder, replace: true) } throws: { "\($0)".contains("folder") }
        #expect(contents(target) == [5])
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
    }

    @Test func aScratchFileHasNoName() throws {
        let descriptor = try OutputFile.scratch(beside: folder + "/recording.dcm")
        defer { close(descriptor) }
        #expect(write(descriptor, "abc", 3) == 3)
        #expect(entries().isEmpty)
    }
}
