//! Names of the objects the operator creates for one volume of one pod.

use arca_format::id::Id;

/// The name of the PodVolumeBackup or PodVolumeRestore of `operation` (a Backup's or
/// Restore's name) for volume `volume` of pod `namespace/pod`: readable
/// (`<operation>-<pod>-<volume>`) and made unique by a hash of the namespace, pod and volume,
/// so that pods of the same name in two namespaces never share one (a create that finds the
/// name taken is taken as done).
pub fn volume_operation_name(operation: &str, namespace: &str, pod: &str, volume: &str) -> String {
    let digest = Id::hash(format!("{namespace}/{pod}/{volume}").as_bytes()).to_hex();
    let mut readable = format!("{operation}-{pod}-{volume}");
    // 253 characters at most; cut at a character boundary (names are ASCII, but be safe).
    let keep = 253 - 11;
    if readable.len() > keep {
        let mut cut = keep;
        while !readable.is_char_boundary(cut) {
            cut -= 1;
        }
        readable.truncate(cut);
    }
    format!("{}-{}", readable.trim_end_matches('-'), &digest[..10])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_pod_names_in_two_namespaces_get_two_names() {
        let a = volume_operation_name("b1", "shop", "web-0", "data");
        let b = volume_operation_name("b1", "blog", "web-0", "data");
        assert_ne!(a, b);
        assert!(a.starts_with("b1-web-0-data-"), "{a}");
        assert_eq!(a, volume_operation_name("b1", "shop", "web-0", "data"));
        // The names that differ only in where the dashes split them.
        assert_ne!(
            volume_operation_name("x", "a-b", "c", "data"),
            volume_operation_name("x", "a", "b-c", "data")
        );
        let long = volume_operation_name(&"b".repeat(200), "ns", &"p".repeat(100), "data");
        assert!(long.len() <= 253, "{}", long.len());
    }
}
