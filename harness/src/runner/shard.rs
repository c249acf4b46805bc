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
    let mean = if known.is_empty() { 1 } else { (known.iter().sum::<u64>() / known.len() as u64).max(1) };
    let mut order: Vec<(&String, u64)> = names.iter().map(|n| (n, durations.get(n).copied().unwrap_or(mean))).collect();
    // Longest first; ties broken by the name's hash (then the name), never by input order.
    order.sort_by(|a, b| b.1.cmp(&a.1).then(stable_hash(a.0).cmp(&stable_hash(b.0))).then(a.0.cmp(b.0)));
    let mut load = vec![0u64; shards.max(1)];
    let mut out = BTreeMap::new();
    for (name, weight) in order {
        let (least, _) = load.iter().enumerate().min_by_key(|(i, l)| (**l, *i)).unwrap_or((0, &0));
        load[least] += weight;
        out.insert(name.clone(), least);
    }
    out
}

/// Durations by scenario from a `run.json` (what `e2e` writes): passed and failed scenarios.
pub fn durations_from_report(json: &str) -> Result<BTreeMap<String, u64>, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("not a run.json: {e}"))?;
    let results = value.get("results").and_then(|r| r.as_array()).ok_or("not a run.json: no `results`")?;
    Ok(results
        .iter()
        .filter(|r| r.get("outcome").and_then(|o| o.as_str()) != Some("skipped"))
        .filter_map(|r| Some((r.get("scenario")?.as_str()?.to_owned(), r.get("duration_ms")?.as_u64()?)))
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
        assert!(durations_from_report("[]").unwrap_err().contains("no `results`"));
    }
}
