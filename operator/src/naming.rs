//! Names of the objects the operator creates for one volume of one pod.

use arca_format::id::Id;

/// The name of the PodVolumeBackup or PodVolumeRestore of `operation` (a Backup's or
/// Restore's name) for volume `volume` of pod `namespace/pod`: readable
/// (`<operation>-<pod>-<volume>`) and made unique by a hash of the namespace, pod and volume,
/// so that pods of the same name in two namespaces never share one (a create that finds the
/// name taken is taken as done).
pub fn volume_operation_name(operation: &str, namespace: &str, pod: &str, volume: &str) -> String {
    unique_name(
        &format!("{operation}-{pod}-{volume}"),
        &format!("{namespace}/{pod}/{volume}"),
    )
}

/// The name of the BackupRepository of volume namespace `namespace` in storage location
/// `location`: readable (`<namespace>-<location>`) and unique per pair, so namespace `team-a`
/// in location `prod` and namespace `team` in location `a-prod` never share a repository (or
/// its key).
pub fn repository_name(namespace: &str, location: &str) -> String {
    unique_name(
        &format!("{namespace}-{location}"),
        &format!("{namespace}/{location}"),
    )
}

/// `readable`, cut to fit, then a dash and 10 hex digits of the hash of `identity` (whose
/// parts are joined by `/`, which no Kubernetes name contains, so distinct parts give
/// distinct identities). At most 253 characters, an object name's limit.
fn unique_name(readable: &str, identity: &str) -> String {
    let digest = Id::hash(identity.as_bytes()).to_hex();
    let mut readable = readable.to_string();
    let keep = 253 - 11;
    if readable.len() > keep {
        let mut cut = keep;
        while !readable.is_char_boundary(cut) {
            cut -= 1;
        }
        readable.truncate(cut);
    }
    format!(
        "{}-{}",
        readable.trim_end_matches(['-', '.']),
        &digest[..10]
    )
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

    #[test]
    fn repository_names_are_one_per_namespace_and_location() {
        assert_ne!(
            repository_name("team-a", "prod"),
            repository_name("team", "a-prod")
        );
        assert_ne!(
            repository_name("resources.arca", "default"),
            repository_name("resources", "arca.default")
        );
        let name = repository_name("shop", "default");
        assert!(name.starts_with("shop-default-"), "{name}");
        assert_eq!(name, repository_name("shop", "default"));
        let long = repository_name(&"n".repeat(63), &"l".repeat(253));
        assert!(long.len() <= 253, "{}", long.len());
    }
}
