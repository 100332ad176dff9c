//! Every failure of the HDF5 reader is a located error, never a panic.

use std::path::{Path, PathBuf};

use hdf5::types::VarLenUnicode;
use neurotwin_connectome::hdf5io::{read_compiled, read_connectome, write_compiled, write_connectome};
use neurotwin_connectome::{CompileOptions, Connection, Connectome, ConnectomeError, Neuron, compile};

fn small() -> Connectome {
    Connectome {
        name: "small".into(),
        provenance: vec![],
        neurons: vec![Neuron::new(1, "a"), Neuron::new(2, "b"), Neuron::new(3, "c")],
        connections: vec![
            Connection::chemical(1, 2, 2.0),
            Connection::chemical(2, 3, 1.0),
            Connection::electrical(1, 3, 1.0),
        ],
    }
}

fn written(dir: &Path) -> PathBuf {
    let p = dir.join("c.h5");
    write_connectome(&p, &small()).unwrap();
    p
}

fn hdf5_msg(e: ConnectomeError) -> String {
    match e {
        ConnectomeError::Hdf5 { message, .. } => message,
        other => panic!("expected an Hdf5 error, got {other:?}"),
    }
}

fn format_msg(e: ConnectomeError, path: &Path) -> String {
    match e {
        ConnectomeError::Format { path: p, message } => {
            assert_eq!(p, path);
            message
        }
        other => panic!("expected a Format error, got {other:?}"),
    }
}

fn vlu(s: &str) -> VarLenUnicode {
    s.parse().unwrap()
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope.h5");
    let e = read_connectome(&p).unwrap_err();
    assert!(e.to_string().contains("nope.h5"), "{e}");
    assert!(hdf5_msg(e).contains("not found"));
    assert!(hdf5_msg(read_compiled(&p).unwrap_err()).contains("not found"));
}

#[test]
fn not_an_hdf5_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("text.h5");
    std::fs::write(&p, "pre,post\n1,2\n").unwrap();
    assert!(hdf5_msg(read_connectome(&p).unwrap_err()).contains("not an HDF5 file"));
    let q = dir.path().join("empty.h5");
    std::fs::write(&q, "").unwrap();
    assert!(hdf5_msg(read_connectome(&q).unwrap_err()).contains("not an HDF5 file"));
    // A truncated HDF5 file: signature present, content broken.
    let full = std::fs::read(written(dir.path())).unwrap();
    let t = dir.path().join("truncated.h5");
    std::fs::write(&t, &full[..full.len() / 3]).unwrap();
    assert!(read_connectome(&t).is_err());
}

#[test]
fn missing_or_wrong_format_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("other.h5");
    {
        let f = hdf5::File::create(&p).unwrap();
        f.new_dataset_builder().with_data(&[1u64, 2]).create("ids").unwrap();
    }
    let m = format_msg(read_connectome(&p).unwrap_err(), &p);
    assert!(m.contains("neurotwin_format") && m.contains("not a neurotwin"), "{m}");

    let p = written(dir.path());
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        f.delete_attr("neurotwin_format").unwrap();
        f.new_attr::<VarLenUnicode>().create("neurotwin_format").unwrap().write_scalar(&vlu("connectome/9")).unwrap();
    }
    let m = format_msg(read_connectome(&p).unwrap_err(), &p);
    assert!(m.contains("connectome/9") && m.contains("connectome/1"), "{m}");

    {
        let f = hdf5::File::open_rw(&p).unwrap();
        f.delete_attr("neurotwin_format").unwrap();
        f.new_attr::<u32>().create("neurotwin_format").unwrap().write_scalar(&1u32).unwrap();
    }
    let m = format_msg(read_connectome(&p).unwrap_err(), &p);
    assert!(m.contains("neurotwin_format") && m.contains("expected a string"), "{m}");
}

#[test]
fn missing_dataset_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for ds in ["connections/count", "neurons/region_table", "neurons/position", "provenance"] {
        let p = written(dir.path());
        hdf5::File::open_rw(&p).unwrap().unlink(ds).unwrap();
        let m = format_msg(read_connectome(&p).unwrap_err(), &p);
        assert_eq!(m, format!("missing dataset /{ds}"));
    }
    let p = written(dir.path());
    hdf5::File::open_rw(&p).unwrap().unlink("connections").unwrap();
    assert_eq!(format_msg(read_connectome(&p).unwrap_err(), &p), "missing group /connections");
}

#[test]
fn inconsistent_lengths_name_both_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        f.unlink("connections/weight").unwrap();
        f.group("connections").unwrap().new_dataset_builder().with_data(&[1.0f32; 2]).create("weight").unwrap();
    }
    let m = format_msg(read_connectome(&p).unwrap_err(), &p);
    assert!(m.contains("/connections/weight has 2") && m.contains("/connections/pre has 3"), "{m}");

    let p = written(dir.path());
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        f.unlink("neurons/name").unwrap();
        let names = [vlu("a"), vlu("b")];
        f.group("neurons").unwrap().new_dataset_builder().with_data(&names).create("name").unwrap();
    }
    let m = format_msg(read_connectome(&p).unwrap_err(), &p);
    assert!(m.contains("/neurons/name has 2") && m.contains("/neurons/id has 3"), "{m}");
}

#[test]
fn wrong_type_bad_code_and_invalid_content() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        f.unlink("neurons/id").unwrap();
        f.group("neurons").unwrap().new_dataset_builder().with_data(&[1.0f64, 2.0, 3.0]).create("id").unwrap();
    }
    let m = format_msg(read_connectome(&p).unwrap_err(), &p);
    assert!(m.contains("/neurons/id has type") && m.contains("expected"), "{m}");

    let p = written(dir.path());
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        f.unlink("connections/receptor").unwrap();
        f.group("connections")
            .unwrap()
            .new_dataset_builder()
            .with_data(&[0u32, 5, u32::MAX])
            .create("receptor")
            .unwrap();
    }
    let m = format_msg(read_connectome(&p).unwrap_err(), &p);
    assert!(m.contains("/connections/receptor[0] = 0") && m.contains("/connections/receptor_table"), "{m}");

    let p = written(dir.path());
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        f.unlink("connections/kind").unwrap();
        f.group("connections").unwrap().new_dataset_builder().with_data(&[0u8, 7, 1]).create("kind").unwrap();
    }
    let m = format_msg(read_connectome(&p).unwrap_err(), &p);
    assert!(m.contains("/connections/kind[1] = 7"), "{m}");

    let p = written(dir.path());
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        f.unlink("connections/post").unwrap();
        f.group("connections").unwrap().new_dataset_builder().with_data(&[2u64, 99, 3]).create("post").unwrap();
    }
    let m = format_msg(read_connectome(&p).unwrap_err(), &p);
    assert!(m.contains("invalid connectome") && m.contains("99"), "{m}");
}

#[test]
fn compiled_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = small();
    // A connectome file has no compiled network, and the other way round.
    let p = written(dir.path());
    let m = format_msg(read_compiled(&p).unwrap_err(), &p);
    assert!(m.contains("no /compiled group") && m.contains("connectome only"), "{m}");
    let net = compile(&c, &CompileOptions { gap_per_junction_ns: 1.0, ..Default::default() }).unwrap();
    let q = dir.path().join("net.h5");
    write_compiled(&q, &net).unwrap();
    let m = format_msg(read_connectome(&q).unwrap_err(), &q);
    assert!(m.contains("compiled network only"), "{m}");
    assert_eq!(read_compiled(&q).unwrap(), net);

    // A target out of range fails SynapseMatrix::check.
    {
        let f = hdf5::File::open_rw(&q).unwrap();
        f.unlink("compiled/chemical/targets").unwrap();
        f.group("compiled/chemical").unwrap().new_dataset_builder().with_data(&[1u32, 9]).create("targets").unwrap();
    }
    let m = format_msg(read_compiled(&q).unwrap_err(), &q);
    assert!(m.contains("/compiled/chemical is inconsistent") && m.contains("target index"), "{m}");

    // Weights of the wrong length name both datasets.
    write_compiled(&q, &net).unwrap();
    {
        let f = hdf5::File::open_rw(&q).unwrap();
        let g = f.group("compiled/chemical").unwrap();
        g.unlink("weight_index").unwrap();
        g.new_dataset_builder().with_data(&[0u16]).create("weight_index").unwrap();
    }
    let m = format_msg(read_compiled(&q).unwrap_err(), &q);
    assert!(
        m.contains("/compiled/chemical/weight_index has 1") && m.contains("/compiled/chemical/targets has 2"),
        "{m}"
    );

    // Gap partner out of range.
    write_compiled(&q, &net).unwrap();
    {
        let f = hdf5::File::open_rw(&q).unwrap();
        let g = f.group("compiled/gap").unwrap();
        g.unlink("partner").unwrap();
        g.new_dataset_builder().with_data(&[2u32, 5]).create("partner").unwrap();
    }
    let m = format_msg(read_compiled(&q).unwrap_err(), &q);
    assert!(m.contains("/compiled/gap is inconsistent"), "{m}");

    // Missing attribute.
    write_compiled(&q, &net).unwrap();
    hdf5::File::open_rw(&q).unwrap().group("compiled").unwrap().delete_attr("dt_ms").unwrap();
    let m = format_msg(read_compiled(&q).unwrap_err(), &q);
    assert!(m.contains("dt_ms") && m.contains("missing"), "{m}");

    // Neuron table of another size.
    write_compiled(&q, &net).unwrap();
    {
        let f = hdf5::File::open_rw(&q).unwrap();
        let g = f.group("compiled/chemical").unwrap();
        g.delete_attr("n_pre").unwrap();
        g.new_attr::<u32>().create("n_pre").unwrap().write_scalar(&2u32).unwrap();
    }
    assert!(read_compiled(&q).is_err());
}

#[test]
fn invalid_inputs_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.h5");
    let mut c = small();
    c.connections[0].weight = Some(f32::NAN);
    assert!(matches!(write_connectome(&p, &c), Err(ConnectomeError::Invalid(_))));
    let mut net = compile(&small(), &CompileOptions::default()).unwrap();
    net.chemical.targets[0] = 99;
    let m = format_msg(write_compiled(&p, &net).unwrap_err(), &p);
    assert!(m.contains("not written"), "{m}");
    assert!(!p.exists());
}
