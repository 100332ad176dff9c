//! The CSV importer's layouts: generic (ids or names, comma or tab, gzip), FlyWire (neuropil rows summed,
//! synthesised or FlyWire neuron table) and neuPrint (weight = count, ROI rows summed).

use std::io::Write;
use std::path::{Path, PathBuf};

use neurotwin_connectome::import::csv::detect_layout;
use neurotwin_connectome::{
    CompileOptions, ConnectomeError, CsvLayout, SynapseKind, TransmitterMap, compile, read_csv,
};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const A: u64 = 720575940600000001;
const B: u64 = 720575940600000002;
const C: u64 = 720575940600000003;

fn flywire_dump(dir: &Path) -> PathBuf {
    let rows = [
        (A, B, "AL_L", 5, "ACH"),
        (A, B, "LH_L", 7, "ACH"),
        (B, C, "LH_L", 4, "GABA"),
        (A, B, "MB_CA_L", 1, "GABA"),
        (C, A, "AL_L", 2, "GLUT"),
        (A, C, "AL_L", 1, "GABA"),
    ];
    let mut text = String::from("pre_root_id,post_root_id,neuropil,syn_count,nt_type\n");
    for (a, b, np, n, nt) in rows {
        text += &format!("{a},{b},{np},{n},{nt}\n");
    }
    write(dir, "proofread_connections_783.csv", &text)
}

#[test]
fn flywire_rows_of_different_neuropils_are_summed() {
    let dir = tempfile::tempdir().unwrap();
    let conn = flywire_dump(dir.path());
    assert_eq!(detect_layout(&conn).unwrap(), CsvLayout::FlyWire);
    let c = read_csv(&conn, None, CsvLayout::Auto).unwrap();
    assert_eq!(c.name, "proofread_connections_783");
    assert!(c.provenance[0].contains("flywire layout, 6 rows -> 4 connections"), "{:?}", c.provenance);
    let got: Vec<_> = c.connections.iter().map(|k| (k.pre, k.post, k.count, k.transmitter.as_deref())).collect();
    assert_eq!(
        got,
        [(A, B, 13.0, Some("ACH")), (B, C, 4.0, Some("GABA")), (C, A, 2.0, Some("GLUT")), (A, C, 1.0, Some("GABA"))]
    );
    assert!(c.connections.iter().all(|k| k.kind == SynapseKind::Chemical));
    // Synthesised neuron table: ascending ids, transmitter = majority of outgoing rows by syn_count.
    let ids: Vec<u64> = c.neurons.iter().map(|n| n.id).collect();
    assert_eq!(ids, [A, B, C]);
    let nts: Vec<_> = c.neurons.iter().map(|n| n.transmitter.as_deref()).collect();
    assert_eq!(nts, [Some("ACH"), Some("GABA"), Some("GLUT")]);
    // The fly map signs the summed connections (ACh +, GABA and Glu −).
    let net = compile(&c, &CompileOptions { transmitters: TransmitterMap::fly(), ..Default::default() }).unwrap();
    let mut w: Vec<_> = net.chemical.synapses().into_iter().map(|s| (s.pre, s.post, s.weight)).collect();
    w.sort_by_key(|s| (s.0, s.1));
    assert_eq!(w, [(0, 1, 13.0), (0, 2, -1.0), (1, 2, -4.0), (2, 0, -2.0)]);
    // Forcing the generic layout keeps one connection per row.
    let g = read_csv(&conn, None, CsvLayout::Generic).unwrap();
    assert_eq!(g.connections.len(), 6);
}

#[test]
fn flywire_neurons_file_supplies_types_and_transmitters() {
    let dir = tempfile::tempdir().unwrap();
    let conn = flywire_dump(dir.path());
    let neurons = write(
        dir.path(),
        "neurons.csv",
        &format!(
            "root_id,group,nt_type,nt_type_score,cell_type,primary_type\n\
             {A},AL.LH,ACH,0.9,DA1_lPN,\n{B},LH,GABA,0.8,,LHLN1\n{C},LH,GLUT,0.7,,\n720575940600000009,SEZ,DA,0.5,,\n"
        ),
    );
    let c = read_csv(&conn, Some(&neurons), CsvLayout::Auto).unwrap();
    assert_eq!(c.neurons.len(), 4, "neurons without connections are kept");
    let types: Vec<_> = c.neurons.iter().map(|n| n.cell_type.as_str()).collect();
    assert_eq!(types, ["DA1_lPN", "LHLN1", "", ""]);
    assert_eq!(c.neurons[3].transmitter.as_deref(), Some("DA"));
    assert!(c.provenance[1].contains("neurons.csv: 4 neurons"));
    // An id missing from the neurons file is an error, not a new neuron.
    let small = write(dir.path(), "few.csv", &format!("root_id,nt_type\n{A},ACH\n{B},GABA\n"));
    let e = read_csv(&conn, Some(&small), CsvLayout::Auto).unwrap_err();
    let ConnectomeError::Parse { line, message, .. } = e else { panic!("{e:?}") };
    assert_eq!(line, 4);
    assert!(message.contains(&format!("neuron id {C}")), "{message}");
}

#[test]
fn neuprint_layout_weight_is_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let conn = write(
        dir.path(),
        "traced-connections-per-roi.csv",
        "bodyId_pre,bodyId_post,roi,weight\n10,20,EB,3\n10,20,FB,2\n20,30,FB,7\n30,10,NO,1\n",
    );
    let neurons = write(
        dir.path(),
        "traced-neurons.csv",
        "bodyId,type,instance,predictedNt,somaLocation\n\
         10,EPG,EPG(PB08)_L,acetylcholine,\"[1.5, 2, 3]\"\n20,PEN_a,PEN_a(PEN1)_R,acetylcholine,\n30,Delta7,Delta7_L,glutamate,[4 5 6]\n",
    );
    assert_eq!(detect_layout(&conn).unwrap(), CsvLayout::NeuPrint);
    let c = read_csv(&conn, Some(&neurons), CsvLayout::Auto).unwrap();
    let got: Vec<_> = c.connections.iter().map(|k| (k.pre, k.post, k.count, k.weight)).collect();
    assert_eq!(got, [(10, 20, 5.0, None), (20, 30, 7.0, None), (30, 10, 1.0, None)]);
    let n = &c.neurons[0];
    assert_eq!(
        (n.name.as_str(), n.cell_type.as_str(), n.transmitter.as_deref()),
        ("EPG(PB08)_L", "EPG", Some("acetylcholine"))
    );
    assert_eq!(n.position, Some([1.5, 2.0, 3.0]));
    assert_eq!(c.neurons[1].position, None);
    assert_eq!(c.neurons[2].position, Some([4.0, 5.0, 6.0]));
    let net = compile(&c, &CompileOptions { transmitters: TransmitterMap::fly(), ..Default::default() }).unwrap();
    let w30: f32 = net.chemical.synapses().iter().filter(|s| s.pre == 2).map(|s| s.weight).sum();
    assert_eq!(w30, -1.0, "Delta7 is glutamatergic (inhibitory in the fly map)");
}

#[test]
fn generic_names_tabs_and_optional_columns() {
    let dir = tempfile::tempdir().unwrap();
    let neurons = write(
        dir.path(),
        "cells.tsv",
        "\u{feff}ID\tName\tcell_type\tnt\tx\ty\tz\tganglion\tnotes\n\
         5\tAVAL\tinterneuron\tACh\t0.1\t-2.7\t0.4\tlateral ganglion\tcommand\n\
         6\tAVAR\tinterneuron\tACh\t\t\t\t\t\n7\tDD1\tmotor\tGABA\t1\t2\t3\t\t\n",
    );
    let conn = write(
        dir.path(),
        "edges.tsv",
        "pre_name\tpost_name\ttype\tcount\tweight\treceptor\tdelay_ms\tconfidence\ttransmitter\n\
         AVAL\tAVAR\tgap\t18\t\t\t\t\t\n\
         AVAL\tDD1\tchemical\t2\t\t\t2.5\t0.9\t\n\
         DD1\tAVAL\t\t3\t-0.75\tGABA\t\t\tGABA\n",
    );
    let c = read_csv(&conn, Some(&neurons), CsvLayout::Auto).unwrap();
    assert_eq!(c.name, "edges");
    let aval = &c.neurons[0];
    assert_eq!((aval.id, aval.name.as_str(), aval.transmitter.as_deref()), (5, "AVAL", Some("ACh")));
    assert_eq!(aval.position, Some([0.1, -2.7, 0.4]));
    assert_eq!(aval.region.as_deref(), Some("lateral ganglion"));
    assert_eq!((c.neurons[1].position, c.neurons[1].region.as_deref()), (None, None));
    let k = &c.connections;
    assert_eq!((k[0].pre, k[0].post, k[0].kind, k[0].count), (5, 6, SynapseKind::Electrical, 18.0));
    assert_eq!((k[1].kind, k[1].delay_ms, k[1].confidence), (SynapseKind::Chemical, Some(2.5), Some(0.9)));
    assert_eq!(
        (k[2].weight, k[2].receptor.as_deref(), k[2].transmitter.as_deref()),
        (Some(-0.75), Some("GABA"), Some("GABA"))
    );
    // `pre`/`post` columns holding names work the same, and without a neurons file names are synthesised.
    let conn = write(dir.path(), "names.csv", "pre,post,synapses\nAVAL,AVAR,1\nAVAR,DD1,2\nAVAL,DD1,3\n");
    let c = read_csv(&conn, None, CsvLayout::Auto).unwrap();
    let names: Vec<_> = c.neurons.iter().map(|n| (n.id, n.name.as_str())).collect();
    assert_eq!(names, [(0, "AVAL"), (1, "AVAR"), (2, "DD1")]);
    assert_eq!(c.connections[2].pre, 0);
}

#[test]
fn gzip_and_crlf_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), flate2::Compression::default());
    gz.write_all(b"pre_root_id,post_root_id,neuropil,syn_count,nt_type\r\n1,2,AL,3,ACH\r\n1,2,LH,4,ACH\r\n").unwrap();
    gz.finish().unwrap();
    let c = read_csv(&p, None, CsvLayout::Auto).unwrap();
    assert_eq!(c.name, "c");
    assert_eq!((c.connections.len(), c.connections[0].count), (1, 7.0));
    // Error lines count blank lines and CRLF line ends (in a compressed file too).
    let p = dir.path().join("bad.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), flate2::Compression::default());
    gz.write_all(b"pre,post,count\r\n1,2,1\r\n\r\n\r\n2,1,x\r\n").unwrap();
    gz.finish().unwrap();
    let e = read_csv(&p, None, CsvLayout::Auto).unwrap_err().to_string();
    assert!(e.contains("bad.csv.gz:5: column count: \"x\" is not a number"), "{e}");
    let p = write(dir.path(), "blank.csv", "pre,post,count\n\n1,2,1\n\n\n\"2\",\"3\",\"-1\"\n");
    let e = read_csv(&p, None, CsvLayout::Auto).unwrap_err().to_string();
    assert!(e.contains("blank.csv:6: column count"), "{e}");
}
