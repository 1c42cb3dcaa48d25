//! Tree blobs: `{"nodes":[...]}\n` with one JSON object per directory entry.
//!
//! A tree's ID is the SHA-256 of these bytes, so [`Tree::encode`] reproduces restic's
//! `json.Marshal` output byte for byte (field order, omitempty rules, Go string escaping, Go time
//! format). [`Tree::decode`] accepts anything restic writes and returns a typed error otherwise.

use crate::gojson::{self, UnquoteError};
use crate::gotime::GoTime;
use crate::id::Id;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

// Go `io/fs.FileMode` bits.
pub const MODE_DIR: u32 = 1 << 31;
pub const MODE_APPEND: u32 = 1 << 30;
pub const MODE_EXCLUSIVE: u32 = 1 << 29;
pub const MODE_TEMPORARY: u32 = 1 << 28;
pub const MODE_SYMLINK: u32 = 1 << 27;
pub const MODE_DEVICE: u32 = 1 << 26;
pub const MODE_NAMED_PIPE: u32 = 1 << 25;
pub const MODE_SOCKET: u32 = 1 << 24;
pub const MODE_SETUID: u32 = 1 << 23;
pub const MODE_SETGID: u32 = 1 << 22;
pub const MODE_CHAR_DEVICE: u32 = 1 << 21;
pub const MODE_STICKY: u32 = 1 << 20;
pub const MODE_IRREGULAR: u32 = 1 << 19;
/// Go `fs.ModeType`.
pub const MODE_TYPE: u32 = MODE_DIR
    | MODE_SYMLINK
    | MODE_NAMED_PIPE
    | MODE_SOCKET
    | MODE_DEVICE
    | MODE_CHAR_DEVICE
    | MODE_IRREGULAR;
pub const MODE_PERM: u32 = 0o777;

const S_IFMT: u32 = 0o170000;
const S_IFSOCK: u32 = 0o140000;
const S_IFLNK: u32 = 0o120000;
const S_IFREG: u32 = 0o100000;
const S_IFBLK: u32 = 0o060000;
const S_IFDIR: u32 = 0o040000;
const S_IFCHR: u32 = 0o020000;
const S_IFIFO: u32 = 0o010000;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// The `mode` restic stores for a Unix `st_mode`: Go's `os.Lstat` mapping of the file type and
/// special bits, masked with `ModePerm | ModeType | ModeSetuid | ModeSetgid | ModeSticky`.
/// An unknown file type gets no type bits, as in Go.
pub fn go_mode_from_unix(st_mode: u32) -> u32 {
    let mut mode = st_mode & MODE_PERM;
    mode |= match st_mode & S_IFMT {
        S_IFBLK => MODE_DEVICE,
        S_IFCHR => MODE_DEVICE | MODE_CHAR_DEVICE,
        S_IFDIR => MODE_DIR,
        S_IFIFO => MODE_NAMED_PIPE,
        S_IFLNK => MODE_SYMLINK,
        S_IFSOCK => MODE_SOCKET,
        S_IFREG => 0,
        _ => 0,
    };
    if st_mode & S_ISUID != 0 {
        mode |= MODE_SETUID;
    }
    if st_mode & S_ISGID != 0 {
        mode |= MODE_SETGID;
    }
    if st_mode & S_ISVTX != 0 {
        mode |= MODE_STICKY;
    }
    mode
}

/// The Unix permission bits (with setuid, setgid and sticky) of a stored Go mode, for `chmod`.
pub fn unix_mode_from_go(mode: u32) -> u32 {
    let mut m = mode & MODE_PERM;
    if mode & MODE_SETUID != 0 {
        m |= S_ISUID;
    }
    if mode & MODE_SETGID != 0 {
        m |= S_ISGID;
    }
    if mode & MODE_STICKY != 0 {
        m |= S_ISVTX;
    }
    m
}

/// The node `type` string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeType {
    File,
    Dir,
    Symlink,
    Dev,
    Chardev,
    Fifo,
    Socket,
    Irregular,
    /// Anything else, kept verbatim (including restic's invalid type `""`).
    Other(String),
}

impl NodeType {
    pub fn as_str(&self) -> &str {
        match self {
            NodeType::File => "file",
            NodeType::Dir => "dir",
            NodeType::Symlink => "symlink",
            NodeType::Dev => "dev",
            NodeType::Chardev => "chardev",
            NodeType::Fifo => "fifo",
            NodeType::Socket => "socket",
            NodeType::Irregular => "irregular",
            NodeType::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> NodeType {
        match s {
            "file" => NodeType::File,
            "dir" => NodeType::Dir,
            "symlink" => NodeType::Symlink,
            "dev" => NodeType::Dev,
            "chardev" => NodeType::Chardev,
            "fifo" => NodeType::Fifo,
            "socket" => NodeType::Socket,
            "irregular" => NodeType::Irregular,
            other => NodeType::Other(other.to_owned()),
        }
    }

    /// The type restic derives from a Go mode (`nodeTypeFromFileInfo`); `None` for type-bit
    /// combinations restic does not know.
    pub fn from_go_mode(mode: u32) -> Option<NodeType> {
        Some(match mode & MODE_TYPE {
            0 => NodeType::File,
            MODE_DIR => NodeType::Dir,
            MODE_SYMLINK => NodeType::Symlink,
            m if m == MODE_DEVICE | MODE_CHAR_DEVICE => NodeType::Chardev,
            MODE_DEVICE => NodeType::Dev,
            MODE_NAMED_PIPE => NodeType::Fifo,
            MODE_SOCKET => NodeType::Socket,
            MODE_IRREGULAR => NodeType::Irregular,
            _ => return None,
        })
    }
}

impl fmt::Display for NodeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedAttribute {
    pub name: String,
    pub value: Vec<u8>,
}

/// One directory entry, field for field restic's `Node`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Raw name bytes (already unquoted).
    pub name: Vec<u8>,
    pub node_type: NodeType,
    /// Go `fs.FileMode` bits, see [`go_mode_from_unix`].
    pub mode: u32,
    pub mtime: GoTime,
    pub atime: GoTime,
    pub ctime: GoTime,
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    pub inode: u64,
    pub device_id: u64,
    pub size: u64,
    pub links: u64,
    /// The symlink target as stored in `linktarget`. When the target is not UTF-8, this is
    /// its Go-lossy form and [`Node::linktarget_raw`] holds the bytes.
    pub linktarget: String,
    /// The exact target when it is not UTF-8 (restic >= 0.16). When set and non-empty, the
    /// encoder derives `linktarget` from it, as restic does. Use [`Node::set_link_target`].
    pub linktarget_raw: Option<Vec<u8>>,
    pub extended_attributes: Vec<ExtendedAttribute>,
    pub generic_attributes: BTreeMap<String, serde_json::Value>,
    pub device: u64,
    /// Data blob IDs for files (`Some(vec![])` for an empty file), `None` otherwise.
    pub content: Option<Vec<Id>>,
    pub subtree: Option<Id>,
    pub error: String,
}

impl Node {
    /// A node with every field empty and Go zero times.
    pub fn new(name: impl Into<Vec<u8>>, node_type: NodeType) -> Node {
        Node {
            name: name.into(),
            node_type,
            mode: 0,
            mtime: GoTime::zero(),
            atime: GoTime::zero(),
            ctime: GoTime::zero(),
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            inode: 0,
            device_id: 0,
            size: 0,
            links: 0,
            linktarget: String::new(),
            linktarget_raw: None,
            extended_attributes: Vec::new(),
            generic_attributes: BTreeMap::new(),
            device: 0,
            content: None,
            subtree: None,
            error: String::new(),
        }
    }

    pub fn name_str_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }

    /// The symlink target's bytes: `linktarget_raw` if present, else `linktarget`.
    pub fn link_target_bytes(&self) -> &[u8] {
        match &self.linktarget_raw {
            Some(raw) => raw,
            None => self.linktarget.as_bytes(),
        }
    }

    /// Sets the symlink target as current restic does: `linktarget` alone when it is UTF-8,
    /// otherwise the Go-lossy text plus `linktarget_raw`. (restic 0.14.0 wrote only the lossy
    /// text, losing the target.)
    pub fn set_link_target(&mut self, target: &[u8]) {
        match std::str::from_utf8(target) {
            Ok(s) => {
                self.linktarget = s.to_owned();
                self.linktarget_raw = None;
            }
            Err(_) => {
                self.linktarget = gojson::go_lossy_utf8(target).into_owned();
                self.linktarget_raw = Some(target.to_vec());
            }
        }
    }

    /// Appends this node's JSON object exactly as restic's `json.Marshal(node)` writes it.
    /// Times are year-clamped first, as restic's `MarshalJSON` does.
    pub fn encode_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"name\":");
        gojson::write_json_go_quoted(out, &self.name);
        out.extend_from_slice(b",\"type\":");
        gojson::write_json_string(out, self.node_type.as_str().as_bytes());
        push_uint_field(out, b",\"mode\":", self.mode as u64);
        for (key, t) in [
            (&b",\"mtime\":\""[..], &self.mtime),
            (b",\"atime\":\"", &self.atime),
            (b",\"ctime\":\"", &self.ctime),
        ] {
            out.extend_from_slice(key);
            t.append_rfc3339_clamped(out);
            out.push(b'"');
        }
        out.extend_from_slice(b",\"uid\":");
        push_u64(out, self.uid as u64);
        out.extend_from_slice(b",\"gid\":");
        push_u64(out, self.gid as u64);
        push_str_field(out, b",\"user\":", self.user.as_bytes());
        push_str_field(out, b",\"group\":", self.group.as_bytes());
        push_uint_field(out, b",\"inode\":", self.inode);
        push_uint_field(out, b",\"device_id\":", self.device_id);
        push_uint_field(out, b",\"size\":", self.size);
        push_uint_field(out, b",\"links\":", self.links);
        let raw = self.linktarget_raw.as_deref().filter(|r| !r.is_empty());
        match raw {
            // restic's LinkTarget holds the raw bytes; JSON turns invalid ones into \ufffd.
            Some(raw) => push_str_field(out, b",\"linktarget\":", raw),
            None => push_str_field(out, b",\"linktarget\":", self.linktarget.as_bytes()),
        }
        if let Some(raw) = raw {
            out.extend_from_slice(b",\"linktarget_raw\":\"");
            push_base64(out, raw);
            out.push(b'"');
        }
        if !self.extended_attributes.is_empty() {
            out.extend_from_slice(b",\"extended_attributes\":[");
            for (i, xa) in self.extended_attributes.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"name\":");
                gojson::write_json_string(out, xa.name.as_bytes());
                out.extend_from_slice(b",\"value\":\"");
                push_base64(out, &xa.value);
                out.extend_from_slice(b"\"}");
            }
            out.push(b']');
        }
        if !self.generic_attributes.is_empty() {
            out.extend_from_slice(b",\"generic_attributes\":{");
            for (i, (k, v)) in self.generic_attributes.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                gojson::write_json_string(out, k.as_bytes());
                out.push(b':');
                write_go_value(out, v);
            }
            out.push(b'}');
        }
        push_uint_field(out, b",\"device\":", self.device);
        out.extend_from_slice(b",\"content\":");
        match &self.content {
            None => out.extend_from_slice(b"null"),
            Some(ids) => {
                out.push(b'[');
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    push_id(out, id);
                }
                out.push(b']');
            }
        }
        if let Some(id) = &self.subtree {
            out.extend_from_slice(b",\"subtree\":");
            push_id(out, id);
        }
        push_str_field(out, b",\"error\":", self.error.as_bytes());
        out.push(b'}');
    }
}

/// A decoded tree blob. `nodes` must be sorted by name for [`Tree::encode`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("tree JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("node {index}: name {quoted:?} does not unquote: {source}")]
    Name {
        index: usize,
        quoted: String,
        source: UnquoteError,
    },
    #[error("node {index}: invalid base64 in {field}")]
    Base64 { index: usize, field: &'static str },
    #[error("nodes not strictly ascending by name at node {index} ({name:?})")]
    NotOrdered { index: usize, name: String },
}

impl Tree {
    pub fn new(nodes: Vec<Node>) -> Tree {
        Tree { nodes }
    }

    /// Sorts nodes bytewise by name, the order restic requires.
    pub fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// Checks that names are strictly ascending (so also unique), as restic's tree builder does.
    pub fn check_order(&self) -> Result<(), TreeError> {
        for (i, w) in self.nodes.windows(2).enumerate() {
            if w[0].name >= w[1].name {
                return Err(TreeError::NotOrdered {
                    index: i + 1,
                    name: w[1].name_str_lossy().into_owned(),
                });
            }
        }
        Ok(())
    }

    /// restic's exact tree blob bytes: `{"nodes":[` node `,` node ... `]}` and a newline.
    pub fn encode(&self) -> Result<Vec<u8>, TreeError> {
        self.check_order()?;
        let mut out = Vec::with_capacity(
            16 + self
                .nodes
                .iter()
                .map(|n| 320 + n.name.len() + 67 * n.content.as_ref().map_or(0, Vec::len))
                .sum::<usize>(),
        );
        out.extend_from_slice(b"{\"nodes\":[");
        for (i, n) in self.nodes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            n.encode_json(&mut out);
        }
        out.extend_from_slice(b"]}\n");
        Ok(out)
    }

    /// Parses a tree blob. Unknown keys are ignored, missing fields and JSON `null` take their
    /// zero values (as Go's decoder leaves them), names are Go-unquoted. Node order is not
    /// checked here; see [`Tree::check_order`].
    pub fn decode(data: &[u8]) -> Result<Tree, TreeError> {
        let MapOnly(raw): MapOnly<RawTree> = serde_json::from_slice(data)?;
        let raw = raw.nodes.unwrap_or_default();
        let mut nodes = Vec::with_capacity(raw.len());
        for (index, MapOnly(r)) in raw.into_iter().enumerate() {
            nodes.push(r.into_node(index)?);
        }
        Ok(Tree { nodes })
    }
}

/// Go's `encoding/base64.StdEncoding`: padded, and it does not insist that unused trailing
/// bits are zero.
const GO_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// An `omitempty` integer field.
fn push_uint_field(out: &mut Vec<u8>, key: &[u8], v: u64) {
    if v != 0 {
        out.extend_from_slice(key);
        push_u64(out, v);
    }
}

/// An `omitempty` string field.
fn push_str_field(out: &mut Vec<u8>, key: &[u8], s: &[u8]) {
    if !s.is_empty() {
        out.extend_from_slice(key);
        gojson::write_json_string(out, s);
    }
}

fn push_id(out: &mut Vec<u8>, id: &Id) {
    let mut buf = [b'"'; 66];
    for (i, &b) in id.0.iter().enumerate() {
        buf[1 + 2 * i] = HEX[(b >> 4) as usize];
        buf[2 + 2 * i] = HEX[(b & 0xf) as usize];
    }
    out.extend_from_slice(&buf);
}

fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    out.resize(start + data.len().div_ceil(3) * 4, 0);
    let n = GO_BASE64
        .encode_slice(data, &mut out[start..])
        .unwrap_or_default();
    out.truncate(start + n);
}

/// A generic attribute value as Go re-emits a `json.RawMessage`: compact, with Go's string
/// escaping.
fn write_go_value(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => gojson::write_json_string(out, s.as_bytes()),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_go_value(out, x);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                gojson::write_json_string(out, k.as_bytes());
                out.push(b':');
                write_go_value(out, x);
            }
            out.push(b'}');
        }
    }
}

/// Go leaves a field untouched for JSON `null`; here that means its default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Accepts only a JSON object: derived struct deserializers also take arrays (fields by
/// position), which Go rejects.
struct MapOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(PhantomData)).map(MapOnly)
    }
}

#[derive(Deserialize)]
struct RawTree<'a> {
    #[serde(default, borrow)]
    nodes: Option<Vec<MapOnly<RawNode<'a>>>>,
}

#[derive(Deserialize)]
struct RawXattr<'a> {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, borrow)]
    value: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawNode<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    node_type: String,
    #[serde(default, deserialize_with = "nullable")]
    mode: u32,
    #[serde(default)]
    mtime: GoTime,
    #[serde(default)]
    atime: GoTime,
    #[serde(default)]
    ctime: GoTime,
    #[serde(default, deserialize_with = "nullable")]
    uid: u32,
    #[serde(default, deserialize_with = "nullable")]
    gid: u32,
    #[serde(default, deserialize_with = "nullable")]
    user: String,
    #[serde(default, deserialize_with = "nullable")]
    group: String,
    #[serde(default, deserialize_with = "nullable")]
    inode: u64,
    #[serde(default, deserialize_with = "nullable")]
    device_id: u64,
    #[serde(default, deserialize_with = "nullable")]
    size: u64,
    #[serde(default, deserialize_with = "nullable")]
    links: u64,
    #[serde(default, deserialize_with = "nullable")]
    linktarget: String,
    #[serde(default, borrow)]
    linktarget_raw: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    extended_attributes: Option<Vec<MapOnly<RawXattr<'a>>>>,
    #[serde(default, deserialize_with = "nullable")]
    generic_attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "nullable")]
    device: u64,
    #[serde(default)]
    content: Option<Vec<Id>>,
    #[serde(default)]
    subtree: Option<Id>,
    #[serde(default, deserialize_with = "nullable")]
    error: String,
}

impl RawNode<'_> {
    fn into_node(self, index: usize) -> Result<Node, TreeError> {
        let quoted = self.name.unwrap_or_default();
        let name = gojson::go_unquote(&quoted).map_err(|source| TreeError::Name {
            index,
            quoted: quoted.chars().take(256).collect(),
            source,
        })?;
        let b64 = |s: &str, field| {
            GO_BASE64
                .decode(s)
                .map_err(|_| TreeError::Base64 { index, field })
        };
        let linktarget_raw = match self.linktarget_raw {
            Some(s) => Some(b64(&s, "linktarget_raw")?),
            None => None,
        };
        let mut extended_attributes = Vec::new();
        for MapOnly(xa) in self.extended_attributes.unwrap_or_default() {
            let value = match xa.value {
                Some(v) => b64(&v, "extended_attributes")?,
                None => Vec::new(),
            };
            extended_attributes.push(ExtendedAttribute {
                name: xa.name,
                value,
            });
        }
        Ok(Node {
            name,
            node_type: NodeType::parse(&self.node_type),
            mode: self.mode,
            mtime: self.mtime,
            atime: self.atime,
            ctime: self.ctime,
            uid: self.uid,
            gid: self.gid,
            user: self.user,
            group: self.group,
            inode: self.inode,
            device_id: self.device_id,
            size: self.size,
            links: self.links,
            linktarget: self.linktarget,
            // restic treats an empty linktarget_raw as absent.
            linktarget_raw: linktarget_raw.filter(|r| !r.is_empty()),
            extended_attributes,
            generic_attributes: self.generic_attributes,
            device: self.device,
            content: self.content,
            subtree: self.subtree,
            error: self.error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_modes() {
        let cases = [
            (S_IFREG | 0o644, 420),
            (S_IFDIR | 0o755, 2147484141),
            (S_IFLNK | 0o777, 134218239),
            (S_IFBLK | 0o660, 67109296),
            (S_IFCHR | 0o620, 69206416),
            (S_IFIFO | 0o644, 33554852),
            (S_IFSOCK | 0o755, 16777709),
            (S_IFREG | S_ISUID | 0o755, 8389101),
            (S_IFREG | S_ISGID | 0o755, 4194797),
            (S_IFDIR | S_ISVTX | 0o777, 2148532735),
        ];
        for (st, go) in cases {
            assert_eq!(go_mode_from_unix(st), go, "st_mode {st:o}");
            assert_eq!(unix_mode_from_go(go), st & 0o7777, "go mode {go}");
        }
        assert_eq!(NodeType::from_go_mode(2147484141), Some(NodeType::Dir));
        assert_eq!(NodeType::from_go_mode(69206416), Some(NodeType::Chardev));
        assert_eq!(NodeType::from_go_mode(67109296), Some(NodeType::Dev));
        assert_eq!(NodeType::from_go_mode(420), Some(NodeType::File));
        assert_eq!(NodeType::from_go_mode(MODE_DIR | MODE_SYMLINK), None);
    }

    #[test]
    fn node_types() {
        for t in [
            "file",
            "dir",
            "symlink",
            "dev",
            "chardev",
            "fifo",
            "socket",
            "irregular",
            "",
            "door",
        ] {
            assert_eq!(NodeType::parse(t).as_str(), t);
        }
        assert_eq!(NodeType::parse(""), NodeType::Other(String::new()));
    }

    #[test]
    fn empty_tree() {
        assert_eq!(Tree::default().encode().unwrap(), b"{\"nodes\":[]}\n");
        assert_eq!(Tree::decode(b"{\"nodes\":[]}\n").unwrap(), Tree::default());
        assert_eq!(Tree::decode(b"{}").unwrap(), Tree::default());
        assert_eq!(Tree::decode(b"{\"nodes\":null}").unwrap(), Tree::default());
    }

    #[test]
    fn order_enforced() {
        let mut t = Tree::new(vec![
            Node::new("b", NodeType::File),
            Node::new("a", NodeType::File),
        ]);
        assert!(matches!(
            t.encode(),
            Err(TreeError::NotOrdered { index: 1, .. })
        ));
        t.sort();
        assert!(t.encode().is_ok());
        t.nodes.push(Node::new("b", NodeType::Dir));
        assert!(matches!(
            t.encode(),
            Err(TreeError::NotOrdered { index: 2, .. })
        ));
        // Bytewise, not by Unicode or locale: 'Z' < 'a' < 0xff.
        let t = Tree::new(vec![
            Node::new("Z", NodeType::File),
            Node::new("a", NodeType::File),
            Node::new(b"\xff".to_vec(), NodeType::File),
        ]);
        assert!(t.encode().is_ok());
    }

    #[test]
    fn set_link_target_variants() {
        let mut n = Node::new("l", NodeType::Symlink);
        n.set_link_target(b"../ok");
        assert_eq!(n.linktarget, "../ok");
        assert_eq!(n.linktarget_raw, None);
        n.set_link_target(b"../i/\xe4\xf6\xfcd");
        assert_eq!(n.linktarget, "../i/\u{fffd}\u{fffd}\u{fffd}d");
        assert_eq!(n.link_target_bytes(), b"../i/\xe4\xf6\xfcd");
        let mut out = Vec::new();
        n.encode_json(&mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains(r#","linktarget":"../i/\ufffd\ufffd\ufffdd","linktarget_raw":"Li4vaS/k9vxk","content":null"#),
            "{s}"
        );
    }
}
