import Foundation
import Synchronization

/// Runs a child process to completion on a GCD thread, never on Swift's cooperative pool: the in-process
/// gateways of other tests need those few threads, and a test blocked reading a pipe there starves them.
/// The child is terminated after `timeout` seconds.
enum OffPoolProcess {
    struct Outcome: Sendable {
        let status: Int32
        let stdout: Data
        let stderr: Data
    }

    static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil, timeout: Double = 60) async throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let box = ProcessBox(process)
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                // A child that exits before reading all of it (a missing peer) must fail its test, not trap
                // the whole test process on EPIPE (`write(_:)` does).
                if let stdin { try? input.fileHandleForWriting.write(contentsOf: stdin) }
                try? input.fileHandleForWriting.close()
                let watchdog = DispatchWorkItem { if box.process.isRunning { box.process.terminate() } }
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
                // stderr is read on its own thread, so a child filling one pipe never blocks on the other.
                let errorData = Mutex(Data())
                let group = DispatchGroup()
                group.enter()
                DispatchQueue.global().async {
                    let data = errors.fileHandleForReading.readDataToEndOfFile()
                    errorData.withLock { $0 = data }
                    group.leave()
                }
                let outputData = output.fileHandleForReading.readDataToEndOfFile()
                group.wait()
                box.process.waitUntilExit()
                watchdog.cancel()
                continuation.resume(returning: Outcome(status: box.process.terminationStatus, stdout: outputData, stderr: errorData.withLock { $0 }))
            }
        }
    }

    private final class ProcessBox: @unchecked Sendable {
        let process: Process
        init(_ process: Process) { self.process = process }
    }
}
