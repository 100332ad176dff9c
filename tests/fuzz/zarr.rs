//! Target `zarr`: a small Zarr store (v3 arrays written by `segment::zarr::write_array`, a v2 array written by
//! hand) with one metadata file (`zarr.json`, `.zarray`, `.zattrs`, `.zgroup`) or chunk mutated, read with
//! the segment crate's Zarr readers (raw, labels, boundary) in this process.

use std::path::{Path, PathBuf};

use neurotwin_segment::zarr::{ZarrRaw, read_boundary, read_labels, write_array};
use neurotwin_segment::{RawSource, Volume};

use super::engine::{Shape, mutate_from};
use super::harness::fuzz_in_process;

const SHAPE: [usize; 3] = [4, 6, 5];
const CHUNK: [usize; 3] = [2, 3, 5];

fn vol<T>(data: Vec<T>) -> Volume<T> {
    Volume { shape: SHAPE, voxel_nm: [40.0, 4.0, 4.0], data }
}

/// The store: v3 `volumes/raw` (u8), `volumes/labels` (u32), `volumes/boundary` (f32), v2 `v2/labels` (u16).
fn write_store(store: &Path) {
    let n: usize = SHAPE.iter().product();
    write_array(store, "volumes/raw", &vol((0..n).map(|i| (i * 7 % 251) as u8).collect()), CHUNK).unwrap();
    write_array(store, "volumes/labels", &vol((0..n as u32).map(|i| i / 7).collect()), CHUNK).unwrap();
    write_array(store, "volumes/boundary", &vol((0..n).map(|i| (i % 10) as f32 / 10.0).collect()), CHUNK).unwrap();
    let d = store.join("v2/labels");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(store.join("v2/.zgroup"), r#"{"zarr_format":2}"#).unwrap();
    std::fs::write(
        d.join(".zarray"),
        format!(
            r#"{{"zarr_format":2,"shape":{SHAPE:?},"chunks":{SHAPE:?},"dtype":"<u2","compressor":null,"fill_value":0,"order":"C","filters":null}}"#
        ),
    )
    .unwrap();
    std::fs::write(d.join(".zattrs"), r#"{"voxel_size":[40.0,4.0,4.0]}"#).unwrap();
    let bytes: Vec<u8> = (0..n as u16).flat_map(|i| (i / 5).to_le_bytes()).collect();
    std::fs::write(d.join("0.0.0"), bytes).unwrap();
}

/// Every file of the store, relative, sorted.
fn files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel)).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let r = rel.join(e.file_name());
        if e.path().is_dir() { files(root, &r, out) } else { out.push(r) }
    }
}

fn is_metadata(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n.to_string_lossy().ends_with("json") || n.to_string_lossy().starts_with(".z"))
}

/// Reads every array of the store (errors expected); "all read" when all four arrays were read.
fn read_all(store: &Path) -> &'static str {
    let raw = ZarrRaw::open(store, "volumes/raw", [1.0; 3]).and_then(|raw| {
        let s = raw.shape();
        raw.read([0; 3], [s[0].min(2), s[1].min(3), s[2]])?;
        raw.read([0; 3], s)
    });
    let labels = read_labels(store, "volumes/labels", [1.0; 3]);
    let v2 = read_labels(store, "v2/labels", [1.0; 3]);
    let boundary = read_boundary(store, "volumes/boundary", [1.0; 3]);
    if raw.is_ok() && labels.is_ok() && v2.is_ok() && boundary.is_ok() { "all read" } else { "an error" }
}

#[test]
fn zarr() {
    super::set_fuzz_limits();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.zarr");
    write_store(&store);
    let mut all = Vec::new();
    files(&store, Path::new(""), &mut all);
    let (meta, chunks): (Vec<PathBuf>, Vec<PathBuf>) = all.into_iter().partition(|p| is_metadata(p));
    assert!(meta.len() >= 5 && !chunks.is_empty(), "store layout: {meta:?} {chunks:?}");
    let read = |ps: &[PathBuf]| -> Vec<Vec<u8>> { ps.iter().map(|p| std::fs::read(store.join(p)).unwrap()).collect() };
    let (meta_bytes, chunk_bytes) = (read(&meta), read(&chunks));
    let chosen = std::cell::RefCell::new(PathBuf::new());
    let dirty = std::cell::RefCell::new(None::<(PathBuf, Vec<u8>)>);
    fuzz_in_process(
        "zarr",
        "bin",
        "a file of a small Zarr store",
        |rng| {
            // Three cases in four mutate metadata.
            let (names, seeds, shape) = if rng.chance(3, 4) {
                (&meta, &meta_bytes, Shape::Text)
            } else {
                (&chunks, &chunk_bytes, Shape::Binary)
            };
            let k = rng.below(names.len());
            *chosen.borrow_mut() = names[k].clone();
            let mut m = mutate_from(rng, &seeds[k], seeds, shape);
            m.note = format!("replaces {}", names[k].display());
            m
        },
        |_, bytes| {
            // A case that panicked left its file mutated: put it back first.
            if let Some((p, original)) = dirty.borrow_mut().take() {
                std::fs::write(store.join(p), original).unwrap();
            }
            let rel = chosen.borrow().clone();
            let original = std::fs::read(store.join(&rel)).unwrap();
            std::fs::write(store.join(&rel), bytes).unwrap();
            *dirty.borrow_mut() = Some((rel, original));
            read_all(&store)
        },
    );
}

/// Found by this target: a chunk shape whose element count overflows u64 (`chunk_shape = [2, 3,
/// 18446744073709551615]`) panicked with "attempt to multiply with overflow" inside zarrs while reading;
/// now the reader refuses the chunk size before zarrs computes it.
#[test]
fn zarr_huge_chunk_shape_is_an_error() {
    super::set_fuzz_limits();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.zarr");
    write_store(&store);
    let meta = store.join("volumes/raw/zarr.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    v["chunk_grid"]["configuration"]["chunk_shape"][2] = u64::MAX.into();
    std::fs::write(&meta, v.to_string()).unwrap();
    let r = ZarrRaw::open(&store, "volumes/raw", [1.0; 3]).and_then(|z| z.read([0; 3], z.shape()));
    let Err(e) = r else { panic!("a huge chunk must be refused") };
    let e = e.to_string();
    assert!(e.contains("volumes/raw") && e.contains("chunk"), "{e}");
}
