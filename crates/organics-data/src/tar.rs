//! A minimal streaming reader for tar archives (the format inside an npm `.tgz`).
//!
//! An archive is a sequence of 512-byte headers, each followed by the entry's data padded with
//! zeros to a multiple of 512 bytes, and ends with zero blocks. From a header we read the name
//! (bytes 0..100, prefixed by the ustar `prefix` field at 345..500), the size (octal at
//! 124..136, or base-256 when its top bit is set), the checksum (octal at 148..156: the byte sum
//! of the header with the checksum field read as spaces) and the type flag (byte 156). GNU long
//! names (`L`) and pax `path=` records (`x`) override the next entry's name; other entry kinds
//! are skipped. Only regular files are handed to the caller.

use std::io::{self, Read};
use std::path::Path;

use crate::error::DataError;

const BLOCK: u64 = 512;
/// Longest GNU long-name or pax header we accept (bytes).
const MAX_META: u64 = 1 << 16;

fn corrupt(archive: &Path, offset: u64, problem: &'static str) -> DataError {
    DataError::TarCorrupt {
        archive: archive.to_path_buf(),
        offset,
        problem,
    }
}

fn parse_number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // Base-256: big-endian two's complement with the top bit as a marker.
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ');
    let mut v: u64 = 0;
    let mut any = false;
    for b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
        any = true;
    }
    any.then_some(v)
}

fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Reads exactly `n` bytes into a vector, or reports how many there were.
fn read_n<R: Read>(r: &mut R, n: u64) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.by_ref().take(n).read_to_end(&mut v)?;
    Ok(v)
}

/// Calls `visit(name, contents)` for every regular file in the tar stream `reader`, in
/// archive order. `contents` yields exactly the entry's bytes; whatever `visit` leaves unread is
/// skipped. `archive` names the archive in errors; `io_err` wraps read errors (so that a
/// gzip-level failure is reported as such).
pub(crate) fn for_each_file<R: Read>(
    mut reader: R,
    archive: &Path,
    io_err: &dyn Fn(io::Error) -> DataError,
    mut visit: impl FnMut(&str, &mut dyn Read) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let mut offset: u64 = 0;
    let mut pending_name: Option<String> = None;
    loop {
        let mut header = [0u8; BLOCK as usize];
        let got = read_n(&mut reader, BLOCK).map_err(io_err)?;
        if got.is_empty() {
            return Ok(()); // end of stream without the closing zero blocks: tolerated
        }
        if got.len() < header.len() {
            return Err(corrupt(archive, offset, "truncated header"));
        }
        header.copy_from_slice(&got);
        if header.iter().all(|&b| b == 0) {
            return Ok(());
        }
        let stored_sum =
            parse_number(&header[148..156]).ok_or_else(|| corrupt(archive, offset, "checksum"))?;
        let sum: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    u64::from(b' ')
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if sum != stored_sum {
            return Err(corrupt(archive, offset, "checksum"));
        }
        let size = parse_number(&header[124..136])
            .ok_or_else(|| corrupt(archive, offset, "size field"))?;
        let padded = size
            .checked_next_multiple_of(BLOCK)
            .ok_or_else(|| corrupt(archive, offset, "size field"))?;
        let mut name = c_string(&header[..100]);
        if &header[257..262] == b"ustar" {
            let prefix = c_string(&header[345..500]);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        let entry_offset = offset;
        offset += BLOCK;
        let mut data = (&mut reader).take(size);
        match header[156] {
            b'0' | 0 | b'7' => {
                let name = pending_name.take().unwrap_or(name);
                visit(&name, &mut data)?;
            }
            b'L' if size <= MAX_META => {
                let raw = read_n(&mut data, size).map_err(io_err)?;
                pending_name = Some(c_string(&raw));
            }
            b'x' if size <= MAX_META => {
                let raw = read_n(&mut data, size).map_err(io_err)?;
                if let Some(path) = pax_path(&raw) {
                    pending_name = Some(path);
                }
            }
            _ => {}
        }
        // Skip what the visitor left, then the padding; a short skip means a truncated entry.
        io::copy(&mut data, &mut io::sink()).map_err(io_err)?;
        let short = data.limit();
        let pad = padded - size;
        let skipped = io::copy(&mut (&mut reader).take(pad), &mut io::sink()).map_err(io_err)?;
        if short != 0 || skipped != pad {
            return Err(corrupt(archive, entry_offset, "truncated entry"));
        }
        offset += padded;
    }
}

/// The `path` record of a pax extended header (`"<len> path=<value>\n"` records).
fn pax_path(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    text.lines().find_map(|line| {
        let (_, record) = line.split_once(' ')?;
        record.strip_prefix("path=").map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header for a regular file `name` of `size` bytes.
    fn header(name: &str, size: u64, flag: u8) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = flag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn archive(entries: &[(&str, &[u8], u8)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data, flag) in entries {
            out.extend(header(name, data.len() as u64, *flag));
            out.extend(*data);
            out.resize(out.len().next_multiple_of(512), 0);
        }
        out.extend([0u8; 1024]);
        out
    }

    fn collect(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, DataError> {
        let mut seen = Vec::new();
        for_each_file(
            bytes,
            Path::new("t.tar"),
            &|e| DataError::io("t.tar", e),
            |name, r| {
                let mut v = Vec::new();
                r.read_to_end(&mut v)
                    .map_err(|e| DataError::io("t.tar", e))?;
                seen.push((name.to_string(), v));
                Ok(())
            },
        )?;
        Ok(seen)
    }

    #[test]
    fn reads_files_skips_directories_and_honours_long_names() {
        let long = "package/".to_string() + &"d/".repeat(60) + "file";
        let bytes = archive(&[
            ("package/", b"", b'5'),
            ("package/a.txt", b"hello", b'0'),
            ("././@LongLink", format!("{long}\0").as_bytes(), b'L'),
            ("truncated-name", &[7u8; 600], b'0'),
        ]);
        let files = collect(&bytes).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0], ("package/a.txt".into(), b"hello".to_vec()));
        assert_eq!(files[1].0, long);
        assert_eq!(files[1].1, vec![7u8; 600]);
    }

    #[test]
    fn corrupt_checksum_and_truncation_are_errors() {
        let mut bytes = archive(&[("a", b"abc", b'0')]);
        bytes[0] = b'b';
        assert!(matches!(
            collect(&bytes),
            Err(DataError::TarCorrupt {
                problem: "checksum",
                ..
            })
        ));
        let bytes = archive(&[("a", &[1u8; 1000], b'0')]);
        assert!(matches!(
            collect(&bytes[..700]),
            Err(DataError::TarCorrupt {
                problem: "truncated entry",
                ..
            })
        ));
        assert!(matches!(
            collect(&bytes[..100]),
            Err(DataError::TarCorrupt {
                problem: "truncated header",
                ..
            })
        ));
    }

    #[test]
    fn numbers_parse_in_octal_and_base_256() {
        assert_eq!(parse_number(b"0000012\0"), Some(10));
        assert_eq!(parse_number(b"  12 \0"), Some(10));
        assert_eq!(parse_number(&[0x80, 0, 0, 1, 0]), Some(256));
        assert_eq!(parse_number(b"89"), None);
        assert_eq!(parse_number(b"\0\0"), None);
    }
}
