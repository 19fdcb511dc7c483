import Foundation

/// Polls `condition` every 20 ms until it holds or `seconds` pass; the result is its last answer. For what a
/// test cannot know the moment of (a timer firing, a connection arriving or closing): a fixed sleep would be too
/// short on a loaded machine and too long on an idle one.
@discardableResult
func eventually(within seconds: Double, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        guard Date() < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return true
}
