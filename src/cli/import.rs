//! `neurotwin import`: CSV, bundled data or a SONATA circuit → neurotwin HDF5 connectome (optionally with the
//! compiled matrices, so `run` can skip compilation of big connectomes), or → a SONATA circuit folder
//! (`--to sonata -o DIR`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use neurotwin_connectome::export::{GapJunctions, PopulationLayout, SonataWriteOptions, write_sonata};
use neurotwin_connectome::{CompileOptions, TransmitterMap, compile, read_sonata};

use super::load::{LoadedConnectome, load_connectome, write_h5};

/// Output format of `import`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImportFormat {
    /// neurotwin HDF5 connectome (one file).
    #[default]
    H5,
    /// SONATA circuit (a folder with circuit_config.json, nodes/edges HDF5 files and type CSVs).
    Sonata,
    /// A scenario folder (scenario.toml, neurons.csv, connections.csv) from a NeuroML 2 network file (`.nml`), its
    /// cells and synapses written as an equation-defined neuron; `--lems` sets the run from a LEMS simulation.
    Scenario,
}

/// `--gap-junctions` for SONATA output.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GapChoice {
    /// Refuse a connectome with gap junctions (SONATA has no standard gap-junction edge type).
    #[default]
    Error,
    /// Leave gap junctions out.
    Omit,
    /// Write them as separate `*_gap` edge populations with edge type column `is_gap_junction = True`.
    Write,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// `celegans` (bundled), a connections CSV (generic, FlyWire or neuPrint layout), a neurotwin .h5
    /// connectome or a SONATA circuit_config.json.
    pub source: String,
    /// Neurons CSV.
    #[arg(long)]
    pub neurons: Option<PathBuf>,
    /// CSV layout: generic, flywire, neuprint (default: detected).
    #[arg(long)]
    pub layout: Option<String>,
    /// Output: the HDF5 file (`--to h5`) or the circuit folder (`--to sonata`).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ImportFormat::H5)]
    pub to: ImportFormat,
    /// Also store the compiled network for this time step (ms); `--to h5` only.
    #[arg(long)]
    pub compile_dt: Option<f64>,
    /// Transmitter preset used when compiling, and for the SONATA receptor classes (fly, celegans, exc_inh).
    #[arg(long)]
    pub transmitters: Option<String>,
    /// Gap junctions in SONATA output.
    #[arg(long, value_enum, default_value_t = GapChoice::Error)]
    pub gap_junctions: GapChoice,
    /// The LEMS simulation file of a NeuroML network (`--to scenario`): its length and step become the run's.
    #[arg(long)]
    pub lems: Option<PathBuf>,
    /// Replace the files of an earlier import in the SONATA output folder (only those and files this import
    /// writes again; inputs are never replaced). A neurotwin .h5 output file is always replaced atomically.
    #[arg(long)]
    pub overwrite: bool,
}

struct Source {
    loaded: LoadedConnectome,
    /// Populations and node models when the source is a SONATA circuit.
    sonata: Option<(Vec<PopulationLayout>, SonataWriteOptions)>,
}

fn load(a: &ImportArgs) -> anyhow::Result<Source> {
    let is_json = Path::new(&a.source).extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if !is_json {
        return Ok(Source {
            loaded: load_connectome(&a.source, a.neurons.as_deref(), a.layout.as_deref())?,
            sonata: None,
        });
    }
    let circuit = read_sonata(Path::new(&a.source))?;
    let sonata = Some((PopulationLayout::from_circuit(&circuit), SonataWriteOptions::for_circuit(&circuit)));
    let loaded = LoadedConnectome { connectome: circuit.connectome, default_map: TransmitterMap::exc_inh() };
    Ok(Source { loaded, sonata })
}

/// Every file `import` reads (no output may replace one of them).
fn import_inputs(a: &ImportArgs) -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from(&a.source)];
    v.extend(a.neurons.clone());
    v.extend(a.lems.clone());
    v
}

/// `--to scenario`: a NeuroML 2 network (and optionally its LEMS simulation) → a scenario folder.
fn import_neuroml(a: &ImportArgs, inputs: &[PathBuf]) -> anyhow::Result<()> {
    use neurotwin_connectome::import::neuroml::{read_lems_simulation, read_neuroml};
    let src = Path::new(&a.source);
    if a.neurons.is_some() || a.layout.is_some() || a.compile_dt.is_some() || a.transmitters.is_some() {
        bail!("--to scenario reads a NeuroML file alone: drop --neurons, --layout, --compile-dt and --transmitters");
    }
    let net = read_neuroml(src)?;
    let sim = a.lems.as_deref().map(read_lems_simulation).transpose()?;
    let name: String = net
        .id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .collect::<String>()
        .trim_start_matches('.')
        .chars()
        .take(100)
        .collect();
    let name = if name.is_empty() { "neuroml".to_string() } else { name };
    let files = neurotwin_scenarios::neuroml::scenario_from_neuroml(&net, sim, &name, &a.source)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.source))?;
    let mut set = neurotwin_io::inputs::InputSet::new();
    for p in inputs {
        set.add(p);
    }
    let expected = ["scenario.toml", "neurons.csv", "connections.csv"];
    let dir = neurotwin_io::run_dir::RunDir::create(&a.out, "neurotwin import", set, a.overwrite, &expected)?;
    for (file, text) in [
        ("scenario.toml", &files.scenario_toml),
        ("neurons.csv", &files.neurons_csv),
        ("connections.csv", &files.connections_csv),
    ] {
        let path = dir.staging().join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    dir.commit()?;
    println!(
        "{}: {} cells, {} chemical connections, {} gap junctions, {} inputs → scenario {}{}",
        a.source,
        net.cells_in_order().len(),
        net.connections.len(),
        net.gaps.len(),
        net.inputs.len(),
        a.out.join("scenario.toml").display(),
        if files.delays_raised > 0 {
            format!(" ({} delays shorter than one step raised to one step)", files.delays_raised)
        } else {
            String::new()
        }
    );
    Ok(())
}

pub fn import(a: ImportArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let inputs = import_inputs(&a);
    if a.to == ImportFormat::Scenario {
        return import_neuroml(&a, &inputs);
    }
    if a.to == ImportFormat::H5 {
        let mut set = neurotwin_io::inputs::InputSet::new();
        for p in &inputs {
            set.add(p);
        }
        set.check_output(&a.out, "file with -o")?;
    }
    let source = load(&a)?;
    let c = &source.loaded.connectome;
    let map = match &a.transmitters {
        Some(p) => TransmitterMap::preset(p).with_context(|| format!("unknown transmitter preset `{p}`"))?,
        None => source.loaded.default_map.clone(),
    };
    if a.to == ImportFormat::Sonata {
        if a.compile_dt.is_some() {
            bail!("--compile-dt stores compiled matrices in a neurotwin .h5 file; it does not apply to --to sonata");
        }
        let (layouts, base) = source.sonata.unwrap_or_default();
        let options = SonataWriteOptions {
            overwrite: a.overwrite,
            inputs,
            gap_junctions: match a.gap_junctions {
                GapChoice::Error => GapJunctions::Error,
                GapChoice::Omit => GapJunctions::Omit,
                GapChoice::Write => GapJunctions::Write,
            },
            transmitters: map,
            ..base
        };
        let config = write_sonata(c, &layouts, &a.out, &options).map_err(|e| {
            let hint = if e.to_string().contains("gap junctions") {
                " (pass --gap-junctions omit or --gap-junctions write)"
            } else {
                ""
            };
            anyhow::anyhow!("{e}{hint}")
        })?;
        println!(
            "{}: {} neurons, {} connections → SONATA {} ({:.2} s)",
            c.name,
            c.neurons.len(),
            c.connections.len(),
            config.display(),
            t0.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let compiled = match a.compile_dt {
        Some(dt) => Some(compile(c, &CompileOptions { dt_ms: dt, transmitters: map, ..Default::default() })?),
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
