//! `native-sha256 [TOTAL_MIB]`: SHA-256 of TOTAL_MIB (default 256) of the benchmark's pattern,
//! hashed as the page's kernel row hashes it (4 MiB `update`s over a 64 MiB buffer), with the
//! same `sha2` (Cargo.lock's version) that locker-web compiles to wasm, built for this host.
//!
//! `cargo xtask bench` builds it several ways (crates/xtask/src/build.rs): with
//! `--cfg sha2_backend="soft"` (sha2's portable Rust code, no SHA extensions), for plain x86-64
//! and for `-C target-cpu=native`, and without the cfg (sha2 then detects SHA-NI at run time).
//! Prints one JSON line: the wall-clock and CPU time of the hashing alone (CPU time of this
//! thread, from Linux's schedstat, `null` elsewhere), the digest and how it was built.

use std::process::ExitCode;
use std::time::Instant;

use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;
/// The page's kernel row: 4 MiB updates over a 64 MiB array (tests/bench/bench.mjs).
const UPDATE: usize = 4 * MIB;
const BUFFER: usize = 64 * MIB;

fn main() -> ExitCode {
    let total_mib = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
        None => 256,
        Some(Ok(n)) if n > 0 && n.is_multiple_of(BUFFER / MIB) && n <= 1 << 20 => n,
        Some(_) => {
            eprintln!("usage: native-sha256 [TOTAL_MIB, a multiple of 64, at most 1 TiB]");
            return ExitCode::FAILURE;
        }
    };
    let total = total_mib * MIB;
    // The page's pattern, byte i = (31 i + 7) mod 256, so the digests can be compared.
    let memory: Vec<u8> = (0..BUFFER)
        .map(|i| (i.wrapping_mul(31).wrapping_add(7) & 255) as u8)
        .collect();
    let cpu_before = thread_cpu_ns();
    let started = Instant::now();
    let mut hasher = Sha256::new();
    for _ in 0..total / BUFFER {
        for update in memory.chunks(UPDATE) {
            hasher.update(update);
        }
    }
    let digest = hasher.finalize();
    let seconds = started.elapsed().as_secs_f64();
    let cpu_ms = match (cpu_before, thread_cpu_ns()) {
        (Some(a), Some(b)) => format!("{}", b.saturating_sub(a) as f64 / 1e6),
        _ => "null".to_owned(),
    };
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let backend = if cfg!(sha2_backend = "soft") {
        "soft"
    } else {
        "auto"
    };
    println!(
        "{{\"bytes\": {total}, \"ms\": {ms}, \"cpu_ms\": {cpu_ms}, \"mbps\": {mbps}, \"sha256\": \"{hex}\", \"backend\": \"{backend}\", \"bmi2\": {bmi2}, \"avx2\": {avx2}}}",
        ms = seconds * 1000.0,
        mbps = total as f64 / 1e6 / seconds,
        bmi2 = cfg!(target_feature = "bmi2"),
        avx2 = cfg!(target_feature = "avx2"),
    );
    ExitCode::SUCCESS
}

/// Nanoseconds this thread has run on a CPU (the first field of Linux's schedstat), so that
/// time the scheduler gave to other processes on a shared machine is not counted.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
