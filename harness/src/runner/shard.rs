//! `e2e --shard K/N`: which scenarios a CI job runs. Every scenario lands in exactly one shard,
//! and the same inputs give the same split. With durations of an earlier run (its `run.json`),
//! shards are balanced by time (longest first, each to the least loaded shard); without, each
//! scenario counts the same, dealt round in the order of a hash of its name (stable across
//! machines; a new scenario may move others to another shard).

use std::collections::BTreeMap;

/// `K/N`, 1 <= K <= N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}` is not a shard: write K/N, e.g. 1/2 (K from 1 to N)");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) =
            (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index == 0 || index > count || count > 256 {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a: stable across platforms and releases (std's hasher is neither).
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The shard (0-based) of each name, balanced by `durations` (milliseconds; a name without one
/// counts as the mean of the others, or 1 when there are none).
pub fn assign(names: &[String], durations: &BTreeMap<String, u64>, shards: usize) -> BTreeMap<String, usize> {
    let known: Vec<u64> = names.iter().filter_map(|n| durations.get(n).copied()).collect();
    // Durations come from a file: summed in u128 (no overflow for any count of u64s), and loads
    // saturate, so no recorded value can panic or wrap the balance.
    let mean = match known.len() as u128 {
        0 => 1,
        count => u64::try_from(known.iter().map(|d| u128::from(*d)).sum::<u128>() / count).unwrap_or(u64::MAX).max(1),
    };
    let mut order: Vec<(&String, u64)> = names.iter().map(|n| (n, durations.get(n).copied().unwrap_or(mean))).collect();
    // Longest first; ties broken by the name's hash (then the name), never by input order.
    order.sort_by(|a, b| b.1.cmp(&a.1).then(stable_hash(a.0).cmp(&stable_hash(b.0))).then(a.0.cmp(b.0)));
    let mut load = vec![0u64; shards.max(1)];
    let mut out = BTreeMap::new();
    for (name, weight) in order {
        let (least, _) = load.iter().enumerate().min_by_key(|(i, l)| (**l, *i)).unwrap_or((0, &0));
        load[least] = load[least].saturating_add(weight);
        out.insert(name.clone(), least);
    }
    out
}

/// The most of a `run.json` that `--durations` reads: a run of hundreds of scenarios writes a
/// few hundred KiB; a larger file is refused before it is parsed.
pub const MAX_REPORT_BYTES: u64 = 8 * 1024 * 1024;

/// What `--durations` needs of a `run.json`; every other field is skipped unparsed.
#[derive(serde::Deserialize)]
struct Report {
    results: Vec<ReportResult>,
}

#[derive(serde::Deserialize)]
struct ReportResult {
    scenario: String,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    duration_ms: Option<u64>,
}

/// Durations by scenario from a `run.json` file: read like every input (a regular file, at most
/// [`MAX_REPORT_BYTES`]; FIFOs and devices refused unopened), errors naming the file.
pub fn durations_from_file(file: &std::path::Path) -> Result<BTreeMap<String, u64>, String> {
    let bytes = crate::yaml::read_bounded(file, MAX_REPORT_BYTES, "an earlier run's run.json")
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| format!("{}: not a run.json: {e}", file.display()))?;
    durations_from_report(text).map_err(|e| format!("{}: {e}", file.display()))
}

/// Durations by scenario from a `run.json` (what `e2e` writes): passed and failed scenarios.
pub fn durations_from_report(json: &str) -> Result<BTreeMap<String, u64>, String> {
    let report: Report = serde_json::from_str(json).map_err(|e| format!("not a run.json: {e}"))?;
    Ok(report
        .results
        .into_iter()
        .filter(|r| r.outcome.as_deref() != Some("skipped"))
        .filter_map(|r| Some((r.scenario, r.duration_ms?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("scenario-{i}")).collect()
    }

    #[test]
    fn shards_are_disjoint_complete_and_stable() {
        let all = names(11);
        for count in 1..=5 {
            let a = assign(&all, &BTreeMap::new(), count);
            assert_eq!(a.len(), all.len(), "every scenario has a shard");
            assert!(a.values().all(|s| *s < count));
            let mut reversed = all.clone();
            reversed.reverse();
            assert_eq!(assign(&reversed, &BTreeMap::new(), count), a, "input order does not matter");
            // Equal weights: shard sizes differ by at most one.
            let sizes: Vec<usize> = (0..count).map(|s| a.values().filter(|v| **v == s).count()).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
        }
    }

    /// With recorded durations, the long scenarios are spread: no shard gets two of the three
    /// long ones when there are three shards.
    #[test]
    fn recorded_durations_balance_the_shards() {
        let all = names(9);
        let durations: BTreeMap<String, u64> =
            all.iter().enumerate().map(|(i, n)| (n.clone(), if i < 3 { 300_000 } else { 20_000 })).collect();
        let a = assign(&all, &durations, 3);
        let long_shards: std::collections::BTreeSet<usize> = all[..3].iter().map(|n| a[n]).collect();
        assert_eq!(long_shards.len(), 3, "{a:?}");
        let load = |s: usize| all.iter().filter(|n| a[*n] == s).map(|n| durations[n]).sum::<u64>();
        assert!((0..3).all(|s| load(s) == 340_000), "balanced: {:?}", (0..3).map(load).collect::<Vec<_>>());
    }

    #[test]
    fn shard_specs_are_checked() {
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, count: 3 });
        for bad in ["0/2", "3/2", "1/0", "a/b", "2", "1/1000"] {
            assert!(Shard::parse(bad).unwrap_err().contains("is not a shard"), "{bad}");
        }
    }

    #[test]
    fn durations_come_from_run_json() {
        let json = r#"{"results": [
            {"scenario": "a", "outcome": "passed", "duration_ms": 1200},
            {"scenario": "b", "outcome": "failed", "verdict": "v", "evidence": "e", "duration_ms": 300},
            {"scenario": "c", "outcome": "skipped", "reason": "r", "duration_ms": 0}]}"#;
        let d = durations_from_report(json).unwrap();
        assert_eq!(d, BTreeMap::from([("a".to_owned(), 1200), ("b".to_owned(), 300)]));
        assert!(durations_from_report("{}").unwrap_err().contains("missing field `results`"));
        assert!(durations_from_report("[]").unwrap_err().starts_with("not a run.json"));
    }

    /// Durations near `u64::MAX` (a crafted run.json) once panicked with `attempt to add with
    /// overflow`: now every scenario still gets exactly one shard.
    #[test]
    fn huge_durations_neither_panic_nor_wrap() {
        let all = names(7);
        let durations: BTreeMap<String, u64> = all.iter().take(5).map(|n| (n.clone(), u64::MAX - 1)).collect();
        let a = assign(&all, &durations, 2);
        assert_eq!(a.len(), all.len());
        assert!(a.values().all(|s| *s < 2));
        let json = format!(
            r#"{{"results": [{{"scenario": "a", "outcome": "passed", "duration_ms": {m}}},
                {{"scenario": "b", "outcome": "passed", "duration_ms": {m}}}]}}"#,
            m = u64::MAX
        );
        let d = durations_from_report(&json).unwrap();
        assert_eq!(assign(&["a".into(), "b".into(), "c".into()], &d, 2).len(), 3);
    }

    /// A run.json is read as a bounded regular file: `/dev/zero` (endless) and a FIFO (would
    /// block on open) are refused at once, an oversized file before it is parsed, each naming
    /// the file; fields the shards do not need are skipped unparsed.
    #[test]
    fn run_json_is_read_bounded_from_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let zero = durations_from_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert!(zero.starts_with("/dev/zero: not a regular file"), "{zero}");
        let fifo = dir.path().join("run.json");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
        assert!(made.success());
        let err = durations_from_file(&fifo).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(durations_from_file(dir.path()).unwrap_err().contains("not a regular file"));
        // Just over the cap: refused with the limit stated, without being parsed.
        let big = dir.path().join("big.json");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_REPORT_BYTES + 1).unwrap();
        let err = durations_from_file(&big).unwrap_err();
        assert!(err.contains("larger than the 8192 KiB limit for an earlier run's run.json"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Unneeded fields (evidence, notes, phases) may be anything; only the typed ones count.
        let ok = dir.path().join("ok.json");
        std::fs::write(
            &ok,
            r#"{"run": "r", "extra": {"deep": [[[1]]]}, "results": [
                {"scenario": "a", "mesh": "istio", "outcome": "failed", "evidence": "x", "duration_ms": 5, "phases": []}]}"#,
        )
        .unwrap();
        assert_eq!(durations_from_file(&ok).unwrap(), BTreeMap::from([("a".to_owned(), 5)]));
    }
}
