//! The policy against restic's documented examples and its edge cases.

use super::super::test_support::*;
use super::*;

#[test]
fn docs_example_keep_daily_4() {
    let c = sundays();
    let p = ExpirePolicy {
        daily: 4,
        ..Default::default()
    };
    let (keep, remove, reasons) = c.apply(&p);
    assert_eq!(keep, v(&["e1ae2f40", "dfee9fb4", "59403279", "8f8018c0"]));
    assert_eq!(remove.len(), 8);
    assert_eq!(remove[0], "e1a7b58b");
    assert!(reasons.iter().all(|r| r == &v(&["daily snapshot"])));
    assert_eq!(p.to_string(), "keep 4 daily snapshots");
}

#[test]
fn docs_example_weekly_monthly_overlap() {
    // Sundays: each is its own ISO week; months Sep(5), Oct(4), Nov(3).
    let c = sundays();
    let p = ExpirePolicy {
        daily: 2,
        weekly: 3,
        monthly: 2,
        ..Default::default()
    };
    let (keep, _, reasons) = c.apply(&p);
    assert_eq!(keep, v(&["e1ae2f40", "dfee9fb4", "59403279", "8f8018c0"]));
    assert_eq!(
        reasons[0],
        v(&["daily snapshot", "weekly snapshot", "monthly snapshot"])
    );
    assert_eq!(reasons[1], v(&["daily snapshot", "weekly snapshot"]));
    assert_eq!(reasons[2], v(&["weekly snapshot"]));
    assert_eq!(reasons[3], v(&["monthly snapshot"]));
}

/// The restic docs' "one backup a day" example, shortened: --keep-daily 7 --keep-weekly 5
/// --keep-monthly 12 keeps 7 dailies, 4 more weeklies and 11 or 12 monthlies.
#[test]
fn docs_example_daily_backups_for_years() {
    let start = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();
    let mut list = Vec::new();
    for i in 0..(3 * 365) {
        let d = start + chrono::TimeDelta::days(i);
        list.push((format!("s{i:05}"), format!("{d}T12:00:00Z")));
    }
    let refs: Vec<(&str, &str)> = list.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let c = Case::new(&refs);
    let p = ExpirePolicy {
        daily: 7,
        weekly: 5,
        monthly: 12,
        yearly: 75,
        ..Default::default()
    };
    let (keep, _, reasons) = c.apply(&p);
    let count = |what: &str| {
        reasons
            .iter()
            .filter(|r| r.iter().any(|m| m == what))
            .count()
    };
    assert_eq!(count("daily snapshot"), 7);
    assert_eq!(count("weekly snapshot"), 5);
    assert_eq!(count("monthly snapshot"), 12);
    // The newest of 2021 (Dec 30), 2020 and 2019 (Dec 31), and 2019-01-01 as the oldest
    // since the yearly count has room left.
    assert_eq!(count("yearly snapshot"), 3);
    assert_eq!(count("oldest yearly snapshot"), 1);
    // The last day is Thu 2021-12-30. Dailies Dec 24-30 hold the weeklies of ISO weeks 52
    // and 51, so 3 more weeklies (Dec 19, 12, 5); the monthlies are the month ends of 2021
    // of which Dec 30 is a daily (11 more); yearlies 2020 and 2019 (2 more); the oldest.
    assert_eq!(keep.len(), 7 + 3 + 11 + 2 + 1);
    assert_eq!(keep.last().unwrap(), "s00000");
}

#[test]
fn keep_last_and_unlimited() {
    let c = sundays();
    let p = ExpirePolicy {
        last: 3,
        ..Default::default()
    };
    let (keep, remove, reasons) = c.apply(&p);
    assert_eq!(keep, v(&["e1ae2f40", "dfee9fb4", "59403279"]));
    assert_eq!(remove.len(), 9);
    assert_eq!(reasons[2], v(&["last snapshot"]));
    assert_eq!(p.to_string(), "keep 3 latest snapshots");

    let all = ExpirePolicy {
        last: -1,
        ..Default::default()
    };
    let (keep, remove, _) = c.apply(&all);
    assert_eq!(keep.len(), 12);
    assert!(remove.is_empty());
    assert!(!all.is_empty());
    assert_eq!(all.to_string(), "keep all latest snapshots");

    // More than there are: all kept, the oldest as a plain "last snapshot" (its bucket
    // value is unique).
    let (keep, _, reasons) = c.apply(&ExpirePolicy {
        last: 20,
        ..Default::default()
    });
    assert_eq!(keep.len(), 12);
    assert_eq!(reasons[11], v(&["last snapshot"]));
}

#[test]
fn hourly_daily_with_same_bucket() {
    let c = Case::new(&[
        ("a", "2024-03-01T10:05:00Z"),
        ("b", "2024-03-01T10:55:00Z"),
        ("c", "2024-03-01T11:00:00Z"),
        ("d", "2024-03-02T09:00:00Z"),
        ("e", "2024-03-02T09:30:00Z"),
    ]);
    let hourly = ExpirePolicy {
        hourly: 10,
        ..Default::default()
    };
    let (keep, remove, reasons) = c.apply(&hourly);
    // e (09h Mar 2), c (11h), b (10h); a is the oldest and the count has room left.
    assert_eq!(keep, v(&["e", "c", "b", "a"]));
    assert_eq!(remove, v(&["d"]));
    assert_eq!(reasons[3], v(&["oldest hourly snapshot"]));

    let (keep, remove, _) = c.apply(&ExpirePolicy {
        hourly: 2,
        ..Default::default()
    });
    assert_eq!(keep, v(&["e", "c"]));
    assert_eq!(remove, v(&["d", "b", "a"]));

    let (keep, _, reasons) = c.apply(&ExpirePolicy {
        daily: -1,
        ..Default::default()
    });
    assert_eq!(keep, v(&["e", "c", "a"]));
    assert_eq!(reasons[2], v(&["oldest daily snapshot"]));
    // Unlimited counters stay -1.
    let a = apply_policy(
        c.snaps.clone(),
        &ExpirePolicy {
            daily: -1,
            weekly: 1,
            ..Default::default()
        },
        &now(),
    );
    assert_eq!(a.reasons[0].counters.daily, -1);
    assert_eq!(a.reasons[0].counters.weekly, 0);
}

#[test]
fn weekly_uses_iso_weeks() {
    // 2020-12-31 (Thu) and 2021-01-03 (Sun) are both in ISO week 2020-53;
    // 2021-01-04 (Mon) starts 2021-W01.
    let c = Case::new(&[
        ("a", "2020-12-28T00:00:00Z"),
        ("b", "2020-12-31T12:00:00Z"),
        ("c", "2021-01-03T23:59:59Z"),
        ("d", "2021-01-04T00:00:00Z"),
    ]);
    let (keep, remove, _) = c.apply(&ExpirePolicy {
        weekly: 2,
        ..Default::default()
    });
    assert_eq!(keep, v(&["d", "c"]));
    assert_eq!(remove, v(&["b", "a"]));
    // Yearly is by calendar year, not ISO year.
    let (keep, _, _) = c.apply(&ExpirePolicy {
        yearly: 2,
        ..Default::default()
    });
    assert_eq!(keep, v(&["d", "b"]));
}

#[test]
fn buckets_use_the_stored_offset() {
    // 23:30 at +02:00 is 21:30 UTC the same day; 00:30 at +02:00 is the day before in UTC.
    let c = Case::new(&[
        ("a", "2024-05-01T23:30:00+02:00"),
        ("b", "2024-05-02T00:30:00+02:00"),
    ]);
    let (keep, _, reasons) = c.apply(&ExpirePolicy {
        daily: 2,
        ..Default::default()
    });
    // Different days in their own offset (in UTC both are May 1, and a would only be
    // kept as "oldest daily snapshot").
    assert_eq!(keep, v(&["b", "a"]));
    assert_eq!(reasons[1], v(&["daily snapshot"]));
    // a is 23:00 UTC May 1; b is 22:30 UTC May 1 (older) but May 2 in its own offset.
    let c = Case::new(&[
        ("a", "2024-05-01T23:00:00Z"),
        ("b", "2024-05-02T00:30:00+02:00"),
    ]);
    let (keep, remove, reasons) = c.apply(&ExpirePolicy {
        daily: 2,
        ..Default::default()
    });
    assert_eq!(keep, v(&["a", "b"]));
    assert!(remove.is_empty());
    // In UTC both would share May 1 and b would only be "oldest daily snapshot".
    assert_eq!(reasons[1], v(&["daily snapshot"]));
}

#[test]
fn monthly_and_yearly() {
    let c = Case::new(&[
        ("a", "2022-01-15T00:00:00Z"),
        ("b", "2022-06-15T00:00:00Z"),
        ("c", "2022-06-20T00:00:00Z"),
        ("d", "2023-02-01T00:00:00Z"),
        ("e", "2023-02-28T00:00:00Z"),
    ]);
    let (keep, remove, _) = c.apply(&ExpirePolicy {
        monthly: 2,
        ..Default::default()
    });
    assert_eq!(keep, v(&["e", "c"]));
    assert_eq!(remove, v(&["d", "b", "a"]));
    let (keep, _, reasons) = c.apply(&ExpirePolicy {
        yearly: 5,
        ..Default::default()
    });
    assert_eq!(keep, v(&["e", "c", "a"]));
    assert_eq!(
        reasons,
        vec![
            v(&["yearly snapshot"]),
            v(&["yearly snapshot"]),
            v(&["oldest yearly snapshot"])
        ]
    );
}

#[test]
fn keep_tags() {
    let mut c = sundays();
    c.snaps[0].tags = v(&["a", "b"]);
    c.snaps[1].tags = v(&["a"]);
    c.snaps[5].tags = v(&["b"]);
    let p = ExpirePolicy {
        tags: vec![v(&["a", "b"]), v(&["b"])],
        ..Default::default()
    };
    let (keep, remove, reasons) = c.apply(&p);
    assert_eq!(keep, v(&["5d33b116", "0a1f9759"]));
    assert_eq!(remove.len(), 10);
    assert_eq!(reasons[0], v(&["has tags [b]"]));
    assert_eq!(reasons[1], v(&["has tags [a, b]", "has tags [b]"]));
    assert_eq!(p.to_string(), "keep all snapshots with tags [[a, b] [b]]");

    // '' matches untagged snapshots only.
    let p = ExpirePolicy {
        tags: vec![v(&[""])],
        ..Default::default()
    };
    let (keep, _, reasons) = c.apply(&p);
    assert_eq!(keep.len(), 9);
    assert_eq!(reasons[0], v(&["has tags []"]));
    assert!(!keep.contains(&"5d33b116".to_string()));
}

#[test]
fn keep_within_boundaries() {
    let c = Case::new(&[
        ("a", "2024-01-01T00:00:00Z"),
        ("b", "2024-01-01T00:00:01Z"),
        ("c", "2024-01-02T00:00:00Z"),
        ("d", "2024-01-03T00:00:00Z"),
    ]);
    // Start is exactly 2024-01-01T00:00:00: a is not strictly after it.
    let p = ExpirePolicy {
        within: KeepDuration::parse("2d").unwrap(),
        ..Default::default()
    };
    let (keep, remove, reasons) = c.apply(&p);
    assert_eq!(keep, v(&["d", "c", "b"]));
    assert_eq!(remove, v(&["a"]));
    assert_eq!(reasons[0], v(&["within 2d"]));
    assert_eq!(p.to_string(), "keep all snapshots within 2d of the newest");
    // Hours are whole hours after the calendar part.
    let p = ExpirePolicy {
        within: KeepDuration::parse("1d23h").unwrap(),
        ..Default::default()
    };
    assert_eq!(c.keep(&p), v(&["d", "c"]));
    let p = ExpirePolicy {
        within: KeepDuration::parse("48h").unwrap(),
        ..Default::default()
    };
    assert_eq!(c.keep(&p), v(&["d", "c", "b"]));
}

#[test]
fn keep_within_ignores_future_snapshots() {
    let c = Case::new(&[
        ("a", "2024-01-01T00:00:00Z"),
        ("b", "2024-01-05T00:00:00Z"),
        ("future", "2200-01-01T00:00:00Z"),
    ]);
    let p = ExpirePolicy {
        within: KeepDuration::parse("3d").unwrap(),
        ..Default::default()
    };
    // Counted from b (the newest before now), the future one is after the start too.
    let (keep, remove, _) = c.apply(&p);
    assert_eq!(keep, v(&["future", "b"]));
    assert_eq!(remove, v(&["a"]));
    // All in the future: counted from Go's zero time, so everything is inside.
    let c = Case::new(&[("x", "2300-01-01T00:00:00Z"), ("y", "2300-06-01T00:00:00Z")]);
    assert_eq!(c.keep(&p), v(&["y", "x"]));
}

#[test]
fn keep_within_month_arithmetic_like_go() {
    // Latest Mar 31; minus 1 month is "Feb 31" = Mar 2 (2024 is a leap year).
    let c = Case::new(&[
        ("a", "2024-03-01T12:00:00Z"),
        ("b", "2024-03-02T11:59:59Z"),
        ("c", "2024-03-02T12:00:01Z"),
        ("d", "2024-03-31T12:00:00Z"),
    ]);
    let p = ExpirePolicy {
        within: KeepDuration::parse("1m").unwrap(),
        ..Default::default()
    };
    assert_eq!(c.keep(&p), v(&["d", "c"]));
    // One year back from Feb 29 is "Feb 29 2023" = Mar 1 2023.
    let c = Case::new(&[
        ("a", "2023-02-28T12:00:00Z"),
        ("b", "2023-03-01T12:00:01Z"),
        ("c", "2024-02-29T12:00:00Z"),
    ]);
    let p = ExpirePolicy {
        within: KeepDuration::parse("1y").unwrap(),
        ..Default::default()
    };
    assert_eq!(c.keep(&p), v(&["c", "b"]));
    // A huge duration reaches before any time: everything is inside.
    let p = ExpirePolicy {
        within: KeepDuration::parse("999999999y").unwrap(),
        ..Default::default()
    };
    assert_eq!(c.keep(&p).len(), 3);
}

#[test]
fn keep_within_in_a_fixed_offset() {
    // +05:00 wall clock: latest 2024-01-10T01:00+05:00 minus 1d = 2024-01-09T01:00+05:00.
    let c = Case::new(&[
        ("a", "2024-01-08T20:00:00Z"), // 2024-01-09T01:00+05:00 exactly: not after
        ("b", "2024-01-08T20:00:01Z"),
        ("c", "2024-01-10T01:00:00+05:00"),
    ]);
    let p = ExpirePolicy {
        within: KeepDuration::parse("1d").unwrap(),
        ..Default::default()
    };
    assert_eq!(c.keep(&p), v(&["c", "b"]));
}

#[test]
fn keep_within_buckets() {
    let c = Case::new(&[
        ("a", "2024-05-01T08:00:00Z"),
        ("b", "2024-05-02T08:00:00Z"),
        ("c", "2024-05-02T11:00:00Z"),
        ("d", "2024-05-04T09:00:00Z"),
        ("e", "2024-05-05T10:00:00Z"),
    ]);
    // The forum example: --keep-daily 4 vs --keep-within-daily 4d.
    let (keep, _, _) = c.apply(&ExpirePolicy {
        daily: 4,
        ..Default::default()
    });
    assert_eq!(keep, v(&["e", "d", "c", "a"]));
    let p = ExpirePolicy {
        within_daily: KeepDuration::parse("4d").unwrap(),
        ..Default::default()
    };
    let (keep, remove, reasons) = c.apply(&p);
    assert_eq!(keep, v(&["e", "d", "c"]));
    assert_eq!(remove, v(&["b", "a"]));
    assert_eq!(reasons[0], v(&["daily within 4d"]));
    assert_eq!(p.to_string(), "keep daily snapshots within 4d");

    // The oldest snapshot inside the range is kept even if its bucket was seen.
    let c = Case::new(&[
        ("a", "2024-05-05T08:00:00Z"),
        ("b", "2024-05-05T09:00:00Z"),
        ("c", "2024-05-05T10:00:00Z"),
    ]);
    let (keep, remove, reasons) = c.apply(&ExpirePolicy {
        within_daily: KeepDuration::parse("1d").unwrap(),
        within_hourly: KeepDuration::parse("1h").unwrap(),
        ..Default::default()
    });
    assert_eq!(keep, v(&["c", "a"]));
    assert_eq!(remove, v(&["b"]));
    assert_eq!(reasons[0], v(&["hourly within 1h", "daily within 1d"]));
    assert_eq!(reasons[1], v(&["oldest daily within 1d"]));

    // Every kind of within bucket. Sundays at 11:00: 14 days back from Nov 17 is Nov 3
    // 11:00 exactly, so only Nov 10 and Nov 17 are inside.
    let c = sundays();
    let d = KeepDuration::parse("14d").unwrap();
    type Field = fn(&mut ExpirePolicy) -> &mut KeepDuration;
    let cases: [(Field, &str, Vec<String>); 4] = [
        (
            |p| &mut p.within_hourly,
            "hourly within 14d",
            v(&["e1ae2f40", "dfee9fb4"]),
        ),
        (
            |p| &mut p.within_weekly,
            "weekly within 14d",
            v(&["e1ae2f40", "dfee9fb4"]),
        ),
        (
            |p| &mut p.within_monthly,
            "monthly within 14d",
            v(&["e1ae2f40"]),
        ),
        (
            |p| &mut p.within_yearly,
            "yearly within 14d",
            v(&["e1ae2f40"]),
        ),
    ];
    for (field, reason, expect) in cases {
        let mut p = ExpirePolicy::default();
        *field(&mut p) = d;
        let (keep, _, reasons) = c.apply(&p);
        assert_eq!(keep, expect, "{reason}");
        assert_eq!(reasons[0], v(&[reason]));
    }
}

#[test]
fn combined_policy_string() {
    let p = ExpirePolicy {
        last: 1,
        daily: -1,
        within_hourly: KeepDuration::parse("2d").unwrap(),
        within_yearly: KeepDuration::parse("10y").unwrap(),
        tags: vec![v(&["x"])],
        within: KeepDuration::parse("1y2m3d4h").unwrap(),
        ..Default::default()
    };
    assert_eq!(
        p.to_string(),
        "keep 1 latest, all daily snapshots, hourly snapshots within 2d, yearly snapshots \
         within 10y and all snapshots with tags [[x]] and all snapshots within 1y2m3d4h of \
         the newest"
    );
    assert_eq!(ExpirePolicy::default().to_string(), "remove");
    assert!(ExpirePolicy::default().is_empty());
    assert!(ExpirePolicy {
        within: KeepDuration::parse("0d").unwrap(),
        ..Default::default()
    }
    .is_empty());
}

#[test]
fn reasons_order_and_all_rules_together() {
    let mut c = sundays();
    c.snaps[11].tags = v(&["t"]);
    let p = ExpirePolicy {
        last: 1,
        hourly: 1,
        daily: 1,
        weekly: 1,
        monthly: 1,
        yearly: 1,
        within: KeepDuration::parse("1h").unwrap(),
        within_hourly: KeepDuration::parse("1h").unwrap(),
        within_daily: KeepDuration::parse("1h").unwrap(),
        within_weekly: KeepDuration::parse("1h").unwrap(),
        within_monthly: KeepDuration::parse("1h").unwrap(),
        within_yearly: KeepDuration::parse("1h").unwrap(),
        tags: vec![v(&["t"])],
    };
    let (keep, _, reasons) = c.apply(&p);
    assert_eq!(keep, v(&["e1ae2f40"]));
    assert_eq!(
        reasons[0],
        v(&[
            "has tags [t]",
            "within 1h",
            "last snapshot",
            "hourly snapshot",
            "daily snapshot",
            "weekly snapshot",
            "monthly snapshot",
            "yearly snapshot",
            "hourly within 1h",
            "daily within 1h",
            "weekly within 1h",
            "monthly within 1h",
            "yearly within 1h",
        ])
    );
}

#[test]
fn same_timestamps_keep_input_order() {
    let c = Case::new(&[
        ("a", "2024-01-01T00:00:00Z"),
        ("b", "2024-01-01T00:00:00Z"),
        ("c", "2024-01-01T00:00:00Z"),
    ]);
    // Stable sort: equal times stay in input order, so "a" is newest-first's first.
    let (keep, remove, _) = c.apply(&ExpirePolicy {
        last: 2,
        ..Default::default()
    });
    assert_eq!(keep, v(&["a", "b"]));
    assert_eq!(remove, v(&["c"]));
    // One daily bucket: the first is the daily, the last (oldest position) is kept as oldest.
    let (keep, remove, reasons) = c.apply(&ExpirePolicy {
        daily: 5,
        ..Default::default()
    });
    assert_eq!(keep, v(&["a", "c"]));
    assert_eq!(remove, v(&["b"]));
    assert_eq!(reasons[1], v(&["oldest daily snapshot"]));
}

#[test]
fn empty_list_and_single_snapshot() {
    let a = apply_policy(
        Vec::new(),
        &ExpirePolicy {
            last: 1,
            ..Default::default()
        },
        &now(),
    );
    assert!(a.keep.is_empty() && a.remove.is_empty());
    let c = Case::new(&[("a", "2024-01-01T00:00:00Z")]);
    let (keep, _, reasons) = c.apply(&ExpirePolicy {
        weekly: 3,
        ..Default::default()
    });
    assert_eq!(keep, v(&["a"]));
    assert_eq!(reasons[0], v(&["weekly snapshot"]));
    // An empty policy keeps nothing (callers refuse it unless asked to remove all).
    let (keep, remove, _) = c.apply(&ExpirePolicy::default());
    assert!(keep.is_empty());
    assert_eq!(remove, v(&["a"]));
}
