//! `--delete`: what is in a restored directory of the target but not in the snapshot's tree
//! is removed, as restic 0.17+ does, once the directory's own items are restored.

use super::plan::Cleanup;
use super::target::Target;
use super::{rel_path, Problems, RestoreOptions};
use crate::progress::{ItemAction, Progress};
use crate::walk::join;
use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// Removes (with `dry_run`, only counts) each item of the directory `c.rel` whose name its
/// tree does not hold, with everything below it, if the filters select it (what they leave
/// out is not the restore's to touch). Gives how many items went; problems are added to
/// `errors` and the rest goes on.
pub(super) fn delete_unexpected(
    target: &Target,
    c: &Cleanup,
    opts: &RestoreOptions,
    dry_run: bool,
    errors: &mut Problems,
    progress: &dyn Progress,
) -> u64 {
    let dir = rel_path(&c.rel);
    let names = match target.names(&dir) {
        Ok(names) => names,
        // Not made (a dry run, or an error reported when it was to be made).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            errors.push(format!(
                "{}: cannot list for deleting: {e}",
                target.shown(&dir).display()
            ));
            return 0;
        }
    };
    let mut deleted = 0;
    for name in names {
        let name = name.into_vec();
        if c.expected.contains(&name) {
            continue;
        }
        let in_snapshot = join(&c.rel, &name);
        let selected = !opts.exclude.matches(&in_snapshot)
            && (opts.include.is_empty() || opts.include.matches(&in_snapshot));
        if !selected {
            continue;
        }
        let path = dir.join(OsStr::from_bytes(&name));
        let mut removed = |p: &Path| {
            let shown = target.shown(p);
            progress.item(ItemAction::Deleted, shown.as_os_str().as_bytes(), None);
        };
        match target.remove_all(&path, dry_run, &mut removed) {
            Ok(n) => deleted += n,
            Err(e) => errors.push(format!(
                "{}: cannot delete: {e}",
                target.shown(&path).display()
            )),
        }
    }
    deleted
}
