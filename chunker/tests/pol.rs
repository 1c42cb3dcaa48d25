//! Polynomial arithmetic and selection: restic's `polynomials_test.go` vectors (§7.4) plus
//! an independent irreducibility oracle.

mod support;

use std::io::{self, Read};

use arca_chunker::{ChunkerError, Pol};
use support::{splitmix64, TEST_POL};

fn bin(s: &str) -> Pol {
    Pol(u64::from_str_radix(s, 2).unwrap())
}

/// Rabin's test for degree 53, a prime: f is irreducible iff x^(2^53) = x mod f and
/// gcd(x^2 + x, f) = 1, i.e. f(0) = f(1) = 1. Independent of Ben-Or's test under test.
fn rabin_irreducible_53(f: Pol) -> bool {
    assert_eq!(f.deg(), 53);
    let mut h = Pol(2);
    for _ in 0..53 {
        h = h.mul_mod(h, f);
    }
    f.0 & 1 == 1 && f.0.count_ones() % 2 == 1 && h == Pol(2)
}

#[test]
fn add() {
    for (x, y, sum) in [
        (23, 16, 23 ^ 16),
        (0x9a7e30d1e855e0a0, 0x670102a1f4bcd414, 0xfd7f32701ce934b4),
        (0x9a7e30d1e855e0a0, 0x9a7e30d1e855e0a0, 0),
    ] {
        assert_eq!(Pol(x) + Pol(y), Pol(sum));
        assert_eq!(Pol(y) + Pol(x), Pol(sum));
    }
}

#[test]
fn mul() {
    let cases = [
        (Pol(1), Pol(2), Pol(2)),
        (bin("1101"), bin("10"), bin("11010")),
        (bin("1101"), bin("11"), bin("10111")),
        (Pol(0x40000000), Pol(0x40000000), Pol(0x1000000000000000)),
        (bin("1010"), bin("100100"), bin("101101000")),
        (bin("100"), bin("11"), bin("1100")),
        (bin("11"), bin("110101"), bin("1011111")),
        (bin("10011"), bin("110101"), bin("1100001111")),
    ];
    for (x, y, product) in cases {
        assert_eq!(x * y, product, "{x:x} * {y:x}");
        assert_eq!(y * x, product, "{y:x} * {x:x}");
    }
}

#[test]
fn mul_overflow() {
    assert_eq!(Pol(1 << 63).checked_mul(Pol(2)), None);
    assert_eq!(Pol(1 << 62).checked_mul(Pol(2)), Some(Pol(1 << 63)));
    assert!(std::panic::catch_unwind(|| Pol(1 << 63) * Pol(2)).is_err());
}

#[test]
fn div() {
    let cases = [
        (Pol(10), Pol(50), Pol(0)),
        (Pol(0), Pol(1), Pol(0)),
        (bin("101101000"), bin("1010"), bin("100100")),
        (Pol(2), Pol(2), Pol(1)),
        (Pol(0x8000000000000000), Pol(0x8000000000000000), Pol(1)),
        (bin("1100"), bin("100"), bin("11")),
        (bin("1100001111"), bin("10011"), bin("110101")),
    ];
    for (x, d, q) in cases {
        assert_eq!(x / d, q, "{x:x} / {d:x}");
    }
    assert!(std::panic::catch_unwind(|| Pol(5) / Pol(0)).is_err());
}

#[test]
fn rem() {
    let cases = [
        (Pol(10), Pol(50), Pol(10)),
        (Pol(0), Pol(1), Pol(0)),
        (bin("101101001"), bin("1010"), bin("1")),
        (Pol(2), Pol(2), Pol(0)),
        (Pol(0x8000000000000000), Pol(0x8000000000000000), Pol(0)),
        (bin("1100"), bin("100"), bin("0")),
        (bin("1100001111"), bin("10011"), bin("0")),
    ];
    for (x, d, r) in cases {
        assert_eq!(x % d, r, "{x:x} mod {d:x}");
        // and the quotient is consistent: x = q·d + r
        let (q, r2) = x.div_rem(d);
        assert_eq!(r2, r);
        assert_eq!(q * d + r, x);
    }
}

#[test]
fn deg() {
    assert_eq!(Pol(0).deg(), -1);
    assert_eq!(Pol(1).deg(), 0);
    assert_eq!(Pol(2).deg(), 1);
    assert_eq!(Pol(3).deg(), 1);
    assert_eq!(Pol(0x3af4b284899).deg(), 41);
    assert_eq!(TEST_POL.deg(), 53);
    assert_eq!(Pol(u64::MAX).deg(), 63);
}

#[test]
fn expand_and_hex() {
    assert_eq!(
        TEST_POL.expand(),
        "x^53+x^52+x^51+x^50+x^48+x^47+x^45+x^41+x^40+x^37+x^36+x^34+x^32+x^31+x^27+x^25+\
         x^24+x^22+x^19+x^18+x^16+x^15+x^14+x^8+x^6+x^5+x^4+x+1"
    );
    assert_eq!(Pol(0).expand(), "0");
    assert_eq!(Pol(2).expand(), "x");
    assert_eq!(format!("{TEST_POL:x}"), "3da3358b4dc173");
}

#[test]
fn irreducible_vectors() {
    let cases = [
        (0x38f1e565e288df, false),
        (0x3DA3358B4DC173, true),
        (0x30a8295b9d5c91, false),
        (0x255f4350b962cb, false),
        (0x267f776110a235, false),
        (0x2f4dae10d41227, false),
        (0x2482734cacca49, true),
        (0x312daf4b284899, false),
        (0x29dfb6553d01d1, false),
        (0x3548245eb26257, false),
        (0x3199e7ef4211b3, false),
        (0x362f39017dae8b, false),
        (0x200d57aa6fdacb, false),
        (0x35e0a4efa1d275, false),
        (0x2ced55b026577f, false),
        (0x260b012010893d, false),
        (0x2df29cbcd59e9d, false),
        (0x3f2ac7488bd429, false),
        (0x3e5cb1711669fb, false),
        (0x226d8de57a9959, false),
        (0x3c8de80aaf5835, false),
        (0x2026a59efb219b, false),
        (0x39dfa4d13fb231, false),
        (0x3143d0464b3299, false),
        // the polynomial of the rustic fixture repository (§7.7 P2)
        (0x379e1f8576e839, true),
    ];
    assert_eq!(cases.iter().filter(|c| !c.1).count(), 22);
    for (f, irreducible) in cases {
        assert_eq!(Pol(f).irreducible(), irreducible, "{f:#x}");
        assert_eq!(
            rabin_irreducible_53(Pol(f)),
            irreducible,
            "oracle on {f:#x}"
        );
    }
}

#[test]
fn irreducible_small_degrees() {
    // x^2+x+1, x^3+x+1, x^4+x+1 and x^8+x^4+x^3+x+1 (AES) are irreducible;
    // x^2+1 = (x+1)^2, x^4+x^2+1 = (x^2+x+1)^2 and x^3+x are not.
    for f in [0b111, 0b1011, 0b10011, 0x11b] {
        assert!(Pol(f).irreducible(), "{f:#b}");
    }
    for f in [0b101, 0b10101, 0b1010] {
        assert!(!Pol(f).irreducible(), "{f:#b}");
    }
}

#[test]
fn irreducible_agrees_with_rabin_on_random_candidates() {
    let data = splitmix64(7, 8 * 3000);
    let mut found = 0;
    for word in data.chunks_exact(8) {
        let f = Pol(u64::from_le_bytes(word.try_into().unwrap()) & ((1 << 54) - 1) | 1 << 53);
        let irreducible = f.irreducible();
        assert_eq!(irreducible, rabin_irreducible_53(f), "{f:#x}");
        found += irreducible as usize;
    }
    // about 1 in 53 polynomials of degree 53 is irreducible
    assert!((20..=120).contains(&found), "{found} irreducible of 3000");
}

#[test]
fn gcd() {
    let cases = [
        (Pol(10), Pol(50), Pol(2)),
        (Pol(0), Pol(1), Pol(1)),
        (bin("101101001"), bin("1010"), bin("1")),
        (Pol(2), Pol(2), Pol(2)),
        (bin("1010"), bin("11"), bin("11")),
        (
            Pol(0x8000000000000000),
            Pol(0x8000000000000000),
            Pol(0x8000000000000000),
        ),
        (bin("1100"), bin("101"), bin("11")),
        (bin("1100001111"), bin("10011"), bin("10011")),
        (TEST_POL, TEST_POL, TEST_POL),
        (TEST_POL, Pol(0x230d2259defd), Pol(1)),
        (Pol(0x230d2259defd), Pol(0x51b492b3eff2), bin("10011")),
    ];
    for (a, b, g) in cases {
        assert_eq!(a.gcd(b), g, "gcd({a:x}, {b:x})");
        assert_eq!(b.gcd(a), g, "gcd({b:x}, {a:x})");
    }
}

#[test]
fn mul_mod() {
    assert_eq!(Pol(0x1230).mul_mod(Pol(0x230), Pol(0x55)), Pol(0x22));
    assert_eq!(
        Pol(0x0eae8c07dbbb3026).mul_mod(Pol(0xd5d6db9de04771de), Pol(0xdd2bda3b77c9)),
        Pol(0x425ae8595b7a)
    );
    // full-width operands, checked against a 128-bit schoolbook product and reduction
    let wide = |a: u64, b: u64, g: u64| -> u64 {
        let mut p = 0u128;
        for i in 0..64 {
            if b >> i & 1 == 1 {
                p ^= (a as u128) << i;
            }
        }
        let k = 63 - g.leading_zeros();
        for i in (k..128).rev() {
            if p >> i & 1 == 1 {
                p ^= (g as u128) << (i - k);
            }
        }
        p as u64
    };
    for (a, b, g) in [
        (u64::MAX, 1 << 63 | 5, TEST_POL.0),
        (0x0123456789abcdef, 0xfedcba9876543210, 0x8000000000000001),
        (0xdeadbeef, 0xcafebabe, 0x11b),
    ] {
        assert_eq!(Pol(a).mul_mod(Pol(b), Pol(g)), Pol(wide(a, b, g)));
    }
}

#[test]
fn random_is_irreducible_degree_53() {
    for _ in 0..5 {
        let f = Pol::random();
        assert_eq!(f.deg(), 53, "{f:#x}");
        assert!(f.irreducible(), "{f:#x}");
        assert!(rabin_irreducible_53(f), "{f:#x}");
    }
}

#[test]
fn derive_from_fixed_stream() {
    // SplitMix64(seed 0): the first nine candidates are reducible, the tenth is not
    // (found independently with Rabin's test).
    let stream = splitmix64(0, 1000);
    let mut reader = &stream[..];
    assert_eq!(Pol::derive(&mut reader).unwrap(), Pol(0x38488c368cb0a7));
    assert_eq!(reader.len(), 1000 - 10 * 8, "reads exactly ten candidates");
    for word in stream[..72].chunks_exact(8) {
        let f = u64::from_le_bytes(word.try_into().unwrap()) & ((1 << 54) - 1) | 1 << 53 | 1;
        assert!(!rabin_irreducible_53(Pol(f)));
    }

    for (seed, want) in [(1, 0x3e2e2256feff0d), (42, 0x2431fa3c80db07)] {
        let stream = splitmix64(seed, 2000);
        assert_eq!(
            Pol::derive(&mut &stream[..]).unwrap(),
            Pol(want),
            "seed {seed}"
        );
    }
}

#[test]
fn derive_errors() {
    // the stream ends before an irreducible candidate
    let short = splitmix64(0, 72);
    match Pol::derive(&mut &short[..]) {
        Err(ChunkerError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
    // all-zero bytes give x^53 + 1 = (x+1)(...) every time
    match Pol::derive(&mut io::repeat(0).take(u64::MAX)) {
        Err(ChunkerError::NoIrreducible) => {}
        other => panic!("{other:?}"),
    }
}
