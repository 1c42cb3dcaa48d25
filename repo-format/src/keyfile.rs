//! Key files (`keys/<id>`): plain JSON holding scrypt parameters and the master key
//! encrypted under the key derived from a password.

use crate::crypto::{CryptoError, Key};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// restic's KDF rejects any other salt length.
pub const SALT_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("wrong password or no key found")]
    WrongPassword,
    #[error("key file is not valid JSON: {0}")]
    Json(String),
    #[error("key file uses unsupported KDF {0:?}")]
    UnsupportedKdf(String),
    #[error("key file has invalid scrypt parameters N={n}, r={r}, p={p}")]
    BadParams { n: u64, r: u32, p: u32 },
    #[error(
        "key file asks for scrypt work N={n}, r={r}, p={p}, beyond anything restic writes \
         (N·r·p at most 2^24, 128·N·r at most 256 MiB): not tried"
    )]
    TooCostly { n: u64, r: u32, p: u32 },
    #[error("key file salt is {0} bytes, want 64")]
    BadSalt(usize),
    #[error("key file field {0} is not valid base64")]
    Base64(&'static str),
    #[error("key file data is corrupted: {0}")]
    Corrupt(String),
}

/// The most memory (128·N·r bytes) a key file's scrypt may ask for: 8 times restic's most.
pub const MAX_SCRYPT_MEMORY: u128 = 256 << 20;
/// The most work (N·r·p) a key file's scrypt may ask for: restic's N and r with p up to 64.
pub const MAX_SCRYPT_WORK: u128 = 1 << 24;

/// scrypt parameters as restic stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub n: u64,
    pub r: u32,
    pub p: u32,
}

impl KdfParams {
    /// What restic's calibration settles on for N and r; p=1 keeps opening fast.
    pub const DEFAULT: KdfParams = KdfParams {
        n: 32768,
        r: 8,
        p: 1,
    };

    /// Check the parameters as Go's x/crypto/scrypt does (N a power of two above 1,
    /// r·p < 2^30), and bound memory and work so a hostile key file can neither make us
    /// allocate without limit nor stall every open.
    fn check(self) -> Result<(), KeyError> {
        let bad = KeyError::BadParams {
            n: self.n,
            r: self.r,
            p: self.p,
        };
        if self.n < 2 || !self.n.is_power_of_two() || self.r == 0 || self.p == 0 {
            return Err(bad);
        }
        if self.r as u64 * self.p as u64 >= 1 << 30 {
            return Err(bad);
        }
        // restic calibrates r=8 and N for at most 60 MiB (N ≤ 2^15), then raises p until
        // half a second passes. Anything far beyond that is a key file made to stall every
        // open (or to exhaust memory), which restic would take minutes over.
        let mem = 128u128 * self.r as u128 * self.n as u128;
        let work = self.n as u128 * self.r as u128 * self.p as u128;
        if mem > MAX_SCRYPT_MEMORY || work > MAX_SCRYPT_WORK {
            return Err(KeyError::TooCostly {
                n: self.n,
                r: self.r,
                p: self.p,
            });
        }
        Ok(())
    }

    /// Derive the user key from a password.
    pub fn derive(self, password: &[u8], salt: &[u8]) -> Result<Key, KeyError> {
        self.check()?;
        let log_n = self.n.trailing_zeros() as u8;
        let mut out = [0u8; 64];
        match scrypt::Params::new(log_n, self.r, self.p, 64) {
            Ok(params) => scrypt::scrypt(password, salt, &params, &mut out)
                .map_err(|e| KeyError::Corrupt(e.to_string()))?,
            // The scrypt crate also enforces RFC 7914's N < 2^(16·r), an erratum (EID
            // 5971) that Go (and so restic) does not apply: compute those keys here.
            Err(_) => go_scrypt(
                password,
                salt,
                self.n as usize,
                self.r as usize,
                self.p as usize,
                &mut out,
            ),
        }
        Ok(Key::from_kdf_output(&out))
    }
}

/// scrypt exactly as the scrypt crate computes it, without its RFC 7914 bound on N.
/// Only reached for parameters [`KdfParams::check`] accepted.
fn go_scrypt(password: &[u8], salt: &[u8], n: usize, r: usize, p: usize, out: &mut [u8]) {
    use pbkdf2::pbkdf2_hmac;
    use salsa20::cipher::{typenum::U4, StreamCipherCore};
    type Salsa20_8 = salsa20::SalsaCore<U4>;

    fn block_mix(input: &[u8], output: &mut [u8]) {
        let mut x = [0u8; 64];
        x.copy_from_slice(&input[input.len() - 64..]);
        for (i, chunk) in input.chunks(64).enumerate() {
            let mut state = [0u32; 16];
            for (k, w) in state.iter_mut().enumerate() {
                let at = 4 * k;
                let a = u32::from_le_bytes(x[at..at + 4].try_into().expect("4 bytes"));
                let b = u32::from_le_bytes(chunk[at..at + 4].try_into().expect("4 bytes"));
                *w = a ^ b;
            }
            Salsa20_8::from_raw_state(state).write_keystream_block((&mut x).into());
            let pos = (i / 2) * 64 + if i % 2 == 0 { 0 } else { input.len() / 2 };
            output[pos..pos + 64].copy_from_slice(&x);
        }
    }

    let r128 = 128 * r;
    let mut b = vec![0u8; p * r128];
    pbkdf2_hmac::<sha2::Sha256>(password, salt, 1, &mut b);
    let mut v = vec![0u8; n * r128];
    let mut t = vec![0u8; r128];
    for chunk in b.chunks_mut(r128) {
        for vi in v.chunks_mut(r128) {
            vi.copy_from_slice(chunk);
            block_mix(vi, chunk);
        }
        for _ in 0..n {
            let at = r128 - 64;
            let j = u32::from_le_bytes(chunk[at..at + 4].try_into().expect("4 bytes")) as usize
                & (n - 1);
            for ((ti, ci), vi) in t
                .iter_mut()
                .zip(chunk.iter())
                .zip(&v[j * r128..(j + 1) * r128])
            {
                *ti = ci ^ vi;
            }
            block_mix(&t, chunk);
        }
    }
    pbkdf2_hmac::<sha2::Sha256>(password, &b, 1, out);
}

/// The key file JSON, fields in restic's order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    pub kdf: String,
    #[serde(rename = "N")]
    pub n: u64,
    pub r: u32,
    pub p: u32,
    pub salt: String,
    pub data: String,
}

#[derive(Serialize, Deserialize)]
struct MacJson {
    k: String,
    r: String,
}

/// The master key as restic marshals it inside `data`.
#[derive(Serialize, Deserialize)]
struct MasterKeyJson {
    mac: MacJson,
    encrypt: String,
}

fn b64_array<const N: usize>(s: &str, field: &'static str) -> Result<[u8; N], KeyError> {
    let v = B64.decode(s).map_err(|_| KeyError::Base64(field))?;
    v.try_into()
        .map_err(|v: Vec<u8>| KeyError::Corrupt(format!("{field} is {} bytes, want {N}", v.len())))
}

/// Marshal a master key the way restic does (compact JSON, standard base64).
pub fn master_key_json(key: &Key) -> Vec<u8> {
    serde_json::to_vec(&MasterKeyJson {
        mac: MacJson {
            k: B64.encode(key.mac_k),
            r: B64.encode(key.mac_r),
        },
        encrypt: B64.encode(key.encrypt),
    })
    .expect("plain struct serialises")
}

pub fn parse_master_key_json(b: &[u8]) -> Result<Key, KeyError> {
    let m: MasterKeyJson =
        serde_json::from_slice(b).map_err(|e| KeyError::Corrupt(format!("master key: {e}")))?;
    let key = Key {
        encrypt: b64_array(&m.encrypt, "encrypt")?,
        mac_k: b64_array(&m.mac.k, "mac.k")?,
        mac_r: b64_array(&m.mac.r, "mac.r")?,
    };
    if !key.is_valid() {
        return Err(KeyError::Corrupt("master key has an all-zero part".into()));
    }
    Ok(key)
}

impl KeyFile {
    pub fn parse(bytes: &[u8]) -> Result<KeyFile, KeyError> {
        serde_json::from_slice(bytes).map_err(|e| KeyError::Json(e.to_string()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain struct serialises")
    }

    pub fn params(&self) -> KdfParams {
        KdfParams {
            n: self.n,
            r: self.r,
            p: self.p,
        }
    }

    /// Check everything that does not need the password, so a damaged key file is
    /// reported as damaged rather than as a wrong password.
    pub fn validate(&self) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
        if self.kdf != "scrypt" {
            return Err(KeyError::UnsupportedKdf(self.kdf.clone()));
        }
        let salt = B64
            .decode(&self.salt)
            .map_err(|_| KeyError::Base64("salt"))?;
        if salt.len() != SALT_LEN {
            return Err(KeyError::BadSalt(salt.len()));
        }
        let data = B64
            .decode(&self.data)
            .map_err(|_| KeyError::Base64("data"))?;
        if data.len() < crate::crypto::OVERHEAD {
            return Err(KeyError::Corrupt(format!(
                "data is only {} bytes",
                data.len()
            )));
        }
        self.params().check()?;
        Ok((salt, data))
    }

    /// Open with a password, returning the master key.
    pub fn open(&self, password: &[u8]) -> Result<Key, KeyError> {
        let (salt, data) = self.validate()?;
        let user = self.params().derive(password, &salt)?;
        self.open_with_user_key(&user, &data)
    }

    fn open_with_user_key(&self, user: &Key, data: &[u8]) -> Result<Key, KeyError> {
        let plain = user.open(data).map_err(|e| match e {
            CryptoError::Unauthenticated => KeyError::WrongPassword,
            other => KeyError::Corrupt(other.to_string()),
        })?;
        parse_master_key_json(&plain)
    }

    /// Wrap `master` under a new password.
    pub fn create(
        master: &Key,
        password: &[u8],
        params: KdfParams,
        username: &str,
        hostname: &str,
        created: Option<String>,
    ) -> Result<KeyFile, KeyError> {
        let mut salt = [0u8; SALT_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
        let user = params.derive(password, &salt)?;
        let data = user.seal(&master_key_json(master));
        Ok(KeyFile {
            created,
            username: username.to_string(),
            hostname: hostname.to_string(),
            kdf: "scrypt".into(),
            n: params.n,
            r: params.r,
            p: params.p,
            salt: B64.encode(salt),
            data: B64.encode(data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_key_round_trip() {
        let master = Key::random();
        let params = KdfParams {
            n: 1024,
            r: 8,
            p: 1,
        };
        let kf = KeyFile::create(&master, b"pw", params, "u", "h", None).unwrap();
        let parsed = KeyFile::parse(&kf.to_json()).unwrap();
        assert_eq!(parsed.open(b"pw").unwrap(), master);
        assert!(matches!(parsed.open(b"nope"), Err(KeyError::WrongPassword)));
        assert_eq!(B64.decode(&kf.data).unwrap().len(), 160);
    }

    #[test]
    fn go_scrypt_matches_the_scrypt_crate_and_rfc_7914() {
        for (n, r, p) in [
            (16usize, 1usize, 1usize),
            (1024, 8, 2),
            (64, 2, 3),
            (2, 1, 1),
        ] {
            let params =
                scrypt::Params::new(n.trailing_zeros() as u8, r as u32, p as u32, 64).unwrap();
            let (mut want, mut got) = ([0u8; 64], [0u8; 64]);
            scrypt::scrypt(b"password", b"NaCl", &params, &mut want).unwrap();
            go_scrypt(b"password", b"NaCl", n, r, p, &mut got);
            assert_eq!(got, want, "N={n} r={r} p={p}");
        }
        // RFC 7914 §12, second vector.
        let mut out = [0u8; 64];
        go_scrypt(b"password", b"NaCl", 1024, 8, 16, &mut out);
        assert_eq!(
            hex::encode(out),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        );
    }

    #[test]
    fn go_accepted_params_beyond_rfc_7914_work() {
        // N = 2^17 with r = 1 is past RFC 7914's N < 2^(16r); Go and restic accept it.
        let params = KdfParams {
            n: 1 << 17,
            r: 1,
            p: 1,
        };
        let master = Key::random();
        let kf = KeyFile::create(&master, b"pw", params, "", "", None).unwrap();
        assert_eq!(kf.open(b"pw").unwrap(), master);
        assert!(matches!(kf.open(b"other"), Err(KeyError::WrongPassword)));
    }

    #[test]
    fn hostile_params_are_rejected_without_allocating() {
        let mut kf = KeyFile::create(
            &Key::random(),
            b"pw",
            KdfParams { n: 16, r: 1, p: 1 },
            "",
            "",
            None,
        )
        .unwrap();
        kf.n = 1 << 40;
        assert!(matches!(kf.open(b"pw"), Err(KeyError::TooCostly { .. })));
        kf.n = 3;
        assert!(matches!(kf.open(b"pw"), Err(KeyError::BadParams { .. })));
        kf.n = 16;
        kf.p = 1 << 30;
        assert!(matches!(kf.open(b"pw"), Err(KeyError::BadParams { .. })));
        kf.p = (1 << 29) - 1;
        assert!(matches!(kf.open(b"pw"), Err(KeyError::TooCostly { .. })));
        // Cheap in memory, minutes of work on every open (restic takes them too): refused
        // at once, with the parameters named.
        (kf.n, kf.r, kf.p) = (1 << 16, 1, 1 << 20);
        let err = kf.open(b"pw").unwrap_err();
        assert!(matches!(err, KeyError::TooCostly { .. }), "{err}");
        assert!(err.to_string().contains("N=65536, r=1, p=1048576"), "{err}");
    }

    #[test]
    fn everything_restic_calibrates_is_accepted() {
        // r=8, N up to 2^15 (60 MiB), p raised until half a second: generous headroom.
        for p in [1, 2, 16, 64] {
            let params = KdfParams {
                n: 1 << 15,
                r: 8,
                p,
            };
            assert!(params.check().is_ok(), "{params:?}");
        }
        for n in [1 << 10, 1 << 14, 1 << 17] {
            assert!(KdfParams { n, r: 8, p: 1 }.check().is_ok(), "N={n}");
        }
    }
}
