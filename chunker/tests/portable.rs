//! Portable chunker vectors (§7.7): SplitMix64 and simple patterns, produced with the real
//! restic/chunker package. Plus the fingerprint definition itself (§7.2).

mod support;

use arca_chunker::{chunk_lengths, Chunker, ChunkerTables, Pol, MAX_SIZE, MIN_SIZE};
use support::{check_chunks, chunks_with_cuts, sha256_hex, splitmix64, Expected, TEST_POL};

const P2_POL: Pol = Pol(0x379e1f8576e839);

fn p1_input() -> Vec<u8> {
    let data = splitmix64(0, 24 << 20);
    assert_eq!(hex::encode(&data[..16]), "afcd1d7b39a820e2f465b9a16a9e786e");
    assert_eq!(
        sha256_hex(&data),
        "9dd116f2e17c702d19a7912197d34fca2b6e973d172beca56bf7dc822e07440c"
    );
    data
}

/// The cut value from its definition: the 64 bytes ending at the cut as one big-endian
/// polynomial, reduced modulo `pol` with plain long division.
fn window_mod(window: &[u8], pol: Pol) -> u64 {
    window
        .iter()
        .fold(Pol(0), |r, &b| Pol(r.0 << 8 | b as u64) % pol)
        .0
}

const P1: &[Expected] = &[
    (
        1285841,
        Some(0x001b22f289c00000),
        "0c9722f1466328d522e24f6602dff1054317d580ebd2bad4cbac3410f5f8384e",
    ),
    (
        609147,
        Some(0x0013255408800000),
        "cfd4d851001017cf4ce45fcef3935b17258c6d38a7cff31b88781fb713e21443",
    ),
    (
        536277,
        Some(0x00067c55bfe00000),
        "bdac4a60a7253046742e9e3fee0487afb86269b9dc367883da01d16347526c1c",
    ),
    (
        939814,
        Some(0x0019f08788600000),
        "ff55a781405bb08c7038e371bce470a199ef2706b9980f73f17eac616124bb37",
    ),
    (
        759094,
        Some(0x0012f7d072400000),
        "a713feee7ab742228fab2e5aafed09f06c0c063c004de1c43ea11ce9ac28584a",
    ),
    (
        1146182,
        Some(0x00078b3e06200000),
        "42d1f80774010719cdbd4052e5611e10dd0fb90203611ce3e3bcfe75a69f4463",
    ),
    (
        2257240,
        Some(0x001362cb78100000),
        "fdc243c093fa9fb18f1c6ec648304722e3f2d2485c8e742c6488f7deef95ceee",
    ),
    (
        1210894,
        Some(0x0011f69779400000),
        "d9d1df4238181fb2af5953766dc67d13a2f7cef432c01e0a0a494fb6490035dc",
    ),
    (
        631848,
        Some(0x001cdf4fb4300000),
        "639a98bea14b0b7e70e2e09f6020fb991fe82035b02c612d40b1824bc1659452",
    ),
    (
        864506,
        Some(0x00049d2871000000),
        "fda7c6682b268a1630d0b96e8712afd593a4bdc735061062fa078363416f63c1",
    ),
    (
        3818237,
        Some(0x00113e9328000000),
        "8bc1ef424081f76294f7a3e0271220e1ca96082011eea6edda32b1ac154f1731",
    ),
    (
        2152464,
        Some(0x00050889daf00000),
        "e73c97e2ac0f67741010c7f137fd45962fb6378d2686dc266d9782d85a7936e0",
    ),
    (
        1101042,
        Some(0x00157e9a3e500000),
        "d2b4208035d295e95d5c827294198d8bb84d077a64e608d8b963a42da9bdf5e5",
    ),
    (
        1239951,
        Some(0x0009ce524aa00000),
        "c59d8e12ea25efc556abb57c56b42deea7803db66c65cb2c08c7382a2d7a6b69",
    ),
    (
        1416160,
        Some(0x000e7f266a200000),
        "e6826124648052db9dd736b0301a77b68bced15f51a56d265233ba164ec83262",
    ),
    (
        1138876,
        Some(0x00130341fba00000),
        "5ab146790c57a7352f1bf95aa12879558d20cb272a29975d9d3b84dcfc010db1",
    ),
    (
        1138629,
        Some(0x00025a75f4400000),
        "7450522d5aa3e50a79d21f9c76af581426591ddd449f43b5ed38ece9a9065702",
    ),
    (
        1036623,
        Some(0x000305769f400000),
        "65a7de8a2cc8945698f7f3c42ee7d46657204c556e0341a611e47c9f2fbaebbb",
    ),
    (
        1882999,
        None,
        "ecd806b63917fd3b5aae854b526139c7915ae1244c020ffbc181e7ebeb89e7c6",
    ),
];

#[test]
fn p1() {
    let data = p1_input();
    check_chunks(Chunker::new(&ChunkerTables::new(TEST_POL)), &data, P1);
}

const P2: &[Expected] = &[
    (
        5941270,
        Some(0x0001b88744400000),
        "e82cef1d7097081fdfcc4f22e80a6f85a9b0a1fbd4bdbf2ee3b18958e6627664",
    ),
    (
        945802,
        Some(0x001de7b8f6e00000),
        "2e40efcd18ddfe0c6ecee861fcce5420cb14933701a15fb9f93f4b8e374009d3",
    ),
    (
        796213,
        Some(0x0005042924600000),
        "07edd54d006f17d17157dc8c4c9df39e5ec8a30e22b5b9ab961c0f8a8120b02b",
    ),
    (
        919186,
        Some(0x000c1ebe33200000),
        "f555cd1c82052856ece01769484ee12a1292dc5cf8ad78b6c9a8f0c834e97e90",
    ),
    (
        913674,
        Some(0x001809d791000000),
        "eaa5d6fc0d3cba1c3243d21c9fd4d429d00ccb65463ef4748872a1e2adb5917f",
    ),
    (
        814681,
        Some(0x001ae35161000000),
        "6f7d1231557c3e6d5769e4e9bdab4d247806f085141ac8199dd38dbc1f0277e5",
    ),
    (
        2737754,
        Some(0x000236bb2a500000),
        "4fa224290dcb0f94a9ddd39dd97cc50df55585762d0f141f2a2062297d5905c6",
    ),
    (
        1145840,
        Some(0x000ffd27f5600000),
        "49cc5a32ad9d07589a94de8e6538c2852bb12e9061613eef0396a66d5aae1dcd",
    ),
    (
        923272,
        Some(0x00045c98c1200000),
        "69470f7f57f363905b448d97375a073b5c2aa9b00d030e16d4fb89bef1dab92f",
    ),
    (
        3478320,
        Some(0x001577adfa300000),
        "f85f549462eeeed6c952527f9ac9271280dd3cb2f05203902e215eb493ab1621",
    ),
    (
        541300,
        Some(0x001c34611a100000),
        "c88759d06d741b6806c4d9bdace974ec7bc1d8a4c625f4a71c2e0ec083154a28",
    ),
    (
        1072617,
        Some(0x0007a3c5be500000),
        "abca130b4b67c85932135d6add9823e9df276b29d7849968f078d59440f525c8",
    ),
    (
        772515,
        Some(0x000d34ff9e300000),
        "1ee09bc67ff43d07f5fd23bf6257773e375b2d16f64e678f7ebf682b33d97991",
    ),
    (
        1223270,
        Some(0x001904c6a2800000),
        "8a38e551580c40986d9b05f80f743523c27477d03f0ed3affbd94c11d7b551d3",
    ),
    (
        1543793,
        Some(0x00033536baa00000),
        "d3186bc2af280b51634631784b9ccd2e5a7dc18b2da11fb889585da7e18707a2",
    ),
    (
        1396317,
        None,
        "52290019274dae9d79eae8960af1753a5461f24625d84a25746201239431b688",
    ),
];

#[test]
fn p2_second_polynomial() {
    let data = p1_input();
    check_chunks(Chunker::new(&ChunkerTables::new(P2_POL)), &data, P2);
}

#[test]
fn cut_values_are_window_fingerprints() {
    let data = p1_input();
    for pol in [TEST_POL, P2_POL] {
        let chunker = Chunker::new(&ChunkerTables::new(pol));
        let mut end = 0;
        for (len, cut) in chunks_with_cuts(chunker, &data) {
            end += len;
            if let Some(cut) = cut {
                assert_eq!(cut, window_mod(&data[end - 64..end], pol), "cut at {end}");
                assert_eq!(cut & 0xfffff, 0);
            }
        }
    }
}

#[test]
fn p3_max_size_only() {
    let data = vec![1u8; 20 << 20];
    assert_eq!(window_mod(&[1; 64], TEST_POL), 0x182bcd15979498);
    let full = "bb929bbdce85fdbc903a463e96630a25f8b6ef5b76090e24cd92ea8fb47b2f65";
    let expected: &[Expected] = &[
        (MAX_SIZE, Some(0x182bcd15979498), full),
        (MAX_SIZE, Some(0x182bcd15979498), full),
        (
            4194304,
            None,
            "5d2bafc266e711ed1e303de871e5b281fea2083d96e579dd504798bba5a34b42",
        ),
    ];
    check_chunks(Chunker::new(&ChunkerTables::new(TEST_POL)), &data, expected);
}

#[test]
fn p4_shorter_than_min_size() {
    let data = splitmix64(1, 100000);
    let expected: &[Expected] = &[(
        100000,
        None,
        "04c671df807f1f4141677aaefec27fa33ad3aacc9f92fda675650a0278577ae0",
    )];
    check_chunks(Chunker::new(&ChunkerTables::new(TEST_POL)), &data, expected);
}

#[test]
fn p5_exactly_min_size() {
    let data = splitmix64(2, MIN_SIZE);
    let expected: &[Expected] = &[(
        MIN_SIZE,
        None,
        "1a92d2ef1120d1bd5d83d966710476bcf1109ff52506a196b9f4bc47db222f4f",
    )];
    check_chunks(Chunker::new(&ChunkerTables::new(TEST_POL)), &data, expected);
}

#[test]
fn p6_counter_pattern() {
    let data: Vec<u8> = (0..12 << 20).map(|i: usize| i as u8).collect();
    // the repeating 64-byte windows never have 20 low zero bits: cut only at MaxSize
    let cut = window_mod(&data[MAX_SIZE - 64..MAX_SIZE], TEST_POL);
    assert_ne!(cut & 0xfffff, 0);
    let expected: &[Expected] = &[
        (
            MAX_SIZE,
            Some(cut),
            "7d212b9c884f5c77896de960ae17cc341cda43b14d6a971f34ca29ebd4badf7f",
        ),
        (
            4194304,
            None,
            "2b07811057df887086f06a67edc6ebf911de8b6741156e7a2eb1416a4b8b1b2e",
        ),
    ];
    check_chunks(Chunker::new(&ChunkerTables::new(TEST_POL)), &data, expected);
}

#[test]
fn empty_input_has_no_chunks() {
    let tables = ChunkerTables::new(TEST_POL);
    assert!(chunk_lengths(&tables, &[]).is_empty());
    assert_eq!(Chunker::new(&tables).next_boundary(&[]), None);
}
