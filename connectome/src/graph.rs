//! Graph queries over a connectome or a compiled network (for `neurotwin inspect`): degrees and
//! synapse-count strengths, hubs, shortest and strongest paths between neuron sets, strongly connected
//! components and reachability within k hops.
//!
//! The graph ([`ConnectomeGraph`]) has one node per neuron (node index = neuron index = simulation
//! order) and one directed edge per connected (pre, post) pair: parallel connections are merged, their
//! synapse counts summed. A gap junction is an undirected coupling and becomes two directed edges of
//! kind [`SynapseKind::Electrical`], one each way (self-couplings are dropped, as in
//! [`GapMatrix`](crate::gap::GapMatrix)). Queries follow chemical edges only unless told to include gap junctions.
//!
//! Edge numbers: `synapses` is the summed synapse (or junction) count of the merged connections;
//! `strength` is what "strongest path" uses — for a [`Connectome`] it equals `synapses`, for a
//! [`CompiledNetwork`] (where counts are no longer known) it is the summed |weight| of the matrix
//! entries (or the gap conductance, nS), and `synapses` counts the matrix entries. The strongest path
//! minimises Σ 1/strength over its edges; edges of strength 0 are not used by it.
//!
//! All results are plain serialisable structs for tables or JSON.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::str::FromStr;

use petgraph::Direction as PgDirection;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;

use crate::compile::CompiledNetwork;
use crate::error::ConnectomeError;
use crate::network::{Connectome, Neuron, SynapseKind};

/// A neuron as shown in query results.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct NeuronRef {
    /// Index in the neuron table (simulation order).
    pub index: u32,
    /// External id.
    pub id: u64,
    /// Name ("" when unnamed).
    pub name: String,
}

/// One merged edge of the graph.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EdgeData {
    pub kind: SynapseKind,
    /// Summed synapse / junction count (for a compiled network: number of matrix entries).
    pub synapses: f64,
    /// Strength used by the strongest-path metric (see the module documentation).
    pub strength: f64,
}

/// Which way to follow edges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Along synapses: pre → post (what the sources drive).
    #[default]
    Downstream,
    /// Against synapses: post → pre (what drives the sources).
    Upstream,
}

/// Path metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMetric {
    /// Fewest hops.
    #[default]
    Hops,
    /// Smallest Σ 1/strength (strongest chain of connections).
    Strongest,
}

impl FromStr for PathMetric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hops" | "shortest" => Ok(Self::Hops),
            "strongest" | "strength" => Ok(Self::Strongest),
            _ => Err(format!("unknown path metric `{s}` (valid: hops, strongest)")),
        }
    }
}

/// Options of path and reachability queries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PathOptions {
    pub metric: PathMetric,
    /// Also traverse gap junctions (in both directions).
    pub include_gap: bool,
}

/// Degree and strength of one neuron.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NeuronDegree {
    pub neuron: NeuronRef,
    /// Distinct presynaptic partners (chemical).
    pub in_degree: usize,
    /// Distinct postsynaptic partners (chemical).
    pub out_degree: usize,
    /// Summed synapse count of incoming chemical connections.
    pub in_synapses: f64,
    /// Summed synapse count of outgoing chemical connections.
    pub out_synapses: f64,
    /// Distinct gap-junction partners.
    pub gap_degree: usize,
    /// Summed gap-junction count.
    pub gap_junctions: f64,
}

/// Ranking key of [`ConnectomeGraph::top_hubs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HubMetric {
    InDegree,
    OutDegree,
    /// in + out degree.
    Degree,
    InSynapses,
    OutSynapses,
    /// in + out synapses.
    Synapses,
    GapDegree,
}

impl HubMetric {
    pub const ALL: [HubMetric; 7] = [
        Self::InDegree,
        Self::OutDegree,
        Self::Degree,
        Self::InSynapses,
        Self::OutSynapses,
        Self::Synapses,
        Self::GapDegree,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::InDegree => "in_degree",
            Self::OutDegree => "out_degree",
            Self::Degree => "degree",
            Self::InSynapses => "in_synapses",
            Self::OutSynapses => "out_synapses",
            Self::Synapses => "synapses",
            Self::GapDegree => "gap_degree",
        }
    }

    /// The metric's value for a neuron.
    pub fn value(self, d: &NeuronDegree) -> f64 {
        match self {
            Self::InDegree => d.in_degree as f64,
            Self::OutDegree => d.out_degree as f64,
            Self::Degree => (d.in_degree + d.out_degree) as f64,
            Self::InSynapses => d.in_synapses,
            Self::OutSynapses => d.out_synapses,
            Self::Synapses => d.in_synapses + d.out_synapses,
            Self::GapDegree => d.gap_degree as f64,
        }
    }
}

impl FromStr for HubMetric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let valid: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
            format!("unknown hub metric `{s}` (valid: {})", valid.join(", "))
        })
    }
}

/// One entry of a hub ranking.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hub {
    /// 1-based rank.
    pub rank: usize,
    pub metric: HubMetric,
    pub value: f64,
    pub degree: NeuronDegree,
}

/// One neuron along a path, with the edge that led to it (`None` for the first).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathStep {
    pub neuron: NeuronRef,
    pub via: Option<EdgeData>,
}

/// A path from a source to a target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GraphPath {
    pub metric: PathMetric,
    pub include_gap: bool,
    /// Number of edges.
    pub hops: usize,
    /// Hops, or Σ 1/strength for [`PathMetric::Strongest`].
    pub cost: f64,
    /// Source first, target last.
    pub steps: Vec<PathStep>,
}

/// Strongly connected components at a glance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SccSummary {
    pub include_gap: bool,
    pub neurons: usize,
    /// Number of components (singletons included).
    pub count: usize,
    pub largest: usize,
    /// Components of a single neuron.
    pub singletons: usize,
    /// Sizes of the (up to) ten largest components, largest first.
    pub largest_sizes: Vec<usize>,
}

/// A neuron reached from the sources.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reached {
    pub neuron: NeuronRef,
    /// Fewest hops from any source (0 for the sources).
    pub hops: usize,
}

/// Neurons reachable within `max_hops`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reachability {
    pub direction: Direction,
    pub include_gap: bool,
    pub max_hops: usize,
    /// `per_hop[h]`: neurons first reached after exactly `h` hops (`per_hop[0]` = distinct sources), up
    /// to the last hop that reached a new neuron.
    pub per_hop: Vec<usize>,
    /// All reached neurons ordered by (hops, index), sources included.
    pub reached: Vec<Reached>,
}

/// The connectome as a petgraph directed graph (see the module documentation).
#[derive(Clone, Debug)]
pub struct ConnectomeGraph {
    /// Node weight: neuron index; node `i` is neuron `i`.
    pub graph: DiGraph<u32, EdgeData, u32>,
    neurons: Vec<NeuronRef>,
    by_name: HashMap<String, u32>,
    by_id: HashMap<u64, u32>,
}

/// Merges `(a, b, synapses, strength)` with equal (a, b), sorted by (a, b).
fn merge(mut e: Vec<(u32, u32, f64, f64)>) -> Vec<(u32, u32, f64, f64)> {
    e.sort_unstable_by_key(|x| (x.0, x.1));
    let mut out: Vec<(u32, u32, f64, f64)> = Vec::with_capacity(e.len());
    for x in e {
        match out.last_mut() {
            Some(l) if (l.0, l.1) == (x.0, x.1) => {
                l.2 += x.2;
                l.3 += x.3;
            }
            _ => out.push(x),
        }
    }
    out
}

/// f64 with a total order, for the priority queue.
#[derive(Clone, Copy, PartialEq)]
struct Cost(f64);
impl Eq for Cost {}
impl PartialOrd for Cost {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cost {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Depth-first search state of [`tarjan_scc`] for one node.
struct TarjanState {
    /// Discovery order (`u32::MAX`: not visited yet).
    index: Vec<u32>,
    /// Smallest discovery index reachable through the node's DFS subtree and one back edge.
    low: Vec<u32>,
    on_stack: Vec<bool>,
    /// Nodes of the components not closed yet.
    stack: Vec<u32>,
    /// The DFS path: node and position of its next outgoing edge in `targets`.
    path: Vec<(u32, usize)>,
    next: u32,
}

impl TarjanState {
    fn discover(&mut self, v: u32, edges_from: usize) {
        self.index[v as usize] = self.next;
        self.low[v as usize] = self.next;
        self.next += 1;
        self.on_stack[v as usize] = true;
        self.stack.push(v);
        self.path.push((v, edges_from));
    }

    /// Pops the component whose root is `v`.
    fn close(&mut self, v: u32) -> Vec<u32> {
        let mut comp = Vec::new();
        while let Some(w) = self.stack.pop() {
            self.on_stack[w as usize] = false;
            comp.push(w);
            if w == v {
                break;
            }
        }
        comp
    }
}

/// Strongly connected components of the graph given in compressed form (`targets[start[v]..start[v + 1]]`
/// are the successors of node `v`), in Tarjan's order. Iterative: the depth of the search is bounded by
/// heap memory, not by the call stack.
fn tarjan_scc(start: &[usize], targets: &[u32]) -> Vec<Vec<u32>> {
    let n = start.len() - 1;
    let mut st = TarjanState {
        index: vec![u32::MAX; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        path: Vec::new(),
        next: 0,
    };
    let mut comps = Vec::new();
    for root in 0..n {
        if st.index[root] != u32::MAX {
            continue;
        }
        st.discover(root as u32, start[root]);
        while let Some(&(v, pos)) = st.path.last() {
            let vi = v as usize;
            if pos < start[vi + 1] {
                st.path.last_mut().expect("path is not empty").1 += 1;
                let w = targets[pos] as usize;
                if st.index[w] == u32::MAX {
                    st.discover(w as u32, start[w]);
                } else if st.on_stack[w] {
                    st.low[vi] = st.low[vi].min(st.index[w]);
                }
                continue;
            }
            st.path.pop();
            if let Some(&(u, _)) = st.path.last() {
                st.low[u as usize] = st.low[u as usize].min(st.low[vi]);
            }
            if st.low[vi] == st.index[vi] {
                comps.push(st.close(v));
            }
        }
    }
    comps
}

impl ConnectomeGraph {
    fn build(neurons: &[Neuron], chemical: Vec<(u32, u32, f64, f64)>, gap: Vec<(u32, u32, f64, f64)>) -> Self {
        let n = neurons.len();
        let chemical = merge(chemical);
        // Undirected: normalise (a, b) with a < b, drop self-couplings.
        let gap =
            merge(gap.into_iter().filter(|g| g.0 != g.1).map(|(a, b, s, w)| (a.min(b), a.max(b), s, w)).collect());
        let mut graph = DiGraph::with_capacity(n, chemical.len() + 2 * gap.len());
        for i in 0..n as u32 {
            graph.add_node(i);
        }
        for (a, b, synapses, strength) in chemical {
            let d = EdgeData { kind: SynapseKind::Chemical, synapses, strength };
            graph.add_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), d);
        }
        for (a, b, synapses, strength) in gap {
            let d = EdgeData { kind: SynapseKind::Electrical, synapses, strength };
            graph.add_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), d);
            graph.add_edge(NodeIndex::new(b as usize), NodeIndex::new(a as usize), d);
        }
        let neurons: Vec<NeuronRef> = neurons
            .iter()
            .enumerate()
            .map(|(i, x)| NeuronRef { index: i as u32, id: x.id, name: x.name.clone() })
            .collect();
        let by_name = neurons.iter().filter(|r| !r.name.is_empty()).map(|r| (r.name.clone(), r.index)).collect();
        let by_id = neurons.iter().map(|r| (r.id, r.index)).collect();
        Self { graph, neurons, by_name, by_id }
    }

    /// Graph of a connectome: edge synapses and strength = summed synapse counts.
    pub fn from_connectome(c: &Connectome) -> Result<Self, ConnectomeError> {
        let index = c.id_index()?;
        let mut chemical = Vec::new();
        let mut gap = Vec::new();
        for (k, x) in c.connections.iter().enumerate() {
            let end = |id: u64, which: &str| {
                index.get(&id).copied().ok_or_else(|| {
                    ConnectomeError::Invalid(format!(
                        "connection #{k}: {which} neuron id {id} is not in the neuron table"
                    ))
                })
            };
            let (a, b) = (end(x.pre, "pre")?, end(x.post, "post")?);
            let s = x.count as f64;
            match x.kind {
                SynapseKind::Chemical => chemical.push((a, b, s, s)),
                SynapseKind::Electrical => gap.push((a, b, s, s)),
            }
        }
        Ok(Self::build(&c.neurons, chemical, gap))
    }

    /// Graph of a compiled network: edge synapses = matrix entries, strength = Σ|weight| (chemical) or
    /// conductance (gap).
    pub fn from_compiled(net: &CompiledNetwork) -> Self {
        let m = &net.chemical;
        let mut chemical = Vec::with_capacity(m.targets.len());
        for pre in 0..m.n_pre {
            for s in m.row_segments[pre as usize] as usize..m.row_segments[pre as usize + 1] as usize {
                for k in m.segment_start[s] as usize..m.segment_start[s + 1] as usize {
                    chemical.push((pre, m.targets[k], 1.0, m.weight(k).abs() as f64));
                }
            }
        }
        let mut gap = Vec::new();
        for a in 0..net.gap.n {
            let (partners, g) = net.gap.row(a);
            // Each junction is stored in both rows: take it once.
            for (&b, &g) in partners.iter().zip(g) {
                if a < b {
                    gap.push((a, b, 1.0, g as f64));
                }
            }
        }
        Self::build(&net.neurons, chemical, gap)
    }

    pub fn n_neurons(&self) -> usize {
        self.neurons.len()
    }

    pub fn neuron(&self, index: u32) -> &NeuronRef {
        &self.neurons[index as usize]
    }

    /// Finds a neuron by exact name, else by external id (decimal), else by `#index`.
    pub fn resolve(&self, key: &str) -> Result<u32, ConnectomeError> {
        let k = key.trim();
        if let Some(&i) = self.by_name.get(k) {
            return Ok(i);
        }
        if let Ok(id) = k.parse::<u64>()
            && let Some(&i) = self.by_id.get(&id)
        {
            return Ok(i);
        }
        if let Some(ix) = k.strip_prefix('#').and_then(|s| s.parse::<usize>().ok())
            && ix < self.neurons.len()
        {
            return Ok(ix as u32);
        }
        Err(ConnectomeError::Invalid(format!(
            "unknown neuron `{key}`: not a neuron name, an external id, or #index below {}",
            self.neurons.len()
        )))
    }

    /// Resolves several keys (see [`Self::resolve`]).
    pub fn resolve_all<S: AsRef<str>>(&self, keys: &[S]) -> Result<Vec<u32>, ConnectomeError> {
        keys.iter().map(|k| self.resolve(k.as_ref())).collect()
    }

    fn edges_of(&self, n: u32, dir: Direction, include_gap: bool) -> impl Iterator<Item = (u32, EdgeData)> + '_ {
        let d = match dir {
            Direction::Downstream => PgDirection::Outgoing,
            Direction::Upstream => PgDirection::Incoming,
        };
        self.graph
            .edges_directed(NodeIndex::new(n as usize), d)
            .filter(move |e| include_gap || e.weight().kind == SynapseKind::Chemical)
            .map(move |e| {
                let other = if dir == Direction::Downstream { e.target() } else { e.source() };
                (other.index() as u32, *e.weight())
            })
    }

    /// Degree and synapse-count strength of one neuron.
    pub fn degree(&self, n: u32) -> NeuronDegree {
        let mut d = NeuronDegree {
            neuron: self.neurons[n as usize].clone(),
            in_degree: 0,
            out_degree: 0,
            in_synapses: 0.0,
            out_synapses: 0.0,
            gap_degree: 0,
            gap_junctions: 0.0,
        };
        for (_, e) in self.edges_of(n, Direction::Downstream, true) {
            match e.kind {
                SynapseKind::Chemical => {
                    d.out_degree += 1;
                    d.out_synapses += e.synapses;
                }
                SynapseKind::Electrical => {
                    d.gap_degree += 1;
                    d.gap_junctions += e.synapses;
                }
            }
        }
        for (_, e) in self.edges_of(n, Direction::Upstream, false) {
            d.in_degree += 1;
            d.in_synapses += e.synapses;
        }
        d
    }

    /// Degrees of all neurons, in index order.
    pub fn degrees(&self) -> Vec<NeuronDegree> {
        (0..self.neurons.len() as u32).map(|i| self.degree(i)).collect()
    }

    /// The `k` neurons with the largest `metric` (ties: lower index first).
    pub fn top_hubs(&self, k: usize, metric: HubMetric) -> Vec<Hub> {
        let mut all: Vec<(f64, NeuronDegree)> = self.degrees().into_iter().map(|d| (metric.value(&d), d)).collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.neuron.index.cmp(&b.1.neuron.index)));
        all.into_iter()
            .take(k)
            .enumerate()
            .map(|(r, (value, degree))| Hub { rank: r + 1, metric, value, degree })
            .collect()
    }

    /// Shortest (fewest hops) or strongest path from any of `sources` to any of `targets`, downstream
    /// along chemical synapses (and gap junctions when `opt.include_gap`). `None` when no target is
    /// reachable. A neuron in both sets gives a path of 0 hops.
    pub fn shortest_path(&self, sources: &[u32], targets: &[u32], opt: &PathOptions) -> Option<GraphPath> {
        let n = self.neurons.len();
        let mut is_target = vec![false; n];
        for &t in targets {
            if (t as usize) < n {
                is_target[t as usize] = true;
            }
        }
        // parent[v] = (u, edge data) of the best known edge into v.
        let mut parent: Vec<Option<(u32, EdgeData)>> = vec![None; n];
        let mut found: Option<(u32, f64)> = None;
        match opt.metric {
            PathMetric::Hops => {
                let mut seen = vec![false; n];
                let mut queue = VecDeque::new();
                for &s in sources {
                    if (s as usize) < n && !seen[s as usize] {
                        seen[s as usize] = true;
                        queue.push_back((s, 0usize));
                    }
                }
                while let Some((u, h)) = queue.pop_front() {
                    if is_target[u as usize] {
                        found = Some((u, h as f64));
                        break;
                    }
                    for (v, e) in self.edges_of(u, Direction::Downstream, opt.include_gap) {
                        if !seen[v as usize] {
                            seen[v as usize] = true;
                            parent[v as usize] = Some((u, e));
                            queue.push_back((v, h + 1));
                        }
                    }
                }
            }
            PathMetric::Strongest => {
                let mut dist = vec![f64::INFINITY; n];
                let mut done = vec![false; n];
                let mut heap = BinaryHeap::new();
                for &s in sources {
                    if (s as usize) < n && dist[s as usize] > 0.0 {
                        dist[s as usize] = 0.0;
                        heap.push(Reverse((Cost(0.0), s)));
                    }
                }
                while let Some(Reverse((Cost(d), u))) = heap.pop() {
                    if done[u as usize] {
                        continue;
                    }
                    done[u as usize] = true;
                    if is_target[u as usize] {
                        found = Some((u, d));
                        break;
                    }
                    for (v, e) in self.edges_of(u, Direction::Downstream, opt.include_gap) {
                        if e.strength.is_nan() || e.strength <= 0.0 || done[v as usize] {
                            continue;
                        }
                        let nd = d + 1.0 / e.strength;
                        if nd < dist[v as usize] {
                            dist[v as usize] = nd;
                            parent[v as usize] = Some((u, e));
                            heap.push(Reverse((Cost(nd), v)));
                        }
                    }
                }
            }
        }
        let (end, cost) = found?;
        let mut steps = Vec::new();
        let mut v = end;
        loop {
            // Sources have no parent: they are reached first and never relaxed again.
            match parent[v as usize] {
                Some((u, e)) => {
                    steps.push(PathStep { neuron: self.neurons[v as usize].clone(), via: Some(e) });
                    v = u;
                }
                _ => {
                    steps.push(PathStep { neuron: self.neurons[v as usize].clone(), via: None });
                    break;
                }
            }
        }
        steps.reverse();
        Some(GraphPath { metric: opt.metric, include_gap: opt.include_gap, hops: steps.len() - 1, cost, steps })
    }

    /// [`Self::shortest_path`] with neurons given by name, id or `#index`.
    pub fn path_between<S: AsRef<str>>(
        &self,
        sources: &[S],
        targets: &[S],
        opt: &PathOptions,
    ) -> Result<Option<GraphPath>, ConnectomeError> {
        let s = self.resolve_all(sources)?;
        let t = self.resolve_all(targets)?;
        Ok(self.shortest_path(&s, &t, opt))
    }

    /// Successors of every neuron in compressed form: the targets of neuron `v`'s edges in direction
    /// `dir` are `targets[start[v]..start[v + 1]]` (chemical edges, plus gap junctions when `include_gap`).
    fn adjacency(&self, dir: Direction, include_gap: bool) -> (Vec<usize>, Vec<u32>) {
        let n = self.neurons.len();
        let mut start = Vec::with_capacity(n + 1);
        let mut targets = Vec::with_capacity(self.graph.edge_count());
        start.push(0);
        for v in 0..n as u32 {
            targets.extend(self.edges_of(v, dir, include_gap).map(|(w, _)| w));
            start.push(targets.len());
        }
        (start, targets)
    }

    /// Strongly connected components (Tarjan's algorithm with an explicit stack, so that chains of
    /// millions of neurons do not overflow the call stack), largest first (ties: smallest member index
    /// first); members sorted by index.
    pub fn strongly_connected_components(&self, include_gap: bool) -> Vec<Vec<u32>> {
        let (start, targets) = self.adjacency(Direction::Downstream, include_gap);
        let mut comps = tarjan_scc(&start, &targets);
        for c in &mut comps {
            c.sort_unstable();
        }
        comps.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
        comps
    }

    /// Count and sizes of the strongly connected components.
    pub fn scc_summary(&self, include_gap: bool) -> SccSummary {
        let comps = self.strongly_connected_components(include_gap);
        SccSummary {
            include_gap,
            neurons: self.neurons.len(),
            count: comps.len(),
            largest: comps.first().map_or(0, Vec::len),
            singletons: comps.iter().filter(|c| c.len() == 1).count(),
            largest_sizes: comps.iter().take(10).map(Vec::len).collect(),
        }
    }

    /// The strongly connected component containing `neuron` (members by index).
    pub fn component_of(&self, neuron: u32, include_gap: bool) -> Vec<NeuronRef> {
        self.strongly_connected_components(include_gap)
            .into_iter()
            .find(|c| c.binary_search(&neuron).is_ok())
            .unwrap_or_default()
            .into_iter()
            .map(|i| self.neurons[i as usize].clone())
            .collect()
    }

    /// Neurons reachable from `sources` within `max_hops` edges (breadth-first).
    pub fn reachable_within(
        &self,
        sources: &[u32],
        max_hops: usize,
        direction: Direction,
        include_gap: bool,
    ) -> Reachability {
        let n = self.neurons.len();
        let mut hops = vec![usize::MAX; n];
        let mut order = Vec::new();
        let mut queue = VecDeque::new();
        for &s in sources {
            if (s as usize) < n && hops[s as usize] == usize::MAX {
                hops[s as usize] = 0;
                queue.push_back(s);
                order.push(s);
            }
        }
        while let Some(u) = queue.pop_front() {
            let h = hops[u as usize];
            if h >= max_hops {
                continue;
            }
            for (v, _) in self.edges_of(u, direction, include_gap) {
                if hops[v as usize] == usize::MAX {
                    hops[v as usize] = h + 1;
                    queue.push_back(v);
                    order.push(v);
                }
            }
        }
        order.sort_by_key(|&v| (hops[v as usize], v));
        let mut per_hop: Vec<usize> = Vec::new();
        for &v in &order {
            let h = hops[v as usize];
            if per_hop.len() <= h {
                per_hop.resize(h + 1, 0);
            }
            per_hop[h] += 1;
        }
        Reachability {
            direction,
            include_gap,
            max_hops,
            per_hop,
            reached: order
                .into_iter()
                .map(|v| Reached { neuron: self.neurons[v as usize].clone(), hops: hops[v as usize] })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Connection;

    /// `n` neurons; chemical edges i -> i+1, and n-1 -> 0 when `ring`.
    fn chain(n: u64, ring: bool) -> ConnectomeGraph {
        let neurons = (0..n).map(|i| Neuron::new(i, format!("n{i}"))).collect();
        let mut connections: Vec<Connection> = (0..n - 1).map(|i| Connection::chemical(i, i + 1, 1.0)).collect();
        if ring {
            connections.push(Connection::chemical(n - 1, 0, 1.0));
        }
        let c = Connectome { name: "chain".into(), provenance: vec![], neurons, connections };
        ConnectomeGraph::from_connectome(&c).unwrap()
    }

    /// Runs `f` on a thread with a 256 KiB stack: a recursive search over 200 000 nodes overflows it.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new().stack_size(256 << 10).spawn(f).unwrap().join().unwrap()
    }

    #[test]
    fn components_of_long_chains_and_rings_need_no_deep_stack() {
        let s = on_small_stack(|| chain(200_000, false).scc_summary(false));
        assert_eq!((s.count, s.largest, s.singletons), (200_000, 1, 200_000));
        let s = on_small_stack(|| chain(200_000, true).scc_summary(false));
        assert_eq!((s.count, s.largest, s.singletons), (1, 200_000, 0));
        let r =
            on_small_stack(|| chain(200_000, false).reachable_within(&[0], usize::MAX, Direction::Downstream, false));
        assert_eq!(r.reached.len(), 200_000);
    }

    #[test]
    fn tarjan_finds_nested_cycles() {
        // 0 -> 1 -> 2 -> 0, 2 -> 3 -> 4 -> 3, 4 -> 5, 6 alone.
        let start = [0, 1, 2, 4, 5, 7, 7, 7];
        let targets = [1, 2, 0, 3, 4, 3, 5];
        let mut comps = tarjan_scc(&start, &targets);
        for c in &mut comps {
            c.sort_unstable();
        }
        comps.sort();
        assert_eq!(comps, vec![vec![0, 1, 2], vec![3, 4], vec![5], vec![6]]);
    }
}
