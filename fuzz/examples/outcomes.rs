//! How far `open_repository` inputs get: `cargo run --example outcomes -- DIR_OR_FILE...`.
//! Prints, per input, whether the repository opened, its index loaded, how many snapshots,
//! nodes walked, whether check passed, and files restored; then totals.

fn main() {
    let mut files = Vec::new();
    for a in std::env::args().skip(1) {
        let p = std::path::PathBuf::from(a);
        if p.is_dir() {
            files.extend(arca_fuzz::files_in(&p));
        } else {
            files.push(p);
        }
    }
    let (mut opened, mut indexed, mut snaps, mut walked, mut checked, mut restored) =
        (0, 0, 0, 0, 0, 0);
    for f in &files {
        let data = std::fs::read(f).expect("read input");
        arca_fuzz::open_repository_with(&data, |o, _| {
            if std::env::var_os("VERBOSE").is_some() {
                println!("{}: {o:?}", f.display());
            }
            opened += o.opened as usize;
            indexed += o.index_loaded as usize;
            snaps += (o.snapshots > 0) as usize;
            walked += (o.walked_nodes > 0) as usize;
            checked += o.check_ok as usize;
            restored += (o.restored_files > 0) as usize;
        });
    }
    println!(
        "{} inputs: opened {opened}, index loaded {indexed}, with snapshots {snaps}, walked {walked}, check ok {checked}, restored files {restored}",
        files.len()
    );
}
