import Foundation
import PackagePlugin

/// Bakes the version (the VERSION file) and the git commit into the build: SwiftPM runs this plugin on every
/// build, and the command below is re-run when its arguments (the text it writes) change. The commit is read
/// from the .git files directly (worktrees and packed refs too), so it needs neither git nor the network;
/// without a .git (a source tarball) it is GATEHOUSE_BUILD_COMMIT, else "unknown".
@main
struct GatehouseBuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) async throws -> [Command] {
        let root = context.package.directoryURL
        let version = (try? String(contentsOf: root.appendingPathComponent("VERSION"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "0.0.0"
        let commit = ProcessInfo.processInfo.environment["GATEHOUSE_BUILD_COMMIT"].flatMap(Self.hexOnly)
            ?? GitHead(repository: root).commit ?? "unknown"
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("BuildStamp.swift")
        let source = """
            // Generated at build time by Plugins/GatehouseBuildInfo.
            enum BuildStamp {
                static let version = "\(Self.safe(version))"
                static let commit = "\(commit)"
            }

            """
        return [.buildCommand(
            displayName: "Stamping gatehouse \(version) (\(commit.prefix(12)))",
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", "printf '%s' \"$1\" > \"$2\"", "sh", source, output.path],
            inputFiles: [root.appendingPathComponent("VERSION")],
            outputFiles: [output])]
    }

    /// A commit id: 7–64 hex digits, else nil.
    static func hexOnly(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        guard (7...64).contains(trimmed.count), trimmed.allSatisfy(\.isHexDigit) else { return nil }
        return trimmed
    }

    /// The version as a Swift string literal body: letters, digits and . - + only.
    static func safe(_ text: String) -> String {
        String(text.filter { $0.isLetter || $0.isNumber || ".-+".contains($0) }.prefix(64))
    }
}

/// HEAD of the repository at `repository`, resolved by reading .git (a directory, or a `gitdir:` file for a
/// worktree or submodule), loose refs and packed-refs.
struct GitHead {
    let repository: URL

    var commit: String? {
        guard let gitDir = gitDirectory, let head = read(gitDir.appendingPathComponent("HEAD")) else { return nil }
        guard head.hasPrefix("ref: ") else { return GatehouseBuildInfo.hexOnly(head) }
        let ref = String(head.dropFirst(5))
        let common = read(gitDir.appendingPathComponent("commondir")).map { resolve($0, against: gitDir) } ?? gitDir
        for directory in [gitDir, common] {
            if let loose = read(directory.appendingPathComponent(ref)).flatMap(GatehouseBuildInfo.hexOnly) { return loose }
        }
        guard let packed = read(common.appendingPathComponent("packed-refs")) else { return nil }
        for line in packed.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("^") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[1] == ref { return GatehouseBuildInfo.hexOnly(String(parts[0])) }
        }
        return nil
    }

    private var gitDirectory: URL? {
        let dotGit = repository.appendingPathComponent(".git")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dotGit.path, isDirectory: &isDirectory) else { return nil }
        if isDirectory.boolValue { return dotGit }
        guard let text = read(dotGit), text.hasPrefix("gitdir: ") else { return nil }
        let target = resolve(String(text.dropFirst(8)), against: repository)
        return FileManager.default.fileExists(atPath: target.appendingPathComponent("HEAD").path) ? target : nil
    }

    private func resolve(_ path: String, against base: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path).standardizedFileURL
    }

    private func read(_ url: URL) -> String? {
        (try? String(contentsOf: url, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
