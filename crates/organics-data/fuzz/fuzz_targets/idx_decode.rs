//! Fuzzes the IDX reader: any bytes, raw or (when they start with 1f 8b) gzip, must decode to
//! a self-consistent array or to a `DataError`, never panic. A decoded array must re-encode to
//! the same bytes when the input was raw.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use organics_data::idx::{self, Compression};

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = idx::decode(data, Path::new("fuzz-input")) {
        assert_eq!(array.dims().iter().product::<usize>(), array.data().len());
        if !data.starts_with(&idx::GZIP_MAGIC) {
            assert_eq!(idx::encode(&array, Compression::Raw), data);
        }
    }
});
