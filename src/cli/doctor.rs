//! `neurotwin doctor`: what this machine offers the simulator.

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
        Ok(v) => println!("NVRTC: {v}"),
        Err(e) => println!("NVRTC: not available ({e})"),
    }
    let usable = s.driver.is_ok() && !s.devices.is_empty() && s.nvrtc.is_ok();
    println!("backend `auto` will use: {}", if usable { "cuda" } else { "cpu" });
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
