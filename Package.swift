// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    // Release builds: no run-time exclusivity checks (swift_beginAccess on every class-property access cost
    // ~1 µs per proxied request in perf) and cross-module optimisation (the request path crosses six modules).
    // Debug builds, where the whole test suite and the fuzzers run, keep the run-time checks.
    .unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release)),
]

let package = Package(
    name: "gatehouse",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gatehouse", targets: ["gatehouse"]),
        .library(name: "GatehouseEngine", targets: ["GatehouseEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "4.1.0"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.27.0"),
    ],
    targets: [
        // PCRE2 (Debian's libpcre2-dev), the regex engine behind route patterns that are not plain literals.
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-16", providers: [.apt(["libpcre2-dev"])]),
        // OpenSSL 3 (Debian's libssl-dev) for the data plane's own TLS. swift-nio-ssl's BoringSSL is a separate,
        // symbol-prefixed copy (CNIOBoringSSL_*), so both link into one binary.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // Sans-IO TLS over OpenSSL memory BIOs: server contexts with SNI and reload, client contexts that verify,
        // and a per-socket connection fed and drained with bytes (issue 11). No sockets.
        .target(name: "GatehouseTLS", dependencies: ["COpenSSL"], swiftSettings: swiftSettings),
        // Pure request model, route matching, claims and decisions: no I/O, no crypto.
        .target(name: "GatehouseCore", dependencies: ["CPCRE2"], swiftSettings: swiftSettings),
        // JWT verification, keys and Clerk's session rules: no sockets (fetching is injected).
        .target(
            name: "GatehouseAuth",
            dependencies: [
                "GatehouseCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Strict sans-IO HTTP/1.1 on bytes (request/response heads as byte ranges, body framing) for the coming
        // data plane (issue 11). No dependencies, no I/O; not yet used by the daemon.
        .target(name: "GatehouseHTTP1", swiftSettings: swiftSettings),
        // The sans-IO connection state machine of the data plane: HTTP/1.1 exchanges on byte queues, decided by
        // the caller, relayed to one upstream connection at a time. No sockets, no clock of its own.
        .target(name: "GatehouseDataPlane", dependencies: ["GatehouseCore", "GatehouseHTTP1"], swiftSettings: swiftSettings),
        // What Swift's Glibc lacks (epoll, eventfd, accept4, SO_REUSEPORT, MSG_NOSIGNAL…): a thin C shim.
        .target(name: "CGatehouseSys"),
        // The data plane's I/O layer (issue 11): edge-triggered epoll loops, a timer wheel, non-blocking sockets.
        // No NIO, no Foundation.
        .target(name: "GatehouseLoop", dependencies: ["CGatehouseSys"], swiftSettings: swiftSettings),
        // YAML config: parse, validate, compile into an immutable snapshot.
        .target(
            name: "GatehouseConfig",
            dependencies: ["GatehouseCore", "GatehouseAuth", "GatehouseTLS", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // The one decision path shared by `explain` and the daemon.
        .target(
            name: "GatehouseEngine",
            dependencies: ["GatehouseCore", "GatehouseAuth", "GatehouseConfig"],
            swiftSettings: swiftSettings
        ),
        // Outbound HTTP for JWKS sources (the only network code so far).
        .target(
            name: "GatehouseFetch",
            dependencies: [
                "GatehouseAuth",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The daemon: listener, streaming reverse proxy, forward-auth, admin endpoints, reload and shutdown.
        .target(
            name: "GatehouseServer",
            dependencies: [
                "GatehouseCore", "GatehouseAuth", "GatehouseConfig", "GatehouseEngine", "GatehouseFetch", "GatehouseHTTP1",
                "GatehouseDataPlane", "GatehouseLoop", "GatehouseTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings,
            // The version and git commit for `gatehouse --version` and gatehouse_build_info.
            plugins: ["GatehouseBuildInfo"]
        ),
        // Bakes VERSION and the git commit into GatehouseServer (reads .git itself: no git, no network).
        .plugin(name: "GatehouseBuildInfo", capability: .buildTool()),
        // `gatehouse demo`: a development issuer and a small app that shows identity headers.
        .target(
            name: "GatehouseDemo",
            dependencies: [
                "GatehouseCore", "GatehouseDevIssuer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Development issuer: key generation and token minting for tests and demos. Never used to verify.
        .target(
            name: "GatehouseDevIssuer",
            dependencies: [
                "GatehouseCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "gatehouse",
            dependencies: [
                "GatehouseEngine", "GatehouseFetch", "GatehouseDevIssuer", "GatehouseServer", "GatehouseDemo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Micro-benchmarks of the hot parts (run by scripts/bench in release mode).
        .executableTarget(
            name: "gatehouse-microbench",
            dependencies: [
                "GatehouseCore", "GatehouseAuth", "GatehouseConfig", "GatehouseEngine", "GatehouseDevIssuer", "GatehouseHTTP1", "GatehouseServer",
                "GatehouseDataPlane",
                "GatehouseLoop",
            ],
            path: "Sources/GatehouseMicrobench",
            swiftSettings: swiftSettings
        ),
        // The SwiftNIO floor (raw byte relay, and HTTP codecs without a decision) that scripts/bench measures
        // beside Gatehouse: what any NIO proxy costs before it decides anything.
        .executableTarget(
            name: "gatehouse-relay-floor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/GatehouseRelayFloor",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseTests",
            dependencies: [
                "GatehouseCore", "GatehouseAuth", "GatehouseConfig", "GatehouseEngine", "GatehouseDevIssuer", "GatehouseServer",
                "GatehouseFetch", "GatehouseDemo", "GatehouseHTTP1", "GatehouseDataPlane", "GatehouseLoop", "GatehouseTLS",
                // Raw OpenSSL for test peers the public API refuses to build (a TLS 1.1-only client).
                "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // EmbeddedChannel: llhttp (NIOHTTP1's decoder) as a differential peer of GatehouseHTTP1.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                // The TLS upstream that tests certificate verification.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            // Data the tests read from their own directory (#filePath), not bundled resources.
            exclude: ["Vectors"],
            swiftSettings: swiftSettings
        ),
    ]
)
