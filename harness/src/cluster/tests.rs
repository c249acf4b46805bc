use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;
use crate::command::{Process, Recording};
use crate::model::Mesh;

fn versions() -> crate::profile::Versions {
    crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap()
}

fn cluster_for(mesh: Mesh) -> KindCluster {
    let v = versions();
    let profile = v.profile(mesh.as_str(), Path::new("versions.toml")).unwrap();
    KindCluster {
        name: KindCluster::name_for(&v.kind.cluster_prefix, mesh.as_str(), "r1abc"),
        node_image: v.kind.node_images[&profile.pins.kubernetes].clone(),
        ports: HostPorts { http: 40080, https: 40443 },
    }
}

#[test]
fn kind_config_and_argv_per_mesh() {
    let run = RunDir { run: "r1abc".into(), path: PathBuf::from("target/e2e/r1abc") };
    for mesh in Mesh::ALL {
        let cluster = cluster_for(mesh);
        insta::assert_snapshot!(format!("kind_config_{mesh}"), cluster.config());
        let create = cluster.create(Path::new("target/tools/kind-v0.32.0/kind"), &run);
        insta::assert_snapshot!(format!("kind_create_{mesh}"), create.argv());
        let at = create.args.iter().position(|a| a == "--kubeconfig").unwrap();
        assert_eq!(create.args[at + 1], "target/e2e/r1abc/kubeconfig");
        assert_eq!(create.env, [("KUBECONFIG".to_owned(), "target/e2e/r1abc/kubeconfig".to_owned())]);
    }
}

#[test]
fn cluster_names_fit_a_dns_label() {
    let long = KindCluster::name_for("kme2e", "linkerd", &"x".repeat(80));
    assert!(format!("{long}-control-plane").len() <= 63, "{long}");
    assert_eq!(KindCluster::name_for("kme2e", "istio", "r1"), "kme2e-istio-r1");
}

#[test]
fn free_ports_are_distinct() {
    let ports = HostPorts::free().unwrap();
    assert_ne!(ports.http, ports.https);
}

/// A stand-in for the kind CLI: logs its argv, and like the real one writes the kubeconfig it is
/// told about, or `$KUBECONFIG`, or `~/.kube/config`.
fn fake_kind(dir: &Path, create: &str, delete: &str, clusters: &str) -> PathBuf {
    let log = dir.join("kind.log");
    let script = format!(
        r#"#!/bin/sh
echo "$@" >> "{log}"
kc=""; prev=""
for a in "$@"; do [ "$prev" = "--kubeconfig" ] && kc="$a"; prev="$a"; done
[ -n "$kc" ] || kc="${{KUBECONFIG:-$HOME/.kube/config}}"
case "$1 $2" in
  "create cluster") {create}; mkdir -p "$(dirname "$kc")"; echo "apiVersion: v1" > "$kc" ;;
  "delete cluster") {delete}; mkdir -p "$(dirname "$kc")"; echo "apiVersion: v1" > "$kc" ;;
  "get clusters") printf '{clusters}' ;;
  "export logs") mkdir -p "$3" ;;
esac
"#,
        log = log.display()
    );
    let path = dir.join("kind");
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

fn state_for(run: &RunDir, cluster: &str) -> State {
    State {
        run: run.run.clone(),
        provider: "kind".into(),
        cluster: cluster.into(),
        mesh: "istio".into(),
        profile: "istio".into(),
        fingerprint: "f".into(),
        phase: Phase::Creating,
        proxy: None,
        leftovers: vec![],
        updated: 0,
    }
}

fn provider(binary: PathBuf) -> Provider<Process> {
    Provider::Kind { kind: Kind { binary, runner: Process }, cluster: cluster_for(Mesh::Istio) }
}

#[tokio::test]
#[serial_test::serial(home)]
async fn up_and_down_never_touch_the_users_kubeconfig() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let saved = (std::env::var_os("HOME"), std::env::var_os("KUBECONFIG"));
    // SAFETY: serialised with every other test that reads HOME or KUBECONFIG.
    unsafe {
        std::env::set_var("HOME", home.path());
        std::env::remove_var("KUBECONFIG");
    }
    let name = cluster_for(Mesh::Istio).name;
    let kind = fake_kind(work.path(), ":", ":", &format!("{name}\\nsomeone-elses\\n"));
    let root = work.path().join("e2e");
    let run = RunDir::create(&root, "r1abc").unwrap();
    let p = provider(kind.clone());
    let mut state = state_for(&run, &name);
    let access = create(&p, &run, &mut state, &CancellationToken::new()).await.unwrap();
    assert_eq!(access.kubeconfig, run.kubeconfig());
    assert!(run.kubeconfig().is_file(), "kind wrote the run's kubeconfig");
    assert_eq!(teardown(&p, &run, &mut state, Keep::Never, false, false).await, Teardown::Removed);
    let report =
        down(&Kind { binary: kind, runner: Process }, &NoContainers, &root, "kme2e", DownScope::All).await.unwrap();
    assert_eq!(report, DownReport { removed: vec![name], failed: vec![] }, "someone-elses is never touched");
    unsafe {
        match saved.0 {
            Some(h) => std::env::set_var("HOME", h),
            None => std::env::remove_var("HOME"),
        }
        if let Some(k) = saved.1 {
            std::env::set_var("KUBECONFIG", k);
        }
    }
    assert!(!home.path().join(".kube").exists(), "~/.kube must not be created");
    let log = std::fs::read_to_string(work.path().join("kind.log")).unwrap();
    assert!(log.lines().filter(|l| !l.starts_with("get")).all(|l| l.contains("--kubeconfig")), "{log}");
    assert!(!log.contains("someone-elses"), "{log}");
}

#[tokio::test]
async fn an_interrupted_create_is_torn_down_within_the_bound() {
    let work = tempfile::tempdir().unwrap();
    let kind = fake_kind(work.path(), "sleep 3600", ":", "");
    let run = RunDir::create(&work.path().join("e2e"), "r1abc").unwrap();
    let p = provider(kind);
    let mut state = state_for(&run, &cluster_for(Mesh::Istio).name);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = create(&p, &run, &mut state, &cancel).await.unwrap_err();
    assert!(matches!(err, ClusterError::Interrupted), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert_eq!(run.read_state().unwrap().phase, Phase::Removed);
    let log = std::fs::read_to_string(work.path().join("kind.log")).unwrap();
    assert!(log.lines().any(|l| l.starts_with("delete cluster --name kme2e-istio-r1abc")), "{log}");
}

#[tokio::test]
async fn leftovers_are_recorded_when_teardown_is_impossible() {
    let work = tempfile::tempdir().unwrap();
    let kind = fake_kind(work.path(), "sleep 3600", "echo 'cannot reach docker' >&2; exit 1", "");
    let run = RunDir::create(&work.path().join("e2e"), "r1abc").unwrap();
    let p = provider(kind);
    let mut state = state_for(&run, &cluster_for(Mesh::Istio).name);
    let cancel = CancellationToken::new();
    cancel.cancel();
    assert!(matches!(create(&p, &run, &mut state, &cancel).await, Err(ClusterError::Interrupted)));
    let recorded = run.read_state().unwrap();
    assert_eq!(recorded.phase, Phase::Leftover);
    assert_eq!(recorded.leftovers.len(), 1);
    assert!(recorded.leftovers[0].contains("kind cluster `kme2e-istio-r1abc`"), "{:?}", recorded.leftovers);
    assert!(recorded.leftovers[0].contains("cannot reach docker"), "{:?}", recorded.leftovers);
}

/// A runner whose every command hangs; the teardown bound must still end it (virtual time).
#[derive(Clone)]
struct Hangs;

impl Runner for Hangs {
    async fn run(&self, _: &crate::command::Invocation) -> Result<crate::command::Output, CommandError> {
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        Ok(crate::command::Output::default())
    }
}

#[tokio::test(start_paused = true)]
async fn teardown_gives_up_at_its_bound_and_says_what_is_left() {
    let work = tempfile::tempdir().unwrap();
    let run = RunDir::create(&work.path().join("e2e"), "r1abc").unwrap();
    let p = Provider::Kind { kind: Kind { binary: "kind".into(), runner: Hangs }, cluster: cluster_for(Mesh::Istio) };
    let mut state = state_for(&run, "kme2e-istio-r1abc");
    let started = tokio::time::Instant::now();
    let outcome = teardown(&p, &run, &mut state, Keep::Never, true, false).await;
    assert!(started.elapsed() <= DIAGNOSTICS_BOUND + TEARDOWN_BOUND + Duration::from_secs(1));
    let Teardown::Leftover(what) = outcome else { panic!("{outcome:?}") };
    assert!(what[0].contains("did not finish within 180s"), "{what:?}");
    assert_eq!(run.read_state().unwrap().phase, Phase::Leftover);
}

#[tokio::test]
async fn keep_on_failure_deletes_passing_runs_and_keeps_failed_ones() {
    let work = tempfile::tempdir().unwrap();
    let run = RunDir::create(&work.path().join("e2e"), "r1abc").unwrap();
    let ok = || Ok(crate::command::Output { status: Some(0), ..Default::default() });
    let recording = |runner: &Recording| Provider::Kind {
        kind: Kind { binary: "kind".into(), runner: runner.clone() },
        cluster: cluster_for(Mesh::Istio),
    };
    let mut state = state_for(&run, "kme2e-istio-r1abc");
    state.proxy = Some("http://127.0.0.1:40080".into());

    let passing = Recording::answering([ok()]);
    assert_eq!(
        teardown(&recording(&passing), &run, &mut state, Keep::OnFailure, false, false).await,
        Teardown::Removed
    );
    assert_eq!(passing.argvs().len(), 1);
    assert!(passing.argvs()[0].starts_with("kind delete cluster --name kme2e-istio-r1abc --kubeconfig "));

    let failing = Recording::answering([ok()]);
    assert_eq!(teardown(&recording(&failing), &run, &mut state, Keep::OnFailure, true, false).await, Teardown::Kept);
    assert_eq!(failing.argvs().len(), 1, "only the log export: {:?}", failing.argvs());
    assert!(failing.argvs()[0].starts_with("kind export logs "));
    assert_eq!(run.read_state().unwrap().phase, Phase::Kept);
    let message = keep_message(&run, &state).replace(&work.path().display().to_string(), "<tmp>");
    insta::assert_snapshot!(message);
}

#[test]
fn reuse_finds_a_matching_cluster_or_says_why_not() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    assert_eq!(find_reusable(root, "abc", &[]).unwrap_err(), "no kept or ready harness cluster found under target/e2e");
    let run = RunDir::create(root, "r1").unwrap();
    let mut state = state_for(&run, "kme2e-istio-r1");
    state.phase = Phase::Kept;
    state.fingerprint = "old".into();
    run.write_state(&state).unwrap();
    let err = find_reusable(root, "new", &["kme2e-istio-r1".into()]).unwrap_err();
    assert!(err.contains("fingerprint old differs from this run's new"), "{err}");
    let err = find_reusable(root, "old", &[]).unwrap_err();
    assert!(err.contains("no longer exists"), "{err}");
    let (dir, found) = find_reusable(root, "old", &["kme2e-istio-r1".into()]).unwrap();
    assert_eq!((dir.run.as_str(), found.cluster.as_str()), ("r1", "kme2e-istio-r1"));
}

#[test]
fn fingerprints_change_with_values() {
    let v = versions();
    let profile = v.profile("istio", Path::new("versions.toml")).unwrap();
    let a = fingerprint("kind", &profile, &serde_json::json!({"kong": 1}));
    assert_eq!(a, fingerprint("kind", &profile, &serde_json::json!({"kong": 1})));
    assert_ne!(a, fingerprint("kind", &profile, &serde_json::json!({"kong": 2})));
    assert_ne!(a, fingerprint("k3s", &profile, &serde_json::json!({"kong": 1})));
}

/// A Docker with no containers of any run.
struct NoContainers;

impl k3s::Containers for NoContainers {
    async fn remove_run(&self, _: &str) -> Result<Vec<String>, String> {
        Ok(vec![])
    }
}

/// A Docker that holds one k3s container of run `r2`.
struct OneK3s(std::sync::Mutex<Vec<String>>);

impl k3s::Containers for OneK3s {
    async fn remove_run(&self, run: &str) -> Result<Vec<String>, String> {
        self.0.lock().unwrap().push(run.to_owned());
        Ok(if run == "r2" { vec!["3f2a".into()] } else { vec![] })
    }
}

#[tokio::test]
async fn down_removes_an_interrupted_k3s_run_by_its_label_and_records_it() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("e2e");
    let run = RunDir::create(&root, "r2").unwrap();
    let mut state = state_for(&run, "rancher/k3s:v1.35.1-k3s1@sha256:6349");
    state.provider = "k3s".into();
    state.phase = Phase::Creating;
    run.write_state(&state).unwrap();
    let kind = Kind { binary: "kind".into(), runner: Recording::answering([Ok(crate::command::Output::default())]) };
    let docker = OneK3s(Default::default());
    let report = down(&kind, &docker, &root, "kme2e", DownScope::Run("r2")).await.unwrap();
    assert_eq!(report.removed, ["k3s container 3f2a"]);
    assert_eq!(*docker.0.lock().unwrap(), ["r2"]);
    assert_eq!(run.read_state().unwrap().phase, Phase::Removed);
}

#[tokio::test]
async fn down_without_all_leaves_clusters_of_other_checkouts() {
    let work = tempfile::tempdir().unwrap();
    let kind = fake_kind(work.path(), ":", ":", "kme2e-istio-r1abc\\nkme2e-linkerd-elsewhere\\nmy-own\\n");
    let root = work.path().join("e2e");
    let run = RunDir::create(&root, "r1abc").unwrap();
    let mut state = state_for(&run, "kme2e-istio-r1abc");
    state.phase = Phase::Kept;
    run.write_state(&state).unwrap();
    let kind = Kind { binary: kind, runner: Process };
    let checkout = down(&kind, &NoContainers, &root, "kme2e", DownScope::Checkout).await.unwrap();
    assert_eq!(checkout.removed, ["kme2e-istio-r1abc"]);
    let all = down(&kind, &NoContainers, &root, "kme2e", DownScope::All).await.unwrap();
    assert!(all.removed.contains(&"kme2e-linkerd-elsewhere".to_owned()), "{all:?}");
    let log = std::fs::read_to_string(work.path().join("kind.log")).unwrap();
    assert!(!log.contains("my-own"), "a cluster without the prefix is never touched: {log}");
}

/// Images go in as single-platform archives (`kind load image-archive`), never through
/// `kind load docker-image`, which fails under Docker's containerd image store.
#[tokio::test]
async fn images_are_loaded_as_single_platform_archives() {
    struct Fake(std::sync::Mutex<Vec<String>>);
    impl crate::cluster::kind::ImagePuller for Fake {
        async fn platform(&self) -> Result<String, String> {
            Ok("linux/arm64".into())
        }
        async fn pull(&self, image: &str, platform: &str) -> Result<(), String> {
            if image == "gone:1" {
                return Err("manifest unknown".into());
            }
            self.0.lock().unwrap().push(format!("pull {image} {platform}"));
            Ok(())
        }
        async fn save(&self, image: &str, platform: &str, archive: &Path) -> Result<(), String> {
            std::fs::write(archive, "tar").map_err(|e| e.to_string())?;
            self.0.lock().unwrap().push(format!("save {image} {platform}"));
            Ok(())
        }
    }
    let work = tempfile::tempdir().unwrap();
    let run = RunDir::create(&work.path().join("e2e"), "r1").unwrap();
    let runner = Recording::answering([Ok(crate::command::Output::default()), Ok(crate::command::Output::default())]);
    let kind = Kind { binary: "kind".into(), runner };
    let docker = Fake(Default::default());
    let images = ["echo:1".to_owned(), "gone:1".to_owned(), "kong:3.9".to_owned()];
    let failed = kind.load_images("kme2e-istio-r1", &images, &docker, &run, &Default::default()).await.unwrap();
    // One image failing does not stop the others; it is reported with why.
    assert_eq!(failed, [("gone:1".to_owned(), "manifest unknown".to_owned())]);
    // The daemon's platform, not the harness binary's.
    let platform = "linux/arm64";
    let mut seen = docker.0.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            format!("pull echo:1 {platform}"),
            format!("pull kong:3.9 {platform}"),
            format!("save echo:1 {platform}"),
            format!("save kong:3.9 {platform}")
        ]
    );
    let argvs = kind.runner.argvs();
    assert_eq!(argvs.len(), 2);
    assert!(
        argvs.iter().all(|a| a.starts_with("kind load image-archive ") && a.ends_with(" --name kme2e-istio-r1")),
        "{argvs:?}"
    );
    assert!(argvs.iter().all(|a| !a.contains("docker-image")));
    let left: Vec<_> = std::fs::read_dir(run.path.join("images")).unwrap().collect();
    assert!(left.is_empty(), "archives are removed once loaded");
}

/// Ctrl-C or the budget during the preload: a pull that hangs is dropped at once, the error
/// says what was under way (images already loaded are not named), no archive is left, and a
/// run stopped before the preload pulls nothing.
#[tokio::test(start_paused = true)]
async fn a_stop_ends_the_image_preload_during_a_pull_and_says_what_it_was_doing() {
    struct Hangs(std::sync::Mutex<Vec<String>>);
    impl crate::cluster::kind::ImagePuller for Hangs {
        async fn platform(&self) -> Result<String, String> {
            Ok("linux/amd64".into())
        }
        async fn pull(&self, image: &str, _: &str) -> Result<(), String> {
            self.0.lock().unwrap().push(format!("pull {image}"));
            if image.starts_with("hang") {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
        async fn save(&self, image: &str, _: &str, archive: &Path) -> Result<(), String> {
            std::fs::write(archive, "tar").map_err(|e| e.to_string())?;
            self.0.lock().unwrap().push(format!("save {image}"));
            Ok(())
        }
    }
    let work = tempfile::tempdir().unwrap();
    let run = RunDir::create(&work.path().join("e2e"), "r1").unwrap();
    let kind = Kind { binary: "kind".into(), runner: Recording::answering([Ok(crate::command::Output::default())]) };
    let docker = Hangs(Default::default());
    let images = ["echo:1".to_owned(), "hang:1".to_owned()];
    let cancel = tokio_util::sync::CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        stop.cancel();
    });
    let started = tokio::time::Instant::now();
    let preload = kind.load_images("kme2e-istio-r1", &images, &docker, &run, &cancel);
    let err = tokio::time::timeout(Duration::from_secs(600), preload).await.expect("stops, not hangs").unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert!(matches!(err, ClusterError::Stopped { .. }), "{err:?}");
    assert_eq!(err.to_string(), "stopped while preloading images: pulling hang:1");
    assert_eq!(kind.runner.argvs().len(), 1, "echo:1 was loaded before the stop");
    let left: Vec<_> = std::fs::read_dir(run.path.join("images")).unwrap().collect();
    assert!(left.is_empty(), "no archive left behind: {left:?}");

    // Stopped before it began: nothing is pulled.
    let docker = Hangs(Default::default());
    let err = kind.load_images("kme2e-istio-r1", &images, &docker, &run, &cancel).await.unwrap_err();
    assert_eq!(err.to_string(), "stopped while preloading images: nothing pulled yet");
    assert!(docker.0.lock().unwrap().is_empty());
}
