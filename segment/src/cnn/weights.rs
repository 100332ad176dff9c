//! The safetensors weights file: writing (any tensors, unvalidated, so that tests can also write bad files)
//! and reading (format tag, architecture metadata, F32 tensors); validation against the architecture is in
//! `UNet3d::from_tensors`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::CnnError;
use super::unet::UNetSpec;

/// The single metadata key: its value is the [`UNetSpec`] as a JSON object with one more field, `"format"`.
/// (One key, so that the file bytes are deterministic: safetensors writes its metadata map in hash order.)
pub const SPEC_KEY: &str = "neurotwin.unet3d";
/// The value of the `"format"` field.
pub const FORMAT: &str = "unet3d-v1";

/// A named f32 tensor of the weights file.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// Name, e.g. `down.0.conv.1.weight`.
    pub name: String,
    /// Shape (row-major).
    pub shape: Vec<usize>,
    /// Values (`shape.iter().product()` of them).
    pub data: Vec<f32>,
}

/// The safetensors bytes of a weights file with architecture `spec` and `tensors` (written as given: names,
/// shapes and values are not checked against `spec`, only each tensor's length against its shape).
pub fn weights_to_bytes(spec: &UNetSpec, tensors: &[NamedTensor]) -> Result<Vec<u8>, CnnError> {
    weights_to_bytes_with(spec, tensors, None)
}

/// [`weights_to_bytes`] with a training record (`"training"` in the metadata object: data, settings, losses —
/// free-form JSON written by `neurotwin segment train`, read back by [`super::UNet3d::training`]).
pub fn weights_to_bytes_with(
    spec: &UNetSpec,
    tensors: &[NamedTensor],
    training: Option<&serde_json::Value>,
) -> Result<Vec<u8>, CnnError> {
    let fmt = |message: String| CnnError::Format { path: "<memory>".into(), message };
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|t| {
            if t.shape.iter().product::<usize>() != t.data.len() {
                return Err(CnnError::Shape(format!(
                    "tensor `{}` of shape {:?} has {} values",
                    t.name,
                    t.shape,
                    t.data.len()
                )));
            }
            Ok((t.name.clone(), t.shape.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect()))
        })
        .collect::<Result<_, _>>()?;
    let views = raw
        .iter()
        .map(|(name, shape, bytes)| Ok((name.as_str(), TensorView::new(Dtype::F32, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| fmt(e.to_string()))?;
    let mut json = serde_json::to_value(spec).map_err(|e| fmt(e.to_string()))?;
    if let serde_json::Value::Object(m) = &mut json {
        m.insert("format".into(), FORMAT.into());
        if let Some(t) = training {
            m.insert("training".into(), t.clone());
        }
    }
    let meta = HashMap::from([(SPEC_KEY.to_string(), json.to_string())]);
    safetensors::serialize(views, Some(meta)).map_err(|e| fmt(e.to_string()))
}

/// Writes a weights file (see [`weights_to_bytes`]).
pub fn write_weights(path: impl AsRef<Path>, spec: &UNetSpec, tensors: &[NamedTensor]) -> Result<(), CnnError> {
    write_weights_with(path, spec, tensors, None)
}

/// [`write_weights`] with a training record (see [`weights_to_bytes_with`]).
pub fn write_weights_with(
    path: impl AsRef<Path>,
    spec: &UNetSpec,
    tensors: &[NamedTensor],
    training: Option<&serde_json::Value>,
) -> Result<(), CnnError> {
    let path = path.as_ref();
    let bytes = weights_to_bytes_with(spec, tensors, training)?;
    // All or nothing, 0666 − umask (the shared I/O layer).
    neurotwin_io::atomic::write_bytes(path, &bytes)
        .map_err(|e| CnnError::Io { path: path.display().to_string(), source: std::io::Error::other(e.to_string()) })
}

/// What a weights file holds: the architecture, every tensor (F32; not yet checked against the architecture)
/// and the training record, if any.
pub(crate) type WeightsFile = (UNetSpec, Vec<NamedTensor>, Option<serde_json::Value>);

/// Reads a weights file's bytes.
pub(crate) fn read_weights(bytes: &[u8], source: &str) -> Result<WeightsFile, CnnError> {
    let fmt = |message: String| CnnError::Format { path: source.into(), message };
    let st = SafeTensors::deserialize(bytes).map_err(|e| fmt(format!("not a valid safetensors file ({e})")))?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| fmt(format!("not a valid safetensors file ({e})")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let json = meta.get(SPEC_KEY).ok_or_else(|| {
        fmt(format!(
            "no `{SPEC_KEY}` metadata: not a neurotwin U-Net weights file (write one with \
             neurotwin_segment::cnn::write_weights, the architecture as JSON under `{SPEC_KEY}`)"
        ))
    })?;
    let mut value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| fmt(format!("metadata `{SPEC_KEY}` is not JSON: {e}")))?;
    let format = value.as_object_mut().and_then(|m| m.remove("format"));
    let training = value.as_object_mut().and_then(|m| m.remove("training"));
    match format.as_ref().and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        Some(f) => return Err(fmt(format!("metadata `{SPEC_KEY}` has format `{f}`, this version reads `{FORMAT}`"))),
        None => return Err(fmt(format!("metadata `{SPEC_KEY}` has no `\"format\": \"{FORMAT}\"` field"))),
    }
    let spec: UNetSpec = serde_json::from_value(value)
        .map_err(|e| fmt(format!("metadata `{SPEC_KEY}` is not a valid architecture: {e}")))?;
    let mut names = st.names();
    names.sort_unstable();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let view = st.tensor(name).map_err(|e| fmt(format!("tensor `{name}`: {e}")))?;
        if view.dtype() != Dtype::F32 {
            return Err(CnnError::WrongDtype {
                path: source.into(),
                name: name.into(),
                found: format!("{:?}", view.dtype()),
            });
        }
        let data =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect::<Vec<f32>>();
        tensors.push(NamedTensor { name: name.into(), shape: view.shape().to_vec(), data });
    }
    Ok((spec, tensors, training))
}
