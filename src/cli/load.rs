//! Loading a connectome named on the command line.

use std::path::Path;

use anyhow::{Context, bail};
use neurotwin_connectome::import::{CsvLayout, load_celegans_bundled, read_csv};
use neurotwin_connectome::{Connectome, TransmitterMap, hdf5io};

pub struct LoadedConnectome {
    pub connectome: Connectome,
    /// The transmitter map that suits the source (celegans for the worm, fly otherwise).
    pub default_map: TransmitterMap,
}

pub fn parse_layout(layout: Option<&str>) -> anyhow::Result<CsvLayout> {
    Ok(match layout {
        None => CsvLayout::Auto,
        Some("generic") => CsvLayout::Generic,
        Some("flywire") => CsvLayout::FlyWire,
        Some("neuprint") => CsvLayout::NeuPrint,
        Some(o) => bail!("unknown layout `{o}` (generic, flywire, neuprint)"),
    })
}

/// `celegans` (bundled), a `.h5` neurotwin connectome, or a connections CSV (+ optional neurons CSV).
pub fn load_connectome(source: &str, neurons: Option<&Path>, layout: Option<&str>) -> anyhow::Result<LoadedConnectome> {
    if source == "celegans" {
        return Ok(LoadedConnectome { connectome: load_celegans_bundled()?, default_map: TransmitterMap::celegans() });
    }
    let path = Path::new(source);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let connectome = match ext.as_str() {
        "h5" | "hdf5" => hdf5io::read_connectome(path)?,
        // `.gz`: a compressed CSV (read_csv recognises gzip by its magic bytes).
        "csv" | "tsv" | "txt" | "gz" => read_csv(path, neurons, parse_layout(layout)?)?,
        _ => bail!("{source}: expected `celegans`, a .h5 connectome or a .csv (or .csv.gz) connections file"),
    };
    Ok(LoadedConnectome { connectome, default_map: TransmitterMap::fly() })
}

/// Writes a connectome (and optionally its compiled form) as a neurotwin HDF5 file.
pub fn write_h5(
    out: &Path,
    c: &Connectome,
    compiled: Option<&neurotwin_connectome::CompiledNetwork>,
) -> anyhow::Result<()> {
    match compiled {
        Some(net) => hdf5io::write_connectome_and_compiled(out, c, net),
        None => hdf5io::write_connectome(out, c),
    }
    .with_context(|| format!("writing {}", out.display()))
}
