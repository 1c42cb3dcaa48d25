//! 32-byte IDs: SHA-256 of blob plaintext or of a stored file's bytes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub [u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid ID {0:?}: want 64 hex characters")]
pub struct ParseIdError(pub String);

impl Id {
    /// SHA-256 of `data`.
    pub fn hash(data: &[u8]) -> Id {
        Id(Sha256::digest(data).into())
    }

    pub fn random() -> Id {
        let mut b = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        Id(b)
    }

    pub fn is_null(&self) -> bool {
        self.0 == [0; 32]
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// restic's short form: the first 4 bytes as 8 hex characters.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for Id {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Id, ParseIdError> {
        let mut b = [0u8; 32];
        if s.len() != 64 || hex::decode_to_slice(s, &mut b).is_err() {
            return Err(ParseIdError(s.chars().take(80).collect()));
        }
        Ok(Id(b))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        let id = Id::hash(b"hello");
        assert_eq!(
            id.to_hex(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(id.to_hex().parse::<Id>().unwrap(), id);
        assert_eq!(id.short(), "2cf24dba");
        assert!("abc".parse::<Id>().is_err());
        assert!("zz".repeat(32).parse::<Id>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<Id>(&json).unwrap(), id);
    }
}
