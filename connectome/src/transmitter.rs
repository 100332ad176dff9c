//! Neurotransmitter → receptor class (and so sign) maps.
//!
//! A receptor class is one synaptic input channel of the compiled network (see
//! [`neurotwin_models::ReceptorChannel`]): it carries the sign of its synapses (excitatory or inhibitory),
//! selects the synaptic time constant in the neuron model, and is what drug-like perturbations act on
//! (blocking `GABA` blocks every synapse compiled into the `GABA` channel).

use neurotwin_models::ReceptorChannel;
use serde::{Deserialize, Serialize};

/// Canonical short name of a neurotransmitter given in any common spelling
/// (`"acetylcholine"`, `"ACH"`, `"ach"` → `"ACh"`; `"GLUT"`, `"glutamate"` → `"Glu"`, …).
/// Unknown names are returned trimmed, unchanged.
pub fn canonical(nt: &str) -> String {
    let t = nt.trim();
    let l = t.to_ascii_lowercase();
    let c = match l.as_str() {
        "ach" | "acetylcholine" | "cholinergic" => "ACh",
        "glu" | "glut" | "glutamate" | "glutamatergic" => "Glu",
        "gaba" | "gabaergic" => "GABA",
        "da" | "dop" | "dopamine" | "dopaminergic" => "DA",
        "5ht" | "5-ht" | "ser" | "serotonin" | "serotonergic" => "5HT",
        "oa" | "oct" | "octopamine" | "octopaminergic" => "OA",
        "ta" | "tyr" | "tyramine" | "tyraminergic" => "TA",
        "his" | "hist" | "histamine" | "histaminergic" => "His",
        "gly" | "glycine" => "Gly",
        _ => return t.to_string(),
    };
    c.to_string()
}

/// One rule: synapses of `transmitter` go to receptor class `receptor`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransmitterRule {
    pub transmitter: String,
    pub receptor: String,
}

/// The map used by the compiler. Receptor classes are listed once with their sign; rules map
/// transmitters onto them; `fallback` is used for connections with no or an unlisted transmitter
/// (`None` makes those an error).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransmitterMap {
    pub receptors: Vec<ReceptorChannel>,
    pub rules: Vec<TransmitterRule>,
    pub fallback: Option<String>,
    /// Where the assignment comes from (shown by `inspect` and stored with outputs).
    #[serde(default)]
    pub source: String,
}

fn chan(name: &str, excitatory: bool) -> ReceptorChannel {
    ReceptorChannel { name: name.to_string(), excitatory }
}

fn rule(nt: &str, receptor: &str) -> TransmitterRule {
    TransmitterRule { transmitter: nt.to_string(), receptor: receptor.to_string() }
}

impl TransmitterMap {
    /// Drosophila (FlyWire) convention of Shiu et al. 2024, Nature 634:210 ("A Drosophila computational
    /// brain model reveals sensorimotor processing"): acetylcholine excitatory, GABA and glutamate
    /// inhibitory (glutamate acts on GluClα in the fly CNS, Liu & Wilson 2013, PNAS 110:10294); the model
    /// treats the remaining (modulatory) transmitters as excitatory. Each transmitter keeps its own
    /// channel so that perturbations can target it.
    pub fn fly() -> Self {
        Self {
            receptors: vec![
                chan("ACh", true),
                chan("GABA", false),
                chan("Glu", false),
                chan("DA", true),
                chan("5HT", true),
                chan("OA", true),
                chan("other", true),
            ],
            rules: vec![
                rule("ACh", "ACh"),
                rule("GABA", "GABA"),
                rule("Glu", "Glu"),
                rule("DA", "DA"),
                rule("5HT", "5HT"),
                rule("OA", "OA"),
            ],
            fallback: Some("other".into()),
            source: "Shiu et al. 2024 (Nature 634:210) sign convention for FlyWire transmitters".into(),
        }
    }

    /// C. elegans: acetylcholine excitatory (nicotinic receptors at most chemical synapses), GABA
    /// inhibitory (UNC-49 GABA_A receptors; McIntire et al. 1993, Nature 364:337), glutamate split into
    /// an excitatory (`Glu_exc`: GLR AMPA/kainate-type) and an inhibitory (`Glu_inh`: GLC glutamate-gated
    /// chloride) class. Connections without a per-connection receptor fall back to the transmitter rule;
    /// the bundled connectome sets `Glu_exc`/`Glu_inh` per connection from Fenyves et al. 2020.
    /// Monoamines and unannotated synapses: excitatory (`other`), the usual assumption of wiring-based
    /// models (e.g. Varshney et al. 2011, PLoS Comput Biol 7:e1001066, treat all chemical synapses as
    /// excitatory unless GABAergic).
    pub fn celegans() -> Self {
        Self {
            receptors: vec![
                chan("ACh", true),
                chan("GABA", false),
                chan("Glu_exc", true),
                chan("Glu_inh", false),
                chan("other", true),
            ],
            rules: vec![rule("ACh", "ACh"), rule("GABA", "GABA"), rule("Glu", "Glu_exc")],
            fallback: Some("other".into()),
            source: "C. elegans defaults (ACh +, GABA −, Glu per Fenyves et al. 2020, others +)".into(),
        }
    }

    /// Two classes, `exc` and `inh`, for generated benchmark networks (weights carry their sign).
    pub fn exc_inh() -> Self {
        Self {
            receptors: vec![chan("exc", true), chan("inh", false)],
            rules: vec![],
            fallback: Some("exc".into()),
            source: "generated network: exc/inh channels".into(),
        }
    }

    /// A named preset: `fly`, `celegans`, `exc_inh`.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "fly" => Some(Self::fly()),
            "celegans" => Some(Self::celegans()),
            "exc_inh" => Some(Self::exc_inh()),
            _ => None,
        }
    }

    /// Index of a receptor class by name.
    pub fn receptor_index(&self, name: &str) -> Option<usize> {
        self.receptors.iter().position(|r| r.name == name)
    }

    /// Receptor class for a connection: its explicit receptor, else the rule for its transmitter, else
    /// the fallback. `Err` carries the reason for the caller's message.
    pub fn resolve(&self, receptor: Option<&str>, transmitter: Option<&str>) -> Result<usize, String> {
        if let Some(r) = receptor {
            return self.receptor_index(r).ok_or_else(|| {
                format!("receptor `{r}` is not defined (defined: {})", self.receptor_names().join(", "))
            });
        }
        if let Some(nt) = transmitter {
            let c = canonical(nt);
            if let Some(rule) = self.rules.iter().find(|r| canonical(&r.transmitter) == c) {
                return self
                    .receptor_index(&rule.receptor)
                    .ok_or_else(|| format!("rule for `{c}` names undefined receptor `{}`", rule.receptor));
            }
        }
        match &self.fallback {
            Some(f) => self.receptor_index(f).ok_or_else(|| format!("fallback receptor `{f}` is not defined")),
            None => Err(format!(
                "no rule for transmitter {:?} and no fallback receptor (add a rule or set `fallback`)",
                transmitter.unwrap_or("<none>")
            )),
        }
    }

    pub fn receptor_names(&self) -> Vec<&str> {
        self.receptors.iter().map(|r| r.name.as_str()).collect()
    }

    /// Checks that names are unique and that rules and fallback name defined receptors.
    pub fn validate(&self) -> Result<(), String> {
        for (i, r) in self.receptors.iter().enumerate() {
            if self.receptors[..i].iter().any(|q| q.name == r.name) {
                return Err(format!("receptor `{}` is defined twice", r.name));
            }
        }
        if self.receptors.len() > 255 {
            return Err("at most 255 receptor classes are supported".into());
        }
        for r in &self.rules {
            if self.receptor_index(&r.receptor).is_none() {
                return Err(format!("rule for `{}` names undefined receptor `{}`", r.transmitter, r.receptor));
            }
        }
        if let Some(f) = &self.fallback
            && self.receptor_index(f).is_none()
        {
            return Err(format!("fallback receptor `{f}` is not defined"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_canonicalised() {
        for (a, b) in [("ACH", "ACh"), ("acetylcholine", "ACh"), ("GLUT", "Glu"), ("gaba", "GABA"), ("SER", "5HT")] {
            assert_eq!(canonical(a), b);
        }
        assert_eq!(canonical(" FMRFamide "), "FMRFamide");
    }

    #[test]
    fn fly_signs_follow_shiu_2024() {
        let m = TransmitterMap::fly();
        m.validate().unwrap();
        let sign = |nt: &str| m.receptors[m.resolve(None, Some(nt)).unwrap()].excitatory;
        assert!(sign("ACH"));
        assert!(!sign("GABA"));
        assert!(!sign("GLUT"));
        assert!(sign("DA"));
        assert!(sign("unknown-peptide"));
    }

    #[test]
    fn explicit_receptor_wins_and_unknown_is_an_error() {
        let m = TransmitterMap::celegans();
        assert_eq!(m.resolve(Some("Glu_inh"), Some("Glu")).unwrap(), 3);
        assert!(m.resolve(Some("NMDA"), None).unwrap_err().contains("not defined"));
    }
}
