//! The vendored upstream charts (`harness/testdata/charts/`, PROVENANCE.md there), rendered by
//! a real `helm` with the values the plan installs, compared with the reviewed goldens under
//! `harness/testdata/renders/`. The unit tests check the harness's beliefs (labels, selectors,
//! service accounts, NodePorts, webhook names, images, discovery) against those goldens on
//! every `cargo test`; this test keeps the goldens honest: a render that differs from its
//! golden fails, so a chart bump or a change of the harness's values cannot leave the beliefs
//! checked against a stale render.
//!
//! Every profile of `versions.toml` is walked, one trial per Helm release
//! (`render::<profile>::<release>`):
//! - a release with no vendored chart (Istio 1.31.x, Linkerd edge-26.9.x: PROVENANCE.md, known
//!   gaps) is reported ignored with that reason, under CI too: a documented gap, not a missing
//!   tool, and nothing about it is checked;
//! - a release identical (chart, version, namespace, values, files) to one already rendered is
//!   reported ignored, naming the trial that renders it. It is not rendered again against that
//!   golden: helm is not given the profile's Kubernetes version, so the render would be the same
//!   bytes and an `ok` would claim a coverage of that Kubernetes version it does not have;
//! - any other release is rendered and compared with `renders/<profile>/<release>.yaml`.
//!
//! helm comes from `HELM` if set, else `helm` on `PATH`. Without one, each render is reported
//! ignored with the reason, except under CI (`harness::in_ci`), where a missing helm fails
//! (`.ci/run` installs one from a registry package; the README says how to get it locally).
//! `UPDATE_RENDERS=1` rewrites the goldens instead of comparing them.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::model::Mesh;
use harness::profile::Versions;
use harness::stack::{Action, Release, environment};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_owned()
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// The vendored chart directory of a release, when one is vendored for its version.
fn vendored(release: &Release) -> Option<PathBuf> {
    let minor = |v: &str| v.rsplit_once('.').map(|(m, _)| m.to_owned()).unwrap_or_default();
    let dir = match (release.chart.as_str(), release.version.as_str()) {
        ("ingress", "0.24.0") => "kong-ingress-0.24.0",
        // kong/kong 3.2.0 is kong/ingress 0.24.0's dependency, vendored inside it.
        ("kong", "3.2.0") => "kong-ingress-0.24.0/charts/kong",
        // Istio 1.30.x profiles render with the 1.30.3 charts (PROVENANCE.md: known gaps).
        ("base", v) if minor(v) == "1.30" => "istio-base-1.30.3",
        ("istiod", v) if minor(v) == "1.30" => "istio-istiod-1.30.3",
        ("cni", v) if minor(v) == "1.30" => "istio-istio-cni-1.30.3",
        ("ztunnel", v) if minor(v) == "1.30" => "istio-ztunnel-1.30.3",
        ("linkerd-crds", "2026.8.3") => "linkerd-crds-edge-26.8.3",
        ("linkerd-control-plane", "2026.8.3") => "linkerd-control-plane-edge-26.8.3",
        _ => return None,
    };
    Some(testdata().join("charts").join(dir))
}

/// Releases whose render is kept as a golden: the ones the harness believes things about. The
/// CRD charts (istio base, linkerd-crds) are only rendered, to prove the values are accepted.
fn has_golden(release: &Release) -> bool {
    !matches!(release.chart.as_str(), "base" | "linkerd-crds")
}

fn helm() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("HELM").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(h));
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("helm")).find(|p| p.is_file()))
}

fn main() {
    harness::tls::install_ring_provider();
    let args = Arguments::from_args();
    let versions = match Versions::load(&root().join("versions.toml")) {
        Ok(v) => v,
        Err(e) => {
            let message = e.to_string();
            libtest_mimic::run(&args, vec![Trial::test("versions", move || Err(Failed::from(message)))]).exit()
        }
    };
    let mut trials = Vec::new();
    // Every profile of versions.toml, the default one of each mesh first: their goldens are the
    // ones the unit tests read, and the other profiles' identical releases point at them.
    let defaults: Vec<String> = Mesh::ALL.iter().map(Mesh::to_string).collect();
    let others = versions.profiles.keys().filter(|name| !defaults.contains(name)).cloned();
    // (trial name, release) of every release rendered so far.
    let mut covered: Vec<(String, Release)> = Vec::new();
    for name in defaults.iter().cloned().chain(others) {
        let profile = match versions.profile(&name, Path::new("versions.toml")) {
            Ok(p) => p,
            Err(e) => {
                let message = e.to_string();
                trials.push(Trial::test(format!("render::{name}"), move || Err(Failed::from(message))));
                continue;
            }
        };
        for action in environment(&profile) {
            let Action::Helm(release) = action else { continue };
            let trial = format!("render::{name}::{}", release.name);
            if vendored(&release).is_none() {
                // A known, documented gap (PROVENANCE.md), not a missing tool: ignored, CI or not.
                let reason = format!(
                    "no vendored chart for {} {}: not covered (harness/testdata/charts/PROVENANCE.md, known gaps)",
                    release.chart, release.version
                );
                trials.push(Trial::ignorable_test(trial, move || Ok(Completion::ignored_with(reason))));
                continue;
            }
            // Each mesh's default profile keeps goldens of its own (the unit tests read them by
            // mesh), even where two meshes install Kong alike.
            let duplicate = covered.iter().find(|(_, r)| *r == release).filter(|_| !defaults.contains(&name));
            if let Some((same, _)) = duplicate {
                let reason = format!("the same chart, version and values as {same}, which renders them");
                trials.push(Trial::ignorable_test(trial, move || Ok(Completion::ignored_with(reason))));
                continue;
            }
            covered.push((trial.clone(), release.clone()));
            let golden_dir = name.clone();
            trials.push(Trial::ignorable_test(trial, move || render_and_compare(&golden_dir, &release)));
        }
    }
    // Istio's canary control plane (stack::mesh_canary): the istiod release a canary installs,
    // made here as a canary of the default profile's own release, the one whose chart is
    // vendored (the 1.31 charts are not; their templates name a revision's objects the same way,
    // PROVENANCE.md). The unit tests read the gates' names and the webhooks' selectors off it.
    if let Ok(istio) = versions.profile("istio", Path::new("versions.toml"))
        && let Some((actions, _)) =
            harness::stack::mesh_canary(&environment(&istio), &istio, &istio.versions.kong.namespace)
    {
        for action in actions {
            let Action::Helm(release) = action else { continue };
            if release.chart != "istiod" {
                continue;
            }
            let trial = format!("render::istio::canary::{}", release.name);
            trials.push(Trial::ignorable_test(trial, move || render_and_compare("istio", &release)));
        }
    }
    // A user's Kong installed with the single kong/kong chart (the layout most guides use), for
    // `--no-install` discovery: release `edge` in namespace `edge`, meshed by Istio's pod label.
    let single = Release {
        name: "edge".into(),
        chart: "kong".into(),
        repo: "https://charts.konghq.com".into(),
        version: "3.2.0".into(),
        namespace: "edge".into(),
        values: serde_json::json!({"podLabels": {"sidecar.istio.io/inject": "true"}}),
        set_files: vec![],
        user_values: vec![],
        overrides: vec![],
    };
    trials.push(Trial::ignorable_test("render::kong-chart::edge", move || render_and_compare("kong-chart", &single)));
    libtest_mimic::run(&args, trials).exit();
}

fn render_and_compare(mesh: &str, release: &Release) -> Result<Completion, Failed> {
    let Some(chart) = vendored(release) else {
        return Err(format!(
            "no vendored chart for {} {}: vendor it (harness/testdata/charts/PROVENANCE.md)",
            release.chart, release.version
        )
        .into());
    };
    let Some(helm) = helm() else {
        if harness::in_ci() {
            return Err("no helm (set HELM or put helm on PATH): under CI the renders must run".into());
        }
        return Ok(Completion::ignored_with("no helm: set HELM or put helm on PATH (README, Development)"));
    };
    let copy;
    let chart = if release.chart == "kong" {
        // kong/kong depends on bitnami's postgresql, off by default (`postgresql.enabled:
        // false`) and not vendored; helm refuses a top-level chart with a missing dependency
        // even when disabled, so a temporary copy drops it (PROVENANCE.md).
        copy = tempfile::tempdir().map_err(|e| e.to_string())?;
        copy_dir(&chart, copy.path()).map_err(|e| format!("copy {}: {e}", chart.display()))?;
        let manifest = copy.path().join("Chart.yaml");
        let text = std::fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
        let kept = text.split("\ndependencies:").next().unwrap_or(&text).to_owned() + "\n";
        std::fs::write(&manifest, kept).map_err(|e| e.to_string())?;
        std::fs::remove_file(copy.path().join("Chart.lock")).map_err(|e| e.to_string())?;
        copy.path().to_owned()
    } else {
        chart
    };
    let rendered = render(&helm, &chart, release)?;
    if !has_golden(release) {
        return Ok(Completion::Completed);
    }
    let rendered = normalise(&rendered);
    let golden = testdata().join("renders").join(mesh).join(format!("{}.yaml", release.name));
    if std::env::var("UPDATE_RENDERS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(golden.parent().expect("a parent")).map_err(|e| e.to_string())?;
        std::fs::write(&golden, &rendered).map_err(|e| format!("{}: {e}", golden.display()))?;
        return Ok(Completion::Completed);
    }
    let expected = std::fs::read_to_string(&golden)
        .map_err(|e| format!("{}: {e}; write it with UPDATE_RENDERS=1 and review it", golden.display()))?;
    if expected != rendered {
        let diff = similar::TextDiff::from_lines(&expected, &rendered)
            .unified_diff()
            .context_radius(2)
            .header("golden", "helm template")
            .to_string();
        return Err(format!(
            "the render of {} differs from {}: the harness's beliefs were checked against the golden, not this. \
             Review, then UPDATE_RENDERS=1 cargo test -p harness --test charts\n{diff}",
            release.name,
            golden.display()
        )
        .into());
    }
    Ok(Completion::Completed)
}

/// `helm template` of `release` from `chart`, with the release's values and placeholder files for
/// its `--set-file`s (generated identity, which the plan never shows either).
fn render(helm: &Path, chart: &Path, release: &Release) -> Result<String, Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let values = dir.path().join("values.json");
    std::fs::write(&values, serde_json::to_vec_pretty(&release.values).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut cmd = Command::new(helm);
    cmd.args(["template", &release.name]).arg(chart).args(["--namespace", &release.namespace, "--values"]).arg(&values);
    for (key, file) in &release.set_files {
        let placeholder = dir.path().join(file.replace('/', "_"));
        std::fs::write(&placeholder, format!("PLACEHOLDER {file}\n")).map_err(|e| e.to_string())?;
        cmd.arg("--set-file").arg(format!("{key}={}", placeholder.display()));
    }
    // As the installer runs helm: none of the developer's HELM_* settings, homes of its own.
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("HELM_") {
            cmd.env_remove(var);
        }
    }
    for (var, sub) in [("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"), ("HELM_DATA_HOME", "data")] {
        cmd.env(var, dir.path().join(sub));
    }
    let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", helm.display()))?;
    if !out.status.success() {
        return Err(format!(
            "helm template {} failed ({}): {}",
            release.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    String::from_utf8(out.stdout).map_err(|e| format!("helm printed non-UTF-8: {e}").into())
}

/// Values a chart generates afresh on every render (self-signed webhook certificates, the
/// checksums of the Secrets holding them, and Linkerd's heartbeat CronJob `schedule`, set from
/// the render's clock in linkerd-control-plane `templates/heartbeat.yaml`) replaced by a fixed
/// marker, so the golden compares what the chart decides, not what it randomises.
fn normalise(text: &str) -> String {
    const GENERATED_KEYS: &[&str] = &["caBundle:", "tls.crt:", "tls.key:", "ca.crt:", "checksum/", "schedule:"];
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            match GENERATED_KEYS.iter().find(|k| trimmed.starts_with(*k)) {
                Some(_) => {
                    let (key, _) = trimmed.split_once(':').unwrap_or((trimmed, ""));
                    format!("{}{key}: GENERATED", &line[..line.len() - trimmed.len()])
                }
                None => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
