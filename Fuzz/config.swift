// Fuzz target: ConfigLoader on arbitrary YAML (seeded with the example config). Either a ConfigError that
// lists at least one located issue with a message, or a complete config — never a crash or a hang; and
// loading the same text twice gives the same routes (no hidden state).
import GatehouseConfig
import GatehouseCore

private let environment = [
    "CLERK_PUBLISHABLE_KEY": "pk_test_Y2xlcmsuZXhhbXBsZS5jb20k", "HOME": "/nonexistent", "EMPTY": "",
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(fuzzBytes: Array(UnsafeBufferPointer(start: data, count: size)))
    // Relative key files resolve into a directory that does not exist: the fuzzer reads no real files.
    func load() -> Result<GatehouseSettings, ConfigError> {
        do {
            return .success(try ConfigLoader.load(yaml: text, file: "fuzz.yaml", baseDirectory: "/nonexistent-fuzz-dir", environment: environment))
        } catch {
            return .failure(error)
        }
    }
    switch load() {
    case .failure(let error):
        require(!error.issues.isEmpty, "ConfigError without issues")
        for issue in error.issues { require(!issue.message.isEmpty, "config issue without a message at \(issue.keyPath)") }
    case .success(let settings):
        guard case .success(let again) = load() else {
            require(false, "the same config text loaded once and failed once")
            return 0
        }
        require(again.routes == settings.routes && again.listen == settings.listen, "loading the same config twice differed")
        require(ConfigLoader.parseHostPort(settings.listen) != nil, "accepted listen \(settings.listen) does not parse")
        // The port of an accepted bind address is plain decimal digits, as every other tool writes it.
        let port = settings.listen.utf8.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false).last ?? []
        require(!port.isEmpty && port.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }, "accepted listen \(settings.listen.debugDescription)")
    }
    return 0
}
