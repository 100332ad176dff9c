//! [`BackendKind`]: the one name set for "where the work runs", shared by every crate and the CLI
//! (`--backend cpu|cuda|auto|cuda-host`, `--cnn-backend`, scenario `backend = "…"` fields). Each consumer
//! that supports only some kinds refuses the others with a one-line reason (see e.g.
//! `neurotwin_predictive::backend::backend_for`).

use std::fmt;
use std::str::FromStr;

/// Where a computation runs. Every kind a consumer accepts gives bit-identical results to [`BackendKind::Cpu`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum BackendKind {
    /// Rust code on the CPU (rayon).
    #[default]
    Cpu,
    /// The CUDA C kernels on a GPU (cudarc + NVRTC); an error when no usable GPU is found.
    Cuda,
    /// [`BackendKind::Cuda`] when a usable GPU is found, otherwise [`BackendKind::Cpu`] (saying so on stderr).
    Auto,
    /// The CUDA C kernels compiled for the host and run sequentially (the GPU code path without a GPU; slow,
    /// for verification).
    CudaHost,
}

impl BackendKind {
    /// Every kind, in the order of the CLI help.
    pub const ALL: [BackendKind; 4] = [BackendKind::Cpu, BackendKind::Cuda, BackendKind::Auto, BackendKind::CudaHost];

    /// The spelling used on the command line and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
            BackendKind::Auto => "auto",
            BackendKind::CudaHost => "cuda-host",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown backend `{s}` (cpu, cuda, auto, cuda-host)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_display_and_serde() {
        for (k, name) in BackendKind::ALL.into_iter().zip(["cpu", "cuda", "auto", "cuda-host"]) {
            assert_eq!(k.to_string(), name);
            assert_eq!(name.parse::<BackendKind>(), Ok(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<BackendKind>(&format!("\"{name}\"")).unwrap(), k);
        }
    }

    #[test]
    fn unknown_name_error_lists_valid_names() {
        let e = "gpu".parse::<BackendKind>().unwrap_err();
        assert_eq!(e, "unknown backend `gpu` (cpu, cuda, auto, cuda-host)");
        assert!("CudaHost".parse::<BackendKind>().is_err());
        assert!(serde_json::from_str::<BackendKind>("\"cuda_host\"").is_err());
    }

    #[test]
    fn default_is_cpu() {
        assert_eq!(BackendKind::default(), BackendKind::Cpu);
    }

    #[cfg(feature = "clap")]
    #[test]
    fn clap_value_names_match_display() {
        use clap::ValueEnum;
        for k in BackendKind::ALL {
            assert_eq!(k.to_possible_value().unwrap().get_name(), k.name());
            assert_eq!(<BackendKind as ValueEnum>::from_str(k.name(), false), Ok(k));
        }
    }
}
