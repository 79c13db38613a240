//! `aerie backup`, `aerie backup verify` and `aerie restore` on a running server under writes:
//! what the backup holds is whole, a damaged backup is refused, and a server started on the
//! restored directory serves every plugin, version, review, space, installation and secret.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::Value;

use crate::{RunningServer, aerie, http_get, http_get_with, package, package_as_version, temp_dir};

#[test]
fn a_backup_taken_while_publishing_restores_into_a_server_that_serves_everything() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let server = RunningServer::start(&data);
    let run = |args: &[&str]| server.aerie(args, dir.path()).success();
    run(&["login", "--admin"]);
    run(&["namespace", "create", "examples", "--allow-unsigned"]);
    for plugin in ["greeter", "greeter-client"] {
        run(&["publish", package(plugin).to_str().unwrap()]);
    }
    run(&[
        "review",
        "examples/greeter",
        "--stars",
        "5",
        "--text",
        "Kept",
    ]);
    run(&["space", "create", "team"]);
    run(&[
        "install",
        "examples/greeter-client",
        "--space",
        "team",
        "--yes",
    ]);
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
        .success_with_input("kept-secret\n");

    // Versions are published one after another while the backup is taken.
    let versions: Vec<PathBuf> = (1..=20)
        .map(|patch| {
            let path = dir.path().join(format!("greeter-0.2.{patch}.aerie"));
            package_as_version(package("greeter"), &format!("0.2.{patch}"), &path);
            path
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicUsize::new(0));
    let publishing = {
        let (stop, published) = (Arc::clone(&stop), Arc::clone(&published));
        let publish: Vec<_> = versions
            .iter()
            .map(|path| server.aerie(&["publish", path.to_str().unwrap()], dir.path()))
            .collect();
        std::thread::spawn(move || {
            for publish in publish {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                publish.success();
                published.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // The backup starts once the writes are under way.
    while published.load(Ordering::Relaxed) < 2 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let backup = dir.path().join("backup");
    let said = aerie(&["backup", backup.to_str().unwrap()])
        .env("AERIE_DATA_DIR", &data)
        .success();
    stop.store(true, Ordering::Relaxed);
    publishing.join().unwrap();
    let published = published.load(Ordering::Relaxed);
    assert!(said.starts_with("Backed up the database"), "{said}");
    // A backup is never written over.
    let refused = aerie(&["backup", backup.to_str().unwrap()])
        .env("AERIE_DATA_DIR", &data)
        .failure();
    assert!(refused.contains("is not empty"), "{refused}");

    let verified = aerie(&["backup", "verify", backup.to_str().unwrap()]).success();
    assert!(verified.contains("is whole"), "{verified}");
    // One byte changed in one package, and the backup says so.
    let damaged = dir.path().join("damaged");
    crate::copy_tree(&backup, &damaged);
    let blob = aerie_test_support::files_under(&damaged.join("blobs"))
        .into_iter()
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let refused = aerie(&["backup", "verify", damaged.to_str().unwrap()]).failure();
    assert!(refused.contains("damaged"), "{refused}");

    let restored = dir.path().join("restored");
    let said = aerie(&["restore", backup.to_str().unwrap()])
        .env("AERIE_DATA_DIR", &restored)
        .success();
    assert!(said.starts_with("Restored"), "{said}");
    let refused = aerie(&["restore", backup.to_str().unwrap()])
        .env("AERIE_DATA_DIR", &restored)
        .failure();
    assert!(refused.contains("is not empty"), "{refused}");

    drop(server);
    let server = RunningServer::start(&restored);
    // Ready once its spaces' plugins are loaded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http_get(server.port, "/readyz").is_none_or(|(status, _)| status != 200) {
        assert!(std::time::Instant::now() < deadline, "never ready");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let run = |args: &[&str]| server.aerie(args, dir.path()).success();
    let info: Value = serde_json::from_str(&run(&["info", "examples/greeter", "--json"])).unwrap();
    let kept: Vec<String> = info["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|version| version["version"].as_str().unwrap().to_string())
        .collect();
    assert!(kept.contains(&"0.1.0".to_string()), "{kept:?}");
    // What the snapshot holds is what was acknowledged before it, and at most all of it.
    assert!(
        kept.len() >= 3 && kept.len() <= 1 + published,
        "{kept:?} of {published}"
    );
    for version in &kept {
        run(&[
            "download",
            &format!("examples/greeter@{version}"),
            "--output",
            "check.aerie",
        ]);
    }
    let (status, reviews) =
        http_get(server.port, "/api/v1/plugins/examples/greeter/reviews").unwrap();
    assert_eq!(status, 200);
    assert!(reviews.contains("Kept"), "{reviews}");
    let found = run(&["search", "greeter"]);
    assert!(found.contains("examples/greeter-client"), "{found}");
    let (status, text) = http_get(server.port, "/s/team/examples/greeter-client/?name=Al").unwrap();
    assert_eq!((status, text.as_str()), (200, "Hello, Al!\n"));
    let (status, _) = http_get_with(
        server.port,
        "/s/team/examples/greeter-client/private",
        &[("Authorization", "Bearer kept-secret")],
    )
    .unwrap();
    assert_eq!(status, 200, "the secret opens with the restored master key");
}
