//! `inspect` and `import`: large graphs, compressed and odd CSV files, `inspect` on `import` output, and
//! query flags that need `--from`.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::common::*;

/// Asserts a clean failure: exit code 1, no panic or abort, and a short message naming `file`.
fn assert_clean_error(o: &Output, file: &str) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(!e.contains("panicked") && !e.contains("overflow"), "{e}");
    assert!(e.contains(file), "error does not name {file}: {e}");
    assert!(e.len() < 2000, "error message of {} bytes", e.len());
    e
}

fn assert_ok(o: &Output) -> String {
    assert!(o.status.success(), "rc {:?}: {}", o.status.code(), stderr(o));
    stdout(o)
}

/// CRC-32 (IEEE) of `data`, for the gzip trailer.
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

/// `text` as a gzip file made of stored (uncompressed) deflate blocks.
fn gzip(text: &str) -> Vec<u8> {
    let data = text.as_bytes();
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = data.chunks(0xffff).collect();
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

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn inspect_handles_a_200000_neuron_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("pre,post,count\n");
    for i in 0..199_999u32 {
        csv.push_str(&format!("{i},{},1\n", i + 1));
    }
    write(dir.path(), "chain.csv", &csv);
    let out = assert_ok(&neurotwin(&["inspect", "chain.csv", "--hubs", "1"], dir.path()));
    assert!(out.contains("200000 neurons"), "{out}");
    assert!(out.contains("200000 components, largest 1 neurons, 200000 singletons"), "{out}");
}

#[test]
fn gzip_csv_is_accepted_by_import_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    write_bytes(dir.path(), "connections.csv.gz", &gzip(CONNECTIONS_CSV));
    write_bytes(dir.path(), "neurons.csv.gz", &gzip(NEURONS_CSV));
    let out = assert_ok(&neurotwin(&["inspect", "connections.csv.gz", "--neurons", "neurons.csv.gz"], dir.path()));
    assert!(out.contains("4 neurons, 4 chemical connections"), "{out}");
    assert_ok(&neurotwin(&["import", "connections.csv.gz", "-o", "c.h5"], dir.path()));
    assert!(dir.path().join("c.h5").is_file());
    // Compression is recognised by its magic bytes, whatever the name says.
    write_bytes(dir.path(), "packed.csv", &gzip(CONNECTIONS_CSV));
    let out = assert_ok(&neurotwin(&["inspect", "packed.csv"], dir.path()));
    assert!(out.contains("4 neurons, 4 chemical connections"), "{out}");
}

#[test]
fn inspect_reads_what_import_wrote() {
    let dir = tempfile::tempdir().unwrap();
    assert_ok(&neurotwin(&["import", "celegans", "-o", "worm.h5"], dir.path()));
    let out = assert_ok(&neurotwin(&["inspect", "worm.h5", "--hubs", "1"], dir.path()));
    assert!(out.contains("Glu_exc"), "{out}");
    // Receptor classes that no preset defines: the error says which flag chooses the map.
    write(dir.path(), "neurons.csv", NEURONS_CSV);
    write(dir.path(), "custom.csv", "pre,post,count,receptor\n1,2,5,NMDA\n2,3,3,ACh\n");
    assert_ok(&neurotwin(&["import", "custom.csv", "--neurons", "neurons.csv", "-o", "custom.h5"], dir.path()));
    let e = assert_clean_error(&neurotwin(&["inspect", "custom.h5"], dir.path()), "custom.h5");
    assert!(e.contains("NMDA") && e.contains("--transmitters"), "{e}");
}

#[test]
fn query_flags_without_from_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "neurons.csv", NEURONS_CSV);
    write(dir.path(), "connections.csv", CONNECTIONS_CSV);
    for flags in [&["--within", "2"][..], &["--to", "D"][..]] {
        let mut args = vec!["inspect", "connections.csv", "--neurons", "neurons.csv"];
        args.extend_from_slice(flags);
        let o = neurotwin(&args, dir.path());
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{flags:?}: {e}");
        assert!(e.contains("--from") && e.contains(flags[0]), "{e}");
    }
}

#[test]
fn leading_blank_lines_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "blank.csv", "\n\r\n   \npre,post,count\n1,2,5\n2,3,3\n");
    let out = assert_ok(&neurotwin(&["inspect", "blank.csv"], dir.path()));
    assert!(out.contains("3 neurons, 2 chemical connections"), "{out}");
    // Line numbers in errors still count the skipped lines.
    write(dir.path(), "bad.csv", "\n\npre,post,count\n1,2,5\n2,3,x\n");
    let e = assert_clean_error(&neurotwin(&["import", "bad.csv", "-o", "b.h5"], dir.path()), "bad.csv:5:");
    assert!(e.contains("column count"), "{e}");
    write(dir.path(), "only_blank.csv", "\n \n\n");
    let e = assert_clean_error(&neurotwin(&["inspect", "only_blank.csv"], dir.path()), "only_blank.csv");
    assert!(e.contains("header"), "{e}");
}

#[test]
fn endless_lines_and_binary_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_bytes(dir.path(), "zero.csv", &vec![0u8; 3 << 20]);
    for cmd in [&["inspect", "zero.csv"][..], &["import", "zero.csv", "-o", "z.h5"][..]] {
        let e = assert_clean_error(&neurotwin(cmd, dir.path()), "zero.csv");
        assert!(e.contains("line 1 is longer than 1 MiB") && e.contains("is this a CSV"), "{e}");
    }
    assert!(!dir.path().join("z.h5").exists());
    if Path::new("/dev/zero").exists() {
        let o = neurotwin(&["inspect", "/dev/zero", "--layout", "generic"], dir.path());
        // `/dev/zero` has no .csv extension: refused either by name or by the line limit, cleanly.
        assert_clean_error(&o, "/dev/zero");
        write(dir.path(), "conn.csv", CONNECTIONS_CSV);
        let o = neurotwin(&["inspect", "conn.csv", "--neurons", "/dev/zero"], dir.path());
        assert!(assert_clean_error(&o, "/dev/zero").contains("longer than 1 MiB"));
    }
    // A valid header, then a line that never ends.
    let mut data = b"pre,post,count\n1,2,3\n".to_vec();
    data.extend(std::iter::repeat_n(b'7', 2 << 20));
    write_bytes(dir.path(), "long.csv", &data);
    let e = assert_clean_error(&neurotwin(&["inspect", "long.csv"], dir.path()), "long.csv");
    assert!(e.contains("line 3 is longer than 1 MiB"), "{e}");
    // Binary garbage (pseudo-random bytes, line breaks included).
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..1 << 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    write_bytes(dir.path(), "garbage.csv", &garbage);
    for cmd in [&["inspect", "garbage.csv"][..], &["import", "garbage.csv", "-o", "g.h5"][..]] {
        let e = assert_clean_error(&neurotwin(cmd, dir.path()), "garbage.csv");
        assert!(e.contains("is this a CSV"), "{e}");
    }
}

#[test]
fn a_closed_pipe_ends_inspect_quietly() {
    // `neurotwin inspect X | head -1` panicked on the broken pipe ("failed printing to stdout").
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "neurons.csv", NEURONS_CSV);
    write(d, "connections.csv", CONNECTIONS_CSV);
    let bin = bin();
    let o = command("sh")
        .arg("-c")
        // The reader is gone before inspect prints: every write meets a closed pipe.
        .arg(format!("(sleep 0.3; '{bin}' inspect connections.csv --neurons neurons.csv) | true"))
        .current_dir(d)
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(!e.contains("panicked") && !e.contains("Broken pipe"), "{e}");
}
