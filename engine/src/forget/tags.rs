//! Tag lists as restic prints, parses and matches them.

use arca_format::snapshot::Snapshot;

/// restic's `TagList.String()`: `[a, b]`.
pub fn tag_list_string(l: &[String]) -> String {
    format!("[{}]", l.join(", "))
}

/// restic's `Snapshot.HasTags`: every tag of `wanted` is present; an empty tag reached
/// while the snapshot has no tags at all matches (so `''` selects untagged snapshots).
pub fn has_tags(s: &Snapshot, wanted: &[String]) -> bool {
    for tag in wanted {
        if tag.is_empty() && s.tags.is_empty() {
            return true;
        }
        if !s.tags.contains(tag) {
            return false;
        }
    }
    true
}

/// restic's `TagList.Set`: split at commas, trim whitespace around each tag (empty tags stay).
pub fn parse_tag_list(s: &str) -> Vec<String> {
    s.split(',').map(|t| t.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn tag_helpers() {
        assert_eq!(parse_tag_list("a, b ,,c"), v(&["a", "b", "", "c"]));
        assert_eq!(tag_list_string(&v(&["a", "b"])), "[a, b]");
        let s = snap_full("1", "2024-01-01T00:00:00Z", "h", &["/a"], &["a", "b"]);
        assert!(has_tags(&s, &v(&["a"])));
        assert!(has_tags(&s, &v(&["b", "a"])));
        assert!(!has_tags(&s, &v(&["a", "c"])));
        assert!(!has_tags(&s, &v(&[""])));
        assert!(has_tags(&s, &[]));
        let untagged = snap("2", "2024-01-01T00:00:00Z");
        assert!(has_tags(&untagged, &v(&[""])));
        assert!(!has_tags(&untagged, &v(&["a"])));
    }
}
