//! Progress reporting out of long operations. The CLI draws bars; tests count.

/// Receives progress of one operation. Calls come from several threads.
pub trait Progress: Send + Sync {
    /// The total amount of work, when known (items or bytes, per operation).
    fn set_total(&self, _total: u64) {}
    /// `n` more units done.
    fn add(&self, _n: u64) {}
    /// A short message about the current item.
    fn message(&self, _msg: &str) {}
    /// One more file done (backup).
    fn file_done(&self) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}
