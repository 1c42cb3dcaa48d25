//! Byte-exact tree encoding against JSON written out by hand from the reference notes (§6.2),
//! plus property tests for the Go string codecs and decoder totality.

use arca_format::gojson::{go_quote, go_unquote, write_json_go_quoted, write_json_string};
use arca_format::gotime::GoTime;
use arca_format::tree::{ExtendedAttribute, Node, NodeType, Tree};
use arca_format::Id;
use proptest::prelude::*;

fn t(s: &str) -> GoTime {
    GoTime::parse(s).unwrap()
}

fn id(c: char) -> Id {
    std::iter::repeat_n(c, 64)
        .collect::<String>()
        .parse()
        .unwrap()
}

const M: &str = "2015-01-02T18:10:50.895208559+02:00";
const C: &str = "2015-01-02T18:10:50.8952085+02:00";

fn file_node() -> Node {
    let mut n = Node::new("file.txt", NodeType::File);
    n.mode = 420;
    n.mtime = t(M);
    n.atime = t(M);
    n.ctime = t(C);
    n.uid = 1000;
    n.gid = 100;
    n.user = "fd0".into();
    n.group = "users".into();
    n.inode = 416863351;
    n.device_id = 2049;
    n.size = 1234;
    n.links = 1;
    n.content = Some(vec![id('5'), id('a')]);
    n
}

const FILE_JSON: &str = concat!(
    r#"{"name":"file.txt","type":"file","mode":420,"#,
    r#""mtime":"2015-01-02T18:10:50.895208559+02:00","#,
    r#""atime":"2015-01-02T18:10:50.895208559+02:00","#,
    r#""ctime":"2015-01-02T18:10:50.8952085+02:00","#,
    r#""uid":1000,"gid":100,"user":"fd0","group":"users","inode":416863351,"#,
    r#""device_id":2049,"size":1234,"links":1,"content":["#,
    r#""5555555555555555555555555555555555555555555555555555555555555555","#,
    r#""aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}"#
);

fn empty_file_node() -> Node {
    let mut n = Node::new("empty", NodeType::File);
    n.mode = 0o600;
    n.mtime = t("2015-01-02T18:10:50Z");
    n.atime = t("2015-01-02T18:10:50Z");
    n.ctime = t("2015-01-02T18:10:50.1Z");
    n.links = 1;
    n.content = Some(vec![]);
    n
}

const EMPTY_FILE_JSON: &str = concat!(
    r#"{"name":"empty","type":"file","mode":384,"#,
    r#""mtime":"2015-01-02T18:10:50Z","atime":"2015-01-02T18:10:50Z","#,
    r#""ctime":"2015-01-02T18:10:50.1Z","uid":0,"gid":0,"links":1,"content":[]}"#
);

fn dir_node() -> Node {
    let mut n = Node::new("testdata", NodeType::Dir);
    n.mode = 2147484141;
    n.mtime = t("2015-01-02T18:10:50+02:00");
    n.atime = t("2015-01-02T18:10:50+02:00");
    n.ctime = t("2015-01-02T18:10:50+02:00");
    n.uid = 0;
    n.gid = 0;
    n.user = "root".into();
    n.group = "root".into();
    n.inode = 12;
    n.device_id = 2049;
    n.subtree = Some(id('b'));
    n
}

const DIR_JSON: &str = concat!(
    r#"{"name":"testdata","type":"dir","mode":2147484141,"#,
    r#""mtime":"2015-01-02T18:10:50+02:00","atime":"2015-01-02T18:10:50+02:00","#,
    r#""ctime":"2015-01-02T18:10:50+02:00","uid":0,"gid":0,"user":"root","group":"root","#,
    r#""inode":12,"device_id":2049,"content":null,"#,
    r#""subtree":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}"#
);

fn symlink_node() -> Node {
    let mut n = Node::new("link", NodeType::Symlink);
    n.mode = 134218239;
    n.mtime = t("0001-01-01T00:00:00Z");
    n.atime = t("0001-01-01T00:00:00Z");
    n.ctime = t("2023-06-30T23:59:59.000000001-07:00");
    n.uid = 1000;
    n.gid = 1000;
    n.inode = 7;
    n.links = 1;
    n.linktarget = "../target <&>".into();
    n
}

const SYMLINK_JSON: &str = concat!(
    r#"{"name":"link","type":"symlink","mode":134218239,"#,
    r#""mtime":"0001-01-01T00:00:00Z","atime":"0001-01-01T00:00:00Z","#,
    r#""ctime":"2023-06-30T23:59:59.000000001-07:00","uid":1000,"gid":1000,"#,
    r#""inode":7,"links":1,"linktarget":"../target \u003c\u0026\u003e","content":null}"#
);

fn check_single(node: Node, json: &str) {
    let tree = Tree::new(vec![node]);
    let enc = tree.encode().unwrap();
    let want = format!("{{\"nodes\":[{json}]}}\n");
    assert_eq!(String::from_utf8(enc.clone()).unwrap(), want);
    let back = Tree::decode(&enc).unwrap();
    assert_eq!(back, tree);
    assert_eq!(back.encode().unwrap(), enc);
}

#[test]
fn golden_file() {
    check_single(file_node(), FILE_JSON);
}

#[test]
fn golden_empty_file() {
    check_single(empty_file_node(), EMPTY_FILE_JSON);
}

#[test]
fn golden_dir() {
    check_single(dir_node(), DIR_JSON);
}

#[test]
fn golden_symlink() {
    check_single(symlink_node(), SYMLINK_JSON);
}

#[test]
fn golden_whole_tree() {
    let mut tree = Tree::new(vec![
        symlink_node(),
        file_node(),
        dir_node(),
        empty_file_node(),
    ]);
    tree.sort();
    let enc = tree.encode().unwrap();
    let want = format!("{{\"nodes\":[{EMPTY_FILE_JSON},{FILE_JSON},{SYMLINK_JSON},{DIR_JSON}]}}\n");
    assert_eq!(String::from_utf8(enc.clone()).unwrap(), want);
    assert_eq!(Tree::decode(&enc).unwrap(), tree);
}

#[test]
fn golden_optional_fields() {
    let mut n = Node::new("dev", NodeType::Chardev);
    n.mode = 69206416;
    n.device = 1025;
    n.error = "lstat: oops".into();
    n.extended_attributes = vec![
        ExtendedAttribute {
            name: "user.a".into(),
            value: b"hi!".to_vec(),
        },
        ExtendedAttribute {
            name: "user.empty".into(),
            value: vec![],
        },
    ];
    n.generic_attributes
        .insert("windows.file_attributes".into(), serde_json::json!(32));
    n.generic_attributes.insert(
        "windows.creation_time".into(),
        serde_json::json!({"x": "<b>", "y": [1, true, null]}),
    );
    let json = concat!(
        r#"{"name":"dev","type":"chardev","mode":69206416,"#,
        r#""mtime":"0001-01-01T00:00:00Z","atime":"0001-01-01T00:00:00Z","#,
        r#""ctime":"0001-01-01T00:00:00Z","uid":0,"gid":0,"#,
        r#""extended_attributes":[{"name":"user.a","value":"aGkh"},"#,
        r#"{"name":"user.empty","value":""}],"#,
        r#""generic_attributes":{"windows.creation_time":{"x":"\u003cb\u003e","y":[1,true,null]},"#,
        r#""windows.file_attributes":32},"#,
        r#""device":1025,"content":null,"error":"lstat: oops"}"#
    );
    check_single(n, json);
}

#[test]
fn golden_invalid_utf8_link_target() {
    let mut n = Node::new("l", NodeType::Symlink);
    n.set_link_target(b"../i/\xe4\xf6\xfcd/samba");
    let json = concat!(
        r#"{"name":"l","type":"symlink","#,
        r#""mtime":"0001-01-01T00:00:00Z","atime":"0001-01-01T00:00:00Z","#,
        r#""ctime":"0001-01-01T00:00:00Z","uid":0,"gid":0,"#,
        r#""linktarget":"../i/\ufffd\ufffd\ufffdd/samba","#,
        r#""linktarget_raw":"Li4vaS/k9vxkL3NhbWJh","content":null}"#
    );
    check_single(n, json);
}

/// §6.2's table: on-disk name → JSON string stored in the tree.
#[test]
fn name_table() {
    let cases: &[(&[u8], &str)] = &[
        (b"a\"b", r#""a\\\"b""#),
        (b"back\\slash", r#""back\\\\slash""#),
        (b"tab\there", r#""tab\\there""#),
        (b"<tag>&amp", r#""\u003ctag\u003e\u0026amp""#),
        ("ü-umlaut".as_bytes(), "\"ü-umlaut\""),
        ("emoji😀".as_bytes(), "\"emoji😀\""),
        ("nbsp\u{a0}x".as_bytes(), r#""nbsp\\u00a0x""#),
        (b"del\x7fx", r#""del\\x7fx""#),
        (b"bad\xff\xfeutf8", r#""bad\\xff\\xfeutf8""#),
        ("ls\u{2028}x".as_bytes(), r#""ls\\u2028x""#),
        ("zw\u{200b}x".as_bytes(), r#""zw\\u200bx""#),
    ];
    for &(name, stored) in cases {
        let tree = Tree::new(vec![Node::new(name, NodeType::File)]);
        let enc = String::from_utf8(tree.encode().unwrap()).unwrap();
        let prefix = format!("{{\"nodes\":[{{\"name\":{stored},\"type\":\"file\",");
        assert!(enc.starts_with(&prefix), "{enc} vs {prefix}");
        let back = Tree::decode(enc.as_bytes()).unwrap();
        assert_eq!(back.nodes[0].name, name);
        assert_eq!(back, tree);
    }
}

#[test]
fn decode_what_restic_writes() {
    let json = concat!(
        r#"{"extra":[1,{"a":null}],"nodes":[{"name":"a\\x00b","type":"file","#,
        r#""mtime":"2015-01-02T18:10:50.895208559+02:00","future_field":{"x":1},"#,
        r#""uid":5,"content":null,"subtree":null,"linktarget_raw":null,"mode":null},"#,
        r#"{"name":"d","type":"dir","size":0,"links":0,"extended_attributes":null,"#,
        r#""generic_attributes":null}],"#,
        r#""after":"x"}"#,
        "\n"
    );
    let tree = Tree::decode(json.as_bytes()).unwrap();
    assert_eq!(tree.nodes.len(), 2);
    let a = &tree.nodes[0];
    assert_eq!(a.name, b"a\x00b");
    assert_eq!(a.uid, 5);
    assert_eq!(a.content, None);
    assert_eq!(a.mode, 0);
    assert_eq!(a.mtime.format(), M);
    assert!(a.atime.is_zero() && a.ctime.is_zero());
    assert_eq!(tree.nodes[1].node_type, NodeType::Dir);
    // The fixture form of a legacy invalid target decodes to U+FFFD characters.
    let legacy = r#"{"nodes":[{"name":"s","type":"symlink","linktarget":"../i/\ufffd\ufffd\ufffdd/samba"}]}"#;
    let tree = Tree::decode(legacy.as_bytes()).unwrap();
    assert_eq!(
        tree.nodes[0].linktarget,
        "../i/\u{fffd}\u{fffd}\u{fffd}d/samba"
    );
    assert_eq!(tree.nodes[0].linktarget_raw, None);
}

#[test]
fn decode_rejects() {
    for bad in [
        &b""[..],
        b"[]",
        b"{\"nodes\":{}}",
        b"{\"nodes\":[[\"a\",\"file\"]]}",
        b"{\"nodes\":[{\"extended_attributes\":[[\"a\",\"\"]]}]}",
        b"{\"nodes\":[{\"name\":\"a\\\\q\"}]}",
        b"{\"nodes\":[{\"name\":\"a\\\"b\"}]}",
        b"{\"nodes\":[{\"name\":\"a\\\\\"}]}",
        b"{\"nodes\":[{\"mtime\":\"yesterday\"}]}",
        b"{\"nodes\":[{\"uid\":-1}]}",
        b"{\"nodes\":[{\"content\":[\"abc\"]}]}",
        b"{\"nodes\":[{\"linktarget_raw\":\"!!\"}]}",
        b"{\"nodes\":[{\"extended_attributes\":[{\"name\":\"a\",\"value\":\"YQ\"}]}]}",
        b"{\"nodes\":[]}x",
        b"{\"nodes\":[{\"name\":\"\xff\"}]}",
    ] {
        assert!(
            Tree::decode(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn year_clamped_on_encode() {
    use chrono::{FixedOffset, TimeZone};
    let off = FixedOffset::east_opt(3600).unwrap();
    let mut n = Node::new("x", NodeType::File);
    n.mtime = GoTime(off.with_ymd_and_hms(20000, 2, 29, 1, 2, 3).unwrap());
    n.atime = GoTime(off.with_ymd_and_hms(-3, 5, 6, 7, 8, 9).unwrap());
    let enc = String::from_utf8(Tree::new(vec![n]).encode().unwrap()).unwrap();
    assert!(
        enc.contains(r#""mtime":"9999-03-01T01:02:03+01:00","atime":"0000-05-06T07:08:09+01:00""#)
    );
}

#[test]
fn example_times_round_trip() {
    for s in [
        "2015-01-02T18:10:50.895208559+02:00",
        "2015-01-02T18:10:50.8952085+02:00",
        "2015-01-02T18:10:50+02:00",
        "2015-01-02T18:10:50.1Z",
        "0001-01-01T00:00:00Z",
    ] {
        assert_eq!(GoTime::parse(s).unwrap().format(), s);
        let j = serde_json::to_string(&GoTime::parse(s).unwrap()).unwrap();
        assert_eq!(j, format!("\"{s}\""));
    }
}

fn arb_time() -> impl Strategy<Value = GoTime> {
    (
        -62_135_596_800i64..253_402_300_799,
        0u32..1_000_000_000,
        -(14 * 60)..=(14 * 60i32),
    )
        .prop_map(|(secs, nanos, off_min)| {
            let off = chrono::FixedOffset::east_opt(off_min * 60).unwrap();
            let utc = chrono::DateTime::from_timestamp(secs, nanos).unwrap();
            GoTime(utc.with_timezone(&off)).clamp_year()
        })
}

fn arb_node() -> impl Strategy<Value = Node> {
    (
        (
            proptest::collection::vec(any::<u8>(), 0..24),
            prop_oneof![
                Just(NodeType::File),
                Just(NodeType::Dir),
                Just(NodeType::Symlink),
                Just(NodeType::Dev),
                Just(NodeType::Chardev),
                Just(NodeType::Fifo),
                Just(NodeType::Socket),
                Just(NodeType::Irregular),
                ".{0,6}".prop_map(|s| NodeType::parse(&s)),
            ],
            any::<u32>(),
            arb_time(),
            arb_time(),
            arb_time(),
        ),
        (
            any::<u32>(),
            any::<u32>(),
            ".{0,8}",
            ".{0,8}",
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        ),
        (
            proptest::collection::vec(any::<u8>(), 0..12),
            proptest::collection::vec(
                (".{0,6}", proptest::collection::vec(any::<u8>(), 0..8)),
                0..3,
            ),
            any::<u64>(),
            proptest::option::of(proptest::collection::vec(any::<[u8; 32]>(), 0..3)),
            proptest::option::of(any::<[u8; 32]>()),
            ".{0,8}",
        ),
    )
        .prop_map(
            |(
                (name, node_type, mode, mtime, atime, ctime),
                (uid, gid, user, group, inode, device_id, size, links),
                (target, xattrs, device, content, subtree, error),
            )| {
                let mut n = Node::new(name, node_type);
                n.mode = mode;
                n.mtime = mtime;
                n.atime = atime;
                n.ctime = ctime;
                n.uid = uid;
                n.gid = gid;
                n.user = user;
                n.group = group;
                n.inode = inode;
                n.device_id = device_id;
                n.size = size;
                n.links = links;
                n.set_link_target(&target);
                n.extended_attributes = xattrs
                    .into_iter()
                    .map(|(name, value)| ExtendedAttribute { name, value })
                    .collect();
                n.device = device;
                n.content = content.map(|v| v.into_iter().map(Id).collect());
                n.subtree = subtree.map(Id);
                n.error = error;
                n
            },
        )
}

proptest! {
    #[test]
    fn quote_unquote_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let q = go_quote(&bytes);
        prop_assert_eq!(go_unquote(&q).unwrap(), bytes.clone());
        // The one-pass tree writer equals JSON(Quote(name)).
        let mut a = Vec::new();
        write_json_go_quoted(&mut a, &bytes);
        let mut b = Vec::new();
        write_json_string(&mut b, q.as_bytes());
        prop_assert_eq!(a, b);
    }

    #[test]
    fn quote_unquote_round_trip_unicode(s in "\\PC*|[\\u{0}-\\u{7f}\\u{2028}\\u{a0}\\u{10ffff}]*") {
        prop_assert_eq!(go_unquote(&go_quote(s.as_bytes())).unwrap(), s.as_bytes());
    }

    #[test]
    fn tree_round_trip(mut nodes in proptest::collection::vec(arb_node(), 0..6)) {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes.dedup_by(|a, b| a.name == b.name);
        let tree = Tree::new(nodes);
        let enc = tree.encode().unwrap();
        let back = Tree::decode(&enc).unwrap();
        prop_assert_eq!(&back, &tree);
        prop_assert_eq!(back.encode().unwrap(), enc.clone());
        // Go's encoder output is plain JSON: serde_json must accept it too.
        prop_assert!(serde_json::from_slice::<serde_json::Value>(&enc).is_ok());
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Tree::decode(&bytes);
    }

    #[test]
    fn decode_mutated_never_panics(
        node in arb_node(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut enc = Tree::new(vec![node]).encode().unwrap();
        for (i, b) in edits {
            let at = i.index(enc.len());
            enc[at] = b;
        }
        let _ = Tree::decode(&enc);
    }

    #[test]
    fn unquote_never_panics(s in "\\PC*|[\\\\\"xuU0-9a-fA-F\\n]*") {
        let _ = go_unquote(&s);
    }

    #[test]
    fn time_parse_never_panics(s in "\\PC*|[0-9T:Z.+\\-]{0,40}") {
        if let Ok(t) = GoTime::parse(&s) {
            let _ = t.format();
        }
    }

    #[test]
    fn time_format_parse_round_trip(t in arb_time()) {
        let s = t.format();
        let back = GoTime::parse(&s).unwrap();
        prop_assert_eq!(back, t);
        prop_assert_eq!(back.format(), s);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for key in ["unknown", "generic_attributes"] {
        let mut s = format!("{{\"nodes\":[{{\"{key}\":{{\"a\":");
        s.push_str(&"[".repeat(100_000));
        s.push_str(&"]".repeat(100_000));
        s.push_str("}}]}");
        // serde_json skips unknown values without recursing; typed values hit its depth limit.
        let r = Tree::decode(s.as_bytes());
        assert_eq!(r.is_err(), key == "generic_attributes", "{key}");
    }
    let mut s = String::from("{\"x\":");
    s.push_str(&"{\"a\":".repeat(100_000));
    assert!(Tree::decode(s.as_bytes()).is_err());
}
