//! Declares the cfg that xtask passes to pick sha2's portable backend, so that `main.rs` can
//! report it (sha2 reads the same cfg; rustc warns about cfgs it was not told of).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(sha2_backend, values(\"soft\"))");
}
