//! SONATA export: the bundled C. elegans connectome and the SONATA repository's 300-cell intfire example
//! written, read back with `read_sonata` and compared with the original; the written files checked
//! independently with h5py (`scripts/check_sonata_circuit.py`); atomic output, overwrite protection and bad
//! layouts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::child::command;
use hdf5::types::VarLenUnicode;
use neurotwin_connectome::export::{GapJunctions, PopulationLayout, SonataWriteOptions, write_sonata};
use neurotwin_connectome::{
    Connection, Connectome, Neuron, SynapseKind, TransmitterMap, load_celegans_bundled, read_sonata,
};

/// The tests of this file run one at a time: HDF5 opens files without close-on-exec, so a child process
/// (python, neurotwin) spawned by one test inherits another test's open HDF5 file and its lock, and an open
/// of that file in the meantime fails with "unable to lock file".
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the h5py checker on a written circuit; `None` (skip) when the .venv is missing.
fn h5py_check(config: &Path) -> Option<serde_json::Value> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        eprintln!("SKIP h5py check: .venv with h5py not found (run scripts/setup.sh)");
        return None;
    }
    let out = command(python).arg(root.join("scripts/check_sonata_circuit.py")).arg(config).output().unwrap();
    assert!(out.status.success(), "h5py check failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn strings(file: &Path, dataset: &str) -> Vec<String> {
    let f = hdf5::File::open(file).unwrap();
    f.dataset(dataset).unwrap().read_raw::<VarLenUnicode>().unwrap().iter().map(|s| s.as_str().to_string()).collect()
}

#[test]
fn celegans_round_trip_keeps_neurons_connections_and_gap_junctions() {
    let _serial = serial();
    let c = load_celegans_bundled().unwrap();
    let by_id: HashMap<u64, usize> = c.neurons.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("worm");
    let base = SonataWriteOptions { transmitters: TransmitterMap::celegans(), ..Default::default() };

    // By default gap junctions are refused with the choice explained, and nothing is left behind.
    let e = write_sonata(&c, &[], &out, &base).unwrap_err().to_string();
    assert!(e.contains("1450 gap junctions") && e.contains("is_gap_junction"), "{e}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing may be written");

    let opt = SonataWriteOptions { gap_junctions: GapJunctions::Write, ..base };
    let cfg = write_sonata(&c, &[], &out, &opt).unwrap();
    assert_eq!(cfg, out.join("circuit_config.json"));
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["worm"], "no temporary folder may remain");

    let r = read_sonata(&cfg).unwrap();
    assert_eq!(r.populations.len(), 1);
    assert_eq!((r.populations[0].name.as_str(), r.populations[0].count), ("neurons", 473));
    let n = &r.connectome;
    assert_eq!(n.neurons.len(), c.neurons.len());
    // Every neuron field comes back exactly (the reader takes the node group's attributes over the node
    // types); ids are the neurons' indices in the circuit.
    for (i, (a, b)) in c.neurons.iter().zip(&n.neurons).enumerate() {
        assert_eq!(b.id, i as u64);
        assert_eq!(Neuron { id: a.id, ..b.clone() }, *a, "neuron {i}");
    }
    // The exact neuron fields, per node in group 0 of the nodes file.
    let nodes = out.join("neurons_nodes.h5");
    assert_eq!(strings(&nodes, "nodes/neurons/0/name"), c.neurons.iter().map(|x| x.name.clone()).collect::<Vec<_>>());
    assert_eq!(
        strings(&nodes, "nodes/neurons/0/region"),
        c.neurons.iter().map(|x| x.region.clone().unwrap_or_default()).collect::<Vec<_>>()
    );
    assert_eq!(
        strings(&nodes, "nodes/neurons/0/transmitter"),
        c.neurons.iter().map(|x| x.transmitter.clone().unwrap_or_default()).collect::<Vec<_>>()
    );
    assert_eq!(
        strings(&nodes, "nodes/neurons/0/cell_type"),
        c.neurons.iter().map(|x| x.cell_type.clone()).collect::<Vec<_>>()
    );
    let x: Vec<f32> =
        hdf5::File::open(&nodes).unwrap().dataset("nodes/neurons/0/x").unwrap().read_raw::<f32>().unwrap();
    for (a, v) in c.neurons.iter().zip(&x) {
        assert_eq!(a.position.map(|p| p[0].to_bits()), (!v.is_nan()).then(|| v.to_bits()), "{}", a.name);
    }

    // Every connection comes back exactly (kind, counts, weights, delays, explicit receptor and transmitter,
    // confidence) as a multiset, with ids mapped to indices.
    let chem = c.connections.iter().filter(|x| x.kind == SynapseKind::Chemical).count();
    let gap = c.connections.iter().filter(|x| x.kind == SynapseKind::Electrical).count();
    assert_eq!((chem, gap), (4879, 1450));
    let canon = |mut v: Vec<Connection>| {
        v.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        v
    };
    let want = canon(
        c.connections
            .iter()
            .map(|x| Connection { pre: by_id[&x.pre] as u64, post: by_id[&x.post] as u64, ..x.clone() })
            .collect(),
    );
    assert_eq!(canon(n.connections.clone()), want);
    assert!(n.connections.iter().any(|x| x.receptor.as_deref() == Some("Glu_inh")));
    // The exact receptor classes are in the edge types.
    let types = std::fs::read_to_string(out.join("neurons_neurons_edge_types.csv")).unwrap();
    assert!(types.lines().any(|l| l.contains("inh_synapse.json Glu_inh Glu_inh")), "{types}");
    let gap_types = std::fs::read_to_string(out.join("neurons_neurons_gap_edge_types.csv")).unwrap();
    assert!(gap_types.contains("is_gap_junction") && gap_types.contains("True"), "{gap_types}");

    if let Some(s) = h5py_check(&cfg) {
        assert_eq!(s["nodes"]["neurons"]["count"], 473);
        let e = &s["edges"]["neurons_to_neurons"];
        assert_eq!(e["edges"], 4879);
        let synapses: f64 =
            c.connections.iter().filter(|x| x.kind == SynapseKind::Chemical).map(|x| x.count as f64).sum();
        assert_eq!(e["nsyns"].as_f64().unwrap(), synapses);
        assert_eq!(e["gap_junction"], false);
        let g = &s["edges"]["neurons_to_neurons_gap"];
        assert_eq!((g["edges"].as_u64(), g["gap_junction"].as_bool()), (Some(1450), Some(true)));
    }

    // An existing non-empty folder is kept unless overwriting is asked for.
    let e = write_sonata(&c, &[], &out, &opt).unwrap_err().to_string();
    assert!(e.contains("--overwrite") && e.contains("worm"), "{e}");
    let omit = SonataWriteOptions { gap_junctions: GapJunctions::Omit, overwrite: true, ..opt };
    write_sonata(&c, &[], &out, &omit).unwrap();
    assert_eq!(read_sonata(&cfg).unwrap().connectome.connections.len(), 4879);
    assert!(!out.join("neurons_neurons_gap_edges.h5").exists());
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["worm"]);
}

/// The SONATA repository's 300-cell intfire example: the copy bundled in `data/sonata/`, else
/// `../shared/data/sonata/`.
fn example() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    ["../data/sonata/300_intfire", "../../shared/data/sonata/300_intfire"]
        .iter()
        .map(|d| root.join(d).join("circuit_config.json"))
        .find(|p| p.exists())
}

fn sorted_connections(c: &Connectome) -> Vec<Connection> {
    let mut v = c.connections.clone();
    v.sort_by(|a, b| {
        (a.pre, a.post, a.count.to_bits(), a.weight.map(f32::to_bits), a.delay_ms.map(f32::to_bits), &a.receptor).cmp(
            &(b.pre, b.post, b.count.to_bits(), b.weight.map(f32::to_bits), b.delay_ms.map(f32::to_bits), &b.receptor),
        )
    });
    v
}

#[test]
fn intfire_300_example_survives_read_write_read() {
    let _serial = serial();
    let Some(cfg) = example() else {
        eprintln!("SKIP: the 300_intfire example is absent (data/sonata/ or ../shared/data/sonata/)");
        return;
    };
    let a = read_sonata(&cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("intfire");
    let written =
        write_sonata(&a.connectome, &PopulationLayout::from_circuit(&a), &out, &SonataWriteOptions::for_circuit(&a))
            .unwrap();
    let b = read_sonata(&written).unwrap();
    let pops = |c: &neurotwin_connectome::SonataCircuit| -> Vec<(String, usize, usize, bool)> {
        c.populations.iter().map(|p| (p.name.clone(), p.first, p.count, p.is_virtual)).collect()
    };
    assert_eq!(pops(&b), pops(&a));
    assert_eq!(pops(&b)[1], ("lgn".to_string(), 300, 90, true));
    assert_eq!(b.connectome.neurons, a.connectome.neurons);
    assert_eq!(b.connectome.connections.len(), 87_720);
    let synapses: f64 = b.connectome.connections.iter().map(|x| x.count as f64).sum();
    assert_eq!(synapses, 832_200.0);
    assert_eq!(sorted_connections(&b.connectome), sorted_connections(&a.connectome));
    // The node models (IntFire1 templates and their parameter files) are kept.
    let models = |c: &neurotwin_connectome::SonataCircuit| -> Vec<(Option<String>, Option<String>, Option<String>)> {
        c.neuron_node_type
            .iter()
            .map(|&k| {
                let t = &c.node_types[k as usize];
                (t.model_type.clone(), t.model_template.clone(), t.dynamics_params.clone())
            })
            .collect()
    };
    assert_eq!(models(&b), models(&a));
    if let Some(s) = h5py_check(&written) {
        let edges = |p: &str| s["edges"][p]["edges"].as_u64().unwrap();
        assert_eq!((edges("v1_to_v1"), edges("lgn_to_v1"), edges("tw_to_v1")), (61_560, 17_160, 9_000));
        let nsyns: f64 =
            ["v1_to_v1", "lgn_to_v1", "tw_to_v1"].iter().map(|p| s["edges"][p]["nsyns"].as_f64().unwrap()).sum();
        assert_eq!(nsyns, 832_200.0);
        assert_eq!(s["nodes"]["lgn"]["model_types"], serde_json::json!(["virtual"]));
    }
}

fn tiny() -> Connectome {
    let mut c = Connectome { name: "tiny".into(), ..Default::default() };
    for (i, nt) in ["exc", "exc", "inh"].iter().enumerate() {
        let mut n = Neuron::new(10 + i as u64, format!("n{i}"));
        n.transmitter = Some(nt.to_string());
        n.cell_type = "cell type with spaces".into();
        c.neurons.push(n);
    }
    let mut a = Connection::chemical(10, 12, 2.0);
    a.weight = Some(0.5);
    let mut b = Connection::chemical(12, 10, 1.0);
    b.delay_ms = Some(1.5);
    b.receptor = Some("inh".into());
    c.connections = vec![a, b, Connection::chemical(11, 10, 3.0), Connection::chemical(11, 12, 1.0)];
    c
}

#[test]
fn two_populations_mixed_edge_groups_and_multiword_cell_types() {
    let _serial = serial();
    let c = tiny();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deep/nested/out");
    let layout = [PopulationLayout::new("e", 0..2), PopulationLayout::new("i", 2..3)];
    let cfg = write_sonata(&c, &layout, &out, &SonataWriteOptions::default()).unwrap();
    // A cell type with spaces goes per node into the nodes file, not into the whitespace-split CSV.
    let csv = std::fs::read_to_string(out.join("e_node_types.csv")).unwrap();
    assert!(!csv.contains("model_name") && !csv.contains("spaces"), "{csv}");
    assert_eq!(strings(&out.join("e_nodes.h5"), "nodes/e/0/cell_type"), ["cell type with spaces"; 2]);
    let r = read_sonata(&cfg).unwrap();
    let n = &r.connectome;
    type Row = (u64, u64, f32, Option<f32>, Option<f32>, Option<String>);
    let mut got: Vec<Row> =
        n.connections.iter().map(|x| (x.pre, x.post, x.count, x.weight, x.delay_ms, x.receptor.clone())).collect();
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // Explicit receptors only where the original had one (the others resolve from the transmitters again).
    assert_eq!(
        got,
        [
            (0, 2, 2.0, Some(0.5), None, None),
            (1, 0, 3.0, None, None, None),
            (1, 2, 1.0, None, None, None),
            (2, 0, 1.0, None, Some(1.5), Some("inh".into())),
        ]
    );
    assert_eq!(n.neurons[2].transmitter.as_deref(), Some("inh"));
    assert_eq!(n.neurons[0].cell_type, "cell type with spaces");
    assert_eq!(n.neurons[1].name, "n1");
    // e → i: one edge with a weight, one without: two edge groups, `syn_weight` only in the first.
    let f = hdf5::File::open(out.join("e_i_edges.h5")).unwrap();
    let gid = f.dataset("edges/e_to_i/edge_group_id").unwrap().read_raw::<u32>().unwrap();
    assert_eq!(gid, [1, 0], "edge 0 (e:0 → i:0, weighted) in group 1, edge 1 (e:1 → i:0) in group 0");
    assert!(f.link_exists("edges/e_to_i/1/syn_weight") && !f.link_exists("edges/e_to_i/0/syn_weight"));
    if let Some(s) = h5py_check(&cfg) {
        assert_eq!(s["edges"]["e_to_i"]["edges"], 2);
        assert_eq!(s["edges"]["i_to_e"]["dynamics_params"], serde_json::json!(["inh_synapse.json"]));
        assert_eq!(s["edges"]["e_to_e"]["dynamics_params"], serde_json::json!(["exc_synapse.json"]));
        // The checker has teeth: an index that loses the edge is caught.
        let f = hdf5::File::open_rw(out.join("e_e_edges.h5")).unwrap();
        f.dataset("edges/e_to_e/indices/target_to_source/node_id_to_ranges").unwrap().write_raw(&[0u64; 4]).unwrap();
        f.close().unwrap();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let o = command(root.join(".venv/bin/python"))
            .arg(root.join("scripts/check_sonata_circuit.py"))
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("do not cover every edge exactly once"), "{err}");
    }
}

#[test]
fn bad_layouts_and_inputs_are_explained() {
    let _serial = serial();
    let c = tiny();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let opt = SonataWriteOptions::default();
    let cases: [(&[PopulationLayout], &str); 4] = [
        (&[PopulationLayout::new("a", 0..2)], "neuron 2 is in no population"),
        (&[PopulationLayout::new("a", 0..2), PopulationLayout::new("b", 1..3)], "neuron 1 is in both `a` and `b`"),
        (&[PopulationLayout::new("a b", 0..3)], "name `a b`"),
        (&[PopulationLayout::new("a", 0..5)], "outside 0..3"),
    ];
    for (layout, needle) in cases {
        let e = write_sonata(&c, layout, &out, &opt).unwrap_err().to_string();
        assert!(e.contains(needle), "{e:?} should mention {needle}");
    }
    let mut bad = c.clone();
    bad.connections[0].receptor = Some("NMDA".into());
    let e = write_sonata(&bad, &[], &out, &opt).unwrap_err().to_string();
    assert!(e.contains("receptor `NMDA` is not defined") && e.contains("connection #0"), "{e}");
    let e = write_sonata(&Connectome::default(), &[], &out, &opt).unwrap_err().to_string();
    assert!(e.contains("no neurons"), "{e}");
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let e = write_sonata(&c, &[], &dir.path().join("file"), &opt).unwrap_err().to_string();
    assert!(e.contains("not a folder"), "{e}");
    assert!(!out.exists());
    // An empty existing folder is fine.
    std::fs::create_dir(&out).unwrap();
    write_sonata(&c, &[], &out, &opt).unwrap();
}
