//! Vector storage. The in-process Qdrant engine ([`EdgeStore`]) is the single-machine
//! default; exactly one process may own its directory.

mod edge;
mod owner_lock;

pub use edge::EdgeStore;
pub use owner_lock::OwnerLock;

/// A vector-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// Another process owns the directory.
    #[error(
        "vector directory {dir} is already owned by another worker process ({holder}); \
         only one process may run the vector queues with the in-process engine"
    )]
    DirectoryOwned {
        /// The directory.
        dir: String,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// Filesystem trouble.
    #[error("vector directory {dir}: {source}")]
    Io {
        /// The directory.
        dir: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The engine refused or failed.
    #[error("vector engine: {0}")]
    Engine(String),
}
