//! `neurotwin import --to scenario` of a NeuroML 2 network against its reference simulator: OpenWorm's c302
//! (parameter set A: `iafCell` neurons, `expTwoSynapse` chemical synapses, pulse inputs; 10 cells of the
//! locomotion circuit, 49 connections) imported, run as an ordinary scenario, and compared with jNeuroML's membrane
//! potentials and spike times (`data/c302`, from `scripts/make_c302_reference.py`). A component the importer does
//! not map is refused with its line.

use super::common::*;

use std::collections::BTreeMap;
use std::path::Path;

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    (header, lines.map(|l| l.split(',').map(str::to_string).collect()).collect())
}

/// What a run of an imported network gave: the cells' names (index order), V of every cell after each step
/// (step-major) and the number of V samples, and each cell's spike times (ms).
struct Imported {
    names: Vec<String>,
    v: Vec<f64>,
    v_shape: Vec<usize>,
    spikes: Vec<Vec<f64>>,
    import_stdout: String,
}

/// `neurotwin import NML --lems LEMS --to scenario` then `neurotwin run` of the scenario, in `dir`.
fn import_and_run(dir: &Path, nml: &Path, lems: &Path) -> Imported {
    let out = dir.join("scenario");
    let (nml, lems, out_s) = (nml.to_str().unwrap(), lems.to_str().unwrap(), out.to_str().unwrap());
    let o = neurotwin(&["import", nml, "--lems", lems, "--to", "scenario", "-o", out_s], dir);
    assert!(o.status.success(), "import: {}", stderr(&o));
    let import_stdout = stdout(&o);
    let run = dir.join("run");
    let o = neurotwin(&["run", out.join("scenario.toml").to_str().unwrap(), "-o", run.to_str().unwrap()], dir);
    assert!(o.status.success(), "run: {}", stderr(&o));
    let (_, nodes) = read_csv(&run.join("nodes.csv"));
    let names: Vec<String> = nodes.iter().map(|r| r[1].clone()).collect();
    let f = hdf5::File::open(run.join("state.h5")).unwrap();
    let data = f.dataset("report/v/data").unwrap();
    let (v_shape, v) = (data.shape(), data.read_raw().unwrap());
    drop(f);
    let f = hdf5::File::open(run.join("spikes.h5")).unwrap();
    let pop = f.group("spikes").unwrap().member_names().unwrap()[0].clone();
    let ids: Vec<u64> = f.dataset(&format!("spikes/{pop}/node_ids")).unwrap().read_raw().unwrap();
    let times: Vec<f64> = f.dataset(&format!("spikes/{pop}/timestamps")).unwrap().read_raw().unwrap();
    let mut spikes = vec![Vec::new(); names.len()];
    for (&i, &t) in ids.iter().zip(&times) {
        spikes[i as usize].push(t);
    }
    Imported { names, v, v_shape, spikes, import_stdout }
}

/// A reference spike file (`neuron,t_ms`) by neuron.
fn reference_spikes(path: &Path) -> BTreeMap<String, Vec<f64>> {
    let mut reference: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for row in read_csv(path).1 {
        reference.entry(row[0].clone()).or_default().push(row[1].parse().unwrap());
    }
    reference
}

/// Before the first spikes (52.9 ms) every cell's V equals jNeuroML's to 1e-5 mV (the same forward-Euler
/// arithmetic; jNeuroML prints 7 significant digits; measured 3.4e-6), and to 0.05 mV up to 60 ms, after the first
/// synaptic events (measured 0.014). Spike times: each spiking cell's first spike at jNeuroML's step, its first 10
/// within two steps (0.1 ms), and its number of spikes before 125 ms — as recurrent excitation speeds the six
/// interneurons up from 2 to about 40 spikes per 5 ms, in both — within 2 % (measured: at most one spike apart);
/// the four motor neurons stay silent.
#[test]
fn c302_network_imports_and_matches_jneuroml() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (nml, lems) = (repo.join("data/c302/SynsA.net.nml"), repo.join("data/c302/LEMS_SynsA.xml"));
    let Imported { names, v, v_shape, spikes, import_stdout } = import_and_run(dir.path(), &nml, &lems);
    assert!(import_stdout.contains("10 cells, 49 chemical connections, 0 gap junctions, 3 inputs"), "{import_stdout}");
    assert_eq!(v_shape, vec![6000, 10], "V of 10 cells after each of the 6000 steps of 0.05 ms");
    let ours = |step_end_ms: f64, name: &str| {
        let k = (step_end_ms / 0.05).round() as usize - 1;
        v[k * 10 + names.iter().position(|n| n == name).unwrap()]
    };
    let (header, rows) = read_csv(&repo.join("data/c302/reference_v.csv"));
    let (mut early, mut late) = (0.0f64, 0.0f64);
    for row in rows.iter().skip(1) {
        let t: f64 = row[0].parse().unwrap();
        for (c, name) in header.iter().enumerate().skip(1) {
            let d = (row[c].parse::<f64>().unwrap() - ours(t, name)).abs();
            if t < 52.5 { early = early.max(d) } else { late = late.max(d) }
        }
    }
    assert!(early <= 1e-5, "V before the first spikes differs from jNeuroML's by {early} mV");
    assert!(late <= 0.05, "V from 52.5 to 60 ms differs from jNeuroML's by {late} mV");

    let reference = reference_spikes(&repo.join("data/c302/reference_spikes.csv"));
    assert_eq!(reference.len(), 6, "six interneurons spike in the reference");
    for (name, ours) in names.iter().zip(&spikes) {
        let r = reference.get(name).cloned().unwrap_or_default();
        let o: Vec<f64> = ours.iter().copied().filter(|&t| t < 125.0).collect();
        if r.is_empty() {
            assert!(o.is_empty(), "{name}: silent in jNeuroML, {} spikes here", o.len());
            continue;
        }
        assert!((r[0] - o[0]).abs() < 1e-9, "{name}: first spike at {} ms, jNeuroML {} ms", o[0], r[0]);
        let worst = r.iter().zip(&o).take(10).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst <= 0.1 + 1e-9, "{name}: one of the first 10 spikes is {worst} ms from jNeuroML's");
        let rel = (o.len() as f64 - r.len() as f64).abs() / r.len() as f64;
        assert!(rel <= 0.02, "{name}: {} spikes before 125 ms, jNeuroML {}", o.len(), r.len());
        eprintln!("{name}: {} spikes before 125 ms (jNeuroML {}), first 10 within {worst:.2} ms", o.len(), r.len());
    }
    eprintln!("largest |ΔV|: {early:.2e} mV before 52.5 ms, {late:.3} mV to 60 ms");
}

/// A network using a cell component the importer does not map is refused with the file, the line and the supported
/// components, and writes nothing.
#[test]
fn unsupported_neuroml_component_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let nml = write(
        dir.path(),
        "izh.net.nml",
        "<neuroml id=\"x\">\n  <adExIaFCell id=\"adex\" C=\"281pF\" gL=\"30nS\" EL=\"-70.6mV\" reset=\"-70.6mV\" VT=\"-50.4mV\" thresh=\"-40.4mV\" delT=\"2mV\" tauw=\"144ms\" refract=\"0ms\" a=\"4nS\" b=\"0.0805nA\"/>\n  <network id=\"net\">\n    <population id=\"P\" component=\"adex\" size=\"2\"/>\n  </network>\n</neuroml>\n",
    );
    let out = dir.path().join("out");
    let o = neurotwin(&["import", nml.to_str().unwrap(), "--to", "scenario", "-o", out.to_str().unwrap()], dir.path());
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("izh.net.nml:4:") && err.contains("<adExIaFCell>") && err.contains("izhikevich2007Cell"),
        "{err}"
    );
    assert!(!out.exists() || files_below(&out).is_empty(), "nothing written");
}

/// Izhikevich neurons (`izhikevich2007Cell`, two cell types: 6 regular-spiking cells with pulse currents, 3 faster
/// ones they excite and that inhibit them; delays 1 and 2 ms; dt 0.025 ms; `data/neuroml_izh`, from
/// `scripts/make_izh_reference.py`) imported and run against jNeuroML: V before the first spike (50.7 ms) to 1e-5 mV
/// (measured 3.6e-6), every cell with jNeuroML's number of spikes (35 in all), each first spike within one step and
/// every spike within 0.5 ms (measured 0.3 ms; the one-step differences from event delivery accumulate).
#[test]
fn izhikevich_network_imports_and_matches_jneuroml() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (nml, lems) = (repo.join("data/neuroml_izh/IzhNet.net.nml"), repo.join("data/neuroml_izh/LEMS_IzhNet.xml"));
    let Imported { names, v, spikes, .. } = import_and_run(dir.path(), &nml, &lems);
    let (header, rows) = read_csv(&repo.join("data/neuroml_izh/reference_v.csv"));
    let mut early = 0.0f64;
    for row in rows.iter().skip(1) {
        let t: f64 = row[0].parse().unwrap();
        if t >= 50.5 {
            break;
        }
        let k = (t / 0.025).round() as usize - 1;
        for (c, name) in header.iter().enumerate().skip(1) {
            let ours = v[k * names.len() + names.iter().position(|n| n == name).unwrap()];
            early = early.max((row[c].parse::<f64>().unwrap() - ours).abs());
        }
    }
    assert!(early <= 1e-5, "V before the first spike differs from jNeuroML's by {early} mV");
    let reference = reference_spikes(&repo.join("data/neuroml_izh/reference_spikes.csv"));
    let mut total = 0;
    for (name, ours) in names.iter().zip(&spikes) {
        let r = reference.get(name).cloned().unwrap_or_default();
        assert_eq!(ours.len(), r.len(), "{name}: {} spikes, jNeuroML {}", ours.len(), r.len());
        if let (Some(a), Some(b)) = (r.first(), ours.first()) {
            assert!((a - b).abs() <= 0.025 + 1e-9, "{name}: first spike at {b} ms, jNeuroML {a} ms");
        }
        let worst = r.iter().zip(ours).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst <= 0.5, "{name}: a spike {worst} ms from jNeuroML's");
        total += ours.len();
    }
    assert_eq!(total, 35);
}
