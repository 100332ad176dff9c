//! Label mapping between recording labels and connectome neuron names.

use std::collections::HashMap;

use neurotwin_imaging::{LabelMap, LabelMapOptions, MatchKind};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn exact_case_alias_and_report() {
    let labels = s(&["AVAL", "avar", "", "AVA-L2", "SAAD?", "RIML", "riml"]);
    let names = s(&["AVAL", "AVAR", "AIYL", "RIML", "AVBL"]);
    let opts =
        LabelMapOptions { aliases: HashMap::from([("AVA-L2".to_string(), "aiyl".to_string())]), ..Default::default() };
    let m = LabelMap::build(&labels, &names, &opts);
    let pairs: Vec<(usize, &str, MatchKind)> = m.matches.iter().map(|x| (x.row, x.name.as_str(), x.kind)).collect();
    assert_eq!(
        pairs,
        [
            (0, "AVAL", MatchKind::Exact),
            (1, "AVAR", MatchKind::CaseInsensitive),
            (3, "AIYL", MatchKind::Alias),
            (5, "RIML", MatchKind::Exact),
            (6, "RIML", MatchKind::CaseInsensitive)
        ]
    );
    assert_eq!(m.unmatched_labels, vec![(4, "SAAD?".to_string())]);
    assert_eq!(m.unmatched_neurons, vec![(4, "AVBL".to_string())]);
    assert_eq!(m.conflicts, vec![("RIML".to_string(), s(&["RIML", "riml"]))]);
    assert_eq!(m.unlabelled, 1);
    assert_eq!(m.neurons_of_row(1), [1]);
    assert_eq!(m.rows_of_neuron(3), [5, 6]);
    let report = m.report();
    println!("{report}");
    assert!(report.contains("5 matched pair(s)") && report.contains("1 unmatched label(s)"), "{report}");
    assert!(report.contains("unmatched row    4 SAAD?"), "{report}");
    assert!(report.contains("conflict  RIML <- RIML, riml"), "{report}");
    assert!(report.contains("connectome neurons without a recording: AVBL"), "{report}");

    let strict = LabelMap::build(&labels, &names, &LabelMapOptions { case_insensitive: false, ..Default::default() });
    assert_eq!(strict.matches.len(), 2);
}

#[test]
fn class_labels_map_to_both_sides_only_when_asked() {
    let names = s(&["AVAL", "AVAR", "AVBL", "AVBR"]);
    let labels = s(&["AVA", "AVBL"]);
    let m = LabelMap::build(&labels, &names, &LabelMapOptions::default());
    assert_eq!(m.unmatched_labels, vec![(0, "AVA".to_string())]);
    let m = LabelMap::build(&labels, &names, &LabelMapOptions { expand_classes: true, ..Default::default() });
    assert_eq!(m.neurons_of_row(0), [0, 1]);
    assert!(m.matches.iter().filter(|x| x.row == 0).all(|x| x.kind == MatchKind::Class));
    assert_eq!(m.unmatched_neurons, vec![(3, "AVBR".to_string())]);
}
