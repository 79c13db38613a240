//! Writes the benchmark fixtures to a directory, for benchmarks run with external tools:
//! `large.wasm` (a 10 MiB component), `large.aerie` (a package holding it), and
//! `p16k.aerie` and `p1m.aerie` (packages of about 16 KiB and 1 MiB, for download benchmarks).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/bench".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let size = 10 << 20;
    std::fs::write(dir.join("large.wasm"), aerie_bench::large_component(size))?;
    std::fs::write(dir.join("large.aerie"), aerie_bench::large_package(size))?;
    // Sized so the archive, not only its content, is close to the round figure.
    std::fs::write(
        dir.join("p16k.aerie"),
        aerie_bench::sized_package("bench/p16k", "1.0.0", 16 * 1024 - 700),
    )?;
    std::fs::write(
        dir.join("p1m.aerie"),
        aerie_bench::sized_package("bench/p1m", "1.0.0", (1 << 20) - 1400),
    )?;
    println!("wrote the fixtures to {}", dir.display());
    Ok(())
}
