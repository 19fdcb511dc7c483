import Foundation
import GatehouseConfig
import GatehouseCore

/// Which engine serves the public listener. `epoll` is Gatehouse's own data plane (issue 11), the default;
/// `nio` is the SwiftNIO one it replaces, kept as a fallback while TLS to upstreams moves over
/// (`GATEHOUSE_DATA_PLANE=nio|epoll` overrides the choice).
enum DataPlaneEngine: String, Sendable {
    case nio
    case epoll

    static func chosen(for settings: GatehouseSettings, environment: [String: String] = ProcessInfo.processInfo.environment) -> DataPlaneEngine {
        guard !needsUpstreamTLS(settings) else { return .nio }
        if let asked = environment["GATEHOUSE_DATA_PLANE"].flatMap(DataPlaneEngine.init(rawValue:)) { return asked }
        return .epoll
    }

    /// TLS to upstreams is not on the epoll data plane yet: a config with an `https://` upstream stays on NIO
    /// (and the epoll plane refuses such a target if a reload brings one: it never speaks plain HTTP to it).
    static func needsUpstreamTLS(_ settings: GatehouseSettings) -> Bool {
        if settings.upstream.tls || settings.frontendAPIProxy?.target.tls == true { return true }
        return (settings.routes.rules + [settings.routes.fallback]).contains { $0.upstream?.tls == true }
    }
}
