//! Browser tests: the scripts under `browser/` drive Debian's Chromium through
//! `playwright-core`; a test starts the servers, runs one script with a JSON input and reads
//! the JSON it prints.

use std::process::Command;

/// Runs `browser/SCRIPT` with `input` and returns what it printed.
///
/// Panics with instructions when Node, the scripts' packages or Chromium are missing (the test
/// command installs them), and with the script's output when it fails.
pub fn run(script: &str, input: &serde_json::Value) -> serde_json::Value {
    let directory = crate::plugins::repository().join("browser");
    assert!(
        directory.join("node_modules/playwright-core").is_dir(),
        "the browser tests' packages are missing: run `npm ci --prefix browser` (scripts/test does)"
    );
    let chromium = std::env::var("AERIE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium is missing at {chromium}: install Debian's `chromium` (scripts/test does)"
    );
    let output = Command::new("node")
        .arg(directory.join(script))
        .arg(input.to_string())
        .current_dir(&directory)
        .output()
        .expect("node runs (scripts/test installs Node.js)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser/{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!("browser/{script} printed no JSON ({err}):\n{stdout}\nstderr:\n{stderr}")
    })
}
