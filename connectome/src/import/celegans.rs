//! The bundled C. elegans hermaphrodite connectome (Cook et al. 2019, Nature 571:63): 473 cells (302
//! neurons plus muscles and other end organs), chemical synapse and gap junction counts, with
//! transmitters (cect's OpenWorm unified annotation, Fenyves et al. 2020 where that has none), the
//! glutamate receptor sign predicted by Fenyves et al. 2020, ganglia and positions (wormneuroatlas).
//!
//! The files live in the repository's `data/celegans/` (`neurons.csv`, `connections.csv`; sources,
//! licences, counts and the conversion in `data/celegans/README.md`, made by
//! `scripts/convert_celegans.py`) and are compiled into the binary (about 200 kB), so that a `neurotwin`
//! binary copied or installed anywhere carries them; they are read with the generic CSV importer. Set
//! `NEUROTWIN_DATA` to a folder containing `celegans/` to read other copies of the two files instead.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::ConnectomeError;
use crate::import::csv::{CsvLayout, read_csv};
use crate::network::Connectome;

/// Name of the bundled connectome.
pub const CELEGANS_NAME: &str = "celegans-cook2019-hermaphrodite";

/// Environment variable naming the data folder (the one containing `celegans/`).
pub const DATA_ENV: &str = "NEUROTWIN_DATA";

/// The bundled files, compiled in.
const NEURONS_CSV: &str = include_str!("../../../data/celegans/neurons.csv");
const CONNECTIONS_CSV: &str = include_str!("../../../data/celegans/connections.csv");

fn data_dir_from(env: Option<&OsStr>) -> Option<PathBuf> {
    env.filter(|root| !root.is_empty()).map(|root| Path::new(root).join("celegans"))
}

/// Folder the bundled C. elegans files are read from: `$NEUROTWIN_DATA/celegans` when the variable is set,
/// else `None` (the copy compiled into the binary).
pub fn celegans_data_dir() -> Option<PathBuf> {
    data_dir_from(std::env::var_os(DATA_ENV).as_deref())
}

/// Loads the bundled connectome: from [`celegans_data_dir`] when `NEUROTWIN_DATA` is set, else from the copy
/// compiled into the binary.
pub fn load_celegans_bundled() -> Result<Connectome, ConnectomeError> {
    match celegans_data_dir() {
        Some(dir) => load_celegans_from(&dir),
        None => load_celegans_embedded(),
    }
}

/// Loads the copy of `data/celegans/{neurons,connections}.csv` compiled into the binary. The CSV importer
/// reads files, so the two texts are written to a temporary folder first (removed afterwards); the
/// provenance names them as `data/celegans/… (embedded in the binary)`.
pub fn load_celegans_embedded() -> Result<Connectome, ConnectomeError> {
    let tmp = tempfile::Builder::new()
        .prefix("neurotwin-celegans-")
        .tempdir()
        .map_err(|e| ConnectomeError::io(std::env::temp_dir(), e))?;
    for (name, text) in [("neurons.csv", NEURONS_CSV), ("connections.csv", CONNECTIONS_CSV)] {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).map_err(|e| ConnectomeError::io(&p, e))?;
    }
    let mut c = load_celegans_from(tmp.path())?;
    for p in &mut c.provenance {
        for name in ["neurons.csv", "connections.csv"] {
            let written = tmp.path().join(name).display().to_string();
            *p = p.replace(&written, &format!("data/celegans/{name} (embedded in the binary)"));
        }
    }
    Ok(c)
}

/// Loads the bundled connectome's files (`neurons.csv`, `connections.csv`) from `dir`.
pub fn load_celegans_from(dir: &Path) -> Result<Connectome, ConnectomeError> {
    let neurons = dir.join("neurons.csv");
    let connections = dir.join("connections.csv");
    for f in [&neurons, &connections] {
        if !f.is_file() {
            return Err(ConnectomeError::format(
                f,
                format!(
                    "C. elegans data not found (set {DATA_ENV} to a folder that contains celegans/neurons.csv \
                     and celegans/connections.csv, or unset it to use the copy built into neurotwin)"
                ),
            ));
        }
    }
    let mut c = read_csv(&connections, Some(&neurons), CsvLayout::Generic)?;
    c.name = CELEGANS_NAME.to_string();
    let mut provenance = vec![
        "Cook et al. 2019, Whole-animal connectomes of both Caenorhabditis elegans sexes, Nature 571:63: \
         hermaphrodite chemical synapse (Generic_CS) and gap junction (Generic_GJ) counts, via the cect 0.3.5 \
         package (C. elegans Connectome Toolbox, MIT licence)"
            .to_string(),
        "Transmitters: cect OpenWormUnifiedReader annotation per connection (majority per neuron); where it has \
         none, the dominant transmitter of Fenyves et al. 2020, PLoS Comput Biol 16:e1007974 (S3 table)"
            .to_string(),
        "Glutamate receptor class (Glu_exc / Glu_inh): receptor-expression sign prediction of Fenyves et al. \
         2020 (S3 table, sheet 5); cell types from its neuron table (sheet 4)"
            .to_string(),
        "Ganglia and positions: wormneuroatlas 0.0.7.3 (Randi et al. 2023, Nature 623:406)".to_string(),
        "Converted by scripts/convert_celegans.py; see data/celegans/README.md".to_string(),
    ];
    provenance.append(&mut c.provenance);
    c.provenance = provenance;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_default_and_override() {
        assert_eq!(data_dir_from(None), None);
        assert_eq!(data_dir_from(Some(OsStr::new(""))), None);
        assert_eq!(data_dir_from(Some(OsStr::new("/opt/nt"))), Some(PathBuf::from("/opt/nt/celegans")));
    }

    /// The compiled-in copy is the repository's files, and says in its provenance that it is embedded.
    #[test]
    fn embedded_copy_matches_the_files() {
        let embedded = load_celegans_embedded().unwrap();
        let files = load_celegans_from(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/celegans")).unwrap();
        assert_eq!((&embedded.neurons, &embedded.connections), (&files.neurons, &files.connections));
        assert_eq!(embedded.neurons.len(), 473);
        let prov = embedded.provenance.join("\n");
        assert!(prov.contains("data/celegans/connections.csv (embedded in the binary)"), "{prov}");
        assert!(!prov.contains(&std::env::temp_dir().display().to_string()), "{prov}");
    }

    #[test]
    fn missing_folder_is_explained() {
        let e = load_celegans_from(Path::new("/nonexistent/celegans")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/celegans/neurons.csv") && e.contains(DATA_ENV), "{e}");
    }
}
