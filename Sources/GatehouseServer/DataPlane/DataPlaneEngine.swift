import Foundation
import GatehouseConfig
import GatehouseCore

/// Which engine serves the public listener. `epoll` is Gatehouse's own data plane (issue 11), the default;
/// `nio` is the SwiftNIO one it replaced, kept for one release as a fallback (`GATEHOUSE_DATA_PLANE=nio`).
enum DataPlaneEngine: String, Sendable {
    case nio
    case epoll

    static func chosen(for settings: GatehouseSettings, environment: [String: String] = ProcessInfo.processInfo.environment) -> DataPlaneEngine {
        if let asked = environment["GATEHOUSE_DATA_PLANE"].flatMap(DataPlaneEngine.init(rawValue:)) { return asked }
        return .epoll
    }
}
