//! A folder of the source swapped for a symbolic link while backup reads it (what a tenant
//! sharing a volume can do to the agent backing it up): nothing from outside the source may
//! enter the snapshot, whatever the timing.

mod support;

use arca_engine::backup::{self, Selector};
use arca_engine::progress::NoProgress;
use arca_engine::Repository;
use arca_format::pack::BlobType;
use arca_format::Id;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::TINY;
use support::{backup_options, Swapper};

const FILES: usize = 500;
const SECRET: &[u8] = b"a secret of another tenant\n";

/// Selects everything; the first time backup looks at an item inside `d`, it first swaps
/// `d` with a symbolic link to the outside folder (which holds files of the same names), so
/// every later look at `d`'s items by path would read the outside.
struct SwapOnFirstLookInside {
    d: PathBuf,
    swapper: Arc<Swapper>,
}

impl Selector for SwapOnFirstLookInside {
    fn select_by_name(&self, path: &Path) -> bool {
        if path.starts_with(&self.d) && path != self.d {
            self.swapper.first();
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_swapped_for_a_symlink_mid_backup_lets_nothing_in_from_outside() {
    let dir = tempfile::tempdir().unwrap();
    let backend: arca_storage::DynBackend =
        Arc::new(arca_storage::LocalBackend::new(dir.path().join("repo")));
    Repository::init(backend.clone(), "pw", 2, None, TINY)
        .await
        .unwrap();
    let secret_id = Id::hash(SECRET);

    // The agent backs up a volume's contents (`contents_of`), the CLI the folder itself.
    let rounds = [true, false]
        .into_iter()
        .flat_map(|c| [(c, false), (c, true)]);
    for (contents_of, keep_swapping) in rounds {
        let round = dir
            .path()
            .join(format!("round-{contents_of}-{keep_swapping}"));
        let (source, outside) = (round.join("source"), round.join("outside"));
        for sub in ["d/e", "outside-e"] {
            std::fs::create_dir_all(source.join(sub)).unwrap();
        }
        std::fs::remove_dir(source.join("outside-e")).unwrap();
        std::fs::create_dir_all(outside.join("e")).unwrap();
        for i in 0..FILES {
            let sub = if i % 2 == 0 { "" } else { "e/" };
            let name = format!("d/{sub}f{i}");
            std::fs::write(source.join(&name), format!("file {i}\n")).unwrap();
            let name = format!("{sub}f{i}");
            std::fs::write(outside.join(&name), SECRET).unwrap();
        }
        let link = source.join("elsewhere");
        std::os::unix::fs::symlink(&outside, &link).unwrap();

        let swapper = Swapper::new(source.join("d"), link.clone());
        let hook = Arc::new(SwapOnFirstLookInside {
            d: source.join("d"),
            swapper: swapper.clone(),
        });
        let thread = keep_swapping.then(|| swapper.keep_swapping());
        let mut repo = Repository::open(backend.clone(), "pw").await.unwrap();
        repo.load_index(&NoProgress).await.unwrap();
        let result = backup::backup(
            Arc::new(repo),
            backup_options(vec![source.join("d")], contents_of, hook.clone()),
            Arc::new(NoProgress),
        )
        .await;
        swapper.stop(thread);
        let result = result.unwrap();
        assert!(swapper.swapped(), "the folder was swapped");

        let mut repo = Repository::open(backend.clone(), "pw").await.unwrap();
        repo.load_index(&NoProgress).await.unwrap();
        assert!(
            repo.index().lookup(BlobType::Data, &secret_id).is_none(),
            "round {contents_of}/{keep_swapping}: a file from outside the source is in the repository \
             ({} swaps, errors {:?})",
            swapper.swaps(),
            result.errors
        );
        if !keep_swapping {
            // Swapped for good once it was open: the folder's handle is still the source's
            // folder, so the snapshot has every file of it, read from where they really are.
            assert!(result.errors.is_empty(), "{:?}", result.errors);
            assert_eq!(
                result.summary.files_new, FILES as u64,
                "{:?}",
                result.summary
            );
        }
    }
}
