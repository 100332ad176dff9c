//! The bundled C. elegans connectome (data/celegans, Cook et al. 2019) holds the published wiring, and the
//! generic importer reads the White et al. 1986 table shipped in ../shared/data when it is present.

use std::path::{Path, PathBuf};

use neurotwin_connectome::import::CELEGANS_NAME;
use neurotwin_connectome::{
    CompileOptions, Connection, Connectome, CsvLayout, SynapseKind, TransmitterMap, compile, load_celegans_bundled,
    read_csv,
};

fn id(c: &Connectome, name: &str) -> u64 {
    c.neurons.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("{name} missing")).id
}

/// Connections of `kind` from `a` to `b` (electrical: either direction).
fn between<'c>(c: &'c Connectome, a: &str, b: &str, kind: SynapseKind) -> Vec<&'c Connection> {
    let (a, b) = (id(c, a), id(c, b));
    c.connections
        .iter()
        .filter(|k| {
            k.kind == kind
                && ((k.pre, k.post) == (a, b) || (kind == SynapseKind::Electrical && (k.pre, k.post) == (b, a)))
        })
        .collect()
}

fn count(c: &Connectome, a: &str, b: &str, kind: SynapseKind) -> f32 {
    between(c, a, b, kind).iter().map(|k| k.count).sum()
}

fn transmitter<'c>(c: &'c Connectome, name: &str) -> Option<&'c str> {
    c.neurons.iter().find(|n| n.name == name).and_then(|n| n.transmitter.as_deref())
}

#[test]
fn bundled_sizes_and_provenance() {
    let c = load_celegans_bundled().unwrap();
    assert_eq!(c.name, CELEGANS_NAME);
    assert!(c.provenance.iter().any(|p| p.contains("Cook et al. 2019")));
    // 302 neurons + 171 muscles / end organs, as in Cook et al. 2019's hermaphrodite matrices.
    assert_eq!(c.neurons.len(), 473);
    let neuronal = ["sensory", "interneuron", "motor", "pharyngeal"];
    let neurons = c.neurons.iter().filter(|n| neuronal.contains(&n.cell_type.as_str())).count();
    let unclassified: Vec<_> = c.neurons.iter().filter(|n| n.cell_type.is_empty()).map(|n| n.name.as_str()).collect();
    assert_eq!(unclassified, ["CANL", "CANR"]); // "Unknown" in Fenyves et al. 2020
    assert_eq!(neurons + unclassified.len(), 302);
    assert_eq!(c.neurons.iter().filter(|n| n.cell_type == "muscle").count(), 135);
    let (chem, elec): (Vec<_>, Vec<_>) = c.connections.iter().partition(|k| k.kind == SynapseKind::Chemical);
    assert_eq!(chem.len(), 4879);
    assert_eq!(chem.iter().map(|k| k.count as f64).sum::<f64>(), 28113.0);
    // Generic_GJ is symmetric: each undirected junction is listed once.
    assert_eq!(elec.len(), 1450);
    assert_eq!(elec.iter().map(|k| k.count as f64).sum::<f64>(), 11680.0);
    let mut pairs: Vec<(u64, u64)> = elec.iter().map(|k| (k.pre.min(k.post), k.pre.max(k.post))).collect();
    pairs.sort_unstable();
    pairs.dedup();
    assert_eq!(pairs.len(), elec.len());
    // Every neuron of the nervous system has a position and (but for three) a ganglion.
    assert_eq!(c.neurons.iter().filter(|n| n.position.is_some()).count(), 302);
    assert_eq!(c.neurons.iter().find(|n| n.name == "AVAL").unwrap().region.as_deref(), Some("lateral ganglion"));
}

#[test]
fn bundled_wiring_matches_the_published_circuit() {
    let c = load_celegans_bundled().unwrap();
    use SynapseKind::{Chemical, Electrical};
    // The backward command interneurons are strongly gap-junction coupled (Cook 2019: 18 junctions).
    assert_eq!(count(&c, "AVAL", "AVAR", Electrical), 18.0);
    assert_eq!(between(&c, "AVAL", "AVAR", Electrical).len(), 1);
    // Touch circuit (Chalfie et al. 1985): ALM -> AVD and PVC, AVD -> AVA, PVC -> AVB, PLM =gap= PVC.
    assert_eq!(count(&c, "ALML", "AVDR", Chemical), 3.0);
    assert_eq!(count(&c, "ALML", "PVCL", Chemical), 11.0);
    assert_eq!(count(&c, "AVDL", "AVAL", Chemical), 37.0);
    assert_eq!(count(&c, "PVCL", "AVBL", Chemical), 7.0);
    assert_eq!(count(&c, "PLML", "PVCL", Electrical), 4.0);
    // AVA drives the A-type motor neurons.
    assert_eq!(count(&c, "AVAL", "VA8", Chemical), 7.0);
    // Transmitters: GABAergic RME and D-type motor neurons (McIntire et al. 1993), cholinergic AVA and
    // A/B motor neurons, glutamatergic touch receptors and AWC.
    for n in ["RMEL", "RMED", "DD1", "VD1", "VD13"] {
        assert_eq!(transmitter(&c, n), Some("GABA"), "{n}");
    }
    for n in ["AVAL", "AVAR", "AVBL", "VA8", "DA1", "DB1"] {
        assert_eq!(transmitter(&c, n), Some("ACh"), "{n}");
    }
    for n in ["ALML", "PLML", "AWCL"] {
        assert_eq!(transmitter(&c, n), Some("Glu"), "{n}");
    }
    // Per-connection annotation and the Fenyves et al. 2020 glutamate sign: AWC inhibits AIY through the
    // glutamate-gated chloride channel GLC-3 (Chalasani et al. 2007, Nature 450:63).
    let awc = between(&c, "AWCL", "AIYL", Chemical);
    assert_eq!((awc[0].transmitter.as_deref(), awc[0].receptor.as_deref()), (Some("Glu"), Some("Glu_inh")));
    let alm = between(&c, "ALML", "AVDR", Chemical);
    assert_eq!(alm[0].receptor.as_deref(), Some("Glu_exc"));
    assert_eq!(between(&c, "DD1", "MDL09", Chemical)[0].transmitter.as_deref(), Some("GABA"));
    let receptors: Vec<&str> = c.connections.iter().filter_map(|k| k.receptor.as_deref()).collect();
    assert_eq!(receptors.iter().filter(|&&r| r == "Glu_inh").count(), 26);
    assert_eq!(receptors.iter().filter(|&&r| r == "Glu_exc").count(), 568);
}

#[test]
fn bundled_compiles_with_the_celegans_map() {
    let c = load_celegans_bundled().unwrap();
    let opt = CompileOptions {
        transmitters: TransmitterMap::celegans(),
        weight_per_synapse: 1.0,
        gap_per_junction_ns: 0.1,
        ..Default::default()
    };
    let net = compile(&c, &opt).unwrap();
    let names: Vec<&str> = net.receptors.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["ACh", "GABA", "Glu_exc", "Glu_inh", "other"]);
    assert_eq!(net.report.chemical_connections, 4879);
    assert_eq!(net.report.electrical_connections, 1450);
    let per: std::collections::HashMap<_, _> = net.report.synapses_per_receptor.iter().cloned().collect();
    assert_eq!(per["Glu_inh"], 26);
    assert!(per["ACh"] > per["GABA"] && per["GABA"] > 0 && per["other"] > 0, "{per:?}");
    // Signs: GABA and Glu_inh inhibitory, ACh excitatory.
    let index = |n: &str| net.neurons.iter().position(|x| x.name == n).unwrap() as u32;
    let weight = |a: &str, b: &str| {
        net.chemical
            .synapses()
            .into_iter()
            .filter(|s| s.pre == index(a) && s.post == index(b))
            .map(|s| s.weight)
            .sum::<f32>()
    };
    assert_eq!(weight("DD1", "MDL09"), -13.0);
    assert_eq!(weight("AWCL", "AIYL"), -22.0);
    assert_eq!(weight("AVDL", "AVAL"), 37.0);
    assert_eq!(weight("ALML", "AVDR"), 3.0);
    // AVA pair coupling: 18 junctions × 0.1 nS.
    let (partners, g) = net.gap.row(index("AVAL"));
    let k = partners.iter().position(|&p| p == index("AVAR")).unwrap();
    assert!((g[k] - 1.8).abs() < 1e-5);
}

fn shared_celegans() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/celegans")
}

#[test]
fn white_1986_table_through_the_generic_importer() {
    let path = shared_celegans().join("aconnectome_white_1986_whole.csv");
    if !path.is_file() {
        eprintln!("skipped: {} not found (optional shared dataset)", path.display());
        return;
    }
    // Tab-separated `pre post type synapses` with neuron names and no neurons file.
    let c = read_csv(&path, None, CsvLayout::Auto).unwrap();
    assert_eq!(c.name, "aconnectome_white_1986_whole");
    assert_eq!(c.connections.len(), 2961);
    assert_eq!(c.connections.iter().filter(|k| k.kind == SynapseKind::Electrical).count(), 575);
    assert_eq!(c.neurons.len(), 309);
    assert_eq!(count(&c, "AVAL", "AVAR", SynapseKind::Electrical), 5.0);
    assert_eq!(count(&c, "ALML", "PVCL", SynapseKind::Chemical), 4.0);
    assert_eq!(count(&c, "AVDL", "AVAL", SynapseKind::Chemical), 13.0);
    assert_eq!(count(&c, "AVAL", "VA8", SynapseKind::Chemical), 9.0);
    // Synthesised ids are 0.. in order of first appearance; names are unique.
    assert!(c.neurons.iter().enumerate().all(|(i, n)| n.id == i as u64));
    assert_eq!(c.name_index().len(), 309);
    compile(&c, &CompileOptions { transmitters: TransmitterMap::celegans(), ..Default::default() }).unwrap();
}
