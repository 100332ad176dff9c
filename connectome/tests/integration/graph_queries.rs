//! Graph queries on small hand-made connectomes with known answers.

use neurotwin_connectome::graph::{Direction, GraphPath};
use neurotwin_connectome::{
    CompileOptions, Connection, Connectome, ConnectomeGraph, HubMetric, Neuron, PathMetric, PathOptions, SynapseKind,
    compile,
};

/// A(1) B(2) C(3) D(4) E(5) F(6) G(7); chemical: A→B 3+2 (parallel), B→C 10, A→C 1, C→A 2, C→D 4,
/// D→E 1, E→D 1; gap junctions E–F 2, F–G 1 (and a self-coupling G–G that is ignored).
fn net() -> Connectome {
    let names = ["A", "B", "C", "D", "E", "F", "G"];
    let neurons = names.iter().enumerate().map(|(i, n)| Neuron::new(i as u64 + 1, *n)).collect();
    let ch = |a, b, n| Connection::chemical(a, b, n);
    let el = |a, b, n| Connection::electrical(a, b, n);
    Connectome {
        name: "hand".into(),
        provenance: vec![],
        neurons,
        connections: vec![
            ch(1, 2, 3.0),
            ch(1, 2, 2.0),
            ch(2, 3, 10.0),
            ch(1, 3, 1.0),
            ch(3, 1, 2.0),
            ch(3, 4, 4.0),
            ch(4, 5, 1.0),
            ch(5, 4, 1.0),
            el(5, 6, 2.0),
            el(6, 7, 1.0),
            el(7, 7, 3.0),
        ],
    }
}

fn names(p: &GraphPath) -> Vec<&str> {
    p.steps.iter().map(|s| s.neuron.name.as_str()).collect()
}

const HOPS: PathOptions = PathOptions { metric: PathMetric::Hops, include_gap: false };
const STRONG: PathOptions = PathOptions { metric: PathMetric::Strongest, include_gap: false };

#[test]
fn degrees_and_strengths() {
    let g = ConnectomeGraph::from_connectome(&net()).unwrap();
    let d = g.degrees();
    let row = |i: usize| (d[i].in_degree, d[i].out_degree, d[i].in_synapses, d[i].out_synapses, d[i].gap_degree);
    assert_eq!(row(0), (1, 2, 2.0, 6.0, 0)); // A
    assert_eq!(row(1), (1, 1, 5.0, 10.0, 0)); // B
    assert_eq!(row(2), (2, 2, 11.0, 6.0, 0)); // C
    assert_eq!(row(3), (2, 1, 5.0, 1.0, 0)); // D
    assert_eq!(row(4), (1, 1, 1.0, 1.0, 1)); // E
    assert_eq!((d[5].gap_degree, d[5].gap_junctions), (2, 3.0)); // F
    assert_eq!((d[6].gap_degree, d[6].gap_junctions), (1, 1.0)); // G: self-coupling dropped
    assert_eq!(d[2].neuron.name, "C");
    assert_eq!(d[2].neuron.id, 3);

    let hubs = g.top_hubs(3, HubMetric::OutSynapses);
    let h: Vec<(&str, f64, usize)> = hubs.iter().map(|h| (h.degree.neuron.name.as_str(), h.value, h.rank)).collect();
    assert_eq!(h, [("B", 10.0, 1), ("A", 6.0, 2), ("C", 6.0, 3)]); // tie A/C: lower index first
    let top = g.top_hubs(1, "degree".parse().unwrap());
    assert_eq!((top[0].degree.neuron.name.as_str(), top[0].value), ("C", 4.0));
    assert_eq!(g.top_hubs(100, HubMetric::InDegree).len(), 7);
    assert!("bogus".parse::<HubMetric>().unwrap_err().contains("in_degree"));
    // Results serialise for the CLI's JSON output.
    let json = serde_json::to_string(&hubs).unwrap();
    assert!(json.contains("\"out_synapses\"") && json.contains("\"name\":\"B\""), "{json}");
}

#[test]
fn shortest_and_strongest_paths() {
    let g = ConnectomeGraph::from_connectome(&net()).unwrap();
    let p = g.path_between(&["A"], &["E"], &HOPS).unwrap().unwrap();
    assert_eq!(names(&p), ["A", "C", "D", "E"]);
    assert_eq!((p.hops, p.cost), (3, 3.0));
    assert_eq!(p.steps[0].via, None);
    let via = p.steps[1].via.unwrap();
    assert_eq!((via.kind, via.synapses), (SynapseKind::Chemical, 1.0));

    // Strongest: A→B→C→D costs 1/5 + 1/10 + 1/4 = 0.55 < A→C→D = 1 + 1/4.
    let s = g.path_between(&["A"], &["D"], &STRONG).unwrap().unwrap();
    assert_eq!(names(&s), ["A", "B", "C", "D"]);
    assert!((s.cost - 0.55).abs() < 1e-12, "{}", s.cost);
    assert_eq!(s.hops, 3);
    let h = g.path_between(&["A"], &["D"], &HOPS).unwrap().unwrap();
    assert_eq!(names(&h), ["A", "C", "D"]);

    // Against the direction of synapses: B→A only via C.
    assert_eq!(names(&g.path_between(&["B"], &["A"], &HOPS).unwrap().unwrap()), ["B", "C", "A"]);

    // Sets of sources and targets, names and ids mixed: the nearest pair wins.
    let p = g.path_between(&["A", "4"], &["E", "#1"], &HOPS).unwrap().unwrap();
    assert_eq!(p.hops, 1);
    // A source that is a target: zero hops.
    let p = g.path_between(&["C"], &["C"], &HOPS).unwrap().unwrap();
    assert_eq!((p.hops, names(&p)), (0, vec!["C"]));

    // G is reachable only through gap junctions (both directions).
    assert_eq!(g.path_between(&["A"], &["G"], &HOPS).unwrap(), None);
    let with_gap = PathOptions { include_gap: true, ..HOPS };
    let p = g.path_between(&["A"], &["G"], &with_gap).unwrap().unwrap();
    assert_eq!(names(&p), ["A", "C", "D", "E", "F", "G"]);
    assert_eq!(p.steps[5].via.unwrap().kind, SynapseKind::Electrical);
    let back = g.path_between(&["G"], &["E"], &with_gap).unwrap().unwrap();
    assert_eq!(names(&back), ["G", "F", "E"]);
    let strong = g.path_between(&["G"], &["D"], &PathOptions { include_gap: true, ..STRONG }).unwrap().unwrap();
    assert!((strong.cost - (1.0 + 0.5 + 1.0)).abs() < 1e-12);

    // Unknown neuron.
    let e = g.path_between(&["A"], &["Z"], &HOPS).unwrap_err().to_string();
    assert!(e.contains("unknown neuron `Z`"), "{e}");
    assert!(g.resolve("#7").is_err());
    assert_eq!(g.resolve("7").unwrap(), 6); // id 7 = G
    assert_eq!("strongest".parse::<PathMetric>().unwrap(), PathMetric::Strongest);
}

#[test]
fn strongly_connected_components() {
    let g = ConnectomeGraph::from_connectome(&net()).unwrap();
    let s = g.scc_summary(false);
    assert_eq!((s.count, s.largest, s.singletons, s.neurons), (4, 3, 2, 7));
    assert_eq!(s.largest_sizes, [3, 2, 1, 1]);
    assert_eq!(g.strongly_connected_components(false), vec![vec![0, 1, 2], vec![3, 4], vec![5], vec![6]]);
    let comp: Vec<String> = g.component_of(1, false).into_iter().map(|n| n.name).collect();
    assert_eq!(comp, ["A", "B", "C"]);
    assert_eq!(g.component_of(5, false).len(), 1);

    let s = g.scc_summary(true);
    assert_eq!((s.count, s.largest, s.singletons), (2, 4, 0));
    let comp: Vec<String> = g.component_of(6, true).into_iter().map(|n| n.name).collect();
    assert_eq!(comp, ["D", "E", "F", "G"]);
}

#[test]
fn reachability_within_k_hops() {
    let g = ConnectomeGraph::from_connectome(&net()).unwrap();
    let a = g.resolve("A").unwrap();
    let r = g.reachable_within(&[a], 1, Direction::Downstream, false);
    let got: Vec<(&str, usize)> = r.reached.iter().map(|x| (x.neuron.name.as_str(), x.hops)).collect();
    assert_eq!(got, [("A", 0), ("B", 1), ("C", 1)]);
    assert_eq!(r.per_hop, [1, 2]);
    assert_eq!(g.reachable_within(&[a], 2, Direction::Downstream, false).per_hop, [1, 2, 1]);
    let all = g.reachable_within(&[a], 100, Direction::Downstream, false);
    assert_eq!((all.reached.len(), all.per_hop.clone()), (5, vec![1, 2, 1, 1]));
    let gap = g.reachable_within(&[a], usize::MAX, Direction::Downstream, true);
    assert_eq!(gap.reached.len(), 7);
    assert_eq!(gap.per_hop, [1, 2, 1, 1, 1, 1]);
    assert_eq!(g.reachable_within(&[a], 0, Direction::Downstream, true).reached.len(), 1);

    let d = g.resolve("D").unwrap();
    let up = g.reachable_within(&[d], 1, Direction::Upstream, false);
    let got: Vec<&str> = up.reached.iter().map(|x| x.neuron.name.as_str()).collect();
    assert_eq!(got, ["D", "C", "E"]);
    // Duplicate sources count once.
    assert_eq!(g.reachable_within(&[d, d], 0, Direction::Upstream, false).per_hop, [1]);
}

#[test]
fn compiled_network_graph_agrees_on_structure() {
    let c = net();
    let opt = CompileOptions { gap_per_junction_ns: 1.0, ..Default::default() };
    let compiled = compile(&c, &opt).unwrap();
    let g = ConnectomeGraph::from_compiled(&compiled);
    let h = ConnectomeGraph::from_connectome(&c).unwrap();
    assert_eq!(g.scc_summary(false), h.scc_summary(false));
    assert_eq!(g.scc_summary(true), h.scc_summary(true));
    // Strength of a compiled edge = Σ|weight| = synapse count × 1.0 here, so paths agree.
    for opt in [HOPS, STRONG, PathOptions { include_gap: true, ..STRONG }] {
        let a = g.path_between(&["A"], &["D", "G"], &opt).unwrap().map(|p| names(&p).join(">"));
        let b = h.path_between(&["A"], &["D", "G"], &opt).unwrap().map(|p| names(&p).join(">"));
        assert_eq!(a, b);
    }
    // Degrees agree; synapse numbers count matrix entries (A→B holds two).
    let (dg, dh) = (g.degrees(), h.degrees());
    for (x, y) in dg.iter().zip(&dh) {
        assert_eq!((x.in_degree, x.out_degree, x.gap_degree), (y.in_degree, y.out_degree, y.gap_degree));
    }
    assert_eq!(dg[0].out_synapses, 3.0);
    assert_eq!(g.graph.node_count(), 7);
}

#[test]
fn unknown_endpoint_is_an_error() {
    let mut c = net();
    c.connections.push(Connection::chemical(1, 99, 1.0));
    let e = ConnectomeGraph::from_connectome(&c).unwrap_err().to_string();
    assert!(e.contains("99"), "{e}");
}
