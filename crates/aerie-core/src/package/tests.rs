use std::io::{Read, Write};

use aerie_test_support::archive::{RawEntry, http_component, raw_archive};

use super::*;
use crate::test_support::XorShift;

const MANIFEST: &str = r#"
[plugin]
name = "acme/hello"
version = "0.1.0"
description = "Says hello"
license = "MIT"
categories = ["other"]
api = "0.1"

[[provides.routes]]
path = "/*"
guard = "public"
"#;

/// A component that exports an HTTP handler and imports nothing: enough for inspection.
fn component() -> Vec<u8> {
    http_component(&[])
}

fn file(name: &str, bytes: impl Into<Vec<u8>>) -> PackageFile {
    PackageFile {
        name: name.to_string(),
        bytes: bytes.into(),
    }
}

fn valid_files() -> Vec<PackageFile> {
    vec![
        file("README.md", "# Hello\n"),
        file(COMPONENT_FILE, component()),
        file(MANIFEST_FILE, MANIFEST),
    ]
}

fn raw(name: &str, data: &[u8]) -> RawEntry {
    RawEntry::file(name, data)
}

fn valid_raw_entries() -> Vec<RawEntry> {
    vec![
        raw(MANIFEST_FILE, MANIFEST.as_bytes()),
        raw(COMPONENT_FILE, &component()),
    ]
}

fn refused(bytes: &[u8]) -> PackageError {
    read_package(bytes, &PackageLimits::default()).expect_err("the package was accepted")
}

#[test]
fn a_written_package_reads_back() {
    let bytes = write_package(&valid_files()).unwrap();
    let package = read_package(&bytes, &PackageLimits::default()).unwrap();
    assert_eq!(package.digest, Digest::of(&bytes));
    assert_eq!(package.size, bytes.len() as u64);
    assert_eq!(package.manifest.plugin.name.as_str(), "acme/hello");
    assert_eq!(package.readme(), Some("# Hello\n"));
    assert_eq!(package.component_bytes(), component().as_slice());
    // Files come back in the canonical order, whatever order they were given in.
    let names: Vec<String> = package
        .file_summaries()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, [MANIFEST_FILE, COMPONENT_FILE, "README.md"]);
}

#[test]
fn writing_is_deterministic() {
    let first = write_package(&valid_files()).unwrap();
    let mut reversed = valid_files();
    reversed.reverse();
    let second = write_package(&reversed).unwrap();
    assert_eq!(first, second);
    assert_eq!(Digest::of(&first), Digest::of(&second));
}

#[test]
fn writing_refuses_unknown_and_repeated_files() {
    let mut files = valid_files();
    files.push(file("notes.txt", "x"));
    assert_eq!(
        write_package(&files).unwrap_err().code(),
        "package_unexpected_file"
    );
    let mut files = valid_files();
    files.push(file("README.md", "again"));
    assert_eq!(
        write_package(&files).unwrap_err().code(),
        "package_duplicate_entry"
    );
}

#[test]
fn an_archive_over_the_size_limit_is_refused_before_reading() {
    let limits = PackageLimits {
        max_compressed: 100,
        ..PackageLimits::default()
    };
    let bytes = write_package(&valid_files()).unwrap();
    let err = read_package(&bytes, &limits).unwrap_err();
    assert_eq!(err.code(), "package_too_large");
    assert_eq!(
        err.to_string(),
        format!(
            "the package is {} bytes; the limit is 100 bytes",
            bytes.len()
        )
    );
    // The default limit is 50 MiB.
    let big = vec![0x1f; 50 * 1024 * 1024 + 1];
    assert_eq!(refused(&big).code(), "package_too_large");
}

#[test]
fn a_gzip_bomb_is_stopped_by_the_expansion_ratio() {
    // 64 MiB of zeros compress to about 64 KiB: a ratio near 1000.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::best());
    {
        let mut builder = tar::Builder::new(&mut encoder);
        let mut header = tar::Header::new_gnu();
        header.set_size(64 << 20);
        header.set_mode(0o644);
        builder
            .append_data(
                &mut header,
                COMPONENT_FILE,
                std::io::repeat(0).take(64 << 20),
            )
            .unwrap();
        builder.finish().unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let err = refused(&bomb);
    assert_eq!(err.code(), "package_expansion_ratio");
    insta::assert_snapshot!(err, @"the package decompresses to more than 100 times its compressed size, which only a compression bomb does");
}

#[test]
fn the_uncompressed_total_is_bounded() {
    let limits = PackageLimits {
        max_uncompressed: 4096,
        ..PackageLimits::default()
    };
    // Incompressible content, so only the total limit can apply.
    let noise: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let bytes = raw_archive(&[
        raw(MANIFEST_FILE, MANIFEST.as_bytes()),
        raw(COMPONENT_FILE, &noise),
    ]);
    let err = read_package(&bytes, &limits).unwrap_err();
    assert_eq!(err.code(), "package_uncompressed_too_large");
    assert_eq!(
        err.to_string(),
        "the package decompresses to more than 4096 bytes"
    );
}

#[test]
fn parent_directory_paths_are_refused() {
    let mut entries = valid_raw_entries();
    entries.push(raw("../evil.sh", b"rm -rf /"));
    let err = refused(&raw_archive(&entries));
    assert_eq!(err.code(), "package_unsafe_path");
    insta::assert_snapshot!(err, @r#"the package entry "../evil.sh" climbs out of the archive with `..`"#);
    let err = refused(&raw_archive(&[raw("docs/../../x", b"")]));
    assert_eq!(err.code(), "package_unsafe_path");
}

#[test]
fn absolute_paths_are_refused() {
    let err = refused(&raw_archive(&[raw("/etc/passwd", b"root")]));
    insta::assert_snapshot!(err, @r#"the package entry "/etc/passwd" is an absolute path"#);
    let err = refused(&raw_archive(&[raw("C:\\evil", b"")]));
    assert_eq!(err.code(), "package_unsafe_path");
}

#[test]
fn links_are_refused() {
    let mut entries = valid_raw_entries();
    entries.push(RawEntry::link(
        "README.md",
        tar::EntryType::Symlink,
        "/etc/passwd",
    ));
    let err = refused(&raw_archive(&entries));
    assert_eq!(err.code(), "package_link_entry");
    insta::assert_snapshot!(err, @r#"the package entry "README.md" is a symbolic link; packages hold only regular files"#);

    let mut entries = valid_raw_entries();
    entries.push(RawEntry::link(
        "LICENSE",
        tar::EntryType::Link,
        "aerie.toml",
    ));
    insta::assert_snapshot!(refused(&raw_archive(&entries)), @r#"the package entry "LICENSE" is a hard link; packages hold only regular files"#);
}

#[test]
fn devices_and_fifos_are_refused() {
    for (kind, word) in [
        (tar::EntryType::Char, "character device"),
        (tar::EntryType::Block, "block device"),
        (tar::EntryType::Fifo, "FIFO"),
    ] {
        let entry = RawEntry::special("README.md", kind);
        let err = refused(&raw_archive(&[entry]));
        assert_eq!(err.code(), "package_special_entry");
        assert!(err.to_string().contains(word), "{err}");
    }
}

#[test]
fn duplicate_entries_are_refused() {
    let mut entries = valid_raw_entries();
    entries.push(raw(MANIFEST_FILE, b"[plugin]"));
    let err = refused(&raw_archive(&entries));
    assert_eq!(err.code(), "package_duplicate_entry");
    insta::assert_snapshot!(err, @r#"the package holds "aerie.toml" twice"#);
    // `./aerie.toml` is the same file as `aerie.toml`.
    let mut entries = valid_raw_entries();
    entries.push(raw("./aerie.toml", MANIFEST.as_bytes()));
    assert_eq!(
        refused(&raw_archive(&entries)).code(),
        "package_duplicate_entry"
    );
}

#[test]
fn unexpected_files_and_directories_are_refused() {
    let mut entries = valid_raw_entries();
    entries.push(raw("run.sh", b"#!/bin/sh"));
    insta::assert_snapshot!(refused(&raw_archive(&entries)), @r#"the package holds "run.sh", which is not a package file; a package holds aerie.toml, plugin.wasm and optionally README.md, CHANGELOG.md, LICENSE, icon.png, icon.svg"#);
    let mut entries = valid_raw_entries();
    entries.push(RawEntry::directory("docs/"));
    assert_eq!(
        refused(&raw_archive(&entries)).code(),
        "package_unexpected_file"
    );
}

#[test]
fn a_root_directory_entry_and_dot_slash_names_are_accepted() {
    let entries = vec![
        RawEntry::directory("./"),
        raw("./aerie.toml", MANIFEST.as_bytes()),
        raw("./plugin.wasm", &component()),
    ];
    let package = read_package(&raw_archive(&entries), &PackageLimits::default()).unwrap();
    assert_eq!(package.files.len(), 2);
}

#[test]
fn missing_required_files_are_named() {
    let err = refused(&raw_archive(&[raw(MANIFEST_FILE, MANIFEST.as_bytes())]));
    assert_eq!(err.code(), "package_missing_file");
    insta::assert_snapshot!(err, @"the package has no plugin.wasm");
    let err = refused(&raw_archive(&[raw(COMPONENT_FILE, &component())]));
    insta::assert_snapshot!(err, @"the package has no aerie.toml");
}

#[test]
fn a_core_module_is_not_a_component() {
    let module = wat::parse_str("(module (func (export \"run\")))").unwrap();
    let err = refused(&raw_archive(&[
        raw(MANIFEST_FILE, MANIFEST.as_bytes()),
        raw(COMPONENT_FILE, &module),
    ]));
    assert_eq!(err.code(), "component_core_module");
    insta::assert_snapshot!(err, @"plugin.wasm is a core WebAssembly module, not a component: build it for the wasm32-wasip2 target, or wrap it with `wasm-tools component new`");
}

#[test]
fn random_bytes_are_not_a_package() {
    let mut random = XorShift(0x2545_f491_4f6c_dd1d);
    let noise: Vec<u8> = (0..4096).map(|_| random.next() as u8).collect();
    insta::assert_snapshot!(refused(&noise), @"the package is not a gzip-compressed tar archive");
    // Gzip magic followed by noise is corrupt, not a panic.
    let mut fake = vec![0x1f, 0x8b];
    fake.extend_from_slice(&noise);
    assert_eq!(refused(&fake).code(), "package_corrupt");
    // A gzip stream of something that is not tar.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(&noise).unwrap();
    let gzipped_noise = encoder.finish().unwrap();
    let code = refused(&gzipped_noise).code();
    assert!(
        matches!(code, "package_corrupt" | "package_truncated"),
        "{code}"
    );
    assert_eq!(refused(b"").code(), "package_not_gzip");
}

#[test]
fn random_bytes_as_the_component_are_not_wasm() {
    let err = refused(&raw_archive(&[
        raw(MANIFEST_FILE, MANIFEST.as_bytes()),
        raw(COMPONENT_FILE, b"MZ\x90\x00 not wasm"),
    ]));
    assert_eq!(err.code(), "component_not_wasm");
}

#[test]
fn every_truncation_of_a_package_is_refused_without_panicking() {
    let bytes = write_package(&valid_files()).unwrap();
    for len in 0..bytes.len() {
        let err = refused(&bytes[..len]);
        assert!(
            matches!(
                err.code(),
                "package_truncated" | "package_corrupt" | "package_not_gzip"
            ),
            "at {len} bytes: {err}"
        );
    }
    insta::assert_snapshot!(refused(&bytes[..bytes.len() / 2]), @"the package archive is truncated");
}

#[test]
fn data_after_the_gzip_stream_is_refused() {
    let mut bytes = write_package(&valid_files()).unwrap();
    bytes.extend_from_slice(b"appended");
    insta::assert_snapshot!(refused(&bytes), @"the package archive is corrupt: unexpected data after the end of the gzip stream");
}

#[test]
fn a_flipped_byte_fails_the_gzip_checksum() {
    let bytes = write_package(&valid_files()).unwrap();
    let mut damaged = bytes.clone();
    let at = damaged.len() - 6; // inside the CRC32 trailer
    damaged[at] ^= 0xff;
    assert_eq!(refused(&damaged).code(), "package_corrupt");
}

#[test]
fn too_many_entries_are_refused() {
    let entries: Vec<RawEntry> = (0..40).map(|_| RawEntry::directory("./")).collect();
    insta::assert_snapshot!(refused(&raw_archive(&entries)), @"the package has more than 32 entries");
}

#[test]
fn files_over_their_own_limit_are_refused() {
    let big_manifest = "#".repeat(65 * 1024);
    let err = refused(&raw_archive(&[raw(MANIFEST_FILE, big_manifest.as_bytes())]));
    insta::assert_snapshot!(err, @"aerie.toml is larger than its limit of 65536 bytes");
}

#[test]
fn text_files_must_be_utf8_and_icons_images() {
    let mut entries = valid_raw_entries();
    entries.push(raw("README.md", b"\xff\xfe not utf-8"));
    insta::assert_snapshot!(refused(&raw_archive(&entries)), @"README.md is not valid UTF-8 text");
    let mut entries = valid_raw_entries();
    entries.push(raw("icon.png", b"GIF89a"));
    insta::assert_snapshot!(refused(&raw_archive(&entries)), @"icon.png is not a PNG image");
}

#[test]
fn an_invalid_manifest_inside_a_package_is_reported_with_its_problems() {
    let bad = MANIFEST.replace("acme/hello", "Acme/Hello");
    let err = refused(&raw_archive(&[
        raw(MANIFEST_FILE, bad.as_bytes()),
        raw(COMPONENT_FILE, &component()),
    ]));
    assert_eq!(err.code(), "manifest_invalid");
    assert!(
        err.to_string()
            .starts_with("invalid aerie.toml: plugin.name:"),
        "{err}"
    );
}

/// A package with the test manifest (or `manifest`) and an HTTP handler component that
/// imports the interface `import`.
fn package_importing(import: &str, manifest: &str) -> Vec<u8> {
    raw_archive(&[
        raw(MANIFEST_FILE, manifest.as_bytes()),
        raw(COMPONENT_FILE, &http_component(&[import])),
    ])
}

#[test]
fn imports_must_be_covered_by_permissions() {
    let err = refused(&package_importing(
        "wasi:keyvalue/store@0.2.0-draft",
        MANIFEST,
    ));
    assert_eq!(err.code(), "component_import_not_permitted");
    insta::assert_snapshot!(err, @"plugin.wasm imports `wasi:keyvalue/store@0.2.0-draft`, which needs `permissions.keyvalue` in aerie.toml");
    let granted = MANIFEST.replace(
        "[[provides.routes]]",
        "[permissions]\nkeyvalue = true\n\n[[provides.routes]]",
    );
    let bytes = package_importing("wasi:keyvalue/store@0.2.0-draft", &granted);
    assert!(read_package(&bytes, &PackageLimits::default()).is_ok());
}

#[test]
fn unknown_imports_are_named() {
    let bytes = package_importing("acme:spy/keylogger@1.0.0", MANIFEST);
    insta::assert_snapshot!(refused(&bytes), @"plugin.wasm imports `acme:spy/keylogger@1.0.0`, which Aerie does not provide");
}

#[test]
fn provides_must_match_the_exports() {
    let no_routes = MANIFEST.replace(
        "[[provides.routes]]\npath = \"/*\"\nguard = \"public\"\n",
        "",
    );
    let bytes = raw_archive(&[
        raw(MANIFEST_FILE, no_routes.as_bytes()),
        raw(COMPONENT_FILE, &component()),
    ]);
    insta::assert_snapshot!(refused(&bytes), @"plugin.wasm exports wasi:http/incoming-handler, but aerie.toml declares no [[provides.routes]]");
    let with_service = MANIFEST.replace(
        "[[provides.routes]]",
        "[provides]\nservices = [\"greet\"]\n\n[[provides.routes]]",
    );
    let bytes = raw_archive(&[
        raw(MANIFEST_FILE, with_service.as_bytes()),
        raw(COMPONENT_FILE, &component()),
    ]);
    insta::assert_snapshot!(refused(&bytes), @"aerie.toml declares provides.services, but plugin.wasm does not export aerie:plugin/service");
}

#[test]
fn mutated_archives_are_refused_or_read_but_never_panic() {
    // Mutate the tar stream under the gzip layer, so that tar headers, names, sizes and file
    // contents are what breaks, not only the gzip checksum.
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(write_package(&valid_files()).unwrap().as_slice())
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..1500 {
        let mut mutated = tar_bytes.clone();
        for _ in 0..1 + random.below(4) {
            let at = random.below(mutated.len());
            mutated[at] = random.next() as u8;
        }
        if round % 5 == 0 {
            mutated.truncate(random.below(mutated.len()));
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(&mutated).unwrap();
        let archive = encoder.finish().unwrap();
        // Either outcome is fine; a panic fails the test.
        let _ = read_package(&archive, &PackageLimits::default());
    }
}
