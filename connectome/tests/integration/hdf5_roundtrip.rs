//! Round trips of the neurotwin HDF5 connectome file.

use neurotwin_connectome::hdf5io::{contents, read_compiled, read_connectome, write_compiled, write_connectome};
use neurotwin_connectome::{
    CompileOptions, Connection, Connectome, Neuron, SynapseKind, TransmitterMap, Weights, compile,
    hdf5io::write_connectome_and_compiled,
};

fn neuron(id: u64, name: &str) -> Neuron {
    Neuron::new(id, name)
}

/// A small connectome exercising every optional field and non-ASCII text.
fn sample() -> Connectome {
    let mut a = neuron(10, "AVAL");
    a.cell_type = "interneuron".into();
    a.transmitter = Some("ACh".into());
    a.position = Some([1.5, -2.0, 3.25]);
    a.region = Some("lateral ganglion".into());
    let mut b = neuron(20, "Ω-Neuron_β");
    b.transmitter = Some("GABA".into());
    b.position = Some([0.0, f32::NAN, 7.0]); // partly unknown position is kept
    let mut c = neuron(u64::MAX - 1, "神经元");
    c.cell_type = "моторный 🧠".into();
    c.transmitter = Some(String::new()); // Some("") differs from None
    c.region = Some("ganglion ventral".into());
    let d = neuron(0, ""); // unnamed, nothing known
    let mut conns = vec![
        Connection::chemical(10, 20, 3.0),
        Connection::chemical(20, 10, 2.5),
        Connection::electrical(10, u64::MAX - 1, 2.0),
        Connection::chemical(0, 10, 0.0),
    ];
    conns[0].weight = Some(-1.25);
    conns[0].transmitter = Some("acetylcholine".into());
    conns[0].receptor = Some("ACh".into());
    conns[0].delay_ms = Some(1.8);
    conns[0].confidence = Some(0.75);
    conns[1].transmitter = Some("GABA".into());
    conns[1].receptor = Some("GABA".into());
    conns[3].transmitter = Some("acetylcholine".into());
    conns[3].confidence = Some(0.0);
    Connectome {
        name: "sample — ünïcode".into(),
        provenance: vec!["Cook et al. 2019 (Nature 571:63)".into(), "hand-made ✓".into()],
        neurons: vec![a, b, c, d],
        connections: conns,
    }
}

/// NaN-aware comparison of neuron positions (PartialEq on f32 NaN is false).
fn same(a: &Connectome, b: &Connectome) {
    let strip = |c: &Connectome| {
        let mut c = c.clone();
        for n in &mut c.neurons {
            n.position = n.position.map(|p| p.map(|x| if x.is_nan() { -12345.0 } else { x }));
        }
        c
    };
    assert_eq!(strip(a), strip(b));
}

#[test]
fn connectome_round_trip_keeps_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.h5");
    let c = sample();
    write_connectome(&p, &c).unwrap();
    let back = read_connectome(&p).unwrap();
    same(&c, &back);
    assert!(back.neurons[1].position.unwrap()[1].is_nan());
    assert_eq!(back.neurons[3].position, None);
    assert_eq!(back.neurons[2].transmitter.as_deref(), Some(""));
    assert_eq!(back.neurons[3].transmitter, None);
    assert_eq!(back.connections[2].kind, SynapseKind::Electrical);

    let info = contents(&p).unwrap();
    assert_eq!((info.neurons, info.connections, info.compiled), (4, Some(4), false));
    assert_eq!(info.name, c.name);
    // Only the final file is left in the directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn empty_connectome_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.h5");
    let c = Connectome::default();
    write_connectome(&p, &c).unwrap();
    assert_eq!(read_connectome(&p).unwrap(), c);
}

#[test]
fn overwriting_replaces_the_file_and_a_failed_write_leaves_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.h5");
    write_connectome(&p, &Connectome::default()).unwrap();
    let c = sample();
    write_connectome(&p, &c).unwrap();
    same(&read_connectome(&p).unwrap(), &c);
    let before = std::fs::read(&p).unwrap();
    let mut bad = sample();
    bad.neurons[0].name = "nul\0inside".into();
    let e = write_connectome(&p, &bad).unwrap_err().to_string();
    assert!(e.contains("NUL") && e.contains("/neurons/name[0]"), "{e}");
    assert_eq!(std::fs::read(&p).unwrap(), before, "a failed write must not touch the existing file");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file left behind");
    // A new file that fails is never created.
    let q = dir.path().join("new.h5");
    assert!(write_connectome(&q, &bad).is_err());
    assert!(!q.exists());
}

fn opts_fly() -> CompileOptions {
    CompileOptions {
        transmitters: TransmitterMap::fly(),
        weight_per_synapse: 0.5,
        gap_per_junction_ns: 0.2,
        ..Default::default()
    }
}

#[test]
fn compiled_table_weights_round_trip_and_compile_commutes_with_io() {
    let dir = tempfile::tempdir().unwrap();
    let c = sample();
    let net = compile(&c, &opts_fly()).unwrap();
    assert!(matches!(net.chemical.weights, Weights::Table { .. }));
    assert!(!net.gap.is_empty());
    let p = dir.path().join("net.h5");
    write_compiled(&p, &net).unwrap();
    let back = read_compiled(&p).unwrap();
    // Positions hold a NaN: compare everything else exactly, neurons NaN-aware.
    assert_eq!(back.chemical, net.chemical);
    assert_eq!(back.gap, net.gap);
    assert_eq!(back.receptors, net.receptors);
    assert_eq!(back.report, net.report);
    assert_eq!((back.dt_ms, &back.name, &back.provenance), (net.dt_ms, &net.name, &net.provenance));
    let info = contents(&p).unwrap();
    assert_eq!((info.connections, info.compiled), (None, true));

    // compile(read(write(c))) == compile(c)
    let q = dir.path().join("c.h5");
    write_connectome(&q, &c).unwrap();
    let again = compile(&read_connectome(&q).unwrap(), &opts_fly()).unwrap();
    assert_eq!(again.chemical, net.chemical);
    assert_eq!(again.gap, net.gap);
    assert_eq!(again.report, net.report);
}

/// A connectome without NaN anywhere, so that whole networks compare with `==`.
fn generated(n: u32, m: usize, distinct_weights: bool) -> Connectome {
    let neurons: Vec<Neuron> = (0..n)
        .map(|i| {
            let mut x = Neuron::new(1000 + i as u64 * 7, format!("n{i}"));
            x.transmitter = Some(["ACh", "GABA", "Glu"][i as usize % 3].into());
            x.position = Some([i as f32, 0.5, -1.0]);
            x
        })
        .collect();
    let mut s = 12345u64;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 33) as u32
    };
    let mut connections = Vec::with_capacity(m);
    for k in 0..m {
        let (a, b) = (next() % n, next() % n);
        let mut x = Connection::chemical(1000 + a as u64 * 7, 1000 + b as u64 * 7, (1 + next() % 20) as f32);
        if distinct_weights {
            x.weight = Some(k as f32 * 1e-3 + 1e-3);
        }
        if k % 5 == 0 {
            x.delay_ms = Some(0.5 + (k % 7) as f32 * 0.5);
        }
        if k % 97 == 0 {
            x.kind = SynapseKind::Electrical;
        }
        connections.push(x);
    }
    Connectome { name: "generated".into(), provenance: vec!["test".into()], neurons, connections }
}

#[test]
fn compiled_dense_weights_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let c = generated(500, 70_000, true);
    let net = compile(&c, &opts_fly()).unwrap();
    assert!(matches!(net.chemical.weights, Weights::Dense(_)), "{}", net.chemical.weight_encoding());
    let p = dir.path().join("dense.h5");
    write_compiled(&p, &net).unwrap();
    assert_eq!(read_compiled(&p).unwrap(), net);

    let c = generated(500, 70_000, false);
    let net = compile(&c, &opts_fly()).unwrap();
    assert!(matches!(net.chemical.weights, Weights::Table { .. }));
    write_compiled(&p, &net).unwrap();
    assert_eq!(read_compiled(&p).unwrap(), net);

    // Both in one file.
    let both = dir.path().join("both.h5");
    write_connectome_and_compiled(&both, &c, &net).unwrap();
    assert_eq!(read_connectome(&both).unwrap(), c);
    assert_eq!(read_compiled(&both).unwrap(), net);
    let info = contents(&both).unwrap();
    assert_eq!((info.neurons, info.connections, info.compiled), (500, Some(70_000), true));
    assert_eq!(compile(&read_connectome(&both).unwrap(), &opts_fly()).unwrap(), net);
}

#[test]
fn empty_compiled_network_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let c = Connectome { neurons: vec![Neuron::new(1, "a")], ..Default::default() };
    let net = compile(&c, &CompileOptions::default()).unwrap();
    let p = dir.path().join("e.h5");
    write_compiled(&p, &net).unwrap();
    let back = read_compiled(&p).unwrap();
    assert!(back.report.bytes_per_synapse.is_nan());
    assert_eq!(back.chemical, net.chemical);
    assert_eq!(back.gap, net.gap);
    assert_eq!(back.neurons, net.neurons);
}

#[test]
fn one_million_connections_write_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = generated(20_000, 1_000_000, false);
    let p = dir.path().join("big.h5");
    write_connectome(&p, &c).unwrap();
    let back = read_connectome(&p).unwrap();
    assert_eq!(back.connections.len(), 1_000_000);
    assert_eq!(back, c);
    // Large numeric arrays are chunked and compressed when the library has deflate.
    let f = hdf5::File::open(&p).unwrap();
    let ds = f.dataset("connections/pre").unwrap();
    if hdf5::filters::deflate_available() {
        assert!(ds.is_chunked());
        assert!(!ds.filters().is_empty());
        let raw = 1_000_000u64 * 8;
        assert!(ds.storage_size() < raw, "{} >= {raw}", ds.storage_size());
    }
}
