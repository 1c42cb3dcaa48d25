//! restic's authenticated encryption: AES-256-CTR with a full 128-bit big-endian
//! counter, and Poly1305-AES over the ciphertext only. Layout: `IV(16) || CT || MAC(16)`.

use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use aes::{Aes128, Aes256};
use poly1305::Poly1305;
use rand::RngCore;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

pub const IV_SIZE: usize = 16;
pub const MAC_SIZE: usize = 16;
/// Bytes an encrypted object is longer than its plaintext.
pub const OVERHEAD: usize = IV_SIZE + MAC_SIZE;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("ciphertext verification failed (wrong key or corrupted data)")]
    Unauthenticated,
    #[error("encrypted data too short ({0} bytes, need at least 32)")]
    TooShort(usize),
    #[error("invalid all-zero IV")]
    ZeroIv,
}

/// A master or user key: 32 bytes for AES-256 and the two halves of the MAC key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub encrypt: [u8; 32],
    pub mac_k: [u8; 16],
    pub mac_r: [u8; 16],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn random() -> Key {
        let mut k = Key {
            encrypt: [0; 32],
            mac_k: [0; 16],
            mac_r: [0; 16],
        };
        let mut rng = rand::rngs::OsRng;
        rng.fill_bytes(&mut k.encrypt);
        rng.fill_bytes(&mut k.mac_k);
        rng.fill_bytes(&mut k.mac_r);
        k
    }

    /// Split 64 bytes of KDF output: encrypt(32) || K(16) || R(16).
    pub fn from_kdf_output(b: &[u8; 64]) -> Key {
        let mut k = Key {
            encrypt: [0; 32],
            mac_k: [0; 16],
            mac_r: [0; 16],
        };
        k.encrypt.copy_from_slice(&b[..32]);
        k.mac_k.copy_from_slice(&b[32..48]);
        k.mac_r.copy_from_slice(&b[48..]);
        k
    }

    /// restic treats a key with any all-zero part as invalid.
    pub fn is_valid(&self) -> bool {
        self.encrypt != [0; 32] && self.mac_k != [0; 16] && self.mac_r != [0; 16]
    }

    /// Poly1305-AES: s = AES128_K(nonce), tag = Poly1305(R || s) over `msg`.
    pub fn mac(&self, nonce: &[u8; 16], msg: &[u8]) -> [u8; 16] {
        let aes = Aes128::new(&self.mac_k.into());
        let mut s = (*nonce).into();
        aes.encrypt_block(&mut s);
        let mut otk = [0u8; 32];
        otk[..16].copy_from_slice(&self.mac_r);
        otk[16..].copy_from_slice(&s);
        // The poly1305 crate clamps r itself; restic stores R unclamped.
        Poly1305::new(&otk.into()).compute_unpadded(msg).into()
    }

    /// Encrypt with a fresh random IV.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut iv = [0u8; 16];
        loop {
            rand::rngs::OsRng.fill_bytes(&mut iv);
            if iv != [0; 16] {
                break;
            }
        }
        self.seal_with_iv(&iv, plaintext)
    }

    pub fn seal_with_iv(&self, iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        self.seal_with_iv_append(iv, plaintext, &mut out);
        out
    }

    /// [`seal`](Self::seal), appending the sealed bytes to `out` (a pack being built).
    pub fn seal_append(&self, plaintext: &[u8], out: &mut Vec<u8>) {
        let mut iv = [0u8; 16];
        loop {
            rand::rngs::OsRng.fill_bytes(&mut iv);
            if iv != [0; 16] {
                break;
            }
        }
        self.seal_with_iv_append(&iv, plaintext, out)
    }

    fn seal_with_iv_append(&self, iv: &[u8; 16], plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(plaintext.len() + OVERHEAD);
        out.extend_from_slice(iv);
        out.extend_from_slice(plaintext);
        let mut c = Aes256Ctr::new(&self.encrypt.into(), &(*iv).into());
        c.apply_keystream(&mut out[start + IV_SIZE..]);
        let tag = self.mac(iv, &out[start + IV_SIZE..]);
        out.extend_from_slice(&tag);
    }

    /// Verify the MAC, then decrypt, appending the plaintext to a caller's buffer (to reuse
    /// its memory, and to let the caller choose where the plaintext lands).
    pub fn open_append(&self, data: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        if data.len() < OVERHEAD {
            return Err(CryptoError::TooShort(data.len()));
        }
        let (iv, rest) = data.split_at(IV_SIZE);
        let iv: [u8; 16] = iv.try_into().expect("16 bytes");
        if iv == [0; 16] {
            return Err(CryptoError::ZeroIv);
        }
        let (ct, tag) = rest.split_at(rest.len() - MAC_SIZE);
        if !constant_time_eq(&self.mac(&iv, ct), tag) {
            return Err(CryptoError::Unauthenticated);
        }
        let start = out.len();
        out.extend_from_slice(ct);
        let mut c = Aes256Ctr::new(&self.encrypt.into(), &iv.into());
        c.apply_keystream(&mut out[start..]);
        Ok(())
    }

    /// Verify the MAC, then decrypt.
    pub fn open(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut v = data.to_vec();
        let n = self.open_in_place(&mut v)?.len();
        v.truncate(IV_SIZE + n);
        v.drain(..IV_SIZE);
        Ok(v)
    }

    /// Verify and decrypt in place; returns the plaintext, a sub-slice of `data`.
    pub fn open_in_place<'a>(&self, data: &'a mut [u8]) -> Result<&'a mut [u8], CryptoError> {
        if data.len() < OVERHEAD {
            return Err(CryptoError::TooShort(data.len()));
        }
        let (iv, rest) = data.split_at_mut(IV_SIZE);
        let iv: [u8; 16] = (&*iv).try_into().expect("16 bytes");
        if iv == [0; 16] {
            return Err(CryptoError::ZeroIv);
        }
        let ct_len = rest.len() - MAC_SIZE;
        let (ct, tag) = rest.split_at_mut(ct_len);
        let want = self.mac(&iv, ct);
        if !constant_time_eq(&want, tag) {
            return Err(CryptoError::Unauthenticated);
        }
        let mut c = Aes256Ctr::new(&self.encrypt.into(), &iv.into());
        c.apply_keystream(ct);
        Ok(ct)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    // Poly1305-AES vectors from restic's crypto_int_test.go (Bernstein's paper).
    #[test]
    fn poly1305_aes_vectors() {
        let cases = [
            ("f3f6", "851fc40c3467ac0be05cc20404f3f700", "ec074c835580741701425b623235add6", "fb447350c4e868c52ac3275cf9d4327e", "f4c633c3044fc145f84f335cb81953de"),
            ("", "a0f3080000f46400d0c7e9076c834403", "75deaa25c09f208e1dc4ce6b5cad3fbf", "61ee09218d29b0aaed7e154a2c5509cc", "dd3fab2251f11ac759f0887129cc2ee7"),
            ("663cea190ffb83d89593f3f476b6bc24d7e679107ea26adb8caf6652d0656136", "48443d0bb0d21109c89a100b5ce2c208", "6acb5f61a7176dd320c5c1eb2edcdc74", "ae212a55399729595dea458bc621ff0e", "0ee1c16bb73f0f4fd19881753c01cdbe"),
            ("ab0812724a7f1e342742cbed374d94d136c6b8795d45b3819830f2c04491faf0990c62e48b8018b2c3e4a0fa3134cb67fa83e158c994d961c4cb21095c1bf9", "12976a08c4426d0ce8a82407c4f48207", "e1a5668a4d5b66a5f68cc5424ed5982d", "9ae831e743978d3a23527c7128149e3a", "5154ad0d2cb26e01274fc51148491f1b"),
        ];
        for (msg, r, k, nonce, mac) in cases {
            let key = Key {
                encrypt: [1; 32],
                mac_k: h(k),
                mac_r: h(r),
            };
            assert_eq!(
                hex::encode(key.mac(&h(nonce), &hex::decode(msg).unwrap())),
                mac
            );
        }
    }

    #[test]
    fn seal_open_vector() {
        let key = Key {
            encrypt: h("303e8687b1d7db18421bdc6bb8588ccadac4d59ee87b8ff70c44e635790cafef"),
            mac_k: h("ef4d8824cb80b2bcc5fbff8a9b12a42c"),
            mac_r: h("cc8d4b948ee0ebfe1d415de921d10353"),
        };
        let stored = hex::decode(
            "69fb41c62d12def4593bd71757138606338f621aeaeb39da0fe4f99233f8037a54ea63338a813bcf3f75d8c3cc75dddf8750",
        )
        .unwrap();
        assert_eq!(key.open(&stored).unwrap(), b"Dies ist ein Test!");
        assert_eq!(
            key.seal_with_iv(
                &h("69fb41c62d12def4593bd71757138606"),
                b"Dies ist ein Test!"
            ),
            stored
        );
        let mut bad = stored.clone();
        bad[20] ^= 1;
        assert_eq!(key.open(&bad), Err(CryptoError::Unauthenticated));
        assert_eq!(key.open(&stored[..10]), Err(CryptoError::TooShort(10)));
    }

    #[test]
    fn round_trip_many_lengths_and_counter_carry() {
        let key = Key::random();
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 1000, 70000] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let ct = key.seal(&pt);
            assert_eq!(ct.len(), len + OVERHEAD);
            assert_eq!(key.open(&ct).unwrap(), pt);
        }
        // An IV whose low 64 bits overflow must carry into the high half (128-bit counter).
        let iv = h("00000000000000ffffffffffffffffff");
        let pt = vec![0u8; 64];
        let ct = key.seal_with_iv(&iv, &pt);
        let mut expect = Vec::new();
        let aes = Aes256::new(&key.encrypt.into());
        for ctr in [
            "00000000000000ffffffffffffffffff",
            "00000000000001000000000000000000",
            "00000000000001000000000000000001",
            "00000000000001000000000000000002",
        ] {
            let mut b: aes::Block = h::<16>(ctr).into();
            aes.encrypt_block(&mut b);
            expect.extend_from_slice(&b);
        }
        assert_eq!(&ct[16..80], &expect[..]);
    }
}
