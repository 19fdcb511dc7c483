import Foundation
import GatehouseServer
import Testing

@Suite struct StartupPagesTests {
    /// One smaps entry as the kernel prints it (6.x field order), with the fields the selection reads set.
    static func entry(_ header: String, rss: Int, anonymous: Int = 0, privateDirty: Int = 0, swap: Int = 0, flags: String = "rd ex mr mw me") -> String {
        """
        \(header)
        Size:              18136 kB
        KernelPageSize:        4 kB
        MMUPageSize:           4 kB
        Rss:                \(rss) kB
        Pss:                \(rss) kB
        Pss_Dirty:             0 kB
        Shared_Clean:          0 kB
        Shared_Dirty:          0 kB
        Private_Clean:      \(rss - privateDirty) kB
        Private_Dirty:         \(privateDirty) kB
        Referenced:         \(rss) kB
        Anonymous:             \(anonymous) kB
        KSM:                   0 kB
        LazyFree:              0 kB
        AnonHugePages:         0 kB
        Swap:                  \(swap) kB
        SwapPss:               \(swap) kB
        Locked:                0 kB
        THPeligible:           0
        VmFlags: \(flags)

        """
    }

    @Test func onlyCleanReadOnlyFileMappingsAreReleased() {
        let smaps = [
            Self.entry("55db410f9000-55db422af000 r-xp 00000000 fe:00 5318886                    /srv/gatehouse", rss: 4444),
            Self.entry("55db422af000-55db42340000 r--p 011b6000 fe:00 5318886                    /srv/gatehouse", rss: 592),
            // RELRO after relocation: read-only now, but its relocated pages are private copies.
            Self.entry("55db42340000-55db424b0000 r--p 0124a000 fe:00 5318886                    /srv/gatehouse", rss: 1152, anonymous: 64, privateDirty: 64),
            Self.entry("7f44eb5e9000-7f44eb6de000 rw-p 005e8000 fe:00 2268                       /usr/lib/libswiftCore.so", rss: 348),
            Self.entry("7f44e4000000-7f44e425d000 rw-p 00000000 00:00 0 ", rss: 2404, anonymous: 2404, privateDirty: 2404),
            Self.entry("7ffd1c5f2000-7ffd1c5f4000 r-xp 00000000 00:00 0                          [vdso]", rss: 8),
            Self.entry("7f44eb000000-7f44eb100000 r-xp 00000000 fe:00 99                         /usr/lib/old.so (deleted)", rss: 100),
            // A copy swapped out is no longer Anonymous but still private.
            Self.entry("7f44ec000000-7f44ec100000 r--p 00000000 fe:00 100                        /usr/lib/swapped.so", rss: 40, swap: 8),
            Self.entry("7f44ed000000-7f44ed100000 r-xp 00000000 fe:00 101                        /usr/lib/locked.so", rss: 1024, flags: "rd ex mr mw me lo"),
            Self.entry("7f44ee000000-7f44ee100000 r-xp 00000000 fe:00 102                        /usr/lib/untouched.so", rss: 0),
            Self.entry("7f44ef000000-7f44ef100000 r--s 00000000 fe:00 103                        /usr/share/icu/data file.dat", rss: 12),
            // A binary just written: its page-cache pages are dirty until written back, but none is private.
            Self.entry("7f44f0000000-7f44f0100000 r-xp 00000000 fe:00 104                        /srv/just-built", rss: 900, privateDirty: 900),
        ].joined()
        let released = StartupPages.releasable(smaps: smaps)
        #expect(released == [
            .init(start: 0x55db_410f_9000, end: 0x55db_422a_f000, path: "/srv/gatehouse", residentKB: 4444),
            .init(start: 0x55db_422a_f000, end: 0x55db_4234_0000, path: "/srv/gatehouse", residentKB: 592),
            .init(start: 0x7f44_ef00_0000, end: 0x7f44_ef10_0000, path: "/usr/share/icu/data file.dat", residentKB: 12),
            .init(start: 0x7f44_f000_0000, end: 0x7f44_f010_0000, path: "/srv/just-built", residentKB: 900),
        ])
    }

    @Test func malformedTextReleasesNothing() {
        #expect(StartupPages.releasable(smaps: "").isEmpty)
        #expect(StartupPages.releasable(smaps: "garbage\nRss: 12 kB\nAnonymous: 0 kB\n").isEmpty)
        // A header whose range is backwards, or whose Anonymous field cannot be read, is not trusted.
        #expect(StartupPages.releasable(smaps: Self.entry("2000-1000 r-xp 00000000 fe:00 1 /bin/x", rss: 4)).isEmpty)
        let unreadable = Self.entry("1000-2000 r-xp 00000000 fe:00 1 /bin/x", rss: 4).replacingOccurrences(of: "Anonymous:             0 kB", with: "Anonymous: lots")
        #expect(StartupPages.releasable(smaps: unreadable).isEmpty)
        // A truncated entry (no Anonymous line at all) is not released either.
        #expect(StartupPages.releasable(smaps: "1000-2000 r-xp 00000000 fe:00 1 /bin/x\nRss: 4 kB\n").isEmpty)
    }

    /// The real thing, in this test process while other suites run on other threads: the released mappings'
    /// resident pages drop, and code and read-only data in them still work afterwards.
    @Test func releasingThisProcessKeepsItWorking() throws {
        guard let before = StartupPages.readSmaps() else { return }  // not Linux
        let candidates = StartupPages.releasable(smaps: before)
        let residentBefore = candidates.reduce(0) { $0 + $1.residentKB }
        try #require(residentBefore > 1024, "this test binary should have over 1 MiB of clean file pages mapped")
        let released = try #require(StartupPages.release())
        #expect(released > 1024)
        let after = try #require(StartupPages.readSmaps())
        let ranges = Set(candidates.map { [$0.start, $0.end] })
        let residentAfter = StartupPages.releasable(smaps: after).filter { ranges.contains([$0.start, $0.end]) }.reduce(0) { $0 + $1.residentKB }
        #expect(residentAfter < residentBefore / 2, "resident in the released mappings: \(residentBefore) KiB before, \(residentAfter) KiB after")
        // Text, string literals, metadata and Foundation's tables fault back in from the files.
        let decoded = try JSONDecoder().decode([String: [Int]].self, from: Data(#"{"a":[1,2,3]}"#.utf8))
        #expect(decoded == ["a": [1, 2, 3]])
        #expect(String(describing: StartupPages.Mapping.self).hasSuffix("Mapping"))
    }
}

/// The daemon releases its start-up pages once ready and again after each reload, and serves on afterwards.
@Suite(.serialized, .stopsServers) struct StartupPagesDaemonTests {
    @Test func theDaemonReleasesStartupPagesWhenReadyAndAfterAReload() async throws {
        let upstream = try await TestUpstream()
        let (gateway, _) = try OperatorConventionTests.start(upstream, extra: "log_level: debug\n")
        defer { gateway.stop() }
        let token = ServerIntegrationTests.fresh("user_1")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try RawClient(port: gateway.port).request("GET", "/echo", headers: [("Authorization", "Bearer \(token)")])?.status == 200)
        gateway.send(SIGHUP)
        #expect(try await DaemonProcessTests.reloads(gateway, "success", reach: 1))
        try await Task.sleep(for: .milliseconds(300))
        #expect(try RawClient(port: gateway.port).request("GET", "/echo", headers: [("Authorization", "Bearer \(token)")])?.status == 200)
        #expect(try RawClient(port: gateway.port).request("GET", "/public/x")?.status == 200)
        #expect(gateway.process.isRunning)
        // The release after the reload runs in a background task: wait for its line before stopping.
        #expect(gateway.awaitStandardError("\"msg\":\"released start-up pages\"", count: 2, within: 20))

        let (_, stderr) = gateway.stopAndCollectOutput()
        let released = stderr.split(separator: "\n").filter { $0.contains("\"msg\":\"released start-up pages\"") }.compactMap { line in
            line.range(of: "\"resident_kib\":\"").flatMap { Int(line[$0.upperBound...].prefix { $0.isNumber }) }
        }
        #expect(released.count == 2, "\(stderr)")
        // At start most of the binary's and its libraries' touched pages are released (tens of MiB in a debug build).
        #expect((released.first ?? 0) > 4096, "\(released)")
        await upstream.stop()
    }
}
