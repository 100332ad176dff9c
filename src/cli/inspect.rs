//! `neurotwin inspect`: what a connectome holds and what it compiles to.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, bail};
use neurotwin_connectome::graph::{ConnectomeGraph, Direction, HubMetric, PathMetric, PathOptions};
use neurotwin_connectome::{CompileOptions, Connectome, SynapseKind, TransmitterMap, compile};
use serde_json::json;

use super::load::{LoadedConnectome, load_connectome};
use super::table::render;

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// `celegans` (bundled), a neurotwin HDF5 file, or a connections CSV.
    pub connectome: String,
    /// Neurons CSV (with a connections CSV).
    #[arg(long)]
    pub neurons: Option<PathBuf>,
    /// CSV layout: generic, flywire, neuprint (default: detected from the header).
    #[arg(long)]
    pub layout: Option<String>,
    /// Transmitter map preset for compilation: fly, celegans, exc_inh (default: celegans for the bundled
    /// worm, fly otherwise).
    #[arg(long)]
    pub transmitters: Option<String>,
    /// Time step for compiling delays (ms).
    #[arg(long, default_value_t = 0.1)]
    pub dt: f64,
    /// Number of hubs to list.
    #[arg(long, default_value_t = 10)]
    pub hubs: usize,
    /// Hub ranking: in_degree, out_degree, degree, in_synapses, out_synapses, synapses, gap_degree.
    #[arg(long, default_value = "degree")]
    pub hub_metric: String,
    /// Source neurons (names or ids, comma-separated) for a path or reachability query.
    #[arg(long, value_delimiter = ',')]
    pub from: Vec<String>,
    /// Target neurons for a path query.
    #[arg(long, value_delimiter = ',')]
    pub to: Vec<String>,
    /// Path metric: hops or strongest.
    #[arg(long, default_value = "hops")]
    pub path_metric: String,
    /// Let paths, components and reachability use gap junctions too.
    #[arg(long)]
    pub gap: bool,
    /// List neurons reachable from --from within this many hops.
    #[arg(long)]
    pub within: Option<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Path and reachability flags need source neurons: refuses `--to` or `--within` without `--from`, and
/// `--from` with neither.
fn check_query_flags(a: &InspectArgs) -> anyhow::Result<()> {
    match (a.from.is_empty(), a.to.is_empty(), a.within.is_some()) {
        (true, false, _) => bail!("--to needs --from: name the source neurons of the path (e.g. --from A --to B)"),
        (true, _, true) => {
            bail!("--within needs --from: name the neurons to start from (e.g. --from A --within 2)")
        }
        (false, true, false) => {
            bail!("--from needs --to (path query) or --within HOPS (reachability query)")
        }
        _ => Ok(()),
    }
}

/// Preset names, in the order tried when the map is inferred.
const PRESETS: [&str; 3] = ["fly", "celegans", "exc_inh"];

/// The transmitter map to compile `c` with: the `--transmitters` preset; else `default` when it defines
/// every receptor class the chemical connections name (an imported .h5 file keeps e.g. the worm's
/// `Glu_exc`/`Glu_inh`); else the first preset that does. `source` names the input in errors.
fn transmitter_map(
    c: &Connectome,
    preset: Option<&str>,
    default: TransmitterMap,
    source: &str,
) -> anyhow::Result<TransmitterMap> {
    if let Some(p) = preset {
        return TransmitterMap::preset(p)
            .with_context(|| format!("unknown transmitter preset `{p}` (fly, celegans, exc_inh)"));
    }
    let named: BTreeSet<&str> = c
        .connections
        .iter()
        .filter(|k| k.kind == SynapseKind::Chemical)
        .filter_map(|k| k.receptor.as_deref())
        .collect();
    let fits = |m: &TransmitterMap| named.iter().all(|r| m.receptor_index(r).is_some());
    if fits(&default) {
        return Ok(default);
    }
    if let Some(m) = PRESETS.iter().filter_map(|p| TransmitterMap::preset(p)).find(|m| fits(m)) {
        return Ok(m);
    }
    Err(undefined_receptors(source, &named))
}

/// The error for receptor classes that no preset defines: names them and the flag and the alternatives.
fn undefined_receptors(source: &str, named: &BTreeSet<&str>) -> anyhow::Error {
    let maps: Vec<(&str, TransmitterMap)> =
        PRESETS.iter().filter_map(|&p| Some((p, TransmitterMap::preset(p)?))).collect();
    let quote = |r: &&str| format!("`{r}`");
    let unknown: Vec<String> =
        named.iter().filter(|r| maps.iter().all(|(_, m)| m.receptor_index(r).is_none())).map(quote).collect();
    let what = if unknown.is_empty() {
        let all: Vec<String> = named.iter().map(quote).collect();
        format!("receptor classes {} that no single transmitter preset defines together", all.join(", "))
    } else {
        format!("receptor class(es) {} that no transmitter preset defines", unknown.join(", "))
    };
    let classes: Vec<String> = maps.iter().map(|(p, m)| format!("{p}: {}", m.receptor_names().join(", "))).collect();
    anyhow::anyhow!(
        "{source}: the connections name {what}, so inspect cannot compile them; rename them to the classes of a \
         preset and pass --transmitters PRESET ({}), or define them in a scenario's [network.transmitters] table",
        classes.join("; ")
    )
}

pub fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    check_query_flags(&a)?;
    let LoadedConnectome { connectome: c, default_map } =
        load_connectome(&a.connectome, a.neurons.as_deref(), a.layout.as_deref())?;
    let map = transmitter_map(&c, a.transmitters.as_deref(), default_map, &a.connectome)?;
    let net =
        compile(&c, &CompileOptions { dt_ms: a.dt, transmitters: map, gap_per_junction_ns: 1.0, ..Default::default() })
            .map_err(|e| match &a.transmitters {
                Some(p) if e.to_string().contains("is not defined") => {
                    anyhow::anyhow!(
                        "{}: {e} — the preset `{p}` of --transmitters does not define it; try another preset ({})",
                        a.connectome,
                        PRESETS.join(", ")
                    )
                }
                _ => anyhow::anyhow!("{}: {e}", a.connectome),
            })?;
    let g = ConnectomeGraph::from_connectome(&c)?;
    let metric: HubMetric = a.hub_metric.parse().map_err(anyhow::Error::msg)?;
    let hubs = g.top_hubs(a.hubs, metric);
    let scc = g.scc_summary(a.gap);
    let opts =
        PathOptions { metric: a.path_metric.parse::<PathMetric>().map_err(anyhow::Error::msg)?, include_gap: a.gap };
    let path = if !a.to.is_empty() {
        let s = g.resolve_all(&a.from)?;
        let t = g.resolve_all(&a.to)?;
        Some(g.shortest_path(&s, &t, &opts))
    } else {
        None
    };
    let reach = match a.within {
        Some(k) => Some(g.reachable_within(&g.resolve_all(&a.from)?, k, Direction::Downstream, a.gap)),
        None => None,
    };
    let chem: Vec<_> = c.connections.iter().filter(|k| k.kind == SynapseKind::Chemical).collect();
    let n_syn: f64 = chem.iter().map(|k| k.count as f64).sum();
    let n_gap = c.connections.len() - chem.len();
    let r = &net.report;
    if a.json {
        let v = json!({
            "name": c.name, "provenance": c.provenance, "neurons": c.neurons.len(),
            "chemical_connections": chem.len(), "chemical_synapses": n_syn, "electrical_connections": n_gap,
            "compiled": r, "hubs": hubs, "scc": scc, "path": path, "reachability": reach,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{} — {} neurons, {} chemical connections ({} synapses), {} electrical connections",
        c.name,
        c.neurons.len(),
        chem.len(),
        n_syn,
        n_gap
    );
    for p in &c.provenance {
        println!("  source: {p}");
    }
    println!(
        "compiled (dt {} ms, {}): {} synapses in {} segments, {:.2} bytes/synapse ({}), max delay {} steps, {} gap-junction entries",
        a.dt,
        r.transmitter_source,
        r.synapses,
        r.segments,
        r.bytes_per_synapse,
        r.weight_encoding,
        r.max_delay_steps,
        net.gap.n_entries()
    );
    let rows: Vec<Vec<String>> = net
        .receptors
        .iter()
        .zip(&r.synapses_per_receptor)
        .map(|(rc, (_, n))| {
            vec![rc.name.clone(), if rc.excitatory { "excitatory" } else { "inhibitory" }.into(), n.to_string()]
        })
        .collect();
    println!("\n{}", render(&["receptor class", "sign", "synapses"], &rows));
    let rows: Vec<Vec<String>> = hubs
        .iter()
        .map(|h| {
            let d = &h.degree;
            vec![
                h.rank.to_string(),
                d.neuron.name.clone(),
                d.in_degree.to_string(),
                d.out_degree.to_string(),
                format!("{}", d.in_synapses),
                format!("{}", d.out_synapses),
                d.gap_degree.to_string(),
            ]
        })
        .collect();
    println!(
        "\ntop {} hubs by {}:\n{}",
        a.hubs,
        metric.name(),
        render(&["rank", "neuron", "in", "out", "in syn", "out syn", "gap"], &rows)
    );
    println!(
        "\nstrongly connected components ({}): {} components, largest {} neurons, {} singletons",
        if a.gap { "chemical + gap" } else { "chemical" },
        scc.count,
        scc.largest,
        scc.singletons
    );
    if let Some(p) = path {
        match p {
            Some(p) => {
                let names: Vec<String> = p.steps.iter().map(|s| s.neuron.name.clone()).collect();
                println!("\npath ({:?}, {} hops, cost {:.3}): {}", opts.metric, p.hops, p.cost, names.join(" -> "));
            }
            None => println!("\nno path from {} to {}", a.from.join(","), a.to.join(",")),
        }
    }
    if let Some(r) = reach {
        let names: Vec<String> = r.reached.iter().map(|x| format!("{}({})", x.neuron.name, x.hops)).collect();
        println!(
            "\nreachable from {} within {} hops: new neurons per hop {:?}",
            a.from.join(","),
            r.max_hops,
            r.per_hop
        );
        println!("  {}", names.join(" "));
    }
    Ok(())
}
