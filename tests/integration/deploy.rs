//! The Kubernetes example (`deploy/`) and the image's runtime steps (issue 14): every manifest parses and
//! says what a production job needs (migrate as a Job; sync as a CronJob that never overlaps, with a
//! starting deadline and a grace period above 10 s, or as one watching replica; secrets mounted as files),
//! the ConfigMap's config is one acdsync reads, and the runtime script turns psqlODBC's logging off and checks
//! the drivers, as the Dockerfile runs it (Docker does not run here).

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

fn manifests() -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value =
                serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn kind<'a>(all: &'a [(PathBuf, Value)], kind: &str) -> &'a Value {
    &all.iter()
        .find(|(_, v)| v["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} in deploy/"))
        .1
}

/// The pod spec's acdsync container args, and checks every pod spec shares: a grace period above 10 s, a
/// non-root user, the Secret mounted read-only as files.
fn pod(spec: &Value, what: &str) -> Vec<String> {
    let grace = spec["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    assert!(grace > 10, "{what}: terminationGracePeriodSeconds {grace}");
    assert_eq!(
        spec["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true),
        "{what}"
    );
    let volumes = spec["volumes"].as_sequence().unwrap();
    let secret = volumes
        .iter()
        .find(|v| v["secret"]["secretName"].as_str() == Some("acdsync-secrets"))
        .unwrap_or_else(|| panic!("{what}: the Secret is not a volume"));
    let container = &spec["containers"][0];
    let mounted = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|m| m["name"] == secret["name"] && m["readOnly"].as_bool() == Some(true));
    assert!(mounted, "{what}: the Secret is not mounted read-only");
    container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_kubernetes_manifests_say_what_a_production_job_needs() {
    let all = manifests();
    for (path, v) in &all {
        for key in ["apiVersion", "kind"] {
            assert!(v[key].as_str().is_some(), "{}: no {key}", path.display());
        }
        assert!(
            v["metadata"]["name"].as_str().is_some(),
            "{}",
            path.display()
        );
    }

    let job = kind(&all, "Job");
    assert!(pod(&job["spec"]["template"]["spec"], "Job").contains(&"migrate".to_owned()));

    let cron = kind(&all, "CronJob");
    assert_eq!(cron["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
    assert!(cron["spec"]["startingDeadlineSeconds"]
        .as_u64()
        .is_some_and(|s| s > 0));
    let args = pod(
        &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "CronJob",
    );
    assert!(args.contains(&"sync".to_owned()), "{args:?}");
    assert!(!args.contains(&"--watch".to_owned()), "{args:?}");

    let deployment = kind(&all, "Deployment");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(1));
    assert_eq!(
        deployment["spec"]["strategy"]["type"].as_str(),
        Some("Recreate")
    );
    let args = pod(&deployment["spec"]["template"]["spec"], "Deployment");
    assert!(args.contains(&"--watch".to_owned()), "{args:?}");

    // The ConfigMap's config file is one acdsync reads (its SQL files as the image holds them)
    let config = kind(&all, "ConfigMap")["data"]["acdsync.toml"]
        .as_str()
        .unwrap();
    let here = format!("{}/sql/", env!("CARGO_MANIFEST_DIR"));
    let config = config.replace("/app/sql/", &here);
    let parsed = acdsync::config::Config::parse(
        &config,
        Path::new("/etc/acdsync/acdsync.toml"),
        Some("sqlite://unused.db".into()),
    )
    .unwrap();
    assert_eq!(parsed.systems.len(), 1);
    assert!(parsed.systems[0].incremental.is_some());
    assert!(parsed.metrics_textfile.is_some());
}

#[test]
fn the_image_runtime_script_turns_psqlodbc_logging_off_and_checks_the_drivers() {
    // Given the system's odbcinst.ini (the drivers the image installs), with Debian's CommLog=1 and Debug=1
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("odbcinst.ini");
    let system = std::fs::read_to_string("/etc/odbcinst.ini").unwrap();
    let mut debian = String::new();
    for line in system.lines() {
        if line.trim_start().starts_with("CommLog") || line.trim_start().starts_with("Debug") {
            continue;
        }
        debian.push_str(line);
        debian.push('\n');
        if line.trim_start().starts_with("[") {
            debian.push_str("CommLog=1\nDebug=1\n");
        }
    }
    std::fs::write(&ini, &debian).unwrap();
    let run = |ini: &Path| {
        std::process::Command::new("sh")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/container-runtime.sh"))
            .arg("configure")
            .env("ACDSYNC_ODBCINST_INI", ini)
            .env("ODBCSYSINI", ini.parent().unwrap())
            .output()
            .unwrap()
    };

    // When the image's configure step runs on it
    let out = run(&ini);

    // Then it succeeds, PostgreSQL's sections log nothing, and the other sections are as they were
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let edited = std::fs::read_to_string(&ini).unwrap();
    let mut section = String::new();
    for line in edited.lines() {
        if line.starts_with('[') {
            section = line.to_owned();
        } else if line.starts_with("CommLog") || line.starts_with("Debug") {
            let want = if section.starts_with("[PostgreSQL") {
                "=0"
            } else {
                "=1"
            };
            assert!(line.ends_with(want), "{section} {line}");
        }
    }

    // And without the MariaDB driver the step fails (the image would not build)
    let without = edited.replace("[MariaDB Unicode]", "[Something Else]");
    std::fs::write(&ini, without).unwrap();
    assert!(!run(&ini).status.success());
}
