//! The input files of a scenario (the scenario itself, its CSVs, its HDF5 connectome), so that no output
//! of the run can replace one of them (issue 20, defect 2).

use std::path::Path;

use neurotwin_io::inputs::InputSet;

use crate::spec::ScenarioSpec;

/// Every file `spec` (read from `path`) names as input, resolved like the builder resolves them
/// (relative to the scenario's folder).
pub fn scenario_inputs(path: &Path, spec: &ScenarioSpec) -> InputSet {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut set = InputSet::new();
    set.add(path);
    let n = &spec.network;
    for p in [&n.connections, &n.neurons, &n.file].into_iter().flatten() {
        set.add(&base.join(p));
    }
    set
}
