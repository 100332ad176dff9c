//! Resolving target specifications (names, ids, patterns, cell types) to neuron indices, with errors
//! that point at the line of the offending name.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use neurotwin_connectome::Neuron;
use regex::Regex;

use crate::error::{ScenarioError, line_of};
use crate::spec::TargetSpec;

/// Name and id lookup over a neuron table. The maps are built on first use: a scenario that names no neuron
/// (e.g. a generator with `all = true` targets) never pays for them (the fly brain's: ≈ 7 MB on every MPI rank).
pub struct NeuronLookup<'a> {
    neurons: &'a [Neuron],
    by_name: OnceLock<HashMap<&'a str, u32>>,
    by_id: OnceLock<HashMap<u64, u32>>,
}

impl<'a> NeuronLookup<'a> {
    pub fn new(neurons: &'a [Neuron]) -> Self {
        Self { neurons, by_name: OnceLock::new(), by_id: OnceLock::new() }
    }

    fn by_name(&self) -> &HashMap<&'a str, u32> {
        self.by_name.get_or_init(|| neurotwin_connectome::network::name_index(self.neurons))
    }

    fn by_id(&self) -> &HashMap<u64, u32> {
        self.by_id.get_or_init(|| self.neurons.iter().enumerate().map(|(i, n)| (n.id, i as u32)).collect())
    }

    pub fn name(&self, i: u32) -> &str {
        &self.neurons[i as usize].name
    }

    /// Up to five known names sharing the longest prefix with `name` (for "did you mean").
    fn similar(&self, name: &str) -> Vec<&str> {
        for len in (1..=name.len().min(4)).rev() {
            let p = &name[..len];
            let mut v: Vec<&str> = self.by_name().keys().copied().filter(|k| k.starts_with(p)).collect();
            if !v.is_empty() {
                v.sort();
                v.truncate(5);
                return v;
            }
        }
        vec![]
    }

    /// Sorted, unique neuron indices selected by `spec`. `what` names the table for messages.
    pub fn resolve(&self, spec: &TargetSpec, path: &Path, text: &str, what: &str) -> Result<Vec<u32>, ScenarioError> {
        let at =
            |pos: usize, message: String| ScenarioError::At { path: path.into(), line: line_of(text, pos), message };
        let mut out = Vec::new();
        let selectors =
            [!spec.names.is_empty(), !spec.ids.is_empty(), spec.pattern.is_some(), spec.cell_type.is_some(), spec.all]
                .iter()
                .filter(|&&b| b)
                .count();
        if selectors == 0 {
            return Err(ScenarioError::File {
                path: path.into(),
                message: format!(
                    "{what}: no targets given; use one of `names`, `ids`, `pattern`, `cell_type`, `all = true`"
                ),
            });
        }
        if spec.all {
            out.extend(0..self.neurons.len() as u32);
        }
        for n in &spec.names {
            match self.by_name().get(n.get_ref().as_str()) {
                Some(&i) => out.push(i),
                None => {
                    let sim = self.similar(n.get_ref());
                    let hint =
                        if sim.is_empty() { String::new() } else { format!("; similar names: {}", sim.join(", ")) };
                    return Err(at(n.span().start, format!("{what}: unknown neuron name `{}`{hint}", n.get_ref())));
                }
            }
        }
        for id in &spec.ids {
            match self.by_id().get(id.get_ref()) {
                Some(&i) => out.push(i),
                None => return Err(at(id.span().start, format!("{what}: unknown neuron id {}", id.get_ref()))),
            }
        }
        if let Some(p) = &spec.pattern {
            let re = Regex::new(&format!("^(?:{})$", p.get_ref()))
                .map_err(|e| at(p.span().start, format!("{what}: invalid pattern `{}`: {e}", p.get_ref())))?;
            let before = out.len();
            out.extend(self.neurons.iter().enumerate().filter(|(_, n)| re.is_match(&n.name)).map(|(i, _)| i as u32));
            if out.len() == before {
                return Err(at(p.span().start, format!("{what}: pattern `{}` matches no neuron name", p.get_ref())));
            }
        }
        if let Some(ct) = &spec.cell_type {
            let before = out.len();
            out.extend(
                self.neurons.iter().enumerate().filter(|(_, n)| &n.cell_type == ct.get_ref()).map(|(i, _)| i as u32),
            );
            if out.len() == before {
                let mut types: Vec<&str> = self.neurons.iter().map(|n| n.cell_type.as_str()).collect();
                types.sort();
                types.dedup();
                types.truncate(20);
                return Err(at(
                    ct.span().start,
                    format!("{what}: no neuron has cell type `{}` (types: {})", ct.get_ref(), types.join(", ")),
                ));
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}
