//! The IDX reader and writer: round trips for every element type, raw and gzip, every IDX and
//! dataset-file error, and a fuzz-style property that arbitrary bytes never panic.

mod common;

use std::path::Path;

use common::{gzip, images_idx, labels_idx, scratch};
use organics_data::dataset::read_labels;
use organics_data::idx::{self, Compression, IdxArray, IdxData, IdxType};
use organics_data::{DataError, Dataset};
use proptest::prelude::*;

/// Elements as bit patterns, so that -0.0 vs 0.0 and NaN payloads count as differences.
fn bits(data: &IdxData) -> Vec<u64> {
    match data {
        IdxData::U8(v) => v.iter().map(|&x| u64::from(x)).collect(),
        IdxData::I8(v) => v.iter().map(|&x| x as u8 as u64).collect(),
        IdxData::I16(v) => v.iter().map(|&x| x as u16 as u64).collect(),
        IdxData::I32(v) => v.iter().map(|&x| x as u32 as u64).collect(),
        IdxData::F32(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
        IdxData::F64(v) => v.iter().map(|x| x.to_bits()).collect(),
    }
}

/// An array of type `ty`, shape `dims`, whose elements come from the raw words `words`.
fn array_from_words(ty: IdxType, dims: Vec<usize>, words: &[u64]) -> IdxArray {
    let n: usize = dims.iter().product();
    let w = |i: usize| words[i % words.len()].wrapping_mul(0x9E37_79B9_7F4A_7C15 ^ i as u64);
    let data = match ty {
        IdxType::U8 => IdxData::U8((0..n).map(|i| w(i) as u8).collect()),
        IdxType::I8 => IdxData::I8((0..n).map(|i| w(i) as i8).collect()),
        IdxType::I16 => IdxData::I16((0..n).map(|i| w(i) as i16).collect()),
        IdxType::I32 => IdxData::I32((0..n).map(|i| w(i) as i32).collect()),
        IdxType::F32 => IdxData::F32((0..n).map(|i| f32::from_bits(w(i) as u32)).collect()),
        IdxType::F64 => IdxData::F64((0..n).map(|i| f64::from_bits(w(i))).collect()),
    };
    IdxArray::new(dims, data)
}

proptest! {
    // 64 cases x 2 compressions of arrays below 600 elements: well under a second.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_every_type_raw_and_gzip(
        type_index in 0usize..6,
        dims in prop::collection::vec(0usize..6, 0..4),
        words in prop::collection::vec(any::<u64>(), 1..8),
    ) {
        let ty = IdxType::ALL[type_index];
        let array = array_from_words(ty, dims.clone(), &words);
        for compression in [Compression::Raw, Compression::Gzip] {
            let bytes = idx::encode(&array, compression);
            if compression == Compression::Raw {
                // Header: 4 bytes, 4 per dimension, then the elements.
                prop_assert_eq!(bytes.len(), 4 + 4 * dims.len() + array.data().len() * ty.size());
                prop_assert_eq!(bytes[2], ty.code());
            } else {
                prop_assert_eq!(&bytes[..2], &idx::GZIP_MAGIC[..]);
            }
            let back = idx::decode(&bytes, Path::new("prop.idx")).unwrap();
            prop_assert_eq!(back.dims(), array.dims());
            prop_assert_eq!(back.element_type(), ty);
            prop_assert_eq!(bits(back.data()), bits(array.data()));
        }
    }

}

proptest! {
    // Fuzz-style: arbitrary bytes, and valid files with a few bytes overwritten, inserted or
    // cut, raw and gzipped. The reader must return Ok or Err, never panic or allocate wildly.
    // 256 cases keep this a fraction of a second.
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_and_mutated_bytes_never_panic(
        noise in prop::collection::vec(any::<u8>(), 0..64),
        type_index in 0usize..6,
        dims in prop::collection::vec(0usize..5, 0..4),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..6),
        gz in any::<bool>(),
    ) {
        let _ = idx::decode(&noise, Path::new("noise"));
        let mut header_noise = vec![0u8, 0];
        header_noise.extend(&noise);
        let _ = idx::decode(&header_noise, Path::new("noise-with-magic"));

        let array = array_from_words(IdxType::ALL[type_index], dims, &[0xDEAD_BEEF]);
        let mut bytes = idx::encode(&array, Compression::Raw);
        for (at, value, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = value,
                1 => bytes.insert(i, value),
                2 => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        let input = if gz { gzip(&bytes) } else { bytes.clone() };
        match idx::decode(&input, Path::new("mutated")) {
            Ok(a) => {
                // Whatever decodes must be self-consistent and re-encode to the same bytes.
                prop_assert_eq!(a.dims().iter().product::<usize>(), a.data().len());
                prop_assert_eq!(&idx::encode(&a, Compression::Raw), &bytes);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let mut gz_bytes = gzip(&bytes);
        let cut = gz_bytes.len() / 2;
        gz_bytes.truncate(cut.max(2));
        let _ = idx::decode(&gz_bytes, Path::new("cut.gz"));
    }
}

#[test]
fn files_round_trip_through_disk_raw_and_gzip() {
    let dir = scratch("idx-files");
    for ty in IdxType::ALL {
        for compression in [Compression::Raw, Compression::Gzip] {
            let array = array_from_words(ty, vec![3, 2, 5], &[1, 2, 3]);
            let path = dir.join(format!("{ty}-{compression:?}.idx"));
            idx::write(&path, &array, compression).unwrap();
            let back = idx::read(&path).unwrap();
            assert_eq!(
                bits(back.data()),
                bits(array.data()),
                "{ty} {compression:?}"
            );
            assert_eq!(back.dims(), &[3, 2, 5]);
        }
    }
}

#[test]
fn known_bytes_decode_big_endian() {
    // i16 [2]: 0x0102 = 258 and 0xFFFE = -2; f32 [1]: 0x3F800000 = 1.0.
    let a = idx::decode(
        &[0, 0, 0x0B, 1, 0, 0, 0, 2, 1, 2, 0xFF, 0xFE],
        Path::new("x"),
    )
    .unwrap();
    assert_eq!(a.data(), &IdxData::I16(vec![258, -2]));
    let b = idx::decode(
        &[0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3F, 0x80, 0, 0],
        Path::new("y"),
    )
    .unwrap();
    assert_eq!(b.data(), &IdxData::F32(vec![1.0]));
}

fn decode_err(bytes: &[u8]) -> DataError {
    idx::decode(bytes, Path::new("bad.idx")).unwrap_err()
}

#[test]
fn each_idx_error_names_file_and_numbers() {
    let good = idx::encode(
        &IdxArray::new(vec![2, 3], IdxData::I32(vec![1, 2, 3, 4, 5, 6])),
        Compression::Raw,
    );
    assert!(matches!(
        decode_err(&good[..3]),
        DataError::Truncated {
            part: "magic number",
            expected: 4,
            found: 3,
            ..
        }
    ));
    let mut magic = good.clone();
    magic[1] = 8;
    assert!(matches!(
        decode_err(&magic),
        DataError::WrongMagic {
            found: [0, 8, 0x0C, 2],
            ..
        }
    ));
    let mut code = good.clone();
    code[2] = 0x0A;
    assert!(matches!(
        decode_err(&code),
        DataError::UnknownElementType { code: 0x0A, .. }
    ));
    assert!(matches!(
        decode_err(&good[..9]),
        DataError::Truncated {
            part: "dimension list",
            expected: 8,
            found: 5,
            ..
        }
    ));
    let short = decode_err(&good[..good.len() - 1]);
    assert!(
        matches!(
            short,
            DataError::Truncated {
                part: "data",
                expected: 24,
                found: 23,
                ..
            }
        ),
        "{short}"
    );
    let mut long = good.clone();
    long.extend([9, 9, 9]);
    let e = decode_err(&long);
    assert!(
        matches!(
            e,
            DataError::TrailingBytes {
                expected: 24,
                found: 27,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("bad.idx"), "{e}");
    // 8 * (2^32 - 1)^3 bytes does not fit in 64 bits.
    let mut huge = vec![0, 0, 0x0E, 3];
    huge.extend([0xFF; 12]);
    assert!(matches!(
        decode_err(&huge),
        DataError::DimensionsTooLarge {
            element: IdxType::F64,
            ..
        }
    ));
    // A header that claims 4 GiB but carries 10 bytes is truncated, not an allocation failure.
    let mut liar = vec![0, 0, 0x08, 1, 0xFF, 0xFF, 0xFF, 0xFF];
    liar.extend([0; 10]);
    assert!(matches!(
        decode_err(&liar),
        DataError::Truncated {
            part: "data",
            found: 10,
            ..
        }
    ));
    // Gzip magic followed by garbage, and a gzip stream cut short.
    assert!(matches!(
        decode_err(&[0x1f, 0x8b, 1, 2, 3, 4, 5]),
        DataError::Gzip { .. }
    ));
    let gz = gzip(&good);
    assert!(matches!(
        decode_err(&gz[..gz.len() - 10]),
        DataError::Gzip { .. }
    ));
    assert!(matches!(
        idx::read(Path::new("/nonexistent/organics/file.idx")),
        Err(DataError::Io { .. })
    ));
}

#[test]
fn dataset_file_errors() {
    let dir = scratch("dataset-errors");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let images = write("images", &images_idx(3, 2, 2));
    let labels3 = write("labels3", &labels_idx(3, 10));
    let labels2 = write("labels2", &labels_idx(2, 10));

    let ok = Dataset::from_idx_files(&images, &labels3, 10).unwrap();
    assert_eq!((ok.len(), ok.rows(), ok.cols()), (3, 2, 2));
    // Pixel (k, i) = (7k + 3i) mod 256 = 16 here, scaled by one f32 division by 255: the same
    // single rounding on both sides, so the bits agree.
    assert_eq!(ok.image(1)[3].to_bits(), (16.0f32 / 255.0).to_bits());

    let e = Dataset::from_idx_files(&images, &labels2, 10).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::SizeMismatch {
                image_count: 3,
                label_count: 2,
                ..
            }
        ),
        "{e}"
    );

    let bad_label = write(
        "labels-bad",
        &idx::encode(
            &IdxArray::new(vec![3], IdxData::U8(vec![1, 10, 2])),
            Compression::Gzip,
        ),
    );
    let e = read_labels(&bad_label, 10).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 1,
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("labels-bad"), "{e}");

    let i16_labels = write(
        "labels-i16",
        &idx::encode(
            &IdxArray::new(vec![3], IdxData::I16(vec![1, 2, 3])),
            Compression::Raw,
        ),
    );
    assert!(matches!(
        read_labels(&i16_labels, 10),
        Err(DataError::WrongElementType {
            expected: IdxType::U8,
            found: IdxType::I16,
            ..
        })
    ));
    let rank2 = write(
        "labels-rank2",
        &idx::encode(
            &IdxArray::new(vec![3, 1], IdxData::U8(vec![1, 2, 3])),
            Compression::Raw,
        ),
    );
    assert!(matches!(
        read_labels(&rank2, 10),
        Err(DataError::WrongRank { .. })
    ));
    let flat_images = write(
        "images-rank2",
        &idx::encode(
            &IdxArray::new(vec![3, 4], IdxData::U8(vec![0; 12])),
            Compression::Raw,
        ),
    );
    assert!(matches!(
        Dataset::from_idx_files(&flat_images, &labels3, 10),
        Err(DataError::WrongRank {
            expected: "[count, rows, cols]",
            ..
        })
    ));
    let f32_images = write(
        "images-f32",
        &idx::encode(
            &IdxArray::new(vec![3, 2, 2], IdxData::F32(vec![0.5; 12])),
            Compression::Raw,
        ),
    );
    assert!(matches!(
        Dataset::from_idx_files(&f32_images, &labels3, 10),
        Err(DataError::WrongElementType {
            found: IdxType::F32,
            ..
        })
    ));
}
