//! A synthetic plugin catalogue for the search benchmarks:
//! `cargo run --release -p aerie-bench --bin catalog-gen -- DATABASE_URL COUNT [--seed N]`.
//!
//! DATABASE_URL is `sqlite://PATH` or `postgres://...`; the registry's migrations run first,
//! then COUNT plugins with their namespaces, versions, download counts and reviews are written
//! straight into the empty registry (see `aerie_bench::catalog`). The same seed gives the same
//! catalogue; `search-bench` takes the seed too, to draw queries that match it.

use std::process::ExitCode;

use aerie_bench::catalog::{self, DEFAULT_SEED};
use anyhow::{Context as _, anyhow, bail};

const USAGE: &str = "usage: catalog-gen DATABASE_URL COUNT [--seed N]";

#[tokio::main]
async fn main() -> ExitCode {
    match try_main().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("catalog-gen: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn try_main() -> anyhow::Result<()> {
    let mut positional = Vec::new();
    let mut seed = DEFAULT_SEED;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seed" => {
                seed = args
                    .next()
                    .with_context(|| format!("--seed needs a value\n{USAGE}"))?
                    .parse()
                    .context("the seed is a number")?;
            }
            "-h" | "--help" => bail!("{USAGE}"),
            flag if flag.starts_with("--") => bail!("unknown option {flag}\n{USAGE}"),
            _ => positional.push(arg),
        }
    }
    let [url, count] = <[String; 2]>::try_from(positional)
        .map_err(|_| anyhow!("expected two arguments\n{USAGE}"))?;
    let count: u64 = count.parse().context("COUNT is a number")?;

    eprintln!(
        "generating {count} plugins (seed {seed}, vocabulary of {} words)",
        catalog::vocabulary().len()
    );
    let summary = catalog::generate(&url, count, seed).await?;
    println!(
        "{} plugins, {} versions, {} namespaces, {} users, {} download rows, {} reviews; \
         {:.0} MB of manifests and READMEs; {:.1} s",
        summary.plugins,
        summary.versions,
        summary.namespaces,
        summary.users,
        summary.download_rows,
        summary.reviews,
        summary.text_bytes as f64 / 1e6,
        summary.elapsed.as_secs_f64()
    );
    Ok(())
}
