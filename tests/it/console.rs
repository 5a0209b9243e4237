//! The browser console: its assets are served with a strict CSP, and in
//! headless Chromium (`tests/browser/console.mjs`, Playwright) it loads with
//! no console error, shows a call live to its end, flips the kill switch so
//! the next originate gets 429, and tells a wrong token clearly. The browser
//! half is skipped, with the reason printed, where Chromium, Node or
//! playwright-core is missing (`scripts/test` installs them where it can).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use events::TenantId;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::app::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_served_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    for (path, kind) in [
        ("/console", "text/html"),
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    let page = app
        .client
        .get(format!("{}/console", app.base))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    // No inline script: the policy would block it, and it would be a hole.
    assert!(!html.contains("<script>") && html.contains("console.js"));
    app.stop().await;
}

/// Why the browser test cannot run here, if it cannot.
fn browser_missing(dir: &Path) -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!(
            "no Chromium at {chromium} (Debian package `chromium`)"
        ));
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("no `node` on PATH".into());
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Some("tests/browser has no node_modules (run `npm ci` there)".into());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_calls_live_and_flips_the_kill_switch() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/browser");
    if let Some(why) = browser_missing(&dir) {
        println!("skipped: the console's browser test: {why}");
        return;
    }
    let app = TestApp::spawn().await;
    let t = app.admin(TenantId::new());
    let provider = app.twilio(&t, "tok").await;
    let r = app
        .attach(&t, "+12025550123", &provider, Some(Uuid::new_v4()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let artifacts = root.join("target/test-artifacts/console");
    std::fs::create_dir_all(&artifacts).unwrap();
    let child = tokio::process::Command::new("node")
        .arg("console.mjs")
        .current_dir(&dir)
        .env("BASE_URL", &app.base)
        .env("TOKEN", &t)
        .env("FROM_NUMBER", "+12025550123")
        .env("ARTIFACTS", &artifacts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("the browser test finishes")
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    println!("{stdout}{stderr}screenshots: {}", artifacts.display());
    assert!(
        out.status.success(),
        "console.mjs failed:\n{stdout}\n{stderr}"
    );
    app.stop().await;
}
