//! PLACEHOLDER — being written (models helper). Compiles so that dependent crates build.
use serde::{Deserialize, Serialize};
use crate::model::{BlockInput, BlockOutput, ModelError, ReceptorChannel};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdexParams {}

#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {}

pub fn compile(_p: &AdexParams, _channels: &[ReceptorChannel], _h: f64) -> Result<Compiled, ModelError> {
    Err(ModelError::NoParameterSets)
}
pub fn state_names(_c: &Compiled) -> Vec<String> { vec!["V_m".into()] }
pub fn initial_state(_c: &Compiled) -> Vec<f64> { vec![0.0] }
pub fn update_block(_s: &[Compiled], _state: &mut [f64], _input: &BlockInput, _out: &mut BlockOutput) {}
