//! Restoring trees no honest writer produces (found while fuzzing, see fuzz/regressions/):
//! restore must stay inside its target and must not hang.

use arca_engine::filter::Patterns;
use arca_engine::progress::NoProgress;
use arca_engine::restore::{restore, Overwrite, RestoreOptions, RestoreReport};
use arca_engine::writer::{BlobWriter, WriterOptions};
use arca_engine::Repository;
use arca_format::keyfile::KdfParams;
use arca_format::pack::BlobType;
use arca_format::tree::{Node, NodeType, MODE_DIR};
use arca_format::Id;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

const PW: &str = "pw";
const TINY: KdfParams = KdfParams { n: 16, r: 1, p: 1 };

/// `{"nodes":[...]}` in the given order, duplicates allowed (Tree::encode refuses them).
fn raw_tree(nodes: &[Node]) -> Vec<u8> {
    let mut json = b"{\"nodes\":[".to_vec();
    for (i, n) in nodes.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        n.encode_json(&mut json);
    }
    json.extend_from_slice(b"]}\n");
    json
}

/// A repository in `dir/repo` holding `blobs`; returns the opened repository with its index.
async fn repo_with(dir: &Path, blobs: Vec<(BlobType, Vec<u8>)>) -> Arc<Repository> {
    let backend: arca_storage::DynBackend =
        Arc::new(arca_storage::LocalBackend::new(dir.join("repo")));
    let mut repo = Repository::init(backend.clone(), PW, 2, None, TINY)
        .await
        .unwrap();
    repo.load_index(&NoProgress).await.unwrap();
    let writer = BlobWriter::new(Arc::new(repo), WriterOptions::default());
    tokio::task::spawn_blocking(move || {
        for (t, b) in blobs {
            writer.save(t, &b).unwrap();
        }
        writer.finish().unwrap();
    })
    .await
    .unwrap();
    let mut repo = Repository::open(backend, PW).await.unwrap();
    repo.load_index(&NoProgress).await.unwrap();
    Arc::new(repo)
}

async fn restore_into(repo: Arc<Repository>, root: Id, target: &Path) -> RestoreReport {
    let opts = RestoreOptions {
        target: target.to_path_buf(),
        include: Patterns::new(&[], false).unwrap(),
        exclude: Patterns::new(&[], false).unwrap(),
        sparse: false,
        overwrite: Overwrite::Always,
        verify: true,
        dry_run: false,
        delete: false,
        concurrency: Some(2),
        batch_bytes: arca_engine::restore::BATCH_BYTES,
        privileged_files: true,
    };
    let run = restore(repo, root, &opts, &NoProgress);
    tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("restore finishes")
        .unwrap()
}

/// A directory `a` (holding `victim`) and a symlink `a` -> `../outside` in one tree: the
/// directory was restored, the symlink then replaced it, and the metadata pass chmod-ed and
/// touched `outside/victim` through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_names_cannot_lead_out_of_the_target() {
    for link_first in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let victim = outside.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o640)).unwrap();
        let before = victim.metadata().unwrap().modified().unwrap();

        let data = b"pwned".to_vec();
        let mut f = Node::new("victim", NodeType::File);
        f.mode = 0o777;
        f.size = data.len() as u64;
        f.content = Some(vec![Id::hash(&data)]);
        let inner = raw_tree(&[f]);
        let mut a_dir = Node::new("a", NodeType::Dir);
        a_dir.mode = MODE_DIR | 0o777;
        a_dir.subtree = Some(Id::hash(&inner));
        let mut a_link = Node::new("a", NodeType::Symlink);
        a_link.set_link_target(b"../outside");
        let root = if link_first {
            raw_tree(&[a_link, a_dir])
        } else {
            raw_tree(&[a_dir, a_link])
        };
        let root_id = Id::hash(&root);
        let repo = repo_with(
            dir.path(),
            vec![
                (BlobType::Data, data),
                (BlobType::Tree, inner),
                (BlobType::Tree, root),
            ],
        )
        .await;
        let report = restore_into(repo, root_id, &dir.path().join("target")).await;

        let md = victim.metadata().unwrap();
        assert_eq!(
            md.permissions().mode() & 0o7777,
            0o640,
            "link_first={link_first}"
        );
        assert_eq!(md.modified().unwrap(), before);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(
            report.errors.iter().any(|e| e.contains("duplicate name")),
            "{:?}",
            report.errors
        );
    }
}

/// Setting a FIFO's times used to open it, which blocks until a writer appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_metadata_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut fifo = Node::new("fifo", NodeType::Fifo);
    fifo.mode = arca_format::tree::MODE_NAMED_PIPE | 0o600;
    fifo.mtime = arca_format::gotime::GoTime::parse("2020-01-02T03:04:05Z").unwrap();
    let root = raw_tree(&[fifo]);
    let root_id = Id::hash(&root);
    let repo = repo_with(dir.path(), vec![(BlobType::Tree, root)]).await;
    let target = dir.path().join("target");
    let report = restore_into(repo, root_id, &target).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let md = target.join("fifo").symlink_metadata().unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&md.file_type()));
    assert_eq!(
        filetime::FileTime::from_last_modification_time(&md).unix_seconds(),
        1_577_934_245
    );
}
