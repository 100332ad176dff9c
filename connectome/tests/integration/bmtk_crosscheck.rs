//! A network built by BMTK's NetworkBuilder (`tests/data/bmtk_small`, made by `scripts/make_bmtk_network.py`,
//! see its README) read with `read_sonata` and compared with every number in its `expected.json`, which the
//! script computed from BMTK's own objects and the saved files (h5py/pandas); then written with our SONATA
//! export and read again.

use std::path::PathBuf;

use neurotwin_connectome::export::{PopulationLayout, SonataWriteOptions, write_sonata};
use neurotwin_connectome::{SonataCircuit, read_sonata};
use serde_json::Value;

/// The tests of this file run one at a time: HDF5 opens files without close-on-exec, so a child process
/// (python, neurotwin) spawned by one test inherits another test's open HDF5 file and its lock, and an open
/// of that file in the meantime fails with "unable to lock file".
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/bmtk_small")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(data().join("expected.json")).unwrap()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-12)
}

/// Checks `c` against expected.json; edge populations are read in the config's order (file names sorted).
fn check(c: &SonataCircuit, x: &Value) {
    let pops = x["populations"].as_array().unwrap();
    assert_eq!(c.populations.len(), pops.len());
    for (p, e) in c.populations.iter().zip(pops) {
        assert_eq!(p.name, e["name"].as_str().unwrap());
        assert_eq!(p.count as u64, e["count"].as_u64().unwrap(), "{}", p.name);
        assert_eq!(p.is_virtual, e["virtual"].as_bool().unwrap(), "{}", p.name);
        let mut names: Vec<&str> =
            c.connectome.neurons[p.first..p.first + p.count].iter().map(|n| n.cell_type.as_str()).collect();
        names.sort();
        names.dedup();
        let want: Vec<&str> = e["model_names"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(names, want, "{}", p.name);
    }
    let n = &c.connectome;
    assert_eq!(n.connections.len() as u64, x["total_edges"].as_u64().unwrap());
    let nsyns: f64 = n.connections.iter().map(|k| k.count as f64).sum();
    assert_eq!(nsyns, x["total_nsyns"].as_f64().unwrap());
    let pop = |name: &str| c.populations.iter().find(|p| p.name == name).unwrap();
    let mut offset = 0;
    let mut offsets = std::collections::HashMap::new();
    for e in x["edge_populations"].as_array().unwrap() {
        let rows = e["edges"].as_u64().unwrap() as usize;
        let slice = &n.connections[offset..offset + rows];
        let name = e["name"].as_str().unwrap();
        let (sp, tp) = (pop(e["source"].as_str().unwrap()), pop(e["target"].as_str().unwrap()));
        assert!(slice.iter().all(|k| (sp.first..sp.first + sp.count).contains(&(k.pre as usize))), "{name}");
        assert!(slice.iter().all(|k| (tp.first..tp.first + tp.count).contains(&(k.post as usize))), "{name}");
        let nsyns: f64 = slice.iter().map(|k| k.count as f64).sum();
        assert_eq!(nsyns, e["nsyns"].as_f64().unwrap(), "{name}");
        let wn: f64 = slice.iter().map(|k| k.weight.unwrap() as f64 * k.count as f64).sum();
        assert!(close(wn, e["weight_times_nsyns"].as_f64().unwrap()), "{name}: {wn} vs {}", e["weight_times_nsyns"]);
        let delay: f64 = slice.iter().map(|k| k.delay_ms.unwrap() as f64).sum();
        assert!(close(delay, e["delay_sum"].as_f64().unwrap()), "{name}");
        offsets.insert(name.to_string(), offset);
        offset += rows;
    }
    assert_eq!(offset, n.connections.len());
    let explicit = x["edges"].as_array().unwrap();
    assert!(explicit.len() >= 12);
    for e in explicit {
        let k = &n.connections[offsets[e["population"].as_str().unwrap()] + e["index"].as_u64().unwrap() as usize];
        let pre = c.neuron_index(e["source_population"].as_str().unwrap(), e["source"].as_u64().unwrap()).unwrap();
        let post = c.neuron_index(e["target_population"].as_str().unwrap(), e["target"].as_u64().unwrap()).unwrap();
        assert_eq!((k.pre, k.post), (pre as u64, post as u64), "{e}");
        assert_eq!(k.count as f64, e["nsyns"].as_f64().unwrap(), "{e}");
        assert_eq!(k.weight, Some(e["syn_weight"].as_f64().unwrap() as f32), "{e}");
        assert_eq!(k.delay_ms, Some(e["delay"].as_f64().unwrap() as f32), "{e}");
        assert_eq!(k.receptor.as_deref(), e["receptor"].as_str(), "{e}");
    }
}

#[test]
fn bmtk_built_network_reads_with_the_numbers_bmtk_gives() {
    let _serial = serial();
    let x = expected();
    let c = read_sonata(&data().join("circuit_config.json")).unwrap();
    check(&c, &x);
    // Spot checks of what the test data covers: per-edge weights in some populations, both receptor signs,
    // the node models of the builder's node types.
    let e = x["edge_populations"].as_array().unwrap();
    assert!(e.iter().any(|p| p["per_edge_weight"] == true) && e.iter().any(|p| p["per_edge_weight"] == false));
    let receptors: std::collections::BTreeSet<_> =
        c.connectome.connections.iter().map(|k| k.receptor.clone().unwrap()).collect();
    assert_eq!(receptors.into_iter().collect::<Vec<_>>(), ["exc", "inh"]);
    let exc0 = &c.node_types[c.neuron_node_type[c.neuron_index("exc", 0).unwrap()] as usize];
    assert_eq!(exc0.model_template.as_deref(), Some("nrn:IntFire1"));
    assert_eq!(exc0.model_type.as_deref(), Some("point_process"));
    assert_eq!(c.connectome.neurons[c.neuron_index("inh", 3).unwrap()].transmitter.as_deref(), Some("inh"));
}

#[test]
fn bmtk_built_network_survives_our_writer() {
    let _serial = serial();
    let x = expected();
    let a = read_sonata(&data().join("circuit_config.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bmtk");
    let cfg =
        write_sonata(&a.connectome, &PopulationLayout::from_circuit(&a), &out, &SonataWriteOptions::for_circuit(&a))
            .unwrap();
    let b = read_sonata(&cfg).unwrap();
    assert_eq!(b.connectome.neurons, a.connectome.neurons);
    // Our writer sorts each edge population by target then source and writes population pairs in population
    // order, so compare the connections as multisets and the totals with expected.json.
    let sorted = |c: &SonataCircuit| {
        let mut v: Vec<_> = c
            .connectome
            .connections
            .iter()
            .map(|k| {
                (
                    k.pre,
                    k.post,
                    k.count.to_bits(),
                    k.weight.map(f32::to_bits),
                    k.delay_ms.map(f32::to_bits),
                    k.receptor.clone(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&b), sorted(&a));
    assert_eq!(b.connectome.connections.len() as u64, x["total_edges"].as_u64().unwrap());
    let pops =
        |c: &SonataCircuit| c.populations.iter().map(|p| (p.name.clone(), p.count, p.is_virtual)).collect::<Vec<_>>();
    assert_eq!(pops(&b), pops(&a));
}

/// BMTK's own SONATA reader (`bmtk.utils.sonata`) on a circuit our writer made: populations, node and edge
/// counts, synapses, and its index lookups against its edge table. Skipped without `.venv-bmtk`
/// (scripts/setup-bmtk.sh) unless `NEUROTWIN_REQUIRE_BMTK` is set, as `make test` does.
#[test]
fn bmtk_reads_what_we_write() {
    let _serial = serial();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv-bmtk/bin/python");
    if !python.exists() {
        assert!(
            std::env::var_os("NEUROTWIN_REQUIRE_BMTK").is_none(),
            ".venv-bmtk not found but NEUROTWIN_REQUIRE_BMTK is set: run scripts/setup-bmtk.sh"
        );
        eprintln!("SKIP: .venv-bmtk not found (scripts/setup-bmtk.sh)");
        return;
    }
    let a = read_sonata(&data().join("circuit_config.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ours");
    let cfg =
        write_sonata(&a.connectome, &PopulationLayout::from_circuit(&a), &out, &SonataWriteOptions::for_circuit(&a))
            .unwrap();
    const SCRIPT: &str = r#"
import json, sys, warnings
warnings.simplefilter("ignore")
from bmtk.utils import sonata
cfg = json.load(open(sys.argv[1]))
base = sys.argv[1].rsplit("/", 1)[0]
fix = lambda p: p.replace("$NETWORK_DIR", base)
files = [fix(n["nodes_file"]) for n in cfg["networks"]["nodes"]] + [fix(e["edges_file"]) for e in cfg["networks"]["edges"]]
types = [fix(n["node_types_file"]) for n in cfg["networks"]["nodes"]] + [fix(e["edge_types_file"]) for e in cfg["networks"]["edges"]]
net = sonata.File(data_files=files, data_type_files=types)
out = {"nodes": {}, "edges": {}}
for p in net.nodes.population_names:
    df = net.nodes[p].to_dataframe()
    out["nodes"][p] = {"count": len(df), "model_type": sorted(set(df["model_type"]))}
for p in net.edges.population_names:
    e = net.edges[p]
    df = e.to_dataframe()
    n_src = out["nodes"][e.source_population]["count"]
    n_trg = out["nodes"][e.target_population]["count"]
    ok = all(len(list(e.get_target(k))) == (df["target_node_id"] == k).sum() for k in range(n_trg))
    ok &= all(len(list(e.get_source(k))) == (df["source_node_id"] == k).sum() for k in range(n_src))
    out["edges"][p] = {"edges": len(df), "nsyns": int(df["nsyns"].sum()), "index_ok": bool(ok),
                       "weight_nsyns": float((df["syn_weight"] * df["nsyns"]).sum())}
print(json.dumps(out))
"#;
    let o = super::child::command(python).arg("-c").arg(SCRIPT).arg(&cfg).output().unwrap();
    assert!(o.status.success(), "bmtk failed: {}", String::from_utf8_lossy(&o.stderr));
    let got: Value = serde_json::from_slice(&o.stdout).unwrap();
    let x = expected();
    for p in x["populations"].as_array().unwrap() {
        let g = &got["nodes"][p["name"].as_str().unwrap()];
        assert_eq!(g["count"], p["count"], "{p}");
        let virt = g["model_type"] == serde_json::json!(["virtual"]);
        assert_eq!(virt, p["virtual"].as_bool().unwrap(), "{p}");
    }
    for p in x["edge_populations"].as_array().unwrap() {
        let g = &got["edges"][p["name"].as_str().unwrap()];
        assert_eq!((&g["edges"], &g["nsyns"]), (&p["edges"], &p["nsyns"]), "{p}");
        assert_eq!(g["index_ok"], true, "{p}");
        assert!(close(g["weight_nsyns"].as_f64().unwrap(), p["weight_times_nsyns"].as_f64().unwrap()), "{p}");
    }
}
