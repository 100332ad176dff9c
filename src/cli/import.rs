//! `neurotwin import`: CSV or bundled data → neurotwin HDF5 connectome (optionally with the compiled
//! matrices, so `run` can skip compilation of big connectomes).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use neurotwin_connectome::{CompileOptions, TransmitterMap, compile};

use super::load::{load_connectome, write_h5};

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// `celegans` (bundled) or a connections CSV (generic, FlyWire or neuPrint layout).
    pub source: String,
    /// Neurons CSV.
    #[arg(long)]
    pub neurons: Option<PathBuf>,
    /// CSV layout: generic, flywire, neuprint (default: detected).
    #[arg(long)]
    pub layout: Option<String>,
    /// Output HDF5 file.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Also store the compiled network for this time step (ms).
    #[arg(long)]
    pub compile_dt: Option<f64>,
    /// Transmitter preset used when compiling (fly, celegans, exc_inh).
    #[arg(long)]
    pub transmitters: Option<String>,
}

pub fn import(a: ImportArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let loaded = load_connectome(&a.source, a.neurons.as_deref(), a.layout.as_deref())?;
    let c = &loaded.connectome;
    let compiled = match a.compile_dt {
        Some(dt) => {
            let map = match &a.transmitters {
                Some(p) => TransmitterMap::preset(p).with_context(|| format!("unknown transmitter preset `{p}`"))?,
                None => loaded.default_map.clone(),
            };
            Some(compile(c, &CompileOptions { dt_ms: dt, transmitters: map, ..Default::default() })?)
        }
        None => None,
    };
    write_h5(&a.out, c, compiled.as_ref())?;
    println!(
        "{}: {} neurons, {} connections{} → {} ({:.2} s)",
        c.name,
        c.neurons.len(),
        c.connections.len(),
        compiled.as_ref().map(|n| format!(", compiled {} synapses", n.chemical.n_synapses())).unwrap_or_default(),
        a.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
