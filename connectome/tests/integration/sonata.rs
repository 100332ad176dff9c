//! SONATA import: the 300-cell intfire example of the SONATA repository (counts and values checked against
//! the files with h5py), and malformed circuits written by the test (missing population, id out of range,
//! inconsistent edge group, undefined node type, not a nodes file) giving located errors.

use std::path::{Path, PathBuf};

use neurotwin_connectome::{CompileOptions, TransmitterMap, compile, read_sonata};

/// The example as bundled in `data/sonata/` (gzip-repacked copy of the SONATA repository's files).
fn example() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/sonata/300_intfire/circuit_config.json");
    p.exists().then_some(p)
}

#[test]
fn intfire_300_example_reads_with_the_published_counts() {
    let Some(cfg) = example() else {
        panic!("data/sonata/300_intfire is missing from the repository");
    };
    let c = read_sonata(&cfg).unwrap();
    let pops: Vec<(&str, usize, bool)> =
        c.populations.iter().map(|p| (p.name.as_str(), p.count, p.is_virtual)).collect();
    assert_eq!(pops, [("v1", 300, false), ("lgn", 90, true), ("tw", 30, true)]);
    let n = &c.connectome;
    assert_eq!(n.neurons.len(), 420);
    // Edge rows: v1→v1 61,560, lgn→v1 17,160, tw→v1 9,000; synapses (nsyns) 615,600 + 171,600 + 45,000.
    assert_eq!(n.connections.len(), 87_720);
    let synapses: f64 = n.connections.iter().map(|x| x.count as f64).sum();
    assert_eq!(synapses, 832_200.0);
    // Edge 50,220 of v1_to_v1 is the first of type 100 (i → i, syn_weight 0.01, delay 2 ms, instanteneousInh):
    // node 240 → node 240, 10 synapses.
    let e = &n.connections[50_220];
    let v240 = c.neuron_index("v1", 240).unwrap() as u64;
    assert_eq!((e.pre, e.post, e.count), (v240, v240, 10.0));
    assert_eq!((e.weight, e.delay_ms, e.receptor.as_deref()), (Some(0.01), Some(2.0), Some("inh")));
    assert_eq!(n.neurons[v240 as usize].cell_type, "LIF_inh");
    assert_eq!(n.neurons[0].transmitter.as_deref(), Some("exc"));
    // Inputs arrive from the virtual populations on excitatory synapses.
    let lgn0 = c.neuron_index("lgn", 0).unwrap() as u64;
    assert!(n.connections.iter().any(|x| x.pre == lgn0 && x.receptor.as_deref() == Some("exc")));
    // It compiles with the exc/inh channels.
    let net = compile(n, &CompileOptions { transmitters: TransmitterMap::exc_inh(), ..Default::default() }).unwrap();
    assert_eq!(net.n_neurons(), 420);
    assert!(net.chemical.n_synapses() > 0);
}

/// A tiny circuit: population `a` (3 nodes of type 1) and one edge population `a_to_a` with `rows` =
/// (source, target, group index) and a group `0` of `group_rows` nsyns values.
fn write_circuit(dir: &Path, source_pop: &str, rows: &[(u64, u64, u64)], group_rows: usize, node_type: u64) -> PathBuf {
    let nodes = hdf5::File::create(dir.join("nodes.h5")).unwrap();
    let a = nodes.create_group("nodes").unwrap().create_group("a").unwrap();
    a.new_dataset_builder().with_data(&[node_type; 3]).create("node_type_id").unwrap();
    a.new_dataset_builder().with_data(&[0u64, 1, 2]).create("node_id").unwrap();
    std::fs::write(dir.join("node_types.csv"), "node_type_id model_type ei model_name\n1 point_process e E\n").unwrap();
    let edges = hdf5::File::create(dir.join("edges.h5")).unwrap();
    let g = edges.create_group("edges").unwrap().create_group("a_to_a").unwrap();
    let pop: hdf5::types::VarLenUnicode = source_pop.parse().unwrap();
    let target: hdf5::types::VarLenUnicode = "a".parse().unwrap();
    let s = g
        .new_dataset_builder()
        .with_data(&rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .create("source_node_id")
        .unwrap();
    s.new_attr::<hdf5::types::VarLenUnicode>().create("node_population").unwrap().write_scalar(&pop).unwrap();
    let t = g
        .new_dataset_builder()
        .with_data(&rows.iter().map(|r| r.1).collect::<Vec<_>>())
        .create("target_node_id")
        .unwrap();
    t.new_attr::<hdf5::types::VarLenUnicode>().create("node_population").unwrap().write_scalar(&target).unwrap();
    g.new_dataset_builder().with_data(&vec![7u64; rows.len()]).create("edge_type_id").unwrap();
    g.new_dataset_builder().with_data(&vec![0u64; rows.len()]).create("edge_group_id").unwrap();
    g.new_dataset_builder()
        .with_data(&rows.iter().map(|r| r.2).collect::<Vec<_>>())
        .create("edge_group_index")
        .unwrap();
    g.create_group("0").unwrap().new_dataset_builder().with_data(&vec![2u16; group_rows]).create("nsyns").unwrap();
    std::fs::write(dir.join("edge_types.csv"), "edge_type_id syn_weight delay dynamics_params\n7 0.5 1.5 exc.json\n")
        .unwrap();
    let cfg = dir.join("circuit_config.json");
    std::fs::write(
        &cfg,
        r#"{"manifest": {"$NET": "."}, "networks": {
            "nodes": [{"nodes_file": "$NET/nodes.h5", "node_types_file": "$NET/node_types.csv"}],
            "edges": [{"edges_file": "$NET/edges.h5", "edge_types_file": "$NET/edge_types.csv"}]}}"#,
    )
    .unwrap();
    cfg
}

#[test]
fn a_small_valid_circuit_reads_back() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_circuit(d.path(), "a", &[(0, 1, 0), (2, 0, 1)], 2, 1);
    let c = read_sonata(&cfg).unwrap();
    let n = &c.connectome;
    assert_eq!(n.neurons.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["a:0", "a:1", "a:2"]);
    assert_eq!(n.connections.len(), 2);
    let e = &n.connections[1];
    assert_eq!((e.pre, e.post, e.count, e.weight, e.delay_ms), (2, 0, 2.0, Some(0.5), Some(1.5)));
}

/// Source population, edge rows, group rows, node type, expected words of the error.
type Case<'a> = (&'a str, &'a [(u64, u64, u64)], usize, u64, &'a str);

#[test]
fn malformed_circuits_give_located_errors() {
    let cases: [Case; 4] = [
        ("b", &[(0, 1, 0)], 1, 1, "node population `b`"),
        ("a", &[(0, 5, 0)], 1, 1, "out of range"),
        ("a", &[(0, 1, 3)], 1, 1, "beyond its 1 rows"),
        ("a", &[(0, 1, 0)], 1, 9, "node_type_id 9"),
    ];
    for (pop, rows, group_rows, node_type, needle) in cases {
        let d = tempfile::tempdir().unwrap();
        let cfg = write_circuit(d.path(), pop, rows, group_rows, node_type);
        let m = read_sonata(&cfg).unwrap_err().to_string();
        assert!(m.contains(needle), "{m:?} should mention {needle}");
        assert!(m.contains(".h5"), "{m:?} should name the file");
    }
    // Not a nodes file.
    let d = tempfile::tempdir().unwrap();
    let cfg = write_circuit(d.path(), "a", &[(0, 1, 0)], 1, 1);
    hdf5::File::create(d.path().join("nodes.h5")).unwrap().create_group("other").unwrap();
    let m = read_sonata(&cfg).unwrap_err().to_string();
    assert!(m.contains("no group `/nodes`"), "{m}");
}
