//! restic's upstream chunker vectors (`chunker_test.go`, `example_test.go`; §7.5), on inputs
//! from a port of Go's `math/rand`, with polynomial 0x3DA3358B4DC173.

mod support;

use std::sync::OnceLock;

use arca_chunker::{Chunker, ChunkerTables, MAX_SIZE, MIN_SIZE};
use support::{check_chunks, go_get_random, sha256_hex, Expected, GoRand, TEST_POL};

/// `getRandom(23, 32 MiB)`, shared by chunks1, chunks3 and chunks4.
fn input_23() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| go_get_random(23, 32 << 20))
}

#[test]
fn go_rand_check_values() {
    let mut rng = GoRand::new(23);
    let got: Vec<u64> = (0..4).map(|_| rng.uint64()).collect();
    assert_eq!(
        got,
        [
            0x67f2c767b5f7061b,
            0x4639aa289ff39b31,
            0x9c6baf0d0f553715,
            0x85da4db4df4f5692
        ]
    );
    let mut rng = GoRand::new(23);
    let got: Vec<u32> = (0..4).map(|_| rng.uint32()).collect();
    assert_eq!(got, [0xcfe58ecf, 0x8c735451, 0x38d75e1a, 0x0bb49b69]);
    // Go's documented first Int63 for seed 1 (`rand.Seed(1)`), and seed 0 maps to 89482311
    assert_eq!(GoRand::new(1).int63(), 5577006791947779410);
    assert_eq!(GoRand::new(0).uint64(), GoRand::new(89482311).uint64());
}

#[test]
fn go_rand_inputs() {
    let data = input_23();
    assert_eq!(hex::encode(&data[..16]), "cf8ee5cf5154738c1a5ed738699bb40b");
    assert_eq!(
        sha256_hex(data),
        "529617b3a6df2372a77f656f14a5baaf997dc03c1fc458d196f933fed0a46573"
    );
    let mut example = vec![0u8; 32 << 20];
    GoRand::new(23).read(&mut example);
    assert_eq!(
        hex::encode(&example[..16]),
        "1b06f7b567c7f2319bf39f28aa391537"
    );
    assert_eq!(
        sha256_hex(&example),
        "c5c2783e0c54d67b33f362abc4bfda0141d85c9d7701ccfc48488f6e09120885"
    );
}

const CHUNKS1: &[Expected] = &[
    (
        2163460,
        Some(0x000b98d4cdf00000),
        "4b94cb2cf293855ea43bf766731c74969b91aa6bf3c078719aabdd19860d590d",
    ),
    (
        643703,
        Some(0x000d4e8364d00000),
        "5727a63c0964f365ab8ed2ccf604912f2ea7be29759a2b53ede4d6841e397407",
    ),
    (
        1528956,
        Some(0x0015a25c2ef00000),
        "a73759636a1e7a2758767791c69e81b69fb49236c6929e5d1b654e06e37674ba",
    ),
    (
        1955808,
        Some(0x00102a8242e00000),
        "c955fb059409b25f07e5ae09defbbc2aadf117c97a3724e06ad4abd2787e6824",
    ),
    (
        2222372,
        Some(0x00045da878000000),
        "6ba5e9f7e1b310722be3627716cf469be941f7f3e39a4c3bcefea492ec31ee56",
    ),
    (
        2538687,
        Some(0x00198a8179900000),
        "8687937412f654b5cfe4a82b08f28393a0c040f77c6f95e26742c2fc4254bfde",
    ),
    (
        609606,
        Some(0x001d4e8d17100000),
        "5da820742ff5feb3369112938d3095785487456f65a8efc4b96dac4be7ebb259",
    ),
    (
        1205738,
        Some(0x000a7204dd600000),
        "cc70d8fad5472beb031b1aca356bcab86c7368f40faa24fe5f8922c6c268c299",
    ),
    (
        959742,
        Some(0x00183e71e1400000),
        "4065bdd778f95676c92b38ac265d361f81bff17d76e5d9452cf985a2ea5a4e39",
    ),
    (
        4036109,
        Some(0x001fec043c700000),
        "b9cf166e75200eb4993fc9b6e22300a6790c75e6b0fc8f3f29b68a752d42f275",
    ),
    (
        1525894,
        Some(0x000b1574b1500000),
        "2f238180e4ca1f7520a05f3d6059233926341090f9236ce677690c1823eccab3",
    ),
    (
        1352720,
        Some(0x00018965f2e00000),
        "afd12f13286a3901430de816e62b85cc62468c059295ce5888b76b3af9028d84",
    ),
    (
        811884,
        Some(0x00155628aa100000),
        "42d0cdb1ee7c48e552705d18e061abb70ae7957027db8ae8db37ec756472a70a",
    ),
    (
        1282314,
        Some(0x001909a0a1400000),
        "819721c2457426eb4f4c7565050c44c32076a56fa9b4515a1c7796441730eb58",
    ),
    (
        1318021,
        Some(0x001cceb980000000),
        "842eb53543db55bacac5e25cb91e43cc2e310fe5f9acc1aee86bdf5e91389374",
    ),
    (
        948640,
        Some(0x0011f7a470a00000),
        "b8e36bf7019bb96ac3fb7867659d2167d9d3b3148c09fe0de45850b8fe577185",
    ),
    (
        645464,
        Some(0x00030ce2d9400000),
        "5584bd27982191c3329f01ed846bfd266e96548dfa87018f745c33cfc240211d",
    ),
    (
        533758,
        Some(0x0004435c53c00000),
        "4da778a25b72a9a0d53529eccfe2e5865a789116cb1800f470d8df685a8ab05d",
    ),
    (
        1128303,
        Some(0x0000c48517800000),
        "08c6b0b38095b348d80300f0be4c5184d2744a17147c2cba5cc4315abf4c048f",
    ),
    (
        800374,
        Some(0x000968473f900000),
        "820284d2c8fd243429674c996d8eb8d3450cbc32421f43113e980f516282c7bf",
    ),
    (
        2453512,
        Some(0x001e197c92600000),
        "5fa870ed107c67704258e5e50abe67509fb73562caf77caa843b5f243425d853",
    ),
    (
        2651975,
        Some(0x000ae6c868000000),
        "181347d2bbec32bef77ad5e9001e6af80f6abcf3576549384d334ee00c1988d8",
    ),
    (
        237392,
        None,
        "fcd567f5d866357a8e299fd5b2359bb2c8157c30395229c4e9b0a353944a7978",
    ),
];

#[test]
fn chunks1() {
    let tables = ChunkerTables::new(TEST_POL);
    check_chunks(Chunker::new(&tables), input_23(), CHUNKS1);
}

#[test]
fn chunks2_zeros() {
    // an all-zero window fingerprints to 0, so every chunk is cut at MinSize with cut 0
    let data = vec![0u8; 4 * MIN_SIZE];
    let zero_chunk = "07854d2fef297a06ba81685e660c332de36d5d18d546927d30daad6d7fda1541";
    let tables = ChunkerTables::new(TEST_POL);
    check_chunks(
        Chunker::new(&tables),
        &data,
        &[(MIN_SIZE, Some(0), zero_chunk); 4],
    );
}

const CHUNKS3: &[Expected] = &[
    (
        1491586,
        Some(0x00023e586ea80000),
        "4c008237df602048039287427171cef568a6cb965d1b5ca28dc80504a24bb061",
    ),
    (
        671874,
        Some(0x000b98d4cdf00000),
        "fa8a42321b90c3d4ce9dd850562b2fd0c0fe4bdd26cf01a24f22046a224225d3",
    ),
    (
        643703,
        Some(0x000d4e8364d00000),
        "5727a63c0964f365ab8ed2ccf604912f2ea7be29759a2b53ede4d6841e397407",
    ),
    (
        1284146,
        Some(0x0012b527e4780000),
        "16d04cafecbeae9eaedd49da14c7ad7cdc2b1cc8569e5c16c32c9fb045aa899a",
    ),
    (
        823366,
        Some(0x000d1d6752180000),
        "48662c118514817825ad4761e8e2e5f28f9bd8281b07e95dcafc6d02e0aa45c3",
    ),
    (
        810134,
        Some(0x0016071b6e180000),
        "f629581aa05562f97f2c359890734c8574c5575da32f9289c5ba70bfd05f3f46",
    ),
    (
        567118,
        Some(0x00102a8242e00000),
        "d4f0797c56c60d01bac33bfd49957a4816b6c067fc155b026de8a214cab4d70a",
    ),
    (
        821315,
        Some(0x001b3e42c8180000),
        "8ebd0fd5db0293bd19140da936eb8b1bbd3cd6ffbec487385b956790014751ca",
    ),
    (
        1401057,
        Some(0x00045da878000000),
        "001360af59adf4871ef138cfa2bb49007e86edaf5ac2d6f0b3d3014510991848",
    ),
    (
        2311122,
        Some(0x0005cbd885380000),
        "8276d489b566086d9da95dc5c5fe6fc7d72646dd3308ced6b5b6ddb8595f0aa1",
    ),
    (
        608723,
        Some(0x001cfcd86f280000),
        "518db33ba6a79d4f3720946f3785c05b9611082586d47ea58390fc2f6de9449e",
    ),
    (
        980456,
        Some(0x0013edb7a7f80000),
        "0121b1690738395e15fecba1410cd0bf13fde02225160cad148829f77e7b6c99",
    ),
    (
        1140278,
        Some(0x0001f9f017e80000),
        "28ca7c74804b5075d4f5eeb11f0845d99f62e8ea3a42b9a05c7bd5f2fca619dd",
    ),
    (
        2015542,
        Some(0x00097bf5d8180000),
        "6fe8291f427d48650a5f0f944305d3a2dbc649bd401d2655fc0bdd42e890ca5a",
    ),
    (
        904752,
        Some(0x000e1863eff80000),
        "62af1f1eb3f588d18aff28473303cc4731fc3cafcc52ce818fee3c4c2820854d",
    ),
    (
        713072,
        Some(0x001f3bb1b9b80000),
        "4bda9dc2e3031d004d87a5cc93fe5207c4b0843186481b8f31597dc6ffa1496c",
    ),
    (
        675937,
        Some(0x001fec043c700000),
        "5299c8c5acec1b90bb020cd75718aab5e12abb9bf66291465fd10e6a823a8b4a",
    ),
    (
        1525894,
        Some(0x000b1574b1500000),
        "2f238180e4ca1f7520a05f3d6059233926341090f9236ce677690c1823eccab3",
    ),
    (
        1352720,
        Some(0x00018965f2e00000),
        "afd12f13286a3901430de816e62b85cc62468c059295ce5888b76b3af9028d84",
    ),
    (
        811884,
        Some(0x00155628aa100000),
        "42d0cdb1ee7c48e552705d18e061abb70ae7957027db8ae8db37ec756472a70a",
    ),
    (
        1282314,
        Some(0x001909a0a1400000),
        "819721c2457426eb4f4c7565050c44c32076a56fa9b4515a1c7796441730eb58",
    ),
    (
        1093738,
        Some(0x0017f5d048880000),
        "5dddfa7a241b68f65d267744bdb082ee865f3c2f0d8b946ea0ee47868a01bbff",
    ),
    (
        962003,
        Some(0x000b921f7ef80000),
        "0cb5c9ebba196b441c715c8d805f6e7143a81cd5b0d2c65c6aacf59ca9124af9",
    ),
    (
        856384,
        Some(0x00030ce2d9400000),
        "7734b206d46f3f387e8661e81edf5b1a91ea681867beb5831c18aaa86632d7fb",
    ),
    (
        533758,
        Some(0x0004435c53c00000),
        "4da778a25b72a9a0d53529eccfe2e5865a789116cb1800f470d8df685a8ab05d",
    ),
    (
        1128303,
        Some(0x0000c48517800000),
        "08c6b0b38095b348d80300f0be4c5184d2744a17147c2cba5cc4315abf4c048f",
    ),
    (
        800374,
        Some(0x000968473f900000),
        "820284d2c8fd243429674c996d8eb8d3450cbc32421f43113e980f516282c7bf",
    ),
    (
        2453512,
        Some(0x001e197c92600000),
        "5fa870ed107c67704258e5e50abe67509fb73562caf77caa843b5f243425d853",
    ),
    (
        665901,
        Some(0x00118c842cb80000),
        "deceec26163842fdef6560311c69bf8a9871a56e16d719e2c4b7e4d668ceb61f",
    ),
    (
        1986074,
        Some(0x000ae6c868000000),
        "64cd64bf3c3bc389eb20df8310f0427d1c36ab2eaaf09e346bfa7f0453fc1a18",
    ),
    (
        237392,
        None,
        "fcd567f5d866357a8e299fd5b2359bb2c8157c30395229c4e9b0a353944a7978",
    ),
];

#[test]
fn chunks3_19_bits() {
    let tables = ChunkerTables::new(TEST_POL);
    let chunker = Chunker::with_params(&tables, MIN_SIZE, MAX_SIZE, 19);
    check_chunks(chunker, input_23(), CHUNKS3);
}

#[test]
fn chunks4_large_boundaries() {
    let tables = ChunkerTables::new(TEST_POL);
    let chunker = Chunker::with_params(&tables, 16 << 20, 32 << 20, 20);
    check_chunks(
        chunker,
        input_23(),
        &[
            (
                17864181,
                Some(0x001fec043c700000),
                "4a43d4eccaa3b88514f54d3becddc6ef5e06fbb2de8161b0129888dbae4430a7",
            ),
            (
                15690251,
                None,
                "4ca32142da6f9130dc9a5d0df82a3c9e359cc4f1f480f4e52042ec0e8ecd3cc0",
            ),
        ],
    );
}

const EXAMPLE: &[Expected] = &[
    (
        1015370,
        Some(0x00183128f6000000),
        "615e8851030f318751f3c8baf8fbfa9958e2dd7f25dc1a87dcf6d6f79d1f1a9f",
    ),
    (
        1276199,
        Some(0x000ec32504000000),
        "f1cb038c558d3a2093049815cc45f80cd367712634a28f6dd36642f905d35c37",
    ),
    (
        1124437,
        Some(0x0000bbf19de00000),
        "a8e19dcd4224b58eb2b480ae42bb1a4a3b0c91c074f4745dbe3f8e4ec1a926e7",
    ),
    (
        3580969,
        Some(0x000bb5c904000000),
        "2b3a3fe65ce9d689599c3b26375c40c22955bf92b170b24258e54dee91e3c2af",
    ),
    (
        3709129,
        Some(0x0014730ae1700000),
        "47672502d75db244cb3dc3098eed87ffd537c9f0d66fb82a0198b6f6994409f2",
    ),
    (
        879336,
        Some(0x0019fba68b900000),
        "a0539604cf825059ee54cad3554f920a65e56d25df3f41a625fc6e417e12be80",
    ),
    (
        1274390,
        Some(0x001e79fe14500000),
        "99b360fe90b5c583267e8934edfe79d4158e44b9b66c7b64041fbf8fcf066624",
    ),
    (
        2232817,
        Some(0x00132dde81200000),
        "e770c5c779db083ba54a45b75b8ff5c25150506dd1bdefdcfede9a63ede45ba2",
    ),
    (
        2475339,
        Some(0x0007dc434da00000),
        "2280164c788530b0335f1b21446055aade8d3ac885a48b2eb925bfcce62c615a",
    ),
    (
        1401025,
        Some(0x001b67e2ee500000),
        "3b27e22cb6b1951194952da4e48092cb03d1606d5eed60aa9d3fc78b85142e85",
    ),
    (
        893673,
        Some(0x001f395d36f00000),
        "add962246035d2b716540b8f8254643963aaca04f208b2c4284c1b19df4336ee",
    ),
    (
        712611,
        Some(0x0008680935100000),
        "74578e399cdbeee8d9210bbc3265cc6a1dfdc18a39191ef4c9653a80cfb717f1",
    ),
    (
        676076,
        Some(0x000781c801500000),
        "e0c431c98abdb73df9f0146607b2c9cf3d588b4fa36ae025c411779074dc79c9",
    ),
    (
        2068637,
        Some(0x00190faf74300000),
        "ac0bf1f37bb3e7afa9cbc18ac4842c54032ef1556727bbefcafd78bac3ea28e0",
    ),
    (
        572216,
        Some(0x001e756906600000),
        "c5aabd171131de78c8db4d5d7ff7aa9e708c8f235fd8ee4ae8edf71982b6bd03",
    ),
    (
        622305,
        Some(0x001077eaba900000),
        "08c9782ae4ed34944e8d91da446a280c4745779d2f1e45afdd75e5f73bdbc4c2",
    ),
    (
        1679154,
        Some(0x0011283f1fc00000),
        "f28d103380e13391580dd7bde886c93e2923ef79009853b5f5fe5a5a51de3a2b",
    ),
    (
        1006116,
        Some(0x001a779300f00000),
        "1129115848d5550edb5ee3259bddf609f213dd281ea69a080b85fb9f62873ff5",
    ),
    (
        656861,
        Some(0x0000ac905a700000),
        "0205fdc2aef50bf5c8ef8962cf3975793445b19f72e13324e4cf8d21c865e4e6",
    ),
    (
        2205419,
        Some(0x001f9ed3b8500000),
        "7f6b4f4ef9ade6a201992ff9f21ad9a9b54e1d37b28091c00dee6da138f5b3ce",
    ),
    (
        1262913,
        Some(0x0015baf5b0400000),
        "1dee19368060ddfe631adbdae30fac520ae3b20cc4b83bd1f70d49ae607ae527",
    ),
    (
        1115832,
        Some(0x0000038ee2b00000),
        "209b9654a7b0a69d66d83f70cc7ca3a90d5acef39269c2c1b6b1f92707007cc8",
    ),
    (
        534976,
        Some(0x00112b22a2d00000),
        "9b7ea3619d4c77e5e775fb4d139a40613f0ff5d6e2000995efcabce061c36693",
    ),
    (
        578632,
        None,
        "66712801d88c9790afd7fcae3d08b791d036bbca228ff6bd7c5b0d52c6802e7b",
    ),
];

#[test]
fn example() {
    let mut data = vec![0u8; 32 << 20];
    GoRand::new(23).read(&mut data);
    let tables = ChunkerTables::new(TEST_POL);
    check_chunks(Chunker::new(&tables), &data, EXAMPLE);
}
