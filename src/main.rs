//! `switchboard`: parses the command line and hands it to the library.

use switchboard::cli::Invocation;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: under the originate load glibc's
/// `malloc`, `free` and `malloc_consolidate` took about a seventh of this
/// process's CPU (docs/BENCHMARKS.md "Where the originate path spends its
/// time"); a request allocates and frees many small buffers across tokio's
/// threads, which is what mimalloc's per-thread free lists are made for.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let ran = match switchboard::cli::parse() {
        Invocation::Service(cli) => switchboard::cli::run(*cli).await,
        Invocation::Client(args) => switchboard::client::run(args).await.map_err(Into::into),
    };
    match ran {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The client's failures carry an exit code by class and read as
        // they are (a problem body, already in lines).
        Err(e) => match e.downcast_ref::<switchboard::client::Failure>() {
            Some(f) => {
                eprintln!("switchboard client: {f}");
                std::process::ExitCode::from(f.code())
            }
            None => {
                eprintln!("switchboard: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
