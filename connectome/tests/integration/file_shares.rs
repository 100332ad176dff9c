//! One rank's share of a neurotwin HDF5 connectome or a SONATA circuit read without the rest
//! (`read_connectome_share` / `read_sonata_share` + `compile_share`): exactly the synapses of the whole file's
//! compiled network onto the rank's targets, with the whole network's receptor channels (one of them used only by
//! the last rank's targets), the ranks' targets tiling the network, over more rows than one read slice; bad rows
//! are located errors.

use neurotwin_connectome::compile::compile_share;
use neurotwin_connectome::export::{SonataWriteOptions, write_sonata};
use neurotwin_connectome::hdf5io::{read_connectome, read_connectome_share, write_connectome};
use neurotwin_connectome::import::read_sonata_share;
use neurotwin_connectome::{
    CompileOptions, Connection, Connectome, ConnectomeError, ConnectomeShare, Neuron, Share, Synapse, TransmitterMap,
    compile, read_sonata,
};

/// 3,000 neurons (ACh, GABA or none), ≈ 150,000 connections (more than two read slices of 65,536 rows) with counts,
/// some explicit weights, delays, per-connection transmitters; connections onto the last 300 neurons from the
/// first 10 carry the receptor `DA`, which no other target receives.
fn connectome() -> Connectome {
    let n = 3000u64;
    let neurons: Vec<Neuron> = (0..n)
        .map(|i| {
            let mut x = Neuron::new(1000 + i, format!("n{i}"));
            x.transmitter = match i % 5 {
                0 => Some("GABA".into()),
                4 => None,
                _ => Some("ACh".into()),
            };
            x
        })
        .collect();
    let mut connections = Vec::new();
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        h
    };
    for pre in 0..n {
        for _ in 0..50 {
            let post = next() % n;
            let mut c = Connection::chemical(1000 + pre, 1000 + post, 1.0 + (next() % 4) as f32);
            match next() % 10 {
                0 => c.weight = Some(0.25 * (next() % 8) as f32 - 1.0),
                1 => c.delay_ms = Some(0.1 * (1 + next() % 30) as f32),
                2 => c.transmitter = Some("Glu".into()),
                _ => {}
            }
            if pre < 10 && post >= n - 300 {
                c.receptor = Some("DA".into());
            }
            connections.push(c);
        }
    }
    Connectome { name: "shares".into(), provenance: vec![], neurons, connections }
}

fn options(min: f32) -> CompileOptions {
    CompileOptions { transmitters: TransmitterMap::fly(), min_synapse_count: min, ..Default::default() }
}

#[test]
fn each_rank_reads_and_compiles_exactly_its_share() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.h5");
    let c = connectome();
    assert!(c.connections.len() > 2 * 65_536);
    write_connectome(&path, &c).unwrap();
    for min in [0.0f32, 3.0] {
        let opt = options(min);
        let whole = compile(&read_connectome(&path).unwrap(), &opt).unwrap();
        let all: Vec<Synapse> = whole.chemical.synapses();
        let names = |r: &[neurotwin_models::ReceptorChannel]| r.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
        assert!(names(&whole.receptors).contains(&"DA".to_string()), "{:?}", names(&whole.receptors));
        for size in [1usize, 2, 3] {
            let (mut next, mut held) = (0u32, 0usize);
            for rank in 0..size {
                let share = Share::new(rank, size).unwrap();
                let part = read_connectome_share(&path, &share).unwrap();
                let net = compile_share(&part, &opt).unwrap();
                let keep = net.held_targets.clone().expect("a share");
                assert_eq!(keep, part.targets);
                assert_eq!(keep.start, next, "min {min}: rank {rank} of {size}");
                next = keep.end;
                // Only the connections onto its targets were kept.
                let kept_rows = part.connectome.connections.len();
                let onto = c
                    .connections
                    .iter()
                    .filter(|x| (1000 + keep.start as u64..1000 + keep.end as u64).contains(&x.post));
                assert_eq!(kept_rows, onto.count(), "min {min}: rank {rank} of {size}");
                // Same channels as the whole network, in its order, on every rank.
                assert_eq!(names(&net.receptors), names(&whole.receptors), "min {min}: rank {rank} of {size}");
                let want: Vec<Synapse> = all.iter().copied().filter(|s| keep.contains(&s.post)).collect();
                assert!(net.chemical.synapses() == want, "min {min}: rank {rank} of {size}: synapses differ");
                assert_eq!(net.neurons, whole.neurons);
                held += want.len();
            }
            assert_eq!(next, 3000, "min {min}: {size} ranks tile the network");
            assert_eq!(held, all.len());
        }
    }
    // Balanced on the connections onto each block: 3 ranks within 10 % of an equal third (47 blocks of ≈ 3,200).
    for rank in 0..3 {
        let part = read_connectome_share(&path, &Share::new(rank, 3).unwrap()).unwrap();
        let share = part.connectome.connections.len() as f64 * 3.0 / c.connections.len() as f64;
        assert!((share - 1.0).abs() < 0.10, "rank {rank}: {share}");
    }
}

#[test]
fn a_bad_row_is_a_located_error_on_the_rank_that_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.h5");
    // A negative count onto neuron 2,999 (the last rank's), patched into a valid file (the writer refuses it).
    let c = connectome();
    let k = c.connections.iter().position(|x| x.post == 1000 + 2999).unwrap();
    write_connectome(&path, &c).unwrap();
    {
        let f = hdf5::File::open_rw(&path).unwrap();
        let ds = f.dataset("connections/count").unwrap();
        ds.write_slice(&[-1.0f32][..], k..k + 1).unwrap();
    }
    let err = |rank: usize| read_connectome_share(&path, &Share::new(rank, 2).unwrap()).map(|_| ()).unwrap_err();
    let last = err(1);
    assert!(matches!(last, ConnectomeError::Format { .. }), "{last:?}");
    assert!(
        last.to_string().contains(&format!("connection #{k}")) && last.to_string().contains("synapse count -1"),
        "{last}"
    );
    assert!(read_connectome_share(&path, &Share::new(0, 2).unwrap()).is_ok(), "rank 0 does not hold that row");
    // An unknown postsynaptic id: every rank sees it (the first pass reads every row's target).
    {
        let f = hdf5::File::open_rw(&path).unwrap();
        let ds = f.dataset("connections/post").unwrap();
        ds.write_slice(&[77u64][..], 7..8).unwrap();
    }
    for rank in 0..2 {
        let e = err(rank).to_string();
        assert!(e.contains("connection #7: post neuron id 77 is not in the neuron table"), "rank {rank}: {e}");
    }
}

/// The same for a SONATA circuit written from the connectome (exact receptor and transmitter per edge type).
#[test]
fn each_rank_reads_and_compiles_exactly_its_share_of_a_sonata_circuit() {
    let dir = tempfile::tempdir().unwrap();
    let c = connectome();
    let map = TransmitterMap::fly();
    let cfg = write_sonata(
        &c,
        &[],
        &dir.path().join("circuit"),
        &SonataWriteOptions { transmitters: map.clone(), ..Default::default() },
    )
    .unwrap();
    let opt = options(0.0);
    let whole_circuit = read_sonata(&cfg).unwrap();
    let whole = compile(&whole_circuit.connectome, &opt).unwrap();
    let all: Vec<Synapse> = whole.chemical.synapses();
    let names = |r: &[neurotwin_models::ReceptorChannel]| r.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
    assert!(names(&whole.receptors).contains(&"DA".to_string()), "{:?}", names(&whole.receptors));
    for size in [2usize, 3] {
        let (mut next, mut held) = (0u32, 0usize);
        for rank in 0..size {
            let part = read_sonata_share(&cfg, &Share::new(rank, size).unwrap()).unwrap();
            assert_eq!(part.edge_numbers.len(), part.circuit.connectome.connections.len());
            assert_eq!(part.circuit.nsyns_given.len(), part.edge_numbers.len());
            // Each kept edge is the whole circuit's edge of that number.
            for (k, &e) in part.edge_numbers.iter().enumerate().step_by(97) {
                assert_eq!(part.circuit.connectome.connections[k], whole_circuit.connectome.connections[e as usize]);
            }
            let share = ConnectomeShare {
                connectome: part.circuit.connectome,
                targets: part.targets,
                largest_count: 0.0,
                any_chemical: true,
                any_weighted: true,
                receptor_uses: part.receptor_uses,
            };
            let net = compile_share(&share, &opt).unwrap();
            let keep = net.held_targets.clone().expect("a share");
            assert_eq!(keep.start, next, "rank {rank} of {size}");
            next = keep.end;
            assert_eq!(names(&net.receptors), names(&whole.receptors), "rank {rank} of {size}");
            let want: Vec<Synapse> = all.iter().copied().filter(|s| keep.contains(&s.post)).collect();
            assert!(net.chemical.synapses() == want, "rank {rank} of {size}: synapses differ");
            held += want.len();
        }
        assert_eq!((next, held), (3000, all.len()), "{size} ranks");
    }
}
