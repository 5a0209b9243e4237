//! Timing: closed-loop clients, an open-loop generator, percentiles, and
//! the printed table (each figure next to its same-run baseline and target).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

/// One measured run: `ops` operations in `elapsed`, with per-operation
/// latencies (sorted).
pub struct Stats {
    pub ops: usize,
    pub elapsed: Duration,
    lat: Vec<Duration>,
    /// Operations that failed (counted, not timed).
    pub errors: usize,
}

impl Stats {
    pub fn new(ops: usize, elapsed: Duration, mut lat: Vec<Duration>) -> Stats {
        lat.sort_unstable();
        Stats {
            ops,
            elapsed,
            lat,
            errors: 0,
        }
    }

    pub fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile in milliseconds, `q` in (0, 1].
    pub fn ms(&self, q: f64) -> f64 {
        if self.lat.is_empty() {
            return 0.0;
        }
        let rank = (self.lat.len() as f64 * q).ceil() as usize;
        self.lat[rank.clamp(1, self.lat.len()) - 1].as_secs_f64() * 1000.0
    }
}

/// Runs `op(client, i)` for i in 0..ops from `clients` concurrent tasks,
/// each taking the next i when done with its last (closed loop: the
/// throughput ceiling at this concurrency).
pub async fn concurrent<F, Fut>(ops: usize, clients: usize, op: F) -> anyhow::Result<Stats>
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
    Ok(Stats::new(ops, start.elapsed(), lat))
}

/// Sends `op(i)` for i in 0..ops at `rate` per second, each at its intended
/// time whatever the earlier ones are doing (open loop), and times each from
/// its intended send time, so a stall shows in the latencies instead of
/// slowing the generator down (no coordinated omission).
pub async fn open_loop<F, Fut>(ops: usize, rate: f64, op: F) -> anyhow::Result<Stats>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now();
    let mut set = JoinSet::new();
    for i in 0..ops {
        let intended = start + period * i as u32;
        tokio::time::sleep_until(intended).await;
        let op = op.clone();
        set.spawn(async move {
            let r = op(i).await;
            (r, intended.elapsed())
        });
    }
    let mut lat = Vec::with_capacity(ops);
    let mut errors = 0;
    while let Some(done) = set.join_next().await {
        match done? {
            (Ok(()), l) => lat.push(l),
            (Err(_), _) => errors += 1,
        }
    }
    let mut s = Stats::new(ops, start.elapsed(), lat);
    s.errors = errors;
    Ok(s)
}

/// What a figure must reach.
#[derive(Clone, Copy)]
pub enum Target {
    /// value / baseline ≥ this.
    RatioAtLeast(f64),
    /// value / baseline ≤ this.
    RatioAtMost(f64),
    /// value ≤ this (in the figure's unit).
    AtMost(f64),
    /// value ≥ this.
    AtLeast(f64),
    /// Shown for context; no target.
    Info,
}

/// One line of the table.
pub struct Row {
    pub workload: String,
    pub figure: String,
    pub value: f64,
    pub unit: &'static str,
    /// What the value is held against, measured in the same run.
    pub baseline: Option<(String, f64)>,
    pub target: Target,
}

impl Row {
    pub fn new(workload: &str, figure: &str, value: f64, unit: &'static str) -> Row {
        Row {
            workload: workload.to_owned(),
            figure: figure.to_owned(),
            value,
            unit,
            baseline: None,
            target: Target::Info,
        }
    }

    pub fn against(mut self, baseline: &str, value: f64) -> Row {
        self.baseline = Some((baseline.to_owned(), value));
        self
    }

    pub fn target(mut self, t: Target) -> Row {
        self.target = t;
        self
    }

    fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .filter(|(_, b)| *b > 0.0)
            .map(|(_, b)| self.value / b)
    }

    fn verdict(&self) -> (&'static str, String) {
        let yes = |b: bool| if b { "met" } else { "MISSED" };
        match self.target {
            Target::RatioAtLeast(t) => (
                self.ratio().map_or("n/a", |r| yes(r >= t)),
                format!("ratio ≥ {}", (t * 100.0).round() / 100.0),
            ),
            Target::RatioAtMost(t) => (
                self.ratio().map_or("n/a", |r| yes(r <= t)),
                format!("ratio ≤ {t}"),
            ),
            Target::AtMost(t) => (yes(self.value <= t), format!("≤ {t} {}", self.unit)),
            Target::AtLeast(t) => (yes(self.value >= t), format!("≥ {t} {}", self.unit)),
            Target::Info => ("", String::new()),
        }
    }
}

fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Prints the rows as one Markdown table.
pub fn print_table(rows: &[Row]) {
    let header = [
        "workload",
        "figure",
        "value",
        "baseline",
        "baseline value",
        "ratio",
        "target",
        "met",
    ];
    let mut lines: Vec<[String; 8]> = vec![header.map(str::to_owned)];
    for r in rows {
        let (met, target) = r.verdict();
        lines.push([
            r.workload.clone(),
            r.figure.clone(),
            format!("{} {}", num(r.value), r.unit),
            r.baseline.as_ref().map(|b| b.0.clone()).unwrap_or_default(),
            r.baseline
                .as_ref()
                .map(|b| format!("{} {}", num(b.1), r.unit))
                .unwrap_or_default(),
            r.ratio().map(|x| format!("{x:.2}")).unwrap_or_default(),
            target,
            met.to_owned(),
        ]);
    }
    let mut widths = [0usize; 8];
    for l in &lines {
        for (w, cell) in widths.iter_mut().zip(l) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let render = |cells: &[String; 8]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    println!("{}", render(&lines[0]));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("|-{}-|", rule.join("-|-"));
    for l in &lines[1..] {
        println!("{}", render(l));
    }
}

/// The `q` quantile (upper bucket bound, in ms) of the Prometheus histogram
/// `name` (with `labels`, e.g. `projector="calls"`) in `text`, counting only
/// what was observed since `before` (an earlier `text`).
pub fn histogram_ms(text: &str, before: &str, name: &str, labels: &str, q: f64) -> Option<f64> {
    let buckets = |t: &str| -> Vec<(f64, f64)> {
        t.lines()
            .filter(|l| l.starts_with(&format!("{name}_bucket{{")) && l.contains(labels))
            .filter_map(|l| {
                let le = l.split("le=\"").nth(1)?.split('"').next()?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
                Some((le, count))
            })
            .collect()
    };
    let (now, then) = (buckets(text), buckets(before));
    let delta: Vec<(f64, f64)> = now
        .iter()
        .map(|(le, c)| {
            let was = then.iter().find(|(l, _)| l == le).map_or(0.0, |(_, c)| *c);
            (*le, c - was)
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    delta
        .iter()
        .find(|(_, c)| *c >= total * q)
        .map(|(le, _)| le * 1000.0)
}

/// CPU time used so far, in milliseconds: by the whole machine (every
/// process, from `/proc/stat`) and by this process (`/proc/self/stat`).
///
/// On a host whose speed swings within minutes, throughput compares only
/// within a sitting; the CPU a fixed amount of work costs is steadier, so
/// it is printed beside it. `None` where `/proc` is not Linux's.
#[derive(Clone, Copy)]
pub struct Cpu {
    pub machine_ms: f64,
    pub process_ms: f64,
}

impl Cpu {
    pub fn now() -> Option<Cpu> {
        // Both files count in USER_HZ ticks, 100 a second on Linux
        // whatever the kernel's own tick rate (a fixed ABI value).
        let hz = 100.0;
        let all = all_cpus()?;
        // user, nice, system, irq, softirq: not idle, iowait, or steal
        // (time the hypervisor gave to someone else is not ours).
        let busy = all[0] + all[1] + all[2] + all[5] + all[6];
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command name; utime and stime
        // are the 14th and 15th of the whole line.
        let rest: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let (utime, stime): (f64, f64) = (rest.get(11)?.parse().ok()?, rest.get(12)?.parse().ok()?);
        Some(Cpu {
            machine_ms: busy / hz * 1000.0,
            process_ms: (utime + stime) / hz * 1000.0,
        })
    }

    /// CPU used since `self`, per operation of `ops`: (machine, process).
    pub fn per_op_since(self, ops: usize) -> Option<(f64, f64)> {
        let now = Cpu::now()?;
        let n = ops.max(1) as f64;
        Some((
            (now.machine_ms - self.machine_ms) / n,
            (now.process_ms - self.process_ms) / n,
        ))
    }
}

/// The first line of `/proc/stat`, all CPUs together, in ticks: user, nice,
/// system, idle, iowait, irq, softirq, steal.
fn all_cpus() -> Option<[f64; 8]> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let all: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    all.try_into().ok()
}

/// Steal and total ticks so far: the share of a run the hypervisor gave to
/// other guests, printed beside the table because it moves every figure on
/// a shared host.
pub fn steal_ticks() -> Option<(f64, f64)> {
    let all = all_cpus()?;
    Some((all[7], all.iter().sum()))
}
