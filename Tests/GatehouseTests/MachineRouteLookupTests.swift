@testable import GatehouseConfig
import GatehouseCore
import Testing

/// Per-request lookups of a route's machine settings compare names one by one in a small table and hash in
/// a big one; both must find exactly the route's own entry, and nothing for a route without one.
@Suite struct MachineRouteLookupTests {
    @Test func everyNameIsFoundInTablesOfEverySize() {
        for size in 0...9 {
            var table: [String: Int] = [:]
            for i in 0..<size { table["route-\(i)"] = i }
            for i in 0..<size {
                let at = MachineSettings.place(of: "route-\(i)", in: table)
                #expect(at.map { table.values[$0] } == i, "size \(size), route-\(i)")
            }
            #expect(MachineSettings.place(of: "route-\(size)", in: table) == nil)
            #expect(MachineSettings.place(of: "Route-0", in: table) == nil)
            #expect(MachineSettings.place(of: "", in: table) == nil)
        }
    }

    @Test func acceptanceAndReverificationAreTheRoutesOwn() {
        var machine = MachineSettings()
        let routes = (0..<6).map { RouteRule(name: "r\($0)", patterns: [try! RoutePattern("/r\($0)(.*)")]) }
        for count in [1, 3, 6] {
            machine.routes = [:]
            for i in 0..<count {
                // Each route's own claim list, i conditions long, tells the entries apart.
                let claims = (0..<i).map { _ in ClaimRequirement(path: "sub", matcher: .exists(true)) }
                machine.routes["r\(i)"] = MachineRouteRule(accepts: TokenAcceptance(types: i % 2 == 0 ? [.apiKey] : [.m2mToken], shape: .single),
                                                           claims: claims)
            }
            for (i, route) in routes.enumerated() {
                let want: Set<TokenType> = i >= count ? [.sessionToken] : i % 2 == 0 ? [.apiKey] : [.m2mToken]
                #expect(machine.acceptance(for: route).types == want, "\(count) routes, r\(i)")
                #expect(machine.claims(for: route).count == (i < count ? i : 0), "\(count) routes, r\(i)")
                #expect(machine.reverificationRule(for: route) == nil)
            }
        }
        machine.reverification = [:]
        for i in [1, 4] { machine.reverification["r\(i)"] = ReverificationRule(level: .secondFactor, afterMinutes: i) }
        for (i, route) in routes.enumerated() {
            #expect(machine.reverificationRule(for: route)?.afterMinutes == (i == 1 || i == 4 ? i : nil), "r\(i)")
        }
    }
}
