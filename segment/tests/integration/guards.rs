//! Resource guards on HDF5 input (issue 20): a volume whose declared extent is huge (chunked, never written,
//! so cheap on disk) is refused with the estimate before anything is read or allocated — by the whole-run
//! check `neurotwin segment` makes from the dataset's shape, and by every whole-volume read — instead of
//! aborting with "memory allocation of … bytes failed". (The CLI test with a Zarr store is in the root
//! crate's `tests/reliability/guards.rs`; the root crate has no HDF5 writer to make this file.)

use neurotwin_io::budget::{Limits, default_limits, set_limits};
use neurotwin_segment::guards::{Inputs, check_pipeline};
use neurotwin_segment::io::{read_boundary, read_labels, read_raw, volume_shape};
use neurotwin_segment::pipeline::PipelineConfig;

/// An HDF5 file with an unwritten chunked dataset `volumes/raw` of type `T` and the given shape.
fn declared<T: hdf5::H5Type>(dir: &std::path::Path, shape: [usize; 3]) -> std::path::PathBuf {
    let p = dir.join("huge.h5");
    let f = hdf5::File::create(&p).unwrap();
    f.create_group("volumes").unwrap();
    f.new_dataset::<T>().chunk([16, 64, 64]).shape(shape).create("volumes/raw").unwrap();
    p
}

#[test]
fn huge_declared_volumes_are_refused_before_reading() {
    // At most 16 GiB, so that the outcome does not depend on this machine's memory. The limits are
    // process-wide and the other tests of this binary run under them too: they need far less, and this only
    // ever lowers the default.
    let d = default_limits();
    set_limits(Limits { max_memory_bytes: d.max_memory_bytes.min(16 << 30), memory_source: "test", ..d });
    let dir = tempfile::tempdir().unwrap();
    for shape in [[100_000, 100_000, 100_000], [2000, 4000, 4000]] {
        let p = declared::<u8>(dir.path(), shape);
        assert_eq!(volume_shape(&p, "volumes/raw").unwrap(), shape);
        let cfg = PipelineConfig { block: Some([64, 256, 256]), ..Default::default() };
        let e = check_pipeline(shape, [10.0; 3], &cfg, Inputs::default()).unwrap_err().to_string();
        assert!(e.contains(&format!("{shape:?}")) && e.contains("needs about") && e.contains("--max-memory"), "{e}");
        let e = read_raw(&p, "volumes/raw", [10.0; 3]).unwrap_err().to_string();
        assert!(e.contains("huge.h5") && e.contains("volumes/raw") && e.contains("needs about"), "{e}");
        let e = read_labels(&p, "volumes/raw", [10.0; 3]).unwrap_err().to_string();
        assert!(e.contains("needs about"), "{e}");
        let e = read_boundary(&p, "volumes/raw", [10.0; 3]).unwrap_err().to_string();
        assert!(e.contains("needs about"), "{e}");
    }
    // A small volume passes both checks.
    let small = [16, 64, 64];
    assert!(check_pipeline(small, [10.0; 3], &PipelineConfig::default(), Inputs::default()).is_ok());
}
