//! Hand-made package archives, including hostile ones that the `tar` crate's own writer
//! refuses to produce (`..` paths, links, devices).

use std::io::Write as _;

use flate2::Compression;

/// One raw tar entry, written without any path checks.
pub struct RawEntry {
    /// The entry's name, as stored.
    pub name: Vec<u8>,
    /// Its type.
    pub kind: tar::EntryType,
    /// Its contents.
    pub data: Vec<u8>,
    /// A link target.
    pub link: Option<Vec<u8>>,
}

impl RawEntry {
    /// A regular file.
    pub fn file(name: &str, data: &[u8]) -> RawEntry {
        RawEntry::special(name, tar::EntryType::Regular).with_data(data)
    }

    /// A directory.
    pub fn directory(name: &str) -> RawEntry {
        RawEntry::special(name, tar::EntryType::Directory)
    }

    /// A symbolic or hard link to `target`.
    pub fn link(name: &str, kind: tar::EntryType, target: &str) -> RawEntry {
        RawEntry {
            link: Some(target.as_bytes().to_vec()),
            ..RawEntry::special(name, kind)
        }
    }

    /// An entry of any type, empty.
    pub fn special(name: &str, kind: tar::EntryType) -> RawEntry {
        RawEntry {
            name: name.as_bytes().to_vec(),
            kind,
            data: Vec::new(),
            link: None,
        }
    }

    fn with_data(mut self, data: &[u8]) -> RawEntry {
        self.data = data.to_vec();
        self
    }
}

/// A gzip-compressed tar of `entries`, in order.
pub fn raw_archive(entries: &[RawEntry]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
    {
        let mut builder = tar::Builder::new(&mut encoder);
        for entry in entries {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..entry.name.len()].copy_from_slice(&entry.name);
            if let Some(link) = &entry.link {
                header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
            }
            header.set_entry_type(entry.kind);
            header.set_size(entry.data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append(&header, entry.data.as_slice())
                .expect("writing to memory");
        }
        builder.finish().expect("writing to memory");
    }
    encoder.finish().expect("writing to memory")
}

/// Gzip-compresses `bytes`, whatever they are.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// A valid component that exports an HTTP handler and imports each of `imports`: enough for
/// the package checks, which read names and never run the component.
pub fn http_component(imports: &[&str]) -> Vec<u8> {
    let imports: String = imports
        .iter()
        .map(|name| format!("(import \"{name}\" (instance))"))
        .collect();
    wat::parse_str(format!(
        r#"(component
            {imports}
            (instance $handler)
            (export "wasi:http/incoming-handler@0.2.12" (instance $handler))
        )"#
    ))
    .expect("the component text is valid")
}

/// A minimal manifest for `name` at `version` with one public route.
pub fn manifest(name: &str, version: &str) -> String {
    format!(
        r#"
[plugin]
name = "{name}"
version = "{version}"
description = "Says hello"
license = "MIT"
categories = ["other"]
api = "0.1"

[[provides.routes]]
path = "/*"
guard = "public"
"#
    )
}

/// A valid package: `manifest(name, version)` and `http_component(&[])`.
pub fn package(name: &str, version: &str) -> Vec<u8> {
    raw_archive(&[
        RawEntry::file("aerie.toml", manifest(name, version).as_bytes()),
        RawEntry::file("plugin.wasm", &http_component(&[])),
    ])
}
