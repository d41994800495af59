//! Measures the downloader's local throughput (HTTP parsing, sha256, writes, fsync, rename)
//! against a loopback server, and the planner's speed over the bundled catalog.
//!
//! `cargo run --release -p cria-models --example download_timing -- [MiB]`

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Instant;

use cria_models::catalog::Catalog;
use cria_models::download::{CancelToken, DownloadFile, DownloadJob, Downloader};
use cria_models::net::NetworkPolicy;
use cria_models::planner::{self, ContextRequest, GpuDevice, Machine};
use sha2::{Digest, Sha256};

const BLOCK: usize = 1 << 20;

fn block() -> Vec<u8> {
    (0..BLOCK)
        .map(|index| (index as u8).wrapping_mul(31))
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mebibytes: usize = std::env::args().nth(1).map_or(Ok(512), |arg| arg.parse())?;
    let total = mebibytes * BLOCK;
    let data = block();
    let mut hasher = Sha256::new();
    let hash_started = Instant::now();
    for _ in 0..mebibytes {
        hasher.update(&data);
    }
    let sha: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let hash_seconds = hash_started.elapsed().as_secs_f64();

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let served = data.clone();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
            );
            for _ in 0..mebibytes {
                if stream.write_all(&served).is_err() {
                    return;
                }
            }
        }
    });

    let dir = tempfile::tempdir()?;
    let job = DownloadJob {
        files: vec![DownloadFile {
            url: format!("http://localhost:{port}/model.gguf"),
            file_name: "model.gguf".to_owned(),
            size: Some(total as u64),
            sha256: Some(sha),
        }],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let downloader = Downloader::new(NetworkPolicy::loopback_for_tests())?;
    let started = Instant::now();
    runtime.block_on(downloader.download(dir.path(), &job, &CancelToken::new(), &mut |_| {}))?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "download {mebibytes} MiB over loopback, sha256 + fsync + rename: {seconds:.2} s = {:.0} MiB/s (sha256 alone: {:.0} MiB/s)",
        mebibytes as f64 / seconds,
        mebibytes as f64 / hash_seconds
    );

    let catalog = Catalog::bundled()?;
    let machine = Machine {
        ram_total: 64 << 30,
        ram_available: None,
        gpus: vec![GpuDevice {
            name: "gpu".into(),
            vram_total: 24 << 30,
            vram_free: None,
            bandwidth_gbps: None,
        }],
        unified_memory: false,
        ram_bandwidth_gbps: None,
    };
    let facts: Vec<_> = catalog
        .variants
        .iter()
        .map(|variant| catalog.facts(&variant.id, true))
        .collect::<Result<_, _>>()?;
    let rounds = 1000;
    let started = Instant::now();
    for _ in 0..rounds {
        for model in &facts {
            std::hint::black_box(planner::plan(model, &machine, ContextRequest::Largest));
        }
    }
    let per_plan = started.elapsed().as_secs_f64() / (rounds * facts.len()) as f64;
    println!(
        "planner: {:.1} µs per plan ({} catalog variants)",
        per_plan * 1e6,
        facts.len()
    );
    Ok(())
}
