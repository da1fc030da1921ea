//! Zip archives, read defensively. An archive is inspected from its central directory
//! before anything is accepted (entry count, names, declared sizes and compression
//! ratios), and every entry is read through a limit when unpacked, because declared
//! sizes can lie.

use std::io::{Read, Seek};
use zip::ZipArchive;

/// What an archive may contain.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    /// Entries (files and folders) in the central directory.
    pub max_entries: usize,
    /// Sum of the declared uncompressed sizes.
    pub max_total_bytes: u64,
    /// One entry's size (larger entries fail individually as `too_large`).
    pub max_entry_bytes: u64,
    /// Largest uncompressed:compressed ratio accepted for an entry larger than
    /// [`RATIO_FLOOR_BYTES`] (text compresses ~5–10×, a bomb ~1,000×).
    pub max_ratio: u64,
}

impl ArchiveLimits {
    /// A plan's limits: entries and archive size from the plan, entries no larger than one
    /// upload may be, and at most 8× the archive size unpacked (text compresses ~5×).
    pub fn for_plan(ent: &crate::entitlements::Entitlements) -> Self {
        Self {
            max_entries: ent.max_import_entries,
            max_total_bytes: ent.max_import_bytes.saturating_mul(8),
            max_entry_bytes: ent.max_upload_bytes,
            max_ratio: 100,
        }
    }
}

/// Entries smaller than this are never judged by their ratio (tiny files compress oddly).
pub const RATIO_FLOOR_BYTES: u64 = 1024 * 1024;

/// Why an archive is refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not a readable zip.
    #[error("the upload is not a readable zip archive: {0}")]
    Invalid(String),
    /// Too many entries.
    #[error("the archive has {found} entries; an import takes at most {max}")]
    TooManyEntries {
        /// Entries found.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// Declared contents too large.
    #[error("the archive would unpack to {found} bytes; an import takes at most {max} bytes")]
    TooLarge {
        /// Declared total.
        found: u64,
        /// The limit.
        max: u64,
    },
    /// Compression ratio of a zip bomb.
    #[error(
        "entry `{name}` claims a compression ratio of {ratio}:1 (limit {max}:1); the archive looks like a zip bomb"
    )]
    Bomb {
        /// The entry.
        name: String,
        /// Its ratio.
        ratio: u64,
        /// The limit.
        max: u64,
    },
    /// Entries share their bytes (a crafted archive multiplying its content).
    #[error(
        "entries of the archive overlap (several names for the same data); the archive looks like a zip bomb"
    )]
    Overlapping,
    /// An entry that would escape the import (`..`, absolute path, drive letter, NUL).
    #[error("entry `{0}` has an unsafe path (absolute, or containing `..`); the archive is refused")]
    UnsafePath(String),
    /// Encrypted entries cannot be read.
    #[error("entry `{0}` is encrypted; upload an archive without a password")]
    Encrypted(String),
}

impl ArchiveError {
    /// Machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::Invalid(_) => "invalid_archive",
            ArchiveError::TooManyEntries { .. } => "too_many_entries",
            ArchiveError::TooLarge { .. } => "archive_too_large",
            ArchiveError::Bomb { .. } | ArchiveError::Overlapping => "zip_bomb",
            ArchiveError::UnsafePath(_) => "unsafe_path",
            ArchiveError::Encrypted(_) => "encrypted_archive",
        }
    }
}

/// What inspection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// File entries (folders are not counted: they import nothing).
    pub files: usize,
    /// Sum of their declared sizes.
    pub declared_bytes: u64,
}

/// Whether a name is safe: relative, no `..` component, no drive letter, no NUL.
pub fn safe_name(name: &str) -> bool {
    if name.is_empty() || name.contains('\0') || name.starts_with(['/', '\\']) {
        return false;
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return false;
    }
    !name.split(['/', '\\']).any(|part| part == "..")
}

/// How many times its own size an archive may declare unpacked, whatever the plan allows
/// (text deflates ~4–6×; many small entries of zeros would pass the per-entry ratio check).
pub const MAX_EXPANSION: u64 = 20;

/// Opens an archive of `archive_len` bytes and checks its central directory against
/// `limits`: entry count, names, declared sizes (total and per-entry ratio), entries that
/// share their bytes, encryption.
pub fn inspect<R: Read + Seek>(
    reader: R,
    archive_len: u64,
    limits: &ArchiveLimits,
) -> Result<(ZipArchive<R>, Summary), ArchiveError> {
    let mut archive = ZipArchive::new(reader).map_err(|e| ArchiveError::Invalid(e.to_string()))?;
    let max_total = limits
        .max_total_bytes
        .min(archive_len.max(1024 * 1024).saturating_mul(MAX_EXPANSION));
    if archive.len() > limits.max_entries {
        return Err(ArchiveError::TooManyEntries {
            found: archive.len(),
            max: limits.max_entries,
        });
    }
    let mut summary = Summary {
        files: 0,
        declared_bytes: 0,
    };
    for i in 0..archive.len() {
        let entry = archive
            .by_index_data(i)
            .map_err(|e| ArchiveError::Invalid(e.to_string()))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if !safe_name(&name) || entry.enclosed_name().is_none() {
            return Err(ArchiveError::UnsafePath(name));
        }
        if entry.is_dir() {
            continue;
        }
        let (size, packed) = (entry.size(), entry.compressed_size().max(1));
        if size > RATIO_FLOOR_BYTES && size / packed > limits.max_ratio {
            return Err(ArchiveError::Bomb {
                name,
                ratio: size / packed,
                max: limits.max_ratio,
            });
        }
        summary.files += 1;
        summary.declared_bytes = summary.declared_bytes.saturating_add(size);
        if entry.encrypted() {
            return Err(ArchiveError::Encrypted(name));
        }
        if summary.declared_bytes > max_total {
            return Err(ArchiveError::TooLarge {
                found: summary.declared_bytes,
                max: max_total,
            });
        }
    }
    let overlapping = archive
        .has_overlapping_entries()
        .map_err(|e| ArchiveError::Invalid(e.to_string()))?;
    if overlapping {
        return Err(ArchiveError::Overlapping);
    }
    Ok((archive, summary))
}

/// One file entry as read for import.
#[derive(Debug)]
pub struct RawEntry {
    /// Position in the central directory (stable across re-runs: the resume point).
    pub index: usize,
    /// Its path inside the archive.
    pub name: String,
    /// Its bytes, or why they could not be read (`code`, sentence).
    pub bytes: Result<Vec<u8>, (&'static str, String)>,
}

/// Reads entry `index` (`None` for folders), never more than `max_entry_bytes` or than it
/// declared, whichever is smaller: a lying header cannot make it inflate further.
pub fn read_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    max_entry_bytes: u64,
) -> Result<Option<RawEntry>, ArchiveError> {
    let mut file = archive
        .by_index(index)
        .map_err(|e| ArchiveError::Invalid(e.to_string()))?;
    let name = String::from_utf8_lossy(file.name_raw()).into_owned();
    if file.is_dir() {
        return Ok(None);
    }
    if file.encrypted() {
        return Err(ArchiveError::Encrypted(name));
    }
    let declared = file.size();
    if declared > max_entry_bytes {
        let msg = format!("the file is larger than the limit of {max_entry_bytes} bytes");
        return Ok(Some(RawEntry {
            index,
            name,
            bytes: Err(("too_large", msg)),
        }));
    }
    let mut buf = Vec::with_capacity(declared.min(16 * 1024 * 1024) as usize);
    let read = (&mut file).take(declared + 1).read_to_end(&mut buf);
    let bytes = match read {
        Err(e) => Err(("corrupt_entry", format!("the entry could not be read: {e}"))),
        Ok(_) if buf.len() as u64 > declared => Err((
            "corrupt_entry",
            "the entry holds more data than its header declares".to_owned(),
        )),
        Ok(_) => Ok(buf),
    };
    Ok(Some(RawEntry { index, name, bytes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_recognised() {
        for bad in [
            "../etc/passwd",
            "a/../../b",
            "/abs",
            "\\win",
            "C:\\x",
            "a/..",
            "",
            "a\0b",
        ] {
            assert!(!safe_name(bad), "{bad:?} should be unsafe");
        }
        for good in ["a.pdf", "folder/b.txt", "x..y.md", "deep/er/c.pdf"] {
            assert!(safe_name(good), "{good:?} should be safe");
        }
    }
}
