//! An exclusive, process-lifetime lock on a vector directory.
//!
//! The in-process engine keeps state in memory that another process would not see, and two
//! writers would corrupt its files, so a second process pointed at the same directory must
//! fail at start with a clear message instead.

use super::VectorError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Held for as long as the process owns the directory; released on drop (and by the OS if
/// the process dies, so a SIGKILLed worker never leaves a stale lock).
#[derive(Debug)]
pub struct OwnerLock {
    _file: File,
}

impl OwnerLock {
    /// Takes the lock or fails at once naming the current holder.
    pub fn acquire(dir: &Path, holder: &str) -> Result<Self, VectorError> {
        let io = |source| VectorError::Io {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(".owner.lock"))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut current = String::new();
                let _ = file.read_to_string(&mut current);
                return Err(VectorError::DirectoryOwned {
                    dir: dir.display().to_string(),
                    holder: if current.trim().is_empty() {
                        "unknown".into()
                    } else {
                        current.trim().to_owned()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{holder} (pid {})", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}
