//! HDF5 input/output: CREMI round trip, plain datasets, and clear errors for bad inputs.

use hdf5::File;
use neurotwin_segment::io::{
    CLEFTS, Data, NEURON_IDS, PartnerSites, RAW, read_boundary, read_labels, read_partner_sites, read_raw,
    write_volumes,
};
use neurotwin_segment::pipeline::{PipelineConfig, run};
use neurotwin_segment::volume::Volume;

fn small_raw() -> Volume<u8> {
    let data: Vec<u8> = (0..4 * 5 * 6).map(|i| (i * 7 % 256) as u8).collect();
    Volume::from_vec([4, 5, 6], [40.0, 4.0, 4.0], data).unwrap()
}

#[test]
fn cremi_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.h5");
    let raw = small_raw();
    let labels = raw.map(|&v| v as u64 + 1);
    let clefts = raw.map(|_| u64::MAX);
    let sites = vec![PartnerSites { pre_nm: [1.0, 2.0, 3.0], post_nm: [4.0, 5.0, 6.0] }];
    write_volumes(
        &p,
        &[(RAW, Data::U8(&raw)), (NEURON_IDS, Data::U64(&labels)), (CLEFTS, Data::U64(&clefts))],
        Some(&sites),
    )
    .unwrap();
    let (r, found) = read_raw(&p, RAW, [1.0; 3]).unwrap();
    assert!(found);
    assert_eq!(r, raw);
    assert_eq!(read_labels(&p, NEURON_IDS, [1.0; 3]).unwrap(), labels);
    assert_eq!(read_partner_sites(&p).unwrap().unwrap(), sites);
    // No temporary files are left next to the output.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

fn plain<T: hdf5::H5Type>(dir: &std::path::Path, name: &str, shape: &[usize], data: &[T]) -> std::path::PathBuf {
    let p = dir.join(name);
    let f = File::create(&p).unwrap();
    let ds = f.new_dataset::<T>().shape(shape.to_vec()).create("stack").unwrap();
    if !data.is_empty() {
        ds.write_raw(data).unwrap();
    }
    p
}

#[test]
fn plain_datasets_of_other_types() {
    let dir = tempfile::tempdir().unwrap();
    let p = plain(dir.path(), "gt.h5", &[2, 2, 2], &[0i32, 1, 2, 3, 4, 5, 6, 7]);
    let l = read_labels(&p, "stack", [10.0; 3]).unwrap();
    assert_eq!(l.data, (0..8).collect::<Vec<u64>>());
    assert_eq!(l.voxel_nm, [10.0; 3]);
    let p = plain(dir.path(), "b.h5", &[1, 2, 2], &[0.0f32, 0.5, 1.0, 0.25]);
    assert_eq!(read_boundary(&p, "stack", [1.0; 3]).unwrap().data, vec![0.0, 0.5, 1.0, 0.25]);
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Wrong dtype for raw.
    let p = plain(d, "f.h5", &[2, 2, 2], &[0.5f32; 8]);
    let e = read_raw(&p, "stack", [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("f.h5") && e.contains("`stack`") && e.contains("expected u8"), "{e}");
    // Wrong rank.
    let p = plain(d, "r2.h5", &[4, 4], &[1u8; 16]);
    let e = read_raw(&p, "stack", [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("rank 2") && e.contains("three-dimensional"), "{e}");
    // Missing dataset: names what the file holds.
    let e = read_raw(&p, RAW, [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("volumes/raw") && e.contains("missing") && e.contains("stack"), "{e}");
    // Zero-size volume.
    let p = plain::<u8>(d, "z.h5", &[0, 4, 4], &[]);
    let e = read_raw(&p, "stack", [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("is empty"), "{e}");
    // NaN in a boundary map.
    let p = plain(d, "nan.h5", &[1, 2, 2], &[0.1f32, f32::NAN, 0.2, 0.3]);
    let e = read_boundary(&p, "stack", [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("NaN") && e.contains("(z, y, x) = [0, 0, 1]") && e.contains("nan.h5"), "{e}");
    // Negative labels, float labels.
    let p = plain(d, "neg.h5", &[1, 1, 2], &[-1i32, 2]);
    let e = read_labels(&p, "stack", [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("negative"), "{e}");
    let p = plain(d, "fl.h5", &[1, 1, 2], &[1.0f64, 2.0]);
    let e = read_labels(&p, "stack", [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("expected an integer label type"), "{e}");
    // Not a file / not HDF5.
    let e = read_raw(d.join("absent.h5"), RAW, [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("file not found"), "{e}");
    std::fs::write(d.join("text.h5"), "hello").unwrap();
    let e = read_raw(d.join("text.h5"), RAW, [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("cannot open as HDF5"), "{e}");
    // A NaN boundary map handed to the pipeline directly.
    let raw = small_raw();
    let mut b = raw.map(|_| 0.5f32);
    b.data[7] = f32::NAN;
    let e = run(&raw, Some(b), None, &PipelineConfig::default(), "x", vec![]).unwrap_err().to_string();
    assert!(e.contains("NaN") && e.contains("[0, 1, 1]"), "{e}");
}
