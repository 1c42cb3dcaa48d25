//! The repository config: version, random ID and chunker polynomial.
//! Stored encrypted under the master key and never compressed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub version: u32,
    pub id: String,
    #[serde(serialize_with = "ser_pol", deserialize_with = "de_pol")]
    pub chunker_polynomial: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config is not valid JSON: {0}")]
    Json(String),
    #[error("unsupported repository version {0} (supported: 1 and 2)")]
    UnsupportedVersion(u32),
    #[error("config has an empty repository ID")]
    EmptyId,
}

// restic writes the polynomial as lowercase hex without a prefix or leading zeros.
fn ser_pol<S: Serializer>(p: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{p:x}"))
}

fn de_pol<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    u64::from_str_radix(&s, 16)
        .map_err(|_| serde::de::Error::custom(format!("invalid chunker polynomial {s:?}")))
}

impl Config {
    pub fn new(version: u32, chunker_polynomial: u64) -> Config {
        Config {
            version,
            id: crate::Id::random().to_hex(),
            chunker_polynomial,
        }
    }

    /// Parse and check the version. The caller checks the polynomial's irreducibility.
    pub fn parse(b: &[u8]) -> Result<Config, ConfigError> {
        let c: Config = serde_json::from_slice(b).map_err(|e| ConfigError::Json(e.to_string()))?;
        if !(crate::MIN_REPO_VERSION..=crate::MAX_REPO_VERSION).contains(&c.version) {
            return Err(ConfigError::UnsupportedVersion(c.version));
        }
        if c.id.is_empty() {
            return Err(ConfigError::EmptyId);
        }
        Ok(c)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain struct serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_config_round_trip() {
        let raw = br#"{"version":2,"id":"434201af1f9fa185aba2ca00659fd8e6f88021b6929e12551ee3adce6df4f89c","chunker_polynomial":"32967ee8d59753"}"#;
        let c = Config::parse(raw).unwrap();
        assert_eq!(c.chunker_polynomial, 0x32967ee8d59753);
        assert_eq!(c.to_json(), raw.to_vec());
        let v3 = br#"{"version":3,"id":"x","chunker_polynomial":"1"}"#;
        assert!(matches!(
            Config::parse(v3),
            Err(ConfigError::UnsupportedVersion(3))
        ));
    }
}
