//! `neurotwin kernels --cubin-dir DIR --arch 80,89,90`: compiles every CUDA kernel unit to cubins with NVRTC
//! (no GPU needed) for a machine that lacks a usable NVRTC; the CUDA backend loads them from the folder named
//! by `NEUROTWIN_KERNEL_DIR` (see `neurotwin_kernels::precompiled`). Used by `scripts/gpu-bundle.sh`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use neurotwin_kernels::precompiled::{KERNEL_DIR_ENV, write_cubins};

#[derive(Args, Debug)]
pub struct KernelsArgs {
    /// Folder for the cubins (`<unit>.<source hash>.sm_<XY>.cubin`); created if missing.
    #[arg(long)]
    pub cubin_dir: PathBuf,
    /// Architectures as compute capability digits, comma-separated (80 = A100, 89 = L4/RTX 4090, 90 = H100).
    #[arg(long, value_delimiter = ',', default_value = "80,89,90")]
    pub arch: Vec<u32>,
}

pub fn kernels(a: KernelsArgs) -> anyhow::Result<()> {
    if let Some(&bad) = a.arch.iter().find(|&&x| !(30..=200).contains(&x) || x % 10 > 9) {
        bail!("--arch {bad}: give compute capabilities as two or three digits, e.g. 80,89,90 (sm_80 = 8.0)");
    }
    let t = std::time::Instant::now();
    let files = write_cubins(&a.cubin_dir, &a.arch)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("cannot build the cubin folder {}", a.cubin_dir.display()))?;
    let bytes: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    println!(
        "{} cubins ({:.1} MB) for sm_{} in {} ({:.1} s); use them with {KERNEL_DIR_ENV}={}",
        files.len(),
        bytes as f64 / 1e6,
        a.arch.iter().map(u32::to_string).collect::<Vec<_>>().join(", sm_"),
        a.cubin_dir.display(),
        t.elapsed().as_secs_f64(),
        a.cubin_dir.display()
    );
    Ok(())
}
