//! The webview's security configuration, parsed from the files Tauri reads. Each assertion is a
//! line of SECURITY-TESTS.md ("weak config"); loosening any of them must fail here first.

use cria_tests::workspace_root;
use serde_json::Value;

fn read_json(relative: &str) -> Value {
    let path = workspace_root().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn csp() -> serde_json::Map<String, Value> {
    let config = read_json("src-tauri/tauri.conf.json");
    config["app"]["security"]["csp"]
        .as_object()
        .expect("CSP must be set as an object")
        .clone()
}

fn directive(csp: &serde_json::Map<String, Value>, name: &str) -> String {
    csp.get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("CSP lacks {name}"))
        .to_string()
}

#[test]
fn csp_allows_no_eval_no_remote_hosts_and_no_plugins() {
    let csp = csp();
    for (name, value) in &csp {
        let value = value.as_str().expect("CSP directives are strings");
        assert!(
            !value.contains("unsafe-eval"),
            "{name} allows eval: {value}"
        );
        assert!(
            !value.contains("wasm-unsafe-eval"),
            "{name} allows wasm eval: {value}"
        );
        for source in value.split_whitespace() {
            let remote = source.starts_with("https:")
                || source.starts_with("http:") && source != "http://ipc.localhost"
                || source.starts_with("ws")
                || source == "*"
                || source.contains("*.");
            assert!(!remote, "{name} allows a remote source {source}");
        }
    }
    assert_eq!(directive(&csp, "default-src"), "'self'");
    assert_eq!(directive(&csp, "script-src"), "'self'");
    assert_eq!(directive(&csp, "object-src"), "'none'");
    assert_eq!(directive(&csp, "frame-src"), "'none'");
    assert_eq!(directive(&csp, "base-uri"), "'none'");
    assert_eq!(directive(&csp, "form-action"), "'none'");
}

#[test]
fn asset_protocol_is_off_and_prototype_frozen() {
    let config = read_json("src-tauri/tauri.conf.json");
    let security = &config["app"]["security"];
    assert_eq!(security["assetProtocol"]["enable"], Value::Bool(false));
    assert_eq!(security["freezePrototype"], Value::Bool(true));
    assert!(
        security
            .get("dangerousDisableAssetCspModification")
            .is_none()
    );
    assert_ne!(
        config["app"]["withGlobalTauri"],
        Value::Bool(true),
        "no global Tauri object"
    );
    // The window loads only the bundled UI: no remote URL anywhere in the window config.
    for window in config["app"]["windows"].as_array().unwrap() {
        if let Some(url) = window.get("url").and_then(Value::as_str) {
            assert!(!url.contains("://"), "window loads a remote URL: {url}");
        }
    }
}

#[test]
fn capabilities_grant_only_the_apps_own_commands_to_local_windows() {
    let dir = workspace_root().join("src-tauri/capabilities");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let capability = read_json(
            path.strip_prefix(workspace_root())
                .unwrap()
                .to_str()
                .unwrap(),
        );
        files += 1;
        assert!(
            capability.get("remote").is_none(),
            "{}: remote capability",
            path.display()
        );
        for permission in capability["permissions"].as_array().unwrap() {
            let name = permission
                .as_str()
                .or_else(|| permission["identifier"].as_str())
                .unwrap();
            let plugin = name.split(':').next().unwrap();
            assert!(
                !["shell", "fs", "http", "process", "opener"].contains(&plugin) || name == plugin,
                "{}: grants plugin permission {name}",
                path.display()
            );
            assert!(
                name.starts_with("allow-") || name.starts_with("core:"),
                "{}: unexpected permission {name}",
                path.display()
            );
        }
    }
    assert_eq!(files, 1, "one capability file, for the main window");
}

#[test]
fn no_shell_fs_or_http_plugin_is_linked() {
    let manifest = std::fs::read_to_string(workspace_root().join("src-tauri/Cargo.toml")).unwrap();
    for plugin in ["tauri-plugin-shell", "tauri-plugin-fs", "tauri-plugin-http"] {
        assert!(!manifest.contains(plugin), "src-tauri links {plugin}");
    }
}

#[test]
fn tauri_is_at_least_2_11_1() {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap();
    let lock: toml::Table = lock.parse().unwrap();
    let version = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"].as_str() == Some("tauri"))
        .and_then(|package| package["version"].as_str())
        .expect("tauri is in Cargo.lock")
        .to_string();
    let parts: Vec<u64> = version
        .split(['.', '-'])
        .take(3)
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(parts[0], 2, "Tauri 2.x expected, found {version}");
    assert!(
        (parts[1], parts[2]) >= (11, 1),
        "Tauri {version} is older than 2.11.1"
    );
}
