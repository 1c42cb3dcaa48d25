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
    /// An item of a restore is done: its path in the snapshot (for `Deleted`, its path in
    /// the target) and, for files, its size.
    fn item(&self, _action: ItemAction, _path: &[u8], _size: Option<u64>) {}
}

/// What a restore did with one item, as restic's verbose restore names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemAction {
    Restored,
    /// An existing file whose content was rewritten in part.
    Updated,
    /// An existing item the overwrite mode kept.
    Unchanged,
    Deleted,
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}
