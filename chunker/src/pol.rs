//! Polynomials over GF(2), as restic's `chunker.Pol` (`polynomials.go`).
//!
//! Only the parts needed to pick and check a chunker polynomial: arithmetic, Ben-Or's
//! irreducibility test and `DerivePolynomial`.

use std::fmt;
use std::io::{self, Read};
use std::ops::{Add, Div, Mul, Rem};

use rand::RngCore;

/// Errors of polynomial selection.
#[derive(Debug, thiserror::Error)]
pub enum ChunkerError {
    /// The byte source failed or ended early.
    #[error("reading polynomial candidates: {0}")]
    Io(#[from] io::Error),
    /// No irreducible polynomial among [`DERIVE_MAX_TRIES`] candidates.
    #[error("no irreducible polynomial found in {DERIVE_MAX_TRIES} tries")]
    NoIrreducible,
}

/// How many candidates [`Pol::derive`] tries before giving up (restic's `randPolMaxTries`).
pub const DERIVE_MAX_TRIES: usize = 1_000_000;

/// A polynomial over GF(2) of degree < 64: bit `i` is the coefficient of `x^i`.
///
/// `+` is XOR, `*` the carry-less product (panics on overflow past degree 63, like restic's
/// `Mul`), `/` and `%` polynomial division (panic on a zero divisor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pol(pub u64);

impl Pol {
    /// The degree, or -1 for the zero polynomial.
    pub fn deg(self) -> i32 {
        63 - self.0.leading_zeros() as i32
    }

    /// `self * y`, or `None` if the product has degree 64 or more.
    pub fn checked_mul(self, y: Pol) -> Option<Pol> {
        let (a, b) = (self.0 as u128, y.0);
        let mut product = 0u128;
        for i in 0..64 {
            if b >> i & 1 == 1 {
                product ^= a << i;
            }
        }
        u64::try_from(product).ok().map(Pol)
    }

    /// Quotient and remainder of `self / d`. Panics if `d` is zero.
    pub fn div_rem(self, d: Pol) -> (Pol, Pol) {
        assert!(d.0 != 0, "polynomial division by zero");
        let d_deg = d.deg();
        let (mut q, mut r) = (0u64, self);
        loop {
            let diff = r.deg() - d_deg;
            if diff < 0 {
                return (Pol(q), r);
            }
            q |= 1 << diff;
            r.0 ^= d.0 << diff;
        }
    }

    /// Greatest common divisor (monic, as every non-zero polynomial over GF(2) is).
    pub fn gcd(self, other: Pol) -> Pol {
        let (mut a, mut b) = (self, other);
        while b.0 != 0 {
            (a, b) = (b, a % b);
        }
        a
    }

    /// `self * f mod g`, without overflow for any operands. Panics if `g` is zero.
    pub fn mul_mod(self, f: Pol, g: Pol) -> Pol {
        let top = g.deg();
        // Shift-and-add: `a` runs through self·x^i mod g, always of degree < deg g, so the
        // shift by one never loses a bit.
        let mut a = self % g;
        let mut res = 0;
        let mut f = f.0;
        while f != 0 {
            if f & 1 == 1 {
                res ^= a.0;
            }
            f >>= 1;
            a.0 <<= 1;
            if a.0 >> top & 1 == 1 {
                a.0 ^= g.0;
            }
        }
        Pol(res)
    }

    /// Ben-Or's irreducibility test, as restic's `Irreducible`: for i = 1..=deg/2,
    /// gcd(self, x^(2^i) - x mod self) must be 1. Like restic it answers `true` for
    /// polynomials of degree < 2, which never pass [`Pol::derive`] or the chunker anyway.
    pub fn irreducible(self) -> bool {
        const X: Pol = Pol(2);
        // x^(2^i) mod self, squared once per round instead of recomputed from x each time.
        let mut h = X;
        for _ in 1..=self.deg() / 2 {
            h = h.mul_mod(h, self);
            if self.gcd((h + X) % self) != Pol(1) {
                return false;
            }
        }
        true
    }

    /// restic's `DerivePolynomial`: reads 8-byte little-endian candidates, keeps bits 0..=53,
    /// sets bits 53 and 0, and returns the first irreducible one.
    pub fn derive(reader: &mut impl Read) -> Result<Pol, ChunkerError> {
        for _ in 0..DERIVE_MAX_TRIES {
            let mut bytes = [0u8; 8];
            reader.read_exact(&mut bytes)?;
            let candidate = Pol(u64::from_le_bytes(bytes) & ((1 << 54) - 1) | 1 << 53 | 1);
            if candidate.irreducible() {
                return Ok(candidate);
            }
        }
        Err(ChunkerError::NoIrreducible)
    }

    /// A random irreducible polynomial of degree 53 drawn from the OS CSPRNG, as restic's
    /// `RandomPolynomial` does for `init`. Panics only if the OS random source fails.
    pub fn random() -> Pol {
        Pol::derive(&mut OsRngReader).expect("OS random source failed")
    }

    /// The polynomial written out, e.g. `x^3+x+1` (restic's `Expand`); `0` for zero.
    pub fn expand(self) -> String {
        if self.0 == 0 {
            return "0".to_owned();
        }
        let terms: Vec<String> = (0..64)
            .rev()
            .filter(|i| self.0 >> i & 1 == 1)
            .map(|i| match i {
                0 => "1".to_owned(),
                1 => "x".to_owned(),
                _ => format!("x^{i}"),
            })
            .collect();
        terms.join("+")
    }
}

impl Add for Pol {
    type Output = Pol;
    #[allow(clippy::suspicious_arithmetic_impl)] // addition over GF(2) is XOR
    fn add(self, y: Pol) -> Pol {
        Pol(self.0 ^ y.0)
    }
}

impl Mul for Pol {
    type Output = Pol;
    fn mul(self, y: Pol) -> Pol {
        self.checked_mul(y)
            .expect("polynomial multiplication would overflow u64")
    }
}

impl Div for Pol {
    type Output = Pol;
    fn div(self, d: Pol) -> Pol {
        self.div_rem(d).0
    }
}

impl Rem for Pol {
    type Output = Pol;
    fn rem(self, d: Pol) -> Pol {
        self.div_rem(d).1
    }
}

/// Hex digits without prefix, the form restic stores in `config` (`"3da3358b4dc173"`).
impl fmt::LowerHex for Pol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

/// Exposes the OS CSPRNG as a byte stream for [`Pol::derive`].
struct OsRngReader;

impl Read for OsRngReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        rand::rngs::OsRng
            .try_fill_bytes(buf)
            .map_err(io::Error::other)?;
        Ok(buf.len())
    }
}
