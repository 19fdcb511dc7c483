import Foundation
import GatehouseConfig

/// Which engine serves the public listener. `epoll` is Gatehouse's own data plane (issue 11); `nio` is the
/// SwiftNIO one it replaces, kept while the new one is proven. `GATEHOUSE_DATA_PLANE=nio|epoll` chooses.
enum DataPlaneEngine: String, Sendable {
    case nio
    case epoll

    static func chosen(for settings: GatehouseSettings, environment: [String: String] = ProcessInfo.processInfo.environment) -> DataPlaneEngine {
        if let asked = environment["GATEHOUSE_DATA_PLANE"].flatMap(DataPlaneEngine.init(rawValue:)) { return asked }
        return .nio
    }
}
