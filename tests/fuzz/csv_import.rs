//! Targets `csv_connectome` (the connectome CSV importer in its generic, FlyWire and neuPrint layouts, plain
//! and gzip, then compilation) and `csv_recording` (calcium recordings as CSV), in this process.

use std::path::Path;

use neurotwin_connectome::import::csv::detect_layout;
use neurotwin_connectome::{CompileOptions, CsvLayout, TransmitterMap, compile, read_csv};
use neurotwin_imaging::{NanPolicy, SignalKind};

use super::common::{CONNECTIONS_CSV, NEURONS_CSV};
use super::engine::{Rng, Shape, mutate_from};
use super::harness::{fuzz_in_process, repo};

const FLYWIRE: &str = "pre_root_id,post_root_id,neuropil,syn_count,nt_type\n\
    720575940600000001,720575940600000002,AL_L,5,ACH\n720575940600000001,720575940600000002,LH_L,7,ACH\n\
    720575940600000002,720575940600000003,LH_L,4,GABA\n720575940600000003,720575940600000001,AL_L,2,GLUT\n";
const FLYWIRE_NEURONS: &str = "root_id,cell_type,primary_type,nt_type,soma_x,soma_y,soma_z\n\
    720575940600000001,ORN,ORN_DA1,ACH,1,2,3\n720575940600000002,PN,,ACH,4,5,6\n\
    720575940600000003,LN,LN_x,GABA,7,8,9\n";
const NEUPRINT: &str = "bodyId_pre,bodyId_post,roi,weight\n10,20,EB,3\n10,20,FB,2\n20,30,FB,7\n30,10,NO,1\n";
const NEUPRINT_NEURONS: &str = "bodyId,type,instance,predictedNt,somaLocation\n10,EPG,EPG(L),acetylcholine,\
    \"[1, 2, 3]\"\n20,PEN,PEN_a,gaba,\"[4, 5, 6]\"\n30,Delta7,D7,glutamate,\n";
const RICH: &str = "pre\tpost\tcount\tweight\ttype\tdelay_ms\tconfidence\treceptor\ttransmitter\n\
    1\t2\t5\t\tchemical\t1.5\t0.9\t\tACh\n2\t3\t3\t-2.5\tchem\t\t\tGABA_A\t\n3\t4\t2\t\tgap\t\t\t\t\n\
    4\t1\t1\t\telectrical\t\t1\t\t\n";

/// A gzip stream of `data` with stored (uncompressed) deflate blocks.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = if data.is_empty() { vec![&[]] } else { data.chunks(65_535).collect() };
    for (i, c) in chunks.iter().enumerate() {
        out.push((i + 1 == chunks.len()) as u8);
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// The first `n` lines of a bundled file.
fn head(path: &Path, n: usize) -> String {
    std::fs::read_to_string(path).unwrap().lines().take(n).map(|l| format!("{l}\n")).collect()
}

/// (connections, neurons) seed pairs.
fn pairs() -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let worm = repo().join("data/celegans");
    let worm_neurons = std::fs::read(worm.join("neurons.csv")).unwrap();
    let b = |s: &str| s.as_bytes().to_vec();
    vec![
        (b(CONNECTIONS_CSV), Some(b(NEURONS_CSV))),
        (b(CONNECTIONS_CSV), None),
        (b(&head(&worm.join("connections.csv"), 300)), Some(worm_neurons)),
        (b(&head(&worm.join("connections.csv"), 60)), None),
        (b(FLYWIRE), None),
        (b(FLYWIRE), Some(b(FLYWIRE_NEURONS))),
        (b(NEUPRINT), Some(b(NEUPRINT_NEURONS))),
        (b(RICH), Some(b(NEURONS_CSV))),
        (gzip_stored(FLYWIRE.as_bytes()), None),
        (gzip_stored(CONNECTIONS_CSV.as_bytes()), Some(gzip_stored(NEURONS_CSV.as_bytes()))),
    ]
}

#[test]
fn csv_connectome() {
    super::set_fuzz_limits();
    let pairs = pairs();
    let texts: Vec<Vec<u8>> = pairs.iter().flat_map(|(c, n)| std::iter::once(c.clone()).chain(n.clone())).collect();
    let dir = tempfile::tempdir().unwrap();
    let (conn, neurons) = (dir.path().join("connections.csv"), dir.path().join("neurons.csv"));
    // The case's other file (unmutated, or absent) and the layout are drawn in `make` and kept for `exec`.
    let setup = std::cell::RefCell::new((None::<Vec<u8>>, CsvLayout::Auto, false));
    fuzz_in_process(
        "csv_connectome",
        "csv",
        "a connectome CSV",
        |rng| {
            let k = rng.below(pairs.len());
            let (c, n) = &pairs[k];
            let shape = |b: &[u8]| if b.starts_with(&[0x1f, 0x8b]) { Shape::Binary } else { Shape::Text };
            let mutate_neurons = n.is_some() && rng.chance(1, 3);
            let layout = *rng.pick(&[
                CsvLayout::Auto,
                CsvLayout::Auto,
                CsvLayout::Generic,
                CsvLayout::FlyWire,
                CsvLayout::NeuPrint,
            ]);
            let (base, other) = if mutate_neurons { (n.as_ref().unwrap(), Some(c.clone())) } else { (c, n.clone()) };
            let mut m = mutate_from(rng, base, &texts, shape(base));
            m.note = format!(
                "the {} file of seed pair {k} (tests/fuzz/csv_import.rs `pairs`), layout {layout}",
                if mutate_neurons { "neurons" } else { "connections" }
            );
            *setup.borrow_mut() = (other, layout, mutate_neurons);
            m
        },
        |rng, bytes| {
            let (other, layout, mutated_neurons) = setup.borrow().clone();
            let (c, n) = if mutated_neurons { (other, Some(bytes.to_vec())) } else { (Some(bytes.to_vec()), other) };
            std::fs::write(&conn, c.unwrap()).unwrap();
            let with_neurons = n.is_some();
            if let Some(n) = n {
                std::fs::write(&neurons, n).unwrap();
            }
            import_and_compile(rng, &conn, with_neurons.then_some(neurons.as_path()), layout)
        },
    );
}

fn import_and_compile(rng: &mut Rng, conn: &Path, neurons: Option<&Path>, layout: CsvLayout) -> &'static str {
    let _ = detect_layout(conn);
    let Ok(c) = read_csv(conn, neurons, layout) else { return "import error" };
    let transmitters = match rng.below(3) {
        0 => TransmitterMap::fly(),
        1 => TransmitterMap::celegans(),
        _ => TransmitterMap::exc_inh(),
    };
    let dt_ms = *rng.pick(&[0.1, 0.025, 1.0]);
    let opts = CompileOptions { transmitters, dt_ms, gap_per_junction_ns: 0.1, ..Default::default() };
    if compile(&c, &opts).is_ok() { "compiled" } else { "imported, compile error" }
}

#[test]
fn csv_recording() {
    let corpus: Vec<Vec<u8>> = [
        "time_s,AVAL,AVAR,,RIML\n0.0,0.12,0.30,NaN,1.5\n0.1,0.15,0.28,0.01,1.4\n0.2,0.1,0.2,0.3,1.3\n",
        "# comment\ntime_s\tAVAL\n0\t1\n0.5\tnan\n1.0\t3\n",
        "time_s,AVAL,AVAR\n0,NaN,2\n0.1,,3\n0.2,1,\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recording.csv");
    fuzz_in_process(
        "csv_recording",
        "csv",
        "a calcium recording CSV",
        |rng| {
            let k = rng.below(corpus.len());
            mutate_from(rng, &corpus[k], &corpus, Shape::Text)
        },
        |rng, bytes| {
            std::fs::write(&path, bytes).unwrap();
            let nan = if rng.chance(1, 2) { NanPolicy::Error } else { NanPolicy::DropRows };
            match neurotwin_imaging::read_csv(&path, SignalKind::DfOverF, nan) {
                Ok(_) => "read",
                Err(_) => "error",
            }
        },
    );
}
