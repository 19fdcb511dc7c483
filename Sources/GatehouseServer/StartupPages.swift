#if canImport(Glibc)
import Glibc
#endif

/// Start-up runs far more code than serving does (argument parsing, YAML, PCRE2 compilation, key loading, the
/// loader's and Foundation's initialization), and the kernel maps file pages in large folios, so right after
/// start 36 of the 42 MiB resident were file-backed pages, most of which serving never touches again (measured:
/// ~15 MiB of them are in use after a load). Once ready, and after each reload, Gatehouse unmaps the pages of
/// its read-only file mappings with `madvise(MADV_DONTNEED)`: they stay in the page cache, and those the serving
/// path uses come back on first touch as minor faults.
///
/// Only a mapping with no private page of its own is released: on a private file mapping DONTNEED also drops
/// copy-on-write copies, so a relocated RELRO page would revert to the file's bytes. Such pages show as
/// `Anonymous`, or `Swap` once swapped out; a mapping with either, a writable or locked one, and one whose file is
/// gone are left alone. `Private_Dirty` is not such a sign: it also counts page-cache pages written by `write(2)`
/// and not yet written back (a binary just built or installed), which the mapping only shares.
public enum StartupPages {
    public struct Mapping: Equatable, Sendable {
        public var start: UInt
        public var end: UInt
        public var path: String
        public var residentKB: Int

        public init(start: UInt, end: UInt, path: String, residentKB: Int) {
            self.start = start
            self.end = end
            self.path = path
            self.residentKB = residentKB
        }
    }

    /// The mappings of a `/proc/PID/smaps` text that can be released without changing a byte the process reads.
    public static func releasable(smaps: String) -> [Mapping] {
        var found: [Mapping] = []
        // The entry being read; it is released only if its Anonymous line was read and said 0.
        var current: (mapping: Mapping, eligible: Bool, anonymousRead: Bool)? = nil
        func finish() {
            if let (mapping, eligible, anonymousRead) = current, eligible, anonymousRead, mapping.residentKB > 0 { found.append(mapping) }
            current = nil
        }
        for line in smaps.split(separator: "\n", omittingEmptySubsequences: true) {
            if let header = parseHeader(line) {
                finish()
                current = (header.mapping, header.eligible, false)
                continue
            }
            guard current != nil, let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon]
            let value = line[line.index(after: colon)...]
            switch key {
            case "Rss":
                current!.mapping.residentKB = kilobytes(value) ?? 0
            case "Anonymous", "Swap":
                if kilobytes(value) != 0 { current!.eligible = false }
                if key == "Anonymous" { current!.anonymousRead = true }
            case "VmFlags":
                // Locked pages refuse DONTNEED; `io`/`pf` mappings are device memory, never file text.
                if value.split(separator: " ").contains(where: { $0 == "lo" || $0 == "io" || $0 == "pf" }) { current!.eligible = false }
            default:
                break
            }
        }
        finish()
        return found
    }

    /// A mapping's first line (`start-end perms offset dev inode path`), with whether its kind may be released.
    static func parseHeader(_ line: Substring) -> (mapping: Mapping, eligible: Bool)? {
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count >= 5, let dash = fields[0].firstIndex(of: "-"),
            let start = UInt(fields[0][..<dash], radix: 16), let end = UInt(fields[0][fields[0].index(after: dash)...], radix: 16),
            fields[1].count == 4, start < end
        else { return nil }
        let perms = Array(fields[1].utf8)
        let path = fields.count == 6 ? String(fields[5].drop { $0 == " " }) : ""
        let eligible = perms[1] != UInt8(ascii: "w") && path.hasPrefix("/") && !path.hasSuffix(" (deleted)")
        return (Mapping(start: start, end: end, path: path, residentKB: 0), eligible)
    }

    /// A smaps value such as `  1234 kB`, or nil when it is not one.
    static func kilobytes(_ value: Substring) -> Int? {
        let parts = value.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, parts[1] == "kB" else { return nil }
        return Int(parts[0])
    }

    /// Releases this process's releasable mappings; returns the kilobytes that were resident in them, or nil
    /// when /proc/self/smaps cannot be read (nothing is released then).
    @discardableResult
    public static func release() -> Int? {
        #if os(Linux)
        guard let text = readSmaps() else { return nil }
        var released = 0
        for mapping in releasable(smaps: text) {
            if madvise(UnsafeMutableRawPointer(bitPattern: mapping.start), Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 {
                released += mapping.residentKB
            }
        }
        return released
        #else
        return nil
        #endif
    }

    /// /proc/self/smaps in one string (it is generated as it is read, so it is read to the end: `ProcFile`).
    public static func readSmaps() -> String? {
        ProcFile.read("/proc/self/smaps")
    }
}
