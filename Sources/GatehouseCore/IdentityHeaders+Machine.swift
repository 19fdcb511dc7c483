/// The identity headers of machine callers (API keys, M2M, OAuth and JWT-template tokens). Their names start
/// `X-Gatehouse-`, so client look-alikes are removed like every other reserved name.
extension IdentityHeaderPolicy {
    public static let machineNames = [tokenType, subject, machineId, clientId, scopes, keyName]

    /// One call per name of `machineNames`, in order; nil values for sessions and signed-out callers.
    func forEachMachineValue(_ machine: MachineIdentity?, safe: (String?) -> String?, _ body: (String, String?) -> Void) {
        body(IdentityHeaderPolicy.tokenType, machine?.tokenType.rawValue)
        body(IdentityHeaderPolicy.subject, safe(machine?.subject))
        body(IdentityHeaderPolicy.machineId, safe(machine?.machineId))
        body(IdentityHeaderPolicy.clientId, safe(machine?.clientId))
        // Space-separated, as OAuth's `scope` claim; a scope holding a space or comma cannot be told apart, so none is sent then.
        let scopes = machine?.scopes ?? []
        body(IdentityHeaderPolicy.scopes, scopes.isEmpty || scopes.contains(where: { $0.contains(" ") || $0.isEmpty }) ? nil : safe(scopes.joined(separator: " ")))
        body(IdentityHeaderPolicy.keyName, safe(machine?.name))
    }
}
