//! End to end: `neurotwin segment` on a phantom CREMI file, then `neurotwin run` on the connectome it
//! wrote; bad inputs; the real gala volume when ../shared/data is present.

mod common;

use std::path::Path;

use common::{files_below, neurotwin, stderr, stdout, write};
use neurotwin_segment::io::{CLEFTS, Data, NEURON_IDS, PartnerSites, RAW, write_volumes};
use neurotwin_segment::phantom::{PhantomConfig, generate};

/// Writes phantom.h5 (CREMI layout with partner annotations) and syn.csv (true synapse centres, nm);
/// returns the number of synapses.
fn write_phantom(dir: &Path) -> usize {
    let ph = generate(&PhantomConfig { noise: 0.1, ..Default::default() });
    let sites: Vec<PartnerSites> =
        ph.synapses.iter().map(|s| PartnerSites { pre_nm: s.pre_site_nm, post_nm: s.post_site_nm }).collect();
    write_volumes(
        dir.join("phantom.h5"),
        &[(RAW, Data::U8(&ph.raw)), (NEURON_IDS, Data::U64(&ph.labels)), (CLEFTS, Data::U64(&ph.clefts))],
        Some(&sites),
    )
    .unwrap();
    let mut csv = String::from("z,y,x\n");
    for s in &ph.synapses {
        csv.push_str(&format!("{},{},{}\n", s.position_nm[0], s.position_nm[1], s.position_nm[2]));
    }
    write(dir, "syn.csv", &csv);
    ph.synapses.len()
}

#[test]
fn segment_phantom_then_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n_syn = write_phantom(d);
    write(d, "cfg.json", r#"{ "thresholds": [0.5, 0.6], "watershed": { "min_fragment_voxels": 10 } }"#);
    let o =
        neurotwin(&["segment", "phantom.h5", "-o", "out", "--ground-truth", "phantom.h5", "--config", "cfg.json"], d);
    println!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("VOI split") && text.contains("adapted Rand error"), "{text}");
    assert!(text.contains(&format!("{n_syn} annotated")) && text.contains("F1"), "{text}");
    for f in ["segmentation.h5", "connectome.h5", "report.json"] {
        assert!(d.join("out").join(f).is_file(), "{f} missing");
    }
    assert_eq!(files_below(&d.join("out")).len(), 3, "no staging leftovers");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/report.json")).unwrap()).unwrap();
    let neurons = report["report"]["neurons"].as_u64().unwrap();
    let voi = report["report"]["thresholds"][0]["scores"]["voi_split"].as_f64().unwrap()
        + report["report"]["thresholds"][0]["scores"]["voi_merge"].as_f64().unwrap();
    println!("phantom via CLI: {neurons} neurons, VOI {voi:.4}");
    assert!(neurons >= 10 && voi < 0.1);

    // A given boundary map (the one just written) and true synapses from a CSV.
    let o = neurotwin(
        &[
            "segment",
            "phantom.h5",
            "-o",
            "out-b",
            "--boundary",
            "out/segmentation.h5:volumes/boundary",
            "--gt-synapses",
            "syn.csv",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("boundary: given") && stdout(&o).contains("F1 1.000"), "{}", stdout(&o));

    write(
        d,
        "seg.toml",
        r#"name = "segmented"

[network]
file = "out/connectome.h5"
transmitters = "fly"
weight_per_synapse = 50.0

[model]
model = "lif_exp"

[run]
duration_ms = 100.0
dt_ms = 0.1
seed = 1

[[stimulus]]
kind = "activation"
targets = { all = true }
rate_hz = 20.0
"#,
    );
    let o = neurotwin(&["run", "seg.toml", "-o", "run-out"], d);
    println!("{}", stdout(&o));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("{neurons} neurons")), "{}", stdout(&o));
}

#[test]
fn segment_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_phantom(d);
    // Missing dataset: clear message, non-zero exit, no output folder.
    let o = neurotwin(&["segment", "phantom.h5", "-o", "out1", "--raw-dataset", "stack"], d);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("phantom.h5") && e.contains("`stack`") && e.contains("missing"), "{e}");
    assert!(!d.join("out1").exists());
    // Wrong type for raw (the labels are u64).
    let o = neurotwin(&["segment", "phantom.h5", "-o", "out2", "--raw-dataset", NEURON_IDS], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("expected u8"), "{}", stderr(&o));
    assert!(!d.join("out2").exists());
    // A boundary map with NaN; and a boundary spec without a dataset.
    let nan = neurotwin_segment::Volume::from_vec([1, 1, 2], [1.0; 3], vec![0.5f32, f32::NAN]).unwrap();
    write_volumes(d.join("nan.h5"), &[("b", Data::F32(&nan))], None).unwrap();
    let o = neurotwin(&["segment", "phantom.h5", "-o", "out3", "--boundary", "nan.h5:b"], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("NaN") && stderr(&o).contains("nan.h5"), "{}", stderr(&o));
    assert!(!d.join("out3").exists());
    let o = neurotwin(&["segment", "phantom.h5", "-o", "out4", "--boundary", "nan.h5"], d);
    assert!(stderr(&o).contains("FILE:DATASET"), "{}", stderr(&o));
    // Block not a multiple of the chunk.
    let o = neurotwin(&["segment", "phantom.h5", "-o", "out5", "--block", "16,30,30", "--chunk", "16,20,20"], d);
    assert!(stderr(&o).contains("multiple of the fragment chunk"), "{}", stderr(&o));
    assert!(!d.join("out5").exists());
    // A configuration file with an unknown field names the file and the field.
    write(d, "cfg.json", r#"{ "thresholds": [0.5], "treshold": 1 }"#);
    let o = neurotwin(&["segment", "phantom.h5", "-o", "out6", "--config", "cfg.json"], d);
    assert!(stderr(&o).contains("cfg.json") && stderr(&o).contains("treshold"), "{}", stderr(&o));
    assert!(!d.join("out6").exists());
}

/// The README command on the real gala volume (skips when ../shared/data is absent).
#[test]
fn segment_gala_with_ground_truth() {
    let g = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/em-gala");
    if !g.join("train-image.h5").exists() {
        println!("skipped: {} is absent", g.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = g.join("train-image.h5");
    let gt = format!("{}:stack", g.join("train-gt.h5").display());
    let o = neurotwin(
        &["segment", img.to_str().unwrap(), "-o", "out", "--raw-dataset", "stack", "--ground-truth", &gt],
        dir.path(),
    );
    println!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("VOI merge"));
}
