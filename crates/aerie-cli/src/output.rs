//! Shared pieces of the command line's text output, and loading a package file.

use std::fmt::Write as _;
use std::path::Path;

use aerie_core::package::{Package, PackageLimits, read_package};
use anyhow::Context as _;

/// `45.2 KiB (46,321 bytes)`.
pub fn human_size(bytes: u64) -> String {
    let exact = bytes
        .to_string()
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|chunk| std::str::from_utf8(chunk).expect("digits are ASCII"))
        .collect::<Vec<_>>()
        .join(",");
    if bytes < 1024 {
        format!("{exact} bytes")
    } else {
        format!(
            "{} ({exact} bytes)",
            bytesize::ByteSize::b(bytes).display().iec()
        )
    }
}

/// Rows of text in aligned columns, indented by two spaces.
#[derive(Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Adds a row.
    pub fn row<const N: usize>(&mut self, cells: [String; N]) {
        self.rows.push(cells.into());
    }

    /// The table as text; every line ends with a newline.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|column| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(column))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (column, cell) in row.iter().enumerate() {
                let _ = write!(line, "  {cell:width$}", width = widths[column]);
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Reads a package file and validates it completely.
pub fn load_package(path: &Path) -> anyhow::Result<(Vec<u8>, Package)> {
    let limits = PackageLimits::default();
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    // Refuse an oversized file before reading it into memory.
    if size > limits.max_compressed {
        anyhow::bail!(
            "{} is not a valid package: {}",
            path.display(),
            aerie_core::package::PackageError::TooLarge {
                size,
                limit: limits.max_compressed
            }
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let package = read_package(&bytes, &limits)
        .with_context(|| format!("{} is not a valid package", path.display()))?;
    Ok((bytes, package))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_both_ways() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1023), "1,023 bytes");
        assert_eq!(human_size(46_321), "45.2 KiB (46,321 bytes)");
        assert_eq!(human_size(10 << 20), "10.0 MiB (10,485,760 bytes)");
    }

    #[test]
    fn tables_align_columns() {
        let mut table = Table::default();
        table.row(["a".into(), "long value".into(), "x".into()]);
        table.row(["longer".into(), "b".into(), "y".into()]);
        assert_eq!(
            table.render(),
            "  a       long value  x\n  longer  b           y\n"
        );
    }
}
