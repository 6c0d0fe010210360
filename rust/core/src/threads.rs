//! The worker threads every parallel computation of the core runs on (rayon's global pool): built
//! once, by the core, with a size it has checked. Left to itself rayon reads `RAYON_NUM_THREADS`
//! and panics when it cannot start that many threads (`RAYON_NUM_THREADS=10000`); here a size
//! outside [`MAX_THREADS`] is a range error naming the variable, and the pool still starts with
//! one thread per core, so nothing panics.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Most worker threads the core starts (`RAYON_NUM_THREADS`): far above any machine's cores, far
/// below what exhausts a process's threads.
pub const MAX_THREADS: usize = 1024;

/// What `RAYON_NUM_THREADS` asks for: `None` (unset, empty or 0) for one thread per core, else a
/// count in [1, [`MAX_THREADS`]].
pub fn threads_from(var: Option<&str>) -> Result<Option<usize>> {
    let Some(text) = var.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let expected = format!("an integer in [1, {MAX_THREADS}] (0 or unset: one thread per core)");
    match text.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(n) if n <= MAX_THREADS as u64 => Ok(Some(n as usize)),
        _ => Err(Error::invalid("RAYON_NUM_THREADS", text, &expected)),
    }
}

static POOL: OnceLock<Result<usize>> = OnceLock::new();

/// Starts the worker threads once (the size `RAYON_NUM_THREADS` asks for, else one per core) and
/// returns their count, or the error of a `RAYON_NUM_THREADS` outside its range (the pool then
/// runs one thread per core) or of a pool that could not start. Every parallel entry point of the
/// core calls it first.
pub fn init() -> Result<usize> {
    POOL.get_or_init(|| {
        let wanted = threads_from(std::env::var("RAYON_NUM_THREADS").ok().as_deref());
        let per_core = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(MAX_THREADS);
        let n = match &wanted {
            Ok(Some(n)) => *n,
            _ => per_core,
        };
        // An explicit size: rayon then never reads the variable itself.
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n).build_global() {
            if rayon::ThreadPoolBuilder::new().num_threads(1).build_global().is_err() {
                return Err(Error::invalid("threads", n, &format!("worker threads the system can start ({e})")));
            }
        }
        wanted.map(|w| w.unwrap_or(n))
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_are_range_checked() {
        assert_eq!(threads_from(None), Ok(None));
        assert_eq!(threads_from(Some("")), Ok(None));
        assert_eq!(threads_from(Some("0")), Ok(None));
        assert_eq!(threads_from(Some(" 8 ")), Ok(Some(8)));
        assert_eq!(threads_from(Some("1024")), Ok(Some(1024)));
        for bad in ["10000", "-1", "x", "1e3", "99999999999999999999999"] {
            let e = threads_from(Some(bad)).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "RAYON_NUM_THREADS = {bad} is invalid: expected an integer in [1, 1024] (0 or unset: one thread per core)"
                )
            );
        }
    }
}
