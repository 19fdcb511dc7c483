import GatehouseConfig
import GatehouseAuth
import GatehouseFetch

extension HTTPMachineTokenSource {
    /// The source for a config, when some route verifies opaque tokens.
    public static func forSettings(_ settings: GatehouseSettings) -> HTTPMachineTokenSource? {
        guard settings.machine.needsBackendAPI, settings.secretKey != nil || settings.machine.machineSecretKey != nil else { return nil }
        return HTTPMachineTokenSource(apiURL: settings.apiURL, secretKey: settings.secretKey,
                                      machineSecretKey: settings.machine.machineSecretKey, timeout: settings.machine.timeout)
    }
}

/// The verifier a config needs, reused while what it depends on stays the same.
struct MachineVerifierSlot: Sendable {
    struct Basis: Equatable {
        let apiURL: String
        let secretKey: String?
        let machineSecretKey: String?
        let timeout: Double
        let limits: MachineTokenVerifier.Limits
    }

    var current: (basis: Basis, verifier: MachineTokenVerifier)?
    /// Calls, sheds and cache hits of verifiers a reload replaced, so the `_total` counters never go back.
    var retired = (calls: 0, shed: 0, hits: 0)

    mutating func verifier(for settings: GatehouseSettings) -> MachineTokenVerifier? {
        guard let source = HTTPMachineTokenSource.forSettings(settings) else { return nil }
        let basis = Basis(apiURL: settings.apiURL, secretKey: settings.secretKey, machineSecretKey: settings.machine.machineSecretKey,
                          timeout: settings.machine.timeout, limits: settings.machine.limits)
        if let current, current.basis == basis { return current.verifier }
        if let old = current?.verifier {
            retired.calls += old.calls
            retired.shed += old.shedCount
            retired.hits += old.cacheHits
        }
        let verifier = MachineTokenVerifier(source: source, limits: settings.machine.limits)
        current = (basis, verifier)
        return verifier
    }

    var totals: (calls: Int, shed: Int, hits: Int) {
        let live = current.map { ($0.verifier.calls, $0.verifier.shedCount, $0.verifier.cacheHits) } ?? (0, 0, 0)
        return (retired.calls + live.0, retired.shed + live.1, retired.hits + live.2)
    }
}

/// Backend API verification of opaque machine tokens in `/metrics`, across reloads.
enum MachineMetrics {
    static func render(_ totals: (calls: Int, shed: Int, hits: Int)) -> String {
        let (calls, shed, hits) = totals
        return "# HELP gatehouse_machine_verify_calls_total Backend API calls made to verify opaque machine tokens.\n# TYPE gatehouse_machine_verify_calls_total counter\ngatehouse_machine_verify_calls_total \(calls)\n"
            + "# HELP gatehouse_machine_verify_shed_total Machine token verifications not made because an outbound limit was reached (answered 503).\n# TYPE gatehouse_machine_verify_shed_total counter\ngatehouse_machine_verify_shed_total \(shed)\n"
            + "# HELP gatehouse_machine_verify_cache_hits_total Opaque machine tokens answered from the verification cache.\n# TYPE gatehouse_machine_verify_cache_hits_total counter\ngatehouse_machine_verify_cache_hits_total \(hits)\n"
    }
}
