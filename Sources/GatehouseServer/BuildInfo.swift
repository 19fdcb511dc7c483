/// What this binary is: the version (VERSION) and git commit stamped at build time by the
/// GatehouseBuildInfo plugin, and the compiler that built it.
public enum BuildInfo {
    public static let version = BuildStamp.version
    public static let commit = BuildStamp.commit

    public static var swiftVersion: String {
        #if compiler(>=7.0)
        return ">=7.0"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #else
        return "6.0"
        #endif
    }

    /// `gatehouse --version`.
    public static var versionLine: String { "gatehouse \(version) (commit \(commit), Swift \(swiftVersion))" }
}
