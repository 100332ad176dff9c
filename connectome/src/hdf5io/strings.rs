//! Fixed-length HDF5 strings of a width chosen at run time (format `connectome/2`).
//!
//! HDF5 fixed-length strings live in the dataset's own (checksummed) chunks; variable-length strings are
//! pointers into the file's global heap, which libhdf5 follows without any check, so a damaged pointer crashes
//! the reader (SIGSEGV in `H5HG_read`). The `hdf5` crate types fixed-length strings by a compile-time
//! capacity, so widths (bytes) are rounded up to 8, 16, 32, 64, 128, 256, 1,024, 4,096, 16,384 or 65,536 and
//! [`with_width!`] picks the matching type.

use std::str::FromStr;

use hdf5::H5Type;
use hdf5::types::{FixedAscii, FixedUnicode};

/// The longest string (bytes of UTF-8) a file may hold.
pub const MAX_STRING_BYTES: usize = 65536;

/// Runs `$body` with the constant `$N` set to the width of [`WIDTHS`] that holds `$w` bytes, or evaluates
/// `$else` when `$w` exceeds [`MAX_STRING_BYTES`].
macro_rules! with_width {
    ($w:expr, $N:ident => $body:expr, $else:expr) => {
        match $w {
            0..=8 => {
                const $N: usize = 8;
                $body
            }
            9..=16 => {
                const $N: usize = 16;
                $body
            }
            17..=32 => {
                const $N: usize = 32;
                $body
            }
            33..=64 => {
                const $N: usize = 64;
                $body
            }
            65..=128 => {
                const $N: usize = 128;
                $body
            }
            129..=256 => {
                const $N: usize = 256;
                $body
            }
            257..=1024 => {
                const $N: usize = 1024;
                $body
            }
            1025..=4096 => {
                const $N: usize = 4096;
                $body
            }
            4097..=16384 => {
                const $N: usize = 16384;
                $body
            }
            16385..=65536 => {
                const $N: usize = 65536;
                $body
            }
            _ => $else,
        }
    };
}
pub(crate) use with_width;

/// A fixed-length HDF5 string type whose bytes can be read back.
pub trait FixedString: H5Type {
    /// The stored bytes without the NUL padding.
    fn bytes(&self) -> &[u8];
}

impl<const N: usize> FixedString for FixedUnicode<N> {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<const N: usize> FixedString for FixedAscii<N> {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

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

/// The stored bytes as text; `what` names the value for the error.
pub fn text(bytes: &[u8], what: impl FnOnce() -> String) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|e| format!("{} is not valid UTF-8 ({e})", what()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_round_up_and_cover_the_maximum() {
        let w = |n: usize| with_width!(n, N => Some(N), None);
        assert_eq!(w(0), Some(8));
        assert_eq!(w(8), Some(8));
        assert_eq!(w(9), Some(16));
        assert_eq!(w(300), Some(1024));
        assert_eq!(w(MAX_STRING_BYTES), Some(MAX_STRING_BYTES));
        assert_eq!(w(MAX_STRING_BYTES + 1), None);
        let widths = [8, 16, 32, 64, 128, 256, 1024, 4096, 16384, 65536];
        assert!(widths.iter().all(|&x| w(x) == Some(x)));
    }

    #[test]
    fn nul_and_overlong_strings_are_refused() {
        assert!(fixed::<8>("a\0b").unwrap_err().contains("NUL"));
        assert!(fixed::<8>("123456789").is_err());
        assert_eq!(fixed::<8>("αβ").unwrap().bytes(), "αβ".as_bytes());
        assert_eq!(width_for(&["ok", "a\0"]).unwrap_err().0, 1);
        assert_eq!(width_for(&["ok", "three"]).unwrap(), 5);
        assert!(text(&[0xff, 0x41], || "x[0]".into()).unwrap_err().contains("x[0] is not valid UTF-8"));
    }
}
