//! Garbage collection: removing package blobs no version refers to.
//!
//! A publish stores its blob before its database row, so a publish that fails or is killed
//! in between leaves a blob nothing refers to. Such blobs are removed once they are older than
//! a grace period, which must be longer than any publish takes, so that a publish in progress
//! never loses its blob.

use std::collections::HashSet;
use std::time::Duration;

use aerie_blob::BlobStore;
use aerie_core::digest::Digest;
use aerie_db::{Database, now_millis};

/// What a collection found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs referred to by a version.
    pub referenced: usize,
    /// Unreferenced blobs younger than the grace period, left alone.
    pub young: usize,
    /// Unreferenced blobs removed (or, in a dry run, that would be).
    pub removed: Vec<Digest>,
    /// Their total size in bytes.
    pub removed_bytes: u64,
}

/// Removes blobs that no version refers to and that are older than `grace`.
pub async fn collect_garbage(
    db: &Database,
    blobs: &BlobStore,
    grace: Duration,
    dry_run: bool,
) -> Result<GcReport, crate::StartError> {
    // List blobs before reading references: a blob published in between is then young or
    // referenced, never mistaken for garbage.
    let stored = blobs.list().await?;
    let referenced: HashSet<String> = db.referenced_digests().await?.into_iter().collect();
    let cutoff = now_millis() - grace.as_millis() as i64;
    let mut report = GcReport::default();
    for blob in stored {
        if referenced.contains(&blob.digest.to_string()) {
            report.referenced += 1;
        } else if blob.written_at > cutoff {
            report.young += 1;
        } else {
            // Looked at again just before it goes: a publish of the same bytes since the
            // listing wrote it again (it is young) or refers to it now.
            if !dry_run {
                let written = blobs.written_at(&blob.digest).await?;
                if written.is_none_or(|written| written > cutoff) {
                    report.young += usize::from(written.is_some());
                    continue;
                }
                if db.digest_referenced(&blob.digest.to_string()).await? {
                    report.referenced += 1;
                    continue;
                }
                blobs.delete(&blob.digest).await?;
            }
            report.removed_bytes += blob.size;
            report.removed.push(blob.digest);
        }
    }
    Ok(report)
}
