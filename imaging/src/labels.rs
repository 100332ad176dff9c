//! Mapping recording labels (NeuroPAL names, ROI names) onto connectome neuron names.
//!
//! For each non-empty recording label, in order: (1) exact match; (2) case-insensitive match (unless
//! switched off); (3) the alias table ([`LabelMapOptions::aliases`], recording label → connectome name,
//! the name then matched exactly or case-insensitively); (4) unless switched off, a member of a numbered
//! class (`AS`, `DA`, `DB`, `DD`, `VA`, `VB`, `VC`, `VD` followed by digits) matches the same member with or
//! without zero padding — NeuroPAL writes `VB02`, the connectome `VB2`; `VB2` and `VB12` stay distinct;
//! (5) only if [`LabelMapOptions::expand_classes`] is set, a class name without side/position suffix (`AVA`,
//! `RMD`) matches every connectome neuron named class + `L`/`R`/`D`/`V`/`DL`/`DR`/`VL`/`VR` (`AVAL`,
//! `AVAR`; `RMDDL`, …). Whitespace around labels is ignored. The report lists matched pairs, unmatched
//! labels and connectome neurons no label reached, and conflicts (one connectome neuron reached from
//! several rows). [`suggest_names`] proposes names for an unmatched label.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Options of [`LabelMap::build`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelMapOptions {
    /// Try a case-insensitive match when the exact one fails (default true).
    pub case_insensitive: bool,
    /// Recording label → connectome name, tried after the direct matches (e.g. `"AVA-L" → "AVAL"`).
    pub aliases: HashMap<String, String>,
    /// Let a class label (`AVA`) map to all its members (`AVAL`, `AVAR`) (default false).
    pub expand_classes: bool,
    /// Match numbered class members regardless of zero padding (`VB02` ↔ `VB2`; default true).
    pub zero_padded_numbers: bool,
}

impl Default for LabelMapOptions {
    fn default() -> Self {
        Self { case_insensitive: true, aliases: HashMap::new(), expand_classes: false, zero_padded_numbers: true }
    }
}

/// Classes whose members are numbered (`VB1` … `VB11`): ventral-cord motor neurons.
const NUMBERED_CLASSES: [&str; 8] = ["AS", "DA", "DB", "DD", "VA", "VB", "VC", "VD"];

/// The upper-case name of a numbered class member without zero padding (`vb02` → `VB2`, `VB12` →
/// `VB12`); `None` if `label` is not a numbered class followed by digits only.
pub fn unpadded_number(label: &str) -> Option<String> {
    let up = label.trim().to_uppercase();
    let class = NUMBERED_CLASSES.iter().find(|c| up.starts_with(*c))?;
    let digits = &up[class.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = digits.trim_start_matches('0');
    Some(format!("{class}{}", if number.is_empty() { "0" } else { number }))
}

/// Up to three connectome `names` an unmatched recording `label` was probably meant as: the members of a
/// class label (`AVA` → `AVAL`, `AVAR`), names equal ignoring case when several are, or names one edit
/// (insertion, deletion, substitution or swap of neighbours, ignoring case) away. Empty if none.
pub fn suggest_names(label: &str, names: &[String]) -> Vec<String> {
    let up = label.trim().to_uppercase();
    let upper = |n: &String| n.trim().to_uppercase();
    let pick = |keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        names.iter().filter(|n| keep(&upper(n))).take(3).cloned().collect()
    };
    let members = pick(&|n| n.len() > up.len() && n.starts_with(&up) && class_suffix(&n[up.len()..]));
    if !members.is_empty() {
        return members;
    }
    let same = pick(&|n| n == up);
    if !same.is_empty() {
        return same;
    }
    pick(&|n| n.len().abs_diff(up.len()) <= 1 && one_edit_apart(n, &up))
}

/// Whether `a` and `b` differ by exactly one insertion, deletion, substitution or swap of neighbours.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    match (ra.len(), rb.len()) {
        (0, 1) | (1, 0) | (1, 1) => true,
        (2, 2) => ra[0] == rb[1] && ra[1] == rb[0],
        _ => false,
    }
}

/// How a label was matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchKind {
    /// Identical strings (after trimming).
    Exact,
    /// Equal ignoring case.
    CaseInsensitive,
    /// Through the alias table.
    Alias,
    /// A numbered class member matched regardless of zero padding (`VB02` ↔ `VB2`).
    ZeroPadded,
    /// A class label expanded to one of its members.
    Class,
}

/// One (recording row, connectome neuron) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelMatch {
    /// Row in the recording.
    pub row: usize,
    /// The recording's label.
    pub label: String,
    /// Index in the connectome's name list.
    pub neuron: usize,
    /// The connectome's name.
    pub name: String,
    /// How it matched.
    pub kind: MatchKind,
}

/// The mapping between recording rows and connectome neurons, with what did not match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelMap {
    /// Matched pairs, by recording row (a class label gives several pairs).
    pub matches: Vec<LabelMatch>,
    /// Labelled rows that matched nothing: (row, label).
    pub unmatched_labels: Vec<(usize, String)>,
    /// Connectome neurons (index, name) that no row matched.
    pub unmatched_neurons: Vec<(usize, String)>,
    /// Connectome neurons reached from more than one row: (neuron name, the rows' labels).
    pub conflicts: Vec<(String, Vec<String>)>,
    /// Number of rows with an empty label (not mapped).
    pub unlabelled: usize,
}

fn class_suffix(rest: &str) -> bool {
    matches!(rest, "L" | "R" | "D" | "V" | "DL" | "DR" | "VL" | "VR")
}

impl LabelMap {
    /// Maps `labels` (one per recording row) onto connectome neuron `names` (see the module documentation).
    pub fn build(labels: &[String], names: &[String], opts: &LabelMapOptions) -> Self {
        let mut exact: HashMap<&str, usize> = HashMap::new();
        let mut lower: HashMap<String, Vec<usize>> = HashMap::new();
        let mut numbered: HashMap<String, Vec<usize>> = HashMap::new();
        for (j, n) in names.iter().enumerate() {
            let t = n.trim();
            if t.is_empty() {
                continue;
            }
            exact.entry(t).or_insert(j);
            lower.entry(t.to_uppercase()).or_default().push(j);
            if opts.zero_padded_numbers
                && let Some(key) = unpadded_number(t)
            {
                numbered.entry(key).or_default().push(j);
            }
        }
        let direct = |s: &str| -> Option<(usize, MatchKind)> {
            if let Some(&j) = exact.get(s) {
                return Some((j, MatchKind::Exact));
            }
            if opts.case_insensitive
                && let Some([j]) = lower.get(&s.to_uppercase()).map(Vec::as_slice)
            {
                return Some((*j, MatchKind::CaseInsensitive));
            }
            None
        };
        let mut map = LabelMap::default();
        for (row, raw) in labels.iter().enumerate() {
            let label = raw.trim();
            if label.is_empty() {
                map.unlabelled += 1;
                continue;
            }
            let mut found: Vec<(usize, MatchKind)> = Vec::new();
            if let Some(hit) = direct(label) {
                found.push(hit);
            } else if let Some(target) = opts.aliases.get(label).or_else(|| opts.aliases.get(raw))
                && let Some((j, _)) = direct(target.trim())
            {
                found.push((j, MatchKind::Alias));
            } else if let Some([j]) = unpadded_number(label).and_then(|k| numbered.get(&k)).map(Vec::as_slice) {
                found.push((*j, MatchKind::ZeroPadded));
            } else if opts.expand_classes {
                let up = label.to_uppercase();
                for (j, n) in names.iter().enumerate() {
                    let n_up = n.trim().to_uppercase();
                    if n_up.len() > up.len() && n_up.starts_with(&up) && class_suffix(&n_up[up.len()..]) {
                        found.push((j, MatchKind::Class));
                    }
                }
            }
            if found.is_empty() {
                map.unmatched_labels.push((row, raw.clone()));
            }
            for (neuron, kind) in found {
                map.matches.push(LabelMatch { row, label: raw.clone(), neuron, name: names[neuron].clone(), kind });
            }
        }
        let mut by_neuron: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for m in &map.matches {
            by_neuron.entry(m.neuron).or_default().push(m.label.clone());
        }
        map.conflicts =
            by_neuron.iter().filter(|(_, l)| l.len() > 1).map(|(&j, l)| (names[j].clone(), l.clone())).collect();
        map.unmatched_neurons = names
            .iter()
            .enumerate()
            .filter(|(j, n)| !n.trim().is_empty() && !by_neuron.contains_key(j))
            .map(|(j, n)| (j, n.clone()))
            .collect();
        map
    }

    /// Connectome neuron indices matched by recording row `row` (several for a class label).
    pub fn neurons_of_row(&self, row: usize) -> Vec<usize> {
        self.matches.iter().filter(|m| m.row == row).map(|m| m.neuron).collect()
    }

    /// Recording rows matched to connectome neuron `neuron`.
    pub fn rows_of_neuron(&self, neuron: usize) -> Vec<usize> {
        self.matches.iter().filter(|m| m.neuron == neuron).map(|m| m.row).collect()
    }

    /// A multi-line human-readable report (same as `Display`).
    pub fn report(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for LabelMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: std::collections::BTreeSet<usize> = self.matches.iter().map(|m| m.row).collect();
        writeln!(
            f,
            "label map: {} matched pair(s) from {} row(s); {} unmatched label(s); {} unlabelled row(s); {} connectome \
             neuron(s) without a recording; {} conflict(s)",
            self.matches.len(),
            rows.len(),
            self.unmatched_labels.len(),
            self.unlabelled,
            self.unmatched_neurons.len(),
            self.conflicts.len()
        )?;
        for m in &self.matches {
            writeln!(f, "  matched   row {:>4} {:<10} -> {:<10} ({:?})", m.row, m.label, m.name, m.kind)?;
        }
        for (row, l) in &self.unmatched_labels {
            writeln!(f, "  unmatched row {row:>4} {l}")?;
        }
        for (name, labels) in &self.conflicts {
            writeln!(f, "  conflict  {name} <- {}", labels.join(", "))?;
        }
        if !self.unmatched_neurons.is_empty() {
            let names: Vec<&str> = self.unmatched_neurons.iter().map(|(_, n)| n.as_str()).collect();
            writeln!(f, "  connectome neurons without a recording: {}", names.join(" "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn class_expansion_only_on_request() {
        let names = s(&["AVAL", "AVAR", "RMDDL", "RMDL", "AVB"]);
        let m = LabelMap::build(&s(&["AVA"]), &names, &LabelMapOptions::default());
        assert_eq!(m.unmatched_labels, vec![(0, "AVA".to_string())]);
        let opts = LabelMapOptions { expand_classes: true, ..Default::default() };
        let m = LabelMap::build(&s(&["AVA", "RMD"]), &names, &opts);
        let got: Vec<&str> = m.matches.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(got, ["AVAL", "AVAR", "RMDDL", "RMDL"]);
    }

    /// NeuroPAL's zero-padded `VB02` found no `VB2` before the fix; `VB12` must not match `VB2` or `VB1`.
    #[test]
    fn zero_padded_class_numbers_match_the_connectome_names() {
        let names = s(&["VB2", "VB12", "DD1", "AS10", "AVAL", "VC3"]);
        let labels = s(&["VB02", "VB12", "dd01", "AS010", "VB1", "AVAL", "vc03", "VB002X"]);
        let m = LabelMap::build(&labels, &names, &LabelMapOptions::default());
        let got: Vec<(&str, &str, MatchKind)> =
            m.matches.iter().map(|x| (x.label.as_str(), x.name.as_str(), x.kind)).collect();
        assert_eq!(
            got,
            [
                ("VB02", "VB2", MatchKind::ZeroPadded),
                ("VB12", "VB12", MatchKind::Exact),
                ("dd01", "DD1", MatchKind::ZeroPadded),
                ("AS010", "AS10", MatchKind::ZeroPadded),
                ("AVAL", "AVAL", MatchKind::Exact),
                ("vc03", "VC3", MatchKind::ZeroPadded),
            ]
        );
        assert_eq!(m.unmatched_labels, [(4, "VB1".to_string()), (7, "VB002X".to_string())]);
        // And the other way round: a connectome with padded names, a recording without.
        let m = LabelMap::build(&s(&["VB2"]), &s(&["VB02", "VB12"]), &LabelMapOptions::default());
        assert_eq!(m.matches[0].name, "VB02");
        let off = LabelMapOptions { zero_padded_numbers: false, ..Default::default() };
        assert!(LabelMap::build(&s(&["VB02"]), &names, &off).matches.is_empty());
        assert_eq!(unpadded_number("VB12").as_deref(), Some("VB12"));
        assert_eq!(unpadded_number("AVAL"), None);
        assert_eq!(unpadded_number("VB"), None);
    }

    #[test]
    fn unmatched_labels_get_suggestions() {
        let names = s(&["AVAL", "AVAR", "AVBL", "RIML", "VB2", "ADAL"]);
        assert_eq!(suggest_names("AVA", &names), ["AVAL", "AVAR"]);
        assert_eq!(suggest_names("AVLA", &names), ["AVAL"]);
        assert_eq!(suggest_names("RIM", &names), ["RIML"]);
        assert_eq!(suggest_names("rimll", &names), ["RIML"]);
        assert_eq!(suggest_names("AVXL", &names), ["AVAL", "AVBL"]);
        assert!(suggest_names("XYZQ", &names).is_empty());
        let twins = s(&["Abc", "ABC"]);
        assert_eq!(suggest_names("abc", &twins), ["Abc", "ABC"]);
    }
}
