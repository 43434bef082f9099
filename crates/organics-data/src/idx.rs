//! The IDX file format: a reader for every element type, raw or gzip, and a writer.
//!
//! An IDX file is a big-endian header followed by a dense array in row-major order:
//!
//! ```text
//! offset 0      2 bytes   0x00 0x00                      (magic)
//! offset 2      1 byte    element type code              (0x08 u8, 0x09 i8, 0x0B i16,
//!                                                         0x0C i32, 0x0D f32, 0x0E f64)
//! offset 3      1 byte    rank r
//! offset 4      4r bytes  dimensions d_0 .. d_{r-1}, each a big-endian u32
//! offset 4+4r   the d_0 * ... * d_{r-1} elements, each big-endian
//! ```
//!
//! The data section must hold exactly `∏_k d_k · size(type)` bytes:
//! fewer is [`DataError::Truncated`], more is [`DataError::TrailingBytes`]. A file that starts
//! with the gzip magic `1f 8b` is decompressed first (MNIST's canonical mirrors serve
//! `*.gz`). Reading never panics and never allocates more than the bytes actually present plus
//! a bounded reserve, whatever the header claims.
//!
//! ```
//! use organics_data::idx::{self, Compression, IdxArray, IdxData};
//! use std::path::Path;
//!
//! let array = IdxArray::new(vec![2, 3], IdxData::I16(vec![-3, -2, -1, 0, 1, 2]));
//! for compression in [Compression::Raw, Compression::Gzip] {
//!     let bytes = idx::encode(&array, compression);
//!     let back = idx::decode(&bytes, Path::new("example.idx")).unwrap();
//!     assert_eq!(back, array);
//! }
//! ```

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::error::DataError;

/// The two magic bytes that open a gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Upper bound on the buffer reserved up front from a header's claim; the rest grows with the
/// bytes actually read, so a lying header cannot make us allocate gigabytes.
const MAX_RESERVE: u64 = 64 << 20;

/// The element type of an IDX array (the third byte of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum IdxType {
    /// Unsigned byte, code `0x08`.
    U8,
    /// Signed byte, code `0x09`.
    I8,
    /// Big-endian 16-bit signed integer, code `0x0B`.
    I16,
    /// Big-endian 32-bit signed integer, code `0x0C`.
    I32,
    /// Big-endian IEEE-754 single, code `0x0D`.
    F32,
    /// Big-endian IEEE-754 double, code `0x0E`.
    F64,
}

impl IdxType {
    /// Every element type, in code order.
    pub const ALL: [IdxType; 6] = [
        IdxType::U8,
        IdxType::I8,
        IdxType::I16,
        IdxType::I32,
        IdxType::F32,
        IdxType::F64,
    ];

    /// The type's code in the IDX header.
    pub fn code(self) -> u8 {
        match self {
            IdxType::U8 => 0x08,
            IdxType::I8 => 0x09,
            IdxType::I16 => 0x0B,
            IdxType::I32 => 0x0C,
            IdxType::F32 => 0x0D,
            IdxType::F64 => 0x0E,
        }
    }

    /// The type with header code `code`, if IDX defines one.
    pub fn from_code(code: u8) -> Option<IdxType> {
        IdxType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            IdxType::U8 | IdxType::I8 => 1,
            IdxType::I16 => 2,
            IdxType::I32 | IdxType::F32 => 4,
            IdxType::F64 => 8,
        }
    }
}

impl fmt::Display for IdxType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdxType::U8 => "u8",
            IdxType::I8 => "i8",
            IdxType::I16 => "i16",
            IdxType::I32 => "i32",
            IdxType::F32 => "f32",
            IdxType::F64 => "f64",
        })
    }
}

/// The elements of an IDX array, in row-major order, in their stored type.
#[derive(Debug, Clone, PartialEq)]
pub enum IdxData {
    /// `u8` elements.
    U8(Vec<u8>),
    /// `i8` elements.
    I8(Vec<i8>),
    /// `i16` elements.
    I16(Vec<i16>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
}

impl IdxData {
    /// The element type.
    pub fn element_type(&self) -> IdxType {
        match self {
            IdxData::U8(_) => IdxType::U8,
            IdxData::I8(_) => IdxType::I8,
            IdxData::I16(_) => IdxType::I16,
            IdxData::I32(_) => IdxType::I32,
            IdxData::F32(_) => IdxType::F32,
            IdxData::F64(_) => IdxType::F64,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            IdxData::U8(v) => v.len(),
            IdxData::I8(v) => v.len(),
            IdxData::I16(v) => v.len(),
            IdxData::I32(v) => v.len(),
            IdxData::F32(v) => v.len(),
            IdxData::F64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes big-endian `bytes` (whose length is a multiple of `ty.size()`).
    fn from_be_bytes(ty: IdxType, bytes: Vec<u8>) -> IdxData {
        fn conv<const N: usize, T>(bytes: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
            bytes
                .chunks_exact(N)
                .map(|c| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(c);
                    f(a)
                })
                .collect()
        }
        match ty {
            IdxType::U8 => IdxData::U8(bytes),
            IdxType::I8 => IdxData::I8(bytes.iter().map(|&b| b as i8).collect()),
            IdxType::I16 => IdxData::I16(conv(&bytes, i16::from_be_bytes)),
            IdxType::I32 => IdxData::I32(conv(&bytes, i32::from_be_bytes)),
            IdxType::F32 => IdxData::F32(conv(&bytes, f32::from_be_bytes)),
            IdxType::F64 => IdxData::F64(conv(&bytes, f64::from_be_bytes)),
        }
    }

    /// Appends the elements, big-endian, to `out`.
    fn write_be_bytes(&self, out: &mut Vec<u8>) {
        match self {
            IdxData::U8(v) => out.extend_from_slice(v),
            IdxData::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
            IdxData::I16(v) => v.iter().for_each(|x| out.extend(x.to_be_bytes())),
            IdxData::I32(v) => v.iter().for_each(|x| out.extend(x.to_be_bytes())),
            IdxData::F32(v) => v.iter().for_each(|x| out.extend(x.to_be_bytes())),
            IdxData::F64(v) => v.iter().for_each(|x| out.extend(x.to_be_bytes())),
        }
    }
}

/// A dense array read from, or to be written to, an IDX file.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    dims: Vec<usize>,
    data: IdxData,
}

impl IdxArray {
    /// An array of shape `dims` holding `data` in row-major order.
    ///
    /// # Panics
    /// If the product of `dims` differs from `data.len()`, if there are more than 255
    /// dimensions, or if a dimension exceeds `u32::MAX` (IDX cannot store it). These are bugs
    /// in the caller, not data errors.
    #[track_caller]
    pub fn new(dims: Vec<usize>, data: IdxData) -> IdxArray {
        assert!(dims.len() <= 255, "IDX rank {} exceeds 255", dims.len());
        assert!(
            dims.iter().all(|&d| u32::try_from(d).is_ok()),
            "IDX dimension in {dims:?} exceeds u32::MAX"
        );
        let product = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        assert_eq!(
            product,
            Some(data.len()),
            "IDX dimensions {dims:?} do not match {} elements",
            data.len()
        );
        IdxArray { dims, data }
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The elements.
    pub fn data(&self) -> &IdxData {
        &self.data
    }

    /// The element type.
    pub fn element_type(&self) -> IdxType {
        self.data.element_type()
    }

    /// Splits into dimensions and elements.
    pub fn into_parts(self) -> (Vec<usize>, IdxData) {
        (self.dims, self.data)
    }
}

/// Whether [`encode`] and [`write()`] gzip their output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain IDX bytes.
    Raw,
    /// IDX bytes inside a gzip stream (as the canonical mirrors serve them).
    Gzip,
}

/// Reads the IDX file at `path`, decompressing it first if it starts with the gzip magic.
pub fn read(path: &Path) -> Result<IdxArray, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    from_reader(BufReader::new(file), path)
}

/// Decodes IDX `bytes` (raw or gzip); `file` names the source in errors.
pub fn decode(bytes: &[u8], file: &Path) -> Result<IdxArray, DataError> {
    from_reader(bytes, file)
}

/// Decodes an IDX stream (raw or gzip) from `reader`; `file` names the source in errors.
pub fn from_reader<R: Read>(mut reader: R, file: &Path) -> Result<IdxArray, DataError> {
    let mut head = [0u8; 2];
    let n = read_up_to(&mut reader, &mut head).map_err(|e| DataError::io(file, e))?;
    let stream = (&head[..n]).chain(reader);
    if n == 2 && head == GZIP_MAGIC {
        parse(MultiGzDecoder::new(stream), file, |file, e| {
            DataError::Gzip {
                file: file.to_path_buf(),
                source: e,
            }
        })
    } else {
        parse(stream, file, |file, e| DataError::io(file, e))
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn parse<R: Read>(
    mut r: R,
    file: &Path,
    io_err: fn(&Path, io::Error) -> DataError,
) -> Result<IdxArray, DataError> {
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut r, &mut magic).map_err(|e| io_err(file, e))?;
    if n < 4 {
        return Err(DataError::Truncated {
            file: file.to_path_buf(),
            part: "magic number",
            expected: 4,
            found: n as u64,
        });
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::WrongMagic {
            file: file.to_path_buf(),
            found: magic,
        });
    }
    let ty = IdxType::from_code(magic[2]).ok_or(DataError::UnknownElementType {
        file: file.to_path_buf(),
        code: magic[2],
    })?;
    let rank = usize::from(magic[3]);
    let mut dim_bytes = vec![0u8; 4 * rank];
    let n = read_up_to(&mut r, &mut dim_bytes).map_err(|e| io_err(file, e))?;
    if n < dim_bytes.len() {
        return Err(DataError::Truncated {
            file: file.to_path_buf(),
            part: "dimension list",
            expected: dim_bytes.len() as u64,
            found: n as u64,
        });
    }
    let raw_dims: Vec<u32> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let too_large = || DataError::DimensionsTooLarge {
        file: file.to_path_buf(),
        dims: raw_dims.clone(),
        element: ty,
    };
    let dims: Vec<usize> = raw_dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| too_large())?;
    let expected_bytes = dims
        .iter()
        .try_fold(ty.size(), |acc, &d| acc.checked_mul(d))
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(too_large)?;

    let mut bytes = Vec::with_capacity(
        usize::try_from(expected_bytes.min(MAX_RESERVE)).unwrap_or(0), // bounded reserve
    );
    (&mut r)
        .take(expected_bytes)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(file, e))?;
    let found = bytes.len() as u64;
    if found < expected_bytes {
        return Err(DataError::Truncated {
            file: file.to_path_buf(),
            part: "data",
            expected: expected_bytes,
            found,
        });
    }
    let extra = io::copy(&mut r, &mut io::sink()).map_err(|e| io_err(file, e))?;
    if extra > 0 {
        return Err(DataError::TrailingBytes {
            file: file.to_path_buf(),
            dims,
            expected: expected_bytes,
            found: expected_bytes + extra,
        });
    }
    Ok(IdxArray {
        dims,
        data: IdxData::from_be_bytes(ty, bytes),
    })
}

/// Encodes `array` as IDX bytes, gzipped if `compression` says so.
pub fn encode(array: &IdxArray, compression: Compression) -> Vec<u8> {
    let ty = array.element_type();
    let mut out = Vec::with_capacity(4 + 4 * array.dims.len() + array.data.len() * ty.size());
    // `IdxArray::new` guarantees rank <= 255 and every dimension fits in u32.
    out.extend([0, 0, ty.code(), array.dims.len() as u8]);
    for &d in &array.dims {
        out.extend((d as u32).to_be_bytes());
    }
    array.data.write_be_bytes(&mut out);
    match compression {
        Compression::Raw => out,
        Compression::Gzip => {
            let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
            // Writing into a Vec cannot fail.
            enc.write_all(&out).expect("in-memory gzip write");
            enc.finish().expect("in-memory gzip finish")
        }
    }
}

/// Writes `array` to `path` as an IDX file.
pub fn write(path: &Path, array: &IdxArray, compression: Compression) -> Result<(), DataError> {
    std::fs::write(path, encode(array, compression)).map_err(|e| DataError::io(path, e))
}
