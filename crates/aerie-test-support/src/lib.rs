//! Real services for tests, started on 127.0.0.1 and gone when the test process ends.
//!
//! [`postgres`] starts one PostgreSQL server per test process (with `initdb` in a temporary
//! directory) and hands each test a fresh database of its own; [`s3`] starts one S3-compatible
//! server (moto's server mode) and hands each test a fresh bucket. Servers are started through
//! a shell that stops them as soon as the test process's end of a pipe closes, so they never
//! outlive the tests, whatever way they end. [`logs`] captures the process's log lines;
//! [`http`] makes clients that reach `*.localhost` plugin origins; [`browser`] runs the
//! Chromium scripts under `browser/`.

pub mod archive;
pub mod browser;
pub mod http;
pub mod logs;
pub mod plugins;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A PostgreSQL server for this test process.
pub struct PostgresServer {
    port: u16,
    run_as: Option<String>,
    createdb: PathBuf,
    cluster: PathBuf,
    _server: Mutex<Child>,
}

/// The test process's PostgreSQL server, started on first use.
///
/// Panics with instructions if PostgreSQL is not installed: the test command installs it.
pub fn postgres() -> &'static PostgresServer {
    static SERVER: OnceLock<PostgresServer> = OnceLock::new();
    // Tests need no durability: fsync off makes them fast.
    SERVER.get_or_init(|| {
        PostgresServer::start("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    })
}

/// A PostgreSQL server of the caller's own, to restart ([`PostgresServer::restart`]) without
/// disturbing other tests; it stops when dropped.
pub fn own_postgres() -> PostgresServer {
    PostgresServer::start("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
}

/// A PostgreSQL server with the default durability settings (fsync on), for benchmarks.
pub fn durable_postgres() -> &'static PostgresServer {
    static SERVER: OnceLock<PostgresServer> = OnceLock::new();
    SERVER.get_or_init(|| PostgresServer::start(""))
}

impl PostgresServer {
    fn start(settings: &str) -> PostgresServer {
        let initdb = find_postgres_binary("initdb");
        let bin_dir = initdb
            .parent()
            .expect("a binary has a directory")
            .to_path_buf();
        // Kept on drop: the server's shell removes it once the server has stopped.
        let data = tempfile::Builder::new()
            .prefix("aerie-postgres")
            .tempdir()
            .expect("a temporary directory")
            .keep();
        // PostgreSQL refuses to run as root; the `postgres` system user runs it then.
        let run_as = running_as_root().then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            let status = Command::new("chown")
                .arg(user)
                .arg(data.as_path())
                .status()
                .expect("chown runs");
            assert!(
                status.success(),
                "cannot give {} to {user}",
                data.as_path().display()
            );
        }
        let cluster = data.as_path().join("cluster");
        run(command(&run_as, &initdb).arg("-D").arg(&cluster).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]));
        let port = free_port();
        let postgres = bin_dir.join("postgres");
        // The server runs again whenever it stops, until `stop` exists (a restart stops it);
        // `read` returns when this process's end of stdin closes: then it stops for good.
        let script = format!(
            "while [ ! -e '{data}/stop' ]; do {} -D '{cluster}' -p {port} -k '{data}' \
             -c listen_addresses=127.0.0.1 {settings} -c max_connections=300 \
             >>'{data}/log' 2>&1; sleep 0.2; done & server=$!; read _; touch '{data}/stop'; \
             kill -INT $(head -n 1 '{cluster}/postmaster.pid') 2>/dev/null; wait $server; \
             rm -rf '{data}'",
            postgres.display(),
            cluster = cluster.display(),
            data = data.display(),
        );
        let server = command(&run_as, Path::new("sh"))
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .spawn()
            .expect("the PostgreSQL server starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start; its log:\n{}",
                std::fs::read_to_string(data.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        PostgresServer {
            port,
            run_as,
            createdb: bin_dir.join("createdb"),
            cluster,
            _server: Mutex::new(server),
        }
    }

    /// Stops the server as an operator's restart does (a fast shutdown: sessions are cut,
    /// open transactions rolled back) and waits until it accepts connections again.
    pub fn restart(&self) {
        let pid = std::fs::read_to_string(self.cluster.join("postmaster.pid"))
            .expect("the server runs")
            .lines()
            .next()
            .expect("the pid file starts with the pid")
            .to_string();
        let status = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "cannot stop PostgreSQL ({pid})");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "PostgreSQL did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start again");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Creates an empty database and returns its URL.
    pub fn fresh_database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The server accepts TCP a moment before it accepts logins.
            let status = command(&self.run_as, &self.createdb)
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    &name,
                ])
                .stderr(Stdio::null())
                .status()
                .expect("createdb runs");
            if status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "createdb {name} failed");
            std::thread::sleep(Duration::from_millis(100));
        }
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

/// An S3-compatible server for this test process.
pub struct S3Server {
    port: u16,
    _server: Mutex<Child>,
}

/// The test process's S3-compatible server (moto), started on first use.
///
/// Panics with instructions if moto is not installed: the test command installs it.
pub fn s3() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let port = free_port();
        let script = format!(
            "moto_server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & server=$!; read _; \
             kill $server; wait $server"
        );
        let server = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start; scripts/test installs it (pip install 'moto[server]')"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        S3Server {
            port,
            _server: Mutex::new(server),
        }
    })
}

impl S3Server {
    /// The endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates an empty bucket and returns its name.
    pub fn fresh_bucket(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        // moto accepts an unsigned request to create a bucket.
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("moto answers");
        write!(
            stream,
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("the request is sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("moto answers");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "creating bucket {name}: {response}"
        );
        name
    }
}

fn command(run_as: &Option<String>, program: &Path) -> Command {
    match run_as {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn run(command: &mut Command) {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Every file under `dir`, at any depth.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the directory can be read") {
        let path = entry.expect("the directory can be read").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a bound address").port()
}

/// `initdb`, `postgres` and friends: on the PATH, or in Debian's versioned directory.
fn find_postgres_binary(name: &str) -> PathBuf {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                // Debian links some binaries into /usr/bin; the server lives beside the real one.
                return std::fs::canonicalize(&candidate).unwrap_or(candidate);
            }
        }
    }
    let mut versions: Vec<PathBuf> = match std::fs::read_dir("/usr/lib/postgresql") {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect(),
        Err(err) if err.kind() == ErrorKind::NotFound => Vec::new(),
        Err(err) => panic!("cannot read /usr/lib/postgresql: {err}"),
    };
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|dir| dir.join("bin").join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("PostgreSQL's {name} is not installed; scripts/test installs it (apt-get install postgresql)")
        })
}
