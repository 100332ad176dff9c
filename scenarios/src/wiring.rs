//! Adapters to the connectome crate's importers and generators (kept in one place).

use std::path::Path;

use neurotwin_connectome::Connectome;

use crate::build::Ctx;
use crate::error::ScenarioError;
use crate::source::LoadedNetwork;
use crate::spec::GeneratorSpec;

pub fn celegans() -> Result<Connectome, ScenarioError> {
    Err(ScenarioError::File { path: "data/celegans".into(), message: "not wired yet".into() })
}

pub fn csv(_connections: &Path, _neurons: Option<&Path>, _layout: Option<&str>) -> Result<Connectome, String> {
    Err("not wired yet".into())
}

pub fn hdf5(path: &Path) -> Result<Connectome, ScenarioError> {
    Err(ScenarioError::File { path: path.into(), message: "not wired yet".into() })
}

pub(crate) fn generate(
    _g: &GeneratorSpec,
    _w: Option<f64>,
    ctx: &Ctx,
    _dt: f64,
) -> Result<LoadedNetwork, ScenarioError> {
    Err(ctx.file("not wired yet"))
}
