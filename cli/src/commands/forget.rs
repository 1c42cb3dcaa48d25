//! `arca forget`: restic's retention policies, grouping, output and exit codes.
//!
//! The policy logic is `arca_engine::forget`; this file parses the flags, loads and filters the
//! snapshots, prints restic's tables or JSON, removes the snapshot files and optionally prunes.

use crate::commands::prune::PruneArgs;
use crate::global::GlobalOptions;
use crate::output::go_escape;
use crate::output::snapshot_json;
use crate::snapshot_table::{group_header, snapshot_table};
use anyhow::{anyhow, bail, Result};
use arca_engine::forget::{self, ExpirePolicy, ForgetGroup, GroupBy, KeepDuration};
use arca_engine::snapshots::{self, SnapshotFilter};
use arca_engine::Repository;
use arca_format::gotime::GoTime;
use arca_format::snapshot::Snapshot;
use arca_format::Id;
use clap::Args;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;

/// restic's exit code when some snapshot files could not be removed.
const EXIT_REMOVE_FAILED: i32 = 3;

/// A `--keep-*` count: a number >= 0, or `unlimited` (restic >= 0.16) or `-1` (restic 0.15).
fn parse_count(s: &str) -> Result<i64, String> {
    if s == "unlimited" {
        return Ok(-1);
    }
    let v: i64 = s.parse().map_err(|e| format!("{e}"))?;
    if v < -1 {
        return Err("negative values other than -1 are not allowed for --keep-*".into());
    }
    Ok(v)
}

fn parse_duration(s: &str) -> Result<KeepDuration, arca_engine::forget::DurationError> {
    KeepDuration::parse(s)
}

fn parse_group_by(s: &str) -> Result<GroupBy, arca_engine::forget::UnknownGrouping> {
    GroupBy::parse(s)
}

#[derive(Args)]
pub struct ForgetArgs {
    /// keep the last n snapshots (use 'unlimited' to keep all snapshots)
    #[arg(short = 'l', long, value_name = "n", default_value = "0", value_parser = parse_count, allow_negative_numbers = true)]
    keep_last: i64,
    /// keep the last n hourly snapshots (use 'unlimited' to keep all hourly snapshots)
    #[arg(short = 'H', long, value_name = "n", default_value = "0", value_parser = parse_count, allow_negative_numbers = true)]
    keep_hourly: i64,
    /// keep the last n daily snapshots (use 'unlimited' to keep all daily snapshots)
    #[arg(short = 'd', long, value_name = "n", default_value = "0", value_parser = parse_count, allow_negative_numbers = true)]
    keep_daily: i64,
    /// keep the last n weekly snapshots (use 'unlimited' to keep all weekly snapshots)
    #[arg(short = 'w', long, value_name = "n", default_value = "0", value_parser = parse_count, allow_negative_numbers = true)]
    keep_weekly: i64,
    /// keep the last n monthly snapshots (use 'unlimited' to keep all monthly snapshots)
    #[arg(short = 'm', long, value_name = "n", default_value = "0", value_parser = parse_count, allow_negative_numbers = true)]
    keep_monthly: i64,
    /// keep the last n yearly snapshots (use 'unlimited' to keep all yearly snapshots)
    #[arg(short = 'y', long, value_name = "n", default_value = "0", value_parser = parse_count, allow_negative_numbers = true)]
    keep_yearly: i64,
    /// keep snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within: Option<KeepDuration>,
    /// keep hourly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within_hourly: Option<KeepDuration>,
    /// keep daily snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within_daily: Option<KeepDuration>,
    /// keep weekly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within_weekly: Option<KeepDuration>,
    /// keep monthly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within_monthly: Option<KeepDuration>,
    /// keep yearly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within_yearly: Option<KeepDuration>,
    /// keep snapshots with this taglist (can be specified multiple times)
    #[arg(long, value_name = "taglist")]
    keep_tag: Vec<String>,
    /// allow deleting all snapshots of a snapshot group
    #[arg(long)]
    unsafe_allow_remove_all: bool,

    /// only consider snapshots for this host (can be specified multiple times)
    #[arg(
        long = "host",
        value_name = "host",
        env = "RESTIC_HOST",
        hide_env_values = true
    )]
    host: Vec<String>,
    /// deprecated: use --host
    #[arg(long = "hostname", value_name = "hostname", hide = true)]
    hostname: Vec<String>,
    /// only consider snapshots including tag[,tag,...] (can be specified multiple times)
    #[arg(long = "tag", value_name = "tag[,tag,...]")]
    tag: Vec<String>,
    /// only consider snapshots including this (absolute) path (can be specified multiple times, snapshots must include all specified paths)
    #[arg(long = "path", value_name = "path")]
    path: Vec<String>,

    /// use compact output format
    #[arg(short = 'c', long)]
    compact: bool,
    /// group snapshots by host, paths and/or tags, separated by comma (disable grouping with '')
    #[arg(short = 'g', long, value_name = "group", default_value = "host,paths", value_parser = parse_group_by)]
    group_by: GroupBy,
    /// do not delete anything, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// automatically run the 'prune' command if snapshots have been removed
    #[arg(long)]
    prune: bool,

    /// tolerate given limit of unused data (absolute value in bytes with suffixes k/K, m/M, g/G, t/T, a value in % or the word 'unlimited')
    #[arg(long, default_value = "5%")]
    max_unused: String,
    /// maximum size to repack (allowed suffixes: k/K, m/M, g/G, t/T)
    #[arg(long)]
    max_repack_size: Option<String>,
    /// only repack packs which are cacheable
    #[arg(long)]
    repack_cacheable_only: bool,
    /// repack all uncompressed data
    #[arg(long)]
    repack_uncompressed: bool,

    /// snapshot IDs to forget (the policy is ignored when IDs are given)
    #[arg(value_name = "snapshot ID")]
    ids: Vec<String>,
}

impl ForgetArgs {
    fn policy(&self) -> ExpirePolicy {
        ExpirePolicy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within: self.keep_within.unwrap_or_default(),
            within_hourly: self.keep_within_hourly.unwrap_or_default(),
            within_daily: self.keep_within_daily.unwrap_or_default(),
            within_weekly: self.keep_within_weekly.unwrap_or_default(),
            within_monthly: self.keep_within_monthly.unwrap_or_default(),
            within_yearly: self.keep_within_yearly.unwrap_or_default(),
            tags: self
                .keep_tag
                .iter()
                .map(|t| forget::parse_tag_list(t))
                .collect(),
        }
    }

    fn hosts(&self) -> Vec<String> {
        self.hostname.iter().chain(&self.host).cloned().collect()
    }

    fn tag_filter(&self) -> Vec<Vec<String>> {
        self.tag.iter().map(|t| forget::parse_tag_list(t)).collect()
    }

    fn filter_given(&self) -> bool {
        !self.hosts().is_empty() || !self.tag.is_empty() || !self.path.is_empty()
    }

    /// restic's snapshot filter: hosts and paths as the engine matches them, tags with
    /// restic's rule that `''` selects untagged snapshots.
    fn matches(&self, s: &Snapshot) -> bool {
        let hp = SnapshotFilter {
            hosts: self.hosts(),
            tags: Vec::new(),
            paths: self.path.clone(),
        };
        let tags = self.tag_filter();
        hp.matches(s) && (tags.is_empty() || tags.iter().any(|l| forget::has_tags(s, l)))
    }

    fn prune_args(&self) -> PruneArgs {
        PruneArgs {
            max_unused: self.max_unused.clone(),
            max_repack_size: self.max_repack_size.clone(),
            repack_cacheable_only: self.repack_cacheable_only,
            repack_uncompressed: self.repack_uncompressed,
            dry_run: self.dry_run,
        }
    }
}

pub async fn run(a: ForgetArgs, g: GlobalOptions) -> Result<i32> {
    let policy = a.policy();
    for d in [
        &policy.within,
        &policy.within_hourly,
        &policy.within_daily,
        &policy.within_weekly,
        &policy.within_monthly,
        &policy.within_yearly,
    ] {
        if d.has_negative() {
            bail!("durations containing negative values are not allowed for --keep-within*");
        }
    }
    if a.prune {
        // Reject bad prune flags before anything is removed.
        crate::commands::prune::options(&a.prune_args(), &g)?;
    }
    if g.no_lock && !a.dry_run {
        bail!("--no-lock is only applicable in combination with --dry-run for forget command");
    }
    // Exclusive lock even for a dry run, as restic (unless --no-lock with --dry-run).
    crate::commands::with_lock(&g, true, |repo| forget(repo, a, policy, g.clone())).await
}

/// The snapshots to act on: all matching the filter, or the given IDs (`latest` honours the
/// filter; unknown IDs are reported and skipped, as restic does).
async fn select(repo: &Repository, a: &ForgetArgs) -> Result<Vec<Snapshot>> {
    if a.ids.is_empty() {
        return Ok(snapshots::load_all(repo)
            .await?
            .into_iter()
            .filter(|s| a.matches(s))
            .collect());
    }
    let mut all: Option<Vec<Snapshot>> = None;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for spec in &a.ids {
        let found = if spec == "latest" {
            if all.is_none() {
                all = Some(snapshots::load_all(repo).await?);
            }
            all.as_ref()
                .and_then(|l| l.iter().rev().find(|s| a.matches(s)).cloned())
                .ok_or_else(|| anyhow!("no snapshot found"))
        } else {
            snapshots::find(repo, spec, &SnapshotFilter::default())
                .await
                .map_err(|e| anyhow!(e))
        };
        match found {
            Ok(s) => {
                if seen.insert(s.id) {
                    out.push(s);
                }
            }
            Err(e) => eprintln!("Ignoring {spec:?}: {e}"),
        }
    }
    Ok(out)
}

async fn forget(
    repo: Repository,
    a: ForgetArgs,
    policy: ExpirePolicy,
    g: GlobalOptions,
) -> Result<i32> {
    let list = select(&repo, &a).await?;
    let text = !g.json && !g.quiet;
    let mut stdout = std::io::stdout().lock();
    let mut remove: Vec<Id> = Vec::new();
    let mut groups: Vec<ForgetGroup> = Vec::new();

    if !a.ids.is_empty() {
        remove = list.iter().map(|s| s.id).collect();
    } else {
        if policy.is_empty() {
            if !a.unsafe_allow_remove_all {
                bail!("no policy was specified, no snapshots will be removed");
            }
            if !a.filter_given() {
                bail!("--unsafe-allow-remove-all is not allowed unless a snapshot filter option is specified");
            }
        }
        if text {
            writeln!(stdout, "Applying Policy: {policy}")?;
        }
        groups = forget::plan(
            list,
            &policy,
            a.group_by,
            a.unsafe_allow_remove_all,
            &GoTime::now(),
        )
        .map_err(|e| anyhow!(e))?;
        for grp in &groups {
            if g.verbose >= 1 && !g.json {
                stdout.write_all(group_header(&grp.key).as_bytes())?;
            }
            if text && !grp.keep.is_empty() {
                writeln!(stdout, "keep {} snapshots:", grp.keep.len())?;
                let table = snapshot_table(&grp.keep, Some(&grp.reasons), a.compact);
                writeln!(stdout, "{table}")?;
            }
            if text && !grp.remove.is_empty() {
                writeln!(stdout, "remove {} snapshots:", grp.remove.len())?;
                writeln!(stdout, "{}", snapshot_table(&grp.remove, None, a.compact))?;
            }
            remove.extend(grp.remove.iter().map(|s| s.id));
        }
    }

    let mut failed = 0usize;
    if !remove.is_empty() {
        if a.dry_run {
            if text {
                let short: BTreeSet<String> = remove.iter().map(|id| id.short()).collect();
                let short: Vec<String> = short.into_iter().collect();
                write!(
                    stdout,
                    "Would have removed the following snapshots:\n{{{}}}\n\n",
                    short.join(" ")
                )?;
            }
        } else {
            stdout.flush()?;
            for (id, r) in forget::remove_snapshots(&repo, &remove).await {
                match r {
                    Ok(()) => {
                        if g.verbose >= 2 && !g.json {
                            writeln!(stdout, "removed snapshot/{}", id.to_hex())?;
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!(
                            "unable to remove snapshot/{} from the repository: {e}",
                            id.to_hex()
                        );
                    }
                }
            }
        }
    }

    if g.json && !groups.is_empty() {
        stdout.write_all(&groups_json(&groups))?;
    }
    stdout.flush()?;
    drop(stdout);

    if failed > 0 {
        eprintln!("failed to remove one or more snapshots");
        return Ok(EXIT_REMOVE_FAILED);
    }

    if !remove.is_empty() && a.prune {
        if text {
            if a.dry_run {
                println!(
                    "{} snapshots would be removed, running prune dry run",
                    remove.len()
                );
            } else {
                println!(
                    "{} snapshots have been removed, running prune",
                    remove.len()
                );
            }
        }
        let ignore: &[Id] = if a.dry_run { &remove } else { &[] };
        return crate::commands::prune::prune_repo(repo, &a.prune_args(), &g, ignore).await;
    }
    Ok(0)
}

// ------------------------------------------------------------------ text output

// ------------------------------------------------------------------ JSON output

fn json_array(items: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        out.push(if i == 0 { b'[' } else { b',' });
        out.extend_from_slice(&item);
    }
    if out.is_empty() {
        // Go marshals a nil slice as null.
        return b"null".to_vec();
    }
    out.push(b']');
    out
}

fn string_list(v: &[String]) -> Vec<u8> {
    if v.is_empty() {
        return b"null".to_vec();
    }
    serde_json::to_vec(v).expect("strings serialise")
}

/// restic's `ForgetGroup` list: tags, host, paths, keep, remove and reasons (each reason a
/// snapshot with id and short_id plus its matches), one line.
fn groups_json(groups: &[ForgetGroup]) -> Vec<u8> {
    let by_id: HashMap<Id, &Snapshot> = groups
        .iter()
        .flat_map(|g| g.keep.iter())
        .map(|s| (s.id, s))
        .collect();
    let mut out = json_array(groups.iter().map(|g| {
        let mut o = b"{\"tags\":".to_vec();
        o.extend_from_slice(&string_list(&g.key.tags));
        o.extend_from_slice(b",\"host\":");
        o.extend_from_slice(&serde_json::to_vec(&g.key.hostname).expect("string"));
        o.extend_from_slice(b",\"paths\":");
        o.extend_from_slice(&string_list(&g.key.paths));
        o.extend_from_slice(b",\"keep\":");
        o.extend_from_slice(&json_array(g.keep.iter().map(|s| snapshot_json(s, &[]))));
        o.extend_from_slice(b",\"remove\":");
        o.extend_from_slice(&json_array(g.remove.iter().map(|s| snapshot_json(s, &[]))));
        o.extend_from_slice(b",\"reasons\":");
        o.extend_from_slice(&json_array(g.reasons.iter().map(|r| {
            let mut j = b"{\"snapshot\":".to_vec();
            j.extend_from_slice(&snapshot_json(by_id[&r.id], &[]));
            j.extend_from_slice(b",\"matches\":");
            j.extend_from_slice(&serde_json::to_vec(&r.matches).expect("strings"));
            j.push(b'}');
            j
        })));
        o.push(b'}');
        o
    }));
    out.push(b'\n');
    go_escape(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot_table::test_snapshot as snap;
    use arca_engine::forget::GroupKey;
    use arca_engine::forget::KeepReason;

    #[test]
    fn counts() {
        assert_eq!(parse_count("unlimited"), Ok(-1));
        assert_eq!(parse_count("-1"), Ok(-1));
        assert_eq!(parse_count("7"), Ok(7));
        assert!(parse_count("-2").is_err());
        assert!(parse_count("x").is_err());
    }

    #[test]
    fn json_shape() {
        let a = snap(0x11, "2024-01-01T10:00:00Z", "h1", &["/d"], &["<x>"]);
        let b = snap(0x22, "2024-01-02T10:00:00Z", "h1", &["/d"], &[]);
        let groups = vec![ForgetGroup {
            key: GroupKey {
                hostname: "h1".into(),
                paths: vec!["/d".into()],
                tags: Vec::new(),
            },
            keep: vec![b.clone()],
            remove: vec![a.clone()],
            reasons: vec![KeepReason {
                id: b.id,
                matches: vec!["last snapshot".into()],
                counters: Default::default(),
            }],
        }];
        let j = String::from_utf8(groups_json(&groups)).unwrap();
        assert!(j.ends_with("]\n"));
        assert!(j.contains("\\u003cx\\u003e"), "{j}");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        let g = &v[0];
        assert_eq!(g["tags"], serde_json::Value::Null);
        assert_eq!(g["host"], "h1");
        assert_eq!(g["paths"], serde_json::json!(["/d"]));
        assert_eq!(g["keep"][0]["id"], b.id.to_hex());
        assert_eq!(g["keep"][0]["short_id"], "22222222");
        assert_eq!(g["remove"][0]["tags"], serde_json::json!(["<x>"]));
        assert_eq!(g["reasons"][0]["snapshot"]["id"], b.id.to_hex());
        assert_eq!(
            g["reasons"][0]["matches"],
            serde_json::json!(["last snapshot"])
        );
        let keys: Vec<&String> = g.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6);
        assert!(j.starts_with(r#"[{"tags":null,"host":"h1","paths":["/d"],"keep":[{"time":"#));

        let empty = vec![ForgetGroup {
            key: GroupKey::default(),
            keep: Vec::new(),
            remove: vec![a],
            reasons: Vec::new(),
        }];
        let j = String::from_utf8(groups_json(&empty)).unwrap();
        assert!(j.starts_with(r#"[{"tags":null,"host":"","paths":null,"keep":null,"remove":[{"#));
        assert!(j.trim_end().ends_with(r#""reasons":null}]"#), "{j}");
    }

    #[test]
    fn headers() {
        let k = GroupKey {
            hostname: "h".into(),
            paths: vec!["/a".into(), "/b".into()],
            tags: vec!["x".into(), "y".into()],
        };
        assert_eq!(
            group_header(&k),
            "snapshots for (host [h], tags [x, y], paths [/a, /b]):\n"
        );
        assert_eq!(group_header(&GroupKey::default()), "");
    }
}
