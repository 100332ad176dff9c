//! Fixed-length HDF5 strings of a width chosen at run time (format `connectome/2`).
//!
//! HDF5 fixed-length strings live in the dataset's own (checksummed) chunks; variable-length strings are
//! pointers into the file's global heap, which libhdf5 follows without any check, so a damaged pointer crashes
//! the reader (SIGSEGV in `H5HG_read`). The `hdf5` crate types fixed-length strings by a compile-time
//! capacity, so widths (bytes) are rounded up to 8, 16, 32, 64, 128, 256, 1,024, 4,096, 16,384 or 65,536 and
//! [`with_width!`] (shared with the reader, [`neurotwin_io::h5`]) picks the matching type.

use std::str::FromStr;

use hdf5::types::FixedUnicode;
pub(crate) use neurotwin_io::h5::{MAX_STRING_BYTES, with_width};

/// `s` as a UTF-8 fixed-length string of capacity `N`; refuses a NUL (it would end the string) and a string
/// longer than `N` bytes.
pub fn fixed<const N: usize>(s: &str) -> Result<FixedUnicode<N>, String> {
    if s.contains('\0') {
        return Err(format!("string {s:?} contains a NUL character, which the file format cannot store"));
    }
    FixedUnicode::<N>::from_str(s).map_err(|_| format!("string of {} bytes is longer than {N} bytes", s.len()))
}

/// Checks that every value can be stored and returns the width to store them with (bytes), or the index of
/// the first value that cannot be stored and why.
pub fn width_for(values: &[&str]) -> Result<usize, (usize, String)> {
    for (k, s) in values.iter().enumerate() {
        if s.contains('\0') {
            return Err((k, format!("string {s:?} contains a NUL character, which the file format cannot store")));
        }
        if s.len() > MAX_STRING_BYTES {
            return Err((
                k,
                format!("a string of {} bytes is longer than the {MAX_STRING_BYTES} bytes allowed", s.len()),
            ));
        }
    }
    Ok(values.iter().map(|s| s.len()).max().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_overlong_strings_are_refused() {
        assert!(fixed::<8>("a\0b").unwrap_err().contains("NUL"));
        assert!(fixed::<8>("123456789").is_err());
        assert_eq!(fixed::<8>("αβ").unwrap().as_bytes(), "αβ".as_bytes());
        assert_eq!(width_for(&["ok", "a\0"]).unwrap_err().0, 1);
        assert_eq!(width_for(&["ok", "three"]).unwrap(), 5);
    }
}
