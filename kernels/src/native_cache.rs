//! The on-disk cache of native builds (`generated::native_build`): a model's native code is compiled once per
//! machine, compiler and instruction set, not once per process (a compile takes about half a second; a
//! simulation of a small network may take less).
//!
//! Entries live in `$NEUROTWIN_CACHE_DIR` (set to an empty string: no cache), else `$XDG_CACHE_HOME/neurotwin`, else
//! `$HOME/.cache/neurotwin`, under `native/`: `<key>.so` and `<key>.txt`, the key a 128-bit hash of the text that
//! determines the library (source, flags, the compiler's `--version`). An entry is used only when its `.txt`
//! equals that text (so a hash collision or a damaged entry means a rebuild, never a wrong library); both files
//! are written to temporary names and renamed into place, so processes sharing the cache never see half a file.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// The cache folder (`native/` inside the user's cache).
pub struct NativeCache {
    dir: PathBuf,
}

impl NativeCache {
    /// The cache of this user, or `None` when no folder is configured (or `NEUROTWIN_CACHE_DIR` is empty).
    pub fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = match std::env::var_os("NEUROTWIN_CACHE_DIR") {
            Some(v) if v.is_empty() => return None,
            Some(v) => PathBuf::from(v),
            None => var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))?.join("neurotwin"),
        };
        Some(Self::at(root))
    }

    /// A cache rooted at `root` (entries in `root/native`).
    pub fn at(root: impl AsRef<Path>) -> Self {
        Self { dir: root.as_ref().join("native") }
    }

    /// The key of `text`: two 64-bit SipHashes (different prefixes) in hex.
    pub fn key(text: &str) -> String {
        let h = |salt: u8| {
            let mut s = std::collections::hash_map::DefaultHasher::new();
            salt.hash(&mut s);
            text.hash(&mut s);
            s.finish()
        };
        format!("{:016x}{:016x}", h(1), h(2))
    }

    /// The library of `text`, if cached.
    pub fn lookup(&self, text: &str) -> Option<PathBuf> {
        let key = Self::key(text);
        let recorded = std::fs::read_to_string(self.dir.join(format!("{key}.txt"))).ok()?;
        let lib = self.dir.join(format!("{key}.so"));
        (recorded == text && lib.is_file()).then_some(lib)
    }

    /// Keeps a copy of `lib`, built from `text`.
    pub fn store(&self, text: &str, lib: &Path) -> Result<(), String> {
        let key = Self::key(text);
        let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
        std::fs::create_dir_all(&self.dir).map_err(|e| err(&self.dir, e))?;
        let tmp = |ext: &str| self.dir.join(format!(".{key}.{}.{ext}", std::process::id()));
        // The library first: an entry counts once its text is in place.
        let (lib_tmp, txt_tmp) = (tmp("so"), tmp("txt"));
        std::fs::copy(lib, &lib_tmp).map_err(|e| err(&lib_tmp, e))?;
        std::fs::rename(&lib_tmp, self.dir.join(format!("{key}.so"))).map_err(|e| err(&lib_tmp, e))?;
        std::fs::write(&txt_tmp, text).map_err(|e| err(&txt_tmp, e))?;
        std::fs::rename(&txt_tmp, self.dir.join(format!("{key}.txt"))).map_err(|e| err(&txt_tmp, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry is found by its exact text only; a changed text (or a damaged record) misses.
    #[test]
    fn entries_are_found_by_their_exact_text() {
        let root = std::env::temp_dir().join(format!("neurotwin-cache-test-{}", std::process::id()));
        let cache = NativeCache::at(&root);
        let lib = root.join("lib.so");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(&lib, b"library bytes").unwrap();
        assert!(cache.lookup("source A").is_none());
        cache.store("source A", &lib).unwrap();
        let hit = cache.lookup("source A").expect("stored");
        assert_eq!(std::fs::read(hit).unwrap(), b"library bytes");
        assert!(cache.lookup("source B").is_none());
        assert_ne!(NativeCache::key("source A"), NativeCache::key("source B"));
        // A record that no longer matches its key's text is not trusted.
        let key = NativeCache::key("source A");
        std::fs::write(root.join("native").join(format!("{key}.txt")), "something else").unwrap();
        assert!(cache.lookup("source A").is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
