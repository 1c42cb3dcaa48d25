//! A folder of the target swapped for a symbolic link while restore runs (what a tenant
//! sharing a volume can do to the agent restoring into it): nothing may be written, created,
//! changed or removed outside the target, whatever the timing.

mod support;

use arca_engine::filter::Patterns;
use arca_engine::progress::Progress;
use arca_engine::restore::{restore, Overwrite, RestoreOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use support::{repository_with_backup_of, Swapper};

const FILES: usize = 3000;

/// The swapper's hook: once restore has made its folders (it sets the total just before it
/// creates files), folder `d` is exchanged with a symbolic link to the outside folder, so
/// every file of `d` meets the link at least once.
struct SwapWhenFoldersAreMade(Arc<Swapper>);

impl Progress for SwapWhenFoldersAreMade {
    fn set_total(&self, _total: u64) {
        self.0.first();
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = walk(dir);
    names.sort();
    names
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        out.push(e.path().display().to_string());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_swapped_for_a_symlink_mid_restore_sends_nothing_outside() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    for sub in ["d", "d/e"] {
        std::fs::create_dir_all(source.join(sub)).unwrap();
    }
    for i in 0..FILES {
        let sub = if i % 2 == 0 { "d" } else { "d/e" };
        std::fs::write(
            source.join(sub).join(format!("f{i}")),
            format!("file {i}\n"),
        )
        .unwrap();
    }
    // Modes and times that a metadata pass through the link would put on the outside.
    std::fs::set_permissions(source.join("d"), std::fs::Permissions::from_mode(0o2777)).unwrap();
    std::fs::set_permissions(source.join("d/e"), std::fs::Permissions::from_mode(0o2777)).unwrap();

    let (repo, done) = repository_with_backup_of(&dir.path().join("repo"), &source).await;
    let snap = done.snapshot.unwrap();

    // Once with the folder swapped for good, once with a thread swapping it back and forth.
    let rounds = [Overwrite::Always, Overwrite::IfChanged, Overwrite::Never]
        .into_iter()
        .flat_map(|o| [(o, false), (o, true)]);
    for (overwrite, keep_swapping) in rounds {
        let round = dir.path().join(format!("{overwrite:?}-{keep_swapping}"));
        let (target, outside) = (round.join("target"), round.join("outside"));
        std::fs::create_dir_all(outside.join("e")).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(outside.join("e"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let link = target.join("elsewhere");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let before = (
            std::fs::metadata(&outside).unwrap(),
            std::fs::metadata(outside.join("e")).unwrap(),
        );

        // After the first swap, a thread may keep exchanging them until restore ends.
        let swapper = Swapper::new(target.join("d"), link.clone());
        let thread = keep_swapping.then(|| swapper.keep_swapping());
        let opts = RestoreOptions {
            target: target.clone(),
            include: Patterns::new(&[], false).unwrap(),
            exclude: Patterns::new(&[], false).unwrap(),
            sparse: false,
            overwrite,
            verify: true,
            dry_run: false,
            delete: false,
            concurrency: Some(4),
            batch_bytes: arca_engine::restore::BATCH_BYTES,
            privileged_files: true,
        };
        let hook = SwapWhenFoldersAreMade(swapper.clone());
        let report = restore(repo.clone(), snap.tree, &opts, &hook).await;
        swapper.stop(thread);
        let report = report.unwrap();

        assert!(swapper.swapped(), "the folder was swapped");
        let found = listing(&outside);
        let expected = vec![outside.join("e").display().to_string()];
        assert!(
            found == expected,
            "{overwrite:?}: restore wrote {} items outside the target, {:?}… ({} swaps; {} files \
             restored, {} errors)",
            found.len() - 1,
            &found[..found.len().min(4)],
            swapper.swaps(),
            report.files,
            report.errors.len()
        );
        let after = (
            std::fs::metadata(&outside).unwrap(),
            std::fs::metadata(outside.join("e")).unwrap(),
        );
        for (b, a) in [(&before.0, &after.0), (&before.1, &after.1)] {
            assert_eq!(b.mode(), a.mode(), "{overwrite:?}: a mode changed outside");
            assert_eq!(
                (b.mtime(), b.mtime_nsec()),
                (a.mtime(), a.mtime_nsec()),
                "{overwrite:?}: a time changed outside"
            );
        }
        if !keep_swapping {
            // Every file of the swapped folder failed, each said in a line, and the files
            // are where restore made them: in the real folder, now named `elsewhere`.
            assert_eq!(report.files, 0, "{overwrite:?}");
            assert!(report.errors.len() >= FILES as u64, "{overwrite:?}");
            assert!(link.join("e").is_dir());
        }
    }
}
