import Foundation

/// The standard Prometheus `process_*` metrics, read from /proc at scrape time (Linux only; elsewhere the
/// figures that cannot be read are left out, not reported as 0).
public struct ProcessStats: Sendable, Equatable {
    public var residentBytes: Int
    public var virtualBytes: Int
    public var cpuSeconds: Double
    public var startTimeSeconds: Double
    public var threads: Int
    public var openFDs: Int?
    public var maxFDs: Int?

    /// The fields of a `/proc/PID/stat` line, or nil when it does not parse. `comm` (field 2) is in parentheses
    /// and may itself hold spaces and parentheses, so the fields are counted from the last ')'.
    public static func parse(stat: String, bootTime: Double, ticksPerSecond: Double, pageSize: Int) -> ProcessStats? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // fields[0] is field 3 (state): utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24.
        guard fields.count >= 22, ticksPerSecond > 0,
            let utime = Double(fields[11]), let stime = Double(fields[12]), let threads = Int(fields[17]),
            let start = Double(fields[19]), let vsize = Int(fields[20]), let rss = Int(fields[21])
        else { return nil }
        return ProcessStats(
            residentBytes: rss * pageSize, virtualBytes: vsize, cpuSeconds: (utime + stime) / ticksPerSecond,
            startTimeSeconds: bootTime + start / ticksPerSecond, threads: threads, openFDs: nil, maxFDs: nil)
    }

    /// `btime` of /proc/stat: the boot time in Unix seconds.
    public static func bootTime(procStat: String) -> Double? {
        procStat.split(separator: "\n").first { $0.hasPrefix("btime ") }.flatMap { Double($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) }
    }

    /// The boot time from the clocks (CLOCK_REALTIME − CLOCK_BOOTTIME): /proc/stat is hidden by the unit's
    /// ProcSubset=pid and in some containers.
    static func bootTimeFromClocks() -> Double {
        var real = timespec(), boot = timespec()
        clock_gettime(CLOCK_REALTIME, &real)
        clock_gettime(CLOCK_BOOTTIME, &boot)
        return Double(real.tv_sec - boot.tv_sec) + Double(real.tv_nsec - boot.tv_nsec) / 1e9
    }

    /// This process now, or nil off Linux.
    public static func current() -> ProcessStats? {
        guard let stat = ProcFile.read("/proc/self/stat"),
            case let boot = ProcFile.read("/proc/stat").flatMap(bootTime) ?? bootTimeFromClocks(),
            var stats = parse(stat: stat, bootTime: boot, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))), pageSize: Int(sysconf(Int32(_SC_PAGESIZE))))
        else { return nil }
        stats.openFDs = openDescriptors()
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max, limit.rlim_cur <= rlim_t(Int.max) { stats.maxFDs = Int(limit.rlim_cur) }
        return stats
    }

    /// Entries of /proc/self/fd, not counting the descriptor that lists them.
    static func openDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        let own = String(dirfd(directory))
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != "..", name != own { count += 1 }
        }
        return count
    }

    /// Prometheus text exposition of these figures.
    public var exposition: String {
        var out = ""
        func gauge(_ name: String, _ help: String, _ type: String, _ value: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", String(cpuSeconds))
        gauge("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", String(residentBytes))
        gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", String(virtualBytes))
        gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", String(format: "%.2f", startTimeSeconds))
        gauge("process_threads", "Number of OS threads in the process.", "gauge", String(threads))
        if let openFDs { gauge("process_open_fds", "Number of open file descriptors.", "gauge", String(openFDs)) }
        if let maxFDs { gauge("process_max_fds", "Maximum number of open file descriptors.", "gauge", String(maxFDs)) }
        return out
    }
}
