//! Mapping recording labels (NeuroPAL names, ROI names) onto connectome neuron names.
//!
//! For each non-empty recording label, in order: (1) exact match; (2) case-insensitive match (unless
//! switched off); (3) the alias table ([`LabelMapOptions::aliases`], recording label → connectome name,
//! the name then matched exactly or case-insensitively); (4) only if
//! [`LabelMapOptions::expand_classes`] is set, a class name without side/position suffix (`AVA`, `RMD`)
//! matches every connectome neuron named class + `L`/`R`/`D`/`V`/`DL`/`DR`/`VL`/`VR` (`AVAL`, `AVAR`; `RMDDL`, …).
//! Whitespace around labels is ignored. The report lists matched pairs, unmatched labels and connectome
//! neurons no label reached, and conflicts (one connectome neuron reached from several rows).

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
}

impl Default for LabelMapOptions {
    fn default() -> Self {
        Self { case_insensitive: true, aliases: HashMap::new(), expand_classes: false }
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
        for (j, n) in names.iter().enumerate() {
            let t = n.trim();
            if t.is_empty() {
                continue;
            }
            exact.entry(t).or_insert(j);
            lower.entry(t.to_uppercase()).or_default().push(j);
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
}
