import CGatehouseSys

/// CLOCK_MONOTONIC in nanoseconds: deadlines must not move when the wall clock is set.
public enum MonotonicClock {
    @inline(__always)
    public static func nanoseconds() -> UInt64 { UInt64(ghsys_monotonic_ns()) }
}
