//! The package archive: a gzip-compressed tar holding `aerie.toml`, `plugin.wasm` and a few
//! optional files.
//!
//! [`write_package`] is deterministic: the same files always give the same bytes, so the same
//! sources give the same `sha256:` digest. [`read_package`] treats its input as hostile: it
//! never touches the disk, bounds every size before allocating, and refuses anything but a
//! short list of regular files at the top level.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;

use flate2::Compression;
use serde::Serialize;

use crate::digest::Digest;
use crate::inspect::{self, ComponentInfo, InspectError};
use crate::manifest::{Manifest, ManifestError};

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "aerie.toml";
/// The component's file name.
pub const COMPONENT_FILE: &str = "plugin.wasm";

/// Every file a package may hold, with the largest size each may have (`None`: bounded only by
/// the package's uncompressed limit). Archives list them in this order.
pub const PACKAGE_FILES: &[(&str, Option<u64>)] = &[
    (MANIFEST_FILE, Some(64 * 1024)),
    (COMPONENT_FILE, None),
    ("README.md", Some(1024 * 1024)),
    ("CHANGELOG.md", Some(1024 * 1024)),
    ("LICENSE", Some(256 * 1024)),
    ("icon.png", Some(512 * 1024)),
    ("icon.svg", Some(512 * 1024)),
];

/// The limits [`read_package`] enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackageLimits {
    /// Largest package (compressed) in bytes.
    pub max_compressed: u64,
    /// Largest total of the decompressed tar stream, in bytes.
    pub max_uncompressed: u64,
    /// Most entries in the tar stream, directories and metadata included.
    pub max_entries: usize,
    /// Largest ratio of decompressed to compressed bytes, once past the first MiB.
    pub max_expansion_ratio: u64,
}

impl Default for PackageLimits {
    fn default() -> PackageLimits {
        PackageLimits {
            max_compressed: 50 * 1024 * 1024,
            max_uncompressed: 256 * 1024 * 1024,
            max_entries: 32,
            max_expansion_ratio: 100,
        }
    }
}

/// One file of a package.
#[derive(Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// Its name, one of [`PACKAGE_FILES`].
    pub name: String,
    /// Its contents.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for PackageFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes)", self.name, self.bytes.len())
    }
}

/// A package that passed every check: archive, manifest and component.
#[derive(Clone, Debug)]
pub struct Package {
    /// The digest of the archive bytes: the package's identity.
    pub digest: Digest,
    /// The archive's size in bytes.
    pub size: u64,
    /// The validated manifest.
    pub manifest: Manifest,
    /// The component's imports and exports.
    pub component: ComponentInfo,
    /// Every file, in archive order.
    pub files: Vec<PackageFile>,
}

impl Package {
    /// The contents of the file called `name`, if the package has it.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|file| file.name == name)
            .map(|file| file.bytes.as_slice())
    }

    /// The component's bytes.
    pub fn component_bytes(&self) -> &[u8] {
        self.file(COMPONENT_FILE)
            .expect("a read package always has a component")
    }

    /// The README, if any.
    pub fn readme(&self) -> Option<&str> {
        self.text("README.md")
    }

    /// The CHANGELOG, if any.
    pub fn changelog(&self) -> Option<&str> {
        self.text("CHANGELOG.md")
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.file(name)
            .map(|bytes| std::str::from_utf8(bytes).expect("text files are checked on read"))
    }
}

/// A summary of one file, for listings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

impl Package {
    /// The files' names and sizes.
    pub fn file_summaries(&self) -> Vec<FileSummary> {
        self.files
            .iter()
            .map(|file| FileSummary {
                name: file.name.clone(),
                size: file.bytes.len() as u64,
            })
            .collect()
    }
}

/// Why a package was refused.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The archive is over [`PackageLimits::max_compressed`].
    #[error("the package is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Not gzip data at all.
    #[error("the package is not a gzip-compressed tar archive")]
    NotGzip,
    /// The gzip or tar stream ends early.
    #[error("the package archive is truncated")]
    Truncated,
    /// The gzip or tar stream is malformed.
    #[error("the package archive is corrupt: {0}")]
    Corrupt(String),
    /// More entries than [`PackageLimits::max_entries`].
    #[error("the package has more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// Decompresses to more than [`PackageLimits::max_uncompressed`].
    #[error("the package decompresses to more than {limit} bytes")]
    UncompressedTooLarge {
        /// The limit.
        limit: u64,
    },
    /// Decompresses to more than [`PackageLimits::max_expansion_ratio`] times its size.
    #[error(
        "the package decompresses to more than {ratio} times its compressed size, \
         which only a compression bomb does"
    )]
    ExpansionRatio {
        /// The limit.
        ratio: u64,
    },
    /// An absolute path, a `..` component, or a name that is not UTF-8.
    #[error("the package entry {path:?} {reason}")]
    UnsafePath {
        /// The entry's name as stored (lossily decoded).
        path: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A symbolic or hard link.
    #[error("the package entry {path:?} is a {kind}; packages hold only regular files")]
    Link {
        /// The entry's name.
        path: String,
        /// `symbolic link` or `hard link`.
        kind: &'static str,
    },
    /// A device, FIFO, sparse file or other special entry.
    #[error("the package entry {path:?} is a {kind}; packages hold only regular files")]
    SpecialFile {
        /// The entry's name.
        path: String,
        /// What it is.
        kind: String,
    },
    /// The same name twice.
    #[error("the package holds {path:?} twice")]
    Duplicate {
        /// The repeated name.
        path: String,
    },
    /// A name not in [`PACKAGE_FILES`].
    #[error(
        "the package holds {path:?}, which is not a package file; a package holds aerie.toml, \
         plugin.wasm and optionally README.md, CHANGELOG.md, LICENSE, icon.png, icon.svg"
    )]
    UnexpectedFile {
        /// The name.
        path: String,
    },
    /// A file over its own limit.
    #[error("{path} is larger than its limit of {limit} bytes")]
    FileTooLarge {
        /// The name.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// A required file is absent.
    #[error("the package has no {path}")]
    Missing {
        /// The name.
        path: &'static str,
    },
    /// A text file that is not UTF-8.
    #[error("{path} is not valid UTF-8 text")]
    NotUtf8 {
        /// The name.
        path: String,
    },
    /// An icon that is not the image its name says.
    #[error("{path} is not a {format} image")]
    InvalidIcon {
        /// The name.
        path: String,
        /// `PNG` or `SVG`.
        format: &'static str,
    },
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The component is invalid or does not fit the manifest.
    #[error(transparent)]
    Component(#[from] InspectError),
}

impl PackageError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            PackageError::TooLarge { .. } => "package_too_large",
            PackageError::NotGzip => "package_not_gzip",
            PackageError::Truncated => "package_truncated",
            PackageError::Corrupt(_) => "package_corrupt",
            PackageError::TooManyEntries { .. } => "package_too_many_entries",
            PackageError::UncompressedTooLarge { .. } => "package_uncompressed_too_large",
            PackageError::ExpansionRatio { .. } => "package_expansion_ratio",
            PackageError::UnsafePath { .. } => "package_unsafe_path",
            PackageError::Link { .. } => "package_link_entry",
            PackageError::SpecialFile { .. } => "package_special_entry",
            PackageError::Duplicate { .. } => "package_duplicate_entry",
            PackageError::UnexpectedFile { .. } => "package_unexpected_file",
            PackageError::FileTooLarge { .. } => "package_file_too_large",
            PackageError::Missing { .. } => "package_missing_file",
            PackageError::NotUtf8 { .. } => "package_file_not_utf8",
            PackageError::InvalidIcon { .. } => "package_invalid_icon",
            PackageError::Manifest(_) => "manifest_invalid",
            PackageError::Component(err) => err.code(),
        }
    }
}

/// Writes a package archive from `files`, deterministically: entries in [`PACKAGE_FILES`]
/// order, with zeroed times, owners and fixed modes, and a gzip header without a time stamp.
///
/// Fails if a name is not a package file or appears twice.
pub fn write_package(files: &[PackageFile]) -> Result<Vec<u8>, PackageError> {
    let mut ordered: Vec<&PackageFile> = Vec::with_capacity(files.len());
    for (name, _) in PACKAGE_FILES {
        let mut matching = files.iter().filter(|file| file.name == *name);
        if let Some(file) = matching.next() {
            ordered.push(file);
        }
        if matching.next().is_some() {
            return Err(PackageError::Duplicate {
                path: name.to_string(),
            });
        }
    }
    if let Some(stray) = files.iter().find(|file| !is_package_file(&file.name)) {
        return Err(PackageError::UnexpectedFile {
            path: stray.name.clone(),
        });
    }
    let gzip = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::best());
    let mut builder = tar::Builder::new(gzip);
    builder.mode(tar::HeaderMode::Deterministic);
    for file in ordered {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(file.bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, &file.name, file.bytes.as_slice())
            .expect("writing a short name into memory cannot fail");
    }
    let gzip = builder
        .into_inner()
        .expect("finishing an archive in memory cannot fail");
    Ok(gzip.finish().expect("finishing gzip in memory cannot fail"))
}

fn is_package_file(name: &str) -> bool {
    PACKAGE_FILES.iter().any(|(known, _)| *known == name)
}

/// Reads, validates and inspects a package: the archive, the manifest, and the component
/// against the manifest's permissions and `[provides]`.
pub fn read_package(bytes: &[u8], limits: &PackageLimits) -> Result<Package, PackageError> {
    let files = read_archive(bytes, limits)?;
    let text = |name: &str| {
        files
            .iter()
            .find(|file| file.name == name)
            .map(|file| std::str::from_utf8(&file.bytes).expect("text files are checked on read"))
    };
    let manifest_text = text(MANIFEST_FILE).ok_or(PackageError::Missing {
        path: MANIFEST_FILE,
    })?;
    let manifest = Manifest::parse(manifest_text)?;
    let component_bytes = files
        .iter()
        .find(|file| file.name == COMPONENT_FILE)
        .ok_or(PackageError::Missing {
            path: COMPONENT_FILE,
        })?;
    let component = inspect::inspect_component(&component_bytes.bytes)?;
    inspect::check_against_manifest(&component, &manifest)?;
    Ok(Package {
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        manifest,
        component,
        files,
    })
}

/// Reads the archive layer only: every entry checked, every file in memory. Text files are
/// checked to be UTF-8 and icons to be images; the manifest and component are not parsed.
pub fn read_archive(
    bytes: &[u8],
    limits: &PackageLimits,
) -> Result<Vec<PackageFile>, PackageError> {
    let size = bytes.len() as u64;
    if size > limits.max_compressed {
        return Err(PackageError::TooLarge {
            size,
            limit: limits.max_compressed,
        });
    }
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(PackageError::NotGzip);
    }
    let ratio_budget = size
        .saturating_mul(limits.max_expansion_ratio)
        .max(1024 * 1024);
    let budget = limits.max_uncompressed.min(ratio_budget);
    let tracker = Rc::new(Budget {
        remaining: Cell::new(budget),
        exceeded: Cell::new(false),
    });
    let limit_error = || {
        if budget < limits.max_uncompressed {
            PackageError::ExpansionRatio {
                ratio: limits.max_expansion_ratio,
            }
        } else {
            PackageError::UncompressedTooLarge {
                limit: limits.max_uncompressed,
            }
        }
    };
    // Any read error after the budget ran out is the budget's doing, whatever tar or gzip
    // make of it.
    let classify = |err: io::Error| {
        if tracker.exceeded.get() {
            limit_error()
        } else {
            io_error(err)
        }
    };

    let mut decoder = flate2::bufread::GzDecoder::new(bytes);
    let budgeted = BudgetReader {
        inner: &mut decoder,
        budget: Rc::clone(&tracker),
    };
    let mut archive = tar::Archive::new(budgeted);
    let mut files: Vec<PackageFile> = Vec::new();
    let entries = archive.entries().map_err(&classify)?;
    for (count, entry) in entries.enumerate() {
        if count >= limits.max_entries {
            return Err(PackageError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let mut entry = entry.map_err(&classify)?;
        let Some(name) = check_entry(&entry)? else {
            continue;
        };
        if files.iter().any(|file| file.name == name) {
            return Err(PackageError::Duplicate { path: name });
        }
        let file_limit = PACKAGE_FILES
            .iter()
            .find(|(known, _)| *known == name)
            .and_then(|(_, limit)| *limit);
        let declared = entry.size();
        if let Some(limit) = file_limit.filter(|limit| declared > *limit) {
            return Err(PackageError::FileTooLarge { path: name, limit });
        }
        if declared > budget {
            return Err(limit_error());
        }
        let mut contents = Vec::with_capacity(declared.min(1024 * 1024) as usize);
        entry.read_to_end(&mut contents).map_err(&classify)?;
        if contents.len() as u64 != declared {
            return Err(PackageError::Truncated);
        }
        check_contents(&name, &contents)?;
        files.push(PackageFile {
            name,
            bytes: contents,
        });
    }
    drop(archive);
    // Read what follows the tar's end marker so that the gzip checksum is verified and a
    // stream that keeps expanding past the archive still counts against the budget.
    let mut rest = BudgetReader {
        inner: &mut decoder,
        budget: Rc::clone(&tracker),
    };
    io::copy(&mut rest, &mut io::sink()).map_err(classify)?;
    if !decoder.into_inner().is_empty() {
        return Err(PackageError::Corrupt(
            "unexpected data after the end of the gzip stream".to_string(),
        ));
    }
    for required in [MANIFEST_FILE, COMPONENT_FILE] {
        if !files.iter().any(|file| file.name == required) {
            return Err(PackageError::Missing { path: required });
        }
    }
    Ok(files)
}

/// Checks an entry's name and type. Returns the file name, or `None` for an entry to skip
/// (the archive's root directory, global metadata).
fn check_entry<R: Read>(entry: &tar::Entry<'_, R>) -> Result<Option<String>, PackageError> {
    let raw = entry.path_bytes();
    let lossy = String::from_utf8_lossy(&raw).into_owned();
    let unsafe_path = |reason| PackageError::UnsafePath {
        path: lossy.clone(),
        reason,
    };
    let Ok(path) = std::str::from_utf8(&raw) else {
        return Err(unsafe_path("is not valid UTF-8"));
    };
    let is_absolute =
        path.starts_with('/') || path.starts_with('\\') || path.as_bytes().get(1) == Some(&b':');
    if is_absolute {
        return Err(unsafe_path("is an absolute path"));
    }
    if path.split(['/', '\\']).any(|part| part == "..") {
        return Err(unsafe_path("climbs out of the archive with `..`"));
    }
    let mut name = path;
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    let entry_type = entry.header().entry_type();
    match entry_type {
        tar::EntryType::Regular | tar::EntryType::Continuous => {}
        tar::EntryType::Symlink => {
            return Err(PackageError::Link {
                path: lossy,
                kind: "symbolic link",
            });
        }
        tar::EntryType::Link => {
            return Err(PackageError::Link {
                path: lossy,
                kind: "hard link",
            });
        }
        tar::EntryType::Directory if matches!(name, "" | "." | "./") => return Ok(None),
        tar::EntryType::XGlobalHeader => return Ok(None),
        tar::EntryType::Directory => {
            return Err(PackageError::UnexpectedFile { path: lossy });
        }
        other => {
            let kind = match other {
                tar::EntryType::Char => "character device".to_string(),
                tar::EntryType::Block => "block device".to_string(),
                tar::EntryType::Fifo => "FIFO".to_string(),
                tar::EntryType::GNUSparse => "sparse file".to_string(),
                other => format!("special entry (type {:?})", other.as_byte() as char),
            };
            return Err(PackageError::SpecialFile { path: lossy, kind });
        }
    }
    if !is_package_file(name) {
        return Err(PackageError::UnexpectedFile { path: lossy });
    }
    Ok(Some(name.to_string()))
}

fn check_contents(name: &str, contents: &[u8]) -> Result<(), PackageError> {
    match name {
        COMPONENT_FILE => Ok(()),
        "icon.png" if !contents.starts_with(b"\x89PNG\r\n\x1a\n") => {
            Err(PackageError::InvalidIcon {
                path: name.to_string(),
                format: "PNG",
            })
        }
        "icon.png" => Ok(()),
        _ => {
            let text = std::str::from_utf8(contents).map_err(|_| PackageError::NotUtf8 {
                path: name.to_string(),
            })?;
            if name == "icon.svg" && !text.contains("<svg") {
                return Err(PackageError::InvalidIcon {
                    path: name.to_string(),
                    format: "SVG",
                });
            }
            Ok(())
        }
    }
}

fn io_error(err: io::Error) -> PackageError {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        return PackageError::Truncated;
    }
    let message = err.to_string();
    // tar reports a stream that ends inside a header or entry in its own words.
    if message.contains("failed to read entire block") || message.contains("unexpected EOF") {
        return PackageError::Truncated;
    }
    PackageError::Corrupt(message)
}

/// How many more decompressed bytes may be read, and whether a read went past that.
struct Budget {
    remaining: Cell<u64>,
    exceeded: Cell<bool>,
}

/// Passes bytes through until the shared budget runs out, then fails and marks it exceeded.
struct BudgetReader<R> {
    inner: R,
    budget: Rc<Budget>,
}

impl<R: Read> Read for BudgetReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.budget.remaining.get();
        if remaining == 0 {
            // One byte more tells "exactly at the limit" from "over it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.budget.exceeded.set(true);
                    Err(io::Error::other("decompression budget exceeded"))
                }
            };
        }
        let len = buf.len().min(remaining.min(usize::MAX as u64) as usize);
        let read = self.inner.read(&mut buf[..len])?;
        self.budget.remaining.set(remaining - read as u64);
        Ok(read)
    }
}

#[cfg(test)]
mod tests;
