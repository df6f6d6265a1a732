//! The deployment files, against Kubernetes and against the binary they run.
//!
//! - Each Kustomize overlay of `deploy/k8s`, as `kubectl kustomize` builds
//!   it, is valid against Kubernetes' schemas, offline and strict
//!   (`kubernetes-validate`), at the oldest version README supports and at
//!   the newest the validator knows.
//! - Every flag and variable a manifest or `compose.yaml` gives a part of
//!   the stack is one that part's `stack serve <part> --help` names.
//! - Every port agrees: the address a part listens on, its container port,
//!   its probes, the Service in front of it, its NetworkPolicy, and the
//!   `dns://` names its callers are given, which must be headless Services
//!   (their names resolve to every pod, which the pools balance over).
//! - The Dockerfile's entrypoint is the binary its build stage builds.
//!
//! `scripts/test` installs the tools: Debian's kubectl (`kubectl
//! kustomize`) and kubernetes-validate, whose PyYAML reads the YAML here.

use edge::auth::dev;
use serde_json::Value;
use std::{
    collections::HashMap,
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// README's oldest supported version (native gRPC probes; the preStop
/// `sleep` action), and the newest kubernetes-validate 1.37 knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the stack crate is in the repository")
        .to_owned()
}

/// Runs `program` with `args` (and `input` on its stdin): its stdout, or a
/// failure that says what it printed.
fn run(program: &str, args: &[&str], input: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("running {program} ({error}); ./scripts/test installs it"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.unwrap_or_default().as_bytes())
        .expect("writing to its stdin");
    let output = child.wait_with_output().expect("waiting for it");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// YAML documents as JSON values, read by PyYAML (kubernetes-validate's).
fn yaml_documents(yaml: &str) -> Vec<Value> {
    let json = run(
        "python3",
        &[
            "-c",
            "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)",
        ],
        Some(yaml),
    );
    serde_json::from_str(&json).expect("PyYAML's JSON")
}

fn overlays() -> Vec<PathBuf> {
    let mut overlays: Vec<PathBuf> = std::fs::read_dir(repository().join("deploy/k8s/overlays"))
        .expect("deploy/k8s/overlays")
        .map(|entry| entry.expect("an overlay").path())
        .collect();
    overlays.sort();
    assert!(overlays.len() >= 2, "an overlay or two: {overlays:?}");
    overlays
}

fn kustomize(overlay: &Path) -> String {
    run(
        "kubectl",
        &["kustomize", overlay.to_str().expect("a UTF-8 path")],
        None,
    )
}

#[test]
fn every_overlay_is_valid_kubernetes() {
    for overlay in overlays() {
        let built = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(built.path(), kustomize(&overlay)).expect("writing the built overlay");
        for version in KUBERNETES_VERSIONS {
            let report = run(
                "kubernetes-validate",
                &[
                    "--strict",
                    "--quiet",
                    "--kubernetes-version",
                    version,
                    built.path().to_str().expect("a UTF-8 path"),
                ],
                None,
            );
            assert!(
                report.trim().is_empty(),
                "{} against Kubernetes {version}: {report}",
                overlay.display()
            );
        }
    }
}

/// What a part of the stack is given where it is deployed.
struct Given<'a> {
    /// Where, for failures.
    place: String,
    part: &'a str,
    /// Its arguments after `serve <part>`.
    flags: Vec<&'a str>,
    /// Its environment variables, with their values where given in place.
    env: Vec<(&'a str, Option<&'a str>)>,
}

/// The `--help` of each part, run once.
#[derive(Default)]
struct Helps(HashMap<String, String>);

impl Helps {
    fn of(&mut self, part: &str) -> &str {
        self.of_command(&["serve", part, "--help"])
    }

    /// The output of `stack args…`.
    fn of_command(&mut self, args: &[&str]) -> &str {
        self.0
            .entry(args.join(" "))
            .or_insert_with(|| run(env!("CARGO_BIN_EXE_stack"), args, None))
    }
}

/// The files of a part's certificate, its key and the CA (it is given all
/// three: the parts speak mutual TLS, and none serves plaintext).
fn tls_files<'a>(given: &Given<'a>) -> [&'a str; 3] {
    let value = |wanted: &str| {
        given
            .env
            .iter()
            .find(|(name, _)| *name == wanted)
            .and_then(|(_, value)| *value)
            .unwrap_or_else(|| panic!("{}: {} is given no {wanted}", given.place, given.part))
    };
    assert!(
        given.env.iter().all(|(name, _)| *name != "INSECURE_PLAINTEXT"),
        "{}: {} serves plaintext",
        given.place,
        given.part
    );
    ["TLS_CERT", "TLS_KEY", "TLS_CA"].map(value)
}

/// A probe that runs `stack probe` in the container: the image's binary,
/// asking about the container's own part, with flags `stack probe` has
/// (`--ready` for readiness only).
fn check_stack_probe(place: &str, part: &str, command: &[&str], readiness: bool, helps: &mut Helps) {
    let [binary, "probe", probed, flags @ ..] = command else {
        panic!("{place}: an exec probe runs `stack probe <part>`: {command:?}");
    };
    assert_eq!(
        *binary,
        image_entrypoint()[0],
        "{place}: the probe runs the image's binary"
    );
    assert_eq!(probed, &part, "{place}: the probe asks about its own part");
    let help = helps.of_command(&["probe", "-h"]).to_owned();
    for flag in flags {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{flag} "))),
            "{place}: `stack probe` has no flag {flag}"
        );
    }
    assert_eq!(
        flags.contains(&"--ready"),
        readiness,
        "{place}: --ready for readiness only"
    );
}

/// The part's flags and variables are its own; returns the port it listens
/// on (on every interface: others must reach it) and the `dns://` names it
/// is given, with their ports.
fn check_given(given: &Given<'_>, helps: &mut Helps) -> (u16, Vec<(String, u16)>) {
    let help = helps.of(given.part).to_owned();
    for flag in given.flags.iter().filter(|arg| arg.starts_with("--")) {
        let name = flag.split('=').next().expect("split yields one");
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{name} "))),
            "{}: {} has no flag {name}",
            given.place,
            given.part
        );
    }
    for (name, _) in &given.env {
        assert!(
            // `[env: NAME=value]`, or `[env: NAME]` for a secret's.
            help.contains(&format!("[env: {name}=")) || help.contains(&format!("[env: {name}]")),
            "{}: {} reads no variable {name}",
            given.place,
            given.part
        );
    }
    let listen = given
        .env
        .iter()
        .find(|(name, _)| *name == "LISTEN_ADDR")
        .and_then(|(_, value)| *value)
        .unwrap_or_else(|| panic!("{}: {} is given no LISTEN_ADDR", given.place, given.part));
    let listen: SocketAddr = listen.parse().expect("LISTEN_ADDR is an address");
    assert!(
        listen.ip().is_unspecified(),
        "{}: {} listens on {listen}, which other hosts cannot reach",
        given.place,
        given.part
    );
    let dns_names = given
        .env
        .iter()
        .filter_map(|(_, value)| *value)
        .flat_map(|value| value.split(','))
        .filter_map(|replica| replica.strip_prefix("dns://"))
        .map(|target| {
            let (name, port) = target.rsplit_once(':').expect("dns://name:port");
            (name.to_owned(), port.parse().expect("a port"))
        })
        .collect();
    (listen.port(), dns_names)
}

/// The string `field` of each item of an array.
fn strings_of<'a>(value: &'a Value, field: &str) -> Vec<&'a str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(|item| item[field].as_str()).collect())
        .unwrap_or_default()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A container port given by number or by the name of one of `ports`.
fn resolve_port(port: &Value, ports: &Value) -> Option<u64> {
    port.as_u64().or_else(|| {
        ports.as_array()?.iter().find_map(|declared| {
            (declared["name"] == *port)
                .then(|| declared["containerPort"].as_u64())
                .flatten()
        })
    })
}

#[test]
fn manifests_agree_with_the_binary() {
    let mut helps = Helps::default();
    for overlay in overlays() {
        let documents = yaml_documents(&kustomize(&overlay));
        let of_kind = |kind: &'static str| documents.iter().filter(move |document| document["kind"] == kind);
        // The parts and the ports they listen on, by pod label.
        let mut listening: HashMap<String, u16> = HashMap::new();
        let mut callers: Vec<(String, Vec<(String, u16)>)> = Vec::new();
        let mut pod_labels = Vec::new();
        for workload in of_kind("Deployment").chain(of_kind("StatefulSet")) {
            let pod = &workload["spec"]["template"];
            pod_labels.push(pod["metadata"]["labels"].clone());
            for container in pod["spec"]["containers"].as_array().expect("containers") {
                let args = strings(&container["args"]);
                let ["serve", part, flags @ ..] = args.as_slice() else {
                    continue; // not ours (PostgreSQL)
                };
                let place = format!("{} {}", overlay.display(), workload["metadata"]["name"]);
                let env = container["env"]
                    .as_array()
                    .map(|env| {
                        env.iter()
                            .map(|var| (var["name"].as_str().expect("a name"), var["value"].as_str()))
                            .collect()
                    })
                    .unwrap_or_default();
                let given = Given {
                    place: place.clone(),
                    part,
                    flags: flags.to_vec(),
                    env,
                };
                let (port, dns_names) = check_given(&given, &mut helps);
                if *part == "edge" && overlay.ends_with("try") {
                    trusts_stack_tokens(&given);
                }
                assert_eq!(
                    pod["metadata"]["labels"]["app.kubernetes.io/name"], *part,
                    "{place}: pods are labelled by their part (Services and policies select them so)"
                );
                let ports = &container["ports"];
                assert_eq!(
                    ports[0]["containerPort"].as_u64(),
                    Some(u64::from(port)),
                    "{place}: container port"
                );
                for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                    let probe = &container[probe];
                    if probe.is_null() {
                        continue;
                    }
                    if let Some(exec) = probe.get("exec") {
                        let readiness = std::ptr::eq(probe, &container["readinessProbe"]);
                        check_stack_probe(&place, part, &strings(&exec["command"]), readiness, &mut helps);
                        continue;
                    }
                    let target = ["tcpSocket", "httpGet"]
                        .iter()
                        .find_map(|kind| probe.get(kind))
                        .unwrap_or_else(|| panic!("{place}: a probe of a kind checked here: {probe}"));
                    assert_eq!(
                        resolve_port(&target["port"], ports),
                        Some(u64::from(port)),
                        "{place}: {probe} probes the port it listens on"
                    );
                }
                // Its certificate is its own Secret's, mounted.
                for file in tls_files(&given) {
                    let mount = strings_of(&container["volumeMounts"], "mountPath")
                        .into_iter()
                        .zip(strings_of(&container["volumeMounts"], "name"))
                        .find(|(path, _)| Path::new(file).parent() == Some(Path::new(path)))
                        .map(|(_, name)| name)
                        .unwrap_or_else(|| panic!("{place}: {file} is in a mounted volume"));
                    let secret = pod["spec"]["volumes"]
                        .as_array()
                        .and_then(|volumes| volumes.iter().find(|volume| volume["name"] == mount))
                        .map(|volume| &volume["secret"]["secretName"]);
                    assert_eq!(
                        secret.and_then(Value::as_str),
                        Some(format!("dishpatch-tls-{part}").as_str()),
                        "{place}: its certificate comes from its own Secret"
                    );
                }
                assert!(
                    container["readinessProbe"].is_object() && container["livenessProbe"].is_object(),
                    "{place}: readiness and liveness probes"
                );
                let security = &container["securityContext"];
                assert_eq!(security["readOnlyRootFilesystem"], true, "{place}");
                assert_eq!(security["allowPrivilegeEscalation"], false, "{place}");
                assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true, "{place}");
                assert!(
                    container["resources"]["limits"].is_object()
                        && container["resources"]["requests"].is_object(),
                    "{place}: resource requests and limits"
                );
                listening.insert((*part).to_owned(), port);
                callers.push((place, dns_names));
            }
        }
        assert_eq!(listening.len(), 4, "{}: every part deployed", overlay.display());

        let selected = |document: &Value, selector: &str| -> Option<String> {
            document["spec"][selector]["app.kubernetes.io/name"]
                .as_str()
                .or_else(|| document["spec"][selector]["matchLabels"]["app.kubernetes.io/name"].as_str())
                .map(str::to_owned)
        };
        let mut services: HashMap<String, (String, bool, Vec<u64>)> = HashMap::new();
        for service in of_kind("Service") {
            let name = service["metadata"]["name"].as_str().expect("a name").to_owned();
            let Some(part) = selected(service, "selector") else {
                continue;
            };
            let Some(&port) = listening.get(&part) else {
                continue; // PostgreSQL's
            };
            let mut ports = Vec::new();
            for declared in service["spec"]["ports"].as_array().expect("ports") {
                // Named ports are the container's: "grpc" or "http".
                let target = &declared["targetPort"];
                assert!(
                    target == "grpc" || target == "http" || target.as_u64() == Some(u64::from(port)),
                    "Service {name}: targetPort {target} is {part}'s port {port}"
                );
                ports.push(declared["port"].as_u64().expect("a port"));
            }
            let headless = service["spec"]["clusterIP"] == "None";
            services.insert(name, (part, headless, ports));
        }
        for (place, dns_names) in callers {
            for (name, port) in dns_names {
                let (part, headless, ports) = services
                    .get(&name)
                    .unwrap_or_else(|| panic!("{place}: dns://{name} names no Service"));
                assert!(
                    *headless,
                    "{place}: Service {name} must be headless, to resolve to every pod"
                );
                assert_eq!(
                    listening[part], port,
                    "{place}: dns://{name}:{port}, where {part} listens on {}",
                    listening[part]
                );
                assert!(
                    ports.contains(&u64::from(port)),
                    "{place}: Service {name} has port {port}"
                );
            }
        }
        for policy in of_kind("NetworkPolicy") {
            let Some(part) = selected(policy, "podSelector") else {
                continue; // the namespace's default
            };
            let Some(&port) = listening.get(&part) else {
                continue;
            };
            for rule in policy["spec"]["ingress"].as_array().expect("ingress rules") {
                for peer in rule["from"].as_array().into_iter().flatten() {
                    let namespaces = &peer["namespaceSelector"];
                    if namespaces.is_object() {
                        assert!(
                            namespaces
                                .as_object()
                                .is_some_and(|selector| !selector.is_empty()),
                            "NetworkPolicy for {part}: a peer in any namespace: {peer}"
                        );
                        continue;
                    }
                    // A peer in this namespace is one of the pods deployed
                    // here, named by its part alone.
                    let wanted = peer["podSelector"]["matchLabels"]
                        .as_object()
                        .expect("matchLabels");
                    assert!(
                        wanted.len() == 1 && wanted.contains_key("app.kubernetes.io/name"),
                        "NetworkPolicy for {part}: {peer} names a part, and only that"
                    );
                    assert!(
                        pod_labels
                            .iter()
                            .any(|labels| wanted.iter().all(|(key, value)| labels[key] == *value)),
                        "NetworkPolicy for {part}: {peer} selects no pod deployed here"
                    );
                }
                for allowed in rule["ports"].as_array().expect("ports") {
                    assert_eq!(
                        allowed["port"].as_u64(),
                        Some(u64::from(port)),
                        "NetworkPolicy for {part} opens the port it listens on"
                    );
                }
            }
        }
    }
}

/// An edge set to accept the tokens `stack token` signs (compose.yaml, the
/// try overlay): their issuer and audience.
fn trusts_stack_tokens(edge: &Given<'_>) {
    let value = |variable: &str| {
        edge.env
            .iter()
            .find(|(name, _)| *name == variable)
            .and_then(|(_, value)| *value)
    };
    assert_eq!(
        value("JWT_ISSUER"),
        Some(dev::ISSUER),
        "{}: the issuer of stack tokens",
        edge.place
    );
    assert_eq!(
        value("JWT_AUDIENCE"),
        Some(dev::AUDIENCE),
        "{}: the audience of stack tokens",
        edge.place
    );
}

/// Where compose.yaml's `certs` service puts the certificates, in the
/// volume every part mounts.
const COMPOSE_CERTS: &str = "/tls";

#[test]
fn compose_agrees_with_the_binary() {
    let compose = std::fs::read_to_string(repository().join("compose.yaml")).expect("compose.yaml");
    let documents = yaml_documents(&compose);
    let services = documents[0]["services"].as_object().expect("services");
    let mut helps = Helps::default();
    let mut listening: HashMap<&str, u16> = HashMap::new();
    let mut callers = Vec::new();
    for (name, service) in services {
        let command = strings(&service["command"]);
        let ["serve", part, flags @ ..] = command.as_slice() else {
            continue; // PostgreSQL
        };
        assert_eq!(
            name, part,
            "compose.yaml: a service is named for its part (callers use the name)"
        );
        let env = service["environment"]
            .as_object()
            .expect("environment, as a map")
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let given = Given {
            place: format!("compose.yaml {name}"),
            part,
            flags: flags.to_vec(),
            env,
        };
        let (port, dns_names) = check_given(&given, &mut helps);
        // Its own folder of what `stack certs` made, mounted where its
        // variables say; not the CA's key beside it.
        let made = stack::certs::in_folder(Path::new(COMPOSE_CERTS));
        assert_eq!(
            tls_files(&given).map(PathBuf::from),
            [made.cert, made.key, made.ca],
            "compose.yaml {name}: its certificate from `stack certs`"
        );
        let mounted = service["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|volume| {
                volume["source"] == "tls" && volume["target"] == COMPOSE_CERTS && volume["read_only"] == true
            });
        assert_eq!(
            mounted.map(|volume| &volume["volume"]["subpath"]),
            Some(&Value::from(*part)),
            "compose.yaml {name}: mounts its own folder of the certificates, read-only"
        );
        if *part == "edge" {
            trusts_stack_tokens(&given);
            let jwks = given
                .env
                .iter()
                .find(|(name, _)| *name == "JWT_JWKS")
                .and_then(|(_, value)| *value);
            let mounted = strings(&service["volumes"])
                .into_iter()
                .find_map(|volume| {
                    let (source, rest) = volume.split_once(':')?;
                    (Some(rest.trim_end_matches(":ro")) == jwks).then_some(source)
                })
                .expect("compose.yaml edge: its JWKS file is mounted");
            let made = Path::new(".").join(stack::auth_dir(Path::new("data")).join(dev::JWKS_FILE));
            assert_eq!(
                Path::new(mounted),
                made,
                "compose.yaml edge: trusts the keys `stack token` makes"
            );
        }
        for published in strings(&service["ports"]) {
            let inside = published.rsplit(':').next().expect("split yields one");
            assert_eq!(
                inside,
                port.to_string(),
                "compose.yaml {name}: publishes the port it listens on"
            );
        }
        listening.insert(name.as_str(), port);
        callers.push((name, dns_names));
    }
    assert_eq!(listening.len(), 4, "compose.yaml: every part");
    let certs = &services["certs"];
    assert_eq!(
        strings(&certs["command"]),
        ["certs", "--out", COMPOSE_CERTS],
        "compose.yaml: `stack certs` makes the certificates"
    );
    assert_eq!(strings(&certs["volumes"]), [format!("tls:{COMPOSE_CERTS}")]);
    for (caller, dns_names) in callers {
        for (name, port) in dns_names {
            assert_eq!(
                listening.get(name.as_str()),
                Some(&port),
                "compose.yaml {caller}: dns://{name}:{port} is a service listening there"
            );
        }
    }
}

/// The Dockerfile's instructions, continuation lines joined, as the
/// builder reads them.
fn dockerfile() -> Vec<String> {
    let dockerfile = std::fs::read_to_string(repository().join("Dockerfile")).expect("Dockerfile");
    dockerfile
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The image's ENTRYPOINT.
fn image_entrypoint() -> Vec<String> {
    dockerfile()
        .iter()
        .find_map(|line| line.strip_prefix("ENTRYPOINT "))
        .map(|json| serde_json::from_str(json).expect("ENTRYPOINT in exec form"))
        .expect("an ENTRYPOINT")
}

#[test]
fn the_image_runs_the_stack_binary() {
    let instructions = dockerfile();
    let entrypoint = image_entrypoint();
    let copied = instructions
        .iter()
        .filter_map(|line| line.strip_prefix("COPY --from=build "))
        .find_map(|paths| {
            let (source, destination) = paths.split_once(' ')?;
            (destination == entrypoint[0]).then_some(source)
        })
        .expect("the entrypoint is copied from the build stage");
    let binary = Path::new(env!("CARGO_BIN_EXE_stack"))
        .file_name()
        .and_then(|name| name.to_str())
        .expect("the binary's name");
    let build = instructions
        .iter()
        .find(|line| line.starts_with("RUN") && line.contains("cargo build"))
        .expect("a cargo build");
    assert!(
        build.contains(&format!("-p {binary}")) && build.contains("--release"),
        "the build stage builds {binary}, released: {build}"
    );
    assert!(
        build.contains(&format!("cp target/release/{binary} {copied}")),
        "{copied} is the built {binary}: {build}"
    );
    let exposed: Vec<&str> = instructions
        .iter()
        .find_map(|line| line.strip_prefix("EXPOSE "))
        .expect("EXPOSE")
        .split_whitespace()
        .collect();
    assert_eq!(exposed, ["3000", "50051", "50052", "50053"], "the parts' ports");
    assert!(
        instructions
            .iter()
            .any(|line| line.starts_with("USER ") && !line.contains(" 0") && !line.contains("root")),
        "the image runs as a user other than root"
    );
    let ignored = std::fs::read_to_string(repository().join(".dockerignore")).expect(".dockerignore");
    assert!(
        ignored.lines().any(|line| line == "target/"),
        "the build context leaves out target/"
    );
}
