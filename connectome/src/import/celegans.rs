//! The bundled C. elegans hermaphrodite connectome (Cook et al. 2019, Nature 571:63): 473 cells (302
//! neurons plus muscles and other end organs), chemical synapse and gap junction counts, with
//! transmitters (cect's OpenWorm unified annotation, Fenyves et al. 2020 where that has none), the
//! glutamate receptor sign predicted by Fenyves et al. 2020, ganglia and positions (wormneuroatlas).
//!
//! The files live in the repository's `data/celegans/` (`neurons.csv`, `connections.csv`; sources,
//! licences, counts and the conversion in `data/celegans/README.md`, made by
//! `scripts/convert_celegans.py`) and are read with the generic CSV importer. Set `NEUROTWIN_DATA` to
//! a folder containing `celegans/` to read them from elsewhere (e.g. an installed copy).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::ConnectomeError;
use crate::import::csv::{CsvLayout, read_csv};
use crate::network::Connectome;

/// Name of the bundled connectome.
pub const CELEGANS_NAME: &str = "celegans-cook2019-hermaphrodite";

/// Environment variable naming the data folder (the one containing `celegans/`).
pub const DATA_ENV: &str = "NEUROTWIN_DATA";

fn data_dir_from(env: Option<&OsStr>) -> PathBuf {
    match env {
        Some(root) if !root.is_empty() => Path::new(root).join("celegans"),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("data").join("celegans"),
    }
}

/// Folder of the bundled C. elegans files: `$NEUROTWIN_DATA/celegans` when the variable is set,
/// else the repository's `data/celegans`.
pub fn celegans_data_dir() -> PathBuf {
    data_dir_from(std::env::var_os(DATA_ENV).as_deref())
}

/// Loads the bundled connectome from [`celegans_data_dir`].
pub fn load_celegans_bundled() -> Result<Connectome, ConnectomeError> {
    load_celegans_from(&celegans_data_dir())
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
                    "bundled C. elegans data not found (expected data/celegans/ of the neurotwin repository; \
                     set {DATA_ENV} to the folder that contains celegans/, or regenerate the files with \
                     scripts/convert_celegans.py)"
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
        let d = data_dir_from(None);
        assert!(d.ends_with("data/celegans"), "{}", d.display());
        assert_eq!(data_dir_from(Some(OsStr::new(""))), d);
        assert_eq!(data_dir_from(Some(OsStr::new("/opt/nt"))), Path::new("/opt/nt/celegans"));
    }

    #[test]
    fn missing_folder_is_explained() {
        let e = load_celegans_from(Path::new("/nonexistent/celegans")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/celegans/neurons.csv") && e.contains(DATA_ENV), "{e}");
    }
}
