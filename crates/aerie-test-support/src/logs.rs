//! Every log line the test process writes, captured as JSON so tests can prove what is (and
//! what is never) logged.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// The log lines of this test process since [`capture`] was first called.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Every line so far, parsed.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap_or_else(|err| err.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).expect("each captured line is JSON"))
            .collect()
    }

    /// Everything logged so far, as written.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|err| err.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|err| err.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per process) a global subscriber that records, as one JSON line each,
/// Aerie's events at every level, every request's (`tower_http`, at `debug`), and other
/// crates' at `info` and above (a compiler's trace output would fill the memory), and returns
/// the record. Tests sharing the process log into it too, so
/// a test looks for lines it can tell apart.
pub fn capture() -> CapturedLogs {
    static CAPTURED: OnceLock<CapturedLogs> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let logs = CapturedLogs::default();
            let writer = logs.clone();
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "info,aerie=trace,tower_http=debug",
                ))
                .with_writer(move || writer.clone())
                .try_init()
                .expect("no other global subscriber is installed in a test that captures logs");
            logs
        })
        .clone()
}
