//! Writes the benchmark fixtures to a directory, for benchmarks run with external tools:
//! `large.wasm` (a 10 MiB component) and `large.aerie` (a package holding it).

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
    println!(
        "wrote {}/large.wasm and {}/large.aerie",
        dir.display(),
        dir.display()
    );
    Ok(())
}
