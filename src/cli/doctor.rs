//! `neurotwin doctor`: what this machine offers the simulator.

use neurotwin_kernels::precompiled::{KERNEL_DIR_ENV, complete_archs};
use neurotwin_sim::cuda::cuda_status;

pub fn doctor() -> anyhow::Result<()> {
    println!("neurotwin {}", env!("CARGO_PKG_VERSION"));
    println!("CPU threads (rayon): {}", rayon_threads());
    let s = cuda_status();
    match &s.driver {
        Ok(v) => println!("CUDA driver: {v}"),
        Err(e) => println!("CUDA driver: not available ({e})"),
    }
    if s.devices.is_empty() {
        println!("GPUs: none");
    }
    for d in &s.devices {
        println!("GPU: {d}");
    }
    match &s.nvrtc {
        Ok(v) => {
            let archs = neurotwin_kernels::nvrtc::supported_archs()
                .map(|a| a.iter().map(|x| format!("sm_{x}")).collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|e| e);
            println!("NVRTC: {v}; compiles cubins for {archs}");
        }
        Err(e) => println!("NVRTC: not available ({e})"),
    }
    let precompiled = std::env::var_os(KERNEL_DIR_ENV).filter(|d| !d.is_empty()).map(|d| {
        let archs = complete_archs(std::path::Path::new(&d));
        println!(
            "{KERNEL_DIR_ENV}: {} ({})",
            std::path::Path::new(&d).display(),
            if archs.is_empty() {
                "no complete set of current cubins".to_string()
            } else {
                archs.iter().map(|x| format!("sm_{x}")).collect::<Vec<_>>().join(" ")
            }
        );
        !archs.is_empty()
    });
    println!("bundled data: built into the binary (C. elegans connectome, demo scenario)");
    let kernels = precompiled.unwrap_or(s.nvrtc.is_ok());
    let usable = s.driver.is_ok() && !s.devices.is_empty() && kernels;
    println!("backend `auto` will use: {}", if usable { "cuda" } else { "cpu" });
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
