#if canImport(Glibc)
import Glibc
#endif

/// A /proc file read whole. Foundation's `String(contentsOfFile:)` returns only the first `read` of a /proc file
/// (they report size 0, and the kernel hands them out a page at a time): 4,050 bytes of /proc/net/tcp with
/// 4,400 sockets open (seen), and /proc/stat's `btime` line lies past the first page on a host with many CPUs.
public enum ProcFile {
    /// The file's text, or nil when it cannot be opened or read.
    public static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { return String(decoding: bytes, as: UTF8.self) }
            bytes += chunk[0..<n]
        }
    }
}
