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

/// Backend API verification of opaque machine tokens in `/metrics` (counters of the config in force).
enum MachineMetrics {
    static func render(_ verifier: MachineTokenVerifier?) -> String {
        let (calls, shed, hits) = verifier.map { ($0.calls, $0.shedCount, $0.cacheHits) } ?? (0, 0, 0)
        return "# HELP gatehouse_machine_verify_calls_total Backend API calls made to verify opaque machine tokens.\n# TYPE gatehouse_machine_verify_calls_total counter\ngatehouse_machine_verify_calls_total \(calls)\n"
            + "# HELP gatehouse_machine_verify_shed_total Machine token verifications not made because an outbound limit was reached (answered 503).\n# TYPE gatehouse_machine_verify_shed_total counter\ngatehouse_machine_verify_shed_total \(shed)\n"
            + "# HELP gatehouse_machine_verify_cache_hits_total Opaque machine tokens answered from the verification cache.\n# TYPE gatehouse_machine_verify_cache_hits_total counter\ngatehouse_machine_verify_cache_hits_total \(hits)\n"
    }
}
