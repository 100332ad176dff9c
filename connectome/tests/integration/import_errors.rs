//! Every failure of the CSV importer is a located `ConnectomeError`, never a panic.

use std::path::{Path, PathBuf};

use neurotwin_connectome::{ConnectomeError, CsvLayout, read_csv};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const NEURONS: &str = "id,name,cell_type,transmitter\n1,A,sensory,ACh\n2,B,interneuron,GABA\n3,C,motor,Glu\n";

/// Imports and returns the (line, message) of the Parse error.
fn parse_error(conn: &Path, neurons: Option<&Path>) -> (PathBuf, u64, String) {
    match read_csv(conn, neurons, CsvLayout::Auto).unwrap_err() {
        ConnectomeError::Parse { path, line, message } => (path, line, message),
        other => panic!("expected a Parse error, got {other:?}"),
    }
}

#[test]
fn missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("nope.csv");
    let e = read_csv(&conn, None, CsvLayout::Auto).unwrap_err();
    assert!(matches!(e, ConnectomeError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("nope.csv"), "{e}");
    // A missing neurons file is reported too (before the connections are read).
    let conn = write(dir.path(), "c.csv", "pre,post,count\n1,2,3\n");
    let e = read_csv(&conn, Some(&dir.path().join("cells.csv")), CsvLayout::Auto).unwrap_err().to_string();
    assert!(e.contains("cells.csv") && e.contains("cannot read"), "{e}");
}

#[test]
fn empty_file_asks_for_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let conn = write(dir.path(), "c.csv", "\n");
    let e = read_csv(&conn, None, CsvLayout::Auto).unwrap_err().to_string();
    assert!(e.contains("c.csv") && e.contains("header"), "{e}");
}

#[test]
fn malformed_number_gives_line_column_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let conn = write(
        dir.path(),
        "connections.csv",
        "pre_root_id,post_root_id,neuropil,syn_count,nt_type\n1,2,AL_L,5,ACH\n1,3,AL_R,abc,ACH\n",
    );
    let (path, line, msg) = parse_error(&conn, None);
    assert_eq!((path.as_path(), line), (conn.as_path(), 3));
    assert_eq!(msg, "column syn_count: \"abc\" is not a number (expected a synapse count)");
    let e = read_csv(&conn, None, CsvLayout::Auto).unwrap_err().to_string();
    assert!(e.contains("connections.csv:3: column syn_count: \"abc\" is not a number"), "{e}");
}

#[test]
fn malformed_ids_and_field_counts() {
    let dir = tempfile::tempdir().unwrap();
    // An id column holding something else after the first row.
    let conn = write(dir.path(), "c.csv", "pre,post,count\n1,2,1\n1,x7,2\n");
    let (_, line, msg) = parse_error(&conn, None);
    assert_eq!(line, 3);
    assert!(msg.contains("column post") && msg.contains("\"x7\" is not a neuron id"), "{msg}");
    // A row with a missing field.
    let conn = write(dir.path(), "c2.csv", "pre,post,count\n1,2,1\n\n2,3\n");
    let (_, line, msg) = parse_error(&conn, None);
    assert_eq!(line, 4);
    assert!(msg.contains("2 fields") && msg.contains("header has 3"), "{msg}");
    // An empty count.
    let conn = write(dir.path(), "c3.csv", "pre\tpost\tcount\n1\t2\t\n");
    let (_, line, msg) = parse_error(&conn, None);
    assert_eq!((line, msg.as_str()), (2, "column count: empty, expected a synapse count"));
    // An unknown connection type.
    let conn = write(dir.path(), "c4.csv", "pre,post,count,type\n1,2,1,chemical\n2,1,1,gap\n2,3,1,ephaptic\n");
    let (_, line, msg) = parse_error(&conn, None);
    assert_eq!(line, 4);
    assert!(msg.contains("column type") && msg.contains("ephaptic") && msg.contains("electrical"), "{msg}");
    // A malformed neurons file: located in that file.
    let neurons = write(dir.path(), "n.csv", "id,name,x,y,z\n1,A,0,0,0\n2,B,1,,3\n");
    let conn = write(dir.path(), "c5.csv", "pre,post,count\n1,2,1\n");
    let (path, line, msg) = parse_error(&conn, Some(&neurons));
    assert_eq!((path, line), (neurons, 3));
    assert!(msg.contains("column y: empty"), "{msg}");
}

#[test]
fn unknown_neuron_id_names_line_id_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let neurons = write(dir.path(), "neurons.csv", NEURONS);
    let conn = write(dir.path(), "c.csv", "pre,post,count\n1,2,3\n2,3,1\n3,42,2\n");
    let (_, line, msg) = parse_error(&conn, Some(&neurons));
    assert_eq!(line, 4);
    assert!(msg.contains("neuron id 42") && msg.contains("neurons.csv"), "{msg}");
    assert!(msg.contains("add it to the neurons file or drop the row"), "{msg}");
    // Same for names.
    let conn = write(dir.path(), "c2.csv", "pre_name,post_name,count\nA,B,1\nA,AVAL,1\n");
    let (_, line, msg) = parse_error(&conn, Some(&neurons));
    assert_eq!(line, 3);
    assert!(msg.contains("column post_name") && msg.contains("`AVAL`") && msg.contains("drop the row"), "{msg}");
}

#[test]
fn negative_count_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let conn = write(dir.path(), "c.csv", "pre,post,count\n1,2,3\n2,1,-2\n");
    let (_, line, msg) = parse_error(&conn, None);
    assert_eq!(line, 3);
    assert!(msg.contains("column count") && msg.contains("negative"), "{msg}");
    // neuPrint `weight` is a count, so it may not be negative either.
    let conn = write(dir.path(), "n.csv", "bodyId_pre,bodyId_post,weight\n10,20,-1\n");
    let (_, line, msg) = parse_error(&conn, None);
    assert_eq!(line, 2);
    assert!(msg.contains("column weight") && msg.contains("negative"), "{msg}");
}

#[test]
fn nan_and_infinite_numbers_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let conn = write(dir.path(), "c.csv", "pre,post,count,weight\n1,2,3,0.5\n2,1,1,NaN\n");
    let (_, line, msg) = parse_error(&conn, None);
    assert_eq!(line, 3);
    assert!(msg.contains("column weight") && msg.contains("NaN") && msg.contains("finite"), "{msg}");
    let conn = write(dir.path(), "c2.csv", "pre,post,count\n1,2,nan\n");
    let (_, line, msg) = parse_error(&conn, None);
    assert_eq!(line, 2);
    assert!(msg.contains("column count") && msg.contains("NaN"), "{msg}");
    let conn = write(dir.path(), "c3.csv", "pre,post,count,delay_ms,confidence\n1,2,1,0,0.5\n");
    let (_, _, msg) = parse_error(&conn, None);
    assert!(msg.contains("column delay_ms") && msg.contains("> 0"), "{msg}");
    let conn = write(dir.path(), "c4.csv", "pre,post,count,delay_ms,confidence\n1,2,1,1.5,1.2\n");
    let (_, _, msg) = parse_error(&conn, None);
    assert!(msg.contains("column confidence") && msg.contains("[0, 1]"), "{msg}");
}

#[test]
fn duplicate_neuron_id_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let neurons = write(dir.path(), "neurons.csv", "id,name\n1,A\n2,B\n1,C\n");
    let conn = write(dir.path(), "c.csv", "pre,post,count\n1,2,1\n");
    let (path, line, msg) = parse_error(&conn, Some(&neurons));
    assert_eq!((path, line), (neurons.clone(), 4));
    assert!(msg.contains("neuron id 1 appears twice (first at line 2)"), "{msg}");
    // Duplicate names only matter when connections refer to neurons by name.
    let neurons = write(dir.path(), "n2.csv", "id,name\n1,A\n2,B\n3,A\n");
    assert!(read_csv(&conn, Some(&neurons), CsvLayout::Auto).is_ok());
    let conn = write(dir.path(), "c2.csv", "pre_name,post_name,count\nA,B,1\n");
    let (_, line, msg) = parse_error(&conn, Some(&neurons));
    assert_eq!(line, 4);
    assert!(msg.contains("`A` appears twice"), "{msg}");
}

#[test]
fn missing_required_column_lists_found_and_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let conn = write(dir.path(), "c.csv", "source,target,count\n1,2,1\n");
    let e = read_csv(&conn, None, CsvLayout::Auto).unwrap_err();
    let ConnectomeError::Format { path, message } = e else { panic!("expected a Format error, got {e:?}") };
    assert_eq!(path, conn);
    assert!(message.contains("presynaptic"), "{message}");
    assert!(message.contains("`source`, `target`, `count`"), "found columns: {message}");
    assert!(message.contains("`pre_root_id`") && message.contains("`bodyid_pre`") && message.contains("`pre_name`"));
    // No count column.
    let conn = write(dir.path(), "c2.csv", "pre\tpost\tnt\n1\t2\tACh\n");
    let msg = read_csv(&conn, None, CsvLayout::Auto).unwrap_err().to_string();
    assert!(msg.contains("synapse count") && msg.contains("`syn_count`") && msg.contains("`weight`"), "{msg}");
    assert!(msg.contains("`pre`, `post`, `nt`") && msg.contains("delimiter tab"), "{msg}");
    // Neurons file without ids.
    let neurons = write(dir.path(), "n.csv", "name,type\nA,KC\n");
    let conn = write(dir.path(), "c3.csv", "pre,post,count\n1,2,1\n");
    let msg = read_csv(&conn, Some(&neurons), CsvLayout::Auto).unwrap_err().to_string();
    assert!(msg.contains("n.csv") && msg.contains("neuron id") && msg.contains("`root_id`"), "{msg}");
    // A forced layout does not invent columns.
    let conn = write(dir.path(), "c4.csv", "a,b\n1,2\n");
    let msg = read_csv(&conn, None, CsvLayout::FlyWire).unwrap_err().to_string();
    assert!(msg.contains("`a`, `b`"), "{msg}");
}
