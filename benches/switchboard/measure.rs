//! Timing: running an operation from concurrent clients, percentiles, and
//! the printed table (each scenario next to its baseline).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

/// One measured run: `ops` operations in `elapsed`, with per-operation
/// latencies (sorted).
pub struct Stats {
    pub name: String,
    pub ops: usize,
    pub elapsed: Duration,
    lat: Vec<Duration>,
}

impl Stats {
    pub fn new(name: &str, ops: usize, elapsed: Duration, mut lat: Vec<Duration>) -> Stats {
        lat.sort_unstable();
        Stats {
            name: name.to_owned(),
            ops,
            elapsed,
            lat,
        }
    }

    pub fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile, `q` in (0, 1].
    pub fn pct(&self, q: f64) -> Duration {
        if self.lat.is_empty() {
            return Duration::ZERO;
        }
        let rank = (self.lat.len() as f64 * q).ceil() as usize;
        self.lat[rank.clamp(1, self.lat.len()) - 1]
    }
}

/// A scenario, its baseline, and what the reader should know about them.
pub struct Row {
    pub scenario: Stats,
    pub baseline: Stats,
    pub notes: Vec<String>,
}

/// Runs `op(client, i)` for i in 0..ops from `clients` concurrent tasks,
/// each taking the next i when done with its last.
pub async fn concurrent<F, Fut>(
    name: &str,
    ops: usize,
    clients: usize,
    op: F,
) -> anyhow::Result<Stats>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut set = JoinSet::new();
    for client in 0..clients {
        let (op, next) = (op.clone(), next.clone());
        set.spawn(async move {
            let mut lat = Vec::with_capacity(ops / clients + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let t = Instant::now();
                op(client, i).await?;
                lat.push(t.elapsed());
            }
        });
    }
    let mut lat = Vec::with_capacity(ops);
    while let Some(done) = set.join_next().await {
        lat.extend(done??);
    }
    Ok(Stats::new(name, ops, start.elapsed(), lat))
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Prints the rows as a Markdown table, then their notes.
pub fn print_table(rows: &[Row]) {
    let header = [
        "scenario",
        "ops",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "baseline",
        "base ops/s",
        "base p50 ms",
        "base p99 ms",
        "ratio",
    ];
    let mut lines: Vec<[String; 10]> = vec![header.map(str::to_owned)];
    for r in rows {
        let (s, b) = (&r.scenario, &r.baseline);
        lines.push([
            s.name.clone(),
            s.ops.to_string(),
            format!("{:.0}", s.ops_per_s()),
            ms(s.pct(0.50)),
            ms(s.pct(0.99)),
            b.name.clone(),
            format!("{:.0}", b.ops_per_s()),
            ms(b.pct(0.50)),
            ms(b.pct(0.99)),
            format!("{:.3}", s.ops_per_s() / b.ops_per_s()),
        ]);
    }
    let mut widths = [0usize; 10];
    for l in &lines {
        for (w, cell) in widths.iter_mut().zip(l) {
            *w = (*w).max(cell.len());
        }
    }
    let render = |cells: &[String; 10]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            // Names left-aligned, numbers right-aligned.
            .map(|(i, (c, w))| match i {
                0 | 5 => format!("{c:<w$}"),
                _ => format!("{c:>w$}"),
            })
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    println!("{}", render(&lines[0]));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("|-{}-|", rule.join("-|-"));
    for l in &lines[1..] {
        println!("{}", render(l));
    }
    println!();
    println!("ratio = scenario ops/s / baseline ops/s (same run, same machine).");
    for r in rows {
        for n in &r.notes {
            println!("- {}: {n}", r.scenario.name);
        }
    }
}
